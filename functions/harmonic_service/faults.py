"""Fault injection for chaos tests and ``make chaos``: off unless the environment turns it on.

Two ways to ask for faults, both read from the environment of the stage functions:

- ``HARMONIC_FAULTS``: a JSON object of rates applied to every stage attempt (or only to ``stages``)::

      {"fail_rate": 0.1, "crash_after_side_effect_rate": 0.05, "duplicate_rate": 0.05,
       "latency_ms": 0, "stages": ["ingest", "features"], "seed": 7}

  ``fail_rate``: a transient error before the stage does anything; ``crash_after_side_effect_rate``: a
  transient error after the stage wrote its S3 artifacts but before its checkpoint (the worst moment to
  crash); ``duplicate_rate``: the pipeline sends the next stage's message twice (SQS at-least-once);
  ``latency_ms``: added to every attempt; ``outage``: ``{"services": ["s3"], "while_exists": "/path"}``
  makes every call of those services fail as if the endpoint were unreachable (botocore's
  EndpointConnectionError, after its own retries) for as long as the file exists: a dependency that breaks
  and is repaired, for the circuit breaker. Like kills, outages only apply in the local stack's worker
  processes (HARMONIC_WORKER=1), so the API (the test's client side) keeps working.
- Directed faults, for deterministic tests: with ``HARMONIC_FAULTS`` set (``{}`` is enough) or
  ``HARMONIC_FAULTS_ENABLED=true``, an invocation whose correlation id contains
  ``fault-<stage>-<fail|crash>-<n>`` fails that stage's first ``n`` attempts in that way (the attempt count
  is the checkpoint's, so it survives redeliveries and resumes). Correlation ids come from the client's
  ``X-Correlation-Id`` header and travel in every envelope.

Injected errors are :class:`InjectedFault`, a transient error: the orchestration retries them like any
other, which is the point.
"""

from __future__ import annotations

import functools
import json
import os
import random
import re
import signal
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

from harmonic_service import config
from harmonic_service.errors import TransientStageError

# Set by local/worker.py in its process: only there may a fault kill the process.
WORKER_FLAG = "HARMONIC_WORKER"
_DIRECTED = re.compile(r"fault-(?P<stage>[a-z]+)-(?P<kind>fail|crash)-(?P<count>\d+)")


class InjectedFault(TransientStageError):
    """A failure injected on purpose (see module docstring); transient, so it is retried."""


@dataclass(frozen=True)
class FaultPlan:
    enabled: bool = False
    fail_rate: float = 0.0
    crash_after_side_effect_rate: float = 0.0
    duplicate_rate: float = 0.0
    kill_rate: float = 0.0
    latency_ms: int = 0
    outage_services: frozenset[str] = frozenset()
    outage_while_exists: str = ""
    stages: frozenset[str] | None = None
    seed: int | None = None

    def applies_to(self, stage: str) -> bool:
        return self.enabled and (self.stages is None or stage in self.stages)


@functools.cache
def plan() -> FaultPlan:
    """The plan from the environment, read once per process (`reset()` forgets it)."""
    raw = os.environ.get("HARMONIC_FAULTS", "").strip()
    enabled_flag = os.environ.get("HARMONIC_FAULTS_ENABLED", "").strip().lower() in ("1", "true", "yes")
    if not raw:
        return FaultPlan(enabled=enabled_flag)
    try:
        spec = json.loads(raw)
        if not isinstance(spec, dict):
            raise TypeError("not an object")
        stages = spec.get("stages")
        outage = spec.get("outage") or {}
        if not isinstance(outage, dict):
            raise TypeError("outage is not an object")
        return FaultPlan(
            enabled=True,
            fail_rate=float(spec.get("fail_rate", 0.0)),
            crash_after_side_effect_rate=float(spec.get("crash_after_side_effect_rate", 0.0)),
            duplicate_rate=float(spec.get("duplicate_rate", 0.0)),
            kill_rate=float(spec.get("kill_rate", 0.0)),
            latency_ms=int(spec.get("latency_ms", 0)),
            outage_services=frozenset(outage.get("services") or ()),
            outage_while_exists=str(outage.get("while_exists") or ""),
            stages=frozenset(stages) if stages else None,
            seed=spec.get("seed"),
        )
    except (ValueError, TypeError) as error:
        raise ValueError(f"HARMONIC_FAULTS is not a valid fault plan: {error}") from None


