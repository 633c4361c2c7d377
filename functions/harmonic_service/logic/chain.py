"""The whole chain in one process: what POST /v1/analyze runs, a loop over the stage table.

`run_chain` hands every stage an in-memory `StageContext` (`MemoryContext`); the deployed orchestrations
hand the same stages one backed by S3 and the checkpoint (`runner.StoredContext`). Skips follow the same
rules (`stages.skip_reason`), so every mode returns the same result for the same clip.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from harmonic_service.logic.options import Options, parse_options, resolve_steps
from harmonic_service.logic.patterns import Pattern, PatternSet
from harmonic_service.stages import STAGES, Stage, earlier, skip_reason
from harmonic_service.tenancy import Viewer


class MemoryContext:
    """A StageContext over values in memory: the clip, the request, the patterns and the outputs so far."""

    def __init__(
        self,
        wav: bytes,
        options: Options,
        steps: Sequence[str],
        limits: Any = None,
        patterns: PatternSet | None = None,
        viewer: Viewer | None = None,
    ) -> None:
        self._wav = wav
        self._viewer = viewer
        self._options = options
        self._steps = tuple(steps)
        self._limits = limits
        self._patterns = patterns if patterns is not None else PatternSet()
        self._audio: Any = None
        self._audio_of: dict[str, Any] = {}  # by the audio stage that produced it
        self.summaries: dict[str, Mapping[str, Any]] = {}
        self.current = STAGES[0].name  # the stage being run or decided

    @property
    def options(self) -> Options:
        return self._options

    @property
    def steps(self) -> Sequence[str]:
        return self._steps

    @property
    def limits(self) -> Any:
        return self._limits

    def clip(self) -> bytes:
        return self._wav

    def audio(self) -> Any:
        return self._audio

    def audio_of(self, stage: str) -> Any:
        if stage not in self._audio_of:
            raise ValueError(f"stage {stage} produced no audio")
        return self._audio_of[stage]

    def summary(self, stage: str) -> Mapping[str, Any]:
        return self.summaries[stage]

    def earlier(self) -> Sequence[Stage]:
        return earlier(self.current)

    def patterns(self) -> PatternSet:
        return self._patterns

    def pattern_count(self) -> int:
        return len(self._patterns.selected(self._options.patterns, self._viewer))

    def viewer(self) -> Viewer | None:
        return self._viewer

    def record(self, stage: str, summary: Mapping[str, Any], audio: Any = None) -> None:
        """Keep a stage's summary, and its audio for the stages after it when it produced some."""
        self.summaries[stage] = summary
        if audio is not None:
            self._audio = self._audio_of[stage] = audio


def run_chain(
    wav: bytes,
    steps: Sequence[str] | None = None,
    options: Mapping[str, Any] | Options | None = None,
    *,
    limits: Any = None,
    patterns: Sequence[Pattern] | PatternSet = (),
    timings: dict[str, float] | None = None,
    viewer: Viewer | None = None,
) -> dict[str, Any]:
    """Run every stage on `wav` in-process and return the result (docs/design.md "Result").

    Errors propagate: InvalidAudio for bad audio, ValueError for bad steps or options. `limits` is a
    harmonic.WavLimits; `timings`, if given, receives each stage's wall time in milliseconds (skipped
    stages have none). `viewer`: whose request it is (tenancy; None: every pattern counts).
    """
    opts = parse_options(options)
    pattern_set = patterns if isinstance(patterns, PatternSet) else PatternSet.from_patterns(patterns)
    context = MemoryContext(wav, opts, resolve_steps(steps), limits, pattern_set, viewer)
    for stage in STAGES:
        context.current = stage.name
        reason = skip_reason(stage, context)
        if reason is not None:
            context.record(stage.name, stage.skipped_summary(reason))
            continue
        start = time.perf_counter()
        output = stage.run(context)
        if timings is not None:
            timings[stage.name] = (time.perf_counter() - start) * 1000.0
        context.record(stage.name, output.summary, output.audio if stage.produces_audio else None)
    return dict(context.summaries[STAGES[-1].name])
