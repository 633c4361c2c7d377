"""Request and response bodies of the HTTP API (docs/design.md "HTTP API"), as pydantic models.

The API handler validates every request body against these (Powertools ``enable_validation``) and the
OpenAPI document (docs/openapi.json) is generated from them. Audio arrives base64-encoded in ``audio`` and
is decoded strictly here, so a bad encoding is a 400 that names the field.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from harmonic_service.config import Settings
from harmonic_service.logic.sources import check_one_source
from harmonic_service.models import InvocationStatus, Mode, StageStatus
from harmonic_service.stages import STAGE_NAMES, STAGES

# The stage names from the stage table: a new stage is in the API (and its OpenAPI document) by itself.
StageName = Literal[STAGE_NAMES]  # type: ignore[valid-type]
AUDIO_DESCRIPTION = (
    "the clip (WAV, FLAC, Ogg Vorbis or Opus, or MP3), base64-encoded (small clips; larger ones go through "
    "POST /v1/uploads)"
)
# What the audio field's validator accepts (base64.b64decode(validate=True): the standard alphabet, padded),
# as a pattern for the OpenAPI document.
BASE64_PATTERN = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
# The document's example clip, so that a reader (or Schemathesis) has a request that succeeds: 0.25 s of a
# 220 Hz tone at 8 kHz, 16-bit FLAC (1,016 bytes).
EXAMPLE_AUDIO = (
    "ZkxhQwAAACIQABAAAAOiAAOiAfQA8AAAB9BVy4RONAteRAQiTjMQz/5YhAAAKCAAAAByZWZlcmVuY2UgbGliRkxBQyAxLjQuMyAy"
    "MDIzMDYyMwAAAAD/+HQIAAfPnUQAAAaaDQK0rqUkDxgDQkKCIIQRCCgURVNwcbN7nSQsCwRBCECQhFCYnbbbPPzlikQhIEIQgkEk"
    "Srjzzzb25YohCQIQhBBIJIVpzbbZwaNUhQhEEgKAiIiRS78cNs/eTFEIhCCIEQSCJJJzR5s9mhr0kISAkEIIRCQkqZBkPNsc3piY"
    "kQhCEIIgiIJRNW3DbZx1yRIIgiCIIQiEJRNbcNtmcdNFCQhCEIQSAoKSmm84NB/9qJERAkCEIIiEWJre2ePOPqhIUEQQgiEFAoiq"
    "bg42b3OkhYFgiCEIEhCKExO222efnLFIhCQIQhBIJIlXHnnm3tyxRCEgQhCCCQSQrTm22zg0apChCIJAUBEREil344bZ+8mKIRCE"
    "EQIgkESSTmjzZ7NDXpIQkBIIQQiEhJUyDIebY5vTExIhCEIQRBEQSiatuG2zjrkiQRBEEQQhEISia24bbM46aKEhCEIQgkBQUlNN"
    "5waD/7USIiBIEIQREIsTW9s8ecfVCQoIghBEIKBRFU3Bxs3udJCwLBEEIQJCEUJidtts8/OWKRCEgQhCCQSRKuPPPNvbliiEJAhC"
    "EEEgkhWnNttnBo1SFCEQSAoCIiJFLvxw2z95MUQiEIIgRBIIkknNHmz2aGvSQhICQQghEJCSpkGQ82xzemJiRCEIQgiCIglE1bcN"
    "tnHXJEgiCIIghCIQlE1tw22Zx00UJCEIQhBICgpKabzg0H/2okRECQIQgiIRYmt7Z484+qEhQRBCCIQUCiKpuDjZvc6SFgWCIIQg"
    "SEIoTE7bbZ5+csUiEJAhCEEgkiVceeebe3LFEISBCEIIJBJCtObbbODRqkKEIgkBQERESKXfjhtn7yYohEIQRAiCQRJJOaPNns0N"
    "ekhCQEghBCISElTIMh5tjm9MTEiEIQhBEERBKJq24bbOOuSJBEEQRBCEQhKJrbhtszjpooSEIQhCCQFBSU03nBoP/tRIiIEgQhBE"
    "QixNb2zx5x9UJCgiCEEQgoFEVTcHGze50kLAsEQQhAkIRQmJ222zz85YpEISBCEIJBJEq488829uWKIQkCEIQQSCSFac222cGjVI"
    "UIRBICgIiIkUu/HDbP3kxRCIQgiBEEgiSSc0ebPZoa9JCEgJBCCEQkJKmQZDzbHN6YmJEIQhCCIIiCUTVtw22cdckSCIIgiCEIhC"
    "UTW3DbZnHTRQkIQhCEEgKCkppvODQf/aiREQJAhCCIhFia3tnjzjEl0="
)
AUDIO_KEY_DESCRIPTION = "the audio_key returned by POST /v1/uploads, after PUTting the clip to its upload_url"


# "Exactly one of audio and audio_key" in the OpenAPI document as well as in the validator below: the other
# one absent or null.
EXACTLY_ONE_SOURCE = {
    "oneOf": [
        {
            "required": ["audio"],
            "properties": {"audio": {"type": "string"}, "audio_key": {"type": "null"}},
        },
        {
            "required": ["audio_key"],
            "properties": {"audio_key": {"type": "string"}, "audio": {"type": "null"}},
        },
    ]
}


def _document_on(schema: dict[str, Any], json_type: str, **keywords: Any) -> None:
    """Add `keywords` to the `json_type` branch of an optional field's schema (``anyOf`` with null): rules the
    field's validator or the service enforces, stated in the OpenAPI document."""
    for branch in schema.get("anyOf", [schema]):
        if branch.get("type") == json_type:
            branch.update(keywords)


