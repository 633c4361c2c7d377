"""API handler: every v1 route (docs/design.md "HTTP API") over the service layer.

Thin: Powertools' resolver validates bodies against the pydantic models in api_models.py, the routes call
harmonic_service.service, and errors map to ``{"error": {"code", "message"}}`` with 400/403/404/409/413 (never
a 500 for bad input: validation errors, which Powertools reports as 422, are 400 here). ``Idempotency-Key``
on POST /v1/invocations and POST /v1/patterns makes a retried creation return the first response (Powertools
idempotency on DynamoDB; the same key with another body is a 409). A status document of an invocation that
has not ended carries ``Retry-After`` (when to poll again). The correlation id comes from
``X-Correlation-Id`` (or the API Gateway request id), is logged on every line, travels in every envelope,
and is echoed back. With ``CORS_ALLOW_ORIGIN`` (a web console's origin, cors.py) a request from that origin
gets the CORS headers on every answer, errors included; without it, none.
Audio and presigned URLs are never logged.
"""

from __future__ import annotations

import base64
import functools
import json
import math
import re
import uuid
from typing import Annotated, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Query
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from harmonic_service import cors, service
from harmonic_service.api_models import (
    AnalyzeRequest,
    Health,
    InvocationAccepted,
    InvocationEvents,
    InvocationList,
    InvocationRequest,
    InvocationStatusBody,
    PatternBody,
    PatternExample,
    PatternList,
    PatternRequest,
    ResumeAccepted,
    UploadCreated,
    UploadRequest,
    status_document,
)
from harmonic_service.config import get_settings
from harmonic_service.cors import CORRELATION_HEADER
from harmonic_service.dal import clients
from harmonic_service.errors import BadRequest, Conflict, ServiceError
from harmonic_service.logic import history
from harmonic_service.models import InvocationStatus
from harmonic_service.tenancy import caller_of

logger = Logger(service="harmonic")
tracer = Tracer(service="harmonic", auto_patch=False)  # botocore: dal.clients, on first use
metrics = Metrics(namespace="Harmonic", service="harmonic")
# The routes and error handlers; `resolver` serves them (with the deployment's CORS), `app` documents them.
router = Router()

_CORRELATION_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")  # else the request id is used
# Base64 makes the clip 4/3 larger; JSON adds a little. Bodies beyond this are refused before parsing.
_JSON_OVERHEAD_BYTES = 64 * 1024
IDEMPOTENCY_TTL_S = 24 * 3600
# What a status document of a running invocation tells the client (Retry-After: whole seconds only).
POLL_AGAIN_AFTER_S = 1
# Validation messages name at most this many problems, each field name shortened to this many characters.
_MAX_PROBLEMS = 5
_MAX_FIELD_CHARS = 64


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps({"error": {"code": code, "message": message}}),
        headers=headers,
    )


def _json(status: int, body: dict[str, Any], location: str | None = None) -> Response:
    """A JSON response; `location`: the Location header of a 201 or 202 (what was created, or where to
    follow the accepted work)."""
    headers = {"Location": location} if location else None
    return Response(
        status_code=status, content_type=content_types.APPLICATION_JSON, body=body, headers=headers
    )


def _status_url(invocation_id: str) -> str:
    """Where an invocation's status document is (GET /v1/invocations/{id})."""
    return f"/v1/invocations/{invocation_id}"


def _correlation_id() -> str:
    return logger.get_correlation_id() or str(uuid.uuid4())


def _caller() -> str:
    """Who is calling (tenancy.py): the API key's id or the IAM principal API Gateway authenticated;
    what they create is theirs, and another caller's things do not exist for them."""
    return caller_of(router.current_event.raw_event.get("requestContext"))


# --- idempotent creation ------------------------------------------------------------------------------------

_persistence: dict[tuple[str, int, str], Any] = {}


def _submit(submission: dict[str, Any]) -> dict[str, Any]:
    request = InvocationRequest.model_validate(submission["request"])
    accepted = service.submit_invocation(
        request.audio_bytes(),
        request.audio_key,
        request.mode,
        request.steps,
        request.options,
        correlation_id=submission["correlation_id"],
        callback_url=request.callback_url,
        owner=submission["owner"],
    )
    return {**accepted, "status_url": _status_url(accepted["invocation_id"])}


