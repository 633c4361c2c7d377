"""Landmark fingerprints and the index: identification in noise, location, unregistered audio, add/remove,
density, edge cases, and the safe binary formats. (Accuracy and speed figures: `make eval`.)"""

from __future__ import annotations

import sys
from functools import cache

import numpy as np
import pytest

import harmonic
from harmonic import Fingerprint, FingerprintIndex, InvalidAudio, fingerprint, resample
from harmonic.serialization import pack, unpack

SR = 16_000


@cache
def _music(seed: int, seconds: float) -> np.ndarray:
    """A reproducible tune: decaying harmonic notes of random pitch, four per second, and a few clicks."""
    rng = np.random.default_rng(seed)
    y = np.zeros(int(seconds * SR))
    t = np.arange(4000) / SR
    for start in range(0, y.size - 4000, 4000):
        f = rng.uniform(150, 900)
        note = sum(np.sin(2 * np.pi * k * f * t) / k for k in range(1, 5))
        y[start : start + 4000] += np.exp(-t * 6) * note
        if rng.random() < 0.3:
            y[start : start + 400] += 0.5 * rng.standard_normal(400) * np.exp(-np.arange(400) / 80)
    return y


def _noisy(y: np.ndarray, snr_db: float, seed: int = 0) -> np.ndarray:
    noise = np.random.default_rng(seed).standard_normal(y.size)
    return y + noise * np.sqrt(np.mean(y**2) / 10 ** (snr_db / 10))


@pytest.fixture(scope="module")
def index() -> FingerprintIndex:
    registry = FingerprintIndex()
    for k in range(10):
        registry.add(f"r{k}", fingerprint(_music(k, 20.0), SR))
    return registry


@pytest.mark.parametrize(("name", "offset_s"), [("r5", 6.0), ("r2", 0.0), ("r8", 14.5)])
def test_a_5s_excerpt_at_0_db_is_found_and_located(index, name, offset_s) -> None:
    y = _music(int(name[1:]), 20.0)
    excerpt = _noisy(y[int(offset_s * SR) : int((offset_s + 5) * SR)], 0.0)
    matches = index.query(fingerprint(excerpt, SR))
    assert matches[0].pattern_id == name
    assert matches[0].start_s == pytest.approx(offset_s, abs=0.05)
    assert matches[0].end_s == pytest.approx(offset_s + 5, abs=0.05)
    assert 0.5 < matches[0].score <= 1.0
    assert [m.score for m in matches] == sorted((m.score for m in matches), reverse=True)


def test_unregistered_audio_matches_nothing(index) -> None:
    for seed in range(100, 110):
        assert index.query(fingerprint(_noisy(_music(seed, 5.0), 10.0, seed), SR)) == []
    rng = np.random.default_rng(3)
    assert index.query(fingerprint(rng.standard_normal(5 * SR), SR)) == []  # white noise


def test_add_replace_and_remove() -> None:
    registry = FingerprintIndex()
    excerpt = fingerprint(_music(1, 20.0)[5 * SR : 10 * SR], SR)
    registry.add("a", fingerprint(_music(1, 20.0), SR))
    registry.add("b", fingerprint(_music(2, 20.0), SR))
    assert len(registry) == 2
    assert "a" in registry
    assert registry.ids() == ["a", "b"]
    assert registry.query(excerpt)[0].pattern_id == "a"
    registry.add("a", fingerprint(_music(3, 20.0), SR))  # same id, another recording: replaced
    assert registry.query(excerpt) == []
    registry.add("c", fingerprint(_music(1, 20.0), SR))
    assert registry.query(excerpt)[0].pattern_id == "c"
    registry.remove("c")
    registry.remove("never-added")
    assert "c" not in registry
    assert len(registry) == 2
    assert registry.query(excerpt) == []


