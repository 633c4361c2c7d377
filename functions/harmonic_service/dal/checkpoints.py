"""The invocations table: one item per invocation, with a checkpoint per stage.

Item (docs/design.md "Invocation item"): `invocation_id`, `status`, `mode`, `created_at`, `updated_at`,
`correlation_id`, `input_key`, `steps`, `options`, `stages` (map name → `{status, attempts, started_at,
duration_ms, output_key, summary}`), `error` (`{code, message, stage}`), `result` or `result_key`,
`finished_at` (when it SUCCEEDED or FAILED; removed by a resume), `expires_at` (TTL, epoch seconds).

The table's global secondary indexes are declared here (`INDEXES`) and created from this declaration by the
infra (infra/storage.py), the local stack and the tests (local/harness.py): the sweeper's `by-deadline` and
the history's `by-owner`.

Every transition is one conditional UpdateItem, so duplicate and stale messages cannot redo work or move an
invocation backwards. When a condition fails, the item as it was (ReturnValuesOnConditionCheckFailure=ALL_OLD)
tells a duplicate (the stage is already done) from a stale message (the invocation FAILED) or an unknown
invocation (no item at all). `options`, `summary` and `result` are stored as JSON strings: DynamoDB numbers
cannot hold NaN and boto3 would hand floats back as Decimal.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harmonic_service import timestamps
from harmonic_service.config import get_settings
from harmonic_service.dal import clients
from harmonic_service.dal.attributes import from_item, to_item
from harmonic_service.deadlines import deadline_s
from harmonic_service.errors import StaleMessage, UnknownInvocation
from harmonic_service.models import (
    ITEM_VERSION,
    HistoryEntry,
    Invocation,
    InvocationStatus,
    StageOutcome,
    StageStatus,
)
from harmonic_service.stages import STAGE_NAMES, dependencies
from harmonic_service.tenancy import ANONYMOUS

_JSON_FIELDS = ("options", "result")
_STAGE_JSON_FIELDS = ("summary",)


class InvalidStateError(Exception):
    """The invocation's state forbids the requested transition (e.g. resume when not FAILED)."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status


def _decode_item(raw: Mapping[str, Any]) -> Invocation:
    item = from_item(raw)
    for name in _JSON_FIELDS:
        if isinstance(item.get(name), str):
            item[name] = json.loads(item[name])
    for stage in item.get("stages", {}).values():
        for name in _STAGE_JSON_FIELDS:
            if isinstance(stage.get(name), str):
                stage[name] = json.loads(stage[name])
    return Invocation.model_validate(item)


def _json(value: Any) -> str:
    return json.dumps(value, allow_nan=False, separators=(",", ":"))


def _table() -> str:
    return get_settings().invocations_table


def _key(invocation_id: str) -> dict[str, Any]:
    return {"invocation_id": {"S": invocation_id}}


# --- reads ----------------------------------------------------------------------------------------------


def get(invocation_id: str) -> Invocation | None:
    """The invocation item (strongly consistent), or None."""
    response = clients.dynamodb().get_item(TableName=_table(), Key=_key(invocation_id), ConsistentRead=True)
    raw = response.get("Item")
    return _decode_item(raw) if raw else None


def _names(stage: str) -> dict[str, str]:
    return {
        "#status": "status",
        "#stages": "stages",
        "#s": stage,
        "#updated": "updated_at",
        "#error": "error",
    }


# --- writes ---------------------------------------------------------------------------------------------


class _ConditionFailedError(Exception):
    def __init__(self, item: Invocation | None) -> None:
        super().__init__("condition failed")
        self.item = item


def _update(
    invocation_id: str,
    update: str,
    condition: str,
    names: dict[str, str],
    values: dict[str, Any],
    *,
    return_new: bool = False,
) -> Invocation | None:
    client = clients.dynamodb()
    request = {
        "TableName": _table(),
        "Key": _key(invocation_id),
        "UpdateExpression": update,
        "ConditionExpression": condition,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": to_item(values),
        "ReturnValues": "ALL_NEW" if return_new else "NONE",
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }
    # An item written before a stage existed has no checkpoint for it: DynamoDB refuses to set a path inside
    # the missing map, and a condition on it does not hold. Either way, once: add the missing stages (PENDING)
    # and try again.
    for first_try in (True, False):
        try:
            response = client.update_item(**request)
        except client.exceptions.ConditionalCheckFailedException as error:
            old = error.response.get("Item")
            item = _decode_item(old) if old else None
            if first_try and item is not None and set(STAGE_NAMES) - set(item.stages):
                _add_missing_stages(invocation_id)
                continue
            raise _ConditionFailedError(item) from error
        except client.exceptions.ClientError as error:
            if not (first_try and _missing_stage_map(error)):
                raise
            _add_missing_stages(invocation_id)
            continue
        attributes = response.get("Attributes")
        return _decode_item(attributes) if attributes else None
    raise AssertionError("unreachable: the second try returns or raises")


