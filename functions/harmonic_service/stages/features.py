"""Stage features: clip-level f0, voicing, HNR, spectral shape, MFCC and chroma of the normalized audio."""

from __future__ import annotations

from typing import Any

from harmonic_service.stages.base import ANALYSIS_SAMPLE_RATE, Stage, StageContext, StageOutput


def features(audio: Any, sr: int) -> StageOutput:
    """Clip-level features (harmonic.extract_features): f0, voicing, HNR, spectral shape, MFCC, chroma."""
    import harmonic

    return StageOutput(None, harmonic.json_safe(harmonic.extract_features(audio, sr)))


def run(context: StageContext) -> StageOutput:
    return features(context.audio(), ANALYSIS_SAMPLE_RATE)


STAGE = Stage(
    name="features",
    description="f0, voicing, HNR, spectral shape, MFCC, chroma.",
    run=run,
    reads=("normalize",),
    reads_audio=True,
    result_key="features",
    timeout_s=120,
    memory_mb=1536,
)
