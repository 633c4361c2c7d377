"""denoise and estimate_snr_db on the committed speech clips with white noise, against noisereduce."""

from __future__ import annotations

import sys

import noisereduce
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.signal import resample_poly

from harmonic import denoise, estimate_snr_db

dn = sys.modules["harmonic.denoise"]  # the submodule (the package attribute is the function)


def si_snr(estimate: np.ndarray, reference: np.ndarray) -> float:
    """Scale-invariant SNR in dB (Le Roux, Wisdom, Erdogan & Hershey, "SDR – half-baked or well done?",
    ICASSP 2019): both zero-mean, the target is the projection of the estimate on the reference."""
    estimate = np.asarray(estimate, dtype=np.float64) - np.mean(estimate)
    reference = np.asarray(reference, dtype=np.float64) - np.mean(reference)
    target = np.dot(estimate, reference) / np.dot(reference, reference) * reference
    error = estimate - target
    return float(10.0 * np.log10(np.dot(target, target) / np.dot(error, error)))


def with_white_noise(clean: np.ndarray, snr_db: float, seed: int) -> np.ndarray:
    """``clean`` plus Gaussian white noise scaled to ``snr_db`` over the whole clip."""
    noise = np.random.default_rng(seed).standard_normal(len(clean))
    noise *= np.sqrt(np.sum(clean**2) / np.sum(noise**2) / 10.0 ** (snr_db / 10.0))
    return clean + noise


def improvement_db(clean: np.ndarray, noisy: np.ndarray, sr: int) -> float:
    return si_snr(denoise(noisy, sr), clean) - si_snr(noisy, clean)


# -- quality on speech -------------------------------------------------------------------------------


@pytest.mark.parametrize("snr_db", [0.0, 10.0])
def test_improves_speech_in_white_noise(speech_clips, snr_db):
    for seed, (clean, sr) in enumerate(speech_clips):
        gain = improvement_db(clean, with_white_noise(clean, snr_db, seed), sr)
        assert gain >= 5.0, f"clip {seed}: SI-SNR improved by only {gain:.2f} dB at {snr_db} dB input"


def test_costs_little_on_nearly_clean_speech(speech_clips):
    for seed, (clean, sr) in enumerate(speech_clips):
        noisy = with_white_noise(clean, 30.0, seed)
        assert si_snr(denoise(noisy, sr), clean) >= si_snr(noisy, clean) - 0.5


def test_better_than_noisereduce_stationary(speech_clips):
    for seed, (clean, sr) in enumerate(speech_clips):
        noisy = with_white_noise(clean, 10.0, seed)
        theirs = si_snr(noisereduce.reduce_noise(y=noisy, sr=sr, stationary=True), clean)
        assert si_snr(denoise(noisy, sr), clean) >= theirs + 1.0


def test_clean_speech_is_left_alone(speech_clips):
    for clean, sr in speech_clips:
        assert si_snr(denoise(clean, sr), clean) > 40.0


@pytest.mark.parametrize(("sr", "up", "down"), [(8000, 1, 2), (44100, 441, 160)])
def test_other_sample_rates(speech_clips, sr, up, down):
    clean = resample_poly(speech_clips[0][0], up, down)
    noisy = with_white_noise(clean, 10.0, 7)
    assert improvement_db(clean, noisy, sr) >= 4.0
    assert abs(estimate_snr_db(noisy, sr) - 10.0) < 2.0


# -- non-speech --------------------------------------------------------------------------------------


def test_improves_tone_in_white_noise():
    sr = 16000
    tone = 0.5 * np.sin(2 * np.pi * 440.0 * np.arange(2 * sr) / sr)
    noisy = with_white_noise(tone, 10.0, 3)
    assert improvement_db(tone, noisy, sr) >= 5.0


@pytest.mark.parametrize("floor_db", [-10.0, -20.0])
def test_pure_noise_is_attenuated_down_to_the_floor(floor_db):
    noise = np.random.default_rng(5).standard_normal(32000)
    residual_db = 10 * np.log10(np.mean(denoise(noise, 16000, floor_db=floor_db) ** 2) / np.mean(noise**2))
    assert floor_db - 3.0 <= residual_db <= floor_db + 3.0


def test_strength_scales_the_attenuation(speech_clips):
    clean, sr = speech_clips[0]
    noisy = with_white_noise(clean, 10.0, 0)
    np.testing.assert_allclose(denoise(noisy, sr, strength=0.0), noisy.astype(np.float32))
    errors = [np.mean((denoise(noisy, sr, strength=s) - clean) ** 2) for s in (0.0, 0.5, 1.0)]
    assert errors[0] > errors[1] > errors[2]


def test_unit_gain_reconstructs_the_input_exactly():
    """floor_db=0 pins the gain at 1: the weighted overlap-add must then give back the input."""
    y = np.random.default_rng(2).standard_normal(12345)
    np.testing.assert_allclose(denoise(y, 16000, floor_db=0.0), y, atol=1e-5)


@settings(max_examples=15, deadline=None)
@given(scale=st.floats(1e-4, 1e3), seed=st.integers(0, 2**16))
def test_scale_equivariant(scale, seed):
    y = with_white_noise(np.sin(2 * np.pi * 300.0 * np.arange(4000) / 8000), 5.0, seed)
    expected = scale * denoise(y, 8000)
    np.testing.assert_allclose(denoise(scale * y, 8000), expected, rtol=1e-3, atol=1e-4 * scale)
    assert estimate_snr_db(scale * y, 8000) == pytest.approx(estimate_snr_db(y, 8000), abs=0.01)


