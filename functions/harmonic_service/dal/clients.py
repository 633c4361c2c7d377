"""Lazily created boto3 clients, one per service per process.

Created on first use (not at import) so that a cold start only pays for the clients it needs and so that
moto's `mock_aws` is active before a client exists. `AWS_ENDPOINT_URL` (boto3's own setting) points them at
a local stack.
"""

from __future__ import annotations

import functools
from typing import Any

from harmonic_service import config, faults

_CONFIG_KWARGS = {
    "retries": {"mode": "standard", "max_attempts": 4},
    "connect_timeout": 5,
    "read_timeout": 30,
}


@functools.cache
def _session() -> Any:
    """botocore's session, not boto3's: the same clients (credentials, region and AWS_ENDPOINT_URL from the
    environment) without importing boto3 and s3transfer, a fifth of the API function's cold start."""
    import botocore.session

    return botocore.session.get_session()


@functools.cache
def _trace_aws_calls() -> None:
    """Patch botocore for X-Ray (a subsegment per AWS call) when the first client is made, not at import:
    Powertools' Tracer patches every supported library at init (auto_patch), which imports botocore's client
    machinery and requests, a third of a cold start for the API function's routes that call no AWS service.
    The handlers' Tracers are made with auto_patch=False; a disabled tracer (outside Lambda, or
    POWERTOOLS_TRACE_DISABLED) patches nothing."""
    from aws_lambda_powertools import Tracer

    Tracer(auto_patch=False).patch(["botocore"])


@functools.cache
def _client(service: str) -> Any:
    from botocore.config import Config

    _trace_aws_calls()
    extra = {"signature_version": "s3v4"} if service == "s3" else {}
    client = _session().create_client(service, config=Config(**_CONFIG_KWARGS, **extra))
    client.meta.events.register("after-call-error", functools.partial(_tag_service, service))
    faults.instrument_client(client, service)
    return client


def _tag_service(service: str, exception: BaseException | None = None, **_: Any) -> None:
    """Name the service on a call's error that says none itself (no connection, a timeout), so that the
    circuit breaker can tell which dependency failed (breaker.dependency_of)."""
    if exception is not None:
        exception.harmonic_service = service  # type: ignore[attr-defined]


def dynamodb() -> Any:
    return _client("dynamodb")


def s3() -> Any:
    return _client("s3")


def sqs() -> Any:
    return _client("sqs")


def stepfunctions() -> Any:
    return _client("stepfunctions")


def events() -> Any:
    return _client("events")


def secretsmanager() -> Any:
    return _client("secretsmanager")


def lambda_() -> Any:
    return _client("lambda")


def clear() -> None:
    """Forget every client and the session (tests start a fresh mock per case)."""
    _client.cache_clear()
    _session.cache_clear()


config.on_clear(clear)
