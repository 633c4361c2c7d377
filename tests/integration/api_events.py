"""API Gateway REST (v1) Lambda proxy events and a fake Lambda context, for driving the API handler directly.

The events carry what API Gateway sends and what the handler reads: method, path, headers (single and
multi-value), body with ``isBase64Encoded``, and a ``requestContext`` with ``requestId`` and ``identity``.
`call` runs one request through `harmonic_service.handlers.api.handler` and returns (status, headers,
JSON body), so tests read like HTTP.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

REGION = "us-east-1"
ACCOUNT = "123456789012"


@dataclass
class FakeLambdaContext:
    """The attributes of a Lambda context that Powertools (Logger, idempotency, metrics) reads."""

    function_name: str = "harmonic-api"
    memory_limit_in_mb: int = 1024
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = "/aws/lambda/harmonic-api"
    log_stream_name: str = "test"
    remaining_ms: int = 30_000

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def _encode_body(body: Any, base64_encoded: bool) -> tuple[str | None, bool]:
    """The proxy event's (body, isBase64Encoded): dicts/lists as JSON, bytes as UTF-8 text or base64."""
    if body is None:
        return None, False
    if isinstance(body, str):
        raw = body.encode("utf-8")
    elif isinstance(body, bytes | bytearray):
        raw = bytes(body)
    else:
        raw = json.dumps(body).encode("utf-8")
    if not base64_encoded:
        try:
            return raw.decode("utf-8"), False
        except UnicodeDecodeError:
            pass  # API Gateway would only pass binary through base64-encoded
    return base64.b64encode(raw).decode("ascii"), True


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
) -> dict[str, Any]:
    """One API Gateway REST proxy event.

    `body`: None (no body), str/bytes (sent as given; non-UTF-8 bytes are base64-encoded as API Gateway
    does), anything else is sent as JSON. `base64_encoded` forces ``isBase64Encoded``.
    """
    headers = dict(headers or {})
    text, is_base64 = _encode_body(body, base64_encoded)
    request_id = request_id or str(uuid.uuid4())
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": dict(query) if query else None,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": None,
        "stageVariables": None,
        "body": text,
        "isBase64Encoded": is_base64,
        "requestContext": {
            "requestId": request_id,
            "extendedRequestId": request_id,
            "accountId": ACCOUNT,
            "apiId": "testapi",
            "stage": "v1",
            "httpMethod": method,
            "path": f"/v1{path}",
            "resourcePath": path,
            "protocol": "HTTP/1.1",
            "requestTimeEpoch": int(time.time() * 1000),
            "identity": {
                "sourceIp": source_ip,
                "userAgent": headers.get("User-Agent", "pytest"),
                "apiKey": None,
                "caller": None,
                "user": None,
            },
        },
    }


@dataclass
class ApiResponse:
    """What the handler returned, decoded: status, headers (single-valued) and the JSON body (or None)."""

    status: int
    headers: dict[str, str]
    body: Any
    raw: dict[str, Any]


def call(
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    **event_kwargs: Any,
) -> ApiResponse:
    """Run one request through the API handler (import deferred: tests set the environment first)."""
    from harmonic_service.handlers import api

    event = api_event(method, path, body, headers, **event_kwargs)
    response = api.handler(event, FakeLambdaContext())
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
