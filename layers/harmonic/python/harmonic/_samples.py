"""The one check of input samples shared by every public DSP function of the package.

Bad *samples* are a property of the audio, not of the program: an array of the wrong shape, an empty one,
NaN or infinite values, or values that are not real numbers (strings, objects, booleans, complex). Whichever
function meets them first raises :class:`~harmonic.errors.InvalidAudio` with the same words, so a caller
(the service) sees one permanent "invalid audio" failure, never a retryable ``ValueError``. Bad *parameters*
(frequencies, frame sizes, sample rates) are programmer errors and stay plain ``ValueError`` in each function.

Every message starts with the name of the public function that refused the samples.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from harmonic.errors import InvalidAudio

# dtype kinds that hold audio: signed and unsigned integers, floating point. Not booleans, complex numbers,
# strings, bytes, objects, dates.
_REAL_KINDS = frozenset("iuf")


def checked(samples: Any, *, name: str, channels: bool = False) -> np.ndarray:
    """``samples`` as an array, validated but not converted: the same object (same dtype, no copy) when it
    already is an ndarray.

    Valid samples have a real integer or floating dtype, the shape ``(n,)`` (or, with ``channels``, also the
    channel-last ``(n, channels)`` with ``channels >= 1``), at least one sample, and only finite values.
    Raises :class:`InvalidAudio` naming ``name`` otherwise.
    """
    try:
        x = np.asarray(samples)
    except (TypeError, ValueError) as error:  # ragged nested sequences, objects numpy cannot hold
        raise InvalidAudio(f"{name}: the samples are not an array of numbers ({error})") from None
    if x.dtype.kind not in _REAL_KINDS:
        raise InvalidAudio(
            f"{name}: samples must be real numbers (an integer or floating-point array); got dtype {x.dtype}"
        )
    if channels:
        if x.ndim not in (1, 2) or (x.ndim == 2 and x.shape[1] == 0):
            raise InvalidAudio(
                f"{name}: expected samples of shape (n,) or (n, channels) with channels >= 1, "
                f"got an array of shape {x.shape}"
            )
    elif x.ndim != 1:
        raise InvalidAudio(f"{name}: expected mono samples of shape (n,), got an array of shape {x.shape}")
    if x.size == 0:
        raise InvalidAudio(f"{name}: the signal is empty (0 samples)")
    if x.dtype.kind == "f" and not np.isfinite(x).all():  # integers are always finite
        raise InvalidAudio(f"{name}: the samples contain NaN or infinite values")
    return x


def as_mono_float64(samples: Any, *, name: str) -> np.ndarray:
    """Validated mono samples ``(n,)`` (see :func:`checked`) as a C-contiguous float64 array; no copy when
    they already are one.

    Integer samples are converted by value, not scaled to full scale: int16 ``16384`` becomes ``16384.0``.
    """
    return np.ascontiguousarray(checked(samples, name=name), dtype=np.float64)


def as_float(samples: Any, *, name: str, channels: bool = False) -> np.ndarray:
    """Validated samples (see :func:`checked`) in floating point: float32 and float64 arrays as they are (no
    copy), any other dtype converted to float64 (by value, as :func:`as_mono_float64`).

    For functions that compute or return float32 anyway, so that a float32 clip costs no float64 copy.
    """
    x = checked(samples, name=name, channels=channels)
    return x if x.dtype in (np.float32, np.float64) else x.astype(np.float64)
