"""POST /v1/patterns/{id}/rebuild under moto: a pattern stored by an earlier version is computed again from
what was registered, under the same id, and every match function re-reads it."""

from __future__ import annotations

import base64
from pathlib import Path

import boto3
import pytest

from harmonic import Template, decode_wav
from harmonic.serialization import pack
from harmonic_service import pattern_cache
from tests.integration.api_events import call
from tests.integration.conftest import PATTERNS_TABLE, REGION, AwsStack

KEYWORDS = Path(__file__).resolve().parents[1] / "data" / "keywords"


def _register(body: dict) -> dict:
    created = call("POST", "/v1/patterns", body)
    assert created.status == 201, created.body
    return created.body


def _template(name: str, file: str) -> dict:
    audio = base64.b64encode((KEYWORDS / file).read_bytes()).decode()
    return _register({"name": name, "kind": "template", "audio": audio})


def _store_as_format_2(aws: AwsStack, pattern_id: str) -> bytes:
    """Overwrite a template's artifact with what template format 2 stored (mel power, no embeddings)."""
    key = f"patterns/{pattern_id}.bin"
    current = Template.from_bytes(aws.s3.get_object(Bucket=aws.bucket, Key=key)["Body"].read())
    meta = {"format": 2, "duration_s": current.duration_s, "warps": list(current.warps)}
    older = pack(b"HTPL", meta, {"mel_db": current.mel_db})
    aws.s3.put_object(Bucket=aws.bucket, Key=key, Body=older)
    return older


def test_a_template_stored_before_embeddings_gets_them_under_the_same_id(aws: AwsStack) -> None:
    stored = _template("weather", "enrol_weather_0.wav")
    older = _store_as_format_2(aws, stored["pattern_id"])
    pattern_cache.clear()
    assert pattern_cache.current().templates[stored["pattern_id"]].embedding is None
    fetched = pattern_cache.stats["artifacts_fetched"]

    rebuilt = call("POST", f"/v1/patterns/{stored['pattern_id']}/rebuild")
    assert rebuilt.status == 200, rebuilt.body
    assert rebuilt.body["pattern_id"] == stored["pattern_id"]
    assert rebuilt.body["name"] == "weather"
    assert rebuilt.body["rebuilt_at"]
    assert rebuilt.body["artifact_bytes"] > len(older)  # the embeddings are back
    artifact = aws.s3.get_object(Bucket=aws.bucket, Key=f"patterns/{stored['pattern_id']}.bin")["Body"].read()
    assert len(artifact) == rebuilt.body["artifact_bytes"]
    assert Template.from_bytes(artifact).embedding is not None
    assert (
        call("GET", f"/v1/patterns/{stored['pattern_id']}").body["rebuilt_at"] == rebuilt.body["rebuilt_at"]
    )

    # the warm cache re-reads that one artifact (same id, new rebuilt_at), and nothing else
    patterns = pattern_cache.current()
    assert patterns.templates[stored["pattern_id"]].embedding is not None
    assert pattern_cache.stats["artifacts_fetched"] == fetched + 1
    clip = decode_wav((KEYWORDS / "query_weather_1.wav").read_bytes())
    assert [m["name"] for m in patterns.match(clip.samples, clip.sample_rate)] == ["weather"]


def test_a_keyword_by_its_spelling_is_rebuilt_from_its_text(aws: AwsStack) -> None:
    stored = _register({"name": "weather", "kind": "keyword", "text": "weather"})
    rebuilt = call("POST", f"/v1/patterns/{stored['pattern_id']}/rebuild")
    assert rebuilt.status == 200, rebuilt.body
    assert rebuilt.body["text"] == "weather"
    assert rebuilt.body["artifact_bytes"] == stored["artifact_bytes"]  # the same pronunciation


def test_a_pattern_with_nothing_to_rebuild_from_is_a_409_and_stays_as_it_was(aws: AwsStack) -> None:
    """Registered before examples were kept (no example_key), or its example no longer accepted: 409 with
    the reason, and the stored artifact is untouched."""
    before_examples = _template("weather", "enrol_weather_0.wav")
    boto3.client("dynamodb", region_name=REGION).update_item(
        TableName=PATTERNS_TABLE,
        Key={"pattern_id": {"S": before_examples["pattern_id"]}},
        UpdateExpression="REMOVE example_key, example_content_type",
    )
    refused = call("POST", f"/v1/patterns/{before_examples['pattern_id']}/rebuild")
    assert (refused.status, refused.body["error"]["code"]) == (409, "no_example"), refused.body
    assert "register it again" in refused.body["error"]["message"]

    rejected = _template("music", "enrol_music_0.wav")
    key = f"patterns/{rejected['pattern_id']}.bin"
    artifact = aws.s3.get_object(Bucket=aws.bucket, Key=key)["Body"].read()
    aws.s3.put_object(
        Bucket=aws.bucket,
        Key=f"patterns/{rejected['pattern_id']}/example.wav",
        Body=b"not audio at all, really",
    )
    refused = call("POST", f"/v1/patterns/{rejected['pattern_id']}/rebuild")
    assert (refused.status, refused.body["error"]["code"]) == (409, "example_rejected"), refused.body
    assert aws.s3.get_object(Bucket=aws.bucket, Key=key)["Body"].read() == artifact
    assert call("GET", f"/v1/patterns/{rejected['pattern_id']}").body.get("rebuilt_at") is None


@pytest.mark.parametrize("pattern_id", ["00000000-0000-4000-8000-000000000000", "__index__", "not-an-id"])
def test_rebuilding_an_unknown_pattern_is_a_404(aws: AwsStack, pattern_id: str) -> None:
    refused = call("POST", f"/v1/patterns/{pattern_id}/rebuild")
    assert (refused.status, refused.body["error"]["code"]) == (404, "not_found")