# --- the table's indexes --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Index:
    """A global secondary index of the invocations table: its keys (attribute, DynamoDB type "S" or "N"),
    and the attributes it projects besides the keys (KEYS_ONLY when none)."""

    name: str
    partition_key: tuple[str, str]
    sort_key: tuple[str, str]
    include: tuple[str, ...] = ()


# A sparse index (DEADLINE_INDEX, partition SWEEP_KEY, sort deadline_at): an item is in it from acceptance (or
# a resume) until it ends, so the sweeper queries the overdue ones instead of scanning the table.
DEADLINE_INDEX = "by-deadline"
SWEEP_KEY = "sweep"
SWEEP_DUE = "due"
# A caller's invocations by creation time (GET /v1/invocations, newest first), with what a history lists.
# Items without an owner (written before owners were kept; the breakers' items) are not in it. Its
# attributes change about three times per invocation (acceptance, RUNNING, the end): an index write each,
# where `updated_at`, which every checkpoint sets, would cost one per update.
OWNER_INDEX = "by-owner"
HISTORY_ATTRIBUTES = ("status", "mode", "finished_at")
INDEXES = (
    Index(DEADLINE_INDEX, (SWEEP_KEY, "S"), ("deadline_at", "N")),
    Index(OWNER_INDEX, ("owner", "S"), ("created_at", "S"), include=HISTORY_ATTRIBUTES),
)


def _deadline_at(extra_s: int = 0) -> int:
    """Epoch seconds by which an invocation accepted (or resumed) now has ended unless it is stuck."""
    settings = get_settings()
    budget = deadline_s(settings.queue_visibility_timeout_s, settings.function_timeout_s)
    return int(time.time()) + budget + extra_s


def overdue(now: float | None = None, limit: int = 100) -> list[str]:
    """The ids of invocations still in the sweeper's index whose deadline has passed, oldest first."""
    cutoff = int(time.time() if now is None else now)
    response = clients.dynamodb().query(
        TableName=_table(),
        IndexName=DEADLINE_INDEX,
        KeyConditionExpression="#sweep = :due AND #deadline <= :now",
        ExpressionAttributeNames={"#sweep": SWEEP_KEY, "#deadline": "deadline_at"},
        ExpressionAttributeValues=to_item({":due": SWEEP_DUE, ":now": cutoff}),
        Limit=limit,
    )
    return [from_item(item)["invocation_id"] for item in response.get("Items", [])]


def owned_by(
    owner: str, limit: int, after: tuple[str, str] | None = None
) -> tuple[list[HistoryEntry], tuple[str, str] | None]:
    """Up to `limit` invocations of `owner`, newest first, from the by-owner index (eventually consistent:
    one accepted a moment ago may not be listed yet); after `after` (``(created_at, invocation_id)`` of the
    last one of the previous page) when given. Also returns where the next page starts, or None when there
    is no more."""
    names = {"#owner": "owner"}
    request: dict[str, Any] = {
        "TableName": _table(),
        "IndexName": OWNER_INDEX,
        "KeyConditionExpression": "#owner = :owner",
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": to_item({":owner": owner}),
        "ScanIndexForward": False,
    }
    if after is not None:
        created_at, invocation_id = after
        request["ExclusiveStartKey"] = to_item(
            {"owner": owner, "created_at": created_at, "invocation_id": invocation_id}
        )
    items: list[HistoryEntry] = []
    while len(items) <= limit:  # one more than asked: whether a next page exists
        response = clients.dynamodb().query(**request, Limit=limit + 1 - len(items))
        items += [HistoryEntry.model_validate(from_item(raw)) for raw in response.get("Items", [])]
        if "LastEvaluatedKey" not in response:
            break
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
    page = items[:limit]
    more = len(items) > limit
    return page, (page[-1].created_at, page[-1].invocation_id) if more else None


