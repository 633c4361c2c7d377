"""Fundamental frequency (YIN family) and harmonics-to-noise ratio (Boersma's autocorrelation method).

Both analyses run on all frames at once: frames are strided views of the signal, correlations are
computed with real FFTs over the frame axis, and peak picking and refinement are array operations.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.fft

from harmonic._samples import as_mono_float64

__all__ = ["f0", "hnr"]

# YIN: absolute threshold on the cumulative mean normalized difference (de Cheveigné & Kawahara, §II.D).
_YIN_THRESHOLD = 0.1
# A later dip is taken only when it is deeper than the first one by more than this (octave guard in noise).
_YIN_DIP_MARGIN = 0.1
# Frames whose best dip is above this are aperiodic (noise): unvoiced.
_VOICING_MAX_APERIODICITY = 0.4
# Frames more than this many dB below the loudest frame are unvoiced.
_VOICING_MAX_DB_BELOW_PEAK = 45.0
# Continuity check: compare each frame with the median of voiced frames within ±50 ms.
_CONTEXT_SECONDS = 0.05
_OUTLIER_OCTAVES = 0.4
# Frames per block in the FFT stages (bounds temporary memory to a few MB).
_BLOCK_FRAMES = 128
# Absolute floor on frame mean square (about -100 dBFS): digital silence is unvoiced.
_SILENCE_MEAN_SQUARE = 1e-10


def _frames(x: np.ndarray, frame_length: int, hop_length: int) -> np.ndarray:
    """Centered frames as in ``librosa.util.frame`` after zero-padding ``frame_length // 2`` per side."""
    pad = frame_length // 2
    padded = np.zeros(len(x) + 2 * pad, dtype=x.dtype)
    padded[pad : pad + len(x)] = x
    return np.lib.stride_tricks.sliding_window_view(padded, frame_length)[::hop_length]


def _cmnd(x: np.ndarray, frame_length: int, hop_length: int, max_lag: int) -> tuple[np.ndarray, np.ndarray]:
    """YIN difference function, cumulative-mean normalized, for lags ``0..max_lag``; and frame energies.

    For the frame ``x_0 .. x_{N-1}`` and integration window ``W = N // 2``:
    ``d(τ) = Σ_{j<W} (x_j − x_{j+τ})² = e(0) + e(τ) − 2 c(τ)`` with ``e(τ) = Σ_{j<W} x_{j+τ}²`` and
    ``c(τ) = Σ_{j<W} x_j x_{j+τ}`` (an FFT cross-correlation of size N, exact for ``τ ≤ N − W``);
    ``d'(τ) = d(τ) τ / Σ_{k=1}^{τ} d(k)``, ``d'(0) = 1``.
    """
    win = frame_length // 2
    frames = _frames(x.astype(np.float32), frame_length, hop_length)
    # float32 halves the memory traffic; d'(τ) needs only ~1e-6 absolute precision. Blocks of frames
    # keep the FFT buffers small (cache- and allocator-friendly).
    xcorr = np.empty((len(frames), max_lag + 1), dtype=np.float32)
    for start in range(0, len(frames), _BLOCK_FRAMES):
        block = frames[start : start + _BLOCK_FRAMES]
        spectrum = scipy.fft.rfft(block, axis=-1)
        head_spectrum = scipy.fft.rfft(block[:, :win], n=frame_length, axis=-1)
        spectrum *= np.conjugate(head_spectrum, out=head_spectrum)
        xcorr[start : start + len(block)] = scipy.fft.irfft(spectrum, n=frame_length, axis=-1)[
            :, : max_lag + 1
        ]

    # e(τ) for every frame from one float64 cumulative sum over the padded signal.
    pad = frame_length // 2
    squares = np.zeros(len(x) + 2 * pad + 1)
    np.square(x, out=squares[pad + 1 : pad + 1 + len(x)])
    np.cumsum(squares, out=squares)
    window_energy = squares[win:] - squares[:-win]
    np.maximum(window_energy, 0.0, out=window_energy)
    energy = np.lib.stride_tricks.sliding_window_view(window_energy, max_lag + 1)[::hop_length]
    energy = energy[: len(xcorr)].astype(np.float32)

    diff = energy + energy[:, :1]
    diff -= xcorr
    diff -= xcorr
    np.maximum(diff, 0.0, out=diff)
    cumulative = np.cumsum(diff[:, 1:], axis=-1)
    cmnd = np.ones_like(diff)
    diff[:, 1:] *= np.arange(1, max_lag + 1, dtype=np.float32)
    np.divide(diff[:, 1:], cumulative, out=cmnd[:, 1:], where=cumulative > 1e-30)
    return cmnd, energy[:, 0].astype(np.float64)


