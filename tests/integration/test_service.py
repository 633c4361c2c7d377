"""The service interface (docs/design.md "Service interface") under moto: validation, uploads, analyze,
statemachine dispatch and dispatch failures."""

from __future__ import annotations

import json

import numpy as np
import pytest

from harmonic_service import service
from harmonic_service.config import clear_caches
from harmonic_service.dal import checkpoints, executions, payloads, queues
from harmonic_service.models import Envelope
from tests.conftest import SPEECH_FILES
from tests.integration.conftest import REGION, AwsStack, wav_bytes


@pytest.fixture(scope="module")
def speech_wav() -> bytes:
    return SPEECH_FILES[0].read_bytes()


def submit(audio: bytes | None = None, audio_key: str | None = None, **kwargs) -> dict:
    return service.submit_invocation(
        audio=audio,
        audio_key=audio_key,
        mode=kwargs.get("mode"),
        steps=kwargs.get("steps"),
        options=kwargs.get("options"),
        correlation_id="test",
    )


def set_env(aws: AwsStack, **env: str) -> None:
    for name, value in env.items():
        aws.monkeypatch.setenv(name, value)
    clear_caches()


SPEECH = "speech"  # stands for the speech clip in the cases below
MISSING_UPLOAD = payloads.new_upload_key()  # a well-formed key of this (anonymous) caller, never uploaded


@pytest.mark.parametrize(
    ("kwargs", "code", "fragment"),
    [
        ({"audio": None}, "bad_request", "exactly one of audio"),
        ({"audio": SPEECH, "audio_key": "uploads/x.wav"}, "bad_request", "exactly one of audio"),
        ({"audio": SPEECH, "steps": ["ingest", "reverb"]}, "bad_request", "unknown steps reverb"),
        ({"audio": SPEECH, "options": {"target_lufs": 3}}, "bad_request", "target_lufs must be between"),
        ({"audio": SPEECH, "options": {"gain": 1}}, "bad_request", "unknown options gain"),
        ({"audio": SPEECH, "options": {"peak_dbfs": True}}, "bad_request", "peak_dbfs must be a number"),
        ({"audio": SPEECH, "mode": "turbo"}, "bad_request", "unknown mode"),
        ({"audio": SPEECH, "mode": "statemachine"}, "bad_request", "not deployed"),
        ({"audio": b"\x00\x00\x00\x20ftypM4A \x00\x00"}, "invalid_audio", "MP4/M4A"),
        ({"audio": b""}, "invalid_audio", "WAV, FLAC, Ogg (Vorbis or Opus) or MP3"),
        ({"audio": None, "audio_key": "invocations/x/input.wav"}, "bad_request", "POST /v1/uploads returned"),
        ({"audio": None, "audio_key": MISSING_UPLOAD}, "bad_request", "nothing was uploaded"),
    ],
)
def test_submit_rejects_bad_requests_without_side_effects(
    aws: AwsStack, speech_wav: bytes, kwargs: dict, code: str, fragment: str
) -> None:
    if kwargs["audio"] == SPEECH:
        kwargs["audio"] = speech_wav
    with pytest.raises(service.BadRequest) as caught:
        submit(**kwargs)
    assert caught.value.status == 400
    assert caught.value.code == code
    assert fragment in caught.value.message
    assert aws.s3_keys() == []
    assert aws.queue_depth(aws.queue_urls["ingest"]) == 0


def test_submit_enforces_the_inline_limit(aws: AwsStack, speech_wav: bytes) -> None:
    set_env(aws, MAX_INLINE_BYTES=str(len(speech_wav) - 1))
    with pytest.raises(service.PayloadTooLarge) as caught:
        submit(audio=speech_wav)
    assert caught.value.status == 413
    assert caught.value.code == "payload_too_large"


def test_get_unknown_invocation_is_not_found(aws: AwsStack) -> None:
    for invocation_id in ("does-not-exist", "", "x" * 500):
        with pytest.raises(service.NotFound) as caught:
            service.get_invocation(invocation_id)
        assert caught.value.status == 404