def _register(submission: dict[str, Any]) -> dict[str, Any]:
    request = PatternRequest.model_validate(submission["request"])
    return service.create_pattern(
        request.name,
        request.kind,
        request.audio_bytes(),
        request.audio_key,
        owner=submission["owner"],
        text=request.text,
    )


def _idempotent(create: Any) -> Any:
    """`create`, idempotent on `submission["idempotency_key"]`; one persistence layer per table, client and
    function (Powertools keys records by the function's name too, so the two creations never collide)."""
    # Powertools' idempotency (and boto3, which its DynamoDB layer imports) loads with the first creation, not
    # at cold start: status polls and pattern listings never need it.
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )

    client = clients.dynamodb()
    cache_key = (get_settings().idempotency_table, id(client), create.__name__)
    if cache_key not in _persistence:
        if any(key[:2] != cache_key[:2] for key in _persistence):
            _persistence.clear()  # a new table or client (tests): the old layers point elsewhere
        store = DynamoDBPersistenceLayer(table_name=cache_key[0], boto3_client=client)
        config = IdempotencyConfig(
            event_key_jmespath="idempotency_key",
            payload_validation_jmespath="request",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=IDEMPOTENCY_TTL_S,
        )
        function = idempotent_function(
            create, data_keyword_argument="submission", persistence_store=store, config=config
        )
        _persistence[cache_key] = (function, config)
    function, config = _persistence[cache_key]
    # the remaining time of this invocation bounds an in-progress record (Powertools' idempotency)
    config.register_lambda_context(router.lambda_context)
    return function


def _create_once(create: Any, submission: dict[str, Any], idempotency_key: str | None) -> dict[str, Any]:
    """`create(submission)`; with an Idempotency-Key, a retry of the same request gets the first response
    (409 when the key comes back with another body, or while the first is still running). Keys are the
    caller's own: the same key from another caller is another request."""
    if not idempotency_key:
        return create(submission)
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
        IdempotencyValidationError,
    )

    submission["idempotency_key"] = f"{submission['owner']} {idempotency_key}"
    try:
        return _idempotent(create)(submission=submission)
    except IdempotencyValidationError:
        message = "this Idempotency-Key was already used with a different request body"
        raise Conflict(message, code="idempotency_conflict") from None
    except IdempotencyAlreadyInProgressError:
        message = "a request with this Idempotency-Key is still being processed; retry shortly"
        raise Conflict(message, code="in_progress") from None


# --- routes -------------------------------------------------------------------------------------------------


@router.get("/v1/health", summary="Liveness, and the orchestration modes this deployment accepts")
def health() -> Health:
    return Health(status="ok", modes=list(get_settings().modes))


@router.post(
    "/v1/invocations",
    summary="Submit a clip; the chain runs asynchronously",
    responses={
        202: {"description": "accepted", "content": {"application/json": {"model": InvocationAccepted}}}
    },
)
def submit_invocation(
    request: Annotated[InvocationRequest, Body()],
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=256)] = None,
) -> Response[InvocationAccepted]:
    submission = {
        "request": request.model_dump(exclude_none=True),
        "correlation_id": _correlation_id(),
        "owner": _caller(),
    }
    accepted = _create_once(_submit, submission, idempotency_key)
    return _json(202, accepted, location=accepted["status_url"])


@router.get("/v1/invocations", summary="The caller's invocations, newest first, a page at a time")
def list_invocations(
    limit: Annotated[
        int,
        Query(ge=1, le=history.MAX_LIMIT, description="invocations per page (1 to 100; default 20)"),
    ] = history.DEFAULT_LIMIT,
    next_token: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=history.MAX_TOKEN_CHARS,
            description="the next_token of the previous page (opaque); none for the first page",
        ),
    ] = None,
) -> InvocationList:
    page = service.list_invocations(owner=_caller(), limit=limit, next_token=next_token)
    for invocation in page["invocations"]:
        invocation["status_url"] = _status_url(invocation["invocation_id"])
    return InvocationList.model_validate(page)


