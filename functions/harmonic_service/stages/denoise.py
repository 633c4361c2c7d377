"""Stage denoise (optional): spectral gating with a noise profile from the clip itself."""

from __future__ import annotations

from typing import Any

from harmonic_service.stages.base import ANALYSIS_SAMPLE_RATE, Stage, StageContext, StageOutput


def denoise(audio: Any, sr: int, snr_db_before: float | None = None) -> StageOutput:
    """Spectral gating (harmonic.denoise); the summary compares the estimated SNR before and after."""
    import numpy as np

    import harmonic

    if snr_db_before is None:
        snr_db_before = harmonic.json_safe(harmonic.estimate_snr_db(audio, sr))
    cleaned = np.asarray(harmonic.denoise(audio, sr), dtype=np.float32)
    snr_db_after = harmonic.json_safe(harmonic.estimate_snr_db(cleaned, sr))
    summary = {
        "applied": True,
        "snr_db_before": harmonic.json_safe(snr_db_before),
        "snr_db_after": snr_db_after,
    }
    return StageOutput(cleaned, summary)


def run(context: StageContext) -> StageOutput:
    snr_before = context.summary("ingest").get("snr_db")
    return denoise(context.audio(), ANALYSIS_SAMPLE_RATE, snr_before)


def skip(context: StageContext) -> str | None:
    """A clip whose estimated SNR is at least `options.clean_snr_db` is clean: nothing to remove."""
    snr = context.summary("ingest").get("snr_db")
    threshold = context.options.clean_snr_db
    if snr is not None and snr >= threshold:
        return f"clean clip: estimated SNR {snr:.1f} dB >= {threshold:g} dB"
    return None


def skipped(reason: str) -> dict[str, Any]:
    return {"applied": False, "reason": reason}


STAGE = Stage(
    name="denoise",
    description="spectral gating with a noise profile from the clip itself.",
    run=run,
    reads=("ingest",),
    reads_audio=True,
    produces_audio=True,
    result_key="denoise",
    skip=skip,
    skip_when="clip clean, or steps excludes denoise",
    skipped_summary=skipped,
    timeout_s=120,
    memory_mb=1536,
)