def test_accepted_invocation_reads_back_as_accepted(aws: AwsStack, speech_wav: bytes) -> None:
    accepted = submit(audio=speech_wav, steps=["match"])
    assert accepted["mode"] == "pipeline"
    body = service.get_invocation(accepted["invocation_id"])
    assert body["status"] == "ACCEPTED"
    assert body["steps"] == ["ingest", "normalize", "features", "match", "respond"]
    assert {s["status"] for s in body["stages"]} == {"PENDING"}
    assert "result" not in body
    assert "error" not in body
    message = aws.sqs.receive_message(QueueUrl=aws.queue_urls["ingest"])["Messages"][0]
    envelope = Envelope.from_json(message["Body"])
    assert envelope.invocation_id == accepted["invocation_id"]
    assert envelope.input_key == payloads.input_key(accepted["invocation_id"])
    assert envelope.options == {"target_lufs": -23.0, "peak_dbfs": -1.0, "clean_snr_db": 30.0}
    assert payloads.get_bytes(envelope.input_key) == speech_wav
    item = checkpoints.get(accepted["invocation_id"])
    assert item.expires_at > 0
    assert item.correlation_id == "test"


def test_upload_then_submit_by_key(aws: AwsStack, speech_wav: bytes) -> None:
    import requests

    upload = service.create_upload(len(speech_wav))
    assert upload["audio_key"].startswith("uploads/")
    assert payloads.is_upload_key(upload["audio_key"])
    assert upload["expires_in"] == 900
    assert upload["max_bytes"] == 100 * 1024 * 1024
    assert "X-Amz-Signature" in upload["upload_url"]
    response = requests.put(
        upload["upload_url"], data=speech_wav, headers={"Content-Type": "audio/wav"}, timeout=10
    )
    assert response.status_code == 200
    assert payloads.get_bytes(upload["audio_key"]) == speech_wav

    accepted = submit(audio_key=upload["audio_key"])
    aws.drain()
    body = service.get_invocation(accepted["invocation_id"])
    assert body["status"] == "SUCCEEDED"
    assert body["result"]["audio"]["duration_s"] == pytest.approx(79847 / 16000, abs=1e-3)
    assert payloads.get_bytes(payloads.input_key(accepted["invocation_id"])) == speech_wav


def test_upload_limits(aws: AwsStack) -> None:
    with pytest.raises(service.PayloadTooLarge):
        service.create_upload(100 * 1024 * 1024 + 1)
    for bad in (0, -5, True):
        with pytest.raises(service.BadRequest):
            service.create_upload(bad)
    assert service.create_upload(None)["audio_key"].endswith(".wav")


def test_uploaded_unsupported_audio_is_invalid_audio(aws: AwsStack) -> None:
    upload = service.create_upload(None)
    payloads.put_bytes(upload["audio_key"], b"\x00\x00\x00\x20ftypM4A " + bytes(100))  # AAC in MP4
    with pytest.raises(service.BadRequest) as caught:
        submit(audio_key=upload["audio_key"])
    assert caught.value.code == "invalid_audio"
    assert "MP4/M4A" in caught.value.message