def test_density_is_controlled_per_second() -> None:
    y = _music(3, 10.0)
    sparse, dense = fingerprint(y, SR, peaks_per_second=5), fingerprint(y, SR, peaks_per_second=20)
    assert 0 < len(sparse) < len(dense)
    assert len(fingerprint(y, SR, fan_out=3)) < len(fingerprint(y, SR, fan_out=12))
    assert len(dense) <= 10 * 20 * 12  # at most peaks/s x seconds x fan-out
    assert np.all(np.diff(dense.times) >= 0)
    assert dense.hashes.dtype == np.uint32
    assert dense.times.dtype == np.int32
    assert np.all(dense.hashes < 1 << 27)  # anchor bin 10 bits, target bin 10 bits, Δt 7 bits
    assert dense.duration_s == pytest.approx(10.0)
    with pytest.raises(ValueError, match="peaks_per_second"):
        fingerprint(y, SR, peaks_per_second=0)


def _sparse_melody(seed: int, seconds: float) -> np.ndarray:
    """One tone at a time (and a weak octave), 0.3-0.9 s notes, rests: three or four peaks per second."""
    rng = np.random.default_rng(seed)
    y = np.zeros(int(seconds * SR))
    t0 = 0.0
    while t0 < seconds - 0.3:
        length = rng.uniform(0.3, 0.9)
        f = 220.0 * 2 ** (rng.integers(0, 15) / 12)
        t = np.arange(min(int(length * SR), y.size - int(t0 * SR))) / SR
        start = int(t0 * SR)
        y[start : start + t.size] += np.exp(-3 * t) * (
            np.sin(2 * np.pi * f * t) + 0.25 * np.sin(4 * np.pi * f * t)
        )
        t0 += length + rng.choice([0.0, 0.15])
    return y


def test_a_sparse_melody_is_found_at_0_db() -> None:
    """Few peaks: pairs up to 2 s apart and Δt ± 1 frame at the lookup are what find it (make eval: sparse
    tonal 0.74 → 0.98 at 0 dB)."""
    registry = FingerprintIndex()
    for k in range(20):
        registry.add(f"m{k}", fingerprint(_sparse_melody(k, 30.0), SR))
    fp = fingerprint(_sparse_melody(3, 30.0), SR)
    assert np.any((fp.hashes & 127) > 63)  # pairs more than 1 s apart (the 2 s target zone)
    found = 0
    for k, offset_s in [(3, 2.0), (7, 11.3), (11, 20.7), (15, 5.55), (19, 17.1)]:
        y = _sparse_melody(k, 30.0)[int(offset_s * SR) : int((offset_s + 5) * SR)]
        matches = registry.query(fingerprint(_noisy(y, 0.0, k), SR))
        found += bool(matches) and matches[0].pattern_id == f"m{k}"
    assert found == 5


def test_a_recording_registered_twice_matches_under_both_ids(index) -> None:
    """The cohort test counts other recordings against a match, but not a copy at the same offset."""
    registry = FingerprintIndex.from_bytes(index.to_bytes())
    registry.add("r5-again", fingerprint(_music(5, 20.0), SR))
    excerpt = _noisy(_music(5, 20.0)[6 * SR : 11 * SR], 0.0)
    assert {m.pattern_id for m in registry.query(fingerprint(excerpt, SR))} == {"r5", "r5-again"}


def test_a_landmark_packs_anchor_bin_target_bin_and_a_dt_of_up_to_2_s() -> None:
    """27 bits: anchor bin (10) | target bin (10) | Δt in frames (7, up to 127 = 2 s at 62.5 frames/s)."""
    landmarks = sys.modules["harmonic.fingerprint"]._landmarks
    hashes, times = landmarks(np.array([3, 130, 131]), np.array([10, 100, 20]), 12)
    assert hashes.tolist() == [(10 << 17) | (100 << 7) | 127, (100 << 17) | (20 << 7) | 1]
    assert times.tolist() == [3, 130]  # 3 → 131 is 128 frames: beyond the zone


def test_other_sample_rates_find_the_same_recording(index) -> None:
    excerpt = _music(4, 20.0)[3 * SR : 8 * SR]
    matches = index.query(fingerprint(resample(excerpt, SR, 44_100), 44_100))
    assert matches[0].pattern_id == "r4"
    assert matches[0].start_s == pytest.approx(3.0, abs=0.05)