def _document_base64(schema: dict[str, Any]) -> None:
    """The audio field as its validator treats it (base64), with an example clip that the API accepts."""
    _document_on(schema, "string", pattern=BASE64_PATTERN, contentEncoding="base64")
    schema["examples"] = [EXAMPLE_AUDIO]


class _AudioSource(BaseModel):
    """A clip given inline (``audio``) or by reference (``audio_key``): exactly one of them."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=EXACTLY_ONE_SOURCE)

    audio: str | None = Field(
        default=None,
        description=AUDIO_DESCRIPTION,
        min_length=1,
        json_schema_extra=_document_base64,
    )
    audio_key: str | None = Field(default=None, description=AUDIO_KEY_DESCRIPTION, max_length=256)
    _audio_bytes: bytes | None = PrivateAttr(default=None)

    @field_validator("audio")
    @classmethod
    def _strict_base64(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("audio is not valid base64 (standard alphabet, with padding)") from None
        return value

    @model_validator(mode="after")
    def _exactly_one_source(self) -> _AudioSource:
        check_one_source(self.audio, self.audio_key)
        return self

    def audio_bytes(self) -> bytes | None:
        """The decoded clip (decoded once), or None when the request names an upload."""
        if self.audio is not None and self._audio_bytes is None:
            self._audio_bytes = base64.b64decode(self.audio, validate=True)
        return self._audio_bytes


class _AudioRequest(_AudioSource):
    """A clip to analyse, with the stages to run and their options."""

    steps: list[StageName] | None = Field(
        default=None,
        description="stages to run; required ones ("
        + ", ".join(stage.name for stage in STAGES if not stage.optional)
        + ") always run",
    )
    options: dict[str, Any] | None = Field(
        default=None,
        description="target_lufs (default -23), peak_dbfs (-1), clean_snr_db (30), "
        "denoiser (deepfilternet3, the default, or spectral_gating: cheaper, stationary noise only), "
        "patterns (pattern ids or names the match stage considers; default all), "
        "near_duplicates (true: fingerprints also match re-orchestrations of a recording; default false)",
    )


class InvocationRequest(_AudioRequest):
    """POST /v1/invocations."""

    mode: Mode | None = Field(default=None, description="orchestration; default the deployment's first mode")
    callback_url: str | None = Field(
        default=None,
        min_length=1,
        max_length=2048,
        description="HTTPS URL to POST the status document to when the invocation ends, signed with the "
        "deployment's secret (X-Harmonic-Signature: t=<unix s>,v1=<hex HMAC-SHA256 of '<t>.' + body>); "
        "needs the events orchestration deployed",
    )


class AnalyzeRequest(_AudioRequest):
    """POST /v1/analyze: the whole chain in the API function, for small clips."""


# A pattern's sources: a clip (exactly one of audio and audio_key), and for kind keyword its text instead of
# or beside a clip. Text belongs to keywords only.
PATTERN_SOURCES = {
    "oneOf": [
        *EXACTLY_ONE_SOURCE["oneOf"],
        {
            "required": ["kind", "text"],
            "properties": {
                "kind": {"const": "keyword"},
                "text": {"type": "string"},
                "audio": {"type": "null"},
                "audio_key": {"type": "null"},
            },
        },
    ],
    "if": {"required": ["text"], "properties": {"text": {"type": "string"}}},
    "then": {"properties": {"kind": {"const": "keyword"}}},
}
PatternKind = Literal["template", "fingerprint", "keyword"]


class PatternRequest(_AudioSource):
    """POST /v1/patterns: a keyword example (``template``), a keyword by its spelling and/or an example
    (``keyword``), or a reference recording (``fingerprint``)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=PATTERN_SOURCES)

    name: str = Field(min_length=1, max_length=64, description="the keyword or the recording's title")
    kind: PatternKind = Field(
        description="template: matched by its sound (mel cepstra, DTW; best for the voice that registered "
        "it). keyword: searched by its pronunciations with PocketSphinx's en-us acoustic model (any "
        "speaker): from text, from an example, or both. fingerprint: a recording found again (music, jingles)"
    )
    text: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="kind keyword only: its spelling, one to eight English words the pronouncing dictionary "
        "(CMUdict) knows; a word it lacks is a 400 naming it (register such a keyword from an example)",
    )

    @model_validator(mode="after")
    def _exactly_one_source(self) -> PatternRequest:
        if self.text is not None and self.kind != "keyword":
            raise ValueError("text is for kind keyword only")
        if self.kind == "keyword" and self.text is not None:
            if self.audio is not None and self.audio_key is not None:
                check_one_source(self.audio, self.audio_key)
            return self
        check_one_source(self.audio, self.audio_key)
        return self


