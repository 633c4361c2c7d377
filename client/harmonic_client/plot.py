"""``harmonic plot``: what Harmonic measured on a clip, drawn over the clip itself.

:func:`build_figure` returns the figure, :func:`save_figure` writes it. Left column, top to bottom, on one
shared time axis (seconds):

1. **waveform**, with each keyword-template match as a span labelled ``name score`` (``weather 0.87``);
2. **spectrogram** of the clip at 16 kHz (the service's analysis rate): power in dB relative to the clip's
   strongest bin, floored 80 dB below it, so digital silence is drawn in the floor colour instead of the
   white gaps of ``-inf`` dB; the same match spans;
3. **f0** on its own axis (Hz, logarithmic: equal heights are equal musical intervals), its limits set by
   the voiced frames; unvoiced frames are NaN so the line breaks instead of dropping to 0 Hz; the voiced
   regions are shaded, and the service's median f0 is a dashed line;
4. **loudness** before and after normalization: the momentary loudness (ITU-R BS.1770 K-weighting over
   400 ms blocks every 100 ms, the blocks integrated loudness gates) of the input, and of the output. The
   output curve is *derived*, not measured: normalization applies one gain to every sample, so the output
   is the input curve plus ``gain_db``. When denoise ran, the audio normalize received is the denoised
   clip: its curve is recomputed with ``harmonic.denoise`` (the function the service runs) before the
   gain is added.

Right column: a text box of the measured summary (integrated loudness in and out, gain, median f0, voiced
fraction, HNR, SNR and denoise, fingerprint matches, warnings).

Where the numbers come from. The service returns the f0 track and the voiced regions (``features.f0_track``,
``voiced_regions``) but no spectrogram or loudness curve, so those are recomputed here from the clip the user
has:

- with a service result (an invocation's status document, or what ``harmonic analyze`` printed), the text
  box, the gain, the f0 track, the voiced regions, the median f0 line and the matches are the service's (a
  result from before the service kept time series gets a track computed here);
- without one, everything is computed locally by :func:`analyze_locally`: with the ``harmonic`` library (the
  same DSP and the same chain as the service with default options: 16 kHz, SNR estimate, denoise below
  30 dB, normalization to -23 LUFS with a -1 dBFS ceiling, features), and no matches (the pattern registry
  lives in the service);
- a client-only install (``pip install harmonic-client[plot]``, no ``harmonic`` library) reads WAV only
  (scipy), and draws an approximate f0 (plain normalized autocorrelation per 64 ms frame) and an RMS level
  in dBFS (no K-weighting, so not LUFS); both are labelled approximate. It measures no HNR, SNR or LUFS, and
  draws the output curve only when a service result supplies the gain.

Matplotlib is imported only here, and only when a figure is built (``Figure`` directly, not pyplot: no
global figure state, no GUI backend).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# The service's analysis rate, and its frame grid for features (32 ms windows, 10 ms hops at 16 kHz).
ANALYSIS_RATE = 16_000
N_FFT, HOP = 512, 160
# The spectrogram's dynamic range: bins more than this below the strongest are drawn at the floor.
FLOOR_DB = 80.0
# Momentary loudness: BS.1770's gating blocks.
BLOCK_S, STEP_S = 0.400, 0.100
# The service's default options (harmonic_service.logic.options), used when computing locally.
CLEAN_SNR_DB, TARGET_LUFS, PEAK_DBFS = 30.0, -23.0, -1.0
# Fallback f0 (no harmonic library): frame, search range, and the normalized autocorrelation a voiced
# frame reaches.
_AC_FRAME, _AC_FMIN, _AC_FMAX, _AC_VOICED = 1024, 60.0, 500.0, 0.5
_MATCH_COLOUR, _VOICED_COLOUR = "tab:green", "gold"


@dataclass(frozen=True)
class Signal:
    """A decoded clip: mono float samples at :data:`ANALYSIS_RATE`, its original rate, and whether the
    ``harmonic`` library decoded it (and so measures it exactly as the service does)."""

    samples: np.ndarray
    sample_rate: int
    original_rate: int
    exact: bool

    @property
    def duration_s(self) -> float:
        return self.samples.size / self.sample_rate


@dataclass(frozen=True)
class Tracks:
    """The time series drawn: f0 per 10 ms frame (Hz, NaN where unvoiced) and the level per 100 ms block
    (``level_unit``: "LUFS" momentary loudness, or "dBFS" RMS without the library; NaN where silent)."""

    f0_times: np.ndarray
    f0_hz: np.ndarray
    level_times: np.ndarray
    level_db: np.ndarray
    level_unit: str
    approximate: bool


# --- decoding and local measurements -----------------------------------------------------------------------


def load_signal(audio: str | Path | bytes) -> Signal:
    """The clip (a path, or its bytes) as mono samples at 16 kHz, as the service's ingest stage has them.

    Raises ValueError (``harmonic.InvalidAudio`` is one) for a file that cannot be decoded, or is empty.
    """
    data = audio if isinstance(audio, bytes) else Path(audio).read_bytes()
    try:
        import harmonic
    except ImportError:
        samples, rate = _read_wav(data)
        if rate != ANALYSIS_RATE:
            from scipy.signal import resample_poly

            g = math.gcd(int(rate), ANALYSIS_RATE)
            samples = resample_poly(samples, ANALYSIS_RATE // g, int(rate) // g)
        exact = False
    else:
        clip = harmonic.decode_audio(data)
        rate = clip.sample_rate
        samples = np.asarray(clip.samples, dtype=np.float32)
        if rate != ANALYSIS_RATE:
            samples = harmonic.resample(samples, rate, ANALYSIS_RATE)
        exact = True
    samples = np.asarray(samples, dtype=np.float32)
    if samples.size == 0:
        raise ValueError("the clip has no samples")
    if not np.isfinite(samples).all():
        raise ValueError("the clip contains NaN or infinite samples")
    return Signal(samples, ANALYSIS_RATE, int(rate), exact)


def _read_wav(data: bytes) -> tuple[np.ndarray, int]:
    """A WAV file's samples, mono (channels averaged), in full-scale units, and its rate (client-only)."""
    from scipy.io import wavfile

    try:
        rate, raw = wavfile.read(io.BytesIO(data))
    except Exception as error:  # scipy raises ValueError, EOFError, struct.error… for what it cannot read
        raise ValueError(
            f"not a WAV file this install can read ({error}); FLAC, Ogg and MP3 need the harmonic library"
        ) from None
    if raw.dtype.kind == "u":  # 8-bit WAV is unsigned
        samples = (raw.astype(np.float64) - 128.0) / 128.0
    elif raw.dtype.kind == "i":
        samples = raw.astype(np.float64) / float(2 ** (8 * raw.dtype.itemsize - 1))
    else:
        samples = raw.astype(np.float64)
    return (samples.mean(axis=1) if samples.ndim == 2 else samples), int(rate)


