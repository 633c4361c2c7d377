"""The service below the HTTP API: submit, read, resume, analyze, upload (docs/design.md "Service interface").

AWS is reached only through the dal adapters. Every error meant for the client is a ServiceError subclass
carrying its HTTP status and error code; anything else is a server fault.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from typing import Any

from aws_lambda_powertools import Logger

from harmonic_service import audio_formats, events
from harmonic_service.config import MODES, get_settings
from harmonic_service.dal import audit, bus, checkpoints, executions, payloads, queues, registry
from harmonic_service.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    ServiceError,
    UnknownInvocation,
)
from harmonic_service.logic import history
from harmonic_service.logic.callbacks import check_callback_url
from harmonic_service.logic.options import Options, parse_options, resolve_steps
from harmonic_service.logic.sources import check_one_source
from harmonic_service.models import Envelope, Invocation, InvocationStatus, StageStatus
from harmonic_service.stages import STAGE_NAMES
from harmonic_service.tenancy import ANONYMOUS, Viewer

_PATTERN_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

__all__ = [
    "BadRequest",
    "Conflict",
    "Forbidden",
    "NotFound",
    "PayloadTooLarge",
    "ServiceError",
    "analyze",
    "create_upload",
    "get_invocation",
    "list_invocations",
    "resume_invocation",
    "submit_invocation",
]

logger = Logger(service="harmonic", child=True)

# Enough of a clip to see its container (audio_formats.py); the full decode (and its errors) is ingest's.
_HEADER_BYTES = audio_formats.HEADER_BYTES
_MAX_ID_LENGTH = 80


# --- validation -----------------------------------------------------------------------------------------


def _resolve_mode(mode: str | None) -> str:
    settings = get_settings()
    if mode is None:
        mode = settings.modes[0]
    if mode not in MODES:
        raise BadRequest(f"unknown mode {mode!r}; modes are {', '.join(MODES)}")
    missing = (mode == "statemachine" and not settings.state_machine_arn) or (
        mode == "events" and not settings.event_bus_name
    )
    if mode not in settings.modes or missing:
        raise BadRequest(f"mode {mode} is not deployed here; available: {', '.join(settings.modes)}")
    return mode


def _resolve_steps(steps: Sequence[str] | None) -> list[str]:
    try:
        return resolve_steps(steps)
    except ValueError as error:
        raise BadRequest(str(error)) from None


def _resolve_options(options: dict[str, Any] | None, viewer: Viewer | None = None) -> Options:
    """Validated options; `options.patterns` must each name a registered pattern (by id or name) that
    `viewer` sees (None: any)."""
    try:
        opts = parse_options(options)
    except ValueError as error:
        raise BadRequest(str(error)) from None
    if opts.patterns:
        known = {key for item in registry.list_all(viewer) for key in (item["pattern_id"], item["name"])}
        unknown = [selector for selector in opts.patterns if selector not in known]
        if unknown:
            raise BadRequest(
                f"option patterns: no registered pattern has the id or name {', '.join(map(repr, unknown))} "
                "(GET /v1/patterns lists them)"
            )
    return opts


def _resolve_callback(callback_url: str | None) -> str | None:
    """The request's callback_url, checked (logic/callbacks.py); BadRequest where notifications are not
    deployed (they need the event bus: an orchestration that includes events)."""
    if callback_url is None:
        return None
    settings = get_settings()
    if not (settings.event_bus_name and settings.callback_secret_id):
        raise BadRequest(
            "callback_url: completion notifications are not deployed here (they come with the event bus: "
            f"an orchestration that includes events; this one is {settings.orchestration})"
        )
    try:
        return check_callback_url(callback_url, allow_http=settings.callback_allow_http)
    except ValueError as error:
        raise BadRequest(str(error)) from None


def _check_audio_header(head: bytes) -> str:
    """A cheap look at the first bytes (audio_formats.py): the format of one of the accepted containers, or
    a 400 that says what it is and what is accepted. The full decode is the ingest stage's."""
    try:
        return audio_formats.sniff(head)
    except ValueError as error:
        raise BadRequest(str(error), code="invalid_audio") from None


def _one_source(audio: bytes | None, audio_key: str | None) -> None:
    try:
        check_one_source(audio, audio_key)
    except ValueError as error:
        raise BadRequest(str(error)) from None


