"""API Gateway for the local stack: HTTP requests ↔ REST API proxy events for the API handler.

Translates like a Lambda proxy integration: method, path, query string (single and multi-value), headers,
the body (text as is, anything not UTF-8 base64-encoded with ``isBase64Encoded``) and a request context
with a fresh request id; the response's status, headers and (base64) body go back unchanged. Bodies over
API Gateway's 10 MB payload limit are refused with 413 before they are read, and requests beyond the stage
throttle (token bucket, rate and burst as deployed) get 429 with ``Retry-After``. No authentication unless
the stack is given API keys (then a request without one is a 403, as with ``auth=api_key``); the local
stack listens on 127.0.0.1 only.

``/docs`` is not the API's: it serves Swagger UI (the npm package swagger-ui-dist, pinned in package.json,
from node_modules; nothing is fetched from elsewhere) over docs/openapi.json, so that the contract can be
read and tried against this stack. ``/`` is the web console (console/, static files, same origin as the
API: ``config.json`` says so), as CloudFront serves it deployed (infra/console.py).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import logging
import re
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from local import ROOT
from local.harness import ACCOUNT

log = logging.getLogger("local_stack.http")
SWAGGER_UI = ROOT / "node_modules" / "swagger-ui-dist"
OPENAPI = ROOT / "docs" / "openapi.json"
_DOCS_FILES = {
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js": "application/javascript",
    "swagger-ui-standalone-preset.js": "application/javascript",
    "favicon-32x32.png": "image/png",
}
_DOCS_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Harmonic API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css"><link rel="icon" href="/docs/favicon-32x32.png"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({url: "/docs/openapi.json", dom_id: "#swagger-ui"});</script>
</body></html>
"""
CONSOLE = ROOT / "console"
_CONSOLE_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
# As deployed (infra/console.py): scripts and styles from the console only; the API on this origin; pattern
# examples played from presigned S3 (here moto) URLs; canvases and recordings as blob: and data: URLs.
CONSOLE_CSP = (
    "default-src 'self'; connect-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob: http://127.0.0.1:*; object-src 'none'; base-uri 'self'; frame-ancestors 'none'"
)


# Oversized bodies up to this size are drained before the 413; beyond it the connection is just closed.
_DRAIN_LIMIT_BYTES = 64 * 1024 * 1024


class FrontSettings(Protocol):
    """Where the front listens and how it guards the API (``local.stack.LocalSettings`` is one)."""

    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...  # 0: any free port

    @property
    def max_body_bytes(self) -> int: ...  # larger bodies get 413

    @property
    def throttle_rate(self) -> float: ...  # requests per second on average (0: no throttling)

    @property
    def throttle_burst(self) -> int: ...

    @property
    def api_keys(self) -> tuple[str, ...]: ...  # when any: every route requires one of them (X-Api-Key)


class ApiBackend(Protocol):
    """What the front needs from the stack behind it (``local.stack.LocalStack`` is one): its settings, and
    the API function's response to a proxy event (an exception is a failed function: 502)."""

    @property
    def settings(self) -> FrontSettings: ...

    def call_api(self, event: dict[str, Any]) -> dict[str, Any]: ...


def proxy_event(
    method: str, raw_path: str, headers: dict[str, str], body: bytes, source_ip: str = "127.0.0.1"
) -> dict[str, Any]:
    """The REST API (v1) Lambda proxy event for one request."""
    parts = urlsplit(raw_path)
    query = parse_qs(parts.query, keep_blank_values=True)
    try:
        text, is_base64 = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, is_base64 = base64.b64encode(body).decode("ascii"), True
    request_id = str(uuid.uuid4())
    return {
        "resource": parts.path,
        "path": parts.path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": {name: values[-1] for name, values in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": None,
        "stageVariables": None,
        "body": text if body else None,
        "isBase64Encoded": is_base64,
        "requestContext": {
            "requestId": request_id,
            "extendedRequestId": request_id,
            "stage": "local",
            "httpMethod": method,
            "path": parts.path,
            "resourcePath": parts.path,
            "protocol": "HTTP/1.1",
            "requestTimeEpoch": int(time.time() * 1000),
            "identity": _identity(headers, source_ip),
            "accountId": ACCOUNT,
            "apiId": "local",
        },
    }


@functools.cache
def _routes() -> tuple[tuple[re.Pattern[str], frozenset[str]], ...]:
    """The API's routes as docs/openapi.json declares them (API Gateway's resources and methods are the
    same: tests/infra/test_api.py): a pattern per path (``{id}`` matches one segment) and its methods."""
    document = json.loads(OPENAPI.read_text())
    return tuple(
        (
            re.compile("^" + re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(path)) + "$"),
            frozenset(method.upper() for method in methods),
        )
        for path, methods in document["paths"].items()
    )


