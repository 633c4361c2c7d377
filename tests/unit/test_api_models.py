"""The API's request/response models (harmonic_service.api_models): what they accept, what they refuse, and
that their error messages never carry the submitted audio."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from harmonic_service.api_models import (
    AnalyzeRequest,
    ErrorBody,
    Health,
    InvocationAccepted,
    InvocationRequest,
    InvocationStatusBody,
    ResumeAccepted,
    UploadCreated,
    UploadRequest,
)
from harmonic_service.stages import STAGE_NAMES

WAV_HEAD = b"RIFF\x24\x00\x00\x00WAVEfmt "
AUDIO = base64.b64encode(WAV_HEAD).decode()
UPLOAD_KEY = "uploads/6f1c1a4e-8a7e-4d6e-9a57-3f0b2d1c0e9a.wav"
REQUEST_MODELS = [InvocationRequest, AnalyzeRequest]


def messages(error: ValidationError) -> list[str]:
    """Each problem as the API reports it: the location and pydantic's `msg` (never the input)."""
    return [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()]


@pytest.mark.parametrize("model", REQUEST_MODELS)
def test_inline_audio_is_decoded_once(model: type[InvocationRequest]) -> None:
    request = model.model_validate({"audio": AUDIO})
    assert request.audio_bytes() == WAV_HEAD
    assert request.audio_bytes() is request.audio_bytes()
    assert request.audio_key is None
    assert request.steps is None
    assert request.options is None


@pytest.mark.parametrize("model", REQUEST_MODELS)
def test_an_upload_key_has_no_inline_bytes(model: type[InvocationRequest]) -> None:
    request = model.model_validate({"audio_key": UPLOAD_KEY})
    assert request.audio_bytes() is None
    assert request.audio_key == UPLOAD_KEY


