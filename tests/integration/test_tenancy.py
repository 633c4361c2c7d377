"""Callers see their own, through the API with two callers (and a publisher): an invocation or a pattern of
another caller is a 404 exactly like an unknown id, it is never matched for them, an Idempotency-Key is
each caller's own, and a deployment's publishers share patterns that everyone matches and only they may
delete (403 for the others: they see them)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from harmonic_service.config import clear_caches
from tests.integration.api_events import ApiResponse, call
from tests.integration.conftest import AwsStack

KEYWORDS = Path(__file__).resolve().parents[1] / "data" / "keywords"
ACCOUNT = "123456789012"
# Alice: an IAM role (two sessions of it are one caller); Bob: an API key; the publisher: another key.
ALICE = {"userArn": f"arn:aws:sts::{ACCOUNT}:assumed-role/AliceRole/session-1"}
ALICE_AGAIN = {"userArn": f"arn:aws:sts::{ACCOUNT}:assumed-role/AliceRole/another-session"}
BOB = {"apiKeyId": "bobkey0001"}
PUBLISHER = {"apiKeyId": "publisher01"}


@pytest.fixture
def tenants(aws: AwsStack, monkeypatch: pytest.MonkeyPatch) -> AwsStack:
    monkeypatch.setenv("SHARED_PATTERN_OWNERS", json.dumps([f"apikey:{PUBLISHER['apiKeyId']}"]))
    clear_caches()
    return aws


def _audio(name: str) -> str:
    return base64.b64encode((KEYWORDS / name).read_bytes()).decode("ascii")


def _as(identity: dict[str, str], method: str, path: str, body: Any = None, **kwargs: Any) -> ApiResponse:
    return call(method, path, body, identity=identity, **kwargs)


def _register(identity: dict[str, str], name: str, files: list[str]) -> list[str]:
    ids = []
    for file in files:
        created = _as(
            identity, "POST", "/v1/patterns", {"name": name, "kind": "template", "audio": _audio(file)}
        )
        assert created.status == 201, created.body
        ids.append(created.body["pattern_id"])
    return ids


def _submit(identity: dict[str, str], file: str, **extra: Any) -> str:
    accepted = _as(identity, "POST", "/v1/invocations", {"audio": _audio(file), **extra})
    assert accepted.status == 202, accepted.body
    return accepted.body["invocation_id"]


def _not_found_like_an_unknown_id(response: ApiResponse, path: str, invocation_id: str) -> None:
    unknown = "00000000-0000-4000-8000-000000000000"
    reference = _as(BOB, "GET", path.replace(invocation_id, unknown))
    assert response.status == reference.status == 404
    assert response.body["error"]["code"] == reference.body["error"]["code"] == "not_found"
    assert response.body["error"]["message"] == reference.body["error"]["message"].replace(
        unknown, invocation_id
    )


def test_another_callers_invocation_does_not_exist_for_them(tenants: AwsStack) -> None:
    invocation_id = _submit(ALICE, "query_weather_0.wav")
    path = f"/v1/invocations/{invocation_id}"
    assert _as(ALICE, "GET", path).status == 200
    assert _as(ALICE_AGAIN, "GET", path).status == 200  # another session of the same role
    _not_found_like_an_unknown_id(_as(BOB, "GET", path), path, invocation_id)
    assert _as(BOB, "GET", f"{path}/events").status == 404
    assert _as(BOB, "POST", f"{path}/resume").status == 404
    assert _as(PUBLISHER, "GET", path).status == 404  # publishers share patterns, not invocations
    tenants.drain()
    assert _as(ALICE, "GET", path).body["status"] == "SUCCEEDED"
    assert _as(BOB, "GET", path).status == 404


def test_patterns_are_their_owners_and_matched_only_for_them(tenants: AwsStack) -> None:
    weather = _register(ALICE, "weather", [f"enrol_weather_{k}.wav" for k in range(3)])
    listed = _as(BOB, "GET", "/v1/patterns")
    assert listed.status == 200
    assert listed.body == {"patterns": [], "count": 0}
    assert {p["pattern_id"] for p in _as(ALICE, "GET", "/v1/patterns").body["patterns"]} == set(weather)
    assert _as(BOB, "GET", f"/v1/patterns/{weather[0]}").status == 404
    assert _as(BOB, "DELETE", f"/v1/patterns/{weather[0]}").status == 404
    assert _as(BOB, "POST", f"/v1/patterns/{weather[0]}/rebuild").status == 404
    assert _as(ALICE, "GET", f"/v1/patterns/{weather[0]}").status == 200  # still there
    assert _as(ALICE, "GET", f"/v1/patterns/{weather[0]}").body.get("rebuilt_at") is None  # untouched
    refused = _as(
        BOB,
        "POST",
        "/v1/invocations",
        {"audio": _audio("query_weather_0.wav"), "options": {"patterns": ["weather"]}},
    )
    assert refused.status == 400
    assert "'weather'" in refused.body["error"]["message"]

    alices = _submit(ALICE, "query_weather_0.wav")
    bobs = _submit(BOB, "query_weather_0.wav")
    tenants.drain()
    alice_result = _as(ALICE, "GET", f"/v1/invocations/{alices}").body
    bob_result = _as(BOB, "GET", f"/v1/invocations/{bobs}").body
    assert [m["name"] for m in alice_result["result"]["matches"]][:1] == ["weather"]
    match_stage = {s["name"]: s for s in bob_result["stages"]}["match"]
    assert match_stage["status"] == "SKIPPED"
    assert match_stage["reason"] == "no patterns registered"
    analyzed = _as(BOB, "POST", "/v1/analyze", {"audio": _audio("query_weather_0.wav")})
    assert analyzed.status == 200
    assert analyzed.body["matches"] == []
    assert (
        _as(ALICE, "POST", "/v1/analyze", {"audio": _audio("query_weather_0.wav")}).body["matches"][0]["name"]
        == "weather"
    )
    assert _as(ALICE, "DELETE", f"/v1/patterns/{weather[0]}").status == 204


def test_a_publishers_patterns_are_shared_and_read_only(tenants: AwsStack) -> None:
    (music,) = _register(PUBLISHER, "music", ["enrol_music_0.wav"])
    for caller in (ALICE, BOB):
        (shared,) = _as(caller, "GET", "/v1/patterns").body["patterns"]
        assert shared["pattern_id"] == music
        assert shared["shared"] is True
        for method, path in (("DELETE", f"/v1/patterns/{music}"), ("POST", f"/v1/patterns/{music}/rebuild")):
            refused = _as(caller, method, path)
            assert refused.status == 403
            assert refused.body["error"]["code"] == "read_only"
    assert _as(PUBLISHER, "GET", f"/v1/patterns/{music}").body["shared"] is False  # its own
    assert _as(PUBLISHER, "POST", f"/v1/patterns/{music}/rebuild").status == 200  # and its to rebuild
    bobs = _submit(BOB, "query_music_0.wav", options={"patterns": ["music"]})
    tenants.drain()
    matches = _as(BOB, "GET", f"/v1/invocations/{bobs}").body["result"]["matches"]
    assert [m["pattern_id"] for m in matches][:1] == [music]
    assert _as(PUBLISHER, "DELETE", f"/v1/patterns/{music}").status == 204
    assert _as(BOB, "GET", "/v1/patterns").body["count"] == 0


def test_an_idempotency_key_is_each_callers_own(tenants: AwsStack) -> None:
    body = {"audio": _audio("query_weather_0.wav")}
    key = {"Idempotency-Key": "same-key-for-everyone"}
    alice_first = _as(ALICE, "POST", "/v1/invocations", body, headers=key)
    bob_first = _as(BOB, "POST", "/v1/invocations", body, headers=key)
    alice_again = _as(ALICE_AGAIN, "POST", "/v1/invocations", body, headers=key)
    assert alice_first.status == bob_first.status == alice_again.status == 202
    assert bob_first.body["invocation_id"] != alice_first.body["invocation_id"]  # Bob never sees Alice's id
    assert alice_again.body["invocation_id"] == alice_first.body["invocation_id"]


def test_an_upload_key_is_its_callers_own(tenants: AwsStack) -> None:
    created = _as(ALICE, "POST", "/v1/uploads", {})
    assert created.status == 201
    key = created.body["audio_key"]
    tenants.s3.put_object(Bucket=tenants.bucket, Key=key, Body=(KEYWORDS / "query_music_0.wav").read_bytes())
    refused = _as(BOB, "POST", "/v1/invocations", {"audio_key": key})
    assert refused.status == 400
    assert "audio_key" in refused.body["error"]["message"]
    assert _as(BOB, "POST", "/v1/analyze", {"audio_key": key}).status == 400
    assert _as(ALICE, "POST", "/v1/invocations", {"audio_key": key}).status == 202


def _history(identity: dict[str, str] | None, **query: str) -> ApiResponse:
    return call("GET", "/v1/invocations", identity=identity, query=query or None)


def test_a_callers_history_lists_only_its_own_invocations(tenants: AwsStack) -> None:
    alices = [_submit(ALICE, "query_weather_0.wav"), _submit(ALICE_AGAIN, "query_music_0.wav")]
    bobs = _submit(BOB, "query_weather_0.wav")
    anonymous = call("POST", "/v1/invocations", {"audio": _audio("query_music_0.wav")}).body["invocation_id"]

    listed = {
        name: {item["invocation_id"] for item in _history(identity).body["invocations"]}
        for name, identity in (("alice", ALICE), ("bob", BOB), ("publisher", PUBLISHER), ("anonymous", None))
    }
    assert listed == {"alice": set(alices), "bob": {bobs}, "publisher": set(), "anonymous": {anonymous}}
    # A page token is its caller's: another caller's is refused, not followed into its history.
    token = _history(ALICE, limit="1").body["next_token"]
    assert _history(ALICE, limit="1", next_token=token).body["count"] == 1
    refused = _history(BOB, next_token=token)
    assert (refused.status, refused.body["error"]["code"]) == (400, "bad_request")
    assert "next_token" in refused.body["error"]["message"]
    assert _history(None, next_token=token).status == 400


def test_a_patterns_example_is_visible_to_exactly_who_sees_the_pattern(tenants: AwsStack) -> None:
    (weather,) = _register(ALICE, "weather", ["enrol_weather_0.wav"])
    (music,) = _register(PUBLISHER, "music", ["enrol_music_0.wav"])
    path = f"/v1/patterns/{weather}/example"
    assert _as(ALICE, "GET", path).status == 200
    assert _as(ALICE_AGAIN, "GET", path).status == 200
    hidden = _as(BOB, "GET", path)
    unknown = _as(BOB, "GET", "/v1/patterns/00000000-0000-4000-8000-000000000000/example")
    assert hidden.status == unknown.status == 404
    assert hidden.body["error"]["code"] == unknown.body["error"]["code"] == "not_found"
    assert _as(PUBLISHER, "GET", path).status == 404
    for caller in (ALICE, BOB, PUBLISHER):  # a shared pattern's example: everyone sees the pattern
        shared = _as(caller, "GET", f"/v1/patterns/{music}/example")
        assert shared.status == 200, shared.body
        assert shared.body["content_type"] == "audio/wav"