def declared(method: str, path: str) -> bool:
    """Whether the deployed API has this method on this path; anything else API Gateway refuses itself
    (403, MISSING_AUTHENTICATION_TOKEN) before the function runs."""
    return any(pattern.match(path) and method.upper() in methods for pattern, methods in _routes())


def key_refused(keys: tuple[str, ...], headers: dict[str, str]) -> bool:
    """Whether a request lacks a key the front requires: with `keys` set the local stack answers as a stack
    deployed with ``auth=api_key`` does (every method ``apiKeyRequired``), and a missing or unknown
    ``X-Api-Key`` is a 403 before the function runs; with none, every caller is let through."""
    return bool(keys) and _header(headers, "X-Api-Key") not in keys


def _identity(headers: dict[str, str], source_ip: str) -> dict[str, Any]:
    """The request context's identity. An ``X-Api-Key`` header becomes an ``apiKeyId``, as API Gateway
    sets it when a method requires a key: here any key (with api_keys set, any of those) is accepted and its
    id is derived from it, so two keys are two callers (tenancy.py); without one the caller is anonymous."""
    identity: dict[str, Any] = {"sourceIp": source_ip, "userAgent": _header(headers, "User-Agent")}
    key = _header(headers, "X-Api-Key")
    if key:
        identity["apiKey"] = key
        identity["apiKeyId"] = "local-" + hashlib.sha256(key.encode()).hexdigest()[:16]
    return identity


def _header(headers: dict[str, str], name: str) -> str:
    """A header's value, whatever the case of its name ("" when absent)."""
    wanted = name.lower()
    return next((value for key, value in headers.items() if key.lower() == wanted), "")


def _error_body(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}).encode()