def _check_inline(audio: bytes, limit: int) -> str:
    """The clip's format (audio_formats.sniff) after checking its size and header."""
    if len(audio) > limit:
        raise PayloadTooLarge(
            f"the inline clip is {len(audio)} bytes; the limit is {limit} "
            "(upload larger clips via /v1/uploads)"
        )
    return _check_audio_header(audio[:_HEADER_BYTES])


def _check_upload(audio_key: str, limit: int, owner: str) -> str:
    """The format (audio_formats.sniff) of `owner`'s upload after checking its key, presence, size limit
    and header."""
    if not payloads.is_upload_key(audio_key, owner):
        raise BadRequest("audio_key must be a key POST /v1/uploads returned to this caller")
    size = payloads.size_of(audio_key)
    if size is None:
        raise BadRequest(f"nothing was uploaded at {audio_key} (or the upload expired)")
    if size > limit:
        raise PayloadTooLarge(f"the uploaded clip is {size} bytes; the limit is {limit}")
    return _check_audio_header(payloads.get_head_bytes(audio_key, _HEADER_BYTES))


def _check_id(invocation_id: str) -> None:
    if not invocation_id or len(invocation_id) > _MAX_ID_LENGTH:
        raise NotFound(f"no invocation {invocation_id!r}")


# --- dispatch -------------------------------------------------------------------------------------------


def _announce(envelope: Envelope, restart: Sequence[str]) -> None:
    """Events mode: the fact that starts the chain (a new invocation), or the resumes of `restart`."""
    ids = {"invocation_id": envelope.invocation_id, "correlation_id": envelope.correlation_id}
    if not restart:
        bus.publish(events.InvocationSubmitted(**ids, input_key=envelope.input_key or ""))
    else:
        bus.publish(*(events.InvocationResumed(**ids, stage=stage) for stage in restart))


def _dispatch(envelope: Envelope, execution_name: str, restart: Sequence[str] = ()) -> None:
    """Hand the envelope to its orchestration; on failure, FAILED (resumable) and the error re-raised.

    `restart`: for a resume, the stages that run again (events mode resumes each of them).
    """
    try:
        if envelope.mode == "pipeline":
            queues.send_envelope(envelope)
        elif envelope.mode == "events":
            _announce(envelope, restart)
        else:
            started = executions.start_execution(envelope, name=execution_name)
            if not started:
                logger.info("execution already started", extra={"execution_name": execution_name})
    except Exception:
        checkpoints.fail(
            envelope.invocation_id,
            stage=envelope.stage,
            code="dispatch_failed",
            message=f"could not start the {envelope.mode} orchestration; resume to retry",
        )
        raise


# --- the interface --------------------------------------------------------------------------------------


def submit_invocation(
    audio: bytes | None,
    audio_key: str | None,
    mode: str | None,
    steps: list[str] | None,
    options: dict[str, Any] | None,
    correlation_id: str,
    callback_url: str | None = None,
    owner: str = ANONYMOUS,
) -> dict[str, Any]:
    """Accept a clip of `owner` (tenancy.py) for asynchronous processing: `{"invocation_id", "status":
    "ACCEPTED", "mode"}`.

    Checks the request and the clip's container header (the full decode is the ingest stage's), stores the
    clip at invocations/<id>/input.wav, creates the invocation item and dispatches its first stage. With
    `callback_url`, the end of the invocation is POSTed there (handlers/notify.py).
    """
    settings = get_settings()
    _one_source(audio, audio_key)
    mode = _resolve_mode(mode)
    run_steps = _resolve_steps(steps)
    opts = _resolve_options(options, _viewer(owner))
    callback = _resolve_callback(callback_url)
    if audio is not None:
        _check_inline(audio, settings.max_inline_bytes)
    else:
        assert audio_key is not None
        _check_upload(audio_key, settings.max_upload_bytes, owner)

    invocation_id = str(uuid.uuid4())
    key = payloads.input_key(invocation_id)
    if audio is not None:
        payloads.put_bytes(key, audio, content_type="audio/wav")
    else:
        payloads.copy(audio_key, key)
    checkpoints.create(
        invocation_id,
        mode=mode,
        correlation_id=correlation_id,
        input_key=key,
        steps=run_steps,
        options=opts.to_dict(),
        callback_url=callback,
        owner=owner,
    )
    envelope = Envelope(
        invocation_id=invocation_id,
        correlation_id=correlation_id,
        stage=STAGE_NAMES[0],
        mode=mode,
        input_key=key,
        options=opts.to_dict(),
        steps=run_steps,
    )
    _dispatch(envelope, execution_name=invocation_id)
    logger.info("invocation accepted", extra={"invocation_id": invocation_id, "mode": mode})
    return {"invocation_id": invocation_id, "status": InvocationStatus.ACCEPTED.value, "mode": mode}


