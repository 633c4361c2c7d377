"""Audit subscriber (events mode): a consumer that no stage knows about, which is the point of the
architecture. One rule sends every Harmonic event on the bus to its queue; it keeps each one in the audit
table (dal/audit.py), where ``GET /v1/invocations/{id}/events`` finds an invocation's events.

A message that is not one of Harmonic's events is a poison message (its record fails until the queue's DLQ
takes it); a redelivered event is kept once.
"""

from __future__ import annotations

import json

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from harmonic_service.dal import audit
from harmonic_service.errors import PoisonMessage
from harmonic_service.events import parse_event
from harmonic_service.handlers.delivery import count, logger, poison, sqs_handler


def _record_handler(record: SQSRecord) -> None:
    try:
        event = json.loads(record.body)
        event_id, detail = parse_event(event)
    except (PoisonMessage, ValueError) as error:
        raise poison(f"malformed event: {error}") from error
    logger.set_correlation_id(detail.correlation_id)
    try:
        kept = audit.record(
            event_id or record.message_id,
            detail.detail_type,
            detail.published_at or str(event.get("time") or ""),
            event["detail"],
            event.get("replay-name"),
        )
        count("EventsAudited" if kept else "MessagesDropped")
    finally:
        logger.set_correlation_id(None)


handler = sqs_handler(_record_handler, per_stage=False)
