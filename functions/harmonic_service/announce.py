"""What a stage announces on the bus after one delivery (events mode): the facts its run established.

`after(envelope, run)` turns a `runner.StageRun` into the events to publish. A duplicate delivery announces
again only when the first announcement was evidently lost (`run.republish`), from the checkpoint.
"""

from __future__ import annotations

from harmonic_service.dal import checkpoints
from harmonic_service.events import (
    EventDetail,
    InvocationCompleted,
    InvocationFailed,
    StageCompleted,
    StageFailed,
    StageSkipped,
)
from harmonic_service.models import Envelope, StageOutcome, StageStatus
from harmonic_service.runner import StageRun


def after(envelope: Envelope, run: StageRun) -> list[EventDetail]:
    """The events that announce `run` of `envelope.stage`, in the order to publish them."""
    ids = {"invocation_id": envelope.invocation_id, "correlation_id": envelope.correlation_id}
    stage = envelope.stage
    if run.outcome == StageOutcome.COMPLETED:
        return [StageCompleted(**ids, stage=stage, output_key=run.output_key, duration_ms=run.duration_ms)]
    if run.outcome == StageOutcome.SKIPPED:
        return [StageSkipped(**ids, stage=stage, reason=run.skipped.get(stage, ""))]
    if run.outcome == StageOutcome.SUCCEEDED:
        completed = StageCompleted(**ids, stage=stage, output_key=run.output_key, duration_ms=run.duration_ms)
        return [completed, InvocationCompleted(**ids, result_key=run.output_key or "")]
    if run.outcome == StageOutcome.FAILED:
        error = run.error or {}
        code, message = error.get("code", "stage_error"), error.get("message", "stage failed")
        return [
            StageFailed(**ids, stage=stage, code=code, message=message),
            InvocationFailed(**ids, stage=stage, code=code, message=message),
        ]
    if run.outcome == StageOutcome.DUPLICATE and run.republish:
        return _again(envelope)
    return []


def _again(envelope: Envelope) -> list[EventDetail]:
    """The completion of a stage that is done, from its checkpoint (its first announcement was lost)."""
    ids = {"invocation_id": envelope.invocation_id, "correlation_id": envelope.correlation_id}
    item = checkpoints.get(envelope.invocation_id)
    if item is None:
        return []
    checkpoint = item.stage(envelope.stage)
    if checkpoint.status == StageStatus.SUCCEEDED:
        return [StageCompleted(**ids, stage=envelope.stage, output_key=checkpoint.output_key)]
    if checkpoint.status == StageStatus.SKIPPED:
        return [StageSkipped(**ids, stage=envelope.stage, reason=checkpoint.skip_reason or "")]
    return []
