"""The audit log (events mode): every event on the bus, kept per invocation in the audit table.

Items: ``invocation_id`` (partition key), ``event_key`` (sort key: the event's time then its id, so a query
returns an invocation's events in time order), ``event_id``, ``detail_type``, ``time``, ``detail`` (JSON
text), ``replay_name`` (for a replayed event) and ``expires_at`` (TTL, the retention of invocations). Written
by the audit subscriber (handlers/audit.py), a consumer no stage knows about; read by
``GET /v1/invocations/{id}/events``.
"""

from __future__ import annotations

import json
import time
from typing import Any

from harmonic_service.config import get_settings
from harmonic_service.dal import clients
from harmonic_service.dal.attributes import from_item, to_item


def _table() -> str:
    table = get_settings().audit_table
    if not table:
        raise RuntimeError("AUDIT_TABLE is not set: the events mode's audit log is not deployed here")
    return table


def record(
    event_id: str, detail_type: str, event_time: str, detail: dict[str, Any], replay: str | None
) -> bool:
    """Keep one event; False when it was kept already (an at-least-once redelivery writes nothing)."""
    item = {
        "invocation_id": str(detail["invocation_id"]),
        "event_key": f"{event_time}#{event_id}",
        "event_id": event_id,
        "detail_type": detail_type,
        "time": event_time,
        "detail": json.dumps(detail, separators=(",", ":")),
        "expires_at": int(time.time()) + get_settings().retention_s,
    }
    if replay:
        item["replay_name"] = replay
    client = clients.dynamodb()
    try:
        client.put_item(
            TableName=_table(), Item=to_item(item), ConditionExpression="attribute_not_exists(event_key)"
        )
    except client.exceptions.ConditionalCheckFailedException:
        return False
    return True


def events_of(invocation_id: str) -> list[dict[str, Any]]:
    """An invocation's events, oldest first: `{"id", "detail_type", "time", "detail", "replay_name"?}`."""
    found: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {
        "TableName": _table(),
        "KeyConditionExpression": "invocation_id = :id",
        "ExpressionAttributeValues": {":id": {"S": invocation_id}},
        "ConsistentRead": True,
    }
    while True:
        response = clients.dynamodb().query(**kwargs)
        for raw in response.get("Items", []):
            item = from_item(raw)
            entry = {
                "id": item["event_id"],
                "detail_type": item["detail_type"],
                "time": item["time"],
                "detail": json.loads(item["detail"]),
            }
            if item.get("replay_name"):
                entry["replay_name"] = item["replay_name"]
            found.append(entry)
        if "LastEvaluatedKey" not in response:
            return found
        kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
