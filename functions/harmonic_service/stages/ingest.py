"""Stage ingest: decode and validate the submitted WAV, resample it to 16 kHz mono, estimate its SNR."""

from __future__ import annotations

import math
from typing import Any

from harmonic_service.stages.base import ANALYSIS_SAMPLE_RATE, Stage, StageContext, StageOutput

# Shorter clips have no 400 ms loudness block and too few frames for f0 statistics.
MIN_DURATION_S = 0.1
# A sample this close to full scale counts as clipped (int16 full scale is 32767/32768 = 0.99997).
CLIP_LEVEL = 0.999
# Above this fraction of clipped samples, the clip is rejected; above CLIP_WARNING it is flagged.
MAX_CLIPPED_FRACTION = 0.2
CLIP_WARNING = 0.001


def _dbfs(amplitude: float) -> float | None:
    return 20.0 * math.log10(amplitude) if amplitude > 0 else None


def ingest(wav: bytes, limits: Any = None, clean_snr_db: float = 30.0) -> StageOutput:
    """Decode and validate a WAV clip and resample it to 16 kHz mono float32.

    Raises InvalidAudio (permanent) for anything that is not a usable clip: a malformed or unsupported
    WAV, limits exceeded (`limits`: a harmonic.WavLimits), NaN/Inf samples, a clip shorter than
    MIN_DURATION_S, or one so clipped (> MAX_CLIPPED_FRACTION of samples at full scale) that its analysis
    would be meaningless. The summary's `clean` says whether the estimated SNR reaches `clean_snr_db`.
    """
    import numpy as np

    import harmonic
    from harmonic import InvalidAudio

    clip = harmonic.decode_audio(wav, limits)
    samples = np.asarray(clip.samples, dtype=np.float32)
    if samples.ndim != 1:
        raise InvalidAudio(f"decoded audio has shape {samples.shape}; expected mono")
    if not np.isfinite(samples).all():
        raise InvalidAudio("the clip contains NaN or infinite samples")
    duration_s = samples.size / clip.sample_rate
    if duration_s < MIN_DURATION_S:
        raise InvalidAudio(f"the clip is {duration_s:.3f} s long; at least {MIN_DURATION_S} s is needed")
    magnitude = np.abs(samples)
    peak = float(magnitude.max())
    clipped_fraction = float(np.count_nonzero(magnitude >= CLIP_LEVEL)) / samples.size
    if clipped_fraction > MAX_CLIPPED_FRACTION:
        raise InvalidAudio(
            f"{clipped_fraction:.0%} of the samples are clipped at full scale; record at a lower level"
        )
    if clip.sample_rate != ANALYSIS_SAMPLE_RATE:
        audio = harmonic.resample(samples, clip.sample_rate, ANALYSIS_SAMPLE_RATE).astype(np.float32)
    else:
        audio = samples
    snr_db = harmonic.json_safe(harmonic.estimate_snr_db(audio, ANALYSIS_SAMPLE_RATE)) if peak > 0 else None
    warnings = []
    if peak == 0:
        warnings.append("the clip is digital silence")
    if clipped_fraction > CLIP_WARNING:
        warnings.append(f"{clipped_fraction:.1%} of the samples are clipped")
    summary = {
        "duration_s": round(duration_s, 4),
        "sample_rate": int(clip.sample_rate),
        "channels": int(clip.channels),
        "analysis_sample_rate": ANALYSIS_SAMPLE_RATE,
        "peak_dbfs": harmonic.json_safe(_dbfs(peak)),
        "clipped_fraction": round(clipped_fraction, 6),
        "snr_db": snr_db,
        "clean": snr_db is not None and snr_db >= clean_snr_db,
        "warnings": warnings,
    }
    return StageOutput(audio, summary)


def run(context: StageContext) -> StageOutput:
    return ingest(context.clip(), context.limits, clean_snr_db=context.options.clean_snr_db)


STAGE = Stage(
    name="ingest",
    description="decode, validate and resample the clip; estimates its SNR (a clean clip skips denoise).",
    run=run,
    reads_clip=True,
    produces_audio=True,
    result_key="audio",
    timeout_s=60,
    memory_mb=1024,
)