def _viewer(owner: str) -> Viewer:
    return Viewer.of(owner, get_settings().shared_pattern_owners)


def _owned_invocation(invocation_id: str, owner: str | None) -> Invocation:
    """The invocation item; NotFound when there is none or (`owner` given) it is another caller's: to
    them it does not exist, so ids do not leak. `owner` None: an internal caller, who sees every one."""
    _check_id(invocation_id)
    item = checkpoints.get(invocation_id)
    if item is None or (owner is not None and item.owner != owner):
        raise NotFound(f"no invocation {invocation_id}")
    return item


def get_invocation(invocation_id: str, owner: str | None = None) -> dict[str, Any]:
    """The GET /v1/invocations/{id} body; NotFound for an unknown id or another caller's.

    `{"invocation_id", "status", "mode", "created_at", "updated_at", "steps", "stages": [{"name", "status",
    "duration_ms", "attempts"} (+ "reason" when SKIPPED)], "result"? (SUCCEEDED), "error"? (FAILED)}`.
    """
    item = _owned_invocation(invocation_id, owner)
    stages = []
    for name in STAGE_NAMES:
        checkpoint = item.stage(name)
        stage: dict[str, Any] = {
            "name": name,
            "status": checkpoint.status.value,
            "duration_ms": checkpoint.duration_ms,
            "attempts": checkpoint.attempts,
            "started_at": checkpoint.started_at,
            "finished_at": checkpoint.completed_at,
        }
        if checkpoint.status == StageStatus.SKIPPED:
            stage["reason"] = checkpoint.skip_reason
        stages.append(stage)
    body: dict[str, Any] = {
        "invocation_id": invocation_id,
        "status": item.status.value,
        "mode": item.mode,
        "created_at": item.created_at,
        "updated_at": item.updated_at,
        "steps": item.steps,
        "stages": stages,
    }
    if item.status == InvocationStatus.SUCCEEDED:
        body["result"] = item.result if item.result is not None else payloads.get_json(item.result_key)
    if item.error is not None:
        body["error"] = item.error.model_dump()
    return body


