"""The stage queues (pipeline mode): one SQS queue per stage, URLs from STAGE_QUEUE_URLS."""

from __future__ import annotations

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