def compute_tracks(signal: Signal) -> Tracks:
    """f0 and level over time: ``harmonic.f0`` (the service's YIN, 10 ms hops) and BS.1770 momentary
    loudness when the library decoded the clip, else the approximate fallbacks (module docstring)."""
    x, sr = signal.samples, signal.sample_rate
    if signal.exact:
        import harmonic

        f0_hz = np.asarray(harmonic.f0(x, sr, hop_length=HOP), dtype=np.float64)
    else:
        f0_hz = _autocorrelation_f0(x.astype(np.float64), sr)
    times, level = _level(x, sr, k_weighted=signal.exact)
    return Tracks(
        f0_times=np.arange(f0_hz.size) * HOP / sr,
        f0_hz=f0_hz,
        level_times=times,
        level_db=level,
        level_unit="LUFS" if signal.exact else "dBFS",
        approximate=not signal.exact,
    )


def _level(x: np.ndarray, sr: int, *, k_weighted: bool) -> tuple[np.ndarray, np.ndarray]:
    """Block centres (s) and level per 400 ms block every 100 ms: momentary loudness in LUFS
    (``-0.691 + 10 log10`` of the K-weighted mean square, BS.1770) or, unweighted, RMS in dBFS. A clip
    shorter than a block is one block. NaN for a block of digital silence (its level is ``-inf``)."""
    y = np.asarray(x, dtype=np.float64)
    offset = 0.0
    if k_weighted:
        from scipy.signal import sosfilt

        from harmonic.loudness import LOUDNESS_OFFSET_DB, k_weighting_sos

        y = sosfilt(k_weighting_sos(sr), y)
        offset = LOUDNESS_OFFSET_DB
    block, step = min(round(BLOCK_S * sr), y.size), round(STEP_S * sr)
    starts = np.arange(0, y.size - block + 1, step)
    cumulative = np.concatenate(([0.0], np.cumsum(np.square(y))))
    power = (cumulative[starts + block] - cumulative[starts]) / block
    with np.errstate(divide="ignore"):
        level = offset + 10.0 * np.log10(np.where(power > 1e-20, power, np.nan))
    return (starts + block / 2) / sr, level


