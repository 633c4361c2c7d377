"""Spectral analysis with librosa's definitions: STFT power, Slaney mel, log-power, MFCC, chroma, centroid,
flatness.

Every function follows the corresponding librosa 0.11 function with its default arguments, so that numbers
computed here in a Lambda agree with numbers a user computes in a notebook:

- frames are centered: the signal is zero-padded by ``n_fft // 2`` on both sides (librosa's ``center=True``,
  ``pad_mode="constant"``), giving ``1 + len(y) // hop_length`` frames;
- the window is a periodic Hann window of ``n_fft`` samples;
- the mel scale and filter normalization are Slaney's (Auditory Toolbox, 1998), as ``librosa.filters.mel``
  with ``htk=False, norm="slaney"``;
- MFCCs are the orthonormal DCT-II of the log-mel power spectrogram clipped 80 dB below its peak (Davis &
  Mermelstein 1980; librosa.feature.mfcc);
- chroma is Ellis' STFT chroma (librosa.filters.chroma / chroma_stft) with ``tuning=0``.

Convention: every ``S`` argument is a *power* spectrogram as returned by :func:`stft_power`, so callers can
compute the STFT once and derive all descriptors from it. The STFT runs in the input's precision (float32
as librosa, or float64); everything after it in float64.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.fft

from harmonic.errors import InvalidAudio

N_FFT = 512
HOP_LENGTH = 160
N_MELS = 40
N_MFCC = 13


@lru_cache(maxsize=16)
def _hann(n_fft: int) -> np.ndarray:
    """Periodic Hann window (scipy.signal.get_window("hann", n_fft, fftbins=True))."""
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)
    window.flags.writeable = False
    return window


def stft_power(
    samples: np.ndarray, n_fft: int = N_FFT, hop_length: int = HOP_LENGTH, center: bool = True
) -> np.ndarray:
    """Power spectrogram ``|STFT|**2`` of shape ``(1 + n_fft // 2, frames)``.

    Same frames as ``librosa.stft(y, n_fft=n_fft, hop_length=hop_length)`` (periodic Hann window, centered
    frames with zero padding). Without ``center`` only whole frames inside the signal are used. Like
    librosa, float32 input is transformed in single precision (twice as fast; relative error ~1e-6, far
    below what MFCCs or chroma resolve) and returned as float32; anything else in float64.
    """
    source = np.asarray(samples)
    dtype = np.float32 if source.dtype == np.float32 else np.float64
    y = source.astype(dtype, copy=False)
    if y.ndim != 1:
        raise ValueError(f"expected mono samples of shape (n,), got {y.shape}")
    if y.size == 0:
        raise InvalidAudio("cannot analyse an empty signal")
    if n_fft < 2 or hop_length < 1:
        raise ValueError(f"n_fft must be ≥ 2 and hop_length ≥ 1; got {n_fft}, {hop_length}")
    if center:
        y = np.pad(y, n_fft // 2)
    if y.size < n_fft:
        return np.zeros((1 + n_fft // 2, 0), dtype=dtype)
    frames = np.lib.stride_tricks.sliding_window_view(y, n_fft)[::hop_length]
    spectrum = scipy.fft.rfft(frames * _hann(n_fft).astype(dtype), axis=-1)
    power = spectrum.real**2 + spectrum.imag**2
    return np.ascontiguousarray(power.T)


def _power(samples: np.ndarray | None, n_fft: int, hop_length: int, S: np.ndarray | None) -> np.ndarray:
    """The power spectrogram given or computed, in float64 for everything that follows."""
    return np.asarray(stft_power(samples, n_fft, hop_length) if S is None else S, dtype=np.float64)


def hz_to_mel(frequencies: np.ndarray | float) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz (a mel per 200/3 Hz: 15 mels at 1 kHz), logarithmic above."""
    f = np.asarray(frequencies, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
    with np.errstate(divide="ignore"):
        log_part = min_log_mel + np.log(np.maximum(f, 1e-300) / min_log_hz) / logstep
    return np.where(f >= min_log_hz, log_part, f / f_sp)


def mel_to_hz(mels: np.ndarray | float) -> np.ndarray:
    """Inverse of :func:`hz_to_mel`."""
    m = np.asarray(mels, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


@lru_cache(maxsize=32)
def mel_filterbank(
    sr: float, n_fft: int = N_FFT, n_mels: int = N_MELS, fmin: float = 0.0, fmax: float | None = None
) -> np.ndarray:
    """Slaney-normalized triangular mel filters, shape ``(n_mels, 1 + n_fft // 2)`` (librosa.filters.mel).

    Filter ``i`` rises from mel point ``i`` to ``i + 1`` and falls to ``i + 2`` (``n_mels + 2`` points evenly
    spaced in mels between ``fmin`` and ``fmax``, default ``sr / 2``); each is scaled by
    ``2 / (f[i + 2] - f[i])`` so that it has unit area. Cached and read-only.
    """
    fmax = float(sr) / 2 if fmax is None else float(fmax)
    fft_freqs = np.linspace(0.0, float(sr) / 2, 1 + n_fft // 2)
    mel_points = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    widths = np.diff(mel_points)
    ramps = mel_points[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_points[2:] - mel_points[:-2]))[:, None]
    # librosa builds the filters in float32; rounding the same way keeps MFCCs bit-for-bit closer.
    weights = weights.astype(np.float32).astype(np.float64)
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
    """Mel power spectrogram ``(n_mels, frames)``: mel filters applied to the STFT power (librosa's
    ``melspectrogram`` with ``power=2``). Pass ``S`` (from :func:`stft_power`) to reuse an STFT."""
    power = _power(samples, n_fft, hop_length, S)
    return mel_filterbank(sr, 2 * (power.shape[0] - 1), n_mels, fmin, fmax) @ power


def power_to_db(S: np.ndarray, ref=1.0, amin: float = 1e-10, top_db: float | None = 80.0) -> np.ndarray:
    """``10 * log10(max(amin, S) / max(amin, ref))``, floored ``top_db`` below the peak (librosa.power_to_db).

    ``ref`` is a number or a callable applied to ``S`` (e.g. ``np.max``).
    """
    if amin <= 0:
        raise ValueError("amin must be strictly positive")
    S = np.asarray(S, dtype=np.float64)
    ref_value = ref(S) if callable(ref) else np.abs(ref)
    log_spec = 10.0 * np.log10(np.maximum(amin, S))
    log_spec -= 10.0 * np.log10(np.maximum(amin, ref_value))
    if top_db is not None:
        if top_db < 0:
            raise ValueError("top_db must be non-negative")
        if log_spec.size:
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
    """Mel-frequency cepstral coefficients ``(n_mfcc, frames)``, the definition of librosa.feature.mfcc:
    orthonormal DCT-II over the mel axis of ``power_to_db(melspectrogram, top_db=80)``."""
    if not 1 <= n_mfcc <= n_mels:
        raise ValueError(f"n_mfcc must be between 1 and n_mels ({n_mels}); got {n_mfcc}")
    log_mel = power_to_db(melspectrogram(samples, sr, n_fft, hop_length, n_mels, S=S))
    return scipy.fft.dct(log_mel, type=2, axis=0, norm="ortho")[:n_mfcc]


def _normalize_columns(X: np.ndarray, order: float) -> np.ndarray:
    """Columns scaled to unit ``order``-norm; all-zero columns stay zero (librosa.util.normalize)."""
    magnitude = np.abs(X)
    if np.isinf(order):
        length = magnitude.max(axis=0) if X.size else np.zeros(X.shape[1])
    else:
        length = np.sum(magnitude**order, axis=0) ** (1.0 / order)
    length = np.where(length < np.finfo(np.float64).tiny, 1.0, length)
    return X / length


@lru_cache(maxsize=16)
def chroma_filterbank(sr: float, n_fft: int, n_chroma: int = 12, tuning: float = 0.0) -> np.ndarray:
    """Ellis' chroma filters ``(n_chroma, 1 + n_fft // 2)`` (librosa.filters.chroma defaults: Gaussian bumps
    one bin wide per pitch class, unit L2 norm per FFT bin, weighted by a Gaussian over octaves centred on
    octave 5 with a width of 2 octaves, rows starting at C)."""
    frequencies = np.linspace(0, sr, n_fft, endpoint=False)[1:]
    a440 = 440.0 * 2.0 ** (tuning / n_chroma)
    bins = n_chroma * np.log2(frequencies / (a440 / 16))
    bins = np.concatenate(([bins[0] - 1.5 * n_chroma], bins))
    bin_widths = np.concatenate((np.maximum(bins[1:] - bins[:-1], 1.0), [1.0]))
    half = np.round(n_chroma / 2)
    D = np.subtract.outer(bins, np.arange(n_chroma, dtype=np.float64)).T
    D = np.remainder(D + half + 10 * n_chroma, n_chroma) - half
    weights = np.exp(-0.5 * (2 * D / bin_widths[None, :]) ** 2)
    weights = _normalize_columns(weights, 2)
    weights *= np.exp(-0.5 * ((bins / n_chroma - 5.0) / 2.0) ** 2)[None, :]
    weights = np.roll(weights, -3 * (n_chroma // 12), axis=0)
    weights = np.ascontiguousarray(weights[:, : 1 + n_fft // 2]).astype(np.float32).astype(np.float64)
    weights.flags.writeable = False
    return weights


def chroma(
    samples: np.ndarray | None,
    sr: float,
    n_fft: int = 2048,
    hop_length: int = 512,
    n_chroma: int = 12,
    S: np.ndarray | None = None,
) -> np.ndarray:
    """Chromagram ``(n_chroma, frames)``, C first, each frame scaled to a maximum of 1 (silent frames 0):
    librosa.feature.chroma_stft with ``tuning=0`` on the STFT power."""
    power = _power(samples, n_fft, hop_length, S)
    filters = chroma_filterbank(float(sr), 2 * (power.shape[0] - 1), n_chroma)
    return _normalize_columns(filters @ power, np.inf)


def fft_frequencies(sr: float, n_fft: int) -> np.ndarray:
    """Centre frequency (Hz) of each rfft bin."""
    return np.linspace(0.0, float(sr) / 2, 1 + n_fft // 2)


def spectral_centroid(
    samples: np.ndarray | None,
    sr: float,
    n_fft: int = N_FFT,
    hop_length: int = HOP_LENGTH,
    S: np.ndarray | None = None,
) -> np.ndarray:
    """Per-frame centre of mass (Hz) of the *magnitude* spectrum, ``(frames,)``; 0 for silent frames
    (librosa.feature.spectral_centroid)."""
    power = _power(samples, n_fft, hop_length, S)
    magnitude = np.sqrt(power)
    weights = _normalize_columns(magnitude, 1)
    return fft_frequencies(sr, 2 * (power.shape[0] - 1)) @ weights


def spectral_flatness(
    samples: np.ndarray | None,
    sr: float,
    n_fft: int = N_FFT,
    hop_length: int = HOP_LENGTH,
    amin: float = 1e-10,
    S: np.ndarray | None = None,
) -> np.ndarray:
    """Per-frame Wiener entropy ``(frames,)``: geometric over arithmetic mean of ``max(amin, |X|**2)``
    (Dubnov 2004; librosa.feature.spectral_flatness with ``power=2``). 1 for white noise, near 0 for tones."""
    power = _power(samples, n_fft, hop_length, S)
    thresholded = np.maximum(amin, power)
    geometric = np.exp(np.mean(np.log(thresholded), axis=0))
    return geometric / np.mean(thresholded, axis=0)
