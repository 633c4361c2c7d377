"""Completion notifications (harmonic_service.events.NOTIFY): a subscriber of the bus that POSTs the status
document of an ended invocation to the ``callback_url`` its request named.

Its rule hears ``InvocationCompleted`` and ``InvocationFailed`` with ``notify: true``, in every mode (the
pipeline and the state machine publish the end of an invocation too). For each record: read the invocation,
POST its status document (what ``GET /v1/invocations/{id}`` answers: ``api_models.status_document``), signed
with the deployment's HMAC secret (logic/callbacks.py). A receiver that does not answer 2xx in time fails
the record: SQS delivers it again after the queue's visibility timeout, and after
``NOTIFY.max_receive_count`` attempts the DLQ keeps it (its alarm fires). The invocation's own status never
depends on its notification.
"""

from __future__ import annotations

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from harmonic_service import service
from harmonic_service.api_models import status_document
from harmonic_service.dal import callbacks, checkpoints
from harmonic_service.handlers.delivery import count, event_of, logger, poison, sqs_handler

_ENDINGS = ("InvocationCompleted", "InvocationFailed")


def _record_handler(record: SQSRecord) -> None:
    _, _, detail = event_of(record)
    logger.set_correlation_id(detail.correlation_id)
    receive_count = record.attributes.approximate_receive_count
    logger.append_keys(invocation_id=detail.invocation_id, receive_count=receive_count)
    try:
        if detail.detail_type not in _ENDINGS:
            raise poison(f"{detail.detail_type} does not end an invocation; the notify rule misroutes it")
        item = checkpoints.get(detail.invocation_id)
        if item is None or not item.callback_url:
            count("MessagesDropped")
            logger.warning("no callback_url on this invocation (or no invocation): nothing to notify")
            return
        document = status_document(service.get_invocation(detail.invocation_id))
        try:
            status = callbacks.deliver(
                item.callback_url,
                document,
                event_type=detail.detail_type,
                delivery_id=f"{detail.invocation_id}:{document['status']}",
            )
        except callbacks.CallbackFailed as error:
            count("CallbackFailures")
            logger.warning(f"notification not delivered ({error}); SQS will retry it, then its DLQ keeps it")
            raise
        count("CallbacksDelivered")
        logger.info(f"notified the callback ({status}) of {document['status']}")
    finally:
        logger.remove_keys(["invocation_id", "receive_count"])
        logger.set_correlation_id(None)


handler = sqs_handler(_record_handler, per_stage=False)