def extend_deadline(invocation_id: str, stage: str, extra_s: int) -> bool:
    """After the sweeper re-dispatched `stage`: a new deadline (now + the usual + `extra_s`) and the
    stage's `redispatched` mark, if the invocation still runs and `stage` is still PENDING; False if not."""
    names = _names(stage)
    del names["#error"]
    names.update({"#deadline": "deadline_at", "#redispatched": "redispatched"})
    values = {
        ":now": timestamps.now(),
        ":running": InvocationStatus.RUNNING.value,
        ":accepted": InvocationStatus.ACCEPTED.value,
        ":pending": StageStatus.PENDING.value,
        ":deadline": _deadline_at(extra_s),
        ":yes": True,
    }
    condition = "(#status = :running OR #status = :accepted) AND #stages.#s.#status = :pending"
    update = "SET #deadline = :deadline, #updated = :now, #stages.#s.#redispatched = :yes"
    try:
        _update(invocation_id, update, condition, names, values)
    except _ConditionFailedError:
        return False
    return True


def postpone_deadline(invocation_id: str) -> bool:
    """A new deadline (now + the usual) for an invocation that waits on an open circuit breaker rather
    than being stuck; False if it is no longer running."""
    try:
        _update(
            invocation_id,
            "SET #deadline = :deadline, #updated = :now",
            "#status = :running OR #status = :accepted",
            {"#deadline": "deadline_at", "#updated": "updated_at", "#status": "status"},
            {
                ":deadline": _deadline_at(),
                ":now": timestamps.now(),
                ":running": InvocationStatus.RUNNING.value,
                ":accepted": InvocationStatus.ACCEPTED.value,
            },
        )
    except _ConditionFailedError:
        return False
    return True


def leave_index(invocation_id: str) -> None:
    """Take an invocation that has ended out of the sweeper's index (for items from before it was kept)."""
    clients.dynamodb().update_item(
        TableName=_table(),
        Key=_key(invocation_id),
        UpdateExpression="REMOVE #sweep",
        ExpressionAttributeNames={"#sweep": SWEEP_KEY},
    )


def _missing_stage_map(error: Exception) -> bool:
    """Whether DynamoDB refused an update for a path inside a map that is not there."""
    response = getattr(error, "response", {}) or {}
    details = response.get("Error", {})
    return details.get("Code") == "ValidationException" and "document path" in details.get("Message", "")


def _add_missing_stages(invocation_id: str) -> None:
    """Give the item a PENDING checkpoint for every stage of the table it has none for (one update; a stage
    that has one keeps it)."""
    names = {"#stages": "stages"}
    sets = []
    for index, name in enumerate(STAGE_NAMES):
        names[f"#m{index}"] = name
        sets.append(f"#stages.#m{index} = if_not_exists(#stages.#m{index}, :pending)")
    clients.dynamodb().update_item(
        TableName=_table(),
        Key=_key(invocation_id),
        UpdateExpression="SET " + ", ".join(sets),
        ConditionExpression="attribute_exists(#stages)",
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=to_item({":pending": {"status": StageStatus.PENDING.value, "attempts": 0}}),
    )


def _refusal(invocation_id: str, stage: str, item: Invocation | None) -> Exception:
    """Why a stage transition's condition failed: unknown invocation, or a StaleMessage saying which drop."""
    if item is None:
        return UnknownInvocation(f"no invocation {invocation_id}")
    if item.status == InvocationStatus.FAILED:
        return StaleMessage(StageOutcome.STALE, f"invocation {invocation_id} is FAILED", item)
    if item.done(stage):
        return StaleMessage(StageOutcome.DUPLICATE, f"stage {stage} of {invocation_id} is already done", item)
    if item.status == InvocationStatus.SUCCEEDED:
        return StaleMessage(StageOutcome.FINISHED, f"invocation {invocation_id} already SUCCEEDED", item)
    waiting = [name for name in dependencies(stage) if not item.done(name)]
    if waiting:
        message = f"stage {', '.join(waiting)} of {invocation_id} is not done"
        return StaleMessage(StageOutcome.OUT_OF_ORDER, message, item)
    return StaleMessage(StageOutcome.CONFLICT, f"invocation {invocation_id} is {item.status}", item)