def _frames(x: np.ndarray, length: int, hop: int) -> np.ndarray:
    """Frames centred every `hop` samples (the signal zero-padded by ``length // 2`` each side)."""
    padded = np.pad(x, length // 2)
    return np.lib.stride_tricks.sliding_window_view(padded, length)[::hop]


def _autocorrelation_f0(x: np.ndarray, sr: int) -> np.ndarray:
    """Approximate f0 without the harmonic library: per 64 ms Hann frame every 10 ms, the normalized
    autocorrelation divided by the window's own (Boersma 1993); the period is the first peak within 10 % of
    the highest between 1/500 s and 1/60 s. Voiced where that peak exceeds 0.5, the frame is within 45 dB
    of the loudest and its f0 within an octave of the clip's median (one voice). NaN where unvoiced. Octave
    errors and voiced fricatives remain possible: it is labelled approximate."""
    frames = _frames(x, _AC_FRAME, HOP)
    window = np.hanning(_AC_FRAME)
    body = (frames - frames.mean(axis=1, keepdims=True)) * window
    n = 2 * _AC_FRAME
    ac = np.fft.irfft(np.abs(np.fft.rfft(body, n)) ** 2, n)[:, :_AC_FRAME]
    window_ac = np.fft.irfft(np.abs(np.fft.rfft(window, n)) ** 2, n)[:_AC_FRAME]
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.nan_to_num(ac / ac[:, :1] / (window_ac / window_ac[0]))
    low, high = int(sr / _AC_FMAX), int(sr / _AC_FMIN)
    band = r[:, low : high + 1]
    energy = np.mean(np.square(frames), axis=1)
    loud = energy >= max(energy.max() * 10.0 ** (-45 / 10), 1e-10)
    f0_hz = np.full(len(frames), np.nan)
    for i in np.flatnonzero(loud & (band.max(axis=1) > _AC_VOICED)):
        lag = int(np.argmax(band[i] >= 0.9 * band[i].max()))
        while lag + 1 < band.shape[1] and band[i, lag + 1] > band[i, lag]:
            lag += 1
        f0_hz[i] = sr / (lag + low)
    if np.isfinite(f0_hz).any():  # one voice: a frame over an octave from the median is an error, not f0
        with np.errstate(invalid="ignore"):
            f0_hz[np.abs(np.log2(f0_hz / np.nanmedian(f0_hz))) > 1.0] = np.nan
    return f0_hz


def analyze_locally(signal: Signal) -> dict[str, Any]:
    """A result shaped like the service's (docs/design.md "Result"), computed on this machine, no matches.

    With the harmonic library it is the service's chain with the default options: ``audio`` (SNR), denoise
    unless the SNR is at least 30 dB, ``loudness`` (normalization to -23 LUFS, ceiling -1 dBFS) and
    ``features`` of the normalized audio. Without it, only what the fallback measures: ``audio`` and
    approximate ``features`` (median f0 and voiced fraction of the autocorrelation track, RMS level), and
    ``approximate: true``.
    """
    x, sr = signal.samples, signal.sample_rate
    peak = float(np.max(np.abs(x)))
    audio = {
        "duration_s": round(signal.duration_s, 4),
        "sample_rate": signal.original_rate,
        "analysis_sample_rate": sr,
        "peak_dbfs": 20.0 * math.log10(peak) if peak > 0 else None,
        "warnings": [] if peak > 0 else ["the clip is digital silence"],
    }
    if not signal.exact:
        track = _autocorrelation_f0(x.astype(np.float64), sr)
        voiced = track[np.isfinite(track)]
        rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
        features = {
            "f0_hz": {"median": float(np.median(voiced)) if voiced.size else None},
            "voiced_fraction": float(np.mean(np.isfinite(track))),
            "rms_dbfs": 20.0 * math.log10(rms) if rms > 0 else None,
        }
        return {"audio": audio, "features": features, "matches": [], "approximate": True}

    import harmonic
    from harmonic.loudness import loudness_normalization

    snr = harmonic.json_safe(harmonic.estimate_snr_db(x, sr)) if peak > 0 else None
    audio["snr_db"] = snr
    audio["clean"] = snr is not None and snr >= CLEAN_SNR_DB
    if audio["clean"]:
        denoised = {
            "applied": False,
            "reason": f"clean clip: estimated SNR {snr:.1f} dB >= {CLEAN_SNR_DB:g} dB",
        }
        received = x
    else:
        received = np.asarray(harmonic.denoise(x, sr), dtype=np.float32)
        after = harmonic.estimate_snr_db(received, sr)
        denoised = {"applied": True, "snr_db_before": snr, "snr_db_after": after}
    normalized, loudness = loudness_normalization(received, sr, TARGET_LUFS, PEAK_DBFS)
    features = harmonic.extract_features(normalized, sr)
    result = {"audio": audio, "denoise": denoised, "loudness": loudness, "features": features, "matches": []}
    return harmonic.json_safe(result)


def loudness_curves(signal: Signal, tracks: Tracks, result: dict[str, Any]) -> tuple[np.ndarray | None, str]:
    """The output curve (or None without a gain) and how it was derived.

    Normalization is one gain for every sample, so the output's curve is the curve of the audio normalize
    received plus ``result["loudness"]["gain_db"]``: the input's curve when denoise did not run; when it ran,
    the denoised clip's curve, recomputed here with ``harmonic.denoise`` (or, without the library, the
    input's curve, said in the returned note).
    """
    gain = (result.get("loudness") or {}).get("gain_db")
    if gain is None:
        return None, "no normalization gain (needs a service result or the harmonic library)"
    if not (result.get("denoise") or {}).get("applied"):
        return tracks.level_db + gain, f"output = input {gain:+.1f} dB"
    if signal.exact:
        import harmonic

        denoised = np.asarray(harmonic.denoise(signal.samples, signal.sample_rate), dtype=np.float32)
        return _level(denoised, signal.sample_rate, k_weighted=True)[1] + gain, (
            f"output = denoised input {gain:+.1f} dB"
        )
    return tracks.level_db + gain, f"output = input {gain:+.1f} dB (denoise not replayed)"


def spectrogram_db(x: np.ndarray, sr: int) -> tuple[np.ndarray, float]:
    """Power spectrogram ``(N_FFT // 2 + 1, frames)`` in dB re full scale (a full-scale sine reads about
    0 dB), Hann frames of 32 ms every 10 ms, and its top (the strongest bin; 0 dB for digital silence).

    Clamped to the floor ``top − 80 dB``: always finite, and digital silence (power 0) sits at the floor,
    so an all-silent clip is all ``-80``."""
    window = np.hanning(N_FFT)
    spectrum = np.fft.rfft(_frames(np.asarray(x, dtype=np.float64), N_FFT, HOP) * window, axis=1)
    power = np.square(np.abs(spectrum)) * (4.0 / window.sum() ** 2)
    db = 10.0 * np.log10(np.maximum(power, 1e-30))
    top = float(db.max()) if np.any(power > 0) else 0.0
    return np.maximum(db, top - FLOOR_DB).T, top


def result_f0_track(track: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(times in s, f0 in Hz with NaN where unvoiced) of a result's ``features.f0_track``: value i is the f0
    at ``i * hop_s`` (null: unvoiced)."""
    hz = np.array([np.nan if value is None else float(value) for value in track.get("hz") or []])
    return np.arange(hz.size) * float(track["hop_s"]), hz


def voiced_spans(times: np.ndarray, f0_hz: np.ndarray, frame_s: float) -> list[tuple[float, float]]:
    """(start, end) in seconds of each run of voiced frames (finite f0); each frame covers ±half a hop."""
    voiced = np.concatenate(([False], np.isfinite(f0_hz), [False]))
    edges = np.flatnonzero(np.diff(voiced.astype(np.int8)))
    return [
        (max(0.0, times[a] - frame_s / 2), times[b - 1] + frame_s / 2)
        for a, b in zip(edges[::2], edges[1::2], strict=True)
    ]


# --- the figure ---------------------------------------------------------------------------------------------


def _fmt(value: Any, spec: str, unit: str = "") -> str:
    return "n/a" if value is None else f"{value:{spec}}{unit}"


def summary_lines(result: dict[str, Any], source: str) -> list[str]:
    """The text box: `source` (where the numbers come from) then what the result measured."""
    audio = result.get("audio") or {}
    loudness = result.get("loudness") or {}
    features = result.get("features") or {}
    denoise = result.get("denoise") or {}
    f0_hz = features.get("f0_hz") or {}
    approx = " (approx.)" if result.get("approximate") else ""
    lines = [source, ""]
    if audio.get("duration_s") is not None:
        lines.append(f"duration   {audio['duration_s']:.2f} s @ {_fmt(audio.get('sample_rate'), 'd', ' Hz')}")
    if loudness:
        lines.append(
            f"loudness   {_fmt(loudness.get('input_lufs'), '.1f')} → "
            f"{_fmt(loudness.get('output_lufs'), '.1f', ' LUFS')}"
        )
        limited = ", peak limited" if loudness.get("peak_limited") else ""
        lines.append(f"gain       {_fmt(loudness.get('gain_db'), '+.1f', ' dB')}{limited}")
    elif features.get("rms_dbfs") is not None or result.get("approximate"):
        lines.append(f"RMS level  {_fmt(features.get('rms_dbfs'), '.1f', ' dBFS')} (not LUFS)")
    median = f0_hz.get("median")
    lines.append(f"median f0  {_fmt(median, '.0f', ' Hz')}{approx}")
    if f0_hz.get("p10") is not None and f0_hz.get("p90") is not None:
        lines.append(f"f0 p10-p90 {f0_hz['p10']:.0f}-{f0_hz['p90']:.0f} Hz")
    voiced = features.get("voiced_fraction")
    lines.append(f"voiced     {_fmt(None if voiced is None else 100 * voiced, '.0f', ' %')}{approx}")
    if "hnr_db" in features:
        lines.append(f"HNR        {_fmt(features.get('hnr_db'), '.1f', ' dB')}")
    if "snr_db" in audio:
        lines.append(f"SNR        {_fmt(audio.get('snr_db'), '.1f', ' dB')} (estimated)")
    if denoise.get("applied"):
        lines.append(
            f"denoise    SNR {_fmt(denoise.get('snr_db_before'), '.1f')} → "
            f"{_fmt(denoise.get('snr_db_after'), '.1f', ' dB')}"
        )
    elif denoise:
        lines.append(f"denoise    skipped: {denoise.get('reason') or 'not run'}")
    matches = result.get("matches") or []
    lines.append(f"matches    {len(matches)}")
    for match in matches:
        where = f"{_fmt(match.get('start_s'), '.2f')}-{_fmt(match.get('end_s'), '.2f', ' s')}"
        if match.get("kind") == "fingerprint":
            where += " of the recording"
        lines.append(f"  {_match_label(match)}  {where}")
    for warning in audio.get("warnings") or []:
        lines.append(f"! {warning}")
    if result.get("approximate"):
        lines += [
            "",
            "harmonic library not installed:",
            "f0 by autocorrelation, level by",
            "RMS: approximate",
        ]
    return lines


def _wrapped(lines: list[str], width: int = 40) -> list[str]:
    """Lines longer than `width` continued on indented lines (the text box has a fixed width)."""
    import textwrap

    out: list[str] = []
    for line in lines:
        out += textwrap.wrap(line, width, subsequent_indent="    ") or [""]
    return out


def _match_label(match: dict[str, Any]) -> str:
    name = match.get("name") or match.get("pattern_id") or "?"
    score = match.get("score")
    return f"{name} {score:.2f}" if isinstance(score, int | float) else str(name)


def _f0_limits(f0_hz: np.ndarray) -> tuple[float, float]:
    """y-limits of the f0 panel: the voiced values' 2nd-98th percentiles with a third of an octave of
    margin, within 40-1100 Hz; 60-400 Hz when nothing is voiced."""
    voiced = f0_hz[np.isfinite(f0_hz)]
    if voiced.size == 0:
        return 60.0, 400.0
    low, high = np.percentile(voiced, [2, 98])
    low, high = max(40.0, low / 1.26), min(1100.0, high * 1.26)
    if high / low < 2.0:  # at least an octave, so a flat voice does not look wild
        centre = math.sqrt(low * high)
        low, high = max(40.0, centre / math.sqrt(2)), min(1100.0, centre * math.sqrt(2))
    return float(low), float(high)


def build_figure(
    audio: str | Path | bytes | Signal, result: dict[str, Any] | None = None, *, title: str = ""
) -> Figure:
    """The figure of the clip `audio` (a path, its bytes, or a decoded :class:`Signal`) and the service's
    `result` (None: measure locally with :func:`analyze_locally`). Panels: module docstring.

    Each axes has a label (``Axes.get_label()``): "waveform", "spectrogram", "f0", "loudness", "summary";
    match spans and labels have gid "match", voiced spans gid "voiced", the loudness lines gids
    "loudness_in" and "loudness_out". Raises ValueError for a clip that cannot be decoded.
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import FixedLocator, NullLocator, ScalarFormatter

    signal = audio if isinstance(audio, Signal) else load_signal(audio)
    if result is None:
        result = analyze_locally(signal)
        source = (
            "measured locally with the harmonic library (default options, no matching)"
            if signal.exact
            else "measured locally, APPROXIMATE (no harmonic library)"
        )
    else:
        source = "measured by the service"
        measured = (result.get("audio") or {}).get("duration_s")
        if isinstance(measured, int | float) and abs(measured - signal.duration_s) > 0.05:
            source += f" on a {measured:.2f} s clip; this one is {signal.duration_s:.2f} s: another clip?"
    tracks = compute_tracks(signal)
    x, sr, duration = signal.samples, signal.sample_rate, signal.duration_s

    figure = Figure(figsize=(14, 9.5), layout="constrained")
    grid = figure.add_gridspec(4, 2, width_ratios=(4.2, 1.3), height_ratios=(1.0, 1.5, 1.1, 1.1))
    wave_axis = figure.add_subplot(grid[0, 0], label="waveform")
    spec_axis = figure.add_subplot(grid[1, 0], sharex=wave_axis, label="spectrogram")
    f0_axis = figure.add_subplot(grid[2, 0], sharex=wave_axis, label="f0")
    loud_axis = figure.add_subplot(grid[3, 0], sharex=wave_axis, label="loudness")
    text_axis = figure.add_subplot(grid[:, 1], label="summary")
    figure.suptitle(title or "harmonic plot")

    _draw_waveform(wave_axis, x, sr)
    db, top = spectrogram_db(x, sr)
    frames_end = (db.shape[1] - 0.5) * HOP / sr
    spec_axis.imshow(
        db,
        origin="lower",
        aspect="auto",
        cmap="magma",
        interpolation="nearest",
        extent=(-0.5 * HOP / sr, frames_end, 0.0, sr / 2),
        vmin=top - FLOOR_DB,
        vmax=top,
    )
    spec_axis.set_ylabel("Hz")
    spec_axis.set_title(f"spectrogram, dB re strongest bin, floor -{FLOOR_DB:.0f} dB", fontsize=9, loc="left")

    # f0 on its own axis, voiced regions shaded: the result's own track and regions when it has them (the
    # service's features since they carry time series), else the track computed here
    f0_times, f0_hz, voiced, method = tracks.f0_times, tracks.f0_hz, None, "YIN"
    if tracks.approximate:
        method = "autocorrelation, approximate"
    features = result.get("features") or {}
    if isinstance(features.get("f0_track"), dict) and isinstance(features.get("voiced_regions"), list):
        f0_times, f0_hz = result_f0_track(features["f0_track"])
        voiced, method = [tuple(region) for region in features["voiced_regions"]], "as measured, YIN"
    for start, end in voiced if voiced is not None else voiced_spans(f0_times, f0_hz, HOP / sr):
        f0_axis.axvspan(start, end, color=_VOICED_COLOUR, alpha=0.3, linewidth=0, gid="voiced")
    f0_axis.plot(f0_times, f0_hz, color="tab:blue", linewidth=1.4, label=f"f0 ({method})")
    median = ((result.get("features") or {}).get("f0_hz") or {}).get("median")
    if median:
        f0_axis.axhline(
            median, color="tab:red", linestyle="--", linewidth=1.0, label=f"median {median:.0f} Hz"
        )
    f0_axis.set_yscale("log")
    low, high = _f0_limits(f0_hz)
    f0_axis.set_ylim(low, high)
    ticks = [
        t for t in (50, 60, 80, 100, 125, 150, 200, 250, 300, 400, 500, 600, 800, 1000) if low <= t <= high
    ]
    f0_axis.yaxis.set_major_locator(FixedLocator(ticks))
    f0_axis.yaxis.set_major_formatter(ScalarFormatter())
    f0_axis.yaxis.set_minor_locator(NullLocator())
    f0_axis.set_ylabel("f0 (Hz)")
    if not np.isfinite(f0_hz).any():
        f0_axis.text(0.5, 0.5, "no voiced frame", transform=f0_axis.transAxes, ha="center", va="center")
    f0_axis.legend(loc="upper right", fontsize=8, title="shaded: voiced", title_fontsize=8)

    _draw_loudness(loud_axis, signal, tracks, result)
    loud_axis.set_xlabel("seconds")
    wave_axis.set_xlim(0.0, duration)

    for match in result.get("matches") or []:
        if match.get("kind") == "fingerprint":  # its times are in the registered recording, not this clip
            continue
        start, end = match.get("start_s"), match.get("end_s")
        if start is None or end is None:
            continue
        for axis in (wave_axis, spec_axis):
            axis.axvspan(start, end, color=_MATCH_COLOUR, alpha=0.25, linewidth=0, gid="match")
    _label_matches(wave_axis, result.get("matches") or [])

    text_axis.axis("off")
    text_axis.text(
        0.0,
        1.0,
        "\n".join(_wrapped(summary_lines(result, source))),
        va="top",
        ha="left",
        family="monospace",
        fontsize=9,
        transform=text_axis.transAxes,
        bbox={"boxstyle": "round", "facecolor": "whitesmoke", "edgecolor": "grey"},
        gid="summary",
    )
    return figure


def _draw_waveform(axis: Axes, x: np.ndarray, sr: int) -> None:
    """The waveform; a long clip as its min/max envelope per pixel-sized bucket (same look, few points)."""
    bucket = max(1, x.size // 4000)
    if bucket > 1:
        usable = x[: x.size // bucket * bucket].reshape(-1, bucket)
        times = (np.arange(usable.shape[0]) + 0.5) * bucket / sr
        axis.fill_between(times, usable.min(axis=1), usable.max(axis=1), color="#1f4e79", linewidth=0)
    else:
        axis.plot(np.arange(x.size) / sr, x, linewidth=0.5, color="#1f4e79")
    axis.axhline(0.0, color="#1f4e79", linewidth=0.5)
    peak = float(np.max(np.abs(x)))
    axis.set_ylim(-1.1 * peak if peak > 0 else -1.0, 1.1 * peak if peak > 0 else 1.0)
    axis.set_ylabel("amplitude")


def _label_matches(axis: Axes, matches: list[dict[str, Any]]) -> None:
    """Label each template match's span with ``name score`` at its start, staggered so neighbours do not
    overprint."""
    from matplotlib.transforms import blended_transform_factory

    transform = blended_transform_factory(axis.transData, axis.transAxes)
    shown = [m for m in matches if m.get("kind") != "fingerprint" and m.get("start_s") is not None]
    for index, match in enumerate(sorted(shown, key=lambda m: m["start_s"])):
        axis.text(
            match["start_s"],
            0.95 - 0.17 * (index % 4),
            _match_label(match),
            transform=transform,
            va="top",
            fontsize=9,
            color="darkgreen",
            bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "alpha": 0.8, "linewidth": 0},
            gid="match",
        )


def _draw_loudness(axis: Axes, signal: Signal, tracks: Tracks, result: dict[str, Any]) -> None:
    """The level of the input and (with a gain) of the output; the target as a dotted line."""
    unit = tracks.level_unit
    what = "momentary loudness" if unit == "LUFS" else "RMS level, approximate (not K-weighted)"
    axis.plot(
        tracks.level_times, tracks.level_db, color="tab:grey", linewidth=1.4, label="input", gid="loudness_in"
    )
    after, note = loudness_curves(signal, tracks, result)
    values = [tracks.level_db]
    if after is not None:
        axis.plot(
            tracks.level_times, after, color="tab:purple", linewidth=1.6, label=note, gid="loudness_out"
        )
        values.append(after)
    target = (result.get("loudness") or {}).get("target_lufs")
    if target is not None and unit == "LUFS":
        axis.axhline(target, color="black", linestyle=":", linewidth=1.0, label=f"target {target:g} LUFS")
        values.append(np.array([target]))
    finite = np.concatenate(values)
    finite = finite[np.isfinite(finite)]
    if np.isfinite(tracks.level_db).any():
        top = float(finite.max())
        axis.set_ylim(max(float(finite.min()), top - 60.0) - 3.0, top + 3.0)
    else:
        axis.set_ylim(-80.0, 0.0)
        axis.text(0.5, 0.5, "digital silence: no level", transform=axis.transAxes, ha="center", va="center")
    axis.set_ylabel(unit)
    axis.set_title(f"{what}, 400 ms blocks every 100 ms", fontsize=9, loc="left")
    if after is None:
        axis.text(0.01, 0.04, note, transform=axis.transAxes, fontsize=8, color="dimgrey")
    axis.legend(loc="lower right", fontsize=8)


def save_figure(figure: Figure, output: str | Path, *, dpi: int = 100) -> Path:
    """Write `figure` to `output` (the format from its suffix, e.g. PNG) and return the path."""
    output = Path(output)
    figure.savefig(output, dpi=dpi)
    return output


def plot_clip(
    audio: str | Path | bytes, output: str | Path, result: dict[str, Any] | None = None, *, title: str = ""
) -> Path:
    """Build the figure of `audio` with `result` (None: measured locally) and write it to `output`."""
    return save_figure(build_figure(audio, result, title=title), output)


def plot_invocation(audio: str | Path | bytes, status: dict[str, Any], output: str | Path) -> Path:
    """The figure of an invocation: its clip and its status document's result, written to `output`.

    An invocation without a result (still running, or failed) is measured locally and says so.
    """
    title = f"invocation {status.get('invocation_id', '')}  {status.get('status', '')}".strip()
    result = status.get("result")
    if result is None:
        title += "  (no result: measured locally)"
    return plot_clip(audio, output, result, title=title)
