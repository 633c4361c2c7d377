"""One delivery of a stage's SQS message, run and reported the same way by every queue-fed handler.

The pipeline handler (an envelope from the previous stage) and the events handler (an EventBridge event a
rule routed to the stage's queue) differ in what they parse and what they send after the stage; between
the two is this: the stage through the runner, its metrics and its log line. Poison messages and transient
errors are raised, so that the batch processor reports the record failed and SQS redelivers it (up to
maxReceiveCount, then the DLQ).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from harmonic_service import announce
from harmonic_service.config import current_stage, get_settings
from harmonic_service.dal import bus
from harmonic_service.errors import PoisonMessage
from harmonic_service.events import EventDetail, parse_event
from harmonic_service.models import Envelope, StageOutcome
from harmonic_service.runner import StageRun, run_stage
from harmonic_service.stages import get_stage

logger = Logger(service="harmonic")
tracer = Tracer(service="harmonic")
metrics = Metrics(namespace="Harmonic", service="harmonic")
# The keys a record handler adds to every log line while it handles one record.
RECORD_KEYS = ("invocation_id", "stage", "message_id", "receive_count")


@contextlib.contextmanager
def record_keys(record: SQSRecord, *extra_keys: str) -> Iterator[tuple[str, int]]:
    """(this function's stage, the record's receive count), with both and the message id on every log line
    while the record is handled; afterwards RECORD_KEYS, `extra_keys` and the correlation id are cleared."""
    stage = current_stage()
    receive_count = int(record.attributes.approximate_receive_count or 1)
    logger.append_keys(message_id=record.message_id, receive_count=receive_count, stage=stage)
    try:
        yield stage, receive_count
    finally:
        logger.remove_keys([*RECORD_KEYS, *extra_keys])
        logger.set_correlation_id(None)


def count(name: str) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)


def poison(message: str) -> PoisonMessage:
    """Count and log a poison message; the error to raise (it ends in the DLQ)."""
    count("PoisonMessages")
    logger.error(f"poison message: {message}; it will land in the DLQ")
    return PoisonMessage(message)


def event_of(record: SQSRecord) -> tuple[dict[str, Any], str, EventDetail]:
    """(the EventBridge event, its id, its detail) of a record an event rule sent; poison when the body is
    not one of Harmonic's events."""
    try:
        event = json.loads(record.body)
        event_id, detail = parse_event(event)
    except (PoisonMessage, ValueError) as error:
        raise poison(f"malformed event: {error}") from error
    return event, event_id or record.message_id, detail


def run_delivery(
    envelope: Envelope,
    receive_count: int,
    claim: str | None = None,
    *,
    own_skip: bool = False,
    plan: bool = True,
) -> StageRun:
    """Run the envelope's stage for this delivery (the `receive_count`-th) and report it; `claim`,
    `own_skip` and `plan` as in `runner.run_stage`."""
    try:
        run = run_stage(
            envelope,
            receive_count=receive_count,
            max_receive_count=get_stage(envelope.stage).max_receive_count,
            claim=claim,
            own_skip=own_skip,
            plan=plan,
        )
    except PoisonMessage as error:
        raise poison(str(error)) from error
    except Exception:
        count("StageFailures")
        logger.exception("stage failed (transient); SQS will redeliver the message")
        raise
    if run.outcome == StageOutcome.FAILED:
        count("StageFailures")
    elif run.outcome.dropped:
        count("MessagesDropped")
    if run.duration_ms is not None:
        metrics.add_metric(name="StageDuration", unit=MetricUnit.Milliseconds, value=run.duration_ms)
        logger.info(f"stage {run.outcome}", extra={"duration_ms": run.duration_ms, "attempts": run.attempts})
    if run.audio_seconds is not None:
        metrics.add_metric(name="AudioSeconds", unit=MetricUnit.Seconds, value=run.audio_seconds)
    return run


def announce_end(invocation_id: str) -> None:
    """Pipeline and state machine: publish the end of the invocation (``InvocationCompleted`` or
    ``InvocationFailed``) where the deployment has a bus, for its subscribers (completion notifications,
    the audit log). Best effort: the invocation has ended whatever happens here, so a refused publish is
    counted (``PublishFailures``) and logged, not retried."""
    if not get_settings().event_bus_name:
        return
    try:
        ended = announce.ended(invocation_id)
        if ended:
            bus.publish(*ended)
            logger.info(f"published {ended[0].detail_type}")
    except Exception:
        count("PublishFailures")
        logger.exception("the end of the invocation was not published: the bus's subscribers miss it")


def sqs_handler(
    record_handler: Callable[[SQSRecord], None], *, per_stage: bool = True
) -> Callable[[dict[str, Any], LambdaContext], dict[str, Any]]:
    """A Lambda handler for an SQS event source: Powertools' batch processor over `record_handler`, with
    partial batch responses (a record that raises is retried alone), the Lambda context in every log line,
    tracing and EMF metrics (dimension `stage` from STAGE_NAME when `per_stage`)."""
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

    @metrics.log_metrics(capture_cold_start_metric=True)
    @tracer.capture_lambda_handler(capture_response=False)
    @logger.inject_lambda_context(clear_state=True)
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        if per_stage:
            metrics.add_dimension(name="stage", value=current_stage() or "unknown")
        return process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )

    return handler
