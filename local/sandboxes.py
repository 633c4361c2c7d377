"""Lambda execution environments as processes: the local stack's stage functions run concurrently.

In Lambda, every concurrent invocation of a function has an execution environment of its own: a process
with its own imports, its own Powertools Logger keys, its own batch processor. The in-process
:class:`local.harness.Sandbox` cannot give that (the handlers' process-wide state forces one call at a time),
so in the local stack two stages that should overlap (``features`` ∥ ``match`` in the events and state
machine modes) ran one after the other.

:class:`ProcessSandbox` is the drop-in replacement with the same ``call``: each call is served by a worker
process (:mod:`local.worker`) that imported the handler module once and answers one call at a time. A call
takes an idle worker, or starts one (a cold start) while fewer than ``max_workers`` exist, or waits for one.
A worker serves every stage of its handler module, as the in-process sandbox does (the stage travels with
the call): a handful of processes, not one per function.

A call that runs past `timeout_s` (the function timeout, when set) kills its worker, as Lambda ends an
invocation that times out; a worker that dies during a call (a SIGKILL, an out-of-memory kill) is a
``Runtime.ExitError``; either way the next call starts a new worker. What differs from Lambda: workers are
not frozen between calls, and the pool is bounded (Lambda's is only by the account's concurrency).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import subprocess
import sys
import threading
from dataclasses import dataclass
from typing import IO, Any

from local import ROOT

log = logging.getLogger("local_stack")


class FunctionError(Exception):
    """The handler raised in its worker: ``error_type`` is the exception's class name, as Lambda reports
    it in ``errorType`` (Step Functions' Retry and Catch match on it)."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


class FunctionTimedOut(FunctionError):
    """The call ran past the function's timeout: the worker is killed, as Lambda ends the invocation."""

    def __init__(self, module: str, timeout_s: float) -> None:
        super().__init__("Sandbox.Timedout", f"the {module} call timed out after {timeout_s:g} s")


class WorkerExited(FunctionError):
    """The worker process ended in the middle of a call (killed, out of memory): Lambda's
    ``Runtime.ExitError``."""

    def __init__(self, module: str, returncode: int | None) -> None:
        super().__init__("Runtime.ExitError", f"the {module} worker exited (code {returncode}) during a call")


@dataclass
class Worker:
    """One worker process and its two pipes."""

    process: subprocess.Popen[str]
    requests: IO[str]
    replies: IO[str]

    @property
    def pid(self) -> int:
        return self.process.pid

    def exchange(self, message: dict[str, Any], timeout_s: float = 0.0) -> dict[str, Any] | None:
        """Send one request line and read one reply line; None if the process ended first. With
        `timeout_s`, TimeoutError when no reply came in time (the caller kills the worker)."""
        try:
            self.requests.write(json.dumps(message) + "\n")
            self.requests.flush()
            if timeout_s > 0 and not select.select([self.replies], [], [], timeout_s)[0]:
                raise TimeoutError(f"no reply in {timeout_s:g} s")
            line = self.replies.readline()
        except (BrokenPipeError, OSError, ValueError):
            return None
        return json.loads(line) if line else None

    def close(self, timeout_s: float = 5.0) -> None:
        """Close its stdin (it exits at the end of its input); kill it if it is still running later."""
        with contextlib.suppress(OSError, ValueError):
            self.requests.close()
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        with contextlib.suppress(OSError, ValueError):
            self.replies.close()


class ProcessSandbox:
    """The handler `module`, each call in a worker process; at most `max_workers` calls at once.

    Workers inherit this process's environment when they start: set the stack's variables before the first
    call (the local stack does, before its pollers start)."""

    def __init__(self, module: str, max_workers: int = 3, timeout_s: float = 0.0) -> None:
        if max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, got {max_workers}")
        self.module = module
        self.max_workers = max_workers
        self.timeout_s = timeout_s  # the function timeout (0: none)
        # Calls don't share the parent's handler state, so nothing here serializes them (TaskRouter holds
        # `lock` around its hooks and the call).
        self.lock: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
        self._slots = threading.BoundedSemaphore(max_workers)
        self._guard = threading.Lock()
        self._idle: list[Worker] = []
        self._workers: list[Worker] = []
        self._closed = False
        self.cold_starts = 0
        self.exits = 0  # calls whose worker died (killed, timed out)

    def call(
        self, event: dict[str, Any], function_name: str, stage: str | None = None, request_id: str = ""
    ) -> Any:
        """The handler's return value for `event`; a handler exception is raised as :class:`FunctionError`
        (its type name in ``error_type``), a worker that dies during the call as :class:`WorkerExited`."""
        request = {"event": event, "function_name": function_name, "stage": stage, "request_id": request_id}
        with self._slots:
            worker = self._take()
            try:
                reply = worker.exchange(request, self.timeout_s)
            except TimeoutError:
                worker.process.kill()
                self._discard(worker)
                self.exits += 1
                log.warning(
                    "%s worker %d timed out after %g s and was killed",
                    self.module,
                    worker.pid,
                    self.timeout_s,
                )
                raise FunctionTimedOut(self.module, self.timeout_s) from None
            if reply is None:
                self._discard(worker)
                self.exits += 1
                code = worker.process.poll()
                log.warning("%s worker %d exited (code %s) during a call", self.module, worker.pid, code)
                raise WorkerExited(self.module, code)
            self._give_back(worker)
        if "error_type" in reply:
            raise FunctionError(reply["error_type"], reply.get("error_message", ""))
        return reply.get("result")

    def warm(self, count: int = 1) -> None:
        """Start `count` workers now (in parallel), so that the first calls don't pay the cold start."""
        started: list[Worker] = []
        threads = [
            threading.Thread(target=lambda: started.append(self._start_worker()))
            for _ in range(min(count, self.max_workers))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with self._guard:
            self._idle.extend(started)

    def pids(self) -> list[int]:
        """The process ids of the running workers (chaos kills them)."""
        with self._guard:
            return [worker.pid for worker in self._workers if worker.process.poll() is None]

    def close(self) -> None:
        """Stop every worker; later calls fail."""
        with self._guard:
            self._closed = True
            workers, self._workers, self._idle = self._workers, [], []
        for worker in workers:
            worker.close()

    # --- the pool ---------------------------------------------------------------------------------------

    def _take(self) -> Worker:
        with self._guard:
            if self._closed:
                raise RuntimeError(f"the {self.module} sandbox is closed")
            while self._idle:
                worker = self._idle.pop()
                if worker.process.poll() is None:
                    return worker
                self._workers.remove(worker)
        return self._start_worker()

    def _give_back(self, worker: Worker) -> None:
        with self._guard:
            if self._closed:
                worker.close()
            else:
                self._idle.append(worker)

    def _discard(self, worker: Worker) -> None:
        with self._guard:
            if worker in self._workers:
                self._workers.remove(worker)
        worker.close(timeout_s=1.0)

    def _start_worker(self) -> Worker:
        """A new worker, once it has imported the handler (a cold start)."""
        process = subprocess.Popen(
            [sys.executable, "-m", "local.worker", self.module],
            cwd=ROOT,
            env=dict(os.environ),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            start_new_session=True,  # Ctrl-C reaches the stack, which stops its workers in order
        )
        worker = Worker(process, process.stdin, process.stdout)  # type: ignore[arg-type]  # both PIPE
        ready = worker.replies.readline()
        if not ready:
            worker.close(timeout_s=1.0)
            raise WorkerExited(self.module, process.poll())
        with self._guard:
            self._workers.append(worker)
            self.cold_starts += 1
        log.info("%s worker %d ready", self.module, worker.pid)
        return worker
