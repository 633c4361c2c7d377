"""Audit subscriber (events mode): a consumer that no stage knows about, which is the point of the
architecture. One rule sends every Harmonic event on the bus to its queue; it keeps each one in the audit
table (dal/audit.py), where ``GET /v1/invocations/{id}/events`` finds an invocation's events.

A message that is not one of Harmonic's events is a poison message (its record fails until the queue's DLQ
takes it); a redelivered event is kept once.
"""

from __future__ import annotations

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from harmonic_service.dal import audit
from harmonic_service.handlers.delivery import count, event_of, logger, sqs_handler


def _record_handler(record: SQSRecord) -> None:
    event, event_id, detail = event_of(record)
    logger.set_correlation_id(detail.correlation_id)
    try:
        kept = audit.record(
            event_id,
            detail.detail_type,
            detail.published_at or str(event.get("time") or ""),
            event["detail"],
            event.get("replay-name"),
        )
        count("EventsAudited" if kept else "MessagesDropped")
    finally:
        logger.set_correlation_id(None)


handler = sqs_handler(_record_handler, per_stage=False)
