"""harmonic.speech_embedding: the numpy port of the speech-embedding network, and how it compares clips."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.io import wavfile

from harmonic import speech_embedding

DATA = Path(__file__).resolve().parents[1] / "data"


def _read(path: Path) -> tuple[np.ndarray, int]:
    sr, data = wavfile.read(path)
    return data.astype(np.float64) / 32768.0, sr


def test_the_numpy_port_computes_what_the_onnx_models_compute() -> None:
    """tests/data/speech_embedding_reference.npz is onnxruntime's output of the published ONNX models for
    this clip (scripts/extract_speech_embedding.py): a wrong weight, window, padding or layer fails here."""
    reference = np.load(DATA / "speech_embedding_reference.npz", allow_pickle=False)
    y, sr = _read(DATA / "keywords" / "query_weather_0.wav")
    log_mel = speech_embedding.log_mel(speech_embedding.prepare(y, sr))
    assert log_mel.shape == reference["log_mel"].shape
    assert np.abs(log_mel - reference["log_mel"]).max() < 0.01  # dB; float32 against float64
    embeddings = speech_embedding.network(log_mel / 10.0 + 2.0)
    assert embeddings.shape == reference["embeddings"].shape == (30, 96)
    scale = np.abs(reference["embeddings"]).max()
    assert np.abs(embeddings - reference["embeddings"]).max() < 1e-4 * scale


def test_one_unit_embedding_every_80_ms_whatever_the_level_and_rate() -> None:
    y, sr = _read(DATA / "keywords" / "query_weather_0.wav")
    vectors = speech_embedding.embed(y, sr)
    # 0.4 s of silence each side; 25 ms... frames every 10 ms; one embedding per 76 frames, every 8
    frames = 1 + (y.size + 2 * 6400 - 512) // 160
    assert vectors.shape == ((frames - 76) // 8 + 1, 96)
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.allclose(speech_embedding.embed(0.05 * y, sr), vectors, atol=1e-4)  # the level does not count
    from harmonic.resample import resample

    at_48k = speech_embedding.embed(resample(y, sr, 48_000), 48_000)
    assert at_48k.shape == vectors.shape
    assert float(np.mean(np.sum(at_48k * vectors, axis=1))) > 0.98  # cosine similarity
    # a clip far shorter than one window still gets one row (the padding makes the window)
    assert speech_embedding.embed(y[:800], sr).shape == (1, 96)
    # digital silence gives a finite embedding, not a division by zero
    assert np.all(np.isfinite(speech_embedding.embed(np.zeros(16_000), 16_000)))
    from harmonic import InvalidAudio

    for bad in (np.array([]), np.full(1600, np.nan), np.zeros((1600, 2)), np.array(["a"] * 1600)):
        with pytest.raises(InvalidAudio, match=r"speech_embedding\.embed"):
            speech_embedding.embed(bad, 16_000)


def test_an_example_scores_highest_where_it_is_said_and_zero_in_a_clip_too_short() -> None:
    y, sr = _read(DATA / "keywords" / "query_weather_0.wav")
    query = speech_embedding.embed(y, sr)
    inside = query[10:18]
    shuffled = np.random.default_rng(0).permutation(query)[:8]
    scores = speech_embedding.best_scores(query, [inside, shuffled], background_weight=0.0)
    assert scores[0] == pytest.approx(1.0, abs=1e-5)  # found exactly: cosine distance 0
    assert 0.0 <= scores[1] < scores[0]
    normalized = speech_embedding.best_scores(query, [inside, shuffled])
    assert 0.0 <= normalized[1] < normalized[0] < scores[0]  # the same order, less credit for mere speech
    # the query must be at least half as long as the example (the steps allow twice the speed at most)
    assert speech_embedding.best_scores(query[:3], [inside])[0] == 0.0
    assert speech_embedding.best_scores(query, []).shape == (0,)


def test_the_background_is_average_speech_of_any_words_and_voices() -> None:
    """speech_embedding_background.npy is the mean embedding of the tuned split's enrolment examples (12
    words, 3 engines). As a background model it must describe speech in general: its direction agrees with
    the mean of the committed held-out examples (10 other words, 3 other voices) to a cosine of 0.987
    (measured 2026-12-01; floor 0.95; a random direction scores about 0.2), and, as a mean of unit
    vectors, its length is under 1 (0.82)."""
    manifest = json.loads((DATA / "xspeaker" / "manifest.json").read_text())
    windows = []
    for entry in manifest["enrol"]:
        y, sr = _read(DATA / "xspeaker" / entry["file"])
        windows.append(speech_embedding.embed(y, sr))
    held_out_mean = np.concatenate(windows).mean(axis=0)
    background = speech_embedding.background()
    assert background.shape == (96,)
    cosine = held_out_mean @ background / (np.linalg.norm(held_out_mean) * np.linalg.norm(background))
    assert cosine > 0.95, cosine
    assert 0.5 < np.linalg.norm(background) < 1.0


def test_the_same_word_by_another_engine_is_closer_than_other_words_by_the_same_engine() -> None:
    """Over the committed held-out enrolment examples (tests/data/xspeaker: 10 words, each by espeak-ng,
    flite and festival), an example's best score against its word's examples by the other two engines beats
    its best score against the other words by its own engine for 24 of 30 examples (measured 2026-12-01;
    the template matcher gets 24 too on these isolated words: the embedding's gain is in sentences and
    under noise, gated in test_keyword_xspeaker.py). Floor: 21 of 30."""
    manifest = json.loads((DATA / "xspeaker" / "manifest.json").read_text())
    by_word: dict[str, dict[str, np.ndarray]] = {}
    for entry in manifest["enrol"]:
        y, sr = _read(DATA / "xspeaker" / entry["file"])
        by_word.setdefault(entry["keyword"], {})[entry["engine"]] = speech_embedding.embed(y, sr)
    wins, total = 0, 0
    for word, engines in by_word.items():
        for engine, example in engines.items():
            same_word = [e for other, e in engines.items() if other != engine]
            same_engine = [others[engine] for w, others in by_word.items() if w != word]
            # the example's embeddings as the query, the others as the examples to find in it
            wins += bool(
                speech_embedding.best_scores(example, same_word).max()
                > speech_embedding.best_scores(example, same_engine).max()
            )
            total += 1
    assert total == 30
    assert wins >= 21, wins


def test_long_clips_are_computed_in_bounded_blocks_with_the_same_result(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Clips may be 600 s long: the STFT, the network and the DTW run in blocks (a few MB each, not hundreds),
    and the blocks' seams change nothing."""
    y, sr = _read(DATA / "keywords" / "query_weather_0.wav")
    whole = speech_embedding.embed(y, sr)
    examples = [whole[2:9], whole[10:14], whole[5:20]]
    scores = speech_embedding.best_scores(whole, examples)
    monkeypatch.setattr(speech_embedding, "_MEL_BLOCK", 37)
    monkeypatch.setattr(speech_embedding, "_WINDOWS_PER_PASS", 4)
    monkeypatch.setattr(speech_embedding, "_COST_BUDGET", 1)  # one example per pass
    blocked = speech_embedding.embed(y, sr)
    assert blocked.shape == whole.shape
    assert np.abs(blocked - whole).max() < 1e-5
    assert np.allclose(speech_embedding.best_scores(blocked, examples), scores, atol=1e-5)
    assert speech_embedding.best_scores(whole[:0], examples).tolist() == [0.0, 0.0, 0.0]


def test_an_examples_span_is_its_paths_first_and_last_window_in_seconds() -> None:
    """best_span: the best example's path from query row j0 to j1 is the keyword from j0 · 0.08 s to
    j1 · 0.08 + 0.775 − 0.8 + 0.04 s (module docstring: the windows' width, the padding, half a hop)."""
    rng = np.random.default_rng(8)
    query = rng.standard_normal((40, 96)).astype(np.float32)
    query /= np.linalg.norm(query, axis=1, keepdims=True)
    elsewhere = rng.standard_normal((6, 96)).astype(np.float32)
    elsewhere /= np.linalg.norm(elsewhere, axis=1, keepdims=True)
    score, start_s, end_s = speech_embedding.best_span(query, [elsewhere, query[10:18].copy()])
    assert start_s == pytest.approx(0.80)  # row 10
    assert end_s == pytest.approx(1.375)  # row 17: 1.36 + 0.015
    assert score == pytest.approx(speech_embedding.best_scores(query, [query[10:18].copy()])[0], abs=1e-5)
    with pytest.raises(ValueError, match="under half as long"):
        speech_embedding.best_span(query[:3], [query[10:18].copy()])
    with pytest.raises(ValueError, match="needs examples"):
        speech_embedding.best_span(query, [])
