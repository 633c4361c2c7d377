"""The `features` part of a Harmonic result: clip-level summaries of the frame-wise descriptors.

Frame-wise descriptors come from :mod:`harmonic.spectral` (MFCC, chroma, spectral centroid and flatness, all
with librosa's definitions) and :mod:`harmonic.pitch` (YIN-family f0 with voicing, Boersma HNR). This module
summarizes them into plain JSON types: floats rounded to 4 decimals, lists for vectors, and ``None`` where a
value is undefined (no voiced frame, silence) since JSON has no NaN or infinity. One time series is kept:
the f0 track (at most ``MAX_TRACK_VALUES`` values) and the voiced regions it implies.
"""

from __future__ import annotations

import warnings
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
# The f0 analysis frame (harmonic.f0's default: 64 ms at 16 kHz; YIN integrates over its first half).
F0_FRAME_LENGTH = 1024
# The f0 track in the result has at most this many values (longer clips: medians over groups of frames).
MAX_TRACK_VALUES = 2000
TRACK_HZ_DECIMALS = 1
REGION_DECIMALS = 3
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


def _centred_f0(y: np.ndarray, sr: int) -> np.ndarray:
    """f0 per ``HOP_LENGTH`` samples (NaN where unvoiced), value ``i`` measured on the audio centred on sample
    ``i·HOP_LENGTH``: YIN's integration window is samples ``[i·hop − N/4, i·hop + N/4)`` (N =
    ``F0_FRAME_LENGTH``), compared with itself one period later. ``1 + len(y) // HOP_LENGTH`` values.

    ``harmonic.f0`` frames like ``librosa.yin(center=True)``: its frame ``t`` spans ``[t·hop − N/2, t·hop +
    N/2)`` and YIN integrates over the first half, ``[t·hop − N/2, t·hop)``, so its value ``t`` describes the
    audio N/4 samples (16 ms at 16 kHz) *before* ``t·hop`` (a tone's voiced frames read 10 to 25 ms late by
    those frame times). Here the clip gets ``lead`` zeros in front and the first ``skip`` frames are dropped,
    ``skip·hop − lead = N/4``, which moves every window onto its own time.
    """
    quarter = F0_FRAME_LENGTH // 4
    skip = -(-quarter // HOP_LENGTH)
    lead = skip * HOP_LENGTH - quarter
    padded = np.concatenate((np.zeros(lead, y.dtype), y, np.zeros(skip * HOP_LENGTH, y.dtype)))
    track = f0_track(padded, sr, frame_length=F0_FRAME_LENGTH, hop_length=HOP_LENGTH)
    return track[skip : skip + 1 + y.size // HOP_LENGTH]


def _track_series(track: np.ndarray, frame_s: float) -> dict[str, Any]:
    """``{"hop_s", "hz"}``: the f0 track with at most MAX_TRACK_VALUES values, ``hz[i]`` at ``i·hop_s``.

    With more frames than that, ``hz[i]`` is the median of the voiced frames within ±⌊k/2⌋ frames of frame
    ``i·k`` (k frames per value, the smallest k that fits; groups centred on their time, so an even k shares
    its edge frames with the neighbours), ``None`` when none of them is voiced; ``hop_s = k·frame_s``.
    Values in Hz rounded to 0.1.
    """
    n = track.size
    factor = 1 if n <= MAX_TRACK_VALUES else -(-(n - 1) // (MAX_TRACK_VALUES - 1))
    half = factor // 2
    padded = np.concatenate((np.full(half, np.nan), track, np.full(half, np.nan)))
    groups = np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1)[::factor]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a group without a voiced frame: NaN, i.e. None
        medians = np.nanmedian(groups, axis=-1)
    hz = [round(float(v), TRACK_HZ_DECIMALS) if np.isfinite(v) else None for v in medians]
    return {"hop_s": round(factor * frame_s, 6), "hz": hz}


def _voiced_regions(track: np.ndarray, frame_s: float, duration_s: float) -> list[list[float]]:
    """``[[start_s, end_s], ...]`` of each run of voiced frames, frame ``i`` covering ``i·frame_s ±
    frame_s/2`` (within ``[0, duration_s]``), rounded to milliseconds."""
    voiced = np.concatenate(([False], np.isfinite(track), [False]))
    edges = np.flatnonzero(np.diff(voiced.astype(np.int8)))
    return [
        [
            round(max(0.0, (first - 0.5) * frame_s), REGION_DECIMALS),
            round(min(duration_s, (end - 0.5) * frame_s), REGION_DECIMALS),
        ]
        for first, end in zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True)
    ]


def extract_features(samples: np.ndarray, sr: int) -> dict[str, Any]:
    """Clip-level features of a mono clip, JSON-serializable.

    Keys: ``duration_s``, ``sample_rate``, ``frames``, ``rms_dbfs``, ``f0_hz`` (mean, median, min, max, std,
    p10, p90 over voiced frames), ``voiced_fraction``, ``hnr_db``, ``spectral_centroid_hz`` and
    ``spectral_flatness`` (means over non-silent frames), ``mfcc_mean`` / ``mfcc_std`` (13 coefficients),
    ``chroma_mean`` (12 pitch classes, C first) and ``dominant_pitch_class``; and the time series
    ``f0_track`` = ``{"hop_s", "hz"}`` and ``voiced_regions`` = ``[[start_s, end_s], ...]``.

    The f0 frames are ``HOP_LENGTH`` samples apart (10 ms at 16 kHz); frame ``i`` is measured on the audio
    centred on time ``i·HOP_LENGTH/sr`` (YIN's 32 ms integration window, ``F0_FRAME_LENGTH // 2`` samples,
    centred there; see ``_centred_f0``), and there are ``1 + len(samples) // HOP_LENGTH`` of them. Every
    f0 statistic and ``voiced_fraction`` are over these frames. ``f0_track.hz[i]`` is the f0 (Hz, 0.1 Hz
    precision; ``None`` where unvoiced) at time ``i·hop_s``: every frame when there are at most
    ``MAX_TRACK_VALUES`` (``hop_s`` = the frame hop), else the median of the voiced frames within ±⌊k/2⌋
    frames of frame ``i·k``, k the fewest frames per value that fit (``hop_s`` = k frame hops).
    ``voiced_regions`` are the runs of voiced frames, each frame covering half a hop either side of its
    time, clipped to the clip (seconds, 3 decimals).

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
    track = _centred_f0(y, sr)
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
        "f0_track": _track_series(track, HOP_LENGTH / sr),
        "voiced_regions": _voiced_regions(track, HOP_LENGTH / sr, duration_s),
    }
