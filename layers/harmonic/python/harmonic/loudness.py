"""Integrated loudness (ITU-R BS.1770-4) and loudness normalization with a sample-peak ceiling.

Definition (ITU-R BS.1770-4, Annex 1): each channel is K-weighted (stage 1: a +4 dB high shelf above
about 1.5 kHz modelling the head; stage 2: the "RLB" high pass at about 38 Hz), the weighted signal is cut
into 400 ms gating blocks overlapping by 75 % (a new block every 100 ms), and block ``j`` has the
channel-weighted mean square ``p_j = sum_i G_i z_ij`` and loudness ``l_j = -0.691 + 10 log10 p_j``.
Blocks at or below the absolute gate (-70 LUFS) are dropped, then blocks at or below the relative gate
(the mean power of the remaining blocks, -10 LU) are dropped, and the integrated loudness is
``-0.691 + 10 log10(mean p_j)`` over the blocks that pass both gates.

The standard tabulates the K-weighting coefficients for 48 kHz only. Here both biquads are designed
for any sample rate from their analog prototypes by the bilinear transform pre-warped at each filter's
corner frequency, with the prototype parameters that reproduce the 48 kHz table exactly (B. De Man,
"Evaluation of implementations of the EBU R128 loudness measurement", AES 145, 2018; the same
parameters as libebur128 and pyloudnorm's "DeMan" filter class):

- stage 1, high shelf: f0 = 1681.97 Hz, Q = 0.70718, high-frequency gain Vh = 10^(3.99984/20),
  mid gain Vb = Vh^0.49967;
- stage 2, high pass: f0 = 38.1355 Hz, Q = 0.50033, with the passband gain the 48 kHz table has
  (its numerator is [1, -2, 1], a gain of 1.0050 = +0.043 dB). libebur128 keeps the numerator
  [1, -2, 1] at every rate, which lets the passband gain drift with the rate (+0.26 dB at 8 kHz); keeping
  the prototype's gain fixed makes a tone read the same at every rate. The result stays within 0.05 LU of
  pyloudnorm's default (RBJ-cookbook) filters from 8 to 96 kHz and matches the standard at 48 kHz.

Choices where the standard is silent:

- Only complete blocks are measured (as libebur128; pyloudnorm sometimes adds a zero-padded last block).
- A clip shorter than one block (400 ms) is measured as a single block spanning the whole clip, instead
  of raising as pyloudnorm does; digital silence and any clip with no block above the absolute gate have a
  loudness of ``-inf``. An empty clip is no audio: :class:`~harmonic.errors.InvalidAudio`, as are NaN or
  infinite samples and any other shape than the two below.
- Channel weights follow pyloudnorm's layout ``[L, R, C, Ls, Rs]``: ``G = [1, 1, 1, 1.41, 1.41]``;
  channels beyond the fifth get 1.0 (the standard's weight for any channel outside the 60°–120° surround
  zone). For other layouts pass ``channel_weights`` (e.g. ``[1, 1, 1, 0, 1.41, 1.41]`` drops the LFE of a
  5.1 WAV in L, R, C, LFE, Ls, Rs order).

Samples are in full-scale units (±1.0 is 0 dBFS). Mono is ``(n,)``, multi-channel is channel-last
``(n, channels)``, as in pyloudnorm.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from harmonic._samples import as_float, checked
from harmonic.errors import InvalidAudio

# K-weighting analog prototypes (De Man 2018; libebur128): exact fit of the BS.1770-4 48 kHz table.
SHELF_F0_HZ = 1681.974450955533
SHELF_GAIN_DB = 3.999843853973347
SHELF_Q = 0.7071752369554196
SHELF_VB_EXPONENT = 0.4996667741545416
HIGHPASS_F0_HZ = 38.13547087602444
HIGHPASS_Q = 0.5003270373238773
_TABLE_RATE_HZ = 48_000.0

BLOCK_S = 0.400  # gating block T_g
STEP_S = 0.100  # 75 % overlap
ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0
LOUDNESS_OFFSET_DB = -0.691
SURROUND_WEIGHT = 1.41

_ABSOLUTE_GATE_POWER = 10.0 ** ((ABSOLUTE_GATE_LUFS - LOUDNESS_OFFSET_DB) / 10.0)
_RELATIVE_GATE_FACTOR = 10.0 ** (RELATIVE_GATE_LU / 10.0)
# Headroom that keeps the float32 output at or below the ceiling after rounding (-8.7e-6 dB).
_CEILING_MARGIN = 1.0 - 1e-6


@lru_cache(maxsize=16)
def _k_weighting_coefficients(sr: float) -> tuple[tuple[float, ...], tuple[float, ...]]:
    # Stage 1: bilinear transform of (Vh s^2 + Vb (w0/Q) s + w0^2) / (s^2 + (w0/Q) s + w0^2),
    # pre-warped at f0.
    K = math.tan(math.pi * SHELF_F0_HZ / sr)
    Vh = 10.0 ** (SHELF_GAIN_DB / 20.0)
    Vb = Vh**SHELF_VB_EXPONENT
    a0 = 1.0 + K / SHELF_Q + K * K
    shelf = (
        (Vh + Vb * K / SHELF_Q + K * K) / a0,
        2.0 * (K * K - Vh) / a0,
        (Vh - Vb * K / SHELF_Q + K * K) / a0,
        1.0,
        2.0 * (K * K - 1.0) / a0,
        (1.0 - K / SHELF_Q + K * K) / a0,
    )
    # Stage 2: bilinear transform of g s^2 / (s^2 + (w0/Q) s + w0^2), pre-warped at f0, where g is the
    # passband gain of the 48 kHz table (numerator exactly [1, -2, 1] there).
    K48 = math.tan(math.pi * HIGHPASS_F0_HZ / _TABLE_RATE_HZ)
    gain = 1.0 + K48 / HIGHPASS_Q + K48 * K48
    K = math.tan(math.pi * HIGHPASS_F0_HZ / sr)
    a0 = 1.0 + K / HIGHPASS_Q + K * K
    b0 = gain / a0
    highpass = (b0, -2.0 * b0, b0, 1.0, 2.0 * (K * K - 1.0) / a0, (1.0 - K / HIGHPASS_Q + K * K) / a0)
    return shelf, highpass


def k_weighting_sos(sr: float) -> np.ndarray:
    """The BS.1770-4 K-weighting filter at sample rate `sr` as second-order sections, shape ``(2, 6)``.

    Row 0 is the high shelf, row 1 the RLB high pass (``scipy.signal.sosfilt`` layout ``[b0, b1, b2, 1,
    a1, a2]``). At 48 kHz these are the coefficients tabulated in BS.1770-4 (Tables 1 and 2).
    """
    return np.array(_k_weighting_coefficients(_check_rate(sr)), dtype=np.float64)


def integrated_loudness(
    samples: np.ndarray, sr: float, *, channel_weights: Sequence[float] | None = None
) -> float:
    """Gated integrated loudness in LUFS (ITU-R BS.1770-4), ``-inf`` when nothing passes the gates.

    Parameters
    ----------
    samples : np.ndarray
        ``(n,)`` mono or ``(n, channels)`` channel-last, full scale ±1.0.
    sr : float
        Sample rate in Hz (above 2 × 1682 Hz, the shelf's corner).
    channel_weights : sequence of float, optional
        ``G_i`` per channel; default ``[1, 1, 1, 1.41, 1.41]`` then 1.0 (see the module docstring).

    Returns
    -------
    float
        Integrated loudness in LUFS. A clip shorter than 400 ms is measured as one block.

    Raises
    ------
    InvalidAudio
        Samples that are not ``(n,)`` or ``(n, channels)``, empty, non-finite or not numbers.
    ValueError
        A sample rate too low for K-weighting, or bad ``channel_weights``.
    """
    x = checked(samples, name="integrated_loudness", channels=True)
    return _gated_loudness(_block_powers(x, sr, channel_weights))


def normalize_loudness(
    samples: np.ndarray,
    sr: float,
    target_lufs: float = -23.0,
    peak_dbfs: float = -1.0,
    *,
    channel_weights: Sequence[float] | None = None,
) -> np.ndarray:
    """Scale `samples` to `target_lufs` integrated loudness, never letting a sample exceed `peak_dbfs`.

    Returns float32 with the input's shape. See :func:`loudness_normalization` for the rules and errors.
    """
    x = as_float(samples, name="normalize_loudness", channels=True)
    return _normalization(x, sr, target_lufs, peak_dbfs, channel_weights)[0]


def loudness_normalization(
    samples: np.ndarray,
    sr: float,
    target_lufs: float = -23.0,
    peak_dbfs: float = -1.0,
    *,
    channel_weights: Sequence[float] | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Loudness normalization with a sample-peak ceiling, and a JSON-safe account of what was done.

    One gain is applied to every sample and channel:

    1. the loudness gain ``target_lufs - input_lufs`` (refined on the measured blocks so that the output,
       whose absolute gate may admit more blocks than the input's did, reads `target_lufs`);
    2. a ceiling: if the gained peak ``max |x|`` would exceed ``min(10^(peak_dbfs/20), 1)``, the gain is
       lowered until it does not (simple gain limiting, no compression: the output is then quieter than
       the target, and ``peak_limited`` is True). The ceiling never exceeds full scale.

    A signal without any block above the absolute gate (silence, ``input_lufs = -inf``) gets no loudness
    gain; the ceiling still holds, so silence is returned unchanged.

    Returns
    -------
    output : np.ndarray
        float32, the input's shape; ``max |output| <= 10^(peak_dbfs/20)``.
    details : dict
        ``input_lufs``, ``output_lufs`` (loudness of the output, ``None`` when ``-inf``), ``gain_db``
        (applied), ``peak_limited``, ``target_lufs``, ``peak_dbfs`` (the ceiling used) and
        ``output_peak_dbfs`` (``None`` for an all-zero output). Plain floats, bools and None only.

    Raises
    ------
    InvalidAudio
        Samples that are not ``(n,)`` or ``(n, channels)``, empty, non-finite or not numbers.
    ValueError
        A non-finite ``target_lufs`` or ``peak_dbfs``, a sample rate too low for K-weighting, or bad
        ``channel_weights``.
    """
    x = as_float(samples, name="loudness_normalization", channels=True)
    return _normalization(x, sr, target_lufs, peak_dbfs, channel_weights)


def _normalization(
    x: np.ndarray,
    sr: float,
    target_lufs: float,
    peak_dbfs: float,
    channel_weights: Sequence[float] | None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """:func:`loudness_normalization` of validated floating-point samples."""
    if not (math.isfinite(target_lufs) and math.isfinite(peak_dbfs)):
        raise ValueError(f"target_lufs and peak_dbfs must be finite, got {target_lufs} and {peak_dbfs}")
    powers = _block_powers(x, sr, channel_weights)
    input_lufs = _gated_loudness(powers)

    gain_db = 0.0
    if input_lufs > -math.inf:
        gain_db = target_lufs - input_lufs
        best_gain_db, best_error = gain_db, math.inf
        for _ in range(4):  # the absolute gate is not scale invariant: re-measure the gained blocks
            error = target_lufs - _gated_loudness(powers, 10.0 ** (gain_db / 10.0))
            if not math.isfinite(error):
                break
            if abs(error) < abs(best_error):
                best_gain_db, best_error = gain_db, error
            if abs(error) < 1e-6:
                break
            gain_db += error
        gain_db = best_gain_db
    gain = 10.0 ** (gain_db / 20.0)

    ceiling_dbfs = min(float(peak_dbfs), 0.0)
    ceiling = 10.0 ** (ceiling_dbfs / 20.0) * _CEILING_MARGIN
    peak = float(np.max(np.abs(x)))
    peak_limited = peak * gain > ceiling
    if peak_limited:
        gain = ceiling / peak

    output = np.multiply(x, np.float32(gain), dtype=np.float32)
    output_lufs = _gated_loudness(powers, gain * gain)
    output_peak = peak * gain
    details = {
        "input_lufs": _finite_or_none(input_lufs),
        "output_lufs": _finite_or_none(output_lufs),
        "gain_db": 20.0 * math.log10(gain),
        "peak_limited": bool(peak_limited),
        "target_lufs": float(target_lufs),
        "peak_dbfs": ceiling_dbfs,
        "output_peak_dbfs": _finite_or_none(20.0 * math.log10(output_peak) if output_peak > 0 else -math.inf),
    }
    return output, details


def _check_rate(sr: float) -> float:
    rate = float(sr)
    if not (math.isfinite(rate) and rate > 2.0 * SHELF_F0_HZ):
        raise ValueError(
            f"sample rate {sr} Hz is too low for K-weighting: it must exceed {2.0 * SHELF_F0_HZ:.0f} Hz "
            "(twice the high shelf's corner frequency)"
        )
    return rate


def _channel_weights(channels: int, channel_weights: Sequence[float] | None) -> np.ndarray:
    if channel_weights is None:
        weights = np.ones(channels)
        weights[3:5] = SURROUND_WEIGHT
        return weights
    weights = np.asarray(channel_weights, dtype=np.float64)
    if weights.shape != (channels,) or not np.all(np.isfinite(weights) & (weights >= 0)):
        raise ValueError(
            f"channel_weights must be {channels} finite non-negative numbers, got {channel_weights}"
        )
    return weights


def _block_starts(n: int, rate: float) -> tuple[np.ndarray, int]:
    """Start indices of the complete 400 ms blocks (every 100 ms) and the block length in samples."""
    block = round(BLOCK_S * rate)
    if n < block:  # shorter than one block: the whole clip is the only block
        return np.zeros(1, dtype=np.int64), n
    last = int((n - block) / (STEP_S * rate)) + 1
    starts = np.floor(np.arange(last + 1) * (STEP_S * rate)).astype(np.int64)
    return starts[starts + block <= n], block


def _block_powers(x: np.ndarray, sr: float, channel_weights: Sequence[float] | None) -> np.ndarray:
    """Channel-weighted mean square of the K-weighted signal per gating block: ``p_j = sum_i G_i z_ij``.

    ``x``: samples validated by :mod:`harmonic._samples` (``(n,)`` or ``(n, channels)``, finite, not empty).
    """
    from scipy.signal import sosfilt

    rate = _check_rate(sr)
    weights = _channel_weights(1 if x.ndim == 1 else x.shape[1], channel_weights)
    starts, block = _block_starts(x.shape[0], rate)
    y = sosfilt(k_weighting_sos(rate), x, axis=0)  # float64 output for any real input
    if not np.all(np.isfinite(y[-1])):  # finite input, yet an IIR state that overflowed never recovers
        raise InvalidAudio("the samples are too large to measure (expected full-scale units, ±1.0)")
    if y.ndim == 2:
        energy = np.square(y, out=y) @ weights
    else:
        energy = np.square(y, out=y)
        if weights[0] != 1.0:
            energy *= weights[0]

    # Sum the energy between consecutive block edges, then each block is a run of those segments.
    ends = starts + block
    edges = np.union1d(starts, ends)
    segment_sums = np.add.reduceat(energy[: edges[-1]], edges[:-1])
    cumulative = np.concatenate(([0.0], np.cumsum(segment_sums)))
    block_sums = cumulative[np.searchsorted(edges, ends)] - cumulative[np.searchsorted(edges, starts)]
    return block_sums / block


def _gated_loudness(block_powers: np.ndarray, scale: float = 1.0) -> float:
    """BS.1770-4 eq. 5–7 on block powers multiplied by `scale` (a power gain); ``-inf`` if all gated."""
    powers = block_powers * scale
    powers = powers[powers > _ABSOLUTE_GATE_POWER]
    if powers.size == 0:
        return -math.inf
    powers = powers[powers > _RELATIVE_GATE_FACTOR * powers.mean()]
    return LOUDNESS_OFFSET_DB + 10.0 * math.log10(powers.mean())


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None