def test_analyze_matches_the_pipeline_result(aws: AwsStack) -> None:
    rng = np.random.default_rng(3)
    t = np.arange(3 * 22_050) / 22_050
    tone = 0.3 * np.sin(2 * np.pi * 196.0 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    wav = wav_bytes(tone + 0.05 * rng.standard_normal(t.size), 22_050)

    result = service.analyze(audio=wav, audio_key=None, steps=None, options=None)
    accepted = submit(audio=wav)
    aws.drain()
    assert service.get_invocation(accepted["invocation_id"])["result"] == result
    assert result["denoise"]["applied"] is True
    assert result["features"]["f0_hz"]["median"] == pytest.approx(196.0, rel=0.02)

    upload = service.create_upload(None)
    payloads.put_bytes(upload["audio_key"], wav)
    by_key = service.analyze(audio=None, audio_key=upload["audio_key"], steps=["ingest"], options=None)
    assert by_key["denoise"] == {"applied": False, "reason": "excluded by steps"}
    assert by_key == service.analyze(audio=wav, audio_key=None, steps=[], options=None)
    assert by_key["audio"] == result["audio"]


def test_analyze_rejects_bad_audio_as_invalid_audio(aws: AwsStack) -> None:
    with pytest.raises(service.BadRequest) as caught:
        service.analyze(audio=b"RIFF\x10\x00\x00\x00WAVEfmt broken", audio_key=None, steps=None, options=None)
    assert caught.value.code == "invalid_audio"
    assert caught.value.status == 400


def test_statemachine_mode_starts_one_execution_per_invocation(aws: AwsStack, speech_wav: bytes) -> None:
    import boto3

    sfn = boto3.client("stepfunctions", region_name=REGION)
    definition = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}
    arn = sfn.create_state_machine(
        name="harmonic",
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/harmonic-statemachine",
    )["stateMachineArn"]
    set_env(aws, ORCHESTRATION="both", STATE_MACHINE_ARN=arn)

    assert submit(audio=speech_wav)["mode"] == "pipeline"  # the default when both are deployed
    accepted = submit(audio=speech_wav, mode="statemachine")
    assert accepted["mode"] == "statemachine"
    runs = sfn.list_executions(stateMachineArn=arn)["executions"]
    assert [run["name"] for run in runs] == [accepted["invocation_id"]]
    described = sfn.describe_execution(executionArn=runs[0]["executionArn"])
    envelope = Envelope.from_json(described["input"])
    assert envelope.stage == "ingest"
    assert envelope.mode == "statemachine"
    # Starting the same invocation again is a no-op, not an error (same input: AWS returns the running
    # execution; another input: ExecutionAlreadyExists, reported as "already started").
    assert executions.start_execution(envelope, name=accepted["invocation_id"]) is True
    other = envelope.model_copy(update={"correlation_id": "retry"})
    assert executions.start_execution(other, name=accepted["invocation_id"]) is False
    assert len(sfn.list_executions(stateMachineArn=arn)["executions"]) == 1
    assert aws.queue_depth(aws.queue_urls["ingest"]) == 1  # only the pipeline invocation

    set_env(aws, ORCHESTRATION="statemachine")
    assert submit(audio=speech_wav)["mode"] == "statemachine"
    with pytest.raises(service.BadRequest):
        submit(audio=speech_wav, mode="pipeline")


def test_failed_dispatch_fails_the_invocation_and_resume_retries_it(
    aws: AwsStack, speech_wav: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = queues.send_envelope

    def unreachable(envelope: Envelope) -> str:
        raise ConnectionError("SQS unreachable")

    monkeypatch.setattr(queues, "send_envelope", unreachable)
    with pytest.raises(ConnectionError):
        submit(audio=speech_wav)
    [input_key] = aws.s3_keys("invocations/")
    invocation_id = input_key.split("/")[1]
    body = service.get_invocation(invocation_id)
    assert body["status"] == "FAILED"
    assert body["error"]["code"] == "dispatch_failed"

    monkeypatch.setattr(queues, "send_envelope", original)
    assert service.resume_invocation(invocation_id, "retry")["resumed_from"] == "ingest"
    with pytest.raises(service.Conflict) as caught:
        service.resume_invocation(invocation_id, "again")  # RUNNING now
    assert caught.value.status == 409
    aws.drain()
    assert service.get_invocation(invocation_id)["status"] == "SUCCEEDED"


def test_large_results_are_kept_in_s3_only(aws: AwsStack, speech_wav: bytes) -> None:
    import dataclasses

    from harmonic_service import runner

    small = dataclasses.replace(runner.get_settings(), max_inline_result_bytes=100)
    aws.monkeypatch.setattr(runner, "get_settings", lambda: small)
    accepted = submit(audio=speech_wav)
    aws.drain()
    item = checkpoints.get(accepted["invocation_id"])
    assert item.result is None
    assert item.result_key == payloads.result_key(accepted["invocation_id"])
    body = service.get_invocation(accepted["invocation_id"])
    assert body["result"] == payloads.get_json(item.result_key)
    assert set(body["result"]) == {"audio", "denoise", "loudness", "features", "matches"}
