"""The API handler under moto, route by route: API Gateway proxy events in, proxy responses out.

Requests are built by tests/integration/api_events.py and run through `harmonic_service.handlers.api.handler`
(the function the stack deploys and the local stack serves over HTTP); the pipeline is driven with
`aws.drain()`, the state machine by moto (`sfn_aws`). The HTTP-level suite is tests/e2e.
"""

from __future__ import annotations

import base64
import io
import json
import time
from collections.abc import Iterator
from importlib import import_module
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harmonic_service import faults, service
from harmonic_service.config import clear_caches
from harmonic_service.errors import PermanentStageError
from harmonic_service.stages import STAGE_NAMES
from tests.integration.api_events import api_event, call
from tests.integration.conftest import IDEMPOTENCY_TABLE, PATTERNS_TABLE, REGION, AwsStack, wav_bytes

SPEECH = Path(__file__).resolve().parents[1] / "data" / "speech" / "en_us_m.wav"
SPEECH_BYTES = SPEECH.read_bytes()
AUDIO = base64.b64encode(SPEECH_BYTES).decode()
GARBAGE = base64.b64encode(b"\x00\x01 certainly not a RIFF/WAVE file \xff" * 8).decode()


def stage_module(name: str):
    """The module of stage `name` (its pure function of the same name is what tests make fail)."""
    return import_module(f"harmonic_service.stages.{name}")


def invocation_items(aws: AwsStack) -> list[dict[str, Any]]:
    return boto3.client("dynamodb", region_name=REGION).scan(TableName=aws.invocations_table)["Items"]


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """What the "harmonic" Logger writes during the test (it keeps the stdout it saw at import: capsys
    would miss it); metrics are printed to the current stdout, so capsys still sees those."""
    from harmonic_service.handlers import api

    handler = api.logger.registered_handler
    stream = io.StringIO()
    previous = handler.setStream(stream)
    try:
        yield stream
    finally:
        handler.setStream(previous)


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


# --- happy paths --------------------------------------------------------------------------------------------


def test_health(aws: AwsStack) -> None:
    status, headers, body = call("GET", "/v1/health")
    assert (status, body) == (200, {"status": "ok", "modes": ["pipeline", "events"]})
    assert headers["Content-Type"] == "application/json"


def test_events_mode_and_its_audit_log_through_the_api(aws: AwsStack) -> None:
    accepted = call("POST", "/v1/invocations", {"audio": AUDIO, "mode": "events"})
    assert (accepted.status, accepted.body["mode"]) == (202, "events")
    aws.drain()
    invocation_id = accepted.body["invocation_id"]
    assert call("GET", f"/v1/invocations/{invocation_id}").body["status"] == "SUCCEEDED"
    events = call("GET", f"/v1/invocations/{invocation_id}/events")
    assert events.status == 200
    types = [event["detail_type"] for event in events.body["events"]]
    assert (types[0], types[-1], events.body["count"]) == ("InvocationSubmitted", "InvocationCompleted", 8)
    assert all("replay_name" not in event for event in events.body["events"])  # none was replayed
    missing = call("GET", "/v1/invocations/not-an-invocation/events")
    assert (missing.status, missing.body["error"]["code"]) == (404, "not_found")


def test_submit_drain_and_read_the_result(aws: AwsStack) -> None:
    accepted = call("POST", "/v1/invocations", {"audio": AUDIO}, {"X-Correlation-Id": "it-1"})
    assert accepted.status == 202
    invocation_id = accepted.body["invocation_id"]
    assert accepted.body == {
        "invocation_id": invocation_id,
        "status": "ACCEPTED",
        "mode": "pipeline",
        "status_url": f"/v1/invocations/{invocation_id}",
    }
    assert accepted.headers["X-Correlation-Id"] == "it-1"

    pending = call("GET", accepted.body["status_url"])
    assert pending.status == 200
    assert pending.body["status"] == "ACCEPTED"
    assert pending.headers["Retry-After"] == "1"  # when to poll again
    assert "result" not in pending.body
    assert "error" not in pending.body

    aws.drain()
    done = call("GET", accepted.body["status_url"])
    assert done.status == 200
    assert done.body["status"] == "SUCCEEDED"
    assert "Retry-After" not in done.headers  # nothing more to wait for
    assert {"features", "loudness"} <= set(done.body["result"])
    assert done.body["result"]["features"]["duration_s"] > 1
    assert "error" not in done.body
    stages = {stage["name"]: stage for stage in done.body["stages"]}
    assert list(stages) == list(STAGE_NAMES)
    assert stages["respond"]["status"] == "SUCCEEDED"
    assert all(s["status"] in ("SUCCEEDED", "SKIPPED") for s in stages.values())
    [item] = invocation_items(aws)
    assert item["correlation_id"]["S"] == "it-1"  # the header's id travelled to the invocation


def test_the_correlation_id_travels_in_the_envelope(aws: AwsStack) -> None:
    accepted = call("POST", "/v1/invocations", {"audio": AUDIO}, {"X-Correlation-Id": "env-1"})
    [message] = aws.sqs.receive_message(QueueUrl=aws.queue_urls["ingest"], MaxNumberOfMessages=10)["Messages"]
    envelope = json.loads(message["Body"])
    assert envelope["invocation_id"] == accepted.body["invocation_id"]
    assert envelope["correlation_id"] == "env-1"
    assert envelope["stage"] == "ingest"
    assert AUDIO[:40] not in message["Body"]  # the clip is in S3, the envelope only points at it


def test_analyze_returns_the_result(aws: AwsStack) -> None:
    response = call("POST", "/v1/analyze", {"audio": AUDIO, "options": {"target_lufs": -20}})
    assert response.status == 200
    assert {"audio", "loudness", "features"} <= set(response.body)
    assert response.body["features"]["duration_s"] > 1
    assert response.body["loudness"]["output_lufs"] == pytest.approx(-20, abs=1.0)
    assert invocation_items(aws) == []  # synchronous: nothing stored