def test_silence_short_and_bad_input() -> None:
    assert len(fingerprint(np.zeros(SR), SR)) == 0
    assert FingerprintIndex().query(fingerprint(_music(1, 3.0), SR)) == []  # empty index
    registry = FingerprintIndex()
    registry.add("x", fingerprint(_music(1, 3.0), SR))
    assert registry.query(fingerprint(np.zeros(SR), SR)) == []  # nothing to look up
    with pytest.raises(InvalidAudio, match="long"):
        fingerprint(np.ones(500), SR)
    with pytest.raises(InvalidAudio, match="NaN"):
        fingerprint(np.full(SR, np.nan), SR)
    with pytest.raises(ValueError, match="mono"):
        fingerprint(np.zeros((SR, 2)), SR)
    other_rate = Fingerprint(np.zeros(3, np.uint32), np.zeros(3, np.int32), frame_rate=100.0, duration_s=1.0)
    with pytest.raises(ValueError, match="frame rate"):
        registry.add("y", other_rate)
    with pytest.raises(ValueError, match="frame rate"):
        registry.query(other_rate)


def test_fingerprint_and_index_round_trip(index) -> None:
    fp = fingerprint(_music(7, 10.0), SR)
    data = fp.to_bytes()
    assert data[:4] == b"HFPT"
    assert Fingerprint.from_bytes(data) == fp
    # 8 bytes per hash, 4 per tonal peak, a bit per energy cell (398 bins x 157 frames of 64 ms), a header
    assert len(data) < 8 * len(fp) + 4 * fp.tonal.size + 398 * 157 // 8 + 400
    assert fp.energy.shape == (398, 157)
    restored = FingerprintIndex.from_bytes(index.to_bytes())
    assert restored.ids() == index.ids()
    excerpt = fingerprint(_noisy(_music(7, 20.0)[2 * SR : 7 * SR], 5.0), SR)
    assert restored.query(excerpt) == index.query(excerpt)
    assert len(FingerprintIndex.from_bytes(FingerprintIndex().to_bytes())) == 0


@pytest.mark.parametrize(
    "corrupt",
    [b"", b"HFPT", b"HFPI\x00\x00\x00\x00", b"HFPT\x10\x00\x00\x00{}", b"HTPL\x02\x00\x00\x00{}"],
)
def test_corrupt_bytes_are_a_value_error(corrupt: bytes) -> None:
    with pytest.raises(ValueError, match=r"serialized|corrupt|tag"):
        Fingerprint.from_bytes(corrupt)
    with pytest.raises(ValueError, match=r"serialized|corrupt|tag"):
        FingerprintIndex.from_bytes(corrupt)


def test_fingerprints_of_the_first_format_ask_to_fingerprint_again() -> None:
    old = pack(b"HFPT", {"frame_rate": 62.5, "duration_s": 1.0}, {"hashes": np.zeros(3, np.uint32)})
    with pytest.raises(ValueError, match="fingerprint the recording again"):
        Fingerprint.from_bytes(old)


def test_fingerprints_of_format_2_ask_to_fingerprint_again() -> None:
    """Format 2 packed Δt in 6 bits (pairs up to 63 frames): its hashes mean something else now."""
    meta = {"format": 2, "frame_rate": 62.5, "duration_s": 1.0}
    arrays = {"hashes": np.zeros(3, np.uint32), "times": np.zeros(3, np.int32)}
    with pytest.raises(ValueError, match=r"format 2 .*fingerprint the recording again"):
        Fingerprint.from_bytes(pack(b"HFPT", meta, arrays))


def test_fingerprints_of_format_3_ask_to_fingerprint_again() -> None:
    """Format 3 had no rendition sketch: a match against it could not be verified."""
    meta = {"format": 3, "frame_rate": 62.5, "duration_s": 1.0}
    arrays = {"hashes": np.zeros(3, np.uint32), "times": np.zeros(3, np.int32)}
    with pytest.raises(ValueError, match=r"format 3 .*fingerprint the recording again"):
        Fingerprint.from_bytes(pack(b"HFPT", meta, arrays))


def _index_bytes(**changes) -> bytes:
    meta = {"format": 4, "patterns": ["a"], "frame_rates": [62.5], "durations": [1.0], "energy_frames": [2]}
    arrays = {
        "lengths": np.array([3]),
        "hashes": np.zeros(3, np.uint32),
        "times": np.zeros(3, np.int32),
        "tonal_lengths": np.array([1]),
        "tonal": np.array([1 * 1024 + 100], np.int32),  # sketch frame 1, bin 100
        "energy_lengths": np.array([100]),  # 398 bins x 2 frames: 796 bits in 100 bytes
        "energy": np.zeros(100, np.uint8),
    }
    meta.update({k: v for k, v in changes.items() if k in meta})
    arrays.update({k: v for k, v in changes.items() if k in arrays})
    return pack(b"HFPI", meta, arrays)