def _stage_ready_condition(stage: str, names: dict[str, str], values: dict[str, Any]) -> str:
    """Condition: this stage is not done yet and every stage it reads is done (SUCCEEDED or SKIPPED)."""
    names.update({"#stages": "stages", "#s": stage, "#status": "status"})
    values.update({":succeeded": StageStatus.SUCCEEDED.value, ":skipped": StageStatus.SKIPPED.value})
    condition = "#stages.#s.#status <> :succeeded AND #stages.#s.#status <> :skipped"
    for index, name in enumerate(dependencies(stage)):
        names[f"#p{index}"] = name
        condition += f" AND (#stages.#p{index}.#status = :succeeded OR #stages.#p{index}.#status = :skipped)"
    return condition


def create(
    invocation_id: str,
    *,
    mode: str,
    correlation_id: str,
    input_key: str,
    steps: list[str],
    options: Mapping[str, Any],
    callback_url: str | None = None,
    owner: str = ANONYMOUS,
) -> Invocation:
    """Create the ACCEPTED item, owned by `owner`; ValueError if the id already exists."""
    now = timestamps.now()
    item = {
        "invocation_id": invocation_id,
        "status": InvocationStatus.ACCEPTED.value,
        "mode": mode,
        "created_at": now,
        "updated_at": now,
        "correlation_id": correlation_id,
        "owner": owner,
        "input_key": input_key,
        "steps": list(steps),
        "options": _json(dict(options)),
        "stages": {name: {"status": StageStatus.PENDING.value, "attempts": 0} for name in STAGE_NAMES},
        "expires_at": int(time.time()) + get_settings().retention_s,
        "schema_version": ITEM_VERSION,
        # the sweeper's index: present while the invocation may still run (removed when it ends)
        SWEEP_KEY: SWEEP_DUE,
        "deadline_at": _deadline_at(),
    }
    if callback_url:
        item["callback_url"] = callback_url
    client = clients.dynamodb()
    try:
        client.put_item(
            TableName=_table(),
            Item=to_item(item),
            ConditionExpression="attribute_not_exists(invocation_id)",
        )
    except client.exceptions.ConditionalCheckFailedException as error:
        raise ValueError(f"invocation {invocation_id} already exists") from error
    return _decode_item(to_item(item))


def start_stage(invocation_id: str, stage: str, claim: str | None = None) -> Invocation:
    """Mark `stage` RUNNING and count the attempt; returns the updated item.

    `claim` (events mode: the id of the event that triggered this start) makes the start exclusive: once a
    claim is recorded, only deliveries of the same event may start the stage again (a retry), so a stage
    that several events may trigger (a fan-in) runs once. Raises StaleMessage (duplicate / FAILED / out of
    order / claimed by another event) or UnknownInvocation instead of starting.
    """
    names: dict[str, str] = {"#attempts": "attempts", "#started": "started_at", "#updated": "updated_at"}
    values: dict[str, Any] = {
        ":now": timestamps.now(),
        ":one": 1,
        ":running": InvocationStatus.RUNNING.value,
        ":accepted": InvocationStatus.ACCEPTED.value,
        ":stage_running": StageStatus.RUNNING.value,
    }
    ready = _stage_ready_condition(stage, names, values)
    condition = f"attribute_exists(invocation_id) AND (#status = :accepted OR #status = :running) AND {ready}"
    update = (
        "SET #status = :running, #updated = :now, #stages.#s.#status = :stage_running, "
        "#stages.#s.#started = :now, #stages.#s.#attempts = #stages.#s.#attempts + :one"
    )
    if claim is not None:
        names["#claim"] = "claim"
        values[":claim"] = claim
        condition += " AND (attribute_not_exists(#stages.#s.#claim) OR #stages.#s.#claim = :claim)"
        update += ", #stages.#s.#claim = :claim"
    try:
        item = _update(invocation_id, update, condition, names, values, return_new=True)
    except _ConditionFailedError as failed:
        raise _refusal(invocation_id, stage, failed.item) from None
    assert item is not None
    return item


