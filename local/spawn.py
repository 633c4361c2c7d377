"""The local stack as users run it, in a subprocess: ``python -m local`` on free ports, its output in a log
file. Shared by ``make chaos`` (:mod:`local.chaos`) and the e2e tests (tests/e2e/conftest.py).

:func:`start_stack_process` returns once ``GET /v1/health`` answers 200; :meth:`StackProcess.stop` sends
SIGINT (the stack then stops as on Ctrl-C) and kills it if it has not exited after a while.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local import ROOT


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class StackDidNotStart(RuntimeError):
    """The subprocess exited, or its health check did not answer in time; `log_tail` is its output's end."""

    def __init__(self, message: str, log_tail: str) -> None:
        super().__init__(message)
        self.log_tail = log_tail


@dataclass
class StackProcess:
    """A running ``python -m local`` subprocess; a context manager that stops it on exit."""

    process: subprocess.Popen[bytes]
    base_url: str  # the API (the HTTP front)
    moto_url: str  # the local AWS endpoint
    log_path: Path
    api_key: str = ""  # the key the front requires (start_stack_process's api_keys), sent by healthy()

    def client(self, **kwargs: Any) -> Any:
        """A ``harmonic_client.Client`` for the API, without auth unless `kwargs` say (``auth="api_key"``:
        the local front makes each key a caller of its own); importable: client/ on sys.path."""
        from harmonic_client import Client

        return Client(self.base_url, **{"auth": "none", **kwargs})

    def aws(self, service: str) -> Any:
        """A boto3 client for the stack's local AWS (moto), with the stack's fake credentials."""
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.moto_url,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )

    def log(self) -> str:
        """Everything the stack has written (its handlers' JSON log lines among it)."""
        return self.log_path.read_text(errors="replace")

    def healthy(self, timeout_s: float = 5.0) -> bool:
        """Whether ``GET /v1/health`` answers 200."""
        headers = {"X-Api-Key": self.api_key} if self.api_key else {}
        request = urllib.request.Request(f"{self.base_url}/v1/health", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                return response.status == 200
        except (OSError, http.client.HTTPException):
            return False

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGINT, as Ctrl-C; killed if still running after `timeout_s`."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> StackProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_stack_process(
    log_path: Path,
    *,
    environment: dict[str, str] | None = None,
    visibility_timeout_s: int | None = None,
    startup_timeout_s: float = 90.0,
    api_keys: tuple[str, ...] = (),
) -> StackProcess:
    """Start ``python -m local`` on free ports with this process's environment minus its ``AWS_*`` and
    ``MOTO_*`` variables, plus `environment` (e.g. fault injection); stdout and stderr go to `log_path`.
    Returns once the API is healthy; raises StackDidNotStart (after killing it) if it exits first or is
    not healthy within `startup_timeout_s`."""
    port, moto_port = free_port(), free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "MOTO_"))}
    env.update(PYTHONUNBUFFERED="1", **(environment or {}))
    if api_keys:  # the front then refuses a request without one of them (403), as auth=api_key deployed
        env["LOCAL_API_KEYS"] = ",".join(api_keys)
    command = [sys.executable, "-m", "local", "--port", str(port), "--moto-port", str(moto_port)]
    if visibility_timeout_s is not None:
        command += ["--visibility-timeout", str(visibility_timeout_s)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    urls = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{moto_port}"
    stack = StackProcess(process, *urls, log_path, api_key=next(iter(api_keys), ""))
    deadline = time.monotonic() + startup_timeout_s
    while not stack.healthy():
        if process.poll() is not None or time.monotonic() > deadline:
            why = f"exited ({process.returncode})"
            if process.poll() is None:
                why = f"was not healthy in {startup_timeout_s:.0f} s"
                process.kill()
                process.wait()
            raise StackDidNotStart(f"the local stack {why}; see {log_path}", stack.log()[-5000:])
        time.sleep(0.25)
    return stack
