"""``harmonic plot``: the clip's waveform, its spectrogram with the f0 track, and the matched spans.

Client side only (matplotlib). The service returns summaries, not time series, so the track is recomputed
here from the WAV the user sent, with the same library the service runs (``harmonic.f0``) when it is
importable, and the service's median f0 as a reference line otherwise.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np


def _decode(audio: str | Path | bytes) -> tuple[np.ndarray, int]:
    """The clip (a path, or its bytes) as float64 mono samples and their rate."""
    data = audio if isinstance(audio, bytes) else Path(audio).read_bytes()
    try:
        from harmonic import decode_audio
    except ImportError:  # a client-only install: scipy's reader (WAV only)
        from scipy.io import wavfile

        sr, samples = wavfile.read(io.BytesIO(data))
        samples = samples.astype(np.float64)
        if samples.ndim == 2:
            samples = samples.mean(axis=1)
        peak = np.abs(samples).max() or 1.0
        return samples / max(peak, 1.0 if peak <= 1.0 else 32768.0), int(sr)
    clip = decode_audio(data)
    return clip.samples.astype(np.float64), clip.sample_rate


def plot_invocation(audio: str | Path | bytes, status: dict[str, Any], output: str | Path) -> Path:
    """Write the figure of `audio` (a path, or the clip's bytes) to `output` (PNG) and return its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples, sr = _decode(audio)
    result = status.get("result") or {}
    times = np.arange(samples.size) / sr
    figure, (wave_axis, spec_axis) = plt.subplots(2, 1, figsize=(11, 6), sharex=True, constrained_layout=True)
    wave_axis.plot(times, samples, linewidth=0.5, color="#1f4e79")
    wave_axis.set_ylabel("amplitude")
    title = f"{status.get('invocation_id', '')}  {status.get('status', '')}"
    wave_axis.set_title(title.strip())

    n_fft, hop = 1024, max(1, sr // 100)
    spec_axis.specgram(samples, NFFT=n_fft, Fs=sr, noverlap=n_fft - hop, cmap="magma", scale="dB")
    spec_axis.set_ylabel("Hz")
    spec_axis.set_xlabel("seconds")
    spec_axis.set_ylim(0, min(sr / 2, 4000))
    try:
        from harmonic import f0

        track = f0(samples, sr, hop_length=hop)
        spec_axis.plot(np.arange(track.size) * hop / sr, track, color="cyan", linewidth=1.2, label="f0")
    except ImportError:
        median = ((result.get("features") or {}).get("f0_hz") or {}).get("median")
        if median:
            spec_axis.axhline(median, color="cyan", linewidth=1.0, label="median f0")
    for match in result.get("matches") or []:
        for axis in (wave_axis, spec_axis):
            axis.axvspan(match.get("start_s", 0), match.get("end_s", 0), color="lime", alpha=0.25)
        wave_axis.text(
            match.get("start_s", 0), 0.9, f"{match.get('name') or match.get('pattern_id')}", color="green"
        )
    spec_axis.legend(loc="upper right")
    output = Path(output)
    figure.savefig(output, dpi=100)
    plt.close(figure)
    return output