@router.get(
    "/v1/invocations/<invocation_id>",
    summary="Status, per-stage progress, result or error",
    responses={
        200: {
            "description": "the invocation",
            "content": {"application/json": {"model": InvocationStatusBody}},
        }
    },
)
def get_invocation(invocation_id: str) -> Response[dict[str, Any]]:
    document = status_document(service.get_invocation(invocation_id, owner=_caller()))
    ended = document["status"] in (InvocationStatus.SUCCEEDED.value, InvocationStatus.FAILED.value)
    headers = {} if ended else {"Retry-After": str(POLL_AGAIN_AFTER_S)}
    return Response(
        status_code=200, content_type=content_types.APPLICATION_JSON, body=document, headers=headers
    )


@router.get(
    "/v1/invocations/<invocation_id>/events",
    summary="The invocation's events from the audit log of the event bus (events mode)",
    responses={
        200: {
            "description": "its events, oldest first",
            "content": {"application/json": {"model": InvocationEvents}},
        }
    },
)
def get_invocation_events(invocation_id: str) -> Response[dict[str, Any]]:
    events = service.invocation_events(invocation_id, owner=_caller())
    body = InvocationEvents.model_validate(events).model_dump(mode="json")
    for event in body["events"]:
        if event["replay_name"] is None:
            del event["replay_name"]
    return _json(200, body)


@router.post(
    "/v1/invocations/<invocation_id>/resume",
    summary="Restart a FAILED invocation from its last checkpoint",
    responses={202: {"description": "resumed", "content": {"application/json": {"model": ResumeAccepted}}}},
)
def resume_invocation(invocation_id: str) -> Response[ResumeAccepted]:
    resumed = service.resume_invocation(invocation_id, correlation_id=_correlation_id(), owner=_caller())
    status_url = _status_url(invocation_id)
    return _json(202, {**resumed, "status_url": status_url}, location=status_url)


@router.post("/v1/analyze", summary="Run the whole chain synchronously on a small clip; returns the result")
def analyze(request: Annotated[AnalyzeRequest, Body()]) -> dict[str, Any]:
    return service.analyze(
        request.audio_bytes(), request.audio_key, request.steps, request.options, owner=_caller()
    )


@router.post(
    "/v1/uploads",
    summary="A presigned S3 PUT URL for a clip too large to send inline",
    responses={201: {"description": "created", "content": {"application/json": {"model": UploadCreated}}}},
)
def create_upload(request: Annotated[UploadRequest | None, Body()] = None) -> Response[UploadCreated]:
    if request is None and router.current_event.body and router.current_event.json_body is not None:
        # The body is optional, but when there is one it is an UploadRequest: Powertools lets a JSON array
        # through to an optional model as None.
        raise BadRequest("the request body must be a JSON object (or absent)")
    content_length = request.content_length if request else None
    upload = service.create_upload(content_length, owner=_caller())
    return _json(201, upload, location=upload["upload_url"])  # where the clip goes


@router.post(
    "/v1/patterns",
    summary="Register a keyword (by spelling or example), a keyword template or a fingerprinted recording",
    responses={201: {"description": "registered", "content": {"application/json": {"model": PatternBody}}}},
)
def create_pattern(
    request: Annotated[PatternRequest, Body()],
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=256)] = None,
) -> Response[PatternBody]:
    submission = {"request": request.model_dump(exclude_none=True), "owner": _caller()}
    created = _create_once(_register, submission, idempotency_key)
    return _json(201, created, location=f"/v1/patterns/{created['pattern_id']}")


@router.get("/v1/patterns", summary="The caller's registered patterns, and those the deployment shares")
def list_patterns() -> PatternList:
    return PatternList.model_validate(service.list_patterns(owner=_caller()))


@router.get("/v1/patterns/<pattern_id>", summary="One registered pattern (the caller's, or a shared one)")
def get_pattern(pattern_id: str) -> PatternBody:
    return PatternBody.model_validate(service.get_pattern(pattern_id, owner=_caller()))


@router.get(
    "/v1/patterns/<pattern_id>/example",
    summary="Where to fetch the clip a pattern was registered from (a presigned S3 GET URL)",
)
def get_pattern_example(pattern_id: str) -> PatternExample:
    return PatternExample.model_validate(service.pattern_example(pattern_id, owner=_caller()))