class PatternBody(BaseModel):
    pattern_id: str
    name: str
    kind: PatternKind
    text: str | None = Field(
        default=None, description="a keyword's spelling, when it was registered with one"
    )
    created_at: str | None = None
    duration_s: float | None = None
    artifact_bytes: int | None = None
    rebuilt_at: str | None = Field(
        default=None,
        description="when its artifact was last computed again from what was registered (POST "
        "/v1/patterns/{pattern_id}/rebuild); absent until then",
    )
    index_version: int | None = None
    # a pattern this deployment's publishers registered: matched for every caller, read-only for them
    shared: bool = False


class PatternList(BaseModel):
    patterns: list[PatternBody]
    count: int


class UploadRequest(BaseModel):
    """POST /v1/uploads (the body is optional)."""

    model_config = ConfigDict(extra="forbid")

    # An integer as JSON Schema counts them (1.0 is one, as the OpenAPI document says); a boolean or a string
    # is not a size (lax pydantic would read true as 1 and "5" as 5).
    # The document's maximum is the default limit (a deployment may set max_upload_bytes either way; the
    # service checks the deployment's own, naming the setting).
    content_length: int | None = Field(
        default=None,
        gt=0,
        description="exact size of the clip to upload; the URL then accepts only that size. At most the "
        "deployment's max_upload_bytes (cdk.json; the maximum here is the default)",
        json_schema_extra=lambda schema: _document_on(schema, "integer", maximum=Settings.max_upload_bytes),
    )

    @field_validator("content_length", mode="before")
    @classmethod
    def _json_integer(cls, value: Any) -> Any:
        if value is None or (isinstance(value, int) and not isinstance(value, bool)):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ValueError("content_length must be an integer")


