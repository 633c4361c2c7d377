"""Step Functions task handler (statemachine mode): a function per stage (STAGE_NAME) and the failure path.

Two kinds of events, both small JSON (ids and keys, never audio):

- an envelope (`Payload.$: "$"` of a stage's Task state): run the stage with the shared runner
  (harmonic_service.tasks.run_stage_task) and return the next envelope, or the done object after respond.
  Nothing is sent to SQS: Step Functions carries the envelope to the next state.
- `{"invocation_id", "correlation_id", "stage", "failure": {"Error", "Cause"}}` (the RecordFailure state):
  record the failure on the invocation (harmonic_service.tasks.record_failure) and return its error.

Retryable failures raise TransientStageError, permanent ones PermanentStageError (already recorded), poison
envelopes PoisonMessage and stale deliveries StaleMessage; the ASL's Retry/Catch match those class names.
Logs carry `correlation_id`, `invocation_id` and `stage` on every line; metrics as in handlers/pipeline.py.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from harmonic_service import faults, tasks
from harmonic_service.config import current_stage
from harmonic_service.errors import PermanentStageError, PoisonMessage, StaleMessage, TransientStageError
from harmonic_service.handlers.delivery import announce_end
from harmonic_service.models import Envelope, StageOutcome

logger = Logger(service="harmonic")
tracer = Tracer(service="harmonic", auto_patch=False)  # botocore: dal.clients, on first use
metrics = Metrics(namespace="Harmonic", service="harmonic")

_EVENT_KEYS = ("invocation_id", "stage", "orchestration")


def _count(name: str) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)


def _run_stage(event: dict[str, Any], stage: str) -> dict[str, Any]:
    # A parallel branch's task (and the one after a group) passes {"envelope", "stage", "own_skip", "plan"}.
    wrapped = "envelope" in event
    try:
        if wrapped:
            if not isinstance(event.get("stage"), str) or not isinstance(event["envelope"], dict):
                raise PoisonMessage("malformed envelope: a wrapped task input needs envelope and stage")
            inner = Envelope.from_dict(event["envelope"])
            envelope = Envelope.from_dict({**inner.model_dump(), "stage": event["stage"], "attempt": 1})
        else:
            envelope = Envelope.from_dict(event)
    except PoisonMessage:
        _count("PoisonMessages")
        logger.error("poison task input: malformed envelope")
        raise
    logger.set_correlation_id(envelope.correlation_id)
    logger.append_keys(invocation_id=envelope.invocation_id, stage=envelope.stage)
    if stage and envelope.stage != stage:
        _count("PoisonMessages")
        logger.error(f"poison task input: envelope for stage {envelope.stage} given to the {stage} task")
        raise PoisonMessage(f"envelope for stage {envelope.stage} given to the {stage} task")
    try:
        outcome = tasks.run_stage_task(
            envelope,
            own_skip=wrapped and bool(event.get("own_skip")),
            plan=not wrapped or bool(event.get("plan", True)),
        )
    except TransientStageError:
        _count("StageFailures")
        logger.exception("stage failed (transient); Step Functions will retry it")
        raise
    except PermanentStageError as error:
        _count("StageFailures")
        logger.warning(f"stage failed permanently: {error.code}", extra={"error_code": error.code})
        raise
    except StaleMessage as stale:
        _count("MessagesDropped")
        logger.warning(f"stale task input ({stale.reason}): {stale}")
        raise
    except PoisonMessage as error:
        _count("PoisonMessages")
        logger.error(f"poison task input: {error}")
        raise
    faults.maybe_kill(
        envelope.stage, "after its checkpoint, before its answer to Step Functions", envelope.invocation_id
    )
    run = outcome.run
    if run.outcome == StageOutcome.SUCCEEDED:
        announce_end(envelope.invocation_id)
    if run.outcome.dropped:
        _count("MessagesDropped")
        logger.info(f"duplicate task input: no work redone; next is {outcome.output.get('stage')}")
    if run.duration_ms is not None:
        metrics.add_metric(name="StageDuration", unit=MetricUnit.Milliseconds, value=run.duration_ms)
        logger.info(f"stage {run.outcome}", extra={"duration_ms": run.duration_ms, "attempts": run.attempts})
    if run.audio_seconds is not None:
        metrics.add_metric(name="AudioSeconds", unit=MetricUnit.Seconds, value=run.audio_seconds)
    return outcome.output


def _record_failure(event: dict[str, Any]) -> dict[str, Any]:
    invocation_id = str(event.get("invocation_id") or "")
    stage = str(event.get("stage") or "")
    logger.set_correlation_id(event.get("correlation_id"))
    logger.append_keys(invocation_id=invocation_id, stage=stage)
    failure = event.get("failure") if isinstance(event.get("failure"), dict) else {}
    error = tasks.record_failure(invocation_id, stage, failure)
    if failure.get("Error") != StaleMessage.__name__ and error["code"] != "unknown_invocation":
        announce_end(invocation_id)  # not for a stale run: the invocation's end is another run's to tell
    metrics.add_metric(name="FailuresRecorded", unit=MetricUnit.Count, value=1 if error["recorded"] else 0)
    logger.warning(
        f"invocation failed at {stage}: {error['code']}",
        extra={"error_code": error["code"], "recorded": error["recorded"], "sfn_error": failure.get("Error")},
    )
    return error


@metrics.log_metrics(capture_cold_start_metric=True)
@tracer.capture_lambda_handler(capture_response=False)
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point of the state machine's tasks (see the module docstring)."""
    stage = current_stage()
    metrics.add_dimension(name="stage", value=stage or "record_failure")
    logger.append_keys(orchestration="statemachine")
    try:
        if isinstance(event, dict) and "failure" in event:
            return _record_failure(event)
        if not isinstance(event, dict):
            _count("PoisonMessages")
            raise PoisonMessage("the task input is not a JSON object")
        return _run_stage(event, stage)
    finally:
        logger.remove_keys(list(_EVENT_KEYS))
        logger.set_correlation_id(None)
