"""Every public DSP function refuses bad samples the same way: InvalidAudio (permanent), never a plain
ValueError (which the service would retry), whichever function meets them first."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import harmonic
from harmonic import InvalidAudio
from harmonic._samples import as_float, as_mono_float64, checked
from harmonic.denoise import noise_profile
from harmonic.loudness import loudness_normalization

SR = 16_000
_t = np.arange(SR) / SR
# One second of a vowel-like tone in a little noise: valid for every entry point (long enough to
# fingerprint, to make a keyword template, to estimate a noise floor).
GOOD = 0.3 * np.sin(2 * np.pi * 220.0 * _t) * (1.0 + 0.5 * np.sin(2 * np.pi * 3.0 * _t))
GOOD = GOOD + 0.01 * np.random.default_rng(0).standard_normal(SR)
TEMPLATES = {"tone": harmonic.make_template(GOOD[: SR // 2], SR)}

# (name, call with the samples and valid other arguments, whether (n, channels) samples are accepted)
ENTRY_POINTS: list[tuple[str, Callable[[Any], object], bool]] = [
    ("stft_power", lambda y: harmonic.stft_power(y), False),
    ("melspectrogram", lambda y: harmonic.melspectrogram(y, SR), False),
    ("mfcc", lambda y: harmonic.mfcc(y, SR), False),
    ("chroma", lambda y: harmonic.chroma(y, SR), False),
    ("spectral_centroid", lambda y: harmonic.spectral_centroid(y, SR), False),
    ("spectral_flatness", lambda y: harmonic.spectral_flatness(y), False),
    ("f0", lambda y: harmonic.f0(y, SR), False),
    ("hnr", lambda y: harmonic.hnr(y, SR), False),
    ("denoise", lambda y: harmonic.denoise(y, SR), False),
    ("estimate_snr_db", lambda y: harmonic.estimate_snr_db(y, SR), False),
    ("noise_profile", lambda y: noise_profile(y, SR), False),
    ("integrated_loudness", lambda y: harmonic.integrated_loudness(y, SR), True),
    ("normalize_loudness", lambda y: harmonic.normalize_loudness(y, SR), True),
    ("loudness_normalization", lambda y: loudness_normalization(y, SR), True),
    ("extract_features", lambda y: harmonic.extract_features(y, SR), False),
    ("fingerprint", lambda y: harmonic.fingerprint(y, SR), False),
    ("make_template", lambda y: harmonic.make_template(y, SR), False),
    ("match_templates", lambda y: harmonic.match_templates(y, SR, TEMPLATES), False),
    ("resample", lambda y: harmonic.resample(y, SR, 8_000), True),
    ("resample (equal rates)", lambda y: harmonic.resample(y, SR, SR), True),
    ("encode_wav", lambda y: harmonic.encode_wav(y, SR), True),
]

# Exported names that take no samples: types, bytes (decode_wav), a spectrogram (power_to_db), a length.
NOT_SAMPLES = {
    "Clip",
    "Fingerprint",
    "FingerprintIndex",
    "InvalidAudio",
    "Match",
    "Template",
    "WavLimits",
    "can_fingerprint",
    "decode_audio",
    "decode_wav",
    "json_safe",
    "power_to_db",
}


def _with(value: float) -> np.ndarray:
    y = GOOD.copy()
    y[SR // 2] = value
    return y


# (case, samples for mono-only functions, samples for (n,)/(n, channels) functions, expected message)
BAD_SAMPLES: list[tuple[str, Any, Any, str]] = [
    ("stereo where mono is required", np.stack([GOOD, GOOD], axis=1), None, "shape"),
    ("3-D", np.zeros((SR, 2, 2)), np.zeros((SR, 2, 2)), "shape"),
    ("no channels", np.zeros((SR, 0)), np.zeros((SR, 0)), "shape"),
    ("a scalar", np.float64(0.5), np.float64(0.5), "shape"),
    ("NaN", _with(np.nan), _with(np.nan), "NaN or infinite"),
    ("+inf", _with(np.inf), _with(np.inf), "NaN or infinite"),
    ("-inf", _with(-np.inf), _with(-np.inf), "NaN or infinite"),
    ("NaN in one channel", None, np.stack([GOOD, _with(np.nan)], axis=1), "NaN or infinite"),
    ("empty", np.zeros(0), np.zeros(0), "empty"),
    ("empty float32", np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.float32), "empty"),
    ("empty stereo", None, np.zeros((0, 2)), "empty"),
    ("strings", GOOD.astype(str), GOOD.astype(str), "real numbers"),  # would convert to float silently
    ("objects", GOOD.astype(object), GOOD.astype(object), "real numbers"),
    ("a list of strings", ["0.1", "0.2"] * 8_000, ["0.1", "0.2"] * 8_000, "real numbers"),
    ("booleans", GOOD > 0, GOOD > 0, "real numbers"),
    ("complex", GOOD.astype(complex), GOOD.astype(complex), "real numbers"),
    ("ragged", [[0.1], [0.1, 0.2]], [[0.1], [0.1, 0.2]], "not an array of numbers"),
]

CASES = [
    pytest.param(call, mono if not channels else multi, message, id=f"{name}-{case}")
    for name, call, channels in ENTRY_POINTS
    for case, mono, multi, message in BAD_SAMPLES
    if (multi if channels else mono) is not None
]


@pytest.mark.parametrize(("call", "samples", "message"), CASES)
def test_bad_samples_are_invalid_audio(call: Callable[[Any], object], samples: Any, message: str) -> None:
    with pytest.raises(InvalidAudio, match=message):
        call(samples)


@pytest.mark.parametrize(("call", "accepts_channels"), [pytest.param(c, m, id=n) for n, c, m in ENTRY_POINTS])
def test_the_same_calls_accept_good_samples(call: Callable[[Any], object], accepts_channels: bool) -> None:
    """The other arguments of ENTRY_POINTS are valid: InvalidAudio above comes from the samples alone."""
    call(GOOD)
    call(GOOD.astype(np.float32))
    call(np.round(GOOD * 10_000).astype(np.int16))
    if accepts_channels:
        call(np.stack([GOOD, 0.5 * GOOD], axis=1))


def test_every_exported_function_that_takes_samples_is_listed() -> None:
    listed = {name for name, _, _ in ENTRY_POINTS}
    exported = set(harmonic.__all__) - NOT_SAMPLES
    assert exported <= listed, f"add {sorted(exported - listed)} to ENTRY_POINTS (or to NOT_SAMPLES)"


def test_the_message_names_the_function_that_refused() -> None:
    with pytest.raises(InvalidAudio, match=r"^f0: .*mono"):
        harmonic.f0(np.zeros((SR, 2)), SR)
    with pytest.raises(InvalidAudio, match=r"^mfcc: .*empty"):
        harmonic.mfcc(np.zeros(0), SR)


# --- the shared helper ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.uint8, np.float16, np.float32, np.float64])
def test_as_mono_float64_returns_contiguous_float64_by_value(dtype) -> None:
    source = np.array([0, 1, 2, 100, 3], dtype=dtype)
    y = as_mono_float64(source, name="test")
    assert y.dtype == np.float64
    assert y.ndim == 1
    assert y.flags.c_contiguous
    np.testing.assert_array_equal(y, [0.0, 1.0, 2.0, 100.0, 3.0])  # converted by value, not scaled


def test_as_mono_float64_int16_and_float32_input() -> None:
    pcm = np.array([-32768, -1, 0, 16384, 32767], dtype=np.int16)
    y = as_mono_float64(pcm, name="test")
    assert y.dtype == np.float64
    assert y.flags.c_contiguous
    np.testing.assert_array_equal(y, [-32768.0, -1.0, 0.0, 16384.0, 32767.0])
    single = np.array([0.1, -0.5, 1.0], dtype=np.float32)
    y = as_mono_float64(single, name="test")
    assert y.dtype == np.float64
    assert y.flags.c_contiguous
    np.testing.assert_array_equal(y, single.astype(np.float64))  # exact: float32 -> float64 is lossless


def test_as_mono_float64_copies_only_when_needed() -> None:
    y = np.linspace(-1.0, 1.0, 10)
    assert as_mono_float64(y, name="test") is y
    strided = np.linspace(-1.0, 1.0, 20)[::2]
    out = as_mono_float64(strided, name="test")
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(out, strided)
    np.testing.assert_array_equal(as_mono_float64([0.5, 0.25], name="test"), [0.5, 0.25])  # a list is fine


def test_as_float_keeps_float32_and_float64_and_checked_keeps_everything() -> None:
    single = np.zeros(4, dtype=np.float32)
    double = np.zeros((4, 2))
    assert as_float(single, name="test") is single
    assert as_float(double, name="test", channels=True) is double
    assert as_float(np.zeros(4, dtype=np.int16), name="test").dtype == np.float64
    pcm = np.zeros(4, dtype=np.int16)
    assert checked(pcm, name="test") is pcm
    with pytest.raises(InvalidAudio, match="shape"):
        checked(double, name="test")  # channels only when asked for


def test_huge_but_finite_samples_are_not_mistaken_for_nan() -> None:
    y = np.full(8, np.finfo(np.float64).max)  # the sum overflows; the samples are finite
    assert checked(y, name="test") is y
