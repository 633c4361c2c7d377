"""harmonic.whisper_encoder: the numpy port of Whisper base's encoder, and how it compares clips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.io import wavfile

from harmonic import whisper_encoder

DATA = Path(__file__).resolve().parents[1] / "data"


def _read(path: Path) -> tuple[np.ndarray, int]:
    sr, data = wavfile.read(path)
    return data.astype(np.float64) / 32768.0, sr


def test_the_front_end_is_whispers_log_mel() -> None:
    """Whisper's log_mel_spectrogram written with librosa's STFT (centred, reflect-padded, periodic Hann),
    its last frame dropped as Whisper drops it: the same frames to float32 precision."""
    import librosa

    y, _ = _read(DATA / "keywords" / "query_weather_0.wav")
    spectrum = librosa.stft(y, n_fft=400, hop_length=160, window="hann", center=True, pad_mode="reflect")
    power = np.abs(spectrum) ** 2
    mel = np.log10(np.maximum(librosa.filters.mel(sr=16_000, n_fft=400, n_mels=80) @ power[:, :-1], 1e-10))
    expected = (np.maximum(mel, mel.max() - 8.0) + 4.0) / 4.0
    frames = whisper_encoder.log_mel(y)
    assert frames.shape == (80, (y.size // 160) // 2 * 2)
    assert np.abs(frames - expected[:, : frames.shape[1]]).max() < 1e-4


def test_the_numpy_port_computes_what_ctranslate2_computes() -> None:
    """tests/data/whisper_encoder_reference.npz is CTranslate2's encoder output (float32, from the float16
    weights) for this clip in Whisper's 30 s window (scripts/extract_whisper_encoder.py). The port runs the
    int8 weights: every row within a cosine of 0.995 of CTranslate2's; a wrong weight, layer, head split or
    position table gives rows far from it."""
    reference = np.load(DATA / "whisper_encoder_reference.npz", allow_pickle=False)
    y, sr = _read(DATA / "keywords" / "query_weather_0.wav")
    features = whisper_encoder.log_mel(np.pad(y, (0, 30 * sr - y.size)))
    assert features.shape == (80, 3000)
    assert np.abs(features[:, : reference["features"].shape[1]] - reference["features"]).max() < 1e-4
    rows = whisper_encoder.network(features, depth=6)  # the whole encoder, as CTranslate2 runs it
    assert rows.shape == (1500, 512)
    expected = reference["encoded"]
    assert expected.shape == (-(-y.size // 320), 512)
    got = rows[: expected.shape[0]]
    cosine = np.sum(got * expected, axis=1) / np.linalg.norm(got, axis=1) / np.linalg.norm(expected, axis=1)
    assert cosine.min() > 0.995


def test_clips_are_read_after_the_fifth_of_six_layers() -> None:
    """The service compares the fifth layer's rows (docs/matching.md, "The encoder's fifth layer, and the
    synthesized examples' rows"): the clip's rows are those of five layers and the final norm, not the whole
    encoder's; no depth outside 1..6."""
    y, sr = _read(DATA / "keywords" / "query_weather_0.wav")
    padded = np.concatenate([np.zeros(1600), y, np.zeros(1600 + 640)])
    rows = whisper_encoder.encode_raw(y, sr)
    fifth = whisper_encoder.network(whisper_encoder.log_mel(padded), depth=5)[5 : 5 + rows.shape[0]]
    sixth = whisper_encoder.network(whisper_encoder.log_mel(padded), depth=6)[5 : 5 + rows.shape[0]]
    assert np.allclose(rows, fifth, atol=1e-5)
    assert not np.allclose(rows, sixth, atol=0.1)
    for depth in (0, 7):
        with pytest.raises(ValueError, match="1 to 6 layers"):
            whisper_encoder.network(whisper_encoder.log_mel(padded), depth=depth)


