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
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from harmonic_service import announce
from harmonic_service.breaker import BreakerState, dependency_of, requeue_delay_s
from harmonic_service.config import current_stage, get_settings
from harmonic_service.dal import breakers, bus, queues
from harmonic_service.errors import PoisonMessage
from harmonic_service.events import EventDetail, parse_event
from harmonic_service.models import Envelope, StageOutcome
from harmonic_service.stages import get_stage

if TYPE_CHECKING:
    from harmonic_service.runner import StageRun

logger = Logger(service="harmonic")
tracer = Tracer(service="harmonic", auto_patch=False)  # botocore: dal.clients, on first use
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
    from harmonic_service.runner import run_stage  # the DSP: only the stage functions import it

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


def _breaker_of(stage: str) -> breakers.Breaker:
    """The stage's breaker as this process knows it; CLOSED when it cannot be read (DynamoDB itself may
    be the dependency that is down: then the stage tries, and its failures requeue its messages)."""
    try:
        return breakers.state(stage)
    except Exception as error:
        logger.warning(f"could not read the {stage} breaker ({type(error).__name__}); running as CLOSED")
        return breakers.Breaker(stage=stage)


def _hold(record: SQSRecord, breaker: breakers.Breaker, why: str) -> bool:
    """Put the record back on its queue for later (a fresh copy; the original is then consumed); False
    when it may not (requeued BREAKER_MAX_REQUEUES times already) or the send failed."""
    attributes = record.raw_event.get("messageAttributes") or {}
    if queues.requeues_of(attributes) >= get_settings().breaker_max_requeues:
        logger.error(f"{why}; requeued too often already, so it takes its normal retries (and maybe the DLQ)")
        return False
    delay = requeue_delay_s(breaker.state, breaker.opened_at, time.time(), breakers.breaker_settings())
    try:
        count_so_far = queues.requeue(record.event_source_arn, record.body, attributes, delay)
    except Exception:
        logger.exception(f"{why}; putting it back on its queue failed, so SQS redelivers it")
        return False
    count("MessagesRequeued")
    logger.info(f"{why}; put back on its queue for {delay} s (requeue {count_so_far})")
    return True


def with_breaker(record_handler: Callable[[SQSRecord], None]) -> Callable[[SQSRecord], None]:
    """`record_handler` behind the stage's circuit breaker (breaker.py):

    - OPEN: the record is put back on its queue untouched (fail fast: no dependency is called);
    - a dependency failure is counted and may open the breaker; the record is put back on its queue when
      the breaker is now OPEN or this was its last allowed receive, so it waits instead of reaching the
      DLQ; otherwise it is raised, and SQS redelivers it after the visibility timeout as usual;
    - a success while HALF_OPEN (the probe) closes the breaker.
    """

    def guarded(record: SQSRecord) -> None:
        stage = current_stage()
        breaker = _breaker_of(stage)
        if breaker.state == BreakerState.OPEN and _hold(record, breaker, f"{stage} breaker open"):
            return
        try:
            record_handler(record)
        except Exception as error:
            dependency = dependency_of(error)
            if dependency is None:
                raise
            count("DependencyFailures")
            try:
                breaker, opened = breakers.record_failure(
                    stage, dependency, f"{type(error).__name__}: {error}"
                )
            except Exception:
                logger.exception("could not count the dependency failure on the breaker")
                opened = False
            if opened:
                count("BreakersOpened")
                logger.error(
                    f"breaker of {stage} opened: {breaker.failures} failures of {dependency}",
                    extra={"dependency": dependency},
                )
            receive_count = int(record.attributes.approximate_receive_count or 1)
            last = receive_count >= get_stage(stage).max_receive_count
            if (breaker.state == BreakerState.OPEN or last) and _hold(
                record, breaker, f"{dependency} unavailable"
            ):
                return
            raise
        if breaker.state == BreakerState.HALF_OPEN and breakers.close(stage):
            count("BreakersClosed")
            logger.info(f"breaker of {stage} closed: the probe succeeded")

    return guarded


def sqs_handler(
    record_handler: Callable[[SQSRecord], None], *, per_stage: bool = True
) -> Callable[[dict[str, Any], LambdaContext], dict[str, Any]]:
    """A Lambda handler for an SQS event source: Powertools' batch processor over `record_handler`, with
    partial batch responses (a record that raises is retried alone), the Lambda context in every log line,
    tracing and EMF metrics. `per_stage` (a stage's function): dimension `stage` from STAGE_NAME, and the
    stage's circuit breaker around each record (:func:`with_breaker`)."""
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    if per_stage:
        record_handler = with_breaker(record_handler)

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