@router.post(
    "/v1/patterns/<pattern_id>/rebuild",
    summary="Compute a pattern again from its stored example (and text) with this deployment's code",
    description="How a pattern registered by an earlier version gets the current format (a template's speech "
    "embeddings), under the same id. 409 no_example when nothing to compute it from was kept; 409 "
    "example_rejected when what was registered is no longer accepted.",
)
def rebuild_pattern(pattern_id: str) -> PatternBody:
    return PatternBody.model_validate(service.rebuild_pattern(pattern_id, owner=_caller()))


@router.delete(
    "/v1/patterns/<pattern_id>",
    summary="Remove a pattern from the registry",
    responses={204: {"description": "deleted"}},
)
def delete_pattern(pattern_id: str) -> Response[str]:
    service.delete_pattern(pattern_id, owner=_caller())
    return Response(status_code=204, body="")  # no body, so no content type


# --- errors -------------------------------------------------------------------------------------------------


@router.exception_handler(ServiceError)
def _service_error(error: ServiceError) -> Response:
    if error.status >= 500:
        logger.error(f"service error {error.code}: {error.message}")
    return _error(error.status, error.code, error.message)


@router.exception_handler(RequestValidationError)
def _validation_error(error: RequestValidationError) -> Response:
    """Powertools' 422 → 400 with a readable message (field path and reason; never the input itself)."""
    problems: list[str] = []
    for detail in error.errors():
        if detail.get("type") == "json_invalid":
            return _error(400, "bad_request", "the request body is not valid JSON")
        # Field names can be the client's (unknown keys): shortened, so a huge key is not echoed whole.
        location = ".".join(
            str(part)[:_MAX_FIELD_CHARS] for part in detail.get("loc", ()) if part not in ("body", "query")
        )
        reason = str(detail.get("msg", "invalid")).removeprefix("Value error, ")
        problem = f"{location}: {reason}" if location else reason
        if problem not in problems:
            problems.append(problem)
    message = "; ".join(problems[:_MAX_PROBLEMS]) or "invalid request"
    if len(problems) > _MAX_PROBLEMS:
        message += f"; and {len(problems) - _MAX_PROBLEMS} more"
    return _error(400, "bad_request", message)


@router.exception_handler(RequestUnsupportedContentType)
def _unsupported_content_type(_: RequestUnsupportedContentType) -> Response:
    """A body sent as text/plain, octet-stream…: bad input, a 400 (the catch-all below would say 500)."""
    return _error(400, "bad_request", "the request body must be JSON (Content-Type: application/json)")


@router.exception_handler(NotFoundError)
def _not_found(_: Exception) -> Response:
    event = router.current_event
    return _error(404, "not_found", f"no route {event.http_method} {event.path}")


@router.exception_handler(Exception)
def _unexpected(error: Exception) -> Response:
    logger.exception("unexpected error")
    return _error(500, "internal", "internal error; the request id is in the X-Correlation-Id header")


# --- the resolver -------------------------------------------------------------------------------------------


def _cors_config(origin: str) -> CORSConfig | None:
    """CORS for a console at `origin` (cors.py); None (no CORS headers) when there is none."""
    if not origin:
        return None
    return CORSConfig(
        allow_origin=origin,
        allow_headers=list(cors.ALLOW_HEADERS),
        expose_headers=list(cors.EXPOSE_HEADERS),
        max_age=cors.MAX_AGE_S,
        allow_credentials=False,
    )


@functools.cache
def resolver(cors_origin: str = "") -> APIGatewayRestResolver:
    """The routes above with CORS headers for `cors_origin` (none when empty): built once per origin, on
    first use, since Powertools fixes CORS when a resolver is made and the origin is a setting
    (CORS_ALLOW_ORIGIN, read with the others by config.get_settings)."""
    # A response that does not match its model is our bug: a 500, not the client's 400.
    built = APIGatewayRestResolver(
        enable_validation=True, response_validation_error_http_code=500, cors=_cors_config(cors_origin)
    )
    built.include_router(router)
    return built


# The routes without CORS: what docs/openapi.json documents (scripts/export_openapi.py).
app = resolver()


