"""Schema evolution: a message from the previous version (no `schema_version`) and one from the next (a
version ahead, with a field this code does not know) are both processed, and an invocation item written
before items were versioned, missing a stage, still runs and resumes."""

from __future__ import annotations

import json

from harmonic_service import service
from harmonic_service.dal import checkpoints, clients, payloads
from harmonic_service.models import ENVELOPE_VERSION, Envelope
from harmonic_service.stages import STAGE_NAMES
from tests.conftest import SPEECH_FILES
from tests.integration.conftest import AwsStack

CLIP = SPEECH_FILES[-1].read_bytes()


def _invocation(invocation_id: str) -> dict:
    """An accepted invocation whose first envelope the test sends itself."""
    payloads.put_bytes(payloads.input_key(invocation_id), CLIP, content_type="audio/wav")
    checkpoints.create(
        invocation_id,
        mode="pipeline",
        correlation_id=f"c-{invocation_id}",
        input_key=payloads.input_key(invocation_id),
        steps=list(STAGE_NAMES),
        options={},
    )
    return json.loads(
        Envelope(
            invocation_id=invocation_id,
            correlation_id=f"c-{invocation_id}",
            stage="ingest",
            input_key=payloads.input_key(invocation_id),
        ).to_json()
    )


def test_envelopes_of_the_previous_and_the_next_version_are_processed(aws: AwsStack) -> None:
    previous = _invocation("previous-version")
    assert previous.pop("schema_version") == ENVELOPE_VERSION  # what this code writes
    following = _invocation("next-version")
    following.update(schema_version=ENVELOPE_VERSION + 1, priority="high")  # a field from the future
    aws.send("ingest", json.dumps(previous))
    aws.send("ingest", json.dumps(following))
    report = aws.drain()

    assert report.failures == []
    for invocation_id in ("previous-version", "next-version"):
        assert service.get_invocation(invocation_id)["status"] == "SUCCEEDED"
    assert sum(aws.dlq_depths().values()) == 0


def test_an_item_from_before_versions_and_a_new_stage_still_resumes(aws: AwsStack) -> None:
    """The item loses its schema_version and the `match` stage (as if written before either existed), and
    fails at features; resume runs features, match and respond."""
    _invocation("old-item")  # its envelope is not sent: the resume starts it
    table = aws.invocations_table
    clients.dynamodb().update_item(
        TableName=table,
        Key={"invocation_id": {"S": "old-item"}},
        UpdateExpression="REMOVE schema_version, stages.#match SET unknown_attribute = :x",
        ExpressionAttributeNames={"#match": "match"},
        ExpressionAttributeValues={":x": {"S": "from a future writer"}},
    )
    item = checkpoints.get("old-item")
    assert item.schema_version == 0
    checkpoints.fail("old-item", stage="features", code="stage_error", message="failed before the upgrade")
    resumed = service.resume_invocation("old-item", correlation_id="resume")
    assert resumed["resumed_from"] == "ingest"  # nothing had run: the first stage is the first pending
    aws.drain()
    final = service.get_invocation("old-item")
    assert final["status"] == "SUCCEEDED", final.get("error")
    assert {s["name"]: s["status"] for s in final["stages"]}["match"] in ("SUCCEEDED", "SKIPPED")


def test_an_item_missing_the_very_stage_that_runs_still_runs(aws: AwsStack) -> None:
    """The first stage's own checkpoint is missing: its start (a condition on that checkpoint) adds it."""
    envelope = _invocation("no-ingest-checkpoint")
    clients.dynamodb().update_item(
        TableName=aws.invocations_table,
        Key={"invocation_id": {"S": "no-ingest-checkpoint"}},
        UpdateExpression="REMOVE stages.ingest",
    )
    assert "ingest" not in checkpoints.get("no-ingest-checkpoint").stages
    aws.send("ingest", json.dumps(envelope))
    report = aws.drain()
    assert report.failures == []
    assert service.get_invocation("no-ingest-checkpoint")["status"] == "SUCCEEDED"