def test_upload_to_the_presigned_url_then_submit_by_key(aws: AwsStack) -> None:
    requests = pytest.importorskip("requests")
    created = call("POST", "/v1/uploads", {"content_length": len(SPEECH_BYTES)})
    assert created.status == 201
    assert set(created.body) >= {"audio_key", "upload_url", "expires_in"}
    assert created.body["audio_key"].startswith("uploads/")
    assert created.body["expires_in"] > 0
    put = requests.put(created.body["upload_url"], data=SPEECH_BYTES, timeout=10)  # moto intercepts it
    assert put.status_code == 200, put.text
    assert aws.s3_keys("uploads/") == [created.body["audio_key"]]

    accepted = call("POST", "/v1/invocations", {"audio_key": created.body["audio_key"]})
    assert accepted.status == 202, accepted.body
    aws.drain()
    done = call("GET", accepted.body["status_url"])
    assert done.body["status"] == "SUCCEEDED"
    assert "features" in done.body["result"]

    analyzed = call("POST", "/v1/analyze", {"audio_key": created.body["audio_key"], "steps": ["features"]})
    assert analyzed.status == 200
    assert "features" in analyzed.body


def test_upload_without_a_size_then_put_object_and_submit_by_key(aws: AwsStack) -> None:
    status, _, created = call("POST", "/v1/uploads")  # the body is optional
    assert status == 201
    assert created["max_bytes"] > 0
    aws.s3.put_object(Bucket=aws.bucket, Key=created["audio_key"], Body=SPEECH_BYTES)
    accepted = call("POST", "/v1/invocations", {"audio_key": created["audio_key"]})
    assert accepted.status == 202, accepted.body
    aws.drain()
    done = call("GET", accepted.body["status_url"])
    assert done.body["status"] == "SUCCEEDED"
    assert {"features", "loudness"} <= set(done.body["result"])

    not_a_wav = call("POST", "/v1/uploads", {}).body
    aws.s3.put_object(Bucket=aws.bucket, Key=not_a_wav["audio_key"], Body=b"plain text, no RIFF header")
    for path in ("/v1/invocations", "/v1/analyze"):
        response = call("POST", path, {"audio_key": not_a_wav["audio_key"]})
        assert (response.status, response.body["error"]["code"]) == (400, "invalid_audio"), path


def test_upload_request_variants(aws: AwsStack) -> None:
    assert call("POST", "/v1/uploads").status == 201  # the body is optional
    assert call("POST", "/v1/uploads", {}).status == 201
    assert call("POST", "/v1/uploads", {"content_length": None}).status == 201
    json_null = call("POST", "/v1/uploads", "null", {"Content-Type": "application/json"})
    assert json_null.status == 201  # the document's body is an UploadRequest or null
    too_large = call("POST", "/v1/uploads", {"content_length": 10**12})
    assert (too_large.status, too_large.body["error"]["code"]) == (413, "payload_too_large")
    for body in (
        {"content_length": -1},
        {"content_length": 0},
        {"content_length": "lots"},
        {"content_length": "1000"},
        {"content_length": True},
        {"content_length": 1.5},
        {"size": 10},
        [1],
        [None, None],  # a Schemathesis finding: Powertools passed this array to the optional model as None
        '"1000"',  # a JSON string (bodies given as str are sent as they are)
    ):
        response = call("POST", "/v1/uploads", body)
        assert (response.status, response.body["error"]["code"]) == (400, "bad_request"), body


# --- idempotency --------------------------------------------------------------------------------------------


def test_same_idempotency_key_and_body_returns_the_first_response(aws: AwsStack) -> None:
    headers = {"Idempotency-Key": "key-1"}
    first = call("POST", "/v1/invocations", {"audio": AUDIO}, headers)
    second = call("POST", "/v1/invocations", {"audio": AUDIO}, headers)
    assert first.status == second.status == 202
    assert first.body == second.body
    assert len(invocation_items(aws)) == 1  # submitted once
    assert aws.queue_depth(aws.queue_urls["ingest"]) == 1
    records = boto3.client("dynamodb", region_name=REGION).scan(TableName=IDEMPOTENCY_TABLE)["Items"]
    assert len(records) == 1
    assert AUDIO[:40] not in json.dumps(records)  # only a hash of the body is kept

    other_key = call("POST", "/v1/invocations", {"audio": AUDIO}, {"Idempotency-Key": "key-2"})
    assert other_key.body["invocation_id"] != first.body["invocation_id"]
    without_key = call("POST", "/v1/invocations", {"audio": AUDIO})
    assert without_key.body["invocation_id"] not in (
        first.body["invocation_id"],
        other_key.body["invocation_id"],
    )
    assert len(invocation_items(aws)) == 3


def test_a_retried_pattern_registration_with_its_key_registers_once(aws: AwsStack) -> None:
    body = {"name": "fox", "kind": "fingerprint", "audio": AUDIO}
    first = call("POST", "/v1/patterns", body, {"Idempotency-Key": "pattern-1"})
    retried = call("POST", "/v1/patterns", body, {"Idempotency-Key": "pattern-1"})
    assert first.status == retried.status == 201
    assert first.body == retried.body
    listed = call("GET", "/v1/patterns").body["patterns"]
    assert [pattern["pattern_id"] for pattern in listed] == [first.body["pattern_id"]]
    renamed = call("POST", "/v1/patterns", {**body, "name": "wolf"}, {"Idempotency-Key": "pattern-1"})
    assert (renamed.status, renamed.body["error"]["code"]) == (409, "idempotency_conflict")
    # the same key on a submission is another record (Powertools keys by function too)
    assert call("POST", "/v1/invocations", {"audio": AUDIO}, {"Idempotency-Key": "pattern-1"}).status == 202


