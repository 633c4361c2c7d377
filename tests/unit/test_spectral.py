"""Spectral descriptors against librosa 0.11 (the definitions they copy), plus analytic checks."""

from __future__ import annotations

import librosa
import numpy as np
import pytest

import harmonic
from harmonic import InvalidAudio
from harmonic.spectral import chroma_filterbank, hz_to_mel, mel_filterbank, mel_to_hz

SR = 16_000


def _signals(speech_clips, rng) -> dict[str, tuple[np.ndarray, int]]:
    t = np.arange(SR) / SR
    signals = {f"speech{i}": (y.astype(np.float32), sr) for i, (y, sr) in enumerate(speech_clips)}
    signals["noise"] = ((0.1 * rng.standard_normal(SR)).astype(np.float32), SR)
    signals["tone"] = ((0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), SR)
    signals["chirp"] = (librosa.chirp(fmin=60, fmax=7_500, sr=SR, duration=1.0).astype(np.float32), SR)
    speech44 = librosa.resample(speech_clips[0][0], orig_sr=SR, target_sr=44_100).astype(np.float32)
    signals["speech_44k"] = (speech44, 44_100)
    signals["short"] = (signals["speech0"][0][:300], SR)
    return signals


@pytest.fixture(scope="module")
def signals(speech_clips) -> dict[str, tuple[np.ndarray, int]]:
    return _signals(speech_clips, np.random.default_rng(99))


SIGNAL_NAMES = ["speech0", "speech1", "speech2", "noise", "tone", "chirp", "speech_44k", "short"]


@pytest.mark.parametrize("name", SIGNAL_NAMES)
def test_mfcc_matches_librosa(signals, name) -> None:
    y, sr = signals[name]
    ours = harmonic.mfcc(y, sr)
    reference = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=13, n_fft=512, hop_length=160, n_mels=40)
    assert ours.shape == reference.shape
    worst = np.abs(ours - reference).max()
    assert worst <= 0.05, f"max |Δ| = {worst:.4f} on {name}"


@pytest.mark.parametrize(
    ("n_mfcc", "n_fft", "hop_length", "n_mels"),
    [(20, 1024, 256, 64), (13, 400, 160, 26), (40, 2048, 512, 128), (1, 256, 64, 20)],
)
def test_mfcc_parameter_sweep(signals, n_mfcc, n_fft, hop_length, n_mels) -> None:
    y, sr = signals["speech1"]
    ours = harmonic.mfcc(y, sr, n_mfcc=n_mfcc, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels)
    reference = librosa.feature.mfcc(
        y=y, sr=sr, n_mfcc=n_mfcc, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels
    )
    assert ours.shape == reference.shape
    assert np.abs(ours - reference).max() <= 0.05


@pytest.mark.parametrize("name", ["speech0", "chirp", "noise", "short"])
def test_stft_power_frames_match_librosa(signals, name) -> None:
    y, _ = signals[name]
    ours = harmonic.stft_power(y.astype(np.float64), n_fft=512, hop_length=160)
    reference = np.abs(librosa.stft(y.astype(np.float64), n_fft=512, hop_length=160)) ** 2
    assert ours.shape == reference.shape == (257, 1 + y.size // 160)
    np.testing.assert_allclose(ours, reference, rtol=1e-9, atol=1e-12 * reference.max())
    single = harmonic.stft_power(y.astype(np.float32), n_fft=512, hop_length=160)
    assert single.dtype == np.float32
    np.testing.assert_allclose(single, reference, rtol=1e-3, atol=1e-6 * reference.max())


@pytest.mark.parametrize(("sr", "n_fft", "n_mels", "fmin", "fmax"), [
    (16_000, 512, 40, 0.0, None), (44_100, 2048, 128, 0.0, None), (22_050, 1024, 64, 50.0, 8_000.0),
])  # fmt: skip
def test_mel_filterbank_matches_librosa(sr, n_fft, n_mels, fmin, fmax) -> None:
    ours = mel_filterbank(sr, n_fft, n_mels, fmin, fmax)
    reference = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-6)
    assert not ours.flags.writeable


