"""The local stack's execution environments as processes (local/sandboxes.py, local/worker.py): a call runs in
a worker with the stage it was given, a handler's exception comes back with its type (as Lambda's
errorType), a killed worker is a Runtime.ExitError and is replaced, and calls that overlap get workers of
their own. Also the local stack's sweeper thread: a scheduled event every period."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from local.sandboxes import FunctionError, ProcessSandbox, WorkerExited
from local.stack import LocalSettings, LocalStack

PROBE = "tests.unit.sandbox_probe"


@pytest.fixture
def sandbox():
    pool = ProcessSandbox(PROBE, max_workers=2)
    yield pool
    pool.close()


def test_a_call_runs_in_a_worker_with_its_stage_and_context(sandbox: ProcessSandbox) -> None:
    result = sandbox.call({"echo": [1, "two"]}, "harmonic-local-features", stage="features", request_id="r-1")
    assert result["stage"] == "features"
    assert result["function"] == "harmonic-local-features"
    assert result["request_id"] == "r-1"
    assert result["echo"] == [1, "two"]
    assert result["pid"] in sandbox.pids()
    assert sandbox.call({}, "f", stage="match")["pid"] == result["pid"]  # warm: the same worker


def test_a_handler_exception_keeps_its_type(sandbox: ProcessSandbox) -> None:
    with pytest.raises(FunctionError) as raised:
        sandbox.call({"raise": "bad clip"}, "f")
    assert (raised.value.error_type, str(raised.value)) == ("ValueError", "bad clip")
    assert sandbox.call({"echo": "still serving"}, "f")["echo"] == "still serving"


def test_a_killed_worker_is_an_exit_error_and_is_replaced(sandbox: ProcessSandbox) -> None:
    first = sandbox.call({}, "f")["pid"]
    with pytest.raises(WorkerExited) as died:
        sandbox.call({"die": True}, "f")
    assert died.value.error_type == "Runtime.ExitError"
    assert first not in sandbox.pids()
    assert sandbox.call({}, "f")["pid"] != first  # a cold start in a new process


def test_overlapping_calls_get_workers_of_their_own(sandbox: ProcessSandbox) -> None:
    sandbox.warm(2)
    with ThreadPoolExecutor(max_workers=2) as pool:
        pids = list(pool.map(lambda _: sandbox.call({"sleep_s": 0.3}, "f")["pid"], range(2)))
    assert len(set(pids)) == 2
    assert sandbox.cold_starts == 2


def test_a_closed_sandbox_refuses_calls() -> None:
    pool = ProcessSandbox(PROBE, max_workers=1)
    pool.call({}, "f")
    pool.close()
    assert pool.pids() == []
    with pytest.raises(RuntimeError, match="closed"):
        pool.call({}, "f")
    with pytest.raises(ValueError, match="max_workers"):
        ProcessSandbox(PROBE, max_workers=0)


def test_the_local_stacks_sweeper_runs_every_period() -> None:
    stack = LocalStack(LocalSettings(sweep_period_s=0.05, sandbox_workers=0))
    calls: list[tuple[dict, str]] = []

    class Recorder:
        def call(self, event: dict, function_name: str) -> dict:
            calls.append((event, function_name))
            return {}

    stack.sweeper = Recorder()  # type: ignore[assignment]
    thread = threading.Thread(target=stack._sweep_every_period)
    thread.start()
    time.sleep(0.4)
    stack.stopping.set()
    thread.join(timeout=2)
    assert not thread.is_alive()
    assert len(calls) >= 3
    event, function_name = calls[0]
    assert (event["source"], event["detail-type"]) == ("aws.events", "Scheduled Event")
    assert function_name.endswith("sweeper")
