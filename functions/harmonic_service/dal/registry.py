"""The pattern registry (the store): metadata in the patterns table, serialized artifacts in S3.

Items: ``{pattern_id, name, kind, owner, created_at, artifact_key, duration_s, artifact_bytes, example_key,
example_content_type, text, rebuilt_at}``:

- ``text``: a keyword's spelling, when it was registered with one (a keyword registered by its spelling alone
  has no example);
- ``owner``: the caller that registered it (tenancy.py); an item from before owners were kept has none and
  belongs to the anonymous caller;
- ``rebuilt_at``: when its artifact was last computed again from its example (:func:`replace_artifact`);
  absent until then. The pattern cache re-reads an artifact whose ``rebuilt_at`` changed.

The artifact is ``patterns/<pattern_id>.bin``; the example it was computed from, as registered,
``patterns/<pattern_id>/example.<format>`` (items from before examples were kept have no ``example_key``).
One more item, ``pattern_id = "__index__"``, holds ``version``: a counter bumped by every registration and
deletion. A warm match function reads only that item per invocation and reloads its parsed patterns when the
number changed (``pattern_cache.current()``).
"""

from __future__ import annotations

from typing import Any

from harmonic_service import audio_formats, timestamps
from harmonic_service.config import get_settings
from harmonic_service.dal import clients, payloads
from harmonic_service.dal.attributes import from_item, to_item
from harmonic_service.tenancy import ANONYMOUS, Viewer

INDEX_ID = "__index__"


def artifact_key(pattern_id: str) -> str:
    return f"patterns/{pattern_id}.bin"


def example_key(pattern_id: str, audio_format: str) -> str:
    """Where the registered clip is kept: under the pattern's own prefix, named after its format."""
    return f"patterns/{pattern_id}/example.{audio_format}"


def _table() -> str:
    return get_settings().patterns_table


def _bump_version() -> int:
    response = clients.dynamodb().update_item(
        TableName=_table(),
        Key={"pattern_id": {"S": INDEX_ID}},
        UpdateExpression="ADD #version :one",
        ExpressionAttributeNames={"#version": "version"},
        ExpressionAttributeValues={":one": {"N": "1"}},
        ReturnValues="UPDATED_NEW",
    )
    return int(response["Attributes"]["version"]["N"])


def version() -> int:
    """The registry's version (0 before the first registration); one strongly consistent read."""
    response = clients.dynamodb().get_item(
        TableName=_table(), Key={"pattern_id": {"S": INDEX_ID}}, ConsistentRead=True
    )
    item = response.get("Item")
    return int(item["version"]["N"]) if item else 0


def put(
    pattern_id: str,
    name: str,
    kind: str,
    artifact: bytes,
    duration_s: float,
    owner: str = ANONYMOUS,
    *,
    example: bytes | None,
    example_format: str | None,
    text: str | None = None,
) -> dict[str, Any]:
    """Store a pattern of `owner` (artifact and example first, then metadata, then the version); the stored
    metadata. `example` is the registered clip, of `example_format` (audio_formats.sniff's name); a keyword
    registered by its spelling alone has none, and keeps its `text`."""
    key = artifact_key(pattern_id)
    payloads.put_bytes(key, artifact)
    item: dict[str, Any] = {
        "pattern_id": pattern_id,
        "name": name,
        "kind": kind,
        "owner": owner,
        "created_at": timestamps.now(),
        "artifact_key": key,
        "artifact_bytes": len(artifact),
        "duration_s": round(float(duration_s), 3),
    }
    if example is not None and example_format is not None:
        content_type = audio_formats.CONTENT_TYPES[example_format]
        example_at = example_key(pattern_id, example_format)
        payloads.put_bytes(example_at, example, content_type=content_type)
        item.update(example_key=example_at, example_content_type=content_type)
    if text is not None:
        item["text"] = text
    clients.dynamodb().put_item(TableName=_table(), Item=to_item(item))
    item["index_version"] = _bump_version()
    return item


