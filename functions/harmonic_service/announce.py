"""What a stage announces on the bus after one delivery: the facts its run established.

`after(envelope, run)` (events mode) turns a `runner.StageRun` into the events to publish. A duplicate
delivery announces again only when the first announcement was evidently lost (`run.republish`), from the
checkpoint. `ended(invocation_id)` is the end of an invocation in any mode (`InvocationCompleted` or
`InvocationFailed`, from the checkpoint), which the pipeline and the state machine publish too when the
deployment has a bus, so that subscribers such as the completion notifications hear of every invocation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harmonic_service.dal import checkpoints
from harmonic_service.events import (
    EventDetail,
    InvocationCompleted,
    InvocationFailed,
    StageCompleted,
    StageFailed,
    StageSkipped,
)
from harmonic_service.models import Envelope, InvocationStatus, StageOutcome, StageStatus

if TYPE_CHECKING:
    from harmonic_service.runner import StageRun  # the runner imports the DSP; announcing does not


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
        return [completed, *ended(envelope.invocation_id)]
    if run.outcome == StageOutcome.FAILED:
        error = run.error or {}
        code, message = error.get("code", "stage_error"), error.get("message", "stage failed")
        return [StageFailed(**ids, stage=stage, code=code, message=message), *ended(envelope.invocation_id)]
    if run.outcome == StageOutcome.DUPLICATE and run.republish:
        return _again(envelope)
    return []


def ended(invocation_id: str) -> list[EventDetail]:
    """`InvocationCompleted` or `InvocationFailed` for an invocation that has ended, from its checkpoint
    (`notify` when its request named a callback_url); nothing while it runs or if it is unknown."""
    item = checkpoints.get(invocation_id)
    if item is None:
        return []
    ids = {"invocation_id": invocation_id, "correlation_id": item.correlation_id or invocation_id}
    notify = bool(item.callback_url)
    if item.status == InvocationStatus.SUCCEEDED:
        return [InvocationCompleted(**ids, result_key=item.result_key or "", notify=notify)]
    if item.status == InvocationStatus.FAILED and item.error is not None:
        error = item.error
        return [
            InvocationFailed(
                **ids, stage=error.stage or "", code=error.code, message=error.message, notify=notify
            )
        ]
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