def f0(
    samples: np.ndarray,
    sr: float,
    fmin: float = 65.0,
    fmax: float = 1000.0,
    frame_length: int = 1024,
    hop_length: int = 160,
) -> np.ndarray:
    """Fundamental frequency per frame (Hz), NaN where unvoiced: YIN with octave guards for noisy input.

    YIN (de Cheveigné & Kawahara 2002, "YIN, a fundamental frequency estimator for speech and music",
    JASA 111(4)): the difference function ``d(τ)`` of each frame, computed through an FFT
    cross-correlation, is normalized by its cumulative mean, ``d'(τ) = d(τ) τ / Σ_{k≤τ} d(k)``;
    the period is the first dip of ``d'`` below an absolute threshold (0.1), refined to sub-sample
    precision by parabolic interpolation. In noise every multiple of the period dips to about the
    same depth, so picking the global minimum (plain YIN's fallback) jumps an octave down at random.
    Here the threshold is relative instead: the period is the first local minimum of ``d'`` below
    ``max(0.1, min(deepest + 0.1, 0.4))``, "deepest" being the frame's lowest local minimum. A frame
    is voiced when that dip's depth (its aperiodicity) is below 0.4 and its energy is within 45 dB of
    the loudest frame's (and above -100 dBFS). Last, a continuity check: a voiced frame more than 0.4
    octave away from the median f0 of the voiced frames within ±50 ms switches to its dip nearest that
    median, or becomes unvoiced if none is periodic enough.

    Frames are aligned exactly like ``librosa.yin(center=True, pad_mode="constant")``: the signal is
    zero-padded by ``frame_length // 2`` on both sides and frame ``t`` is padded samples
    ``[t·hop_length, t·hop_length + frame_length)``, i.e. original samples
    ``[t·hop_length − frame_length/2, t·hop_length + frame_length/2)``. The integration window is the
    first half of the frame, as in librosa. There are ``1 + len(samples) // hop_length`` frames.

    Parameters
    ----------
    samples : 1-D array, mono audio.
    sr : sample rate in Hz.
    fmin, fmax : search range in Hz. As in librosa, periods longer than ``frame_length // 2 − 1``
        samples are not searched (511 samples with the default frame: 31 Hz at 16 kHz).
    frame_length, hop_length : frame size and step in samples.

    Returns
    -------
    ``(1 + len(samples) // hop_length,)`` float64 array of f0 in Hz, NaN for unvoiced frames.

    Raises
    ------
    InvalidAudio
        Samples that are not mono ``(n,)``, empty, non-finite or not numbers.
    ValueError
        Parameters out of range.
    """
    x = as_mono_float64(samples, name="f0")
    if not 0 < fmin < fmax <= sr / 2:
        raise ValueError(f"need 0 < fmin < fmax <= sr/2, got fmin={fmin}, fmax={fmax}, sr={sr}")
    if hop_length < 1 or frame_length < 4:
        raise ValueError("frame_length must be >= 4 and hop_length >= 1")
    win = frame_length // 2
    min_period = max(1, math.floor(sr / fmax))
    max_period = min(math.ceil(sr / fmin), frame_length - win - 1)
    if max_period <= min_period + 1:
        raise ValueError(
            f"frame_length={frame_length} is too short for fmin={fmin} Hz at sr={sr} "
            f"(needs frame_length > 2 * sr / fmin)"
        )

    cmnd, energy = _cmnd(x, frame_length, hop_length, max_period + 1)
    n_frames = cmnd.shape[0]
    rows = np.arange(n_frames)

    # Local minima ("dips") of d' over lags [min_period, max_period], judged against both neighbours.
    band = cmnd[:, min_period - 1 : max_period + 2]
    inner = band[:, 1:-1]
    is_dip = (inner < band[:, :-2]) & (inner <= band[:, 2:])
    dip_values = np.where(is_dip, inner, np.inf)
    # The period: the first dip below max(0.1, deepest + margin), the margin capped so that the
    # choice stays among dips periodic enough to be voiced.
    deepest = dip_values.min(axis=-1)
    threshold = np.maximum(_YIN_THRESHOLD, np.minimum(deepest + _YIN_DIP_MARGIN, _VOICING_MAX_APERIODICITY))
    candidates = dip_values <= threshold[:, None]
    lag = np.argmax(candidates, axis=-1) + min_period
    depth = cmnd[rows, lag]

    loudest = energy.max() if n_frames else 0.0
    voiced = (
        candidates.any(axis=-1)
        & (depth < _VOICING_MAX_APERIODICITY)
        & (energy > win * _SILENCE_MEAN_SQUARE)
        & (energy >= loudest * 10.0 ** (-_VOICING_MAX_DB_BELOW_PEAK / 10.0))
    )

    # Continuity: a frame more than _OUTLIER_OCTAVES away from the median of its voiced neighbours
    # takes its dip nearest to that median (if periodic enough), or else becomes unvoiced.
    half = max(2, round(_CONTEXT_SECONDS * sr / hop_length))
    reference = _running_median(np.where(voiced, np.log2(lag), np.nan), half, min_count=3)
    outlier = voiced & (np.abs(np.log2(lag) - reference) > _OUTLIER_OCTAVES)
    if outlier.any():
        idx = np.flatnonzero(outlier)
        lags = np.arange(min_period, max_period + 1)
        distance = np.abs(np.log2(lags)[None, :] - reference[idx, None])
        distance[~(dip_values[idx] < _VOICING_MAX_APERIODICITY)] = np.inf
        best = np.argmin(distance, axis=-1)
        found = distance[np.arange(len(idx)), best] <= _OUTLIER_OCTAVES
        lag[idx[found]] = best[found] + min_period
        voiced[idx[~found]] = False
        depth = cmnd[rows, lag]

    # Parabolic interpolation of d' around the dip (neighbours always exist: lag+1 <= max_period + 1).
    left = cmnd[rows, lag - 1]
    right = cmnd[rows, lag + 1]
    curvature = left + right - 2.0 * depth
    shift = np.zeros(n_frames)
    np.divide(0.5 * (left - right), curvature, out=shift, where=curvature > 0)
    np.clip(shift, -1.0, 1.0, out=shift)
    return np.where(voiced, sr / (lag + shift), np.nan)


