"""The circuit breaker of a queue-fed stage: what counts as a dependency failure, and the breaker's states.

A stage depends on S3 (its clip and artifacts), DynamoDB (its checkpoints, the pattern store) and SQS or
the bus (the next stage). When one of them is down, every message the stage receives fails the same way: if
nothing stops it, each burns its receives and lands in the dead-letter queue, and the invocations with it.
The breaker (Nygard, *Release It!*, 2nd ed., ch. 5 "Circuit Breaker") stops that:

- **CLOSED**: messages flow. Each dependency failure is counted in a window of ``window_s``; at
  ``threshold`` failures in one window the breaker opens.
- **OPEN**: the stage stops pulling (its event-source mapping disabled in AWS, its poller paused locally)
  and a message it still receives is put back on its queue untouched, without calling the dependency.
  Messages wait in the queue, not in the DLQ.
- **HALF_OPEN**: after ``cooldown_s`` the sweeper lets the stage pull again. The next message is the
  probe: its success closes the breaker, its dependency failure opens it again for another cool-down.

Deviation from the textbook breaker: the half-open state admits what the event source delivers (one
batch per poller), not exactly one call; a failure in any of them reopens the breaker.

Pure: no AWS here. The state lives in the invocations table (``dal.breakers``); the event-source mappings
are switched by ``dal.mappings``; the handlers and the sweeper drive both.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass
from typing import Any

# Error codes of AWS services that say "the service is unavailable or overloaded right now" (botocore's
# standard retry mode treats the same codes as transient), as opposed to "this request is wrong".
UNAVAILABLE_CODES = frozenset(
    {
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "TransactionInProgressException",
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorThrottlingException",
        "EC2ThrottledException",
        "BandwidthLimitExceeded",
        "LimitExceededException",
    }
)
# The services a stage calls, in the order an operation name is looked up in their models.
DEPENDENCIES = ("s3", "dynamodb", "sqs", "events", "stepfunctions", "secretsmanager")


class BreakerState(enum.StrEnum):
    CLOSED = "CLOSED"
    OPEN = "OPEN"
    HALF_OPEN = "HALF_OPEN"


@dataclass(frozen=True)
class BreakerSettings:
    """How a breaker trips and recovers (cdk.json: ``breaker_threshold``, ``breaker_window_s``,
    ``breaker_cooldown_s``; the functions' BREAKER_* variables)."""

    threshold: int = 5
    window_s: int = 60
    cooldown_s: int = 60


def dependency_of(error: BaseException) -> str | None:
    """The service whose unavailability `error` reports ("s3", "dynamodb", ...; "aws" when it cannot be
    told), or None when `error` is not a dependency failure (a bad request, a refused condition, a bug, an
    injected stage failure: those are the message's problem, not the dependency's).

    Dependency failures are botocore's connection errors (no connection, a timeout, a dropped connection)
    and service errors that say unavailable or throttled (:data:`UNAVAILABLE_CODES`, or any HTTP 5xx),
    raised after botocore's own retries gave up. The chain of causes is followed, so that a stage error
    wrapping one counts too.
    """
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ClientError):
            response: dict[str, Any] = current.response or {}
            code = str(response.get("Error", {}).get("Code", ""))
            status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
            if code in UNAVAILABLE_CODES or status >= 500:
                return _service_of_operation(current.operation_name)
            return None
        if isinstance(current, (ConnectionError, HTTPClientError)):
            tagged = getattr(current, "harmonic_service", None)  # dal.clients names the service
            if isinstance(tagged, str) and tagged:
                return tagged
            return _service_of_endpoint(str(getattr(current, "kwargs", {}).get("endpoint_url", "")))
        current = current.__cause__ or current.__context__
    return None


@functools.cache
def _operations() -> dict[str, str]:
    """{operation name: service} for :data:`DEPENDENCIES` (first service wins), from botocore's models."""
    import botocore.session

    session = botocore.session.get_session()
    operations: dict[str, str] = {}
    for service in DEPENDENCIES:
        for name in session.get_service_model(service).operation_names:
            operations.setdefault(name, service)
    return operations


def _service_of_operation(operation: str) -> str:
    return _operations().get(operation, "aws")


def _service_of_endpoint(url: str) -> str:
    """ "s3" from https://s3.eu-west-1.amazonaws.com/...; "aws" for an endpoint that does not say (a local
    one)."""
    host = url.split("://", 1)[-1].split("/", 1)[0].lower()
    if host.endswith(".amazonaws.com"):
        for service in DEPENDENCIES:
            if host.startswith((f"{service}.", f"{service}-")) or f".{service}." in host:
                return service
    return "aws"


def trips(state: BreakerState, failures_in_window: int, settings: BreakerSettings) -> bool:
    """Whether a dependency failure, which made the window's count `failures_in_window`, opens a breaker
    in `state`: at the threshold when CLOSED, at once when HALF_OPEN (the probe failed)."""
    if state == BreakerState.HALF_OPEN:
        return True
    return state == BreakerState.CLOSED and failures_in_window >= settings.threshold


def probe_due(state: BreakerState, opened_at: float, now: float, settings: BreakerSettings) -> bool:
    """Whether an OPEN breaker has cooled down and may let a probe through."""
    return state == BreakerState.OPEN and now - opened_at >= settings.cooldown_s


def requeue_delay_s(state: BreakerState, opened_at: float, now: float, settings: BreakerSettings) -> int:
    """How long a message put back on its queue waits before it is visible again: the rest of the
    cool-down while OPEN (at least 1 s), otherwise one cool-down; SQS allows at most 900 s."""
    if state == BreakerState.OPEN:
        remaining = settings.cooldown_s - (now - opened_at)
        return int(min(900, max(1, round(remaining))))
    return int(min(900, max(1, settings.cooldown_s)))
