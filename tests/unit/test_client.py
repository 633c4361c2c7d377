"""The client against a scripted HTTP server: retries, Retry-After, errors, auth headers, uploads."""

from __future__ import annotations

import json

import pytest

from harmonic_client import ApiError, Client
from tests.unit.conftest import json_response as _json


def test_retries_429_and_5xx_honouring_retry_after(server) -> None:
    url, script = server
    script.responses += [_json(429, {}, **{"Retry-After": "3"}), _json(503, {}), _json(200, {"status": "ok"})]
    client = Client(url, auth="none")
    waits: list[float] = []
    client.sleep = waits.append
    assert client.health() == {"status": "ok"}
    assert len(script.requests) == 3
    assert waits[0] >= 3.0  # Retry-After wins over a shorter backoff
    assert 0 < waits[1] <= 0.4


def test_4xx_is_not_retried_and_carries_the_server_message(server) -> None:
    url, script = server
    script.responses.append(_json(400, {"error": {"code": "bad_request", "message": "mode: unknown"}}))
    with pytest.raises(ApiError) as refused:
        Client(url, auth="none").status("x")
    assert (refused.value.status, refused.value.code, refused.value.message) == (
        400,
        "bad_request",
        "mode: unknown",
    )
    assert len(script.requests) == 1


def test_gives_up_after_max_retries(server) -> None:
    url, script = server
    script.responses += [_json(500, {"error": {"code": "internal", "message": "boom"}})] * 3
    client = Client(url, auth="none", max_retries=2)
    client.sleep = lambda _: None
    with pytest.raises(ApiError, match="500 internal: boom"):
        client.health()


def test_api_key_and_sigv4_headers(server, monkeypatch: pytest.MonkeyPatch) -> None:
    url, script = server
    Client(url, api_key="k-123").health()
    assert script.requests[-1]["headers"]["x-api-key"] == "k-123"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    Client(url, auth="iam", region="eu-west-1").health()
    authorization = script.requests[-1]["headers"]["authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/execute-api/aws4_request" in authorization


def test_region_and_auth_guessed_from_a_deployed_endpoint() -> None:
    client = Client("https://abc123.execute-api.ap-south-1.amazonaws.com/prod")
    assert (client.auth, client.region) == ("iam", "ap-south-1")
    assert Client("http://127.0.0.1:9").auth == "none"


def test_large_clips_go_through_a_presigned_upload(server) -> None:
    url, script = server
    upload = {
        "audio_key": "uploads/k.wav",
        "upload_url": f"{url}/bucket/uploads/k.wav?sig=1",
        "expires_in": 900,
    }
    script.responses += [
        _json(201, upload),
        (200, {}, b""),
        _json(202, {"invocation_id": "i-1", "status": "ACCEPTED"}),
    ]
    client = Client(url, auth="none", inline_limit_bytes=10)
    accepted = client.submit(b"RIFF" + bytes(100), mode="pipeline", idempotency_key="idem-1")
    assert accepted["invocation_id"] == "i-1"
    create, put, submit = script.requests
    assert json.loads(create["body"]) == {"content_length": 104}
    assert (put["method"], put["path"], len(put["body"])) == ("PUT", "/bucket/uploads/k.wav?sig=1", 104)
    assert json.loads(submit["body"]) == {"audio_key": "uploads/k.wav", "mode": "pipeline"}
    assert submit["headers"]["idempotency-key"] == "idem-1"


def test_every_creation_carries_an_idempotency_key_and_its_retry_the_same(server) -> None:
    url, script = server
    accepted = {"invocation_id": "i-1", "status": "ACCEPTED", "mode": "pipeline"}
    script.responses += [_json(503, {}), _json(202, accepted), _json(201, {"pattern_id": "p"})]
    client = Client(url, auth="none")
    client.sleep = lambda _: None
    assert client.submit(b"RIFF....WAVE", mode="pipeline")["invocation_id"] == "i-1"
    first, retried = (request["headers"].get("idempotency-key") for request in script.requests[:2])
    assert first
    assert first == retried  # the retry is recognised as the same submission
    client.add_pattern("kw", b"RIFF....WAVE")
    pattern_key = script.requests[2]["headers"].get("idempotency-key")
    assert pattern_key
    assert pattern_key != first
    client.submit(b"RIFF....WAVE", idempotency_key="mine")
    assert script.requests[-1]["headers"]["idempotency-key"] == "mine"


def test_a_creation_without_a_key_is_not_retried_after_a_5xx(server) -> None:
    url, script = server
    refused = _json(502, {"error": {"code": "bad_gateway", "message": "upstream"}})
    script.responses += [refused, _json(202, {})]
    client = Client(url, auth="none")
    client.sleep = lambda _: None
    with pytest.raises(ApiError) as failed:
        client.request("POST", "/v1/invocations", {"audio": "x"})  # no Idempotency-Key: may have worked
    assert failed.value.status == 502
    assert len(script.requests) == 1
    script.responses[:] = [_json(429, {}), _json(200, {"audio": {}})]
    client.request("POST", "/v1/invocations", {"audio": "x"})  # a 429 was refused before any work
    assert len(script.requests) == 3


def test_wait_backs_off_and_honours_retry_after(server) -> None:
    url, script = server
    running = {"invocation_id": "i", "status": "RUNNING", "stages": []}
    script.responses += [_json(200, running)] * 6 + [_json(200, running, **{"Retry-After": "3"})]
    script.responses.append(_json(200, {**running, "status": "SUCCEEDED"}))
    client = Client(url, auth="none")
    waits: list[float] = []
    client.sleep = waits.append
    assert client.wait("i")["status"] == "SUCCEEDED"
    assert waits[:6] == pytest.approx([0.25, 0.375, 0.5625, 0.84375, 1.265625, 1.8984375])
    assert waits[6] == 3.0  # Retry-After beats the 2 s ceiling it had reached
    fixed = Client(url, auth="none")
    fixed.sleep = waits.append
    script.responses += [_json(200, running), _json(200, {**running, "status": "FAILED"})]
    fixed.wait("i", poll_s=0.02)
    assert waits[-1] == 0.02