_random_lock = threading.Lock()


@functools.cache
def _random() -> random.Random:
    """The process's random stream: seeded by the plan and the process, so that the local stack's worker
    processes (started alike) do not all roll the same sequence."""
    seed = plan().seed
    return random.Random(None if seed is None else f"{seed}:{os.getpid()}")


def _roll(rate: float) -> bool:
    if rate <= 0:
        return False
    with _random_lock:
        return _random().random() < rate


def reset() -> None:
    """Forget the plan and the random stream (tests change the environment)."""
    plan.cache_clear()
    _random.cache_clear()


config.on_clear(reset)


def _directed(correlation_id: str | None, stage: str, kind: str, attempts: int) -> bool:
    for match in _DIRECTED.finditer(correlation_id or ""):
        if match["stage"] == stage and match["kind"] == kind and attempts <= int(match["count"]):
            return True
    return False


def before_work(stage: str, correlation_id: str | None, attempts: int) -> None:
    """Called when a stage attempt starts (after its checkpoint counted the attempt)."""
    current = plan()
    if not current.applies_to(stage):
        return
    if current.latency_ms > 0:
        time.sleep(current.latency_ms / 1000.0)
    if _directed(correlation_id, stage, "fail", attempts) or _roll(current.fail_rate):
        raise InjectedFault(f"injected failure in {stage} (attempt {attempts})")


def after_side_effect(
    stage: str, correlation_id: str | None, attempts: int, invocation_id: str | None = None
) -> None:
    """Called after a stage wrote its artifacts and before its checkpoint: a crash here is the hard case."""
    current = plan()
    if not current.applies_to(stage):
        return
    if _directed(correlation_id, stage, "crash", attempts) or _roll(current.crash_after_side_effect_rate):
        raise InjectedFault(f"injected crash in {stage} after its side effects (attempt {attempts})")
    maybe_kill(stage, "after its side effects, before its checkpoint", invocation_id)


def maybe_kill(stage: str, where: str, invocation_id: str | None = None) -> None:
    """With the plan's `kill_rate`: SIGKILL this process, here and now (no cleanup, no reply, no
    acknowledgement), as a timeout, an out-of-memory kill or a lost host would. Only in a worker process of
    the local stack (HARMONIC_WORKER=1): never in a test's process or in Lambda."""
    current = plan()
    if os.environ.get(WORKER_FLAG) != "1" or not current.applies_to(stage) or not _roll(current.kill_rate):
        return
    print(
        f"injected kill of worker {os.getpid()} in {stage} {where} "
        f"(invocation {invocation_id or '?'}, at {time.time():.3f})",
        file=sys.stderr,
        flush=True,
    )
    os.kill(os.getpid(), signal.SIGKILL)


def instrument_client(client: Any, service: str) -> None:
    """With an outage of `service` in the plan (worker processes only): each of the client's requests
    fails with EndpointConnectionError while the plan's file exists. Raised where botocore sends the
    request, so botocore's retries and error handling see it as they would a real unreachable endpoint."""
    current = plan()
    if (
        os.environ.get(WORKER_FLAG) != "1"
        or service not in current.outage_services
        or not current.outage_while_exists
    ):
        return
    flag = current.outage_while_exists

    def unreachable(request: Any, **_: Any) -> None:
        if os.path.exists(flag):
            from botocore.exceptions import EndpointConnectionError

            raise EndpointConnectionError(endpoint_url=getattr(request, "url", service))

    client.meta.events.register(f"before-send.{service}", unreachable)


def duplicate_delivery(stage: str) -> bool:
    """Whether the pipeline should send the message for `stage` twice."""
    current = plan()
    return current.applies_to(stage) and _roll(current.duplicate_rate)
