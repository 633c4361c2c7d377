"""The local stack as users run it: ``python -m local`` in a subprocess on free ports, driven over HTTP.

Started once for the e2e package; its output goes to a log file that is printed when a test fails to
start it. Handlers run with fault injection configured through the environment (off unless a test's
clip asks for it, see test_resume).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harmonic_client import Client

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RunningStack:
    def __init__(self, process: subprocess.Popen, base_url: str, moto_url: str, log_path: Path) -> None:
        self.process = process
        self.base_url = base_url
        self.moto_url = moto_url
        self.log_path = log_path

    def client(self, **kwargs: object) -> Client:
        return Client(self.base_url, auth="none", **kwargs)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture(scope="package")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    port, moto_port = free_port(), free_port()
    log_path = tmp_path_factory.mktemp("local-stack") / "stack.log"
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "MOTO_"))}
    env.update(PYTHONUNBUFFERED="1", HARMONIC_FAULTS_ENABLED="true")
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "local", "--port", str(port), "--moto-port", str(moto_port)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    stack = RunningStack(process, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{moto_port}", log_path)
    deadline = time.monotonic() + 90
    client = stack.client(max_retries=0, timeout_s=5)
    while True:
        try:
            client.health()
            break
        except Exception:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"the local stack did not start:\n{stack.log()[-5000:]}")
            time.sleep(0.25)
    try:
        yield stack
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def client(local_stack: RunningStack) -> Client:
    return local_stack.client()