def _completion(
    stage: str,
    *,
    duration_ms: int,
    output_key: str | None,
    summary: Any,
    skipped: Mapping[str, str],
) -> tuple[list[str], str, dict[str, str], dict[str, Any]]:
    names: dict[str, str] = {
        "#updated": "updated_at",
        "#completed": "completed_at",
        "#duration": "duration_ms",
        "#summary": "summary",
        "#completions": "completions",
    }
    values: dict[str, Any] = {
        ":now": timestamps.now(),
        ":running": InvocationStatus.RUNNING.value,
        ":duration": int(duration_ms),
        ":summary": _json(summary),
        ":zero": 0,
        ":one": 1,
    }
    condition = f"#status = :running AND {_stage_ready_condition(stage, names, values)}"
    sets = [
        "#updated = :now",
        "#stages.#s.#status = :succeeded",
        "#stages.#s.#completed = :now",
        "#stages.#s.#duration = :duration",
        "#stages.#s.#summary = :summary",
        # how many times this stage was completed: the conditions keep it at 1, and `make chaos` checks so
        "#stages.#s.#completions = if_not_exists(#stages.#s.#completions, :zero) + :one",
    ]
    if output_key is not None:
        names["#output"] = "output_key"
        values[":output"] = output_key
        sets.append("#stages.#s.#output = :output")
    sets += _skip_sets(skipped, names, values)
    return sets, condition, names, values


def _skip_sets(skipped: Mapping[str, str], names: dict[str, str], values: dict[str, Any]) -> list[str]:
    """The SET clauses that mark the stages of `skipped` (name → reason) SKIPPED now, with their names and
    values added (the caller's names hold #stages, #status, #summary and #completed; its values :skipped and
    :now)."""
    sets = []
    for i, (name, reason) in enumerate(skipped.items()):
        names[f"#k{i}"] = name
        values[f":k{i}"] = _json({"reason": reason})
        sets += [
            f"#stages.#k{i}.#status = :skipped",
            f"#stages.#k{i}.#summary = :k{i}",
            f"#stages.#k{i}.#completed = :now",
        ]
    return sets


def complete_stage(
    invocation_id: str,
    stage: str,
    *,
    duration_ms: int,
    output_key: str | None,
    summary: Any,
    skipped: Mapping[str, str] | None = None,
) -> None:
    """Mark `stage` SUCCEEDED (and the optional stages in `skipped` SKIPPED, name → reason), atomically.

    One conditional update: the invocation is RUNNING (not FAILED), the previous stage is SUCCEEDED or
    SKIPPED and this stage is not SUCCEEDED yet. Otherwise StaleMessage / UnknownInvocation.
    """
    sets, condition, names, values = _completion(
        stage, duration_ms=duration_ms, output_key=output_key, summary=summary, skipped=skipped or {}
    )
    try:
        _update(invocation_id, "SET " + ", ".join(sets), condition, names, values)
    except _ConditionFailedError as failed:
        raise _refusal(invocation_id, stage, failed.item) from None


def succeed(
    invocation_id: str,
    stage: str,
    *,
    duration_ms: int,
    result: Any | None,
    result_key: str,
    summary: Any = None,
) -> None:
    """Complete the last stage and mark the invocation SUCCEEDED in the same conditional update.

    `result` is stored inline when given (the caller passes it only when small); `result_key` always.
    """
    sets, condition, names, values = _completion(
        stage, duration_ms=duration_ms, output_key=result_key, summary=summary or {}, skipped={}
    )
    names.update({"#result_key": "result_key", "#finished": "finished_at"})
    values.update({":done": InvocationStatus.SUCCEEDED.value, ":result_key": result_key})
    sets += ["#status = :done", "#result_key = :result_key", "#finished = :now"]
    if result is not None:
        names["#result"] = "result"
        values[":result"] = _json(result)
        sets.append("#result = :result")
    names["#sweep"] = SWEEP_KEY
    try:
        _update(invocation_id, "SET " + ", ".join(sets) + " REMOVE #sweep", condition, names, values)
    except _ConditionFailedError as failed:
        raise _refusal(invocation_id, stage, failed.item) from None


def skip_stage(
    invocation_id: str, stage: str, reason: str, *, following: Mapping[str, str] | None = None
) -> None:
    """Mark a started optional `stage` SKIPPED for `reason` (a stage that decides its own skip), and the
    stages in `following` (name → reason: what it planned after itself) with it, in one update.

    The same condition as a completion (invocation RUNNING, every stage it reads done, this one not done);
    otherwise StaleMessage / UnknownInvocation.
    """
    names: dict[str, str] = {"#updated": "updated_at", "#summary": "summary", "#completed": "completed_at"}
    values: dict[str, Any] = {":now": timestamps.now(), ":running": InvocationStatus.RUNNING.value}
    condition = f"#status = :running AND {_stage_ready_condition(stage, names, values)}"
    sets = ["#updated = :now", *_skip_sets({stage: reason, **(following or {})}, names, values)]
    update = "SET " + ", ".join(sets)
    try:
        _update(invocation_id, update, condition, names, values)
    except _ConditionFailedError as failed:
        raise _refusal(invocation_id, stage, failed.item) from None