def get(pattern_id: str) -> dict[str, Any] | None:
    if pattern_id == INDEX_ID:
        return None
    response = clients.dynamodb().get_item(
        TableName=_table(), Key={"pattern_id": {"S": pattern_id}}, ConsistentRead=True
    )
    return from_item(response["Item"]) if "Item" in response else None


def list_all(viewer: Viewer | None = None) -> list[dict[str, Any]]:
    """Every registered pattern's metadata that `viewer` sees (its own and the publishers'; None: all),
    oldest first."""
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": _table(), "ConsistentRead": True}
    while True:
        response = clients.dynamodb().scan(**kwargs)
        items.extend(
            from_item(raw) for raw in response.get("Items", []) if raw["pattern_id"]["S"] != INDEX_ID
        )
        if "LastEvaluatedKey" not in response:
            break
        kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
    if viewer is not None:
        items = [item for item in items if viewer.sees(item.get("owner"))]
    return sorted(items, key=lambda item: (item.get("created_at", ""), item["pattern_id"]))


def delete(pattern_id: str, owner: str) -> bool:
    """Remove a pattern of `owner` (one conditional delete), then its artifact and example; False when it does
    not exist or is another owner's."""
    if pattern_id == INDEX_ID:
        return False
    dynamodb = clients.dynamodb()
    try:
        deleted = dynamodb.delete_item(
            TableName=_table(),
            Key={"pattern_id": {"S": pattern_id}},
            ConditionExpression=_owned_by(owner),
            ExpressionAttributeNames={"#owner": "owner"},
            ExpressionAttributeValues={":owner": {"S": owner}},
            ReturnValues="ALL_OLD",
        )
    except dynamodb.exceptions.ConditionalCheckFailedException:
        return False
    example = from_item(deleted.get("Attributes", {})).get("example_key")
    payloads.delete(artifact_key(pattern_id), *([example] if example else []))
    _bump_version()
    return True


def _owned_by(owner: str) -> str:
    """The condition that an item exists and is `owner`'s (one from before owners were kept is the
    anonymous caller's)."""
    if owner == ANONYMOUS:
        return "attribute_exists(pattern_id) AND (#owner = :owner OR attribute_not_exists(#owner))"
    return "attribute_exists(pattern_id) AND #owner = :owner"


def replace_artifact(pattern_id: str, owner: str, artifact: bytes) -> dict[str, Any] | None:
    """Store a new artifact for `owner`'s pattern (computed again from its example): the object, then the
    item's ``artifact_bytes`` and ``rebuilt_at`` (one conditional update), then the version, so that every
    match function re-reads it. The updated metadata; None when the pattern does not exist (deleted
    meanwhile: the object just written is removed again) or is another owner's (nothing is written)."""
    if pattern_id == INDEX_ID or (current := get(pattern_id)) is None:
        return None
    if (current.get("owner") or ANONYMOUS) != owner:
        return None
    key = artifact_key(pattern_id)
    payloads.put_bytes(key, artifact)
    dynamodb = clients.dynamodb()
    try:
        response = dynamodb.update_item(
            TableName=_table(),
            Key={"pattern_id": {"S": pattern_id}},
            UpdateExpression="SET artifact_bytes = :bytes, rebuilt_at = :at",
            ConditionExpression=_owned_by(owner),
            ExpressionAttributeNames={"#owner": "owner"},
            ExpressionAttributeValues={
                ":bytes": {"N": str(len(artifact))},
                ":at": {"S": timestamps.now()},
                ":owner": {"S": owner},
            },
            ReturnValues="ALL_NEW",
        )
    except dynamodb.exceptions.ConditionalCheckFailedException:
        payloads.delete(key)  # deleted between the read and the update (the owner never changes)
        return None
    item = from_item(response["Attributes"])
    item["index_version"] = _bump_version()
    return item


def artifact(pattern_id: str) -> bytes:
    return payloads.get_bytes(artifact_key(pattern_id))


def example(item: dict[str, Any]) -> bytes | None:
    """The clip a pattern was registered from (None for one without: a keyword registered by its spelling,
    or a pattern from before examples were kept). KeyError when its object is gone."""
    key = item.get("example_key")
    return payloads.get_bytes(key) if key else None
