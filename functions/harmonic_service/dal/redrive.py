"""Dead-letter redrive: move a stage's DLQ messages back to the stage queue.

Deployed, this is SQS's own ``StartMessageMoveTask`` (the console's "Start DLQ redrive"): messages go back
to the queue they came from, in order of arrival, at a bounded rate. Where that API is missing (moto, the
local stack) the same semantics are applied by hand: receive from the DLQ, send the body and message
attributes to the source queue, delete from the DLQ only after the send succeeded — a crash in between
duplicates a message (harmless: stages are idempotent) but never loses one.
"""

from __future__ import annotations

from typing import Any

from harmonic_service.dal import clients


def _arn(url: str) -> str:
    return clients.sqs().get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]


def _move_by_hand(dlq_url: str, source_url: str) -> int:
    sqs = clients.sqs()
    moved = 0
    while True:
        received = sqs.receive_message(
            QueueUrl=dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=0, MessageAttributeNames=["All"]
        )
        messages = received.get("Messages", [])
        if not messages:
            return moved
        entries: list[dict[str, Any]] = []
        for index, message in enumerate(messages):
            entry: dict[str, Any] = {"Id": str(index), "MessageBody": message["Body"]}
            if message.get("MessageAttributes"):
                entry["MessageAttributes"] = message["MessageAttributes"]
            entries.append(entry)
        sent = sqs.send_message_batch(QueueUrl=source_url, Entries=entries)
        ok = {item["Id"] for item in sent.get("Successful", [])}
        done = [
            {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
            for index, message in enumerate(messages)
            if str(index) in ok
        ]
        if done:
            sqs.delete_message_batch(QueueUrl=dlq_url, Entries=done)
        moved += len(done)
        if len(done) < len(messages):
            raise RuntimeError(
                f"could not send {len(messages) - len(done)} message(s) back; they stay in the DLQ"
            )


def redrive(dlq_url: str, source_url: str, max_per_second: int = 50) -> dict[str, Any]:
    """Start moving every message of `dlq_url` back to `source_url`.

    → ``{"method": "StartMessageMoveTask", "task_handle"}`` when SQS does it, else
    ``{"method": "by_hand", "moved": n}``.
    """
    sqs = clients.sqs()
    try:
        response = sqs.start_message_move_task(
            SourceArn=_arn(dlq_url),
            DestinationArn=_arn(source_url),
            MaxNumberOfMessagesPerSecond=max_per_second,
        )
        return {"method": "StartMessageMoveTask", "task_handle": response["TaskHandle"]}
    except Exception as error:  # not implemented by this endpoint (moto): the same moves, by hand
        code = getattr(error, "response", {}).get("Error", {}).get("Code", "")
        if code not in (
            "InvalidAction",
            "NotImplemented",
            "UnsupportedOperation",
            "InvalidParameterValue",
            "501",
            "",
        ):
            raise
    return {"method": "by_hand", "moved": _move_by_hand(dlq_url, source_url)}