def fail(invocation_id: str, *, stage: str, code: str, message: str) -> bool:
    """Mark the invocation FAILED with `{code, message, stage}`, and the stage FAILED unless it is done (a
    stage that SUCCEEDED or was SKIPPED keeps its checkpoint: a resume must not run it again); False if the
    invocation already ended (no change)."""
    names = _names(stage)
    values = {
        ":now": timestamps.now(),
        ":failed": InvocationStatus.FAILED.value,
        ":succeeded": InvocationStatus.SUCCEEDED.value,
        ":skipped": StageStatus.SKIPPED.value,
        ":stage_failed": StageStatus.FAILED.value,
        ":error": {"code": code, "message": message, "stage": stage},
    }
    not_ended = "attribute_exists(invocation_id) AND #status <> :failed AND #status <> :succeeded"
    stage_open = "#stages.#s.#status <> :succeeded AND #stages.#s.#status <> :skipped"
    names.update({"#sweep": SWEEP_KEY, "#finished": "finished_at"})
    update = "SET #status = :failed, #updated = :now, #finished = :now, #error = :error"
    ended = " REMOVE #sweep"
    try:
        _update(
            invocation_id,
            f"{update}, #stages.#s.#status = :stage_failed{ended}",
            f"{not_ended} AND {stage_open}",
            names,
            values,
        )
    except _ConditionFailedError as failed:
        if failed.item is None:
            raise UnknownInvocation(f"no invocation {invocation_id}") from None
        if failed.item.status in (InvocationStatus.FAILED, InvocationStatus.SUCCEEDED):
            return False
        # the stage is done: fail the invocation, leave the stage's checkpoint alone
        del values[":stage_failed"], values[":skipped"]
        del names["#s"], names["#stages"]
        try:
            _update(invocation_id, update + ended, not_ended, names, values)
        except _ConditionFailedError:
            return False
    return True


def prepare_resume(invocation_id: str) -> tuple[str, Invocation]:
    """Move a FAILED invocation back to RUNNING; returns (the stage to restart from, the updated item).

    The error is cleared and every stage that can run again (not done, everything it reads done: the
    restart stage, and in events mode its parallel siblings) is set back to PENDING without its claim; the
    completed stages keep their checkpoints and outputs. UnknownInvocation if there is no such invocation,
    InvalidStateError if it is not FAILED (also when a concurrent resume won the race).
    """
    item = get(invocation_id)
    if item is None:
        raise UnknownInvocation(f"no invocation {invocation_id}")
    if item.status != InvocationStatus.FAILED:
        raise InvalidStateError(item.status, f"invocation {invocation_id} is {item.status}, not FAILED")
    stage = item.first_pending_stage() or STAGE_NAMES[-1]
    restart = item.ready_stages() or [stage]
    names = {"#status": "status", "#stages": "stages", "#updated": "updated_at", "#error": "error"}
    names["#claim"] = "claim"
    values = {
        ":now": timestamps.now(),
        ":failed": InvocationStatus.FAILED.value,
        ":running": InvocationStatus.RUNNING.value,
        ":pending": StageStatus.PENDING.value,
        ":due": SWEEP_DUE,
        ":deadline": _deadline_at(),
    }
    names.update({"#sweep": SWEEP_KEY, "#deadline": "deadline_at", "#finished": "finished_at"})
    sets = ["#status = :running", "#updated = :now", "#sweep = :due", "#deadline = :deadline"]
    removes = ["#error", "#finished"]
    for index, name in enumerate(restart):
        names[f"#r{index}"] = name
        sets.append(f"#stages.#r{index}.#status = :pending")
        removes.append(f"#stages.#r{index}.#claim")
    update = f"SET {', '.join(sets)} REMOVE {', '.join(removes)}"
    try:
        new = _update(invocation_id, update, "#status = :failed", names, values, return_new=True)
    except _ConditionFailedError as failed:
        status = failed.item.status if failed.item else "missing"
        raise InvalidStateError(status, f"invocation {invocation_id} is {status}, not FAILED") from None
    assert new is not None
    return stage, new
