"""Stage respond (last): assemble the result from every earlier stage's summary."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from harmonic_service.stages.base import ALL_EARLIER, EXCLUDED_BY_STEPS, Stage, StageContext, StageOutput


def respond(stages: Sequence[Stage], summaries: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The result: each stage's section (its `result_key`) from its summary, in stage order.

    A stage missing from `summaries` is reported as skipped because the request's steps left it out.
    """
    result: dict[str, Any] = {}
    for stage in stages:
        if stage.result_key is None:
            continue
        summary = summaries.get(stage.name)
        if summary is None:
            summary = stage.skipped_summary(EXCLUDED_BY_STEPS)
        result[stage.result_key] = stage.to_result(summary)
    return result


def run(context: StageContext) -> StageOutput:
    stages = context.earlier()
    return StageOutput(None, respond(stages, {stage.name: context.summary(stage.name) for stage in stages}))


STAGE = Stage(
    name="respond",
    description="assemble and store the result; the invocation becomes SUCCEEDED.",
    run=run,
    reads=ALL_EARLIER,
    timeout_s=30,
    memory_mb=512,
    batch_size=5,
)
