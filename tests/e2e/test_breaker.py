"""The circuit breaker in the local stack, as ``python -m local`` runs it: S3 becomes unreachable for the
stage functions' worker processes (every call fails where botocore sends it, after botocore's retries),
invocations arrive in the pipeline and events modes, the first stage's breaker opens and its pollers pause,
nothing reaches a dead-letter queue; S3 is repaired, the sweeper half-opens the breaker, a probe closes
it, and every invocation completes."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from local.chaos import PREFIX, _dead_letters
from local.spawn import StackDidNotStart, start_stack_process
from tests.conftest import SPEECH_FILES

STAGE = "ingest"
MODES = ("pipeline", "events")
PER_MODE = 3


def _breaker(dynamodb: Any) -> dict[str, Any]:
    item = dynamodb.get_item(
        TableName=f"{PREFIX}-invocations",
        Key={"invocation_id": {"S": f"breaker#{STAGE}"}},
        ConsistentRead=True,
    ).get("Item", {})
    return {name: next(iter(value.values())) for name, value in item.items()}


def _wait_for(what: str, check: Any, timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"{what} did not happen within {timeout_s:.0f} s")


def test_a_broken_dependency_holds_messages_and_everything_completes_after_repair(tmp_path: Path) -> None:
    outage = tmp_path / "s3-is-down"
    environment = {
        "HARMONIC_FAULTS": json.dumps({"outage": {"services": ["s3"], "while_exists": str(outage)}}),
        "BREAKER_THRESHOLD": "3",
        "BREAKER_COOLDOWN_S": "4",
        "LOCAL_SWEEP_PERIOD_S": "1",
    }
    try:
        stack = start_stack_process(tmp_path / "stack.log", environment=environment, visibility_timeout_s=3)
    except StackDidNotStart as error:
        pytest.fail(f"{error}:\n{error.log_tail}")
    with stack:
        client = stack.client()
        dynamodb = stack.aws("dynamodb")
        clip = SPEECH_FILES[0].read_bytes()
        outage.touch()
        ids = [client.submit(clip, mode=mode)["invocation_id"] for mode in MODES for _ in range(PER_MODE)]

        opened = _wait_for("the breaker opening", lambda: _breaker(dynamodb).get("state") == "OPEN", 90)
        assert opened
        first = _breaker(dynamodb)
        assert first["dependency"] == "s3"
        assert "EndpointConnectionError" in first["error"]
        # A probe after the cool-down finds S3 still down and opens the breaker again.
        _wait_for(
            "a failed probe re-opening the breaker",
            lambda: (
                _breaker(dynamodb).get("state") == "OPEN"
                and _breaker(dynamodb)["opened_at"] != first["opened_at"]
            ),
            90,
        )
        statuses = {client.status(i)["status"] for i in ids}
        assert statuses <= {"ACCEPTED", "RUNNING"}, statuses
        assert _dead_letters(stack) == 0

        outage.unlink()  # repaired

        def all_finished() -> list[dict[str, Any]] | None:
            documents = [client.status(i) for i in ids]
            return documents if all(d["status"] in ("SUCCEEDED", "FAILED") for d in documents) else None

        finished = _wait_for("every invocation finishing", all_finished, 180)
        assert [d["status"] for d in finished] == ["SUCCEEDED"] * len(ids), [d.get("error") for d in finished]
        assert _breaker(dynamodb)["state"] == "CLOSED"
        assert _dead_letters(stack) == 0
        log = stack.log()
        assert "breaker of ingest opened" in log
        assert "breaker of ingest closed: the probe succeeded" in log
