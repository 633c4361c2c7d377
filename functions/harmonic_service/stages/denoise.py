"""Stage denoise (optional): a noisy clip's noise removed before anything is measured or matched.

DeepFilterNet3 (harmonic.enhance), a network trained on real speech under real noise, where its runtime is
installed (the ``speech`` layer: python_runtime 3.13) and the clip is at most NEURAL_MAX_S long; spectral
gating with a noise profile from the clip itself (harmonic.denoise) otherwise, or when the request asks for
it (``options.denoiser``: it takes about 1/50 of the time, and removes stationary noise only). The
summary's ``method`` says which ran and, for gating, ``gating_reason`` why. docs/matching.md ("A neural
enhancer before matching") has what it changes for keyword spotting; spectral gating cannot tell babble or
music from speech.
"""

from __future__ import annotations

from typing import Any

from harmonic_service.stages.base import ANALYSIS_SAMPLE_RATE, Stage, StageContext, StageOutput

#: The longest clip DeepFilterNet3 enhances (seconds). It costs about 0.3 s per clip plus 0.09 s per second of
#: audio on one x86_64 core (make bench, 2026-12-01), so 120 s takes ~11 s here, and a few times that on a
#: Lambda function's fraction of an arm64 core, within the stage's 120 s timeout; longer clips are gated.
NEURAL_MAX_S = 120.0

NEURAL = "deepfilternet3"
GATING = "spectral_gating"


def choose_method(
    duration_s: float, neural_available: bool, requested: str = NEURAL
) -> tuple[str, str | None]:
    """(method, why gating) for a clip of ``duration_s``: DeepFilterNet3 where it was requested (the
    ``denoiser`` option), is installed and the clip is short enough; spectral gating (and why) otherwise."""
    if requested == GATING:
        return GATING, "requested (options.denoiser)"
    if not neural_available:
        return (
            GATING,
            "DeepFilterNet3 is not installed (the speech layer exists for python_runtime 3.13 only)",
        )
    if duration_s > NEURAL_MAX_S:
        return (
            GATING,
            f"the clip is {duration_s:.0f} s long; DeepFilterNet3 runs on clips up to {NEURAL_MAX_S:g} s",
        )
    return NEURAL, None


def denoise(audio: Any, sr: int, snr_db_before: float | None = None, denoiser: str = NEURAL) -> StageOutput:
    """The clip with its noise removed (see the module docstring for the method; ``denoiser``: the option's
    value); the summary names the method and compares the estimated SNR before and after."""
    import numpy as np

    import harmonic
    from harmonic import enhance

    if snr_db_before is None:
        snr_db_before = harmonic.json_safe(harmonic.estimate_snr_db(audio, sr))
    # the runtime is not even loaded when gating was asked for
    neural_available = denoiser != GATING and enhance.available()
    method, gating_reason = choose_method(np.asarray(audio).size / sr, neural_available, denoiser)
    if method == NEURAL:
        cleaned = enhance.enhance(audio, sr)
    else:
        cleaned = np.asarray(harmonic.denoise(audio, sr), dtype=np.float32)
    snr_db_after = harmonic.json_safe(harmonic.estimate_snr_db(cleaned, sr))
    summary = {
        "applied": True,
        "method": method,
        "snr_db_before": harmonic.json_safe(snr_db_before),
        "snr_db_after": snr_db_after,
    }
    if gating_reason:
        summary["gating_reason"] = gating_reason
    return StageOutput(cleaned, summary)


def run(context: StageContext) -> StageOutput:
    snr_before = context.summary("ingest").get("snr_db")
    return denoise(context.audio(), ANALYSIS_SAMPLE_RATE, snr_before, context.options.denoiser)


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
    description="noise removed: DeepFilterNet3, or spectral gating where it cannot run.",
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
