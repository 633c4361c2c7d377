"""BS.1770-4 integrated loudness and loudness normalization, against pyloudnorm and the compliance signals."""

from __future__ import annotations

import json
import math
from math import gcd

import numpy as np
import pyloudnorm
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.signal import resample_poly

import harmonic
from harmonic import InvalidAudio
from harmonic.loudness import integrated_loudness, k_weighting_sos, loudness_normalization, normalize_loudness
from tests.conftest import DATA, read_wav_reference

RATES = [8000, 16000, 22050, 44100, 48000, 96000]
DETAIL_KEYS = {"input_lufs", "output_lufs", "gain_db", "peak_limited", "target_lufs"}


def sine(freq_hz: float, amplitude: float, seconds: float, sr: int) -> np.ndarray:
    t = np.arange(round(seconds * sr)) / sr
    return amplitude * np.sin(2 * np.pi * freq_hz * t)


def to_rate(samples: np.ndarray, sr: int) -> np.ndarray:
    """A 16 kHz clip resampled to `sr` (scipy's polyphase resampler, independent of harmonic)."""
    g = gcd(sr, 16_000)
    return samples if sr == 16_000 else resample_poly(samples, sr // g, 16_000 // g)


def source(kind: str, sr: int, index: int, speech: list[tuple[np.ndarray, int]]) -> np.ndarray:
    """Test signals with level changes and pauses, so that both gates have work to do."""
    rng = np.random.default_rng(100 * index + sr)
    if kind == "speech":
        return to_rate(speech[index % len(speech)][0], sr) * (0.9 - 0.25 * index)
    n = 3 * sr
    if kind == "noise":
        envelope = np.interp(np.arange(n), [0, n // 3, n // 2, n], [0.02, 0.3, 0.001, 0.1])
        return envelope * rng.standard_normal(n)
    tones = sine(997.0, 0.2, 3.0, sr) + sine(110.0 * (index + 1), 0.3, 3.0, sr) + sine(3150.0, 0.05, 3.0, sr)
    tones[sr : sr + sr // 2] *= 0.01  # a pause 40 dB down: below the relative gate
    return tones / (index + 1)


def multichannel(kind: str, sr: int, channels: int, speech: list[tuple[np.ndarray, int]]) -> np.ndarray:
    parts = [source(kind, sr, i, speech) for i in range(channels)]
    n = min(len(p) for p in parts)
    stacked = np.stack([p[:n] for p in parts], axis=1)
    return stacked[:, 0] if channels == 1 else stacked


def test_k_weighting_reproduces_the_bs1770_table_at_48k() -> None:
    # ITU-R BS.1770-4 Annex 1, Tables 1 and 2 (stage 1 shelf, stage 2 RLB high pass), 48 kHz.
    table = np.array(
        [
            [1.53512485958697, -2.69169618940638, 1.19839281085285, 1.0, -1.69065929318241, 0.73248077421585],
            [1.0, -2.0, 1.0, 1.0, -1.99004745483398, 0.99007225036621],
        ]
    )
    np.testing.assert_allclose(k_weighting_sos(48_000), table, rtol=0, atol=1e-9)


@pytest.mark.parametrize("sr", RATES)
def test_k_weighting_is_designed_per_rate(sr: int) -> None:
    from scipy.signal import sosfreqz

    sos = k_weighting_sos(sr)
    # designed, not copied: the 48 kHz table at another rate would put the corners elsewhere
    assert sr == 48_000 or not np.allclose(sos, k_weighting_sos(48_000))
    freqs = np.array([20.0, 38.0, 100.0, 500.0, 1000.0, 2000.0, 3000.0])
    _, h = sosfreqz(sos, worN=freqs, fs=sr)
    _, h48 = sosfreqz(k_weighting_sos(48_000), worN=freqs, fs=48_000)
    # the same analog prototype: well below Nyquist (where the bilinear transform barely warps) the
    # response is the 48 kHz one within 0.05 dB
    low = freqs < sr / 10
    np.testing.assert_allclose(20 * np.log10(np.abs(h[low])), 20 * np.log10(np.abs(h48[low])), atol=0.05)
    assert 20 * np.log10(abs(h[0])) < -3.0 < 20 * np.log10(abs(h[2]))  # the high pass cuts 20 Hz


@pytest.mark.parametrize(
    ("name", "expected"), [("1770-2_Comp_AbsGateTest.wav", -69.5), ("1770-2_Comp_RelGateTest.wav", -10.0)]
)
def test_bs1770_compliance_signals(name: str, expected: float) -> None:
    samples, sr = read_wav_reference(DATA / "bs1770" / name)
    assert samples.shape[1] == 2
    assert integrated_loudness(samples, sr) == pytest.approx(expected, abs=0.1)


@pytest.mark.parametrize("sr", [16_000, 44_100, 48_000])
def test_997_hz_sine_at_minus_20_dbfs_reads_minus_23_lufs(sr: int) -> None:
    assert integrated_loudness(sine(997.0, 0.1, 5.0, sr), sr) == pytest.approx(-23.01, abs=0.1)


@pytest.mark.parametrize("channels", [1, 2, 5])
@pytest.mark.parametrize("kind", ["speech", "noise", "tones"])
@pytest.mark.parametrize("sr", RATES)
def test_matches_pyloudnorm(sr: int, kind: str, channels: int, speech_clips) -> None:
    samples = multichannel(kind, sr, channels, speech_clips)
    reference = pyloudnorm.Meter(sr).integrated_loudness(samples)
    assert math.isfinite(reference)
    assert integrated_loudness(samples, sr) == pytest.approx(reference, abs=0.1)


def test_matches_pyloudnorm_when_the_block_step_is_not_a_whole_number_of_samples(speech_clips) -> None:
    sr = 11_025  # 100 ms is 1102.5 samples
    samples = resample_poly(speech_clips[1][0], 441, 640)
    reference = pyloudnorm.Meter(sr).integrated_loudness(samples)
    assert integrated_loudness(samples, sr) == pytest.approx(reference, abs=0.1)


def test_float32_and_float64_agree_and_mono_equals_one_column(speech_clips) -> None:
    samples, sr = speech_clips[0]
    loudness = integrated_loudness(samples, sr)
    assert integrated_loudness(samples.astype(np.float32), sr) == pytest.approx(loudness, abs=1e-4)
    assert integrated_loudness(samples[:, None], sr) == pytest.approx(loudness, abs=1e-9)
    assert harmonic.integrated_loudness is integrated_loudness


def test_gain_shifts_loudness_by_the_same_amount(speech_clips) -> None:
    samples, sr = speech_clips[2]
    loudness = integrated_loudness(samples, sr)
    for gain_db in (-30.0, -6.0, 3.0):
        shifted = integrated_loudness(samples * 10 ** (gain_db / 20), sr)
        assert shifted == pytest.approx(loudness + gain_db, abs=1e-6)


def test_channels_add_in_power_with_their_weights(speech_clips) -> None:
    samples, sr = speech_clips[0]
    mono = integrated_loudness(samples, sr)
    assert integrated_loudness(np.stack([samples, samples], axis=1), sr) == pytest.approx(
        mono + 10 * math.log10(2), abs=1e-6
    )
    silent = np.zeros_like(samples)
    # the default layout is L, R, C, Ls, Rs: the surrounds (4th and 5th) weigh 1.41, a 6th weighs 1.0
    for channels, index, weight in [(5, 3, 1.41), (5, 4, 1.41), (5, 2, 1.0), (6, 5, 1.0)]:
        columns = [silent] * channels
        columns[index] = samples
        assert integrated_loudness(np.stack(columns, axis=1), sr) == pytest.approx(
            mono + 10 * math.log10(weight), abs=1e-6
        )
    # explicit weights: a zero weight (an LFE) removes the channel
    noise = np.random.default_rng(7).standard_normal(len(samples))
    with_lfe = np.stack([samples, noise], axis=1)
    assert integrated_loudness(with_lfe, sr, channel_weights=[1.0, 0.0]) == pytest.approx(mono, abs=1e-6)
    assert integrated_loudness(with_lfe, sr) > mono + 1.0


@pytest.mark.parametrize("sr", [8_000, 16_000, 48_000])
def test_clip_shorter_than_one_block_is_measured_as_one_block(sr: int) -> None:
    long_tone = integrated_loudness(sine(997.0, 0.1, 2.0, sr), sr)
    for seconds in (0.1, 0.25, 0.399):
        short = integrated_loudness(sine(997.0, 0.1, seconds, sr), sr)
        assert short == pytest.approx(long_tone, abs=0.1)
    with pytest.raises(ValueError, match="length"):  # pyloudnorm refuses such clips; we measure them
        pyloudnorm.Meter(sr).integrated_loudness(sine(997.0, 0.1, 0.25, sr))


def test_silence_and_sub_gate_signals_have_no_loudness(rng: np.random.Generator) -> None:
    sr = 16_000
    assert integrated_loudness(np.zeros(sr * 2), sr) == -math.inf
    assert integrated_loudness(np.zeros((sr, 2)), sr) == -math.inf
    assert integrated_loudness(np.zeros(100), sr) == -math.inf
    quiet = 1e-5 * rng.standard_normal(sr * 2)  # about -100 LUFS: below the absolute gate
    assert integrated_loudness(quiet, sr) == -math.inf
    assert integrated_loudness(quiet * 1e4, sr) > -70.0


@pytest.mark.parametrize("samples", [np.zeros(16_000), np.zeros((8_000, 2)), np.zeros(1)])
def test_normalizing_silence_applies_no_gain(samples: np.ndarray) -> None:
    output, details = loudness_normalization(samples, 16_000)
    assert output.dtype == np.float32
    assert output.shape == samples.shape
    assert np.array_equal(output, samples)
    assert details["input_lufs"] is None
    assert details["output_lufs"] is None
    assert details["gain_db"] == 0.0
    assert details["peak_limited"] is False


def test_normalizing_a_sub_gate_signal_returns_it_unchanged(rng: np.random.Generator) -> None:
    quiet = (1e-5 * rng.standard_normal(32_000)).astype(np.float32)
    output = normalize_loudness(quiet, 16_000)
    assert output is not quiet
    assert np.array_equal(output, quiet)


@pytest.mark.parametrize("sr", [16_000, 44_100])
@pytest.mark.parametrize("target", [-35.0, -23.0, -20.0])
def test_normalize_reaches_the_target(sr: int, target: float, speech_clips) -> None:
    samples = to_rate(speech_clips[0][0], sr) * 0.3
    output, details = loudness_normalization(samples.astype(np.float32), sr, target_lufs=target)
    assert set(details) >= DETAIL_KEYS
    assert details["peak_limited"] is False
    assert details["input_lufs"] == pytest.approx(integrated_loudness(samples, sr), abs=1e-3)
    assert details["gain_db"] == pytest.approx(target - details["input_lufs"], abs=1e-6)
    assert integrated_loudness(output, sr) == pytest.approx(target, abs=0.01)
    assert details["output_lufs"] == pytest.approx(integrated_loudness(output, sr), abs=1e-3)
    reference = pyloudnorm.Meter(sr).integrated_loudness(output.astype(np.float64))
    assert reference == pytest.approx(target, abs=0.1)
    assert json.loads(json.dumps(details, allow_nan=False)) == details


def test_normalize_keeps_the_shape_of_multichannel_input(speech_clips) -> None:
    samples = multichannel("speech", 16_000, 2, speech_clips) * 0.2
    output = normalize_loudness(samples, 16_000, target_lufs=-20.0)
    assert output.shape == samples.shape
    assert output.dtype == np.float32
    assert integrated_loudness(output, 16_000) == pytest.approx(-20.0, abs=0.01)
    np.testing.assert_allclose(output[:, 1] * samples[:, 0], output[:, 0] * samples[:, 1], atol=1e-6)


def test_normalize_a_quiet_clip_accounts_for_the_absolute_gate(speech_clips) -> None:
    # scaled 48 dB down, the softer speech blocks fall below -70 LUFS and the clip reads louder than
    # "-48 dB"; raised again, those blocks count again, so target - input_lufs would undershoot
    samples, sr = speech_clips[0]
    quiet = samples * 10 ** ((-68.0 - integrated_loudness(samples, sr)) / 20)
    naive_gain_db = -23.0 - integrated_loudness(quiet, sr)
    assert integrated_loudness(quiet * 10 ** (naive_gain_db / 20), sr) < -23.2
    output, details = loudness_normalization(quiet, sr, target_lufs=-23.0)
    assert details["peak_limited"] is False
    assert integrated_loudness(output, sr) == pytest.approx(-23.0, abs=0.01)


def test_peak_ceiling_lowers_the_gain(speech_clips) -> None:
    samples, sr = speech_clips[0]
    output, details = loudness_normalization(samples, sr, target_lufs=-5.0, peak_dbfs=-1.0)
    ceiling = 10 ** (-1.0 / 20)
    assert details["peak_limited"] is True
    assert np.max(np.abs(output)) <= ceiling
    assert np.max(np.abs(output)) == pytest.approx(ceiling, rel=1e-4)  # the gain goes as far as it may
    assert details["output_lufs"] < -5.0 - 1.0  # the target is not reached
    assert details["output_lufs"] == pytest.approx(integrated_loudness(output, sr), abs=1e-3)
    assert details["gain_db"] == pytest.approx(details["output_lufs"] - details["input_lufs"], abs=1e-3)


def test_ceiling_never_exceeds_full_scale_and_also_limits_hot_input(speech_clips) -> None:
    samples, sr = speech_clips[0]
    loud = normalize_loudness(samples, sr, target_lufs=0.0, peak_dbfs=6.0)
    assert np.max(np.abs(loud)) <= 1.0
    hot = samples * 3.0  # already beyond full scale, and louder than the target
    output, details = loudness_normalization(hot, sr, target_lufs=-14.0, peak_dbfs=-3.0)
    assert np.max(np.abs(output)) <= 10 ** (-3.0 / 20)
    assert details["gain_db"] < -14.0 - integrated_loudness(hot, sr)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seconds=st.floats(0.001, 1.5),  # at least 8 samples: an empty clip is InvalidAudio
    channels=st.integers(1, 3),
    level_db=st.floats(-90.0, 20.0),
    crest=st.floats(0.0, 1.0),
    target=st.floats(-50.0, 0.0),
    peak_dbfs=st.floats(-30.0, 3.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_output_never_exceeds_the_ceiling(
    seconds: float, channels: int, level_db: float, crest: float, target: float, peak_dbfs: float, seed: int
) -> None:
    sr = 8_000
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    noise = rng.standard_normal((n, channels)) * 10 ** (level_db / 20)
    noise[rng.random((n, channels)) < crest * 0.01] *= 30.0  # sparse spikes: peaky signals
    samples = noise[:, 0] if channels == 1 else noise
    output, details = loudness_normalization(samples.astype(np.float32), sr, target, peak_dbfs)
    ceiling = 10 ** (min(peak_dbfs, 0.0) / 20)
    assert output.shape == samples.shape
    assert output.dtype == np.float32
    assert float(np.max(np.abs(output))) <= ceiling + 1e-6
    if details["output_lufs"] is not None and not details["peak_limited"]:
        assert integrated_loudness(output, sr) == pytest.approx(target, abs=0.1)
    assert json.loads(json.dumps(details, allow_nan=False)) == details


def test_invalid_input_is_rejected() -> None:
    sr = 16_000
    with pytest.raises(InvalidAudio, match="NaN"):
        integrated_loudness(np.array([0.1, np.nan, 0.2] * 4000), sr)
    with pytest.raises(InvalidAudio, match="NaN"):
        normalize_loudness(np.array([0.1, np.inf] * 4000), sr)
    with pytest.raises(ValueError, match="shape"):
        integrated_loudness(np.zeros((10, 2, 2)), sr)
    with pytest.raises(InvalidAudio, match="shape"):
        integrated_loudness(np.zeros((100, 0)), sr)
    with pytest.raises(InvalidAudio, match="empty"):
        integrated_loudness(np.zeros(0), sr)
    with pytest.raises(InvalidAudio, match="empty"):
        loudness_normalization(np.zeros((0, 2)), sr)
    with pytest.raises(ValueError, match="sample rate"):
        integrated_loudness(np.zeros(1000), 3000)
    with pytest.raises(ValueError, match="channel_weights"):
        integrated_loudness(np.zeros((1000, 2)), sr, channel_weights=[1.0])
    with pytest.raises(ValueError, match="finite"):
        normalize_loudness(np.zeros(1000), sr, target_lufs=math.nan)
