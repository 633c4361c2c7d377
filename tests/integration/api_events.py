"""API Gateway REST (v1) Lambda proxy events, and `call` to drive the API handler with them.

The events are the local stack's (`local.http_front.proxy_event`, the translation `make run` serves over
HTTP): method, path, query string, headers (single and multi-value), body with ``isBase64Encoded`` and a
``requestContext`` with ``requestId`` and ``identity``. `api_event` adds what tests need on top: JSON
bodies from Python values, no body at all, a forced base64 body and a chosen request id. `call` runs one
request through `harmonic_service.handlers.api.handler` and returns an `ApiResponse` that unpacks as
``status, headers, body = call(...)``, so tests read like HTTP.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from local.http_front import proxy_event
from local.stack import FakeLambdaContext

__all__ = ["ApiResponse", "FakeLambdaContext", "api_event", "call"]


def _body_bytes(body: Any) -> bytes:
    """dicts, lists, numbers… as JSON; str as UTF-8; bytes as given."""
    if isinstance(body, bytes | bytearray):
        return bytes(body)
    if isinstance(body, str):
        return body.encode("utf-8")
    return json.dumps(body).encode("utf-8")


def api_event(
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    *,
    base64_encoded: bool = False,
    request_id: str | None = None,
    source_ip: str = "198.51.100.7",
    query: dict[str, str] | None = None,
    identity: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One API Gateway REST proxy event.

    `body`: None (no body), str/bytes (sent as given; non-UTF-8 bytes are base64-encoded, as API Gateway
    does), anything else as JSON. `base64_encoded` forces ``isBase64Encoded``. `request_id` replaces the
    generated ``requestContext.requestId`` (the correlation id when the request has no valid one).
    `identity` is merged into ``requestContext.identity`` (the caller API Gateway authenticated:
    ``userArn`` with IAM auth, ``apiKeyId`` with an API key).
    """
    raw = None if body is None else _body_bytes(body)
    raw_path = f"{path}?{urlencode(query)}" if query else path
    event = proxy_event(method, raw_path, dict(headers or {}), raw or b"", source_ip=source_ip)
    if raw is not None and not raw:
        event["body"] = ""  # an empty body, not a missing one
    if raw and base64_encoded and not event["isBase64Encoded"]:
        event["body"], event["isBase64Encoded"] = base64.b64encode(raw).decode("ascii"), True
    if identity:
        event["requestContext"]["identity"].update(identity)
    if request_id is not None:
        event["requestContext"]["requestId"] = event["requestContext"]["extendedRequestId"] = request_id
    return event


@dataclass
class ApiResponse:
    """What the handler returned, decoded: status, headers (single-valued), the JSON body (or None) and the
    raw proxy response. Unpacks as ``status, headers, body``."""

    status: int
    headers: dict[str, str]
    body: Any
    raw: dict[str, Any]

    def __iter__(self) -> Iterator[Any]:
        return iter((self.status, self.headers, self.body))


def call(
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    **event_kwargs: Any,
) -> ApiResponse:
    """Run one request through the API handler (imported here: tests set the environment first)."""
    from harmonic_service.handlers import api

    event = api_event(method, path, body, headers, **event_kwargs)
    response = api.handler(event, FakeLambdaContext(function_name="harmonic-api"))
    merged = {name: values[-1] for name, values in (response.get("multiValueHeaders") or {}).items()}
    merged.update(response.get("headers") or {})
    text = response.get("body") or ""
    if response.get("isBase64Encoded"):
        text = base64.b64decode(text).decode("utf-8")
    return ApiResponse(
        status=int(response["statusCode"]),
        headers=merged,
        body=json.loads(text) if text else None,
        raw=response,
    )
