"""SQS stage handler (pipeline mode): one function per stage, which one from STAGE_NAME.

For each record: parse the envelope, run the stage (harmonic_service.runner), send the next envelope to the
next stage's queue. A record that raises is reported as a batch item failure and redelivered by SQS (up to
maxReceiveCount, then the DLQ): transient errors and poison messages (a malformed envelope, an unknown
invocation). Permanent errors, duplicates and stale messages return normally and are consumed.
Never logs audio or presigned URLs: envelopes carry ids and keys only.
"""

from __future__ import annotations

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

# The stage runner and its DSP (numpy, SciPy) load during the function's init, which Lambda runs at full
# CPU, rather than in its first invocation (delivery.py imports the runner lazily, for the light functions).
from harmonic_service import (
    faults,
    runner,  # noqa: F401
)
from harmonic_service.dal import queues
from harmonic_service.errors import PoisonMessage
from harmonic_service.handlers.delivery import (
    announce_end,
    logger,
    poison,
    record_keys,
    run_delivery,
    sqs_handler,
)
from harmonic_service.models import Envelope, StageOutcome


def _record_handler(record: SQSRecord) -> None:
    with record_keys(record) as (stage, receive_count):
        try:
            envelope = Envelope.from_json(record.body)
        except PoisonMessage as error:
            raise poison(str(error)) from error
        logger.set_correlation_id(envelope.correlation_id)
        logger.append_keys(invocation_id=envelope.invocation_id)
        if envelope.stage != stage:
            raise poison(f"envelope for stage {envelope.stage} delivered to stage {stage}")
        run = run_delivery(envelope.model_copy(update={"attempt": receive_count}), receive_count)
        faults.maybe_kill(stage, "after its checkpoint, before its acknowledgement", envelope.invocation_id)
        if run.outcome in (StageOutcome.SUCCEEDED, StageOutcome.FAILED):
            announce_end(envelope.invocation_id)
        if run.next_envelope is not None:
            queues.send_envelope(run.next_envelope)
            logger.info(f"sent to {run.next_envelope.stage}")
            if faults.duplicate_delivery(run.next_envelope.stage):
                queues.send_envelope(run.next_envelope)
                logger.info(f"sent to {run.next_envelope.stage} again (injected duplicate)")


handler = sqs_handler(_record_handler)
