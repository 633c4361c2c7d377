"""Events stage handler (events mode): one function per stage (STAGE_NAME), fed by its own SQS queue, which
EventBridge rules fill with the events the stage subscribes to (harmonic_service.events.subscriptions).

For each record: parse the EventBridge event (a tolerant reader: unknown fields are ignored, older schema
versions accepted), run the stage with the event's id as its claim (so a fan-in stage runs once however
many of its inputs' events arrive), then publish what happened: `StageCompleted`, `StageSkipped` or
`StageFailed`, and after the last stage `InvocationCompleted` (or `InvocationFailed`). The stage never knows
its successors: whoever subscribes to its events runs next. A malformed event is a poison message (its
record fails until the queue's DLQ takes it); events for stages that cannot run yet (a fan-in still
waiting), duplicates and stale events are consumed without work. A replayed event (``replay-name``, from
an archive replay) first resumes its invocation if it FAILED: replaying a window completes what failed.
"""

from __future__ import annotations

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

# The stage runner and its DSP (numpy, SciPy) load during the function's init, which Lambda runs at full
# CPU, rather than in its first invocation (delivery.py imports the runner lazily, for the light functions).
from harmonic_service import (
    announce,
    faults,
    runner,  # noqa: F401
)
from harmonic_service.dal import bus, checkpoints
from harmonic_service.errors import UnknownInvocation
from harmonic_service.events import TRIGGERS, InvocationSubmitted
from harmonic_service.handlers.delivery import (
    event_of,
    logger,
    poison,
    record_keys,
    run_delivery,
    sqs_handler,
)
from harmonic_service.models import Envelope


def _record_handler(record: SQSRecord) -> None:
    with record_keys(record, "trigger") as (stage, receive_count):
        event, event_id, detail = event_of(record)
        logger.set_correlation_id(detail.correlation_id)
        logger.append_keys(invocation_id=detail.invocation_id, trigger=detail.detail_type)
        if detail.detail_type not in TRIGGERS:
            raise poison(f"{detail.detail_type} does not start a stage; the {stage} rule should not route it")
        envelope = Envelope(
            invocation_id=detail.invocation_id,
            correlation_id=detail.correlation_id,
            stage=stage,
            mode="events",
            input_key=detail.input_key if isinstance(detail, InvocationSubmitted) else None,
            attempt=receive_count,
        )
        if event.get("replay-name"):
            _resume_for_replay(detail.invocation_id, str(event["replay-name"]))
        run = run_delivery(envelope, receive_count, claim=event_id, own_skip=True, plan=False)
        faults.maybe_kill(stage, "after its checkpoint, before its acknowledgement", detail.invocation_id)
        published = announce.after(envelope, run)
        if published:
            bus.publish(*published)
            logger.info(f"published {', '.join(d.detail_type for d in published)}")
            if faults.duplicate_delivery(stage):
                bus.publish(*published)  # the same facts as new events: subscribers must not run twice
                logger.info("published them again (injected duplicate)")


def _resume_for_replay(invocation_id: str, replay_name: str) -> None:
    """A replayed event (an archive replay) resumes its invocation if it FAILED, so that a replay of a
    window completes what failed in it; a finished or running invocation is left as it is (the checkpoints
    drop the replayed events as duplicates)."""
    try:
        stage, _ = checkpoints.prepare_resume(invocation_id)
    except (checkpoints.InvalidStateError, UnknownInvocation):
        return
    logger.info(f"resumed by replay {replay_name}", extra={"resumed_from": stage})


handler = sqs_handler(_record_handler)
