"""One delivery of a stage's SQS message, run and reported the same way by every queue-fed handler.

The pipeline handler (an envelope from the previous stage) and the events handler (an EventBridge event a
rule routed to the stage's queue) differ in what they parse and what they send after the stage; between
the two is this: the stage through the runner, its metrics and its log line. Poison messages and transient
errors are raised, so that the batch processor reports the record failed and SQS redelivers it (up to
maxReceiveCount, then the DLQ).
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from harmonic_service.errors import PoisonMessage
from harmonic_service.models import Envelope, StageOutcome
from harmonic_service.runner import StageRun, run_stage
from harmonic_service.stages import get_stage

logger = Logger(service="harmonic", child=True)
metrics = Metrics(namespace="Harmonic", service="harmonic")
# The keys a record handler adds to every log line while it handles one record.
RECORD_KEYS = ("invocation_id", "stage", "message_id", "receive_count")


def count(name: str) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)


def poison(message: str) -> PoisonMessage:
    """Count and log a poison message; the error to raise (it ends in the DLQ)."""
    count("PoisonMessages")
    logger.error(f"poison message: {message}; it will land in the DLQ")
    return PoisonMessage(message)


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
