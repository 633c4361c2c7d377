"""Pure stage logic: no AWS, no I/O. One function per stage, the skip rules, and the in-process chain."""

from harmonic_service.logic.chain import run_chain
from harmonic_service.logic.options import Options, parse_options, resolve_steps, skip_reason
from harmonic_service.logic.stages import (
    ANALYSIS_SAMPLE_RATE,
    StageOutput,
    denoise,
    features,
    ingest,
    match,
    normalize,
    respond,
    skipped_summary,
)

__all__ = [
    "ANALYSIS_SAMPLE_RATE",
    "Options",
    "StageOutput",
    "denoise",
    "features",
    "ingest",
    "match",
    "normalize",
    "parse_options",
    "resolve_steps",
    "respond",
    "run_chain",
    "skip_reason",
    "skipped_summary",
]
