"""Stage match (optional): where the registered patterns (keywords, keyword templates, fingerprints) occur."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from harmonic_service.stages.base import ANALYSIS_SAMPLE_RATE, Stage, StageContext, StageOutput
from harmonic_service.stages.denoise import NEURAL


def match(
    audio: Any,
    sr: int,
    patterns: Any = (),
    selectors: Sequence[str] | None = None,
    viewer: Any = None,
    enhanced: bool = False,
    near_duplicates: bool = False,
    audio_before_enhancer: Callable[[], Any] | None = None,
) -> StageOutput:
    """Matches of the registered patterns in the clip, best first: keywords and keyword templates (where in
    the clip) and fingerprints (where in the registered recording).

    `patterns`: a PatternSet or a sequence of Pattern; `selectors` (ids or names) narrows them; `viewer`
    (tenancy.Viewer) keeps the caller's own and the publishers' (None: every one); `enhanced`: the audio is
    DeepFilterNet3's output (PatternSet.match, ENHANCED_MARGIN); `near_duplicates`: fingerprints also match
    other renditions of a recording's notes (options.near_duplicates); `audio_before_enhancer`: fetches the
    clip as it was before DeepFilterNet3, which fingerprints are matched on (PatternSet.match).
    """
    from harmonic_service.logic.patterns import PatternSet

    pattern_set = patterns if isinstance(patterns, PatternSet) else PatternSet.from_patterns(patterns)
    found = pattern_set.match(
        audio,
        sr,
        selectors,
        viewer,
        enhanced=enhanced,
        near_duplicates=near_duplicates,
        audio_before_enhancer=audio_before_enhancer,
    )
    return StageOutput(None, {"matches": found})


def run(context: StageContext) -> StageOutput:
    # normalize read denoise's audio, so its summary is there whenever this stage runs (skipped or not)
    enhanced = context.summary("denoise").get("method") == NEURAL
    return match(
        context.audio(),
        ANALYSIS_SAMPLE_RATE,
        context.patterns(),
        context.options.patterns,
        context.viewer(),
        enhanced=enhanced,
        near_duplicates=context.options.near_duplicates,
        # ingest's audio: only read (one more S3 GET) when the enhancer ran and a fingerprint is selected
        audio_before_enhancer=(lambda: context.audio_of("ingest")) if enhanced else None,
    )


def skip(context: StageContext) -> str | None:
    """Nothing to match when no registered pattern is selected (all of them without `options.patterns`)."""
    if context.pattern_count() == 0:
        return "no selected pattern is registered" if context.options.patterns else "no patterns registered"
    return None


def skipped(reason: str) -> dict[str, Any]:
    return {"matches": [], "reason": reason}


def best_first(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The result's `matches`: the summary's matches, best score first (the summary is not mutated)."""
    matches = list(summary.get("matches", []))
    matches.sort(key=lambda found: -(found.get("score") or 0.0))
    return matches


STAGE = Stage(
    name="match",
    description="registered patterns (keywords, templates, fingerprints) found in the clip.",
    run=run,
    reads=("normalize",),
    reads_audio=True,
    result_key="matches",
    to_result=best_first,
    skip=skip,
    skip_when="no pattern registered, or steps excludes match",
    skipped_summary=skipped,
    uses_patterns=True,
    timeout_s=60,
    memory_mb=1024,
)