def test_one_unit_row_every_20_ms_whatever_the_level_and_rate() -> None:
    y, sr = _read(DATA / "keywords" / "query_weather_0.wav")
    rows = whisper_encoder.encode(y, sr)
    assert rows.shape == (-(-y.size // 320), 512)
    assert rows.dtype == np.float32
    assert np.allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-5)
    # log-mel relative to the clip's peak: nearly level-free (only the 1e-10 power floor sees the level)
    quiet = whisper_encoder.encode(0.05 * y, sr)
    assert float(np.mean(np.sum(quiet * rows, axis=1))) > 0.9
    from harmonic.resample import resample

    at_48k = whisper_encoder.encode(resample(y, sr, 48_000), 48_000)
    assert at_48k.shape == rows.shape
    assert float(np.mean(np.sum(at_48k * rows, axis=1))) > 0.95
    assert whisper_encoder.encode(y[:100], sr).shape == (1, 512)
    assert np.all(np.isfinite(whisper_encoder.encode(np.zeros(16_000), 16_000)))
    # the longest clip it reads fits the position table with its padding; a sample more is refused
    longest = int(29.5 * 16_000)
    assert whisper_encoder.encode(np.zeros(longest), 16_000).shape == (-(-longest // 320), 512)
    with pytest.raises(ValueError, match=r"at most 29\.5 s"):
        whisper_encoder.encode(np.zeros(longest + 1), 16_000)
    from harmonic import InvalidAudio

    for bad in (np.array([]), np.full(1600, np.nan), np.zeros((1600, 2))):
        with pytest.raises(InvalidAudio, match=r"whisper_encoder\.encode"):
            whisper_encoder.encode(bad, 16_000)


def test_an_example_scores_highest_where_its_word_is_said() -> None:
    """The example "weather" said by one synthetic voice, found in a sentence said by another: it fits that
    sentence better than another keyword's example does, and fits it better than a sentence without it."""
    from harmonic.templates import speech_of_example

    def example(name: str) -> np.ndarray:
        y, sr = _read(DATA / "keywords" / name)
        return whisper_encoder.encode(speech_of_example(y, sr), 16_000)

    query = whisper_encoder.encode(*_read(DATA / "keywords" / "query_weather_0.wav"))
    other = whisper_encoder.encode(*_read(DATA / "keywords" / "query_computer_0.wav"))
    weather, computer = example("enrol_weather_1.wav"), example("enrol_computer_1.wav")
    scores = whisper_encoder.best_scores(query, [weather, computer])
    assert scores.shape == (2,)
    assert np.all((scores >= 0) & (scores <= 1))
    assert scores[0] > scores[1] + 0.05
    assert scores[0] > whisper_encoder.best_scores(other, [weather])[0] + 0.05
    # an example twice as long as the query cannot fit in it: 0, not an error
    assert whisper_encoder.best_scores(query[:3], [weather])[0] == 0.0
    assert whisper_encoder.best_scores(query, []).shape == (0,)


def test_stored_rows_are_checked() -> None:
    good = np.ones((4, 512), dtype=np.float16)
    assert whisper_encoder.checked(good, "rows").dtype == np.float32
    for bad in (np.ones((0, 512)), np.ones((4, 96)), np.full((4, 512), np.nan), np.ones(512)):
        with pytest.raises(ValueError, match="corrupt: rows"):
            whisper_encoder.checked(bad, "corrupt: rows")


def test_the_center_is_the_mean_row_of_speech() -> None:
    mean = whisper_encoder.center()
    assert mean.shape == (512,)
    assert np.all(np.isfinite(mean))
    # speech rows lie close to it: its direction is what every row of speech shares
    y, sr = _read(DATA / "keywords" / "query_weather_0.wav")
    raw = whisper_encoder.encode_raw(y, sr)
    cosine = raw @ mean / np.linalg.norm(raw, axis=1) / np.linalg.norm(mean)
    assert float(np.median(cosine)) > 0.3