def test_mel_scale_is_slaney_and_invertible() -> None:
    hz = np.array([0.0, 200.0 / 3, 1_000.0, 4_000.0, 8_000.0])
    np.testing.assert_allclose(hz_to_mel(hz), librosa.hz_to_mel(hz), rtol=1e-12)
    assert hz_to_mel(1_000.0) == pytest.approx(15.0)
    np.testing.assert_allclose(mel_to_hz(hz_to_mel(hz)), hz, rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("name", ["speech0", "tone", "chirp", "speech_44k", "noise"])
def test_chroma_matches_librosa_chroma_stft(signals, name) -> None:
    y, sr = signals[name]
    ours = harmonic.chroma(y, sr)
    reference = librosa.feature.chroma_stft(y=y, sr=sr, tuning=0.0)
    assert ours.shape == reference.shape
    assert np.abs(ours - reference).max() < 1e-4


def test_chroma_filterbank_matches_librosa() -> None:
    np.testing.assert_allclose(
        chroma_filterbank(22_050.0, 2048),
        librosa.filters.chroma(sr=22_050, n_fft=2048, tuning=0.0),
        atol=1e-6,
    )


def test_chroma_of_a_tone_peaks_at_its_pitch_class() -> None:
    t = np.arange(SR) / SR
    for freq, pitch_class in [(440.0, 9), (261.63, 0), (392.0, 7)]:
        frames = harmonic.chroma(np.sin(2 * np.pi * freq * t), SR)
        assert np.argmax(frames.mean(axis=1)) == pitch_class


@pytest.mark.parametrize("name", ["speech0", "speech2", "noise", "chirp", "speech_44k"])
def test_centroid_and_flatness_match_librosa(signals, name) -> None:
    y, sr = signals[name]
    centroid = harmonic.spectral_centroid(y, sr)
    flatness = harmonic.spectral_flatness(y, sr)
    ref_centroid = librosa.feature.spectral_centroid(y=y, sr=sr, n_fft=512, hop_length=160)[0]
    ref_flatness = librosa.feature.spectral_flatness(y=y, n_fft=512, hop_length=160)[0]
    np.testing.assert_allclose(centroid, ref_centroid, atol=0.01)
    np.testing.assert_allclose(flatness, ref_flatness, atol=1e-4)


def test_centroid_and_flatness_analytic(rng) -> None:
    t = np.arange(SR) / SR
    tone = np.sin(2 * np.pi * 1_000.0 * t)
    centroid = harmonic.spectral_centroid(tone, SR)[5:-5]
    assert np.abs(centroid - 1_000.0).max() < 25.0
    assert harmonic.spectral_flatness(tone, SR)[5:-5].max() < 0.01
    noise_flatness = harmonic.spectral_flatness(rng.standard_normal(SR), SR)[5:-5]
    # Exponentially distributed periodogram bins: E[geometric] / E[arithmetic] = exp(-γ) ≈ 0.56.
    assert 0.45 < np.median(noise_flatness) < 0.65


def test_silence_gives_floor_values_not_nans() -> None:
    silence = np.zeros(SR, dtype=np.float32)
    assert np.all(harmonic.spectral_centroid(silence, SR) == 0.0)
    assert np.all(harmonic.chroma(silence, SR) == 0.0)
    coefficients = harmonic.mfcc(silence, SR)
    assert np.isfinite(coefficients).all()
    np.testing.assert_allclose(
        coefficients,
        librosa.feature.mfcc(y=silence, sr=SR, n_mfcc=13, n_fft=512, hop_length=160, n_mels=40),
        atol=1e-4,
    )


def test_precomputed_power_spectrogram_gives_the_same_numbers(signals) -> None:
    y, sr = signals["speech1"]
    power = harmonic.stft_power(y, n_fft=512, hop_length=160)
    np.testing.assert_array_equal(harmonic.mfcc(None, sr, S=power), harmonic.mfcc(y, sr))
    np.testing.assert_array_equal(
        harmonic.spectral_centroid(None, sr, S=power), harmonic.spectral_centroid(y, sr)
    )
    np.testing.assert_array_equal(
        harmonic.spectral_flatness(None, sr, S=power), harmonic.spectral_flatness(y, sr)
    )


def test_power_to_db_matches_librosa(rng) -> None:
    S = rng.exponential(size=(40, 100)) * 10.0 ** rng.uniform(-12, 0, size=(40, 100))
    for kwargs in [{}, {"ref": np.max}, {"top_db": None}, {"ref": 2.0, "amin": 1e-5, "top_db": 40.0}]:
        np.testing.assert_allclose(
            harmonic.power_to_db(S, **kwargs), librosa.power_to_db(S, **kwargs), atol=1e-9
        )
    with pytest.raises(ValueError, match="amin"):
        harmonic.power_to_db(S, amin=0)


def test_bad_inputs() -> None:
    with pytest.raises(InvalidAudio, match="empty"):
        harmonic.mfcc(np.zeros(0), SR)
    with pytest.raises(ValueError, match="mono"):
        harmonic.stft_power(np.zeros((10, 2)))
    with pytest.raises(ValueError, match="n_mfcc"):
        harmonic.mfcc(np.zeros(100), SR, n_mfcc=41, n_mels=40)
