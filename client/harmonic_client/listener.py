"""A receiver for Harmonic's completion notifications, so that waiting for an invocation needs no polling.

``with CallbackListener() as listener:`` serves ``listener.url`` on 127.0.0.1 until the block ends; submit
with ``callback_url=listener.url`` and :meth:`CallbackListener.wait_for` returns the status document Harmonic
POSTs when the invocation ends. It works where the service can reach this machine: the local stack (which
allows plain http to 127.0.0.1), or a deployment when the listener sits behind a public HTTPS address.

With ``secret`` (the deployment's signing secret), deliveries whose ``X-Harmonic-Signature`` does not verify
are answered 401 and ignored. The check is the service's (HMAC-SHA256 of ``"<t>." + body``, 5 minutes'
tolerance), written again here so that the client depends on nothing of the service.
"""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import threading
import time
from typing import Any

SIGNATURE_TOLERANCE_S = 300


def signature_valid(secret: bytes, body: bytes, header: str, now: float | None = None) -> bool:
    """Whether an ``X-Harmonic-Signature`` header (``t=<unix s>,v1=<hex>``) signs `body` with `secret`."""
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    if not parts.get("t", "").isdigit() or "v1" not in parts:
        return False
    sent = int(parts["t"])
    if abs((time.time() if now is None else now) - sent) > SIGNATURE_TOLERANCE_S:
        return False
    mac = hmac.new(secret, f"{sent}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(mac, parts["v1"])


class CallbackListener:
    """An HTTP server keeping the documents POSTed to it, by invocation id."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, secret: bytes | None = None) -> None:
        self.secret = secret
        self.documents: dict[str, dict[str, Any]] = {}
        self.refused = 0
        self._arrived = threading.Condition()
        listener = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = listener._receive(body, self.headers.get("X-Harmonic-Signature", ""))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:  # quiet: the caller prints what matters
                pass

        self._server = http.server.ThreadingHTTPServer((host, port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/harmonic/notifications"

    def _receive(self, body: bytes, signature: str) -> int:
        if self.secret is not None and not signature_valid(self.secret, body, signature):
            self.refused += 1
            return 401
        try:
            document = json.loads(body)
            invocation_id = str(document["invocation_id"])
        except (ValueError, KeyError, TypeError):
            return 400
        with self._arrived:
            self.documents[invocation_id] = document
            self._arrived.notify_all()
        return 204

    def wait_for(self, invocation_id: str, timeout_s: float) -> dict[str, Any] | None:
        """The document POSTed for `invocation_id`, waiting up to `timeout_s`; None if none came."""
        deadline = time.monotonic() + timeout_s
        with self._arrived:
            while invocation_id not in self.documents:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._arrived.wait(left)
            return self.documents[invocation_id]

    def __enter__(self) -> CallbackListener:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