class InvocationAccepted(BaseModel):
    invocation_id: str
    status: Literal["ACCEPTED"]
    mode: Mode
    status_url: str


class ResumeAccepted(BaseModel):
    invocation_id: str
    status: Literal["RUNNING"]
    mode: Mode
    resumed_from: StageName
    status_url: str


class StageProgress(BaseModel):
    """One stage of an invocation as GET /v1/invocations/{id} reports it."""

    name: StageName
    status: StageStatus
    duration_ms: int | None = None
    attempts: int = 0
    started_at: str | None = Field(default=None, description="when its last attempt started (ISO 8601, ms)")
    finished_at: str | None = Field(
        default=None, description="when it succeeded or was skipped (ISO 8601, ms)"
    )
    reason: str | None = None


class InvocationError(BaseModel):
    code: str
    message: str
    stage: str | None = None


RESULT_DESCRIPTION = (
    'when SUCCEEDED: one section per stage (docs/design.md "Result"): audio, denoise, loudness, features '
    "(f0 statistics, voicing, HNR, spectral shape, MFCC, chroma, and the time series f0_track {hop_s, hz: "
    "[Hz or null (unvoiced), at i*hop_s, at most 2000]} and voiced_regions [[start_s, end_s], ...]), matches"
)


class InvocationStatusBody(BaseModel):
    """GET /v1/invocations/{id}."""

    invocation_id: str
    status: InvocationStatus
    mode: Mode
    created_at: str | None = None
    updated_at: str | None = None
    steps: list[str]
    stages: list[StageProgress]
    result: dict[str, Any] | None = Field(default=None, description=RESULT_DESCRIPTION)
    error: InvocationError | None = None


class InvocationSummary(BaseModel):
    """One invocation of a caller's history."""

    invocation_id: str
    status: InvocationStatus
    mode: Mode
    created_at: str = Field(description="when it was accepted (ISO 8601, ms)")
    finished_at: str | None = Field(
        description="when it SUCCEEDED or FAILED (ISO 8601, ms); null while it may still run"
    )
    status_url: str = Field(description="its status document: GET /v1/invocations/{invocation_id}")


class InvocationList(BaseModel):
    """GET /v1/invocations: the caller's invocations, newest first, a page at a time."""

    invocations: list[InvocationSummary]
    count: int
    next_token: str | None = Field(
        description="pass as next_token for the next page; null on the last page (an invocation accepted a "
        "moment ago may take a moment to be listed)"
    )


def status_document(invocation: dict[str, Any]) -> dict[str, Any]:
    """What GET /v1/invocations/{id} answers for `invocation` (service.get_invocation's body), in the API's
    shape: validated by InvocationStatusBody, `result` and `error` only when there is one. Completion
    notifications POST the same document."""
    body = InvocationStatusBody.model_validate(invocation).model_dump(mode="json")
    for optional in ("result", "error"):
        if body[optional] is None:
            del body[optional]
    return body


class AuditedEvent(BaseModel):
    """One event of an invocation, as the audit subscriber kept it."""

    id: str
    detail_type: str = Field(description="InvocationSubmitted, StageCompleted, StageSkipped, …")
    time: str
    detail: dict[str, Any]
    replay_name: str | None = Field(default=None, description="set when the event came from a replay")


class InvocationEvents(BaseModel):
    """GET /v1/invocations/{id}/events (events mode): its events, oldest first."""

    invocation_id: str
    events: list[AuditedEvent]
    count: int


class PatternExample(BaseModel):
    """GET /v1/patterns/{id}/example: where to fetch the clip the pattern was registered from."""

    url: str = Field(description="a presigned S3 GET URL of the clip, as registered")
    content_type: str = Field(description="its media type: audio/wav, audio/flac, audio/ogg or audio/mpeg")
    expires_in: int = Field(description="seconds the URL stays valid")


class UploadCreated(BaseModel):
    audio_key: str
    upload_url: str
    expires_in: int
    max_bytes: int


class Health(BaseModel):
    status: Literal["ok"]
    modes: list[Mode]


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    """Every error response: ``{"error": {"code", "message"}}``."""

    error: ErrorDetail