def test_same_idempotency_key_with_another_body_is_a_conflict(aws: AwsStack) -> None:
    headers = {"Idempotency-Key": "key-1"}
    assert call("POST", "/v1/invocations", {"audio": AUDIO}, headers).status == 202
    response = call("POST", "/v1/invocations", {"audio": AUDIO, "steps": ["features"]}, headers)
    assert (response.status, response.body["error"]["code"]) == (409, "idempotency_conflict")
    assert len(invocation_items(aws)) == 1


def test_a_refused_request_does_not_use_up_its_idempotency_key(aws: AwsStack) -> None:
    headers = {"Idempotency-Key": "key-1"}
    refused = call("POST", "/v1/invocations", {"audio": GARBAGE}, headers)
    assert (refused.status, refused.body["error"]["code"]) == (400, "invalid_audio")
    assert call("POST", "/v1/invocations", {"audio": AUDIO}, headers).status == 202
    assert len(invocation_items(aws)) == 1


def test_a_request_still_in_progress_with_the_same_key_is_a_conflict(
    aws: AwsStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A retry that arrives while the first request is still being handled gets a 409, not a second run."""
    headers = {"Idempotency-Key": "key-slow"}
    submit = service.submit_invocation
    during: list[Any] = []

    def submit_while_retried(*args: Any, **kwargs: Any) -> dict[str, Any]:
        if not during:
            during.append(call("POST", "/v1/invocations", {"audio": AUDIO}, headers))
        return submit(*args, **kwargs)

    monkeypatch.setattr(service, "submit_invocation", submit_while_retried)
    first = call("POST", "/v1/invocations", {"audio": AUDIO}, headers)
    assert first.status == 202
    [retry] = during
    assert (retry.status, retry.body["error"]["code"]) == (409, "in_progress")
    assert len(invocation_items(aws)) == 1


# --- resume, not found --------------------------------------------------------------------------------------


def test_resume_of_an_invocation_that_has_not_failed_is_a_conflict(aws: AwsStack) -> None:
    accepted = call("POST", "/v1/invocations", {"audio": AUDIO})
    response = call("POST", f"{accepted.body['status_url']}/resume")
    assert (response.status, response.body["error"]["code"]) == (409, "conflict")
    aws.drain()
    response = call("POST", f"{accepted.body['status_url']}/resume")  # SUCCEEDED: still not resumable
    assert (response.status, response.body["error"]["code"]) == (409, "conflict")


def test_resume_of_a_failed_invocation_restarts_it_and_it_completes(aws: AwsStack) -> None:
    """features fails every allowed delivery (a directed fault): FAILED, then resume → 202 → SUCCEEDED."""
    aws.monkeypatch.setenv("HARMONIC_FAULTS_ENABLED", "true")
    faults.reset()
    try:
        accepted = call(
            "POST", "/v1/invocations", {"audio": AUDIO}, {"X-Correlation-Id": "api-fault-features-fail-3"}
        )
        assert accepted.status == 202
        aws.drain()
        failed = call("GET", accepted.body["status_url"])
        assert failed.body["status"] == "FAILED"
        assert failed.body["error"]["stage"] == "features"
        (listed,) = call("GET", "/v1/invocations").body["invocations"]
        assert listed["status"] == "FAILED"
        assert listed["finished_at"] >= failed.body["created_at"]
        assert "result" not in failed.body
        assert aws.dlq_depths()["features"] == 1  # every allowed delivery was used up
        attempts = {stage["name"]: stage["attempts"] for stage in failed.body["stages"]}

        resumed = call(
            "POST", f"{accepted.body['status_url']}/resume", headers={"X-Correlation-Id": "resume-1"}
        )
        assert resumed.status == 202
        assert resumed.body["invocation_id"] == accepted.body["invocation_id"]
        assert resumed.body["status"] == "RUNNING"
        assert resumed.body["resumed_from"] == "features"
        assert resumed.headers["X-Correlation-Id"] == "resume-1"
        (listed,) = call("GET", "/v1/invocations").body["invocations"]
        assert (listed["status"], listed["finished_at"]) == ("RUNNING", None)  # it runs again
        aws.drain()
        done = call("GET", accepted.body["status_url"])
        assert done.body["status"] == "SUCCEEDED"
        assert "features" in done.body["result"]
        assert "error" not in done.body
        after = {stage["name"]: stage["attempts"] for stage in done.body["stages"]}
        assert after["features"] == attempts["features"] + 1
        assert {name: after[name] for name in ("ingest", "normalize")} == {"ingest": 1, "normalize": 1}
    finally:
        aws.monkeypatch.delenv("HARMONIC_FAULTS_ENABLED")
        faults.reset()


def test_unknown_invocations_and_routes_are_404(aws: AwsStack) -> None:
    for method, path in (
        ("GET", "/v1/invocations/does-not-exist"),
        ("POST", "/v1/invocations/does-not-exist/resume"),
        ("GET", "/v1/nowhere"),
        ("GET", "/v2/health"),
        ("DELETE", "/v1/invocations"),
    ):
        response = call(method, path)
        assert response.status == 404, (method, path)
        assert response.body["error"]["code"] == "not_found"
        assert set(response.body["error"]) == {"code", "message"}


# --- statemachine mode -------------------------------------------------------------------------------------


def test_statemachine_mode_through_the_api(sfn_aws: AwsStack) -> None:
    assert call("GET", "/v1/health").body == {"status": "ok", "modes": ["pipeline", "statemachine", "events"]}
    status, headers, accepted = call(
        "POST", "/v1/invocations", {"audio": AUDIO, "mode": "statemachine"}, {"X-Correlation-Id": "sm-1"}
    )
    assert status == 202
    assert headers["X-Correlation-Id"] == "sm-1"
    assert accepted["mode"] == "statemachine"
    invocation_id = accepted["invocation_id"]
    execution = sfn_aws.wait_for_execution(invocation_id)
    assert execution["status"] == "SUCCEEDED"
    assert json.loads(execution["input"])["correlation_id"] == "sm-1"
    done = call("GET", accepted["status_url"])
    assert (done.status, done.body["status"], done.body["mode"]) == (200, "SUCCEEDED", "statemachine")
    assert {"features", "loudness"} <= set(done.body["result"])
    assert all(sfn_aws.queue_depth(url) == 0 for url in sfn_aws.queue_urls.values())  # no SQS on this path


def test_resume_of_a_failed_statemachine_invocation_through_the_api(
    sfn_aws: AwsStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    features = stage_module("features").features
    calls: list[int] = []

    def fails_once(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise PermanentStageError("feature backend missing", code="no_backend")
        return features(*args, **kwargs)

    monkeypatch.setattr(stage_module("features"), "features", fails_once)
    accepted = call("POST", "/v1/invocations", {"audio": AUDIO, "mode": "statemachine"}).body
    assert sfn_aws.wait_for_execution(accepted["invocation_id"])["status"] == "FAILED"
    failed = call("GET", accepted["status_url"]).body
    assert failed["status"] == "FAILED"
    assert failed["error"] == {
        "code": "no_backend",
        "message": "feature backend missing",
        "stage": "features",
    }

    status, _, resumed = call("POST", f"{accepted['status_url']}/resume")
    assert status == 202
    assert resumed == {
        "invocation_id": accepted["invocation_id"],
        "status": "RUNNING",
        "mode": "statemachine",
        "resumed_from": "features",
        "status_url": accepted["status_url"],
    }
    [second] = [e["name"] for e in sfn_aws.executions() if e["name"] != accepted["invocation_id"]]
    assert sfn_aws.wait_for_execution(second)["status"] == "SUCCEEDED"
    done = call("GET", accepted["status_url"]).body
    assert done["status"] == "SUCCEEDED"
    assert "error" not in done
    again = call("POST", f"{accepted['status_url']}/resume")
    assert (again.status, again.body["error"]["code"]) == (409, "conflict")


def test_a_mode_not_deployed_is_400(aws: AwsStack) -> None:
    response = call("POST", "/v1/invocations", {"audio": AUDIO, "mode": "statemachine"})
    assert (response.status, response.body["error"]["code"]) == (400, "bad_request")
    assert "not deployed" in response.body["error"]["message"]
    assert invocation_items(aws) == []


# --- bad input ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "code", "fragment"),
    [
        (b"{not json", "bad_request", "not valid JSON"),
        (b"\xff\xfe\x00 binary", "bad_request", "not UTF-8"),
        ([1, 2, 3], "bad_request", ""),
        ({"audio": "@@@"}, "bad_request", "not valid base64"),
        ({"audio": AUDIO[:-3]}, "bad_request", "not valid base64"),  # truncated: bad padding
        ({"audio": 12345}, "bad_request", "audio"),
        ({"audio": GARBAGE}, "invalid_audio", ""),
        ({"audio": ""}, "bad_request", "audio"),  # the document says minLength 1
        ({"audio": AUDIO, "mode": "carrier-pigeon"}, "bad_request", "mode"),
        ({"audio": AUDIO, "extra": 1}, "bad_request", "extra"),
        ({"audio": AUDIO, "audio_key": "uploads/x.wav"}, "bad_request", "exactly one"),
        ({}, "bad_request", "exactly one"),
        ({"audio": None}, "bad_request", "exactly one"),
        ({"audio": AUDIO, "steps": ["teleport"]}, "bad_request", "steps"),
        ({"audio": AUDIO, "steps": "features"}, "bad_request", "steps"),
        ({"audio": AUDIO, "options": {"gain": 3}}, "bad_request", "gain"),
        ({"audio": AUDIO, "options": [1]}, "bad_request", "options"),
        ({"audio_key": "uploads/6f1c1a4e-8a7e-4d6e-9a57-3f0b2d1c0e9a.wav"}, "bad_request", ""),
        ({"audio_key": "invocations/x/input.wav"}, "bad_request", ""),
    ],
)
def test_bad_requests_are_400_json(aws: AwsStack, body: Any, code: str, fragment: str) -> None:
    for path in ("/v1/invocations", "/v1/analyze"):
        if path == "/v1/analyze" and isinstance(body, dict) and "mode" in body:
            continue  # analyze has no mode: the field is unknown there (also a 400, checked below)
        response = call("POST", path, body)
        assert response.status == 400, (path, response.body)
        assert response.body["error"]["code"] == code
        assert fragment.lower() in response.body["error"]["message"].lower()
        assert "@@@" not in response.body["error"]["message"]
        assert AUDIO[:40] not in response.body["error"]["message"]
    assert invocation_items(aws) == []
    assert aws.s3_keys("invocations/") == []


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/octet-stream",
        "multipart/form-data",  # no boundary: Powertools' parser raised a ValueError (was a 500)
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=xyz",
        "audio/wav",
    ],
)
def test_a_body_that_is_not_sent_as_json_is_400(aws: AwsStack, content_type: str) -> None:
    for path, body in (
        ("/v1/invocations", {"audio": AUDIO}),
        ("/v1/analyze", {"audio": AUDIO}),
        ("/v1/uploads", {}),
    ):
        response = call("POST", path, body, {"Content-Type": content_type})
        assert (response.status, response.body["error"]["code"]) == (400, "bad_request"), (
            path,
            response.body,
        )
        assert set(response.body["error"]) == {"code", "message"}
    assert invocation_items(aws) == []


def test_json_content_types_are_accepted(aws: AwsStack) -> None:
    for content_type in ("application/json", "application/json; charset=utf-8", "Application/JSON"):
        response = call("POST", "/v1/invocations", {"audio": AUDIO}, {"content-type": content_type})
        assert response.status == 202, (content_type, response.body)


def test_the_content_type_of_an_empty_body_is_ignored(aws: AwsStack) -> None:
    for content_type in ("text/plain", "multipart/form-data", "application/x-www-form-urlencoded"):
        headers = {"Content-Type": content_type}
        assert call("POST", "/v1/uploads", headers=headers).status == 201, content_type
        missing = call("POST", "/v1/invocations", headers=headers)
        assert (missing.status, missing.body["error"]["code"]) == (400, "bad_request"), content_type
        unknown = call("POST", "/v1/invocations/nope/resume", headers=headers)
        assert (unknown.status, unknown.body["error"]["code"]) == (404, "not_found"), content_type
        assert call("GET", "/v1/health", headers=headers).status == 200


def test_analyze_has_no_mode(aws: AwsStack) -> None:
    response = call("POST", "/v1/analyze", {"audio": AUDIO, "mode": "pipeline"})
    assert (response.status, response.body["error"]["code"]) == (400, "bad_request")


def test_validation_messages_name_the_field_not_the_payload(aws: AwsStack) -> None:
    bad = AUDIO[:4000] + "!!"
    response = call("POST", "/v1/invocations", {"audio": bad, "mode": "x"})
    message = response.body["error"]["message"]
    assert response.status == 400
    assert "audio" in message
    assert "mode" in message
    assert bad[:40] not in message
    assert len(message) < 500
    flood = {"audio": AUDIO, **{f"{n}{'k' * 5000}": n for n in range(20)}}  # many huge unknown keys
    response = call("POST", "/v1/invocations", flood)
    assert (response.status, response.body["error"]["code"]) == (400, "bad_request")
    assert "more" in response.body["error"]["message"]
    assert len(response.body["error"]["message"]) < 1000


def test_oversized_bodies_are_413_before_parsing(aws: AwsStack) -> None:
    aws.monkeypatch.setenv("MAX_INLINE_BYTES", "1000")
    clear_caches()
    response = call("POST", "/v1/invocations", {"audio": AUDIO})
    assert (response.status, response.body["error"]["code"]) == (413, "payload_too_large")
    assert "/v1/uploads" in response.body["error"]["message"]
    not_json = call("POST", "/v1/analyze", b"x" * 200_000)  # refused by size, not parsed
    assert (not_json.status, not_json.body["error"]["code"]) == (413, "payload_too_large")
    assert invocation_items(aws) == []


def test_a_clip_over_the_inline_limit_is_413_even_when_the_body_is_small_enough(aws: AwsStack) -> None:
    aws.monkeypatch.setenv("MAX_INLINE_BYTES", str(len(SPEECH_BYTES) - 1))
    clear_caches()
    for path in ("/v1/invocations", "/v1/analyze"):
        response = call("POST", path, {"audio": AUDIO})
        assert (response.status, response.body["error"]["code"]) == (413, "payload_too_large"), path
    aws.monkeypatch.setenv("MAX_INLINE_BYTES", str(len(SPEECH_BYTES)))
    clear_caches()
    assert call("POST", "/v1/invocations", {"audio": AUDIO}).status == 202


def test_unexpected_errors_are_500_json_without_internals(
    aws: AwsStack, monkeypatch: pytest.MonkeyPatch, log_stream: io.StringIO
) -> None:
    def broken(invocation_id: str, owner: str | None = None) -> dict[str, Any]:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(service, "get_invocation", broken)
    response = call("GET", "/v1/invocations/abc", headers={"X-Correlation-Id": "boom-1"})
    assert response.status == 500
    assert response.body["error"]["code"] == "internal"
    assert "secret" not in response.raw["body"]
    assert "Traceback" not in response.raw["body"]
    assert response.headers["X-Correlation-Id"] == "boom-1"
    [logged] = [line for line in json_lines(log_stream.getvalue()) if line["level"] == "ERROR"]
    assert "secret internal detail" in logged["exception"]  # logged, with the request's correlation id
    assert logged["correlation_id"] == "boom-1"


# --- correlation ids and logs -------------------------------------------------------------------------------


def test_correlation_ids(aws: AwsStack) -> None:
    given_id = call("GET", "/v1/health", headers={"X-Correlation-Id": "ok-id_1.2"})
    assert given_id.headers["X-Correlation-Id"] == "ok-id_1.2"
    lower_case_header = call("GET", "/v1/health", headers={"x-correlation-id": "lower-1"})
    assert lower_case_header.headers["X-Correlation-Id"] == "lower-1"
    for invalid in ("bad id with spaces", "x" * 129, "semi;colon", ""):
        response = call("GET", "/v1/health", headers={"X-Correlation-Id": invalid}, request_id="req-123")
        assert response.headers["X-Correlation-Id"] == "req-123", invalid
    assert call("GET", "/v1/health", request_id="req-456").headers["X-Correlation-Id"] == "req-456"
    event = api_event("GET", "/v1/health")
    del event["requestContext"]
    from harmonic_service.handlers import api
    from tests.integration.api_events import FakeLambdaContext

    generated = api.handler(event, FakeLambdaContext())["headers"]["X-Correlation-Id"]
    assert len(generated) == 36  # a uuid4
    errors = call("GET", "/v1/nowhere", headers={"X-Correlation-Id": "err-1"})
    assert errors.headers["X-Correlation-Id"] == "err-1"  # on error responses too


def test_logs_hold_no_audio_nor_presigned_urls_and_metrics_are_emitted(
    aws: AwsStack, capsys: pytest.CaptureFixture[str], log_stream: io.StringIO
) -> None:
    call("POST", "/v1/invocations", {"audio": AUDIO}, {"X-Correlation-Id": "log-1"})
    call("POST", "/v1/analyze", {"audio": AUDIO + "!"})
    upload = call("POST", "/v1/uploads", {"content_length": 10})
    aws.drain()
    logs = log_stream.getvalue()
    assert logs
    for text in (logs, capsys.readouterr().out):
        assert AUDIO[:40] not in text
        assert AUDIO[-40:] not in text
        assert upload.body["upload_url"] not in text
        assert "X-Amz-Signature" not in text
    lines = json_lines(logs)
    requests_logged = [line for line in lines if line["message"] == "request"]
    assert [line["status"] for line in requests_logged] == [202, 400, 201]
    assert requests_logged[0]["correlation_id"] == "log-1"
    stage_lines = [line for line in lines if line.get("stage") and line.get("correlation_id") == "log-1"]
    assert stage_lines  # the id travelled with the envelopes into the stages' logs


def test_metrics_are_emitted(aws: AwsStack, capsys: pytest.CaptureFixture[str]) -> None:
    call("GET", "/v1/health")
    metrics = [line for line in json_lines(capsys.readouterr().out) if "_aws" in line]
    assert any(line.get("ApiRequests") == [1.0] for line in metrics)


# --- fuzzing ------------------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
request_like = st.fixed_dictionaries(
    {},
    optional={
        "audio": st.one_of(
            st.text(max_size=40),
            st.just(GARBAGE),
            st.binary(max_size=30).map(lambda raw: base64.b64encode(raw).decode()),
        ),
        "audio_key": st.one_of(st.text(max_size=40), st.just("uploads/../../etc/passwd")),
        "mode": st.one_of(st.sampled_from(["pipeline", "statemachine", "PIPELINE", ""]), json_values),
        "steps": st.one_of(
            st.lists(st.sampled_from(["denoise", "match", "ingest", "x"]), max_size=4), json_values
        ),
        "options": st.one_of(
            st.dictionaries(
                st.sampled_from(["target_lufs", "peak_dbfs", "clean_snr_db", "gain"]),
                st.one_of(st.floats(), st.integers(), st.text(max_size=5), st.none()),
                max_size=3,
            ),
            json_values,
        ),
    },
)


content_types = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "application/json",
            "application/json; charset=utf-8",
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=b",
            "multipart/form-data",
        ]
    ),
    st.text(max_size=30),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=json_values | request_like | st.binary(max_size=64) | st.text(max_size=64),
    content_type=content_types,
)
def test_fuzzed_bodies_never_get_a_5xx(aws: AwsStack, body: Any, content_type: str | None) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    for path in ("/v1/invocations", "/v1/analyze", "/v1/uploads", "/v1/patterns"):
        raw = body if isinstance(body, bytes | str) else json.dumps(body, allow_nan=True)
        response = call("POST", path, raw, headers)
        assert response.status < 500, (path, body, response.body)
        if response.status >= 400:
            assert set(response.body["error"]) == {"code", "message"}


def test_created_and_accepted_answers_say_where_and_a_204_has_no_body(aws: AwsStack) -> None:
    accepted = call("POST", "/v1/invocations", {"audio": AUDIO})
    assert accepted.status == 202
    assert accepted.headers["Location"] == f"/v1/invocations/{accepted.body['invocation_id']}"
    upload = call("POST", "/v1/uploads", {})
    assert upload.status == 201
    assert upload.headers["Location"] == upload.body["upload_url"]
    created = call("POST", "/v1/patterns", {"name": "speech", "kind": "fingerprint", "audio": AUDIO})
    assert created.status == 201
    location = created.headers["Location"]
    assert location == f"/v1/patterns/{created.body['pattern_id']}"
    assert call("GET", location).status == 200
    deleted = call("DELETE", location)
    assert deleted.status == 204
    assert not deleted.raw.get("body")
    assert "Content-Type" not in deleted.headers


# --- the console's backend: history, pattern examples, time series, CORS -----------------------------------

KEYWORD = Path(__file__).resolve().parents[1] / "data" / "keywords" / "enrol_weather_0.wav"


def _submitted(count: int) -> list[str]:
    """Ids of `count` invocations submitted one after the other (a few ms apart: distinct creation times)."""
    ids = []
    for _ in range(count):
        accepted = call("POST", "/v1/invocations", {"audio": AUDIO})
        assert accepted.status == 202, accepted.body
        ids.append(accepted.body["invocation_id"])
        time.sleep(0.005)
    return ids


def test_the_history_lists_the_callers_invocations_newest_first(aws: AwsStack) -> None:
    finished = _submitted(2)
    aws.drain()
    waiting = _submitted(1)
    listed = call("GET", "/v1/invocations")
    assert listed.status == 200
    assert set(listed.body) == {"invocations", "count", "next_token"}
    assert (listed.body["count"], listed.body["next_token"]) == (3, None)
    newest_first = [*waiting, *reversed(finished)]
    assert [item["invocation_id"] for item in listed.body["invocations"]] == newest_first
    for item in listed.body["invocations"]:
        assert set(item) == {"invocation_id", "status", "mode", "created_at", "finished_at", "status_url"}
        assert item["status_url"] == f"/v1/invocations/{item['invocation_id']}"
        assert item["mode"] == "pipeline"
        document = call("GET", item["status_url"]).body
        assert (item["status"], item["created_at"]) == (document["status"], document["created_at"])
    first, second, third = listed.body["invocations"]
    assert (first["status"], first["finished_at"]) == ("ACCEPTED", None)  # still to run
    for ended in (second, third):
        assert ended["status"] == "SUCCEEDED"
        document = call("GET", ended["status_url"]).body
        respond = next(stage for stage in document["stages"] if stage["name"] == "respond")
        assert ended["finished_at"] == respond["finished_at"]  # the end of its last stage
    assert third["created_at"] < second["created_at"] < first["created_at"]


def test_the_history_pages_with_limit_and_next_token(aws: AwsStack) -> None:
    newest_first = list(reversed(_submitted(5)))
    seen, token, pages = [], None, 0
    while True:
        query = {"limit": "2", **({"next_token": token} if token else {})}
        page = call("GET", "/v1/invocations", query=query)
        assert page.status == 200, page.body
        pages += 1
        assert page.body["count"] == len(page.body["invocations"]) <= 2
        seen += [item["invocation_id"] for item in page.body["invocations"]]
        token = page.body["next_token"]
        if token is None:
            break
    assert (seen, pages) == (newest_first, 3)  # 2 + 2 + 1, and no empty page after the last
    exact = call("GET", "/v1/invocations", query={"limit": "5"}).body
    assert (exact["count"], exact["next_token"]) == (5, None)  # exactly a page: no next page to ask for
    assert call("GET", "/v1/invocations", query={"limit": "100"}).body["count"] == 5


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "-3"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": "2.5"}, "limit"),
        ({"next_token": "not-a-token"}, "next_token"),
        ({"next_token": "eyJ2IjoxfQ"}, "next_token"),  # base64url of {"v":1}: decodes, but is not a token
        ({"next_token": "x" * 600}, "next_token"),
    ],
)
def test_a_bad_limit_or_next_token_is_a_400_naming_it(aws: AwsStack, query: dict, parameter: str) -> None:
    refused = call("GET", "/v1/invocations", query=query)
    assert refused.status == 400, refused.body
    assert refused.body["error"]["code"] == "bad_request"
    assert parameter in refused.body["error"]["message"]


def test_a_next_token_edited_into_another_position_or_owner_is_refused(aws: AwsStack) -> None:
    _submitted(3)
    token = call("GET", "/v1/invocations", query={"limit": "1"}).body["next_token"]
    payload = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    for forged in ({**payload, "o": "0" * 16}, {**payload, "c": "yesterday"}, {**payload, "i": "../x"}):
        raw = base64.urlsafe_b64encode(json.dumps(forged).encode()).decode().rstrip("=")
        refused = call("GET", "/v1/invocations", query={"next_token": raw})
        assert (refused.status, refused.body["error"]["code"]) == (400, "bad_request"), forged
        assert "next_token" in refused.body["error"]["message"]


def test_a_patterns_example_is_kept_and_served_by_a_presigned_url(aws: AwsStack) -> None:
    requests = pytest.importorskip("requests")
    example = KEYWORD.read_bytes()
    created = call(
        "POST",
        "/v1/patterns",
        {"name": "weather", "kind": "template", "audio": base64.b64encode(example).decode()},
    )
    assert created.status == 201, created.body
    pattern_id = created.body["pattern_id"]
    served = call("GET", f"/v1/patterns/{pattern_id}/example")
    assert served.status == 200, served.body
    assert set(served.body) == {"url", "content_type", "expires_in"}
    assert served.body["content_type"] == "audio/wav"
    assert served.body["expires_in"] == 900
    fetched = requests.get(served.body["url"], timeout=10)  # moto intercepts it
    assert fetched.status_code == 200
    assert fetched.content == example  # the bytes as registered
    assert fetched.headers["Content-Type"] == "audio/wav"

    assert call("DELETE", f"/v1/patterns/{pattern_id}").status == 204
    assert aws.s3_keys("patterns/") == []  # the example goes with the pattern
    gone = call("GET", f"/v1/patterns/{pattern_id}/example")
    assert (gone.status, gone.body["error"]["code"]) == (404, "not_found")
    unknown = call("GET", "/v1/patterns/00000000-0000-4000-8000-000000000000/example")
    assert (unknown.status, unknown.body["error"]["code"]) == (404, "not_found")


def test_a_pattern_registered_before_examples_were_kept_has_none(aws: AwsStack) -> None:
    created = call("POST", "/v1/patterns", {"name": "speech", "kind": "fingerprint", "audio": AUDIO})
    pattern_id = created.body["pattern_id"]
    # as an item of the earlier registry: no example_key, no example_content_type, no example object
    boto3.client("dynamodb", region_name=REGION).update_item(
        TableName=PATTERNS_TABLE,
        Key={"pattern_id": {"S": pattern_id}},
        UpdateExpression="REMOVE example_key, example_content_type",
    )
    aws.s3.delete_object(Bucket=aws.bucket, Key=f"patterns/{pattern_id}/example.wav")
    missing = call("GET", f"/v1/patterns/{pattern_id}/example")
    assert (missing.status, missing.body["error"]["code"]) == (404, "not_found")
    assert "registered before examples were kept" in missing.body["error"]["message"]
    assert call("GET", f"/v1/patterns/{pattern_id}").status == 200  # the pattern itself is still there
    assert call("DELETE", f"/v1/patterns/{pattern_id}").status == 204
    assert aws.s3_keys("patterns/") == []


def test_the_status_document_and_analyze_carry_the_time_series(aws: AwsStack) -> None:
    """A 30 s tone (200 Hz from 10 s to 20 s): the features summary is then too large for the checkpoint
    item (it is read back from S3) and the track has two frames per value (3,001 frames of 10 ms are more
    than 2,000): 1,501 values 0.02 s apart."""
    sr = 16_000
    t = np.arange(30 * sr) / sr
    tone = np.where((t >= 10.0) & (t < 20.0), 0.3 * np.sin(2 * np.pi * 200.0 * t), 0.0)
    clip = base64.b64encode(wav_bytes(tone, sr)).decode()
    accepted = call("POST", "/v1/invocations", {"audio": clip})
    aws.drain()
    done = call("GET", accepted.body["status_url"]).body
    assert done["status"] == "SUCCEEDED", done.get("error")
    item = boto3.client("dynamodb", region_name=REGION).get_item(
        TableName=aws.invocations_table,
        Key={"invocation_id": {"S": accepted.body["invocation_id"]}},
    )["Item"]
    assert '"in_s3":true' in item["stages"]["M"]["features"]["M"]["summary"]["S"]
    features = done["result"]["features"]
    track = features["f0_track"]
    assert (track["hop_s"], len(track["hz"])) == (0.02, 1501)
    assert [track["hz"][250], track["hz"][1250]] == [None, None]  # 5 s and 25 s: silence
    assert track["hz"][750] == pytest.approx(200.0, rel=0.005)  # 15 s
    ((start, end),) = features["voiced_regions"]
    assert (start, end) == pytest.approx((10.0, 20.0), abs=0.02)

    analyzed = call("POST", "/v1/analyze", {"audio": clip})
    assert analyzed.status == 200
    assert analyzed.body["features"]["f0_track"] == track
    assert analyzed.body["features"]["voiced_regions"] == features["voiced_regions"]


CONSOLE = "https://console.example.com"


def _cors_headers(response: Any) -> dict[str, str]:
    return {
        name: value for name, value in response.headers.items() if name.lower().startswith("access-control")
    }


def test_cors_headers_only_for_the_configured_origin(aws: AwsStack) -> None:
    from_console = {"Origin": CONSOLE}
    assert _cors_headers(call("GET", "/v1/health", headers=from_console)) == {}  # not configured: none

    aws.monkeypatch.setenv("CORS_ALLOW_ORIGIN", CONSOLE)
    clear_caches()
    allowed = call("GET", "/v1/health", headers=from_console)
    assert allowed.status == 200
    assert allowed.headers["Access-Control-Allow-Origin"] == CONSOLE
    exposed = {h.strip() for h in allowed.headers["Access-Control-Expose-Headers"].split(",")}
    assert exposed == {"Location", "Retry-After", "X-Correlation-Id"}
    allowed_headers = {h.strip().lower() for h in allowed.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"content-type", "x-api-key", "idempotency-key", "x-correlation-id"} <= allowed_headers
    assert "Access-Control-Allow-Credentials" not in allowed.headers
    # errors too: the function's own, and those refused before routing
    for response in (
        call("GET", "/v1/invocations/does-not-exist", headers=from_console),
        call("POST", "/v1/analyze", "x" * (10 * 1024 * 1024), headers=from_console),
        call("POST", "/v1/analyze", "not json", headers={**from_console, "Content-Type": "text/plain"}),
    ):
        assert response.status in (400, 404, 413)
        assert response.headers["Access-Control-Allow-Origin"] == CONSOLE
    assert _cors_headers(call("GET", "/v1/health", headers={"Origin": "https://elsewhere.example"})) == {}
    assert _cors_headers(call("GET", "/v1/health")) == {}  # no Origin: not a cross-origin request

    aws.monkeypatch.delenv("CORS_ALLOW_ORIGIN")
    clear_caches()
    assert _cors_headers(call("GET", "/v1/health", headers=from_console)) == {}


# --- fingerprints: the recording, not another rendition of its notes ----------------------------------------


def _melody(partials: tuple[float, ...], seconds: float = 20.0, sr: int = 16_000) -> np.ndarray:
    """A fixed melody of single decaying notes (rests between some) played with `partials`."""
    rng = np.random.default_rng(11)
    y = np.zeros(int(seconds * sr))
    t0 = 0.0
    while t0 < seconds - 1.0:
        length = float(rng.choice([0.25, 0.5, 0.75]))
        f = 220.0 * 2 ** (int(rng.integers(0, 15)) / 12)
        t = np.arange(int(length * sr)) / sr
        note = sum(a * np.sin(2 * np.pi * (k + 1) * f * t) for k, a in enumerate(partials))
        start = int(t0 * sr)
        y[start : start + t.size] += np.exp(-3 * t) * np.minimum(1, t * 100) * note
        t0 += length + float(rng.choice([0.0, 0.1]))
    return 0.5 * y / np.max(np.abs(y))


def test_a_re_orchestration_matches_a_fingerprint_only_when_near_duplicates_are_asked_for(
    aws: AwsStack,
) -> None:
    """The match stage leaves out another rendition of a registered recording's notes unless
    options.near_duplicates (harmonic.fingerprint.is_other_rendition); the recording itself is found."""
    recording = _melody((1.0, 0.25))
    created = call(
        "POST",
        "/v1/patterns",
        {
            "name": "theme",
            "kind": "fingerprint",
            "audio": base64.b64encode(wav_bytes(recording, 16_000)).decode(),
        },
    )
    assert created.status == 201, created.body
    excerpt = slice(4 * 16_000, 9 * 16_000)  # 5 s from 4 s in

    def theme_matches(clip: np.ndarray, **options: Any) -> list[dict[str, Any]]:
        body: dict[str, Any] = {
            "audio": base64.b64encode(wav_bytes(clip, 16_000)).decode(),
            "steps": ["match"],
        }
        if options:
            body["options"] = options
        response = call("POST", "/v1/analyze", body)
        assert response.status == 200, response.body
        return [m for m in response.body["matches"] if m["name"] == "theme"]

    itself = theme_matches(recording[excerpt])
    assert len(itself) == 1
    assert itself[0]["start_s"] == pytest.approx(4.0, abs=0.05)
    richer = _melody((1.0, 0.5, 0.33, 0.25, 0.2))[excerpt]  # the same notes on a sawtooth-like instrument
    assert theme_matches(richer) == []
    assert theme_matches(richer, near_duplicates=False) == []
    near = theme_matches(richer, near_duplicates=True)
    assert len(near) == 1
    assert near[0]["start_s"] == pytest.approx(4.0, abs=0.05)
    refused = call("POST", "/v1/analyze", {"audio": AUDIO, "options": {"near_duplicates": "yes"}})
    assert refused.status == 400
    assert "near_duplicates" in refused.body["error"]["message"]
