"""Shared by the unit tests of the client and of the CLI: a scripted HTTP server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest


class Script:
    """Responses to serve in order, and the requests seen."""

    def __init__(self) -> None:
        self.responses: list[tuple[int, dict[str, str], bytes]] = []
        self.requests: list[dict] = []


@pytest.fixture
def server() -> Iterator[tuple[str, Script]]:
    """(base URL, Script) of an HTTP server on 127.0.0.1 that answers with the script's responses in order
    (200 ``{}`` once they run out) and records every request."""
    script = Script()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            script.requests.append(
                {
                    "method": self.command,
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": body,
                }
            )
            status, headers, payload = script.responses.pop(0) if script.responses else (200, {}, b"{}")
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = _serve  # noqa: N815

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", script
    httpd.shutdown()
    httpd.server_close()


def json_response(status: int, body: object, **headers: str) -> tuple[int, dict[str, str], bytes]:
    """A scripted response with a JSON body."""
    return status, {"Content-Type": "application/json", **headers}, json.dumps(body).encode()


def isolate_client_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No configuration, credentials or endpoint from the machine for the client: a configuration file of
    the test's own (returned; it does not exist yet)."""
    for name in ("HARMONIC_ENDPOINT", "HARMONIC_API_KEY", "HARMONIC_AUTH", "HARMONIC_OUTPUT", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HARMONIC_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    return tmp_path / "config"