def list_invocations(
    owner: str = ANONYMOUS, limit: int = history.DEFAULT_LIMIT, next_token: str | None = None
) -> dict[str, Any]:
    """The GET /v1/invocations body without the status URLs: `owner`'s invocations, newest first, `limit`
    (1 to 100) at a time, from where `next_token` (the previous page's) says.

    `{"invocations": [{"invocation_id", "status", "mode", "created_at", "finished_at"}], "count",
    "next_token"}`: `finished_at` is null until the invocation ends, `next_token` null on the last page.
    BadRequest naming the parameter for a limit out of range or a next_token this API did not issue to
    `owner`.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= history.MAX_LIMIT:
        raise BadRequest(f"limit must be an integer from 1 to {history.MAX_LIMIT}")
    after = None
    if next_token is not None:
        try:
            after = history.page_start(next_token, owner)
        except ValueError:
            raise BadRequest(
                "next_token is not a token this API gave this caller: pass the previous page's next_token "
                "unchanged, or none for the first page"
            ) from None
    items, following = checkpoints.owned_by(owner, limit, after)
    invocations = [item.model_dump(mode="json") for item in items]
    return {
        "invocations": invocations,
        "count": len(invocations),
        "next_token": history.page_token(owner, *following) if following else None,
    }


def invocation_events(invocation_id: str, owner: str | None = None) -> dict[str, Any]:
    """The GET /v1/invocations/{id}/events body: the invocation's events from the audit log, oldest first.

    NotFound for an unknown invocation; an invocation of another mode has only its end
    (`InvocationCompleted` or `InvocationFailed`, which every mode publishes). BadRequest when the audit log
    is not deployed (no events mode).
    """
    _owned_invocation(invocation_id, owner)
    if not get_settings().audit_table:
        raise BadRequest("the audit log of the events mode is not deployed here")
    found = audit.events_of(invocation_id)
    return {"invocation_id": invocation_id, "events": found, "count": len(found)}


def resume_invocation(invocation_id: str, correlation_id: str, owner: str | None = None) -> dict[str, Any]:
    """Restart a FAILED invocation from its first stage that is neither SUCCEEDED nor SKIPPED.

    → `{"invocation_id", "status": "RUNNING", "mode", "resumed_from"}`; NotFound (also another caller's);
    Conflict when not FAILED.
    """
    _owned_invocation(invocation_id, owner)  # the owner never changes: checked once, before the transition
    try:
        stage, item = checkpoints.prepare_resume(invocation_id)
    except UnknownInvocation:
        raise NotFound(f"no invocation {invocation_id}") from None
    except checkpoints.InvalidStateError as error:
        message = f"invocation {invocation_id} is {error.status}; only a FAILED one can be resumed"
        raise Conflict(message) from None
    envelope = Envelope(
        invocation_id=invocation_id,
        correlation_id=correlation_id,
        stage=stage,
        mode=item.mode,
        input_key=item.audio_key_for(stage),
        options=item.options,
        steps=item.steps,
    )
    _dispatch(
        envelope,
        execution_name=f"{invocation_id}-resume-{uuid.uuid4().hex[:8]}",
        restart=item.ready_stages() or [stage],
    )
    logger.info("invocation resumed", extra={"invocation_id": invocation_id, "resumed_from": stage})
    return {
        "invocation_id": invocation_id,
        "status": InvocationStatus.RUNNING.value,
        "mode": item.mode,
        "resumed_from": stage,
    }


def analyze(
    audio: bytes | None,
    audio_key: str | None,
    steps: list[str] | None,
    options: dict[str, Any] | None,
    owner: str | None = None,
) -> dict[str, Any]:
    """Run the whole chain in this process and return the result (docs/design.md "Result"); the patterns
    matched are `owner`'s and the publishers' (None: every one).

    For small clips: the size limit is MAX_INLINE_BYTES for inline and uploaded audio alike. Bad audio is
    BadRequest with code "invalid_audio".
    """
    settings = get_settings()
    _one_source(audio, audio_key)
    run_steps = _resolve_steps(steps)
    viewer = _viewer(owner) if owner is not None else None
    opts = _resolve_options(options, viewer)
    if audio is None:
        assert audio_key is not None
        _check_upload(audio_key, settings.max_inline_bytes, owner or ANONYMOUS)
        audio = payloads.get_bytes(audio_key)
    _check_inline(audio, settings.max_inline_bytes)
    # The DSP (numpy, SciPy, the harmonic library) is imported by the routes that run it, never at cold
    # start: status polls, pattern listings and uploads share this function and need none of it.
    from harmonic import InvalidAudio
    from harmonic_service import pattern_cache
    from harmonic_service.logic.chain import run_chain

    try:
        return run_chain(
            audio,
            run_steps,
            opts,
            limits=settings.wav_limits,
            patterns=pattern_cache.current(),
            viewer=viewer,
        )
    except InvalidAudio as error:
        raise BadRequest(str(error), code="invalid_audio") from None


def create_upload(content_length: int | None, owner: str = ANONYMOUS) -> dict[str, Any]:
    """A presigned S3 PUT for a clip too large to inline.

    → `{"audio_key", "upload_url", "expires_in", "max_bytes"}`.

    With `content_length` the URL only accepts a body of exactly that size.
    """
    settings = get_settings()
    if content_length is not None:
        if isinstance(content_length, bool) or not isinstance(content_length, int) or content_length <= 0:
            raise BadRequest("content_length must be a positive integer")
        if content_length > settings.max_upload_bytes:
            raise PayloadTooLarge(
                f"content_length {content_length} exceeds the upload limit "
                f"of {settings.max_upload_bytes} bytes"
            )
    key = payloads.new_upload_key(owner)
    url = payloads.presigned_put_url(key, settings.upload_url_expiry_s, content_length)
    logger.info("upload URL issued", extra={"audio_key": key})
    return {
        "audio_key": key,
        "upload_url": url,
        "expires_in": settings.upload_url_expiry_s,
        "max_bytes": settings.max_upload_bytes,
    }


# --- the pattern registry --------------------------------------------------------------------------------


def _pattern_body(item: dict[str, Any], viewer: Viewer) -> dict[str, Any]:
    keys = ("pattern_id", "name", "kind", "text", "created_at", "duration_s", "artifact_bytes", "rebuilt_at")
    return {**{key: item.get(key) for key in keys}, "shared": viewer.shared(item.get("owner"))}


def _visible_pattern(pattern_id: str, viewer: Viewer) -> dict[str, Any]:
    item = registry.get(pattern_id) if _PATTERN_ID.match(pattern_id) else None
    if item is None or not viewer.sees(item.get("owner")):
        raise NotFound(f"no pattern {pattern_id!r}")
    return item


def create_pattern(
    name: str,
    kind: str,
    audio: bytes | None,
    audio_key: str | None,
    owner: str = ANONYMOUS,
    text: str | None = None,
) -> dict[str, Any]:
    """Register a pattern of `owner` → 201 body with `pattern_id`.

    ``template`` and ``fingerprint`` need a clip (`audio` or `audio_key`). ``keyword`` needs its `text` (a
    spelling the dictionary knows), a clip of it spoken, or both. The clip is validated like an invocation's
    (BadRequest `invalid_audio` for unusable audio or an example without speech); the artifact is computed
    here, stored in S3 with the clip itself (its example, to play back: `pattern_example`), and the
    registry's version is bumped.
    """
    settings = get_settings()
    name = (name or "").strip()
    from harmonic import InvalidAudio  # the DSP, for this route only (see analyze)
    from harmonic_service.logic import patterns as pattern_logic

    if not 1 <= len(name) <= pattern_logic.MAX_NAME_LENGTH:
        raise BadRequest(f"name must be 1 to {pattern_logic.MAX_NAME_LENGTH} characters")
    if kind not in pattern_logic.KINDS:
        raise BadRequest(f"kind must be one of {', '.join(pattern_logic.KINDS)}")
    if kind != "keyword" and text is not None:
        raise BadRequest("text is for kind keyword only (a template or fingerprint is registered from audio)")
    if kind == "keyword":
        _check_keywords_available()
        if audio is not None and audio_key is not None:
            _one_source(audio, audio_key)
        if not (text or "").strip() and audio is None and audio_key is None:
            raise BadRequest("a keyword needs text, an example (audio or audio_key), or both")
    else:
        _one_source(audio, audio_key)
    audio_format: str | None = None
    if audio is None and audio_key is not None:
        audio_format = _check_upload(audio_key, settings.max_upload_bytes, owner)
        audio = payloads.get_bytes(audio_key)
    elif audio is not None:
        audio_format = _check_inline(audio, settings.max_inline_bytes)
    limits = settings.wav_limits
    try:
        if kind == "keyword":
            from harmonic.phonetic import UnknownWords

            try:
                artifact, duration_s = pattern_logic.build_keyword(text, audio, limits)
            except UnknownWords as error:  # a word it cannot pronounce, or no word, or too long
                raise BadRequest(str(error), code="unknown_word" if error.words else "bad_request") from None
        else:
            assert audio is not None
            artifact, duration_s = pattern_logic.build_artifact(kind, audio, limits)
    except InvalidAudio as error:
        raise BadRequest(str(error), code="invalid_audio") from None
    pattern_id = str(uuid.uuid4())
    item = registry.put(
        pattern_id,
        name,
        kind,
        artifact,
        duration_s,
        owner,
        example=audio,
        example_format=audio_format,
        text=text.strip() if text else None,
    )
    logger.info("pattern registered", extra={"pattern_id": pattern_id, "kind": kind})
    return {**_pattern_body(item, _viewer(owner)), "index_version": item["index_version"]}


def _check_keywords_available() -> None:
    """Keywords need PocketSphinx, in the speech layer that only the python3.13 runtime has."""
    from harmonic import phonetic

    if not phonetic.available():
        raise BadRequest(
            "keyword patterns need PocketSphinx, which this deployment lacks: deploy with python_runtime "
            "3.13 (cdk.json), or register a template",
            code="keywords_unavailable",
        )


def list_patterns(owner: str = ANONYMOUS) -> dict[str, Any]:
    """The patterns `owner` sees: its own and the publishers' (``shared: true``), oldest first."""
    viewer = _viewer(owner)
    items = registry.list_all(viewer)
    return {"patterns": [_pattern_body(item, viewer) for item in items], "count": len(items)}


def get_pattern(pattern_id: str, owner: str = ANONYMOUS) -> dict[str, Any]:
    viewer = _viewer(owner)
    return _pattern_body(_visible_pattern(pattern_id, viewer), viewer)


def pattern_example(pattern_id: str, owner: str = ANONYMOUS) -> dict[str, Any]:
    """The clip a pattern `owner` sees was registered from: `{"url": a presigned S3 GET, "content_type",
    "expires_in"}`. NotFound for a pattern it does not see, and for one registered before examples were
    kept (it has none)."""
    item = _visible_pattern(pattern_id, _viewer(owner))
    if not item.get("example_key") and item.get("kind") == "keyword":
        raise NotFound(f"pattern {pattern_id!r} is a keyword registered by its spelling: it has no example")
    if not item.get("example_key"):
        raise NotFound(
            f"pattern {pattern_id!r} was registered before examples were kept: it has no example to play "
            "(register it again to keep one)"
        )
    expires_in = get_settings().example_url_expiry_s
    return {
        "url": payloads.presigned_get_url(item["example_key"], expires_in),
        "content_type": item.get("example_content_type") or "application/octet-stream",
        "expires_in": expires_in,
    }


def rebuild_pattern(pattern_id: str, owner: str = ANONYMOUS) -> dict[str, Any]:
    """Compute `owner`'s pattern again from what was registered (its stored example, and a keyword's text)
    with this deployment's code, and store it under the same id: how a pattern stored by an earlier version
    gets the current format (a template's speech embeddings, a keyword's synthesized examples:
    docs/matching.md). The pattern's body, with ``rebuilt_at``; every match function re-reads it.

    NotFound for a pattern `owner` does not see, Forbidden (``read_only``) for a publisher's, Conflict
    ``no_example`` when nothing to compute it from was kept (a template or fingerprint registered before
    examples were kept: register it again), Conflict ``example_rejected`` when its stored example (or
    text) is no longer accepted, with the reason.
    """
    from harmonic import InvalidAudio  # the DSP, for this route only (see analyze)
    from harmonic_service.logic import patterns as pattern_logic

    viewer = _viewer(owner)
    item = _visible_pattern(pattern_id, viewer)
    if not viewer.may_change(item.get("owner")):
        raise Forbidden(
            f"pattern {pattern_id!r} is shared by this deployment and read-only", code="read_only"
        )
    kind = item["kind"]
    if kind == "keyword":
        _check_keywords_available()
    if not item.get("example_key") and not (kind == "keyword" and item.get("text")):
        raise Conflict(
            f"pattern {pattern_id!r} was registered before examples were kept: there is nothing to compute "
            "it again from (register it again from a clip)",
            code="no_example",
        )
    try:
        example = registry.example(item)
    except KeyError:
        raise Conflict(
            f"the example of pattern {pattern_id!r} is gone from the payload bucket (register it again)",
            code="no_example",
        ) from None
    try:
        artifact = pattern_logic.rebuild_artifact(kind, item.get("text"), example, get_settings().wav_limits)
    except (InvalidAudio, ValueError) as error:  # phonetic.UnknownWords is a ValueError
        raise Conflict(
            f"pattern {pattern_id!r} cannot be computed again from what was registered: {error}",
            code="example_rejected",
        ) from None
    updated = registry.replace_artifact(pattern_id, owner, artifact)
    if updated is None:  # deleted meanwhile
        raise NotFound(f"no pattern {pattern_id!r}")
    logger.info("pattern rebuilt", extra={"pattern_id": pattern_id, "artifact_bytes": len(artifact)})
    return _pattern_body(updated, viewer)


def delete_pattern(pattern_id: str, owner: str = ANONYMOUS) -> None:
    """Delete `owner`'s pattern; NotFound for one it does not see, Forbidden for a publisher's."""
    viewer = _viewer(owner)
    item = _visible_pattern(pattern_id, viewer)
    if not viewer.may_change(item.get("owner")):
        raise Forbidden(
            f"pattern {pattern_id!r} is shared by this deployment and read-only", code="read_only"
        )
    if not registry.delete(pattern_id, owner):
        raise NotFound(f"no pattern {pattern_id!r}")
    logger.info("pattern deleted", extra={"pattern_id": pattern_id})
