"""Blind spectral-gating noise reduction and SNR estimation, with the noise profile taken from the clip.

The noise is assumed additive and stationary over the clip, and the clip is assumed to hold some
noise-only stretches (pauses, leading and trailing silence): by default the quietest 10 % of its frames.
No separate noise recording is needed.

With a periodic Hann window of about 32 ms and 75 % overlap:

1. **Noise PSD** ``λ_k``: each bin's mean power over the quietest frames, bias-corrected, then a running
   median across ~500 Hz of frequency so that a stationary tone (a narrow, always-present peak) is not
   taken for noise. Frames are ranked by their power relative to each bin's 10th percentile (so that
   every bin counts alike, whatever the colour of the noise). The quietest frames of pure noise are
   quieter than average, so the mean is divided by ``1 − φ(z_q)/q · s`` with ``s = √(2Σw⁴)/Σw²`` the
   relative standard deviation of a windowed Gaussian frame's energy and ``z_q`` the normal quantile of
   the fraction ``q`` kept. The idea is that of minimum statistics (R. Martin, "Noise power spectral
   density estimation based on optimal smoothing and minimum statistics", IEEE TSAP 9(5), 2001), made
   global over a short clip.
2. **Gain**: power spectral subtraction with over-subtraction and a spectral floor (M. Berouti,
   R. Schwartz, J. Makhoul, "Enhancement of speech corrupted by acoustic noise", ICASSP 1979),
   ``G = max(√(1 − β·λ/P̄), G_min)``, where ``P̄`` is the power smoothed over ~40 ms × ~150 Hz; ``G`` is
   smoothed again over its 3 × 3 neighbourhood. The smoothing and the floor (−20 dB) keep the residual
   noise a quieter copy of the noise instead of "musical noise".
3. **Resynthesis** by weighted overlap-add (D. Griffin, J. Lim, "Signal estimation from modified
   short-time Fourier transform", IEEE TASSP 32(2), 1984): ``Σ w·ifft(G·X) / Σ w²``, which returns the
   input exactly when ``G = 1``.
"""

from __future__ import annotations

import numpy as np
import scipy.fft

from harmonic._samples import as_float

#: What :func:`estimate_snr_db` returns when there is no noise floor to find: digital silence, exact
#: zeros between the words, clips too short to estimate one. It means "clean, nothing to remove".
SNR_CEILING_DB = 100.0
#: What :func:`estimate_snr_db` returns when the clip is all noise (no power above the noise floor).
SNR_FLOOR_DB = -100.0

_FRAME_S = 0.032  # analysis window, ~32 ms at any rate
_FREQ_MEDIAN_HZ = 500.0  # running median of the noise profile across frequency
_MIN_FRAMES = 8  # fewer whole frames than this (≈ 90 ms): too little to estimate a noise profile
_TINY = 1e-30
_Q10_EXPONENTIAL = 0.10536  # 10th percentile of an exponential of unit mean: -ln(0.9)
_Q10_CHI2_1 = 0.015791  # 10th percentile of χ²(1), unit mean


def _frame_geometry(sr: int) -> tuple[int, int]:
    """(n_fft, hop): a fast FFT size of about 32 ms and a hop of a quarter of it (75 % overlap)."""
    if sr <= 0:
        raise ValueError(f"sample rate must be positive, got {sr}")
    hop = scipy.fft.next_fast_len(max(1, int(np.ceil(_FRAME_S * sr / 4))), real=True)
    return 4 * hop, hop


def _odd_size(extent: float, step: float) -> int:
    """The odd number of cells (≥ 1) that best spans ``extent`` in steps of ``step``."""
    return 2 * int(np.floor(extent / step / 2.0 + 0.5)) + 1


def _stft(y: np.ndarray, n_fft: int, hop: int) -> tuple[np.ndarray, np.ndarray, int]:
    """STFT with ``y`` zero-padded by ``n_fft - hop`` at both ends, so that four frames cover every sample.

    Computed in single precision (ample for audio, and twice as fast). Returns (spectrum of shape
    (frames, n_fft // 2 + 1), window, left padding).
    """
    pad = n_fft - hop
    n_frames = -(-(len(y) + pad) // hop)  # ceil: the last frame reaches past the end
    padded = np.zeros((n_frames - 1) * hop + n_fft, dtype=np.float32)
    padded[pad : pad + len(y)] = y
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop]
    window = (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)  # periodic Hann
    return scipy.fft.rfft(frames * window, axis=-1), window, pad


