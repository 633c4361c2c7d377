"""Sample-rate conversion by polyphase filtering (scipy ``resample_poly``) with exact rational ratios.

The ratio ``target_sr / orig_sr`` is reduced by their greatest common divisor, so common conversions
use small exact factors (44100 → 16000 is up 160, down 441; 48000 → 16000 is up 1, down 3) instead of a
floating-point approximation. ``resample_poly`` applies a Kaiser-windowed FIR anti-aliasing filter
(beta 5.0) and compensates its delay, so the output is time-aligned with the input and has
``ceil(n * up / down)`` samples.
"""

from __future__ import annotations

from math import gcd

import numpy as np

from harmonic._samples import checked

# Beyond this the polyphase filter (length ~ 20 * max(up, down)) becomes needlessly large for audio.
MAX_FACTOR = 1_000_000


def resample_factors(orig_sr: int, target_sr: int) -> tuple[int, int]:
    """The reduced ``(up, down)`` pair for converting ``orig_sr`` to ``target_sr``."""
    if int(orig_sr) != orig_sr or int(target_sr) != target_sr or orig_sr <= 0 or target_sr <= 0:
        raise ValueError(f"sample rates must be positive integers; got {orig_sr} and {target_sr}")
    divisor = gcd(int(orig_sr), int(target_sr))
    return int(target_sr) // divisor, int(orig_sr) // divisor


def resample(samples: np.ndarray, orig_sr: int, target_sr: int, axis: int = 0) -> np.ndarray:
    """Resample ``samples`` (along ``axis``, default the time axis of ``(n,)`` / ``(n, channels)``).

    Returns the input unchanged (same object) when the rates are equal; float32 input stays float32,
    anything else comes back as float64. Raises :class:`~harmonic.errors.InvalidAudio` for samples that are
    not 1-D or 2-D, empty, non-finite or not numbers, ``ValueError`` for bad rates.
    """
    x = checked(samples, name="resample", channels=True)
    up, down = resample_factors(orig_sr, target_sr)
    if up == down:
        return x
    if max(up, down) > MAX_FACTOR:
        raise ValueError(f"the ratio {target_sr}/{orig_sr} reduces to {up}/{down}; too large to resample")
    from scipy.signal import resample_poly  # deferred: scipy.signal is heavy to import at cold start

    dtype = np.float32 if x.dtype == np.float32 else np.float64
    y = resample_poly(x.astype(np.float64, copy=False), up, down, axis=axis)
    return y.astype(dtype, copy=False)