def _cors_headers(event: dict[str, Any]) -> dict[str, str]:
    """The CORS headers the resolver would add (for responses made without it): none unless the request's
    Origin is the configured one."""
    config = _cors_config(get_settings().cors_allow_origin)
    headers = {name.lower(): value for name, value in (event.get("headers") or {}).items()}
    origin = config.allowed_origin(headers.get("origin")) if config else None
    return config.to_dict(origin) if config and origin else {}


# --- entry point --------------------------------------------------------------------------------------------


def _body_limit() -> int:
    return math.ceil(get_settings().max_inline_bytes * 4 / 3) + _JSON_OVERHEAD_BYTES


def _raw_error(status: int, code: str, message: str, event: dict[str, Any]) -> dict[str, Any]:
    """A proxy response built without the resolver (for requests refused before routing), with the CORS
    headers the resolver would have added to `event`'s answer."""
    return {
        "statusCode": status,
        "headers": {"Content-Type": content_types.APPLICATION_JSON, **_cors_headers(event)},
        "body": json.dumps({"error": {"code": code, "message": message}}),
        "isBase64Encoded": False,
    }


def _utf8_body(event: dict[str, Any]) -> bool:
    """Whether a binary (base64) body decodes to text; JSON bodies must."""
    if not event.get("isBase64Encoded") or not event.get("body"):
        return True
    try:
        base64.b64decode(event["body"]).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return False
    return True


def _as_json_request(event: dict[str, Any]) -> dict[str, Any] | None:
    """The event with its Content-Type made plain for the resolver, or None when the body is not JSON.

    The API takes JSON bodies only, while Powertools parses a body by its Content-Type: case-sensitively,
    and also as form or multipart data (a multipart type without a boundary is a ValueError there, a 500).
    So a JSON type is passed on in lower case, an empty body's type is dropped (it declares nothing), and a
    body of any other type is refused.
    """
    names = [name for name in event.get("headers") or {} if name.lower() == "content-type"]
    declared = str((event.get("headers") or {}).get(names[-1]) or "") if names else ""
    if not declared:
        return event
    media_type = declared.split(";", 1)[0].strip().lower()
    if event.get("body") and media_type != content_types.APPLICATION_JSON:
        return None
    headers = {name: value for name, value in event["headers"].items() if name not in names}
    multi = {
        name: v
        for name, v in (event.get("multiValueHeaders") or {}).items()
        if name.lower() != "content-type"
    }
    if event.get("body"):
        headers["Content-Type"] = declared.lower()
        multi["Content-Type"] = [declared.lower()]
    return {**event, "headers": headers, "multiValueHeaders": multi}


def _request_correlation_id(event: dict[str, Any]) -> str:
    headers = {name.lower(): value for name, value in (event.get("headers") or {}).items()}
    given = headers.get(CORRELATION_HEADER.lower(), "")
    if _CORRELATION_ID.match(given or ""):
        return given
    return (event.get("requestContext") or {}).get("requestId") or str(uuid.uuid4())


@metrics.log_metrics(capture_cold_start_metric=True)
@tracer.capture_lambda_handler(capture_response=False)
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    correlation_id = _request_correlation_id(event)
    logger.set_correlation_id(correlation_id)
    body = event.get("body") or ""
    if len(body) > _body_limit():  # refused before any parsing: the limit is the decoded clip's
        message = f"the request body exceeds {_body_limit()} bytes; send large clips through /v1/uploads"
        result = _raw_error(413, "payload_too_large", message, event)
    elif not _utf8_body(event):
        result = _raw_error(400, "bad_request", "the request body is not UTF-8 JSON", event)
    elif (json_event := _as_json_request(event)) is None:
        result = _raw_error(
            400, "bad_request", "the request body must be JSON (Content-Type: application/json)", event
        )
    else:
        result = resolver(get_settings().cors_allow_origin).resolve(json_event, context)
    result["headers"] = {**(result.get("headers") or {}), CORRELATION_HEADER: correlation_id}
    metrics.add_metric(name="ApiRequests", unit=MetricUnit.Count, value=1)
    status = int(result.get("statusCode", 500))
    if status >= 500:
        metrics.add_metric(name="ApiServerErrors", unit=MetricUnit.Count, value=1)
    logger.info(
        "request", extra={"path": event.get("path"), "method": event.get("httpMethod"), "status": status}
    )
    return result
