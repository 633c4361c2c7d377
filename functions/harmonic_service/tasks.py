"""Step Functions task logic (statemachine mode): run one stage, or record a failure.

The state machine (statemachines/harmonic.asl.json) passes the envelope to a stage's task and continues with
what the task returns: the envelope of the next stage that really runs (its `stage` is what the Choice states
branch on), or, after respond, a small "done" object. The work itself is `runner.run_stage`, the same runner
the SQS pipeline uses, so the checkpoints, skip rules and results are identical in both modes.

Errors are raised with class names the ASL matches on (Step Functions sees the exception's class name):

- TransientStageError: anything that may pass (the runner's "anything else"); Retry with backoff and jitter.
- PermanentStageError: the runner already marked the invocation FAILED (`{code, message, stage}`).
- PoisonMessage / UnknownInvocation: an envelope that can never run (not retried).
- StaleMessage: a delivery for an invocation that is FAILED or whose previous stage is not done (not
  retried; nothing is recorded, the invocation belongs to whoever moved it on).

Every error is caught (States.ALL) into the RecordFailure task, `record_failure`, which records the failure
unless the invocation already ended (checkpoints.fail is conditional) and returns the invocation's error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from harmonic_service.dal import checkpoints, payloads
from harmonic_service.errors import (
    FUNCTION_DIED_ERRORS,
    LAMBDA_SERVICE_ERRORS,
    PermanentStageError,
    PoisonMessage,
    StaleMessage,
    TransientStageError,
    UnknownInvocation,
)
from harmonic_service.models import Envelope, InvocationStatus, StageOutcome
from harmonic_service.runner import StageRun, run_stage

# Errors the ASL retries (Retry) before they reach the failure path: retries were exhausted.
RETRIED_ERRORS = frozenset({*LAMBDA_SERVICE_ERRORS, *FUNCTION_DIED_ERRORS, TransientStageError.__name__})
# Step Functions error name → the code recorded on the invocation (anything else: "stage_failed").
_FAILURE_CODES = {
    PermanentStageError.__name__: "stage_error",
    PoisonMessage.__name__: "bad_envelope",
    UnknownInvocation.__name__: "bad_envelope",
    "UnexpectedStage": "unexpected_stage",
    "States.Timeout": "stage_timeout",
    "Sandbox.Timedout": "stage_timeout",
    "States.TaskFailed": "stage_failed",
}
MAX_MESSAGE_CHARS = 500


@dataclass(frozen=True)
class TaskOutcome:
    """What a stage task returns to Step Functions (`output`) and what the runner did (`run`)."""

    output: dict[str, Any]
    run: StageRun


def _short(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def done_output(envelope: Envelope) -> dict[str, Any]:
    """The output of the last task: the invocation SUCCEEDED and its result is stored."""
    return {
        "invocation_id": envelope.invocation_id,
        "correlation_id": envelope.correlation_id,
        "mode": envelope.mode,
        "stage": envelope.stage,
        "status": InvocationStatus.SUCCEEDED.value,
        "result_key": payloads.result_key(envelope.invocation_id),
    }


def _envelope_output(envelope: Envelope) -> dict[str, Any]:
    return envelope.model_dump(mode="json")


def _after_drop(envelope: Envelope) -> dict[str, Any]:
    """For a duplicate delivery (an earlier attempt did the work but its answer was lost): where to go next.

    The next stage that is not SKIPPED, read from the checkpoint; no work is redone. A delivery for a FAILED
    invocation or out of order raises StaleMessage.
    """
    item = checkpoints.get(envelope.invocation_id)
    if item is None:
        raise UnknownInvocation(f"no invocation {envelope.invocation_id}")
    if item.status == InvocationStatus.FAILED:
        raise StaleMessage(StageOutcome.STALE, f"invocation {envelope.invocation_id} is FAILED", item)
    if not item.done(envelope.stage):
        raise StaleMessage(StageOutcome.OUT_OF_ORDER, f"stage {envelope.stage} cannot run yet", item)
    following = item.next_stage_to_run(envelope.stage)
    if following is None:
        return done_output(envelope)
    return _envelope_output(envelope.for_stage(following, item.audio_key_for(following)))


def branch_output(envelope: Envelope, run: StageRun) -> dict[str, Any]:
    """The output of a parallel branch's task (the Parallel state keeps its input envelope instead)."""
    return {
        "invocation_id": envelope.invocation_id,
        "correlation_id": envelope.correlation_id,
        "stage": envelope.stage,
        "outcome": run.outcome.value,
    }


