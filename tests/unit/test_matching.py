"""Keyword templates, fingerprints and their serialization (the eval with figures is `make eval`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.io import wavfile

import harmonic
from harmonic import (
    Fingerprint,
    FingerprintIndex,
    InvalidAudio,
    Template,
    fingerprint,
    make_template,
    match_templates,
)
from harmonic.serialization import pack, unpack

KEYWORDS = Path(__file__).resolve().parents[1] / "data" / "keywords"
SR = 16_000


def _read(name: str) -> np.ndarray:
    sr, data = wavfile.read(KEYWORDS / name)
    assert sr == SR
    return data.astype(np.float64) / 32768.0


@pytest.fixture(scope="module")
def manifest() -> dict:
    return json.loads((KEYWORDS / "manifest.json").read_text())


@pytest.fixture(scope="module")
def templates(manifest) -> dict[str, list[Template]]:
    enrolled: dict[str, list[Template]] = {}
    for entry in manifest["enrol"]:
        enrolled.setdefault(entry["keyword"], []).append(make_template(_read(entry["file"]), SR))
    return enrolled


def _music(seed: int, seconds: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y = np.zeros(int(seconds * SR))
    for start in range(0, y.size - 4000, 4000):
        t = np.arange(4000) / SR
        f = rng.uniform(150, 900)
        y[start : start + 4000] += np.exp(-t * 6) * sum(
            np.sin(2 * np.pi * k * f * t) / k for k in range(1, 5)
        )
    return y


def test_keyword_is_found_at_its_place_in_a_carrier_phrase(manifest, templates) -> None:
    found = 0
    for entry in manifest["queries"][::3]:  # one unseen voice per keyword
        matches = match_templates(_read(entry["file"]), SR, templates, threshold=0.0)
        best = matches[0]
        if best.pattern_id == entry["keyword"]:
            found += 1
            assert abs(best.start_s - entry["start_s"]) < 0.25
            assert abs(best.end_s - entry["end_s"]) < 0.25
            assert 0.0 < best.score <= 1.0
    assert found >= 7, f"top-1 on {found}/8"


def test_matches_are_sorted_and_thresholded(manifest, templates) -> None:
    query = _read(manifest["queries"][0]["file"])
    everything = match_templates(query, SR, templates, threshold=0.0)
    assert [m.score for m in everything] == sorted((m.score for m in everything), reverse=True)
    assert match_templates(query, SR, templates, threshold=1.01) == []
    assert len({m.pattern_id for m in everything}) == len(everything)


def test_templates_from_other_rates_and_round_trip(manifest) -> None:
    from harmonic import resample

    y = _read(manifest["enrol"][0]["file"])
    template = make_template(y, SR)
    resampled = make_template(resample(y, SR, 44_100), 44_100)
    assert abs(resampled.frames - template.frames) <= 2
    assert Template.from_bytes(template.to_bytes()) == template


def test_template_rejects_silence_and_too_short_input() -> None:
    with pytest.raises(InvalidAudio, match="silent"):
        make_template(np.zeros(SR), SR)
    with pytest.raises(InvalidAudio, match="too short"):
        make_template(np.ones(100), SR)


def test_fingerprint_finds_a_noisy_excerpt_and_where_it_is() -> None:
    index = FingerprintIndex()
    recordings = {f"r{k}": _music(k, 20.0) for k in range(8)}
    for name, y in recordings.items():
        index.add(name, fingerprint(y, SR))
    rng = np.random.default_rng(0)
    excerpt = recordings["r5"][6 * SR : 11 * SR]
    noisy = excerpt + rng.standard_normal(excerpt.size) * np.sqrt(np.mean(excerpt**2))  # 0 dB
    matches = index.query(fingerprint(noisy, SR))
    assert matches[0].pattern_id == "r5"
    assert matches[0].start_s == pytest.approx(6.0, abs=0.1)
    assert matches[0].end_s == pytest.approx(11.0, abs=0.1)
    assert index.query(fingerprint(_music(999, 5.0), SR)) == []  # not registered
    index.remove("r5")
    assert "r5" not in index
    assert all(match.pattern_id != "r5" for match in index.query(fingerprint(noisy, SR)))


def test_fingerprint_density_and_serialization() -> None:
    y = _music(3, 10.0)
    sparse, dense = fingerprint(y, SR, peaks_per_second=10), fingerprint(y, SR, peaks_per_second=40)
    assert 0 < sparse.hashes.size < dense.hashes.size
    assert np.all(np.diff(dense.times) >= 0)
    assert Fingerprint.from_bytes(dense.to_bytes()) == dense
    index = FingerprintIndex()
    index.add("a", fingerprint(_music(4, 10.0), SR))
    index.add("b", dense)
    restored = FingerprintIndex.from_bytes(index.to_bytes())
    assert len(restored) == 2
    assert [match.pattern_id for match in restored.query(dense)] == ["b"]


def test_empty_index_and_silence() -> None:
    assert FingerprintIndex().query(fingerprint(_music(1, 3.0), SR)) == []
    assert fingerprint(np.zeros(SR), SR).hashes.size == 0


@pytest.mark.parametrize(
    "corrupt",
    [b"", b"HTPL", b"XXXX\x00\x00\x00\x00", b"HTPL\xff\xff\xff\x00{}", b"HTPL\x02\x00\x00\x00{}"],
)
def test_serialization_rejects_corrupt_data(corrupt: bytes) -> None:
    with pytest.raises(ValueError, match=r"serialized|corrupt|tag"):
        Template.from_bytes(corrupt)


def test_pack_refuses_object_arrays_and_truncation() -> None:
    with pytest.raises(TypeError):
        pack(b"TEST", {}, {"x": np.array([object()])})
    data = pack(b"TEST", {"a": 1}, {"x": np.arange(10, dtype=np.int32)})
    meta, arrays = unpack(data, b"TEST")
    assert meta == {"a": 1}
    np.testing.assert_array_equal(arrays["x"], np.arange(10))
    with pytest.raises(ValueError, match="truncated"):
        unpack(data[:-4], b"TEST")


def test_public_api_is_exported() -> None:
    for name in ("Match", "Template", "make_template", "match_templates", "Fingerprint", "fingerprint"):
        assert hasattr(harmonic, name)
