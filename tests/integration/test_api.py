"""The API handler under moto, route by route (the same handler the local stack serves over HTTP)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from harmonic_service.config import clear_caches
from harmonic_service.handlers import api
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from local.http_front import proxy_event
from local.stack import FakeLambdaContext

SPEECH = Path(__file__).resolve().parents[1] / "data" / "speech" / "en_us_m.wav"
AUDIO = base64.b64encode(SPEECH.read_bytes()).decode()


def call(method: str, path: str, body: Any = None, headers: dict[str, str] | None = None):
    raw = body if isinstance(body, bytes) else (json.dumps(body).encode() if body is not None else b"")
    response = api.handler(proxy_event(method, path, headers or {}, raw), FakeLambdaContext("harmonic-api"))
    merged = {
        **{k: v[-1] for k, v in (response.get("multiValueHeaders") or {}).items()},
        **response["headers"],
    }
    payload = json.loads(response["body"]) if response.get("body") else None
    return response["statusCode"], merged, payload


def test_health(aws) -> None:
    status, _, body = call("GET", "/v1/health")
    assert (status, body) == (200, {"status": "ok", "modes": ["pipeline"]})


def test_submit_drain_and_read_the_result(aws) -> None:
    status, headers, accepted = call(
        "POST", "/v1/invocations", {"audio": AUDIO}, {"X-Correlation-Id": "it-1"}
    )
    assert status == 202
    assert accepted["status"] == "ACCEPTED"
    assert accepted["status_url"] == f"/v1/invocations/{accepted['invocation_id']}"
    assert headers["X-Correlation-Id"] == "it-1"
    aws.drain()
    status, _, body = call("GET", accepted["status_url"])
    assert status == 200
    assert body["status"] == "SUCCEEDED"
    assert {"features", "loudness"} <= set(body["result"])
    assert "error" not in body


def test_analyze_and_uploads(aws) -> None:
    status, _, result = call("POST", "/v1/analyze", {"audio": AUDIO, "steps": ["features"]})
    assert status == 200
    assert result["features"]["duration_s"] > 1
    status, _, upload = call("POST", "/v1/uploads", {"content_length": SPEECH.stat().st_size})
    assert status == 201
    assert upload["upload_url"].startswith("https://")
    aws.s3.put_object(Bucket=aws.bucket, Key=upload["audio_key"], Body=SPEECH.read_bytes())
    status, _, _ = call("POST", "/v1/invocations", {"audio_key": upload["audio_key"]})
    assert status == 202
    assert call("POST", "/v1/uploads")[0] == 201  # the body is optional
    assert call("POST", "/v1/uploads", {"content_length": 10**12})[0] == 413
    assert call("POST", "/v1/uploads", {"content_length": -1})[0] == 400


def test_idempotency_key(aws) -> None:
    headers = {"Idempotency-Key": "key-1"}
    first = call("POST", "/v1/invocations", {"audio": AUDIO}, headers)
    second = call("POST", "/v1/invocations", {"audio": AUDIO}, headers)
    assert first[0] == second[0] == 202
    assert first[2]["invocation_id"] == second[2]["invocation_id"]
    assert aws.queue_depth(aws.queue_urls["ingest"]) == 1  # submitted once
    status, _, body = call("POST", "/v1/invocations", {"audio": AUDIO, "steps": ["features"]}, headers)
    assert (status, body["error"]["code"]) == (409, "idempotency_conflict")


def test_resume_conflict_and_not_found(aws) -> None:
    _, _, accepted = call("POST", "/v1/invocations", {"audio": AUDIO})
    status, _, body = call("POST", f"/v1/invocations/{accepted['invocation_id']}/resume")
    assert (status, body["error"]["code"]) == (409, "conflict")
    assert call("GET", "/v1/invocations/nope")[0] == 404
    assert call("POST", "/v1/invocations/nope/resume")[0] == 404
    status, _, body = call("GET", "/v1/nowhere")
    assert (status, body["error"]["code"]) == (404, "not_found")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", "bad_request"),
        ({"audio": "@@@"}, "bad_request"),
        ({"audio": AUDIO, "mode": "carrier-pigeon"}, "bad_request"),
        ({"audio": AUDIO, "extra": 1}, "bad_request"),
        ({"audio": AUDIO, "audio_key": "uploads/x.wav"}, "bad_request"),
        ({}, "bad_request"),
        ({"audio": AUDIO, "steps": ["teleport"]}, "bad_request"),
        ({"audio": base64.b64encode(b"not a wav file at all").decode()}, "invalid_audio"),
    ],
)
def test_bad_requests(aws, body, code) -> None:
    for path in ("/v1/invocations", "/v1/analyze"):
        status, _, payload = call("POST", path, body)
        assert status == 400, (path, payload)
        assert payload["error"]["code"] == code
        assert "@@@" not in payload["error"]["message"]


def test_oversized_body_is_413(aws) -> None:
    aws.monkeypatch.setenv("MAX_INLINE_BYTES", "1000")
    clear_caches()
    status, _, body = call("POST", "/v1/invocations", {"audio": AUDIO})
    assert (status, body["error"]["code"]) == (413, "payload_too_large")


def test_correlation_ids(aws) -> None:
    assert (
        call("GET", "/v1/health", headers={"X-Correlation-Id": "ok-id_1"})[1]["X-Correlation-Id"] == "ok-id_1"
    )
    replaced = call("GET", "/v1/health", headers={"X-Correlation-Id": "bad id with spaces"})[1]
    assert replaced["X-Correlation-Id"] != "bad id with spaces"


def test_logs_hold_no_audio_and_metrics_are_emitted(aws, capsys: pytest.CaptureFixture[str]) -> None:
    call("POST", "/v1/invocations", {"audio": AUDIO})
    out = capsys.readouterr().out
    assert AUDIO[:40] not in out
    assert '"ApiRequests"' in out


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=json_values | st.binary(max_size=64))
def test_fuzzed_bodies_never_get_a_5xx(aws, body) -> None:
    for path in ("/v1/invocations", "/v1/analyze", "/v1/uploads", "/v1/patterns"):
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        status, _, payload = call("POST", path, raw)
        assert status < 500, (path, body, payload)
        if status >= 400:
            assert set(payload["error"]) == {"code", "message"}