# -- shapes and edge cases ----------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 100, 511, 1500, 16001])
def test_length_and_dtype(n):
    y = np.random.default_rng(n).standard_normal(n)
    out = denoise(y, 16000)
    assert out.dtype == np.float32
    assert out.shape == (n,)
    assert np.all(np.isfinite(out))
    assert np.isfinite(estimate_snr_db(y, 16000))


def test_shorter_than_a_frame_comes_back_unchanged():
    y = np.random.default_rng(0).standard_normal(300)
    np.testing.assert_array_equal(denoise(y, 16000), y.astype(np.float32))
    assert estimate_snr_db(y, 16000) == dn.SNR_CEILING_DB


def test_silence_in_silence_out():
    out = denoise(np.zeros(16000), 16000)
    assert out.dtype == np.float32
    assert not np.any(out)
    assert estimate_snr_db(np.zeros(16000), 16000) == dn.SNR_CEILING_DB


def test_accepts_float32_and_int_input(speech_clips):
    clean, sr = speech_clips[0]
    noisy = with_white_noise(clean, 10.0, 0)
    np.testing.assert_allclose(denoise(noisy.astype(np.float32), sr), denoise(noisy, sr), atol=1e-4)
    ints = np.round(noisy * 10000).astype(np.int16)
    assert si_snr(denoise(ints, sr), clean) > si_snr(ints, clean) + 5.0


@pytest.mark.parametrize(
    ("samples", "sr", "kwargs", "message"),
    [
        (np.zeros((100, 2)), 16000, {}, "mono"),
        (np.array([0.0, np.nan, 0.0] * 1000), 16000, {}, "NaN or infinite"),
        (np.array([0.0, np.inf, 0.0] * 1000), 16000, {}, "NaN or infinite"),
        (np.zeros(0), 16000, {}, "empty"),
        (np.zeros(1000), 16000, {"strength": 1.5}, "strength"),
        (np.zeros(1000), 16000, {"floor_db": 3.0}, "floor_db"),
        (np.zeros(1000), 16000, {"over_subtraction": -1.0}, "over_subtraction"),
        (np.ones(8000), 16000, {"noise_fraction": 0.0}, "noise_fraction"),
        (np.zeros(1000), 0, {}, "sample rate"),
    ],
)
def test_rejects_bad_input(samples, sr, kwargs, message):
    with pytest.raises(ValueError, match=message):
        denoise(samples, sr, **kwargs)


# -- SNR estimate and noise profile -------------------------------------------------------------------


@pytest.mark.parametrize("snr_db", [0.0, 10.0, 20.0, 30.0])
def test_estimate_snr_db_on_noisy_speech(speech_clips, snr_db):
    for seed, (clean, sr) in enumerate(speech_clips):
        estimate = estimate_snr_db(with_white_noise(clean, snr_db, seed), sr)
        assert isinstance(estimate, float)
        assert abs(estimate - snr_db) < 2.0, f"clip {seed}: estimated {estimate:.2f} dB for {snr_db} dB"


def test_estimate_snr_db_on_clean_material(speech_clips):
    for clean, sr in speech_clips:  # espeak-ng output: exact zeros and int16 rounding between words
        assert estimate_snr_db(clean, sr) > 60.0
    noise = np.random.default_rng(0).standard_normal(16000)
    assert estimate_snr_db(noise, 16000) < -10.0


def test_noise_profile_of_white_noise():
    sigma = 0.3
    freqs, psd = dn.noise_profile(sigma * np.random.default_rng(1).standard_normal(5 * 16000), 16000)
    assert freqs[0] == 0.0
    assert freqs[-1] == 8000.0
    assert psd.shape == freqs.shape
    assert np.mean(psd) == pytest.approx(sigma**2, rel=0.05)
    error_db = np.abs(10 * np.log10(psd / sigma**2))
    assert np.all(error_db[1:-1] < 1.0)
    assert np.all(error_db[[0, -1]] < 3.0)  # DC and Nyquist are real: fewer degrees of freedom


def test_noise_profile_follows_coloured_noise_under_speech(speech_clips):
    clean, sr = speech_clips[1]
    rng = np.random.default_rng(4)
    spectrum = np.fft.rfft(rng.standard_normal(len(clean)))
    freqs = np.fft.rfftfreq(len(clean), 1 / sr)
    noise = np.fft.irfft(spectrum / np.sqrt(np.maximum(freqs, 50.0) / 50.0), len(clean))  # pink above 50 Hz
    noise *= np.sqrt(np.sum(clean**2) / np.sum(noise**2) / 10.0)  # 10 dB
    f, psd = dn.noise_profile(clean + noise, sr)
    _, truth = dn.noise_profile(noise, sr)
    band = (f > 100.0) & (f < 7500.0)
    assert np.median(np.abs(10 * np.log10(psd[band] / truth[band]))) < 1.5
    # and the pink slope is followed: ~ -10 dB per decade between 200 and 2000 Hz
    slope = 10 * np.log10(np.mean(psd[(f > 1800) & (f < 2200)]) / np.mean(psd[(f > 180) & (f < 220)]))
    assert -13.0 < slope < -7.0
