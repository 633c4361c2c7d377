"""Each stage's circuit breaker (harmonic_service.breaker), one item in the invocations table.

Item: ``invocation_id = "breaker#<stage>"`` (no invocation has that id: theirs are UUIDs), ``kind =
"breaker"``, ``state``, ``failures`` (dependency failures in the current window), ``window_started_at``,
``opened_at``, ``dependency`` and ``error`` (the last failure's), ``updated_at``, ``schema_version``. It
has no ``sweep`` attribute, so the sweeper's deadline index never lists it.

Every transition is one conditional UpdateItem, so concurrent functions of a stage agree on one state: of
two that see the threshold, one opens the breaker; of two probes that succeed, one closes it. Reads are
cached for a few seconds per process (:func:`state`): a stage reads it once per batch, not per message.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any

from pydantic import BaseModel, ConfigDict

from harmonic_service import config
from harmonic_service.breaker import BreakerSettings, BreakerState, trips
from harmonic_service.config import get_settings
from harmonic_service.dal import clients
from harmonic_service.dal.attributes import from_item, to_av

KEY_PREFIX = "breaker#"
BREAKER_VERSION = 1
STATE_CACHE_S = 2.0  # how long a process trusts the breaker state it read


class Breaker(BaseModel):
    """A stage's breaker as stored; a stage without an item is CLOSED."""

    model_config = ConfigDict(extra="ignore")

    stage: str
    state: BreakerState = BreakerState.CLOSED
    failures: int = 0
    window_started_at: float = 0.0
    opened_at: float = 0.0
    dependency: str = ""
    error: str = ""
    updated_at: float = 0.0
    schema_version: int = BREAKER_VERSION


def breaker_settings() -> BreakerSettings:
    settings = get_settings()
    return BreakerSettings(
        threshold=settings.breaker_threshold,
        window_s=settings.breaker_window_s,
        cooldown_s=settings.breaker_cooldown_s,
    )


def _key(stage: str) -> dict[str, Any]:
    return {"invocation_id": {"S": f"{KEY_PREFIX}{stage}"}}


def _decode(stage: str, raw: dict[str, Any] | None) -> Breaker:
    if not raw:
        return Breaker(stage=stage)
    item = from_item(raw)
    item["stage"] = stage
    return Breaker.model_validate(item)


def get(stage: str) -> Breaker:
    """The stage's breaker, read now (strongly consistent)."""
    response = clients.dynamodb().get_item(
        TableName=get_settings().invocations_table, Key=_key(stage), ConsistentRead=True
    )
    return _decode(stage, response.get("Item"))


_cache: dict[str, tuple[float, Breaker]] = {}
_cache_lock = threading.Lock()


def state(stage: str, *, max_age_s: float = STATE_CACHE_S) -> Breaker:
    """The stage's breaker as this process last read it, read again when older than `max_age_s`."""
    now = time.monotonic()
    with _cache_lock:
        cached = _cache.get(stage)
    if cached is not None and now - cached[0] < max_age_s:
        return cached[1]
    breaker = get(stage)
    _remember(breaker)
    return breaker


def _remember(breaker: Breaker) -> None:
    with _cache_lock:
        _cache[breaker.stage] = (time.monotonic(), breaker)


def forget() -> None:
    """Drop the cached states (tests; a new mock)."""
    with _cache_lock:
        _cache.clear()


# Placeholder → attribute name, for every attribute an update or condition below uses.
_NAMES = {
    "#state": "state",
    "#failures": "failures",
    "#window": "window_started_at",
    "#opened": "opened_at",
    "#dependency": "dependency",
    "#error": "error",
    "#updated": "updated_at",
    "#kind": "kind",
    "#version": "schema_version",
}