@pytest.mark.parametrize("model", REQUEST_MODELS)
@pytest.mark.parametrize(
    "body",
    [{}, {"audio": None}, {"audio_key": None}, {"audio": AUDIO, "audio_key": UPLOAD_KEY}],
)
def test_exactly_one_audio_source(model: type[InvocationRequest], body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(body)
    assert any("exactly one of audio" in message for message in messages(caught.value))


@pytest.mark.parametrize(
    "encoded",
    [
        "@@@",
        "QUJD\n",  # whitespace is not part of the alphabet
        "QUJ",  # missing padding
        "QU=JD",
        "-_-_",  # URL-safe alphabet
        AUDIO + "!",
    ],
)
def test_bad_base64_is_refused_with_a_message_that_does_not_echo_it(encoded: str) -> None:
    with pytest.raises(ValidationError) as caught:
        InvocationRequest.model_validate({"audio": encoded})
    [message] = messages(caught.value)
    assert message.startswith("audio: ")
    assert "not valid base64" in message
    assert encoded.strip() not in message


def test_an_empty_clip_is_refused_as_the_document_says() -> None:
    """An empty string is valid base64 but no clip: refused by the model (minLength 1 in the document)."""
    with pytest.raises(ValidationError) as caught:
        InvocationRequest.model_validate({"audio": ""})
    [message] = messages(caught.value)
    assert message.startswith("audio: ")


@pytest.mark.parametrize("value", [123, 1.5, True, ["QUJD"], {"b64": "QUJD"}])
def test_audio_must_be_a_string(value: Any) -> None:
    with pytest.raises(ValidationError):
        InvocationRequest.model_validate({"audio": value})


def test_audio_key_is_bounded() -> None:
    with pytest.raises(ValidationError):
        InvocationRequest.model_validate({"audio_key": "uploads/" + "x" * 300})


@pytest.mark.parametrize("mode", ["pipeline", "statemachine", None])
def test_modes(mode: str | None) -> None:
    assert InvocationRequest.model_validate({"audio": AUDIO, "mode": mode}).mode == mode


@pytest.mark.parametrize("mode", ["PIPELINE", "sync", "", 1, ["pipeline"]])
def test_unknown_modes_are_refused(mode: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        InvocationRequest.model_validate({"audio": AUDIO, "mode": mode})
    assert messages(caught.value)[0].startswith("mode: ")


def test_analyze_has_no_mode() -> None:
    with pytest.raises(ValidationError):
        AnalyzeRequest.model_validate({"audio": AUDIO, "mode": "pipeline"})


@pytest.mark.parametrize("model", REQUEST_MODELS)
def test_steps_are_stage_names(model: type[InvocationRequest]) -> None:
    everything = list(STAGE_NAMES)
    assert model.model_validate({"audio": AUDIO, "steps": everything}).steps == everything
    assert model.model_validate({"audio": AUDIO, "steps": []}).steps == []
    for steps in (["teleport"], "denoise", [1], {"denoise": True}):
        with pytest.raises(ValidationError) as caught:
            model.model_validate({"audio": AUDIO, "steps": steps})
        assert messages(caught.value)[0].startswith("steps")


@pytest.mark.parametrize("model", REQUEST_MODELS)
def test_options_are_an_object(model: type[InvocationRequest]) -> None:
    options = {"target_lufs": -20, "peak_dbfs": -2.5}
    assert model.model_validate({"audio": AUDIO, "options": options}).options == options
    for value in ([1, 2], "loud", 3):
        with pytest.raises(ValidationError):
            model.model_validate({"audio": AUDIO, "options": value})


@pytest.mark.parametrize("model", [*REQUEST_MODELS, UploadRequest])
def test_unknown_fields_are_refused(model: type[Any]) -> None:
    body = {"audio": AUDIO} if model is not UploadRequest else {}
    with pytest.raises(ValidationError) as caught:
        model.model_validate({**body, "webhook": "https://example.com"})
    assert messages(caught.value) == ["webhook: Extra inputs are not permitted"]


def test_requests_validate_from_json_text() -> None:
    text = json.dumps({"audio": AUDIO, "mode": "pipeline", "steps": ["denoise"], "options": {}})
    request = InvocationRequest.model_validate_json(text)
    assert (request.mode, request.steps, request.options) == ("pipeline", ["denoise"], {})
    with pytest.raises(ValidationError) as caught:
        InvocationRequest.model_validate_json("{not json")
    assert caught.value.errors()[0]["type"] == "json_invalid"


def test_dump_for_idempotency_hashing_is_stable() -> None:
    """The handler hashes `model_dump(exclude_none=True)`: equal requests dump equal, and None is left out."""
    one = InvocationRequest.model_validate({"audio": AUDIO, "mode": None})
    two = InvocationRequest.model_validate({"audio": AUDIO})
    assert one.model_dump(exclude_none=True) == two.model_dump(exclude_none=True) == {"audio": AUDIO}
    one.audio_bytes()  # the decoded clip is private state, not part of the dump
    assert one.model_dump(exclude_none=True) == {"audio": AUDIO}


@pytest.mark.parametrize("length", [None, 1, 100 * 1024 * 1024])
def test_upload_request(length: int | None) -> None:
    assert UploadRequest.model_validate({"content_length": length}).content_length == length
    assert UploadRequest().content_length is None


@pytest.mark.parametrize("length", [0, -1, 1.5, True, "10", [10]])
def test_upload_request_refuses_non_positive_or_non_integer_lengths(length: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        UploadRequest.model_validate({"content_length": length})
    assert messages(caught.value)[0].startswith("content_length")


@settings(max_examples=50, deadline=None)
@given(raw=st.binary(min_size=1, max_size=256))
def test_any_bytes_round_trip_through_base64(raw: bytes) -> None:
    request = InvocationRequest.model_validate({"audio": base64.b64encode(raw).decode()})
    assert request.audio_bytes() == raw


@settings(max_examples=50, deadline=None)
@given(text=st.text(max_size=40))
def test_arbitrary_audio_text_is_accepted_or_refused_cleanly(text: str) -> None:
    problems: list[str] = []
    try:
        request = InvocationRequest.model_validate({"audio": text})
    except ValidationError as error:
        problems = messages(error)
    else:
        assert base64.b64encode(request.audio_bytes() or b"").decode() == text
    assert all(problem.startswith("audio: ") for problem in problems)


# --- responses ----------------------------------------------------------------------------------------------


def test_response_models() -> None:
    accepted = InvocationAccepted(
        invocation_id="abc", status="ACCEPTED", mode="pipeline", status_url="/v1/invocations/abc"
    )
    assert accepted.model_dump()["status"] == "ACCEPTED"
    with pytest.raises(ValidationError):
        InvocationAccepted(invocation_id="abc", status="RUNNING", mode="pipeline", status_url="/x")
    resumed = ResumeAccepted(
        invocation_id="abc", status="RUNNING", mode="statemachine", resumed_from="features", status_url="/x"
    )
    assert resumed.resumed_from == "features"
    upload = UploadCreated(audio_key=UPLOAD_KEY, upload_url="https://s3/x", expires_in=900, max_bytes=10)
    assert set(upload.model_dump()) == {"audio_key", "upload_url", "expires_in", "max_bytes"}
    assert Health(status="ok", modes=["pipeline"]).model_dump() == {"status": "ok", "modes": ["pipeline"]}
    error = ErrorBody.model_validate({"error": {"code": "bad_request", "message": "audio: not valid"}})
    assert error.model_dump() == {"error": {"code": "bad_request", "message": "audio: not valid"}}
    with pytest.raises(ValidationError):
        ErrorBody.model_validate({"error": {"code": "bad_request"}})


def test_invocation_status_body() -> None:
    body = InvocationStatusBody.model_validate(
        {
            "invocation_id": "abc",
            "status": "FAILED",
            "mode": "pipeline",
            "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:01Z",
            "steps": list(STAGE_NAMES),
            "stages": [
                {"name": "ingest", "status": "SUCCEEDED", "duration_ms": 12, "attempts": 1},
                {"name": "denoise", "status": "SKIPPED", "reason": "clean"},
                {"name": "normalize", "status": "FAILED", "attempts": 3},
            ],
            "error": {"code": "retries_exhausted", "message": "gave up", "stage": "normalize"},
        }
    )
    dumped = body.model_dump(mode="json")
    assert dumped["result"] is None
    assert dumped["error"]["stage"] == "normalize"
    assert dumped["stages"][1] == {
        "name": "denoise",
        "status": "SKIPPED",
        "duration_ms": None,
        "attempts": 0,
        "reason": "clean",
        "started_at": None,
        "finished_at": None,
    }
    for status in ("DONE", "accepted"):
        with pytest.raises(ValidationError):
            InvocationStatusBody.model_validate({**body.model_dump(), "status": status})