def test_index_with_inconsistent_lengths_is_refused() -> None:
    assert len(FingerprintIndex.from_bytes(_index_bytes())) == 1  # the well-formed blob reads
    for changes in (
        {"lengths": np.array([5])},
        {"tonal_lengths": np.array([2])},
        {"energy_lengths": np.array([101])},
    ):
        with pytest.raises(ValueError, match="lengths"):
            FingerprintIndex.from_bytes(_index_bytes(**changes))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"tonal": np.array([2 * 1024 + 100], np.int32)}, "outside"),  # frame 2 of 2
        ({"tonal": np.array([1024 + 436], np.int32)}, "outside"),  # bin 436: above 3400 Hz
        ({"tonal": np.array([1024 + 7], np.int32)}, "outside"),  # bin 7: below 62.5 Hz
        ({"tonal": np.array([-5], np.int32)}, "outside"),
        ({"energy_frames": [3]}, "energy"),  # 398 x 3 bits need 150 bytes
        ({"energy_frames": [-1]}, "energy_frames"),
        ({"energy_frames": ["2"]}, "energy_frames"),
    ],
)
def test_a_sketch_out_of_range_is_refused(changes, message) -> None:
    with pytest.raises(ValueError, match=message):
        FingerprintIndex.from_bytes(_index_bytes(**changes))


def test_pack_refuses_objects_and_checks_sizes() -> None:
    with pytest.raises(TypeError):
        pack(b"TEST", {}, {"x": np.array([object()])})
    data = pack(b"TEST", {"a": 1}, {"x": np.arange(10, dtype=np.int32), "y": np.ones((2, 3))})
    meta, arrays = unpack(data, b"TEST")
    assert meta == {"a": 1}
    np.testing.assert_array_equal(arrays["x"], np.arange(10))
    assert arrays["y"].shape == (2, 3)
    with pytest.raises(ValueError, match="truncated"):
        unpack(data[:-4], b"TEST")
    with pytest.raises(ValueError, match="trailing"):
        unpack(data + b"\x00", b"TEST")
    assert b"pickle" not in data
    assert b"\x80\x04" not in data[:8]


# One 1024-point frame at 8 kHz is 128 ms: the boundaries below are worked out by hand, not from constants.
@pytest.mark.parametrize(
    ("sr", "shortest"),
    [
        (8_000, 1_024),  # the fingerprint rate itself: one frame
        (16_000, 2_048),  # 1024 * 16000 / 8000
        (48_000, 6_144),  # 1024 * 6
        (44_100, 5_645),  # 1024 * 44100 / 8000 = 5644.8, rounded up
    ],
)
def test_can_fingerprint_says_where_fingerprint_starts_to_work(sr: int, shortest: int) -> None:
    assert harmonic.can_fingerprint(shortest, sr)
    assert harmonic.can_fingerprint(shortest + 1, sr)
    assert not harmonic.can_fingerprint(shortest - 1, sr)
    assert not harmonic.can_fingerprint(0, sr)
    assert isinstance(fingerprint(np.zeros(shortest), sr), Fingerprint)  # silence: a valid, empty fingerprint
    with pytest.raises(InvalidAudio, match="long"):
        fingerprint(np.zeros(shortest - 1), sr)


def test_can_fingerprint_refuses_impossible_arguments() -> None:
    with pytest.raises(ValueError, match="n_samples"):
        harmonic.can_fingerprint(-1, SR)
    with pytest.raises(ValueError, match="sr"):
        harmonic.can_fingerprint(4_096, 0)
    with pytest.raises(ValueError, match="sr"):
        harmonic.can_fingerprint(4_096, float("nan"))  # type: ignore[arg-type]


def test_public_api_is_exported() -> None:
    for name in ("Fingerprint", "FingerprintIndex", "fingerprint", "can_fingerprint"):
        assert name in harmonic.__all__
        assert hasattr(harmonic, name)
