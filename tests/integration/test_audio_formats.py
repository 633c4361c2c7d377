"""FLAC, Ogg (Vorbis, Opus) and MP3 through the API against moto: /v1/analyze measures the same speech as the
WAV it was made from, an MP3 runs through the pipeline, a pattern registers from a FLAC example, an upload
of an Ogg file is accepted by key, and an M4A is a 400 that names what is accepted."""

from __future__ import annotations

import base64
import io

import pytest
import soundfile

import harmonic
from tests.conftest import SPEECH_FILES
from tests.integration.api_events import call
from tests.integration.conftest import AwsStack

WAV = SPEECH_FILES[0].read_bytes()


def _encoded(container: str, subtype: str) -> bytes:
    clip = harmonic.decode_wav(WAV)
    buffer = io.BytesIO()
    soundfile.write(buffer, clip.samples, clip.sample_rate, format=container, subtype=subtype)
    return buffer.getvalue()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@pytest.mark.parametrize(
    ("container", "subtype"),
    [("FLAC", "PCM_16"), ("OGG", "VORBIS"), ("OGG", "OPUS"), ("MP3", "MPEG_LAYER_III")],
)
def test_analyze_measures_the_same_speech_in_every_format(
    aws: AwsStack, container: str, subtype: str
) -> None:
    reference = call("POST", "/v1/analyze", {"audio": _b64(WAV)})
    analyzed = call("POST", "/v1/analyze", {"audio": _b64(_encoded(container, subtype))})
    assert analyzed.status == 200, analyzed.body
    features, expected = analyzed.body["features"], reference.body["features"]
    assert features["duration_s"] == pytest.approx(expected["duration_s"], abs=0.01)
    assert features["f0_hz"]["median"] == pytest.approx(expected["f0_hz"]["median"], rel=0.05)
    assert analyzed.body["loudness"]["input_lufs"] == pytest.approx(
        reference.body["loudness"]["input_lufs"], abs=1.0
    )


def test_an_mp3_runs_through_the_pipeline_and_a_flac_example_registers(aws: AwsStack) -> None:
    pattern = call(
        "POST",
        "/v1/patterns",
        {"name": "speech", "kind": "fingerprint", "audio": _b64(_encoded("FLAC", "PCM_16"))},
    )
    assert pattern.status == 201, pattern.body
    accepted = call("POST", "/v1/invocations", {"audio": _b64(_encoded("MP3", "MPEG_LAYER_III"))})
    assert accepted.status == 202, accepted.body
    aws.drain()
    done = call("GET", accepted.headers["Location"])
    assert done.body["status"] == "SUCCEEDED", done.body.get("error")
    assert [m["pattern_id"] for m in done.body["result"]["matches"]][:1] == [pattern.body["pattern_id"]]


def test_an_uploaded_ogg_is_accepted_by_key(aws: AwsStack) -> None:
    upload = call("POST", "/v1/uploads", {}).body
    aws.s3.put_object(Bucket=aws.bucket, Key=upload["audio_key"], Body=_encoded("OGG", "VORBIS"))
    accepted = call("POST", "/v1/invocations", {"audio_key": upload["audio_key"]})
    assert accepted.status == 202, accepted.body
    aws.drain()
    assert call("GET", accepted.headers["Location"]).body["status"] == "SUCCEEDED"


@pytest.mark.parametrize("path", ["/v1/analyze", "/v1/invocations"])
def test_an_m4a_is_a_400_that_names_the_accepted_formats(aws: AwsStack, path: str) -> None:
    m4a = b"\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00M4A mp42isom" + bytes(4000)
    refused = call("POST", path, {"audio": _b64(m4a)})
    assert refused.status == 400
    assert refused.body["error"]["code"] == "invalid_audio"
    assert "MP4/M4A" in refused.body["error"]["message"]
    assert "WAV, FLAC, Ogg (Vorbis or Opus) or MP3" in refused.body["error"]["message"]


@pytest.mark.parametrize(
    ("container", "subtype", "content_type"),
    [
        ("FLAC", "PCM_16", "audio/flac"),
        ("OGG", "VORBIS", "audio/ogg"),
        ("MP3", "MPEG_LAYER_III", "audio/mpeg"),
    ],
)
def test_a_patterns_example_is_kept_in_its_own_format(
    aws: AwsStack, container: str, subtype: str, content_type: str
) -> None:
    """Inline or uploaded, the clip a pattern is registered from is kept as sent, served as its format."""
    requests = pytest.importorskip("requests")
    clip = _encoded(container, subtype)
    inline = call("POST", "/v1/patterns", {"name": "inline", "kind": "fingerprint", "audio": _b64(clip)})
    upload = call("POST", "/v1/uploads", {}).body
    aws.s3.put_object(Bucket=aws.bucket, Key=upload["audio_key"], Body=clip)
    uploaded = call(
        "POST", "/v1/patterns", {"name": "uploaded", "kind": "fingerprint", "audio_key": upload["audio_key"]}
    )
    for created in (inline, uploaded):
        assert created.status == 201, created.body
        example = call("GET", f"/v1/patterns/{created.body['pattern_id']}/example")
        assert example.status == 200, example.body
        assert example.body["content_type"] == content_type
        fetched = requests.get(example.body["url"], timeout=10)
        assert (fetched.content, fetched.headers["Content-Type"]) == (clip, content_type)
