"""Spectral analysis with librosa's definitions: STFT power, Slaney mel, log-power, MFCC, chroma, centroid,
flatness.

Every function follows the corresponding librosa 0.11 function with its default arguments, so that numbers
computed here in a Lambda agree with numbers a user computes in a notebook:

- frames are centered: the signal is padded by ``n_fft // 2`` on both sides (librosa's ``center=True``,
  zeros by default as ``pad_mode="constant"``), giving ``1 + len(y) // hop_length`` frames (for an odd
  ``n_fft``, ``1 + (len(y) - 1) // hop_length``, as librosa);
- the window is a periodic Hann window of ``win_length`` (default ``n_fft``) samples, centred in the frame;
- the mel scale and filter normalization are Slaney's (Auditory Toolbox, 1998), as ``librosa.filters.mel``
  with ``htk=False, norm="slaney"``;
- MFCCs are the orthonormal DCT-II of the log-mel power spectrogram clipped 80 dB below its peak (Davis &
  Mermelstein 1980; librosa.feature.mfcc);
- chroma is Ellis' STFT chroma (librosa.filters.chroma / chroma_stft) with ``tuning=0``.

Conventions:

- every ``S`` argument is a *power* spectrogram ``|STFT|**2`` of shape ``(1 + n_fft // 2, frames)`` as
  returned by :func:`stft_power`, so callers can compute the STFT once and derive every descriptor from it
  (:func:`spectral_centroid` takes its square root, since librosa defines the centroid on magnitudes). When
  ``S`` is given, ``samples`` is ignored (pass ``None``), and ``n_fft`` is taken from the argument if it fits
  ``S``'s row count, else inferred as ``2 * (rows - 1)`` as librosa does;
- samples that are not mono ``(n,)``, empty, non-finite or not numbers raise
  :class:`~harmonic.errors.InvalidAudio` (the package's one check, :mod:`harmonic._samples`); bad parameters
  raise ``ValueError``;
- precision: everything is computed in float64 and returned as float64, whatever the input's dtype. librosa
  transforms float32 input in float32; on such input the two agree to ~1e-4 in MFCCs and ~1e-6 in chroma
  and flatness, on float64 input to ~1e-12. Filter banks are rounded to float32 as librosa builds them.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from functools import lru_cache

import numpy as np
import scipy.fft

from harmonic._samples import as_mono_float64

N_FFT = 512
HOP_LENGTH = 160
N_MELS = 40
N_MFCC = 13
CHROMA_N_FFT = 2048
CHROMA_HOP_LENGTH = 512

# Bytes of windowed frames per rfft call (librosa works in 256 KB blocks). Small blocks keep the temporaries
# in cache and off the allocator's mmap path: 10 s at 16 kHz, n_fft=512 takes ~2 ms instead of ~7 ms in one
# block, and a 600 s clip needs no ~250 MB of windowed frames at once.
_BLOCK_BYTES = 1 << 17
# np.pad modes that make sense for centering frames (librosa.stft rejects "wrap" and the statistical ones).
_PAD_MODES = frozenset({"constant", "edge", "linear_ramp", "reflect", "symmetric"})


def _positive_int(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
    return int(value)


@lru_cache(maxsize=16)
def _window(n_fft: int, win_length: int) -> np.ndarray:
    """Periodic Hann window of ``win_length`` samples zero-padded to ``n_fft``, centred (librosa's
    ``get_window("hann", win_length, fftbins=True)`` then ``util.pad_center``). Cached, read-only."""
    hann = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(win_length) / win_length)
    left = (n_fft - win_length) // 2
    window = np.pad(hann, (left, n_fft - win_length - left))
    window.flags.writeable = False
    return window


def stft_power(
    samples: np.ndarray,
    n_fft: int = N_FFT,
    hop_length: int = HOP_LENGTH,
    win_length: int | None = None,
    center: bool = True,
    pad_mode: str = "constant",
) -> np.ndarray:
    """Power spectrogram ``|STFT|**2``, C-contiguous, of shape ``(1 + n_fft // 2, frames)``.

    ``X[k, t] = sum_n w[n] y[t * hop_length + n - n_fft // 2] exp(-2πi k n / n_fft)`` with ``w`` a periodic
    Hann window of ``win_length`` samples centred in ``n_fft``: the same frames and values as
    ``np.abs(librosa.stft(y, n_fft=n_fft, hop_length=hop_length, win_length=win_length, center=center,
    pad_mode=pad_mode)) ** 2``. Centered, that is ``1 + (len(y) + 2 * (n_fft // 2) - n_fft) // hop_length``
    frames (``1 + len(y) // hop_length`` for even ``n_fft``), also for inputs shorter than ``n_fft``; without
    ``center`` only whole frames inside the signal (none if it is shorter than ``n_fft``; librosa raises).

    Computed and returned in float64 (see the module notes on precision). Raises
    :class:`~harmonic.errors.InvalidAudio` for samples that are not mono, empty, non-finite or not numbers.
    """
    y = as_mono_float64(samples, name="stft_power")
    return _stft_power(y, n_fft, hop_length, win_length, center, pad_mode)


def _stft_power(
    y: np.ndarray, n_fft: int, hop_length: int, win_length: int | None, center: bool, pad_mode: str
) -> np.ndarray:
    """:func:`stft_power` of validated float64 mono samples."""
    n_fft = _positive_int("n_fft", n_fft)
    hop_length = _positive_int("hop_length", hop_length)
    win_length = n_fft if win_length is None else _positive_int("win_length", win_length)
    if win_length > n_fft:
        raise ValueError(f"win_length ({win_length}) must not exceed n_fft ({n_fft})")
    if pad_mode not in _PAD_MODES:
        raise ValueError(f"pad_mode must be one of {sorted(_PAD_MODES)}; got {pad_mode!r}")
    if center:
        y = np.pad(y, n_fft // 2, mode=pad_mode)
    n_frames = 1 + (y.size - n_fft) // hop_length if y.size >= n_fft else 0
    power = np.empty((1 + n_fft // 2, n_frames))
    if n_frames == 0:
        return power
    window = _window(n_fft, win_length)
    frames = np.lib.stride_tricks.sliding_window_view(y, n_fft)[::hop_length]
    step = max(1, _BLOCK_BYTES // (n_fft * y.itemsize))
    for start in range(0, n_frames, step):
        spectrum = scipy.fft.rfft(frames[start : start + step] * window, axis=-1)
        block = np.square(spectrum.real)
        block += np.square(spectrum.imag)
        power[:, start : start + step] = block.T
    return power


def _power(
    samples: np.ndarray | None, n_fft: int, hop_length: int, S: np.ndarray | None, name: str
) -> tuple[np.ndarray, int, float]:
    """``(power, n_fft, tiny)``: the power spectrogram given or computed, in float64; the FFT size it belongs
    to; and the smallest normal number of the precision librosa would work in (float32 for float32 samples
    or S), below which its util.normalize leaves a frame as it is (silent). ``name``: the public function,
    for the message of :class:`~harmonic.errors.InvalidAudio` when the samples are bad."""
    if S is None:
        if samples is None:
            raise ValueError("pass the samples, or a power spectrogram S")
        y = as_mono_float64(samples, name=name)
        source_dtype = np.asarray(samples).dtype
        power = _stft_power(y, n_fft, hop_length, None, True, "constant")
    else:
        power = np.asarray(S)
        if power.ndim != 2 or power.shape[0] < 2:
            raise ValueError(
                f"S must be a power spectrogram (1 + n_fft // 2, frames); got shape {power.shape}"
            )
        if np.iscomplexobj(power) or np.any(power < 0):
            raise ValueError("S must be a real, non-negative power spectrogram (from stft_power)")
        if power.shape[0] != 1 + n_fft // 2:
            n_fft = 2 * (power.shape[0] - 1)
        source_dtype = power.dtype
    tiny = float(np.finfo(np.float32 if source_dtype == np.float32 else np.float64).tiny)
    return np.asarray(power, dtype=np.float64), n_fft, tiny


def fft_frequencies(sr: float, n_fft: int) -> np.ndarray:
    """Frequency (Hz) of each rfft bin, ``k * sr / n_fft`` (librosa.fft_frequencies)."""
    return np.fft.rfftfreq(n_fft, 1.0 / sr)


_F_SP = 200.0 / 3  # Slaney: 200/3 Hz per mel below 1 kHz
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP  # 15 mels at 1 kHz
_LOGSTEP = np.log(6.4) / 27.0  # above 1 kHz: 27 mels per factor 6.4 in frequency


def hz_to_mel(frequencies: np.ndarray | float) -> np.ndarray:
    """Slaney's mel scale (librosa.hz_to_mel, ``htk=False``): ``f / (200/3)`` below 1 kHz,
    ``15 + 27 * log(f / 1000) / log(6.4)`` above."""
    f = np.asarray(frequencies, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_part = _MIN_LOG_MEL + np.log(f / _MIN_LOG_HZ) / _LOGSTEP
    return np.where(f >= _MIN_LOG_HZ, log_part, f / _F_SP)


def mel_to_hz(mels: np.ndarray | float) -> np.ndarray:
    """Inverse of :func:`hz_to_mel` (librosa.mel_to_hz, ``htk=False``)."""
    m = np.asarray(mels, dtype=np.float64)
    with np.errstate(over="ignore"):
        log_part = _MIN_LOG_HZ * np.exp(_LOGSTEP * (m - _MIN_LOG_MEL))
    return np.where(m >= _MIN_LOG_MEL, log_part, _F_SP * m)


@lru_cache(maxsize=32)
def mel_filterbank(
    sr: float, n_fft: int = N_FFT, n_mels: int = N_MELS, fmin: float = 0.0, fmax: float | None = None
) -> np.ndarray:
    """Slaney-normalized triangular mel filters, shape ``(n_mels, 1 + n_fft // 2)`` (librosa.filters.mel with
    its defaults ``htk=False, norm="slaney"``; Slaney's Auditory Toolbox, 1998).

    Filter ``i`` rises from mel point ``i`` to ``i + 1`` and falls to ``i + 2`` (``n_mels + 2`` points evenly
    spaced in mels between ``fmin`` and ``fmax``, default ``sr / 2``), scaled by ``2 / (f[i + 2] - f[i])`` so
    that it has unit area. Rounded to float32 as librosa builds it, then held as float64. Cached by
    arguments; the array is read-only.
    """
    n_fft = _positive_int("n_fft", n_fft)
    n_mels = _positive_int("n_mels", n_mels)
    fmax = float(sr) / 2 if fmax is None else float(fmax)
    if not 0.0 <= fmin < fmax:
        raise ValueError(f"need 0 <= fmin < fmax; got fmin={fmin}, fmax={fmax}")
    mel_f = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    widths = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fft_frequencies(sr, n_fft))
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    # Same roundings as librosa: triangles stored in float32, scaled in float64, stored in float32 again.
    weights = np.maximum(0.0, np.minimum(lower, upper)).astype(np.float32)
    weights = (weights * (2.0 / (mel_f[2:] - mel_f[:-2]))[:, None]).astype(np.float32).astype(np.float64)
    weights.flags.writeable = False
    return weights


def melspectrogram(
    samples: np.ndarray | None,
    sr: float,
    n_fft: int = N_FFT,
    hop_length: int = HOP_LENGTH,
    n_mels: int = N_MELS,
    fmin: float = 0.0,
    fmax: float | None = None,
    S: np.ndarray | None = None,
) -> np.ndarray:
    """Mel power spectrogram ``M = mel_filterbank @ |STFT|**2``, shape ``(n_mels, frames)``, float64
    (librosa.feature.melspectrogram with ``power=2``). Pass ``S`` (from :func:`stft_power`) to reuse an STFT.
    """
    power, n_fft, _ = _power(samples, n_fft, hop_length, S, "melspectrogram")
    return mel_filterbank(sr, n_fft, n_mels, fmin, fmax) @ power


def power_to_db(
    S: np.ndarray,
    ref: float | Callable[[np.ndarray], float] = 1.0,
    amin: float = 1e-10,
    top_db: float | None = 80.0,
) -> np.ndarray:
    """``10 * log10(max(amin, S) / max(amin, |ref|))``, then floored ``top_db`` below its maximum, in float64
    (librosa.power_to_db).

    ``ref`` is a number or a callable applied to ``S`` (e.g. ``np.max`` for dB relative to the peak);
    ``top_db=None`` disables the floor. Complex input is replaced by its magnitude with a warning, as librosa.
    """
    if amin <= 0:
        raise ValueError("amin must be strictly positive")
    if top_db is not None and top_db < 0:
        raise ValueError("top_db must be non-negative")
    S = np.asarray(S)
    if np.iscomplexobj(S):
        warnings.warn(
            "power_to_db was called on complex input so phase information will be discarded; "
            "call power_to_db(np.abs(D) ** 2) instead",
            stacklevel=2,
        )
        S = np.abs(S)
    S = np.asarray(S, dtype=np.float64)
    ref_value = ref(S) if callable(ref) else np.abs(ref)
    log_spec = 10.0 * np.log10(np.maximum(amin, S))
    log_spec -= 10.0 * np.log10(np.maximum(amin, ref_value))
    if top_db is not None and log_spec.size:
        np.maximum(log_spec, log_spec.max() - top_db, out=log_spec)
    return log_spec


def mfcc(
    samples: np.ndarray | None,
    sr: float,
    n_mfcc: int = N_MFCC,
    n_fft: int = N_FFT,
    hop_length: int = HOP_LENGTH,
    n_mels: int = N_MELS,
    S: np.ndarray | None = None,
) -> np.ndarray:
    """Mel-frequency cepstral coefficients ``(n_mfcc, frames)``, float64, with librosa.feature.mfcc's
    definition: ``dct(power_to_db(melspectrogram, top_db=80), type=2, norm="ortho")`` over the mel axis,
    first ``n_mfcc`` rows (Davis & Mermelstein 1980). ``S``: a precomputed power spectrogram."""
    n_mels = _positive_int("n_mels", n_mels)
    if isinstance(n_mfcc, bool) or not 1 <= n_mfcc <= n_mels:
        raise ValueError(f"n_mfcc must be between 1 and n_mels ({n_mels}); got {n_mfcc}")
    power, n_fft, _ = _power(samples, n_fft, hop_length, S, "mfcc")
    log_mel = power_to_db(mel_filterbank(sr, n_fft, n_mels) @ power)  # melspectrogram's definition
    return scipy.fft.dct(log_mel, type=2, axis=0, norm="ortho")[:n_mfcc]


def _normalize_columns(X: np.ndarray, order: float, threshold: float) -> np.ndarray:
    """Columns divided by their ``order``-norm; columns whose norm is below ``threshold`` are left as they
    are (librosa.util.normalize with ``fill=None``)."""
    magnitude = np.abs(X)
    if np.isinf(order):
        length = magnitude.max(axis=0) if X.shape[0] else np.zeros(X.shape[1])
    elif order == 1:
        length = magnitude.sum(axis=0)
    else:
        length = np.sum(magnitude**order, axis=0) ** (1.0 / order)
    return X / np.where(length < threshold, 1.0, length)


@lru_cache(maxsize=16)
def chroma_filterbank(sr: float, n_fft: int, n_chroma: int = 12, tuning: float = 0.0) -> np.ndarray:
    """Ellis' chroma filters ``(n_chroma, 1 + n_fft // 2)`` (librosa.filters.chroma defaults ``ctroct=5``,
    ``octwidth=2``, ``norm=2``, ``base_c=True``).

    Each FFT bin gets a Gaussian bump over pitch classes (two bumps per bin width), the bumps of a bin have
    unit L2 norm, and the bin is weighted by a Gaussian over octaves centred on octave 5 (C5 ≈ 523 Hz) with
    a 2-octave width; rows start at C. Rounded to float32 as librosa; cached and read-only.
    """
    n_fft = _positive_int("n_fft", n_fft)
    n_chroma = _positive_int("n_chroma", n_chroma)
    frequencies = np.linspace(0, sr, n_fft, endpoint=False)[1:]
    a440 = 440.0 * 2.0 ** (tuning / n_chroma)
    with np.errstate(divide="ignore"):
        bins = n_chroma * np.log2(frequencies / (a440 / 16))
    bins = np.concatenate(([bins[0] - 1.5 * n_chroma], bins)) if bins.size else np.zeros(1)
    bin_widths = np.concatenate((np.maximum(bins[1:] - bins[:-1], 1.0), [1.0]))
    half = np.round(n_chroma / 2)
    D = np.subtract.outer(bins, np.arange(n_chroma, dtype=np.float64)).T
    D = np.remainder(D + half + 10 * n_chroma, n_chroma) - half
    weights = np.exp(-0.5 * (2 * D / bin_widths[None, :]) ** 2)
    weights = _normalize_columns(weights, 2, float(np.finfo(np.float64).tiny))
    weights *= np.exp(-0.5 * ((bins / n_chroma - 5.0) / 2.0) ** 2)[None, :]
    weights = np.roll(weights, -3 * (n_chroma // 12), axis=0)
    weights = np.ascontiguousarray(weights[:, : 1 + n_fft // 2]).astype(np.float32).astype(np.float64)
    weights.flags.writeable = False
    return weights


def chroma(
    samples: np.ndarray | None,
    sr: float,
    n_fft: int = CHROMA_N_FFT,
    hop_length: int = CHROMA_HOP_LENGTH,
    n_chroma: int = 12,
    S: np.ndarray | None = None,
) -> np.ndarray:
    """Chromagram ``(n_chroma, frames)``, C first: :func:`chroma_filterbank` applied to the STFT power, each
    frame divided by its maximum (silent frames stay 0) — librosa.feature.chroma_stft with ``tuning=0``."""
    power, n_fft, tiny = _power(samples, n_fft, hop_length, S, "chroma")
    return _normalize_columns(chroma_filterbank(float(sr), n_fft, n_chroma) @ power, np.inf, tiny)


def spectral_centroid(
    samples: np.ndarray | None,
    sr: float,
    n_fft: int = N_FFT,
    hop_length: int = HOP_LENGTH,
    S: np.ndarray | None = None,
) -> np.ndarray:
    """Per-frame centre of mass (Hz) of the *magnitude* spectrum, ``sum_k f_k |X_k| / sum_k |X_k|``, shape
    ``(frames,)``; 0 for silent frames (librosa.feature.spectral_centroid). ``S`` is a *power* spectrogram
    as everywhere in this module; its square root is taken."""
    power, n_fft, tiny = _power(samples, n_fft, hop_length, S, "spectral_centroid")
    weights = _normalize_columns(np.sqrt(power), 1, tiny)
    return fft_frequencies(sr, n_fft) @ weights


def spectral_flatness(
    samples: np.ndarray | None,
    *,
    n_fft: int = N_FFT,
    hop_length: int = HOP_LENGTH,
    amin: float = 1e-10,
    S: np.ndarray | None = None,
) -> np.ndarray:
    """Per-frame Wiener entropy ``(frames,)``: geometric over arithmetic mean of ``max(amin, |X|**2)``
    (Dubnov 2004; librosa.feature.spectral_flatness with its default ``power=2``). About ``exp(-γ) ≈ 0.56``
    for white noise (exponentially distributed periodogram bins), near 0 for tones, 1 for silence.

    A ratio of means over the bins, it needs no sample rate (librosa's takes none either). The options are
    keyword-only so that a call written for the former ``spectral_flatness(y, sr, ...)`` fails loudly
    instead of taking the sample rate for ``n_fft``."""
    if amin <= 0:
        raise ValueError("amin must be strictly positive")
    power, _, _ = _power(samples, n_fft, hop_length, S, "spectral_flatness")
    thresholded = np.maximum(amin, power)
    geometric = np.exp(np.mean(np.log(thresholded), axis=0))
    return geometric / np.mean(thresholded, axis=0)
