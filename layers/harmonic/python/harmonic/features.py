"""The `features` part of a Harmonic result: clip-level summaries of the frame-wise descriptors.

Frame-wise descriptors come from :mod:`harmonic.spectral` (MFCC, chroma, spectral centroid and flatness, all
with librosa's definitions) and :mod:`harmonic.pitch` (YIN-family f0 with voicing, Boersma HNR). This module
only summarizes them into plain JSON types: floats rounded to 4 decimals, lists for vectors, and ``None``
where a value is undefined (no voiced frame, silence) since JSON has no NaN or infinity.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from harmonic._samples import checked
from harmonic.jsonsafe import json_safe
from harmonic.pitch import f0 as f0_track
from harmonic.pitch import hnr as harmonic_to_noise
from harmonic.spectral import chroma, mfcc, spectral_centroid, spectral_flatness, stft_power

PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")

# Frame parameters: 32 ms windows and 10 ms hops at 16 kHz, the speech-analysis convention.
N_FFT = 512
HOP_LENGTH = 160
N_MFCC = 13
N_MELS = 40
# Frames quieter than this (relative to the loudest frame) are left out of the spectral-shape means:
# the centroid and flatness of digital silence or a noise floor say nothing about the sound.
SILENT_FRAME_DB = -60.0


def _number(value: float) -> float | None:
    """A JSON-safe float: rounded, or None for NaN and infinities (harmonic.jsonsafe)."""
    return json_safe(float(value))


def _vector(values: np.ndarray) -> list[float | None]:
    return json_safe(np.asarray(values, dtype=np.float64))


def _f0_summary(track: np.ndarray) -> dict[str, float | None]:
    voiced = track[np.isfinite(track)]
    if voiced.size == 0:
        return dict.fromkeys(("mean", "median", "min", "max", "std", "p10", "p90"))
    p10, median, p90 = np.percentile(voiced, [10, 50, 90])
    return {
        "mean": _number(voiced.mean()),
        "median": _number(median),
        "min": _number(voiced.min()),
        "max": _number(voiced.max()),
        "std": _number(voiced.std()),
        "p10": _number(p10),
        "p90": _number(p90),
    }


def extract_features(samples: np.ndarray, sr: int) -> dict[str, Any]:
    """Clip-level features of a mono clip, JSON-serializable.

    Keys: ``duration_s``, ``sample_rate``, ``frames``, ``rms_dbfs``, ``f0_hz`` (mean, median, min, max, std,
    p10, p90 over voiced frames), ``voiced_fraction``, ``hnr_db``, ``spectral_centroid_hz`` and
    ``spectral_flatness`` (means over non-silent frames), ``mfcc_mean`` / ``mfcc_std`` (13 coefficients),
    ``chroma_mean`` (12 pitch classes, C first) and ``dominant_pitch_class``.

    Computed on the samples rounded to float32. Raises :class:`~harmonic.errors.InvalidAudio` for samples
    that are not mono ``(n,)``, empty, non-finite or not numbers.
    """
    y = np.asarray(checked(samples, name="extract_features"), dtype=np.float32)
    duration_s = y.size / sr
    rms = float(np.sqrt(np.mean(np.square(y, dtype=np.float64))))

    power = stft_power(y, n_fft=N_FFT, hop_length=HOP_LENGTH)  # one STFT for MFCC, centroid, flatness
    mfccs = mfcc(None, sr, n_mfcc=N_MFCC, n_mels=N_MELS, S=power)
    n_frames = mfccs.shape[1]
    # Frame level from the STFT already computed (Hann-weighted energy; only compared with its own maximum).
    loud = 10.0 * np.log10(np.maximum(np.asarray(power, dtype=np.float64).sum(axis=0), 1e-20))
    active = loud > (loud.max() + SILENT_FRAME_DB) if n_frames else np.zeros(0, dtype=bool)

    centroid = spectral_centroid(None, sr, S=power)
    flatness = spectral_flatness(None, S=power)
    chroma_frames = chroma(y, sr)
    track = f0_track(y, sr, hop_length=HOP_LENGTH)
    harmonicity = harmonic_to_noise(y, sr)

    chroma_mean = chroma_frames.mean(axis=1) if chroma_frames.size else np.zeros(12)
    has_tone = rms > 0 and bool(np.any(chroma_mean > 0))
    return {
        "duration_s": _number(duration_s),
        "sample_rate": int(sr),
        "frames": int(n_frames),
        "rms_dbfs": _number(20.0 * np.log10(rms)) if rms > 0 else None,
        "f0_hz": _f0_summary(track),
        "voiced_fraction": _number(np.mean(np.isfinite(track))) if track.size else 0.0,
        "hnr_db": _number(harmonicity),
        "spectral_centroid_hz": _number(centroid[active].mean()) if active.any() else None,
        "spectral_flatness": _number(flatness[active].mean()) if active.any() else None,
        "mfcc_mean": _vector(mfccs.mean(axis=1)) if n_frames else [None] * N_MFCC,
        "mfcc_std": _vector(mfccs.std(axis=1)) if n_frames else [None] * N_MFCC,
        "chroma_mean": _vector(chroma_mean),
        "dominant_pitch_class": PITCH_CLASSES[int(np.argmax(chroma_mean))] if has_tone else None,
    }
