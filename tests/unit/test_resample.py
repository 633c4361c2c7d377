"""resample: exact rational factors, time alignment, level preservation and anti-aliasing."""

from __future__ import annotations

import librosa
import numpy as np
import pytest

from harmonic import InvalidAudio, resample
from harmonic.resample import resample_factors


@pytest.mark.parametrize(
    ("orig", "target", "factors"),
    [
        (44_100, 16_000, (160, 441)),
        (48_000, 16_000, (1, 3)),
        (8_000, 16_000, (2, 1)),
        (22_050, 16_000, (320, 441)),
        (32_000, 16_000, (1, 2)),
        (11_025, 16_000, (640, 441)),
        (96_000, 16_000, (1, 6)),
        (16_000, 44_100, (441, 160)),
    ],
)
def test_common_rates_use_exact_reduced_ratios(orig, target, factors) -> None:
    assert resample_factors(orig, target) == factors


@pytest.mark.parametrize("orig", [8_000, 11_025, 22_050, 32_000, 44_100, 48_000, 96_000])
def test_length_and_a_tone_survive(orig) -> None:
    seconds, freq = 1.0, 440.0
    t = np.arange(int(orig * seconds)) / orig
    x = 0.5 * np.sin(2 * np.pi * freq * t)
    y = resample(x, orig, 16_000)
    up, down = resample_factors(orig, 16_000)
    assert y.size == -(-x.size * up // down)
    expected = 0.5 * np.sin(2 * np.pi * freq * np.arange(y.size) / 16_000)
    # Away from the edges (filter transients) the resampled tone is the ideal one: aligned, same level.
    core = slice(200, -200)
    assert np.max(np.abs(y[core] - expected[core])) < 2e-3


def test_matches_librosa_polyphase() -> None:
    rng = np.random.default_rng(7)
    x = rng.standard_normal(44_100)
    ours = resample(x, 44_100, 16_000)
    reference = librosa.resample(x, orig_sr=44_100, target_sr=16_000, res_type="polyphase")
    np.testing.assert_allclose(ours, reference, atol=1e-12)


def test_removes_content_above_the_new_nyquist() -> None:
    orig = 44_100
    t = np.arange(orig) / orig
    alias_prone = np.sin(2 * np.pi * 11_000 * t)  # would fold to 5 kHz at 16 kHz without filtering
    y = resample(alias_prone, orig, 16_000)
    level_db = 20 * np.log10(np.sqrt(np.mean(y[500:-500] ** 2)) / np.sqrt(0.5))
    assert level_db < -40, f"aliased tone at {level_db:.1f} dB"


def test_equal_rates_return_the_input_and_dtype_rules() -> None:
    x = np.ones(10, dtype=np.float32)
    assert resample(x, 16_000, 16_000) is x
    assert resample(x, 8_000, 16_000).dtype == np.float32
    assert resample(x.astype(np.float64), 8_000, 16_000).dtype == np.float64
    assert resample(np.arange(10), 8_000, 16_000).dtype == np.float64


def test_multichannel_along_time_axis() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4_800, 2))
    y = resample(x, 48_000, 16_000)
    assert y.shape == (1_600, 2)
    np.testing.assert_allclose(y[:, 1], resample(x[:, 1], 48_000, 16_000))


def test_empty_input_is_invalid_audio() -> None:
    with pytest.raises(InvalidAudio, match="empty"):
        resample(np.zeros(0, dtype=np.float32), 44_100, 16_000)


@pytest.mark.parametrize(("orig", "target"), [(0, 16_000), (16_000, -1), (44_100.5, 16_000)])
def test_bad_rates_are_value_errors(orig, target) -> None:
    with pytest.raises(ValueError, match="positive integers"):
        resample(np.zeros(8), orig, target)


def test_pathological_ratio_is_refused() -> None:
    with pytest.raises(ValueError, match="too large"):
        resample(np.zeros(8), 1_000_003, 999_983)