def run_stage_task(envelope: Envelope, *, own_skip: bool = False, plan: bool = True) -> TaskOutcome:
    """Run `envelope.stage` through the shared runner; the next envelope (or the done object) as a dict.

    `own_skip` and `plan` as in `runner.run_stage`: a parallel branch's task decides its own skip and plans
    nothing (its output is `branch_output`); the task after a group decides its own skip and plans on.
    Raises TransientStageError (retried by the ASL), PermanentStageError (already recorded on the
    invocation), PoisonMessage/UnknownInvocation and StaleMessage (see the module docstring).
    """
    try:
        run = run_stage(envelope, own_skip=own_skip, plan=plan)
    except PoisonMessage:
        raise
    except Exception as error:
        detail = _short(f"{type(error).__name__}: {error}")
        raise TransientStageError(f"stage {envelope.stage} failed: {detail}") from error
    if run.outcome == StageOutcome.FAILED:
        error = run.error or {}
        raise PermanentStageError(error.get("message", "stage failed"), code=error.get("code", "stage_error"))
    if run.outcome == StageOutcome.SUCCEEDED:
        return TaskOutcome(done_output(envelope), run)
    if not plan:
        if run.outcome.dropped:
            _after_drop(envelope)  # raises for a FAILED invocation or an out-of-order delivery
        return TaskOutcome(branch_output(envelope, run), run)
    if run.outcome in (StageOutcome.COMPLETED, StageOutcome.SKIPPED):
        next_envelope = run.next_envelope
        output = _envelope_output(next_envelope) if next_envelope else done_output(envelope)
        return TaskOutcome(output, run)
    return TaskOutcome(_after_drop(envelope), run)


def _cause_message(cause: str) -> str:
    """The error message inside a Lambda error's Cause (a JSON object with errorMessage), else the cause."""
    try:
        parsed = json.loads(cause)
    except (TypeError, ValueError):
        return cause
    if isinstance(parsed, dict) and isinstance(parsed.get("errorMessage"), str):
        return parsed["errorMessage"]
    return cause


def failure_code(error_name: str) -> str:
    """The invocation error code for a Step Functions error name that ended a stage."""
    if error_name in RETRIED_ERRORS:
        return "retries_exhausted"
    return _FAILURE_CODES.get(error_name, "stage_failed")


def _recorded_error(invocation_id: str) -> dict[str, Any] | None:
    item = checkpoints.get(invocation_id)
    return item.error.model_dump() if item and item.error else None


def record_failure(invocation_id: str, stage: str, failure: dict[str, Any]) -> dict[str, Any]:
    """The failure path: record `{code, message, stage}` on the invocation unless it already ended.

    `failure` is what a Catch put in the state (`{"Error", "Cause"}`). Returns the invocation's error (the one
    just recorded, or the one recorded earlier by the stage itself) plus `recorded` (whether this call wrote
    it); the Fail state uses its `code` and `message` as the execution's error and cause.
    """
    error_name = str(failure.get("Error") or "States.Unknown")
    detail = _short(_cause_message(str(failure.get("Cause") or "")))
    if error_name == StaleMessage.__name__:
        # The invocation is FAILED already or another run owns it: leave it as it is.
        recorded = _recorded_error(invocation_id)
        fallback = {"code": "stale", "message": detail or "stale delivery", "stage": stage}
        return {**(recorded or fallback), "recorded": False}
    code = failure_code(error_name)
    if code == "retries_exhausted":
        message = f"{stage} failed on every attempt; last error: {error_name}: {detail}"
    else:
        message = f"{stage} failed: {error_name}: {detail}" if detail else f"{stage} failed: {error_name}"
    message = _short(message)
    try:
        changed = checkpoints.fail(invocation_id, stage=stage, code=code, message=message)
    except UnknownInvocation:
        return {"code": "unknown_invocation", "message": message, "stage": stage, "recorded": False}
    if not changed:
        recorded = _recorded_error(invocation_id)
        if recorded is not None:
            return {**recorded, "recorded": False}
    return {"code": code, "message": message, "stage": stage, "recorded": changed}
