"""Keyword templates: spotting a keyword inside a carrier phrase, rejecting what is not there, edge cases,
serialization, and the subsequence DTW against a plain-Python reference. (Accuracy figures: `make eval`.)"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.io import wavfile

import harmonic
from harmonic import InvalidAudio, Match, Template, make_template, match_templates, resample
from harmonic.templates import DEFAULT_THRESHOLD, path_start, subsequence_dtw

KEYWORDS = Path(__file__).resolve().parents[1] / "data" / "keywords"
SR = 16_000


@cache
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


def _queries(manifest: dict, voice: str) -> list[dict]:
    return [entry for entry in manifest["queries"] if entry["voice"] == voice]


@pytest.mark.parametrize("voice", ["en-gb-scotland", "en-us-nyc+f2"])
def test_each_keyword_is_found_where_it_is_in_a_carrier_phrase(manifest, templates, voice) -> None:
    """Voices that enrolled none of the examples; every keyword ranks first, at its place, above the
    default threshold."""
    for entry in _queries(manifest, voice):
        matches = match_templates(_read(entry["file"]), SR, templates)
        assert matches, entry["file"]
        best = matches[0]
        assert best.pattern_id == entry["keyword"], (entry["file"], matches[:2])
        assert DEFAULT_THRESHOLD <= best.score <= 1.0
        assert best.start_s == pytest.approx(entry["start_s"], abs=0.25)
        assert best.end_s == pytest.approx(entry["end_s"], abs=0.25)


def test_a_keyword_that_is_not_said_is_not_matched(manifest, templates) -> None:
    for entry in _queries(manifest, "en-gb-scotland")[:5]:
        others = {word: examples for word, examples in templates.items() if word != entry["keyword"]}
        assert match_templates(_read(entry["file"]), SR, others) == [], entry["file"]


@pytest.mark.parametrize("index", [1, 2, 4, 6, 10, 11])
def test_utterances_without_any_keyword_match_nothing(manifest, templates, index) -> None:
    entry = manifest["negatives"][index]
    assert match_templates(_read(entry["file"]), SR, templates) == [], entry["text"]


def test_found_in_white_noise_at_20_db(manifest, templates) -> None:
    rng = np.random.default_rng(7)
    for entry in _queries(manifest, "en-us-nyc+f2")[:4]:
        y = _read(entry["file"])
        noise = rng.standard_normal(y.size) * np.sqrt(np.mean(y**2) / 10 ** (20 / 10))
        best = match_templates(y + noise, SR, templates)[0]
        assert best.pattern_id == entry["keyword"]
        assert best.start_s == pytest.approx(entry["start_s"], abs=0.25)


def test_matches_are_sorted_unique_and_thresholded(manifest, templates) -> None:
    query = _read(manifest["queries"][0]["file"])
    everything = match_templates(query, SR, templates, threshold=0.0)
    assert len(everything) == len(templates)
    assert len({match.pattern_id for match in everything}) == len(everything)
    assert [match.score for match in everything] == sorted((m.score for m in everything), reverse=True)
    assert all(isinstance(match, Match) and 0.0 <= match.score <= 1.0 for match in everything)
    assert match_templates(query, SR, templates, threshold=1.01) == []
    # one example or several per pattern id: the best example counts
    single = {word: examples[0] for word, examples in templates.items()}
    assert match_templates(query, SR, single, threshold=0.0)[0].pattern_id in templates


def test_other_sample_rates_are_resampled(manifest, templates) -> None:
    example = _read(manifest["enrol"][0]["file"])
    at_16k = make_template(example, SR)
    at_44k = make_template(resample(example, SR, 44_100), 44_100)
    assert abs(at_44k.frames - at_16k.frames) <= 2
    entry = manifest["queries"][0]
    best = match_templates(resample(_read(entry["file"]), SR, 48_000), 48_000, templates)[0]
    assert best.pattern_id == entry["keyword"]
    assert best.start_s == pytest.approx(entry["start_s"], abs=0.25)


def test_template_round_trips_and_rejects_other_bytes(manifest) -> None:
    template = make_template(_read(manifest["enrol"][3]["file"]), SR)
    data = template.to_bytes()
    assert data[:4] == b"HTPL"
    restored = Template.from_bytes(data)
    assert restored == template
    assert restored.duration_s == template.duration_s
    assert restored.warps == template.warps
    # a one-second word: about 100 kB (6 kB of it the speech embeddings, 37 kB Whisper's encoder rows)
    assert len(data) < 110_000
    with pytest.raises(ValueError, match=r"truncated|corrupt|trailing"):
        Template.from_bytes(data[:-10])
    with pytest.raises(ValueError, match="tag"):
        Template.from_bytes(b"HFPT" + data[4:])


def test_templates_of_the_first_format_ask_to_register_again() -> None:
    from harmonic.serialization import pack

    old = pack(b"HTPL", {"duration_s": 0.5}, {"features": np.zeros((50, 16), dtype=np.float32)})
    with pytest.raises(ValueError, match="register the keyword again"):
        Template.from_bytes(old)
    # format 2 (mel power, from before the speech embeddings) is still read, without them: a deployment's
    # stored templates keep matching after an upgrade, none recomputed at the match stage's cold start
    mel_only = {"format": 2, "duration_s": 0.5, "warps": [1.0]}
    second = pack(b"HTPL", mel_only, {"mel_db": np.full((1, 40, 50), -20.0, dtype=np.float32)})
    read = Template.from_bytes(second)
    assert read.embedding is None
    assert read.frames == 50
    # format 3 (with the speech embeddings, from before Whisper's encoder rows) is read without the rows
    third = pack(
        b"HTPL",
        {**mel_only, "format": 3},
        {
            "mel_db": np.full((1, 40, 50), -20.0, dtype=np.float32),
            "embedding": np.eye(3, 96, dtype=np.float32),
        },
    )
    read = Template.from_bytes(third)
    assert read.embedding is not None
    assert read.embedding.shape == (3, 96)
    assert read.whisper is None
    with pytest.raises(ValueError, match=r"format 5 is not supported.*register the keyword again"):
        Template.from_bytes(pack(b"HTPL", {**mel_only, "format": 5}, {"mel_db": np.zeros((1, 40, 50))}))


def test_a_template_keeps_its_examples_speech_embeddings_and_rejects_bad_ones(manifest) -> None:
    import dataclasses

    from harmonic.speech_embedding import embed

    y = _read(manifest["enrol"][3]["file"])
    template = make_template(y, SR)
    assert template.embedding is not None
    assert template.embedding.shape[1] == 96
    # of the speech only: no longer than the whole example's, one row per 80 ms of it
    assert template.embedding.shape[0] <= embed(y, SR).shape[0]
    assert abs(template.embedding.shape[0] - round(template.duration_s / 0.08)) <= 2
    without = dataclasses.replace(template, embedding=None)
    assert Template.from_bytes(without.to_bytes()).embedding is None
    assert without != template
    bad_embeddings = (np.zeros((3, 95)), np.full((3, 96), np.nan), np.zeros(96))
    for bad in (array.astype(np.float32) for array in bad_embeddings):
        with pytest.raises(ValueError, match="corrupt template: embedding"):
            Template.from_bytes(dataclasses.replace(template, embedding=bad).to_bytes())


def test_a_template_keeps_its_examples_whisper_rows_and_rejects_bad_ones(manifest) -> None:
    import dataclasses

    from harmonic.serialization import pack, unpack

    y = _read(manifest["enrol"][3]["file"])
    template = make_template(y, SR)
    assert template.whisper is not None
    # one row per 20 ms of the trimmed speech, centred unit rows
    assert template.whisper.shape[1] == 512
    assert abs(template.whisper.shape[0] - round(template.duration_s / 0.02)) <= 2
    assert np.allclose(np.linalg.norm(template.whisper, axis=1), 1.0, atol=2e-3)
    assert Template.from_bytes(template.to_bytes()) == template  # float16 on disk, and equal read back
    # rows another encoder depth or centre made (the sixth layer's, stored before their id was) are not
    # compared with a clip's fifth-layer rows: the template is read without them
    meta, arrays = unpack(template.to_bytes(), b"HTPL")
    assert meta["whisper_rows"] == "whisper-base/5"
    for other in ({k: v for k, v in meta.items() if k != "whisper_rows"}, {**meta, "whisper_rows": "x/6"}):
        read = Template.from_bytes(pack(b"HTPL", other, arrays))
        assert read.whisper is None
        assert read.embedding is not None
    without = dataclasses.replace(template, whisper=None)
    assert Template.from_bytes(without.to_bytes()).whisper is None
    assert without != template
    # speech longer than the encoder reads (29.5 s): a template all the same, without rows
    babble = np.tile(_read(manifest["enrol"][3]["file"]), 60)[: 30 * SR]
    assert make_template(babble, SR).whisper is None
    for bad in (np.zeros((3, 511)), np.full((3, 512), np.inf), np.zeros(512), np.zeros((0, 512))):
        with pytest.raises(ValueError, match="corrupt template: whisper"):
            Template.from_bytes(dataclasses.replace(template, whisper=bad.astype(np.float32)).to_bytes())


@pytest.mark.parametrize(
    "corrupt",
    [b"", b"HTPL", b"XXXX\x00\x00\x00\x00", b"HTPL\xff\xff\xff\x00{}", b"HTPL\x02\x00\x00\x00{}"],
)
def test_corrupt_template_bytes_are_a_value_error(corrupt: bytes) -> None:
    with pytest.raises(ValueError, match=r"serialized|corrupt|tag"):
        Template.from_bytes(corrupt)


def test_make_template_rejects_silence_short_and_bad_input() -> None:
    with pytest.raises(InvalidAudio, match="silent"):
        make_template(np.zeros(SR), SR)
    with pytest.raises(InvalidAudio, match="long"):
        make_template(np.ones(100), SR)
    burst = np.zeros(SR)
    burst[8000:8800] = np.sin(np.arange(800) * 0.3)  # 50 ms of sound: too little speech
    with pytest.raises(InvalidAudio, match="speech"):
        make_template(burst, SR)
    with pytest.raises(InvalidAudio, match="NaN"):
        make_template(np.full(SR, np.nan), SR)
    with pytest.raises(ValueError, match="mono"):
        make_template(np.zeros((SR, 2)), SR)


def test_match_templates_edge_cases(manifest, templates) -> None:
    assert match_templates(np.zeros(SR), SR, templates) == []  # digital silence
    assert match_templates(_read(manifest["queries"][0]["file"]), SR, {}) == []
    short = _read(manifest["queries"][0]["file"])[: int(0.2 * SR)]  # shorter than half of any template
    assert match_templates(short, SR, templates) == []
    with pytest.raises(InvalidAudio, match="long"):
        match_templates(np.zeros(100), SR, templates)
    with pytest.raises(InvalidAudio, match="NaN"):
        match_templates(np.full(SR, np.inf), SR, templates)
    with pytest.raises(TypeError, match="Template"):
        match_templates(np.zeros(SR) + 0.1, SR, {"x": [b"not a template"]})  # type: ignore[list-item]
    rng = np.random.default_rng(1)
    assert match_templates(0.1 * rng.standard_normal(2 * SR), SR, templates) == []  # noise only


def _reference_dtw(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The same recursion, one cell at a time."""
    n, m = cost.shape
    D = np.full((n, m), np.inf)
    S = np.zeros((n, m), dtype=np.int64)
    D[0] = cost[0]
    S[0] = np.arange(m)
    for i in range(1, n):
        for j in range(m):
            options = []
            if j >= 1:
                options.append((D[i - 1, j - 1], S[i - 1, j - 1]))
            if j >= 2:
                options.append((D[i - 1, j - 2], S[i - 1, j - 2]))
            if i >= 2 and j >= 1:
                options.append((D[i - 2, j - 1] + cost[i - 1, j], S[i - 2, j - 1]))
            if options:
                value, start = min(options, key=lambda option: option[0])
                D[i, j], S[i, j] = value + cost[i, j], start
    return D[n - 1] / n, S[n - 1]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(1, 7), min_size=1, max_size=4),
    st.integers(1, 12),
    st.integers(0, 2**31 - 1),
)
def test_subsequence_dtw_equals_the_cell_by_cell_recursion(lengths: list[int], m: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_max = max(lengths)
    cost = rng.uniform(0, 2, size=(len(lengths), n_max, m)).round(1)  # rounded: ties happen
    mean_cost, accumulated = subsequence_dtw(cost, np.array(lengths))
    # the start of every template's path ending at each query frame, traced back from the accumulated cost
    ends = [np.full(len(lengths), end) for end in range(m)]
    start = np.stack([path_start(accumulated, cost, np.array(lengths), at) for at in ends], axis=1)
    for b, n in enumerate(lengths):
        expected_cost, expected_start = _reference_dtw(cost[b, :n])
        np.testing.assert_array_equal(mean_cost[b], expected_cost)
        finite = np.isfinite(expected_cost)
        # ties go the same way: diagonal first, then the skipped query frame, then the two template rows
        np.testing.assert_array_equal(start[b][finite], expected_start[finite])


def test_subsequence_dtw_keeps_float32() -> None:
    rng = np.random.default_rng(3)
    cost = rng.uniform(0, 2, size=(3, 6, 20))
    mean64, _ = subsequence_dtw(cost, np.array([6, 4, 2]))
    mean32, accumulated = subsequence_dtw(cost.astype(np.float32), np.array([6, 4, 2]))
    assert mean32.dtype == np.float32
    assert accumulated.dtype == np.float32
    np.testing.assert_allclose(mean32, mean64, rtol=1e-5)


def test_match_is_a_frozen_record() -> None:
    match = Match("p", 0.9, 1.0, 1.5)
    assert match.to_dict() == {"pattern_id": "p", "score": 0.9, "start_s": 1.0, "end_s": 1.5}
    with pytest.raises(AttributeError):
        match.score = 0.1  # type: ignore[misc]


def test_public_api_is_exported() -> None:
    for name in ("Match", "Template", "make_template", "match_templates"):
        assert name in harmonic.__all__
        assert hasattr(harmonic, name)
