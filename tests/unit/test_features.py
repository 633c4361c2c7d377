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
    "f0_track",
    "voiced_regions",
}


def harmonic_tone(f0_hz: float, seconds: float = 1.0, sr: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return sum(0.3 / k * np.sin(2 * np.pi * k * f0_hz * t) for k in range(1, 6)).astype(np.float32)


def tones_in_silence(seconds: float, spans: list[tuple[float, float, float]]) -> np.ndarray:
    """`seconds` of silence with a harmonic tone of f0 Hz from start to end s for each (start, end, f0)."""
    y = np.zeros(int(seconds * SR), dtype=np.float32)
    for start, end, f0_hz in spans:
        first, last = int(start * SR), int(end * SR)
        y[first:last] = harmonic_tone(f0_hz, seconds=end - start)[: last - first]
    return y


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


# --- the time series: f0_track and voiced_regions -------------------------------------------------------

# Frames are 10 ms apart (160 samples at 16 kHz); a region's edge may be off by one frame and the half frame
# it covers either side of its time.
EDGE_S = 0.02


@pytest.mark.parametrize("f0_hz", [110.0, 220.0, 440.0])
def test_the_f0_track_and_voiced_region_of_a_tone_are_where_the_tone_is(f0_hz: float) -> None:
    """A 2 s clip, the tone from 0.5 s to 1.5 s: one voiced region there, the track at its pitch in between
    and null outside, value i at time i × 10 ms."""
    features = harmonic.extract_features(tones_in_silence(2.0, [(0.5, 1.5, f0_hz)]), SR)

    track = features["f0_track"]
    assert track["hop_s"] == 0.01
    assert len(track["hz"]) == 201  # 0.00, 0.01, ..., 2.00 s: one value per 10 ms, both ends included
    ((start, end),) = features["voiced_regions"]
    assert start == pytest.approx(0.5, abs=EDGE_S)
    assert end == pytest.approx(1.5, abs=EDGE_S)
    for i, value in enumerate(track["hz"]):
        time_s = i * track["hop_s"]
        if 0.5 + EDGE_S < time_s < 1.5 - EDGE_S:
            assert value == pytest.approx(f0_hz, rel=0.005), time_s
            assert value == round(value, 1)  # 0.1 Hz
        elif not 0.5 - EDGE_S <= time_s <= 1.5 + EDGE_S:
            assert value is None, time_s
    assert features["voiced_fraction"] == pytest.approx(101 / 201, abs=3 / 201)  # 1 s of 2 s, ± edges


def test_voiced_regions_are_merged_runs_in_seconds() -> None:
    features = harmonic.extract_features(tones_in_silence(3.0, [(0.25, 0.75, 200.0), (1.5, 2.5, 300.0)]), SR)

    regions = features["voiced_regions"]
    assert len(regions) == 2
    for (start, end), (expected_start, expected_end) in zip(regions, [(0.25, 0.75), (1.5, 2.5)], strict=True):
        assert start == pytest.approx(expected_start, abs=EDGE_S)
        assert end == pytest.approx(expected_end, abs=EDGE_S)
        assert [start, end] == [round(start, 3), round(end, 3)]
    hz = features["f0_track"]["hz"]
    assert hz[50] == pytest.approx(200.0, rel=0.005)  # 0.50 s
    assert hz[200] == pytest.approx(300.0, rel=0.005)  # 2.00 s


def test_a_long_clip_has_at_most_2000_values_each_the_median_at_its_own_time() -> None:
    """30 s: 3,001 frames of 10 ms are too many, so two frames per value (hop 0.02 s, 1,501 values: 0 to
    30 s); 200 Hz from 5 s to 15 s, 300 Hz from 15 s to 25 s."""
    y = tones_in_silence(30.0, [(5.0, 15.0, 200.0), (15.0, 25.0, 300.0)])
    features = harmonic.extract_features(y, SR)

    track = features["f0_track"]
    assert track["hop_s"] == 0.02
    assert len(track["hz"]) == 1501
    at = {
        time_s: track["hz"][round(time_s / 0.02)] for time_s in (2.0, 5.1, 10.0, 14.9, 15.1, 20.0, 24.9, 28.0)
    }
    assert [at[2.0], at[28.0]] == [None, None]
    for time_s in (5.1, 10.0, 14.9):
        assert at[time_s] == pytest.approx(200.0, rel=0.005), time_s
    for time_s in (15.1, 20.0, 24.9):
        assert at[time_s] == pytest.approx(300.0, rel=0.005), time_s
    # the pitch jumps at 15 s (and the waveform with it): a frame or two there are not periodic
    regions = features["voiced_regions"]
    assert len(regions) == 2
    for (start, end), expected in zip(regions, [(5.0, 15.0), (15.0, 25.0)], strict=True):
        assert (start, end) == pytest.approx(expected, abs=EDGE_S)


def test_decimation_of_a_600_s_track() -> None:
    """600 s at 10 ms: 60,001 frames. The fewest frames per value that give at most 2,000 values is 31
    (30 would give 2,001): hop 0.31 s and 1,936 values (0 to 599.85 s). Value i is the median of the voiced
    frames within ±15 frames of frame 31·i, null when there is none, rounded to 0.1 Hz."""
    from harmonic.features import _track_series

    frames = np.full(60_001, np.nan)
    frames[1008:1019] = 100.0  # value 33 (frames 1008-1038): 11 frames at 100 Hz
    frames[1030:1037] = 400.0  # and 7 at 400 Hz: the median is 100 (the mean would be 217)
    frames[3085:3105] = 150.0  # value 100 (frames 3085-3115): 20 voiced frames, 11 unvoiced
    frames[6200] = 123.456  # value 200: one voiced frame
    track = _track_series(frames, 0.01)

    assert track["hop_s"] == 0.31
    assert len(track["hz"]) == 1936
    assert track["hz"][33] == 100.0
    assert track["hz"][100] == 150.0
    assert track["hz"][200] == 123.5
    assert [i for i, value in enumerate(track["hz"]) if value is not None] == [33, 100, 200]
