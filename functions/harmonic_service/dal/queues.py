"""The stage queues (pipeline mode): one SQS queue per stage, URLs from STAGE_QUEUE_URLS."""

from __future__ import annotations

from typing import Any

from harmonic_service.config import get_settings
from harmonic_service.dal import clients
from harmonic_service.models import Envelope


def queue_url(stage: str) -> str:
    urls = get_settings().stage_queue_urls
    try:
        return urls[stage]
    except KeyError:
        raise RuntimeError(f"STAGE_QUEUE_URLS has no queue for stage {stage!r}") from None


def send_envelope(envelope: Envelope) -> str:
    """Send `envelope` to its stage's queue; returns the SQS message id."""
    response = clients.sqs().send_message(QueueUrl=queue_url(envelope.stage), MessageBody=envelope.to_json())
    return response["MessageId"]


# The message attribute that counts how often a message was put back on its queue (requeue).
REQUEUES_ATTRIBUTE = "HarmonicRequeues"
_urls_by_arn: dict[str, str] = {}


def _url_of_arn(queue_arn: str) -> str:
    """The URL of the queue `queue_arn` (arn:aws:sqs:region:account:name), looked up once per process."""
    if queue_arn not in _urls_by_arn:
        parts = queue_arn.split(":")
        if len(parts) != 6 or parts[2] != "sqs":
            raise ValueError(f"not an SQS queue ARN: {queue_arn!r}")
        _urls_by_arn[queue_arn] = clients.sqs().get_queue_url(
            QueueName=parts[5], QueueOwnerAWSAccountId=parts[4]
        )["QueueUrl"]
    return _urls_by_arn[queue_arn]


def requeues_of(message_attributes: dict[str, Any]) -> int:
    """How often the message with these attributes (Lambda's SQS record shape) was put back already."""
    raw = (message_attributes.get(REQUEUES_ATTRIBUTE) or {}).get("stringValue", "0")
    try:
        return max(0, int(raw))
    except (TypeError, ValueError):
        return 0


def requeue(queue_arn: str, body: str, message_attributes: dict[str, Any], delay_s: int) -> int:
    """Put a copy of a message back on its queue, visible after `delay_s` (≤ 900), with its attributes and
    its requeue count one higher; returns that count. The caller then consumes the original: the copy
    starts with a receive count of 1, so waiting for a dependency never walks it into the DLQ."""
    count = requeues_of(message_attributes) + 1
    attributes = {
        name: {
            key: value
            for key, value in (
                ("DataType", attr.get("dataType")),
                ("StringValue", attr.get("stringValue")),
                ("BinaryValue", attr.get("binaryValue")),
            )
            if value is not None
        }
        for name, attr in message_attributes.items()
        if name != REQUEUES_ATTRIBUTE and attr.get("dataType")
    }
    attributes[REQUEUES_ATTRIBUTE] = {"DataType": "Number", "StringValue": str(count)}
    clients.sqs().send_message(
        QueueUrl=_url_of_arn(queue_arn),
        MessageBody=body,
        DelaySeconds=max(0, min(900, delay_s)),
        MessageAttributes=attributes,
    )
    return count