class _Handler(BaseHTTPRequestHandler):
    server: _FrontServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per request is logged in _proxy instead

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own errors (a method no route has, a malformed request line) as API Gateway answers
        them: JSON in the API's error shape, never an HTML page. A method the API does not declare is API
        Gateway's MISSING_AUTHENTICATION_TOKEN, a 403 that the deployed gateway responses rewrite as
        ``forbidden`` (infra/api.py)."""
        method = getattr(self, "command", None) or "?"
        path = urlsplit(getattr(self, "path", "") or "").path or "?"
        if code == 501:
            status, body = 403, _error_body("forbidden", f"no route {method} {path}")
        else:
            status, body = code, _error_body("bad_request" if code == 400 else "client_error", message or "")
        self.close_connection = True
        if getattr(self, "request_version", "HTTP/0.9") == "HTTP/0.9":
            self.request_version = self.protocol_version  # answer with headers, as for any other request
        self._send(status, {"Content-Type": "application/json", "Connection": "close"}, body)
        log.info("%s %s %d (refused by the front)", method, path, status)

    def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _docs(self) -> bool:
        """Serve /docs (Swagger UI over docs/openapi.json); False when the path is the API's."""
        path = urlsplit(self.path).path.rstrip("/")
        if self.command not in ("GET", "HEAD") or not (path == "/docs" or path.startswith("/docs/")):
            return False
        name = path.removeprefix("/docs").lstrip("/")
        if not name:
            self._send(200, {"Content-Type": "text/html; charset=utf-8"}, _DOCS_PAGE.encode())
        elif name == "openapi.json":
            self._send(200, {"Content-Type": "application/json"}, OPENAPI.read_bytes())
        elif name in _DOCS_FILES and (SWAGGER_UI / name).is_file():
            self._send(200, {"Content-Type": _DOCS_FILES[name]}, (SWAGGER_UI / name).read_bytes())
        else:
            missing = "" if SWAGGER_UI.is_dir() else " (swagger-ui-dist is not installed: make install)"
            self._send(
                404, {"Content-Type": "application/json"}, _error_body("not_found", f"no {path}{missing}")
            )
        return True

    def _console(self) -> bool:
        """Serve the web console at / (its files, and a config.json naming this origin as the API's);
        False when the path is not one of its files."""
        path = urlsplit(self.path).path
        if self.command not in ("GET", "HEAD") or path.startswith(("/v1/", "/docs")):
            return False
        name = "index.html" if path == "/" else path.lstrip("/")
        headers = {"Content-Security-Policy": CONSOLE_CSP, "X-Content-Type-Options": "nosniff"}
        if name == "config.json":
            auth = "api_key" if self.server.backend.settings.api_keys else "none"
            body = json.dumps({"api_url": "", "auth": auth}).encode()
            headers.update({"Content-Type": "application/json", "Cache-Control": "no-store"})
            self._send(200, headers, body)
            return True
        file = CONSOLE / name
        if "/" in name or file.suffix not in _CONSOLE_TYPES or not file.is_file():
            return False
        self._send(200, {**headers, "Content-Type": _CONSOLE_TYPES[file.suffix]}, file.read_bytes())
        return True

    def _proxy(self) -> None:
        if self._docs() or self._console():
            return
        if not declared(self.command, urlsplit(self.path).path):
            self.send_error(501)  # API Gateway's MISSING_AUTHENTICATION_TOKEN, as send_error answers it
            return
        started = time.perf_counter()
        backend = self.server.backend
        if key_refused(backend.settings.api_keys, dict(self.headers.items())):
            self.close_connection = True  # the body, if any, is not read
            body = _error_body("forbidden", "a valid API key is required (X-Api-Key)")
            self._send(403, {"Content-Type": "application/json"}, body)
            log.info("%s %s 403 (no valid API key)", self.command, urlsplit(self.path).path)
            return
        if not self.server.bucket.take():
            self.close_connection = True
            body = _error_body("throttled", "too many requests; retry after the Retry-After delay")
            self._send(429, {"Content-Type": "application/json", "Retry-After": "1"}, body)
            return
        length_header = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self.close_connection = True
            self._send(
                411,
                {"Content-Type": "application/json"},
                _error_body("length_required", "send a Content-Length"),
            )
            return
        try:
            length = int(length_header or 0)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            self._send(
                400, {"Content-Type": "application/json"}, _error_body("bad_request", "bad Content-Length")
            )
            return
        if length > backend.settings.max_body_bytes:
            self.close_connection = True
            if length <= _DRAIN_LIMIT_BYTES:  # read and discard, so the client sees the answer, not a reset
                remaining = length
                while remaining > 0:
                    chunk = self.rfile.read(min(1 << 20, remaining))
                    if not chunk:
                        break
                    remaining -= len(chunk)
            message = f"the request body is {length} bytes; the limit is {backend.settings.max_body_bytes}"
            self._send(413, {"Content-Type": "application/json"}, _error_body("payload_too_large", message))
            log.info("%s %s 413 (%d bytes refused)", self.command, self.path, length)
            return
        body = self.rfile.read(length) if length else b""
        headers = {name: value for name, value in self.headers.items()}
        event = proxy_event(self.command, self.path, headers, body, self.client_address[0])
        try:
            response = backend.call_api(event)
            status = int(response.get("statusCode", 502))
            out_headers = dict(response.get("headers") or {})
            for name, values in (response.get("multiValueHeaders") or {}).items():
                out_headers.setdefault(name, ", ".join(values))
            payload = response.get("body") or ""
            out_body = (
                base64.b64decode(payload) if response.get("isBase64Encoded") else payload.encode("utf-8")
            )
        except Exception:  # the handler crashed: what API Gateway returns for a failed Lambda
            log.exception("API handler raised")
            status, out_headers = 502, {"Content-Type": "application/json"}
            out_body = _error_body("bad_gateway", "the API function failed")
        self._send(status, out_headers, out_body)
        log.info(
            "%s %s %d %.0f ms",
            self.command,
            urlsplit(self.path).path,
            status,
            (time.perf_counter() - started) * 1e3,
        )

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _proxy  # noqa: N815


class TokenBucket:
    """API Gateway's throttle: ``rate`` requests per second on average, bursts up to ``burst``."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, max(1, burst)
        self.tokens = float(self.burst)
        self.updated = time.monotonic()
        self.lock = threading.Lock()

    def take(self) -> bool:
        if self.rate <= 0:
            return True
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            if self.tokens >= 1.0:
                self.tokens -= 1.0
                return True
            return False


class _FrontServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], backend: ApiBackend) -> None:
        super().__init__(address, _Handler)
        self.backend = backend
        self.bucket = TokenBucket(backend.settings.throttle_rate, backend.settings.throttle_burst)


def start_front(backend: ApiBackend) -> _FrontServer:
    """Serve `backend`'s API on (settings.host, settings.port) in a background thread."""
    server = _FrontServer((backend.settings.host, backend.settings.port), backend)
    threading.Thread(target=server.serve_forever, name="http-front", daemon=True).start()
    return server