def _update(stage: str, update: str, condition: str, values: dict[str, Any]) -> Breaker | None:
    """One conditional update; the breaker after it, or None when the condition refused it. The attribute
    names are those of :data:`_NAMES` that the two expressions use (DynamoDB refuses unused ones)."""
    used = set(re.findall(r"#\w+", f"{update} {condition}"))
    names = {placeholder: _NAMES[placeholder] for placeholder in sorted(used)}
    dynamodb = clients.dynamodb()
    try:
        response = dynamodb.update_item(
            TableName=get_settings().invocations_table,
            Key=_key(stage),
            UpdateExpression=update,
            ConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={name: to_av(value) for name, value in values.items()},
            ReturnValues="ALL_NEW",
        )
    except dynamodb.exceptions.ConditionalCheckFailedException:
        return None
    breaker = _decode(stage, response.get("Attributes"))
    _remember(breaker)
    return breaker


def record_failure(stage: str, dependency: str, error: str, now: float | None = None) -> tuple[Breaker, bool]:
    """Count one dependency failure of `stage` in the current window (a window older than the settings'
    ``window_s`` starts over) and open the breaker when it trips (breaker.trips). Returns the
    breaker and whether this call opened it."""
    settings = breaker_settings()
    now = time.time() if now is None else now
    common = {":now": now, ":dependency": dependency, ":error": error[:500], ":one": 1}
    counted = _update(
        stage,
        "ADD #failures :one SET #dependency = :dependency, #error = :error, #updated = :now",
        "#window > :floor",
        {**common, ":floor": now - settings.window_s},
    )
    if counted is None:  # no item yet, or its window is over: this failure starts a new one
        counted = _update(
            stage,
            "SET #failures = :one, #window = :now, #dependency = :dependency, #error = :error, "
            "#updated = :now, #kind = :kind, #version = :version, #state = if_not_exists(#state, :closed)",
            "attribute_not_exists(#window) OR #window <= :floor",
            {
                **common,
                ":floor": now - settings.window_s,
                ":kind": "breaker",
                ":version": BREAKER_VERSION,
                ":closed": BreakerState.CLOSED.value,
            },
        )
        if counted is None:  # another function started the window meanwhile: count in it
            return record_failure(stage, dependency, error, now)
    if not trips(counted.state, counted.failures, settings):
        return counted, False
    opened = _update(
        stage,
        "SET #state = :open, #opened = :now, #updated = :now",
        "#state = :seen",
        {":open": BreakerState.OPEN.value, ":now": now, ":seen": counted.state.value},
    )
    return (opened, True) if opened is not None else (get(stage), False)


def half_open(stage: str, opened_at: float, now: float | None = None) -> bool:
    """OPEN → HALF_OPEN (the sweeper, after the cool-down); False if it moved meanwhile."""
    now = time.time() if now is None else now
    return (
        _update(
            stage,
            "SET #state = :half, #updated = :now",
            "#state = :open AND #opened = :opened",
            {
                ":half": BreakerState.HALF_OPEN.value,
                ":open": BreakerState.OPEN.value,
                ":opened": opened_at,
                ":now": now,
            },
        )
        is not None
    )


def close(stage: str, now: float | None = None) -> bool:
    """HALF_OPEN → CLOSED with a fresh window (a probe succeeded); False if it was not HALF_OPEN."""
    now = time.time() if now is None else now
    return (
        _update(
            stage,
            "SET #state = :closed, #failures = :zero, #window = :now, #updated = :now",
            "#state = :half",
            {
                ":closed": BreakerState.CLOSED.value,
                ":half": BreakerState.HALF_OPEN.value,
                ":zero": 0,
                ":now": now,
            },
        )
        is not None
    )


def all_breakers(stages: tuple[str, ...]) -> list[Breaker]:
    """The breakers of `stages` (one BatchGetItem; a stage without an item is CLOSED)."""
    table = get_settings().invocations_table
    response = clients.dynamodb().batch_get_item(
        RequestItems={table: {"Keys": [_key(stage) for stage in stages], "ConsistentRead": True}}
    )
    found = {
        str(from_item(raw)["invocation_id"]).removeprefix(KEY_PREFIX): raw
        for raw in response.get("Responses", {}).get(table, [])
    }
    return [_decode(stage, found.get(stage)) for stage in stages]


config.on_clear(forget)
