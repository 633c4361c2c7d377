"""The whole chain in one process: what POST /v1/analyze runs (and a reference for the orchestrations)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from harmonic import WavLimits
from harmonic_service.logic import stages
from harmonic_service.logic.options import Options, parse_options, resolve_steps, skip_reason


def run_chain(
    wav: bytes,
    steps: Sequence[str] | None = None,
    options: Mapping[str, Any] | Options | None = None,
    *,
    limits: WavLimits | None = None,
    patterns: Sequence[stages.Pattern] | stages.PatternSet = (),
    timings: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Run every stage on `wav` in-process and return the result (SPEC "Result").

    Skips follow the same rules as the orchestrations (`skip_reason`). Errors propagate: InvalidAudio for
    bad audio, ValueError for bad steps or options. `timings`, if given, receives each stage's wall time in
    milliseconds.
    """
    opts = parse_options(options)
    run_steps = resolve_steps(steps)
    pattern_set = (
        patterns if isinstance(patterns, stages.PatternSet) else stages.PatternSet.from_patterns(patterns)
    )
    pattern_count = len(pattern_set.selected(opts.patterns))
    sr = stages.ANALYSIS_SAMPLE_RATE
    summaries: dict[str, dict[str, Any]] = {}

    def timed(stage: str, call, *args, **kwargs) -> stages.StageOutput:
        start = time.perf_counter()
        output = call(*args, **kwargs)
        if timings is not None:
            timings[stage] = (time.perf_counter() - start) * 1000.0
        summaries[stage] = output.summary
        return output

    audio = timed("ingest", stages.ingest, wav, limits, clean_snr_db=opts.clean_snr_db).audio
    reason = skip_reason("denoise", run_steps, summaries, opts, pattern_count)
    if reason:
        summaries["denoise"] = stages.skipped_summary("denoise", reason)
    else:
        audio = timed("denoise", stages.denoise, audio, sr, summaries["ingest"].get("snr_db")).audio
    audio = timed("normalize", stages.normalize, audio, sr, opts.target_lufs, opts.peak_dbfs).audio
    timed("features", stages.features, audio, sr)
    reason = skip_reason("match", run_steps, summaries, opts, pattern_count)
    if reason:
        summaries["match"] = stages.skipped_summary("match", reason)
    else:
        timed("match", stages.match, audio, sr, pattern_set, opts.patterns)
    start = time.perf_counter()
    result = stages.respond(summaries)
    if timings is not None:
        timings["respond"] = (time.perf_counter() - start) * 1000.0
    return result
