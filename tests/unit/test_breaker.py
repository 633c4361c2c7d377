"""The circuit breaker's pure parts (harmonic_service.breaker): which errors are a dependency's
failure (and whose), when a breaker opens, when it may probe, how long a held message waits."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from harmonic_service.breaker import (
    BreakerSettings,
    BreakerState,
    dependency_of,
    probe_due,
    requeue_delay_s,
    trips,
)
from harmonic_service.errors import TransientStageError
from harmonic_service.faults import InjectedFault


def _client_error(code: str, status: int, operation: str) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "x"}, "ResponseMetadata": {"HTTPStatusCode": status}}, operation
    )


@pytest.mark.parametrize(
    ("code", "status", "operation", "service"),
    [
        ("SlowDown", 503, "PutObject", "s3"),
        ("InternalError", 500, "GetObject", "s3"),
        ("ProvisionedThroughputExceededException", 400, "UpdateItem", "dynamodb"),
        ("ThrottlingException", 400, "Query", "dynamodb"),
        ("ServiceUnavailable", 503, "SendMessage", "sqs"),
        ("SomethingNew", 502, "PutEvents", "events"),  # any 5xx
    ],
)
def test_unavailable_and_throttled_services_are_dependency_failures(
    code: str, status: int, operation: str, service: str
) -> None:
    assert dependency_of(_client_error(code, status, operation)) == service


@pytest.mark.parametrize(
    ("code", "status", "operation"),
    [
        ("ConditionalCheckFailedException", 400, "UpdateItem"),
        ("NoSuchKey", 404, "GetObject"),
        ("ValidationException", 400, "PutItem"),
        ("AccessDenied", 403, "PutObject"),
    ],
)
def test_a_wrong_request_is_not_a_dependency_failure(code: str, status: int, operation: str) -> None:
    assert dependency_of(_client_error(code, status, operation)) is None


def test_connection_errors_name_the_service_the_client_tagged_or_the_endpoint() -> None:
    tagged = EndpointConnectionError(endpoint_url="http://127.0.0.1:5000/bucket/key")
    tagged.harmonic_service = "s3"  # what dal.clients does on every call's error
    assert dependency_of(tagged) == "s3"
    assert dependency_of(
        EndpointConnectionError(endpoint_url="https://dynamodb.eu-west-1.amazonaws.com/")
    ) == ("dynamodb")
    assert dependency_of(ReadTimeoutError(endpoint_url="http://localhost:4566/")) == "aws"


def test_the_chain_of_causes_is_followed_and_plain_errors_are_not_dependencies() -> None:
    wrapped = TransientStageError("could not read the clip")
    wrapped.__cause__ = _client_error("SlowDown", 503, "GetObject")
    assert dependency_of(wrapped) == "s3"
    assert dependency_of(InjectedFault("injected failure")) is None
    assert dependency_of(ValueError("a bug")) is None


def test_a_closed_breaker_opens_at_the_threshold_a_half_open_one_at_once() -> None:
    settings = BreakerSettings(threshold=5, window_s=60, cooldown_s=30)
    assert not trips(BreakerState.CLOSED, 4, settings)
    assert trips(BreakerState.CLOSED, 5, settings)
    assert trips(BreakerState.HALF_OPEN, 1, settings)  # the probe failed
    assert not trips(BreakerState.OPEN, 99, settings)  # already open: nothing to do


def test_a_probe_is_due_after_the_cooldown_only_when_open() -> None:
    settings = BreakerSettings(threshold=5, window_s=60, cooldown_s=30)
    assert not probe_due(BreakerState.OPEN, opened_at=1000.0, now=1029.0, settings=settings)
    assert probe_due(BreakerState.OPEN, opened_at=1000.0, now=1030.0, settings=settings)
    assert not probe_due(BreakerState.HALF_OPEN, opened_at=1000.0, now=2000.0, settings=settings)
    assert not probe_due(BreakerState.CLOSED, opened_at=0.0, now=2000.0, settings=settings)


def test_a_held_message_waits_for_the_rest_of_the_cooldown_within_sqs_limits() -> None:
    settings = BreakerSettings(threshold=5, window_s=60, cooldown_s=30)
    assert requeue_delay_s(BreakerState.OPEN, opened_at=1000.0, now=1010.0, settings=settings) == 20
    assert requeue_delay_s(BreakerState.OPEN, opened_at=1000.0, now=1100.0, settings=settings) == 1
    assert requeue_delay_s(BreakerState.CLOSED, opened_at=0.0, now=1100.0, settings=settings) == 30
    long = BreakerSettings(cooldown_s=3600)
    assert requeue_delay_s(BreakerState.CLOSED, opened_at=0.0, now=0.0, settings=long) == 900  # SQS maximum
