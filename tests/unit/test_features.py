"""extract_features: the result's `features` block, JSON-safe and consistent with the frame-wise functions."""

from __future__ import annotations

import json

import numpy as np
import pytest

import harmonic

SR = 16_000
KEYS = {
    "duration_s",
    "sample_rate",
    "frames",
    "rms_dbfs",
    "f0_hz",
    "voiced_fraction",
    "hnr_db",
    "spectral_centroid_hz",
    "spectral_flatness",
    "mfcc_mean",
    "mfcc_std",
    "chroma_mean",
    "dominant_pitch_class",
}


def harmonic_tone(f0_hz: float, seconds: float = 1.0, sr: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return sum(0.3 / k * np.sin(2 * np.pi * k * f0_hz * t) for k in range(1, 6)).astype(np.float32)


def test_tone_features_describe_the_tone() -> None:
    features = harmonic.extract_features(harmonic_tone(220.0), SR)

    assert set(features) == KEYS
    assert features["f0_hz"]["median"] == pytest.approx(220.0, rel=0.02)
    assert features["voiced_fraction"] > 0.9
    assert features["hnr_db"] > 20.0
    assert features["dominant_pitch_class"] == "A"
    assert len(features["mfcc_mean"]) == 13
    assert len(features["chroma_mean"]) == 12
    assert features["duration_s"] == pytest.approx(1.0)
    # a harmonic series at 220 Hz has its spectral mass low: the centroid sits between f0 and 5 f0
    assert 220.0 < features["spectral_centroid_hz"] < 1100.0


def test_features_are_json_serializable_and_consistent_with_mfcc(rng: np.random.Generator) -> None:
    y = (0.1 * rng.standard_normal(SR)).astype(np.float32)
    features = harmonic.extract_features(y, SR)

    parsed = json.loads(json.dumps(features, allow_nan=False))
    assert parsed == features
    expected = harmonic.mfcc(y, SR, n_mfcc=13, n_fft=512, hop_length=160, n_mels=40).mean(axis=1)
    np.testing.assert_allclose(features["mfcc_mean"], expected, atol=1e-3)
    assert features["voiced_fraction"] < 0.2
    assert features["spectral_flatness"] > 0.3  # white noise is spectrally flat


def test_silence_gives_nulls_not_nans() -> None:
    features = harmonic.extract_features(np.zeros(SR, dtype=np.float32), SR)

    json.dumps(features, allow_nan=False)
    assert features["rms_dbfs"] is None
    assert features["voiced_fraction"] == 0.0
    assert features["f0_hz"]["mean"] is None
    assert features["dominant_pitch_class"] is None


def test_rejects_multichannel_input() -> None:
    with pytest.raises(ValueError, match="mono"):
        harmonic.extract_features(np.zeros((SR, 2), dtype=np.float32), SR)