def _istft(spectrum: np.ndarray, window: np.ndarray, hop: int, pad: int, length: int) -> np.ndarray:
    """Weighted overlap-add ``Σ w·ifft(X) / Σ w²``, the least-squares inverse of :func:`_stft`."""
    n_fft = len(window)
    ratio = n_fft // hop
    n_frames = len(spectrum)
    blocks = (scipy.fft.irfft(spectrum, n=n_fft, axis=-1) * window).reshape(n_frames, ratio, hop)
    w2 = (window**2).reshape(ratio, hop)
    out = np.zeros((n_frames + ratio - 1, hop), dtype=blocks.dtype)
    norm = np.zeros((n_frames + ratio - 1, hop), dtype=blocks.dtype)
    for r in range(ratio):  # four shifted adds, not a loop over frames
        out[r : r + n_frames] += blocks[:, r]
        norm[r : r + n_frames] += w2[r]
    out = out.reshape(-1)[pad : pad + length]
    return out / np.maximum(norm.reshape(-1)[pad : pad + length], _TINY)


def _interior(n_frames: int, n_samples: int, n_fft: int, hop: int, pad: int) -> slice:
    """Frames whose whole window lies inside the signal (edge frames see the zero padding)."""
    first = -(-pad // hop)
    last = (n_samples + pad - n_fft) // hop
    return slice(first, max(first, min(last + 1, n_frames)))


def _box_smooth(a: np.ndarray, size_t: int, size_f: int) -> np.ndarray:
    """Moving average of a (frames, bins) array over ``size_t × size_f`` cells (odd sizes, edges repeated)."""
    n_t, n_f = a.shape
    padded = np.pad(a, ((size_t // 2, size_t // 2), (size_f // 2, size_f // 2)), mode="edge")
    rows = padded[:, :n_f].copy()
    for j in range(1, size_f):  # a handful of shifted adds
        rows += padded[:, j : j + n_f]
    out = rows[:n_t].copy()
    for i in range(1, size_t):
        out += rows[i : i + n_t]
    out *= 1.0 / (size_t * size_f)
    return out


def _noise_psd(
    power: np.ndarray, frames: slice, window: np.ndarray, n_fft: int, sr: int, fraction: float
) -> np.ndarray:
    """Noise power per bin (in ``|X_k|²`` units) from the quietest ``fraction`` of the ``frames``."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"noise_fraction must be within (0, 1], got {fraction}")
    p = power[frames]
    if len(p) < _MIN_FRAMES:
        p = power
    # Each bin's 10th percentile (of every 4th frame: no overlap) is 0.105 × its noise power, except at
    # DC and Nyquist where the spectrum is real (χ² with 1 degree of freedom): 0.0158 × its noise power.
    reference = np.quantile(p[::4], 0.1, axis=0)
    reference[[0, -1]] *= _Q10_EXPONENTIAL / _Q10_CHI2_1
    reference = np.maximum(reference, _TINY)
    level = np.mean(p / reference, axis=1)  # whitened frame power
    count = min(len(p), max(1, round(fraction * len(p))))
    profile = np.mean(p[np.argpartition(level, count - 1)[:count]], axis=0)
    if count < len(p):
        from statistics import NormalDist

        q = count / len(p)
        z = NormalDist().inv_cdf(q)
        spread = np.sqrt(2.0 * np.sum(window**4)) / np.sum(window**2)
        selection_bias = 1.0 - np.exp(-0.5 * z * z) / np.sqrt(2.0 * np.pi) / q * spread
        profile /= max(selection_bias, 0.5)
    # Running median across frequency, extending the ends flat, which keeps a monotone spectrum (steep
    # low-frequency rumble) as it is. The real bins (DC, Nyquist) are noisier: kept out of it, as they are.
    width = _odd_size(_FREQ_MEDIAN_HZ, sr / n_fft)
    if 1 < width < len(profile) - 2:
        padded = np.pad(profile[1:-1], width // 2, mode="edge")
        inner = np.median(np.lib.stride_tricks.sliding_window_view(padded, width), axis=-1)
        profile = np.concatenate([profile[:1], inner, profile[-1:]])
    return profile


def noise_profile(
    samples: np.ndarray, sr: int, *, noise_fraction: float = 0.1
) -> tuple[np.ndarray, np.ndarray]:
    """Estimate the clip's noise power spectral density from the clip itself (step 1 of the module doc).

    Parameters
    ----------
    samples : mono signal, shape ``(n,)``
    sr : sample rate in Hz
    noise_fraction : the fraction of the clip's frames assumed to be noise only.

    Returns
    -------
    (frequencies in Hz, noise power per bin): the second is the expected windowed periodogram
    ``|X_k|² / Σw²`` of the noise, so white noise of variance σ² gives σ² in every bin.

    Raises :class:`~harmonic.errors.InvalidAudio` for samples that are not mono ``(n,)``, empty, non-finite or
    not numbers; ``ValueError`` for a bad parameter or a non-positive sample rate.
    """
    y = as_float(samples, name="noise_profile")
    n_fft, hop = _frame_geometry(sr)
    spectrum, window, pad = _stft(y, n_fft, hop)
    power = spectrum.real**2 + spectrum.imag**2
    interior = _interior(len(power), len(y), n_fft, hop, pad)
    noise = _noise_psd(power, interior, window, n_fft, sr, noise_fraction)
    return scipy.fft.rfftfreq(n_fft, 1.0 / sr), noise / np.sum(window**2)


def denoise(
    samples: np.ndarray,
    sr: int,
    *,
    strength: float = 1.0,
    floor_db: float = -20.0,
    over_subtraction: float = 2.0,
    noise_fraction: float = 0.1,
    smooth_ms: float = 40.0,
    smooth_hz: float = 150.0,
) -> np.ndarray:
    """Reduce stationary background noise by spectral gating, with a noise profile from the clip itself.

    The method is in the module docstring. Clips too short for a noise estimate (fewer than eight whole
    32 ms frames, i.e. under about 90 ms) and clips without a noise floor (digital silence) come back
    unchanged.

    Parameters
    ----------
    samples : mono signal, shape ``(n,)``
    sr : sample rate in Hz
    strength : 0..1, the share of the computed attenuation to apply (noisereduce's ``prop_decrease``);
        0 returns the input.
    floor_db : the lowest gain in dB (≤ 0); keeps the residual noise natural.
    over_subtraction : β in ``G = √(1 − β·λ/P̄)``; larger removes more noise and more weak speech.
    noise_fraction : the fraction of the clip's frames assumed to be noise only.
    smooth_ms, smooth_hz : time and frequency extent of the smoothing of the power ``P̄``.

    Returns
    -------
    float32 array of the same length as ``samples``.

    Raises :class:`~harmonic.errors.InvalidAudio` for samples that are not mono ``(n,)``, empty, non-finite or
    not numbers; ``ValueError`` for a bad parameter or a non-positive sample rate.
    """
    y = as_float(samples, name="denoise")
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be within 0..1, got {strength}")
    if floor_db > 0.0:
        raise ValueError(f"floor_db must be <= 0, got {floor_db}")
    if over_subtraction < 0.0:
        raise ValueError(f"over_subtraction must be >= 0, got {over_subtraction}")
    n_fft, hop = _frame_geometry(sr)
    if strength == 0.0 or len(y) < n_fft + (_MIN_FRAMES - 1) * hop:
        return y.astype(np.float32)
    spectrum, window, pad = _stft(y, n_fft, hop)
    power = spectrum.real**2 + spectrum.imag**2
    interior = _interior(len(power), len(y), n_fft, hop, pad)
    noise = _noise_psd(power, interior, window, n_fft, sr, noise_fraction)
    if not np.any(noise > 0.0):
        return y.astype(np.float32)

    smoothed = _box_smooth(power, _odd_size(smooth_ms / 1000.0, hop / sr), _odd_size(smooth_hz, sr / n_fft))
    gain = np.sqrt(np.maximum(1.0 - over_subtraction * noise / np.maximum(smoothed, _TINY), 0.0))
    gain = _box_smooth(np.maximum(gain, 10.0 ** (floor_db / 20.0)), 3, 3)
    if strength < 1.0:
        gain = 1.0 - strength * (1.0 - gain)
    return _istft(spectrum * gain, window, hop, pad, len(y)).astype(np.float32)


def estimate_snr_db(samples: np.ndarray, sr: int) -> float:
    """Blind estimate of the clip's signal-to-noise ratio in dB, from the noise floor :func:`denoise` uses.

    ``10·log10((P_x − P_n) / P_n)`` with ``P_x`` the clip's mean power and ``P_n`` the noise power, the
    estimated noise PSD summed over the spectrum (Parseval). Always a finite float, clamped to
    ``[SNR_FLOOR_DB, SNR_CEILING_DB]`` = [−100, 100]; a clip without a noise floor (digital silence,
    all zeros, or too short to estimate one) gives 100 dB: clean, nothing to remove.

    Raises :class:`~harmonic.errors.InvalidAudio` for samples that are not mono ``(n,)``, empty, non-finite or
    not numbers; ``ValueError`` for a bad parameter or a non-positive sample rate.
    """
    y = as_float(samples, name="estimate_snr_db")
    n_fft, hop = _frame_geometry(sr)
    if len(y) < n_fft + (_MIN_FRAMES - 1) * hop:
        return SNR_CEILING_DB
    _, noise_psd = noise_profile(y, sr)
    # One-sided spectrum of a real signal: the bins between DC and Nyquist stand for two.
    weights = np.full(len(noise_psd), 2.0)
    weights[0] = weights[-1] = 1.0
    noise_power = float(np.dot(weights, noise_psd.astype(np.float64))) / n_fft
    total_power = float(np.mean(np.square(y, dtype=np.float64)))
    if noise_power <= total_power * 1e-10:
        return SNR_CEILING_DB
    if noise_power >= total_power:
        return SNR_FLOOR_DB
    snr = 10.0 * np.log10((total_power - noise_power) / noise_power)
    return float(np.clip(snr, SNR_FLOOR_DB, SNR_CEILING_DB))