def _running_median(values: np.ndarray, half: int, min_count: int) -> np.ndarray:
    """Median of the non-NaN values in ``values[i-half : i+half+1]``; NaN where fewer than min_count."""
    padded = np.full(len(values) + 2 * half, np.nan)
    padded[half : half + len(values)] = values
    windows = np.sort(np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1), axis=-1)  # NaN last
    count = np.count_nonzero(~np.isnan(windows), axis=-1)
    rows = np.arange(len(values))
    low = windows[rows, np.maximum(count - 1, 0) // 2]
    high = windows[rows, count // 2]
    median = 0.5 * (low + high)
    return np.where(count >= min_count, median, np.nan)


# HNR peak refinement: windowed-sinc interpolation on a grid of 1/_PEAK_GRID lag over ±1 lag around
# each candidate; _SINC_TAPS taps per side for the _PEAK_CANDIDATES highest peaks of each frame, then
# _SINC_TAPS_FINAL (close to Praat's sinc of depth ≥ 200, which matters when harmonics reach up to
# Nyquist) for the _PEAK_CANDIDATES_FINAL best of those.
_PEAK_GRID = 8
_SINC_TAPS = 48
_PEAK_CANDIDATES = 3
_SINC_TAPS_FINAL = 200
_PEAK_CANDIDATES_FINAL = 2


def _sinc_kernel(taps: int) -> np.ndarray:
    """Hann-windowed sinc ``sinc(d) · ½(1 + cos(π d / (taps + 1)))`` from the lag offsets
    ``−taps−1 … taps+1`` (columns) to the grid offsets ``j / _PEAK_GRID``, ``|j| ≤ _PEAK_GRID`` (rows)."""
    grid = np.arange(-_PEAK_GRID, _PEAK_GRID + 1) / _PEAK_GRID
    d = grid[:, None] - np.arange(-taps - 1, taps + 2)[None, :]
    window = np.where(np.abs(d) < taps + 1, 0.5 + 0.5 * np.cos(np.pi * d / (taps + 1)), 0.0)
    return np.sinc(d) * window


def _refine_peaks(
    extended: np.ndarray, pad: int, rows: np.ndarray, lags: np.ndarray, kernel: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Maximum of the sinc-interpolated ``r`` within ±1 lag of integer ``lags`` (one per row).

    ``extended[f, k]`` is ``r_f`` at lag ``k − pad − 1``; ``kernel`` is from ``_sinc_kernel``. A parabola
    through the best three grid points gives the maximum. Returns its lag and its value, reflected
    around 1 as Praat does (``r > 1 → 1/r``).
    """
    width = kernel.shape[1]
    taps = (width - 3) // 2
    windows = np.lib.stride_tricks.sliding_window_view(extended[:, pad - taps :], width, axis=-1)
    values = windows[rows, lags] @ kernel.T
    best = np.clip(np.argmax(values, axis=-1), 1, kernel.shape[0] - 2)
    k = np.arange(len(values))
    y0, y1, y2 = values[k, best - 1], values[k, best], values[k, best + 1]
    curvature = y0 - 2.0 * y1 + y2
    shift = np.zeros(len(values))
    np.divide(0.5 * (y0 - y2), curvature, out=shift, where=curvature < 0)
    np.clip(shift, -1.0, 1.0, out=shift)
    peak = y1 - 0.25 * (y0 - y2) * shift
    with np.errstate(divide="ignore"):
        peak = np.where(peak > 1.0, 1.0 / peak, peak)
    return lags + (best - _PEAK_GRID + shift) / _PEAK_GRID, peak


def _strongest_peak(r: np.ndarray, search_end: int, kernels: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Per frame (row of ``r``, lags 0…), the highest refined local maximum of ``r`` at lags
    ``2 … search_end − 1`` with ``r > 0`` (−inf when there is none)."""
    n = len(r)
    inner = r[:, 2:search_end]
    is_peak = (inner > r[:, 1 : search_end - 1]) & (inner >= r[:, 3 : search_end + 1]) & (inner > 0)
    peak_values = np.where(is_peak, inner, -np.inf)
    frames = np.arange(n)
    candidates = np.empty((n, _PEAK_CANDIDATES), dtype=np.int64)
    for c in range(_PEAK_CANDIDATES):  # the few highest peaks, one argmax each
        candidates[:, c] = np.argmax(peak_values, axis=-1)
        peak_values[frames, candidates[:, c]] = -np.inf
    valid = is_peak[frames[:, None], candidates]
    lags = candidates + 2

    pad = _SINC_TAPS_FINAL
    extended = np.concatenate((r[:, pad + 1 : 0 : -1], r), axis=-1)  # even in the lag
    rows = np.repeat(frames, _PEAK_CANDIDATES)
    _, strength = _refine_peaks(extended, pad, rows, lags.reshape(-1), kernels[0])
    strength = np.where(valid.reshape(-1), strength, -np.inf).reshape(n, _PEAK_CANDIDATES)
    order = np.argsort(-strength, axis=-1)[:, :_PEAK_CANDIDATES_FINAL]
    lags = np.take_along_axis(lags, order, axis=-1).reshape(-1)
    valid = np.take_along_axis(valid, order, axis=-1).reshape(-1)
    rows = np.repeat(frames, _PEAK_CANDIDATES_FINAL)
    lag, strength = _refine_peaks(extended, pad, rows, lags, kernels[1])
    strength = np.where(valid & (lag > 2.0), strength, -np.inf)  # a voiced frequency is below Nyquist
    return strength.reshape(n, _PEAK_CANDIDATES_FINAL).max(axis=-1)


def _harmonicity(
    x: np.ndarray,
    sr: float,
    fmin: float,
    time_step: float,
    silence_threshold: float,
    periods_per_window: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Frame times (s) and HNR per frame (dB; NaN where unvoiced), as Praat's ``To Harmonicity (ac)``.

    Constants and frame grid follow Praat's ``Sound_to_Pitch_any`` (method AC_GAUSS, as used by
    ``Sound_to_Harmonicity_ac``) and ``Sampled_shortTermAnalysis``.
    """
    dx = 1.0 / sr
    periods = 2.0 * periods_per_window  # Praat doubles it for the Gaussian window
    duration = dx * len(x)
    window_duration = periods / fmin
    if len(x) == 0 or window_duration > duration:
        return np.zeros(0), np.zeros(0)
    period_samples = math.floor(1.0 / dx / fmin)
    half_period = period_samples // 2 + 1
    half_window = math.floor(window_duration / dx) // 2 - 1
    if half_window < 2:
        raise ValueError("hnr: analysis window too short; lower fmin")
    window_length = 2 * half_window
    max_lag = min(math.floor(window_length / periods) + 2, window_length)
    search_end = min(max_lag, math.floor(window_length * 0.25))  # lags 2 .. search_end - 1
    if search_end < 4:
        raise ValueError("hnr: fewer than two candidate lags; raise periods_per_window or lower fmin")

    # As many frames as fit, centred in the sound; frame i is centred between samples left_i, left_i+1.
    n_frames = math.floor((duration - window_duration) / time_step) + 1
    x1 = 0.5 * dx
    t1 = (x1 - 0.5 * dx + 0.5 * duration) - 0.5 * n_frames * time_step + 0.5 * time_step
    times = t1 + np.arange(n_frames) * time_step
    left = np.floor((times - x1) / dx).astype(np.int64)
    starts = np.clip(left + 1 - half_window, 0, len(x) - window_length)

    mean = x.mean()
    global_peak = max(x.max() - mean, mean - x.min())
    if global_peak == 0.0:  # digital silence
        return times, np.full(n_frames, np.nan)

    # Frame = (x − local mean over one longest period each side) · Gaussian window, in float32 (r is
    # then good to ~1e-6: HNR is exact to well above 40 dB; near-perfect periodicity reads as 60-90 dB
    # where Praat, in float64, says 90-150). The FFT is only a little longer than the frame: lag τ is
    # aliased with lag n_fft − τ ≥ 0.85 N, where the Gaussian window's autocorrelation,
    # exp(−24 (τ/N)²), is below 3e-8 of its peak.
    cumulative = np.zeros(len(x) + 1)
    np.cumsum(x, out=cumulative[1:])
    mean_end = np.clip(left + 1 + period_samples, 0, len(x))
    mean_start = np.clip(left + 1 - period_samples, 0, len(x))
    local_mean = ((cumulative[mean_end] - cumulative[mean_start]) / (2 * period_samples)).astype(np.float32)
    i = np.arange(1, window_length + 1)
    mid = 0.5 * (window_length + 1)
    edge = math.exp(-12.0)
    window = (np.exp(-48.0 * (i - mid) ** 2 / (window_length + 1) ** 2) - edge) / (1.0 - edge)
    n_lags = search_end + _SINC_TAPS_FINAL + 2
    needed = max(window_length, math.ceil(0.85 * window_length) + n_lags)
    n_fft = 2 * scipy.fft.next_fast_len((needed + 1) // 2, real=True)
    window_fft = scipy.fft.rfft(window, n=scipy.fft.next_fast_len(2 * window_length, real=True))
    window_ac = scipy.fft.irfft(np.abs(window_fft) ** 2)[:n_lags]
    window_ac /= window_ac[0]

    all_frames = np.lib.stride_tricks.sliding_window_view(x.astype(np.float32), window_length)
    steps = np.diff(starts)
    if n_frames > 1 and np.all(steps == steps[0]):  # evenly spaced: a strided view, no gather copy
        selected = all_frames[starts[0] :: steps[0]][:n_frames]
    else:
        selected = all_frames[starts]
    window32 = window.astype(np.float32)
    peak_span = slice(half_window - half_period, half_window + half_period)
    kernels = (_sinc_kernel(_SINC_TAPS), _sinc_kernel(_SINC_TAPS_FINAL))

    # Per block of frames: r(τ) = normalized autocorrelation / the window's (Boersma 1993, eq. 9);
    # the power spectrum is real and even, so the autocorrelation is its DCT-I.
    local_peak = np.empty(n_frames)
    best_strength = np.empty(n_frames)
    buffer = np.zeros((min(n_frames, _BLOCK_FRAMES), n_fft), dtype=np.float32)
    for start in range(0, n_frames, _BLOCK_FRAMES):
        stop = min(start + _BLOCK_FRAMES, n_frames)
        body = buffer[: stop - start, :window_length]
        np.subtract(selected[start:stop], local_mean[start:stop, None], out=body)
        body *= window32
        local_peak[start:stop] = np.max(np.abs(body[:, peak_span]), axis=-1)
        spectrum = scipy.fft.rfft(buffer[: stop - start], axis=-1)
        power = np.square(spectrum.real)
        power += np.square(spectrum.imag)
        ac = scipy.fft.dct(power, type=1, axis=-1, overwrite_x=True)[:, :n_lags].astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.nan_to_num(ac / (ac[:, :1] * window_ac))
        best_strength[start:stop] = _strongest_peak(r, search_end, kernels)

    # Praat's path finder with zero transition costs: voiced iff the best candidate beats the
    # unvoiced strength max(0, 2 − intensity / silence_threshold).
    intensity = np.minimum(local_peak / global_peak, 1.0)
    unvoiced_strength = np.maximum(0.0, 2.0 - intensity / silence_threshold)
    voiced = (local_peak > 0.0) & (best_strength > unvoiced_strength)
    with np.errstate(divide="ignore", invalid="ignore"):
        db = 10.0 * np.log10(best_strength / (1.0 - best_strength))
    db = np.where(best_strength <= 1e-15, -150.0, np.where(best_strength > 1.0 - 1e-15, 150.0, db))
    return times, np.where(voiced, db, np.nan)


def hnr(
    samples: np.ndarray,
    sr: float,
    fmin: float = 75.0,
    time_step: float = 0.01,
    silence_threshold: float = 0.1,
    periods_per_window: float = 4.5,
) -> float:
    """Harmonics-to-noise ratio (dB) of the clip: Boersma's autocorrelation method, as Praat computes it.

    Boersma (1993), "Accurate short-term analysis of the fundamental frequency and the
    harmonics-to-noise ratio of a sampled sound", Proc. Institute of Phonetic Sciences 17: each frame
    (every ``time_step`` s) is the signal minus its local mean, times a Gaussian window of
    ``2 · periods_per_window / fmin`` s; its autocorrelation, normalized to lag 0 and divided by the
    window's own normalized autocorrelation, gives ``r(τ)``. The highest peak ``r_max`` over lags
    ``1/sr``…``1/fmin`` (located with windowed-sinc interpolation; values above 1 are reflected
    to ``1/r``) gives ``HNR = 10 log10(r_max / (1 − r_max))``. A frame is voiced when
    ``r_max > 2 − local_peak / (silence_threshold · global_peak)`` (and > 0). The defaults, frame grid
    and voicing rule are those of Praat's ``Sound: To Harmonicity (ac)`` (time step 0.01 s, minimum
    pitch 75 Hz, silence threshold 0.1, 4.5 periods per window); the clip value is the mean over voiced
    frames, like Praat's ``Get mean`` (which skips unvoiced frames).

    Returns
    -------
    The mean HNR in dB over voiced frames, or ``float("nan")`` when no frame is voiced (silence,
    noise, or a clip shorter than one analysis window, ``2 · periods_per_window / fmin`` s): Praat's
    "undefined". NaN is not valid JSON; callers that serialize it must map it (e.g. to ``None``).

    Raises
    ------
    InvalidAudio
        Samples that are not mono ``(n,)``, empty (no clip to be undefined about), non-finite or not numbers.
    ValueError
        Parameters out of range.
    """
    x = as_mono_float64(samples, name="hnr")
    if not 0 < fmin < sr / 2 or time_step <= 0 or periods_per_window <= 0:
        raise ValueError(f"invalid hnr parameters: fmin={fmin}, time_step={time_step}, sr={sr}")
    _, values = _harmonicity(x, sr, fmin, time_step, silence_threshold, periods_per_window)
    voiced = values[np.isfinite(values)]
    return float(voiced.mean()) if voiced.size else float("nan")
