"""Fault injection: off by default, rates honoured, directed faults exact, bad plans refused."""

from __future__ import annotations

import json

import pytest

from harmonic_service import faults
from harmonic_service.errors import TransientStageError


@pytest.fixture(autouse=True)
def _fresh_plan(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("HARMONIC_FAULTS", raising=False)
    monkeypatch.delenv("HARMONIC_FAULTS_ENABLED", raising=False)
    faults.reset()
    yield
    faults.reset()


def _set(monkeypatch: pytest.MonkeyPatch, **plan: object) -> None:
    monkeypatch.setenv("HARMONIC_FAULTS", json.dumps(plan))
    faults.reset()


def test_off_by_default_even_for_directed_correlation_ids() -> None:
    assert not faults.plan().enabled
    faults.before_work("features", "fault-features-fail-9", attempts=1)
    faults.after_side_effect("features", "fault-features-crash-9", attempts=1)
    assert not faults.duplicate_delivery("features")


def test_injected_faults_are_transient() -> None:
    assert issubclass(faults.InjectedFault, TransientStageError)


def test_rates_are_honoured_and_seeded(monkeypatch: pytest.MonkeyPatch) -> None:
    _set(monkeypatch, fail_rate=0.25, seed=11)
    outcomes = []
    for attempt in range(2000):
        try:
            faults.before_work("ingest", None, attempt)
            outcomes.append(False)
        except faults.InjectedFault:
            outcomes.append(True)
    assert 0.22 < sum(outcomes) / len(outcomes) < 0.28
    faults.reset()
    again = []
    for attempt in range(2000):
        try:
            faults.before_work("ingest", None, attempt)
            again.append(False)
        except faults.InjectedFault:
            again.append(True)
    assert again == outcomes  # the same seed, the same faults


def test_stage_filter_and_duplicates(monkeypatch: pytest.MonkeyPatch) -> None:
    _set(monkeypatch, duplicate_rate=1.0, crash_after_side_effect_rate=1.0, stages=["normalize"])
    assert faults.duplicate_delivery("normalize")
    assert not faults.duplicate_delivery("features")
    with pytest.raises(faults.InjectedFault, match="after its side effects"):
        faults.after_side_effect("normalize", None, 1)
    faults.after_side_effect("features", None, 1)


def test_directed_faults_count_attempts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARMONIC_FAULTS_ENABLED", "true")
    faults.reset()
    correlation_id = "client-7/fault-features-fail-2/fault-respond-crash-1"
    for attempt in (1, 2):
        with pytest.raises(faults.InjectedFault, match=f"attempt {attempt}"):
            faults.before_work("features", correlation_id, attempt)
    faults.before_work("features", correlation_id, 3)
    faults.before_work("respond", correlation_id, 1)  # respond is directed to crash, not to fail
    with pytest.raises(faults.InjectedFault):
        faults.after_side_effect("respond", correlation_id, 1)
    faults.after_side_effect("respond", correlation_id, 2)


@pytest.mark.parametrize("raw", ["[1, 2]", "{not json", '{"fail_rate": "often"}'])
def test_a_bad_plan_is_refused_clearly(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("HARMONIC_FAULTS", raw)
    faults.reset()
    with pytest.raises(ValueError, match="HARMONIC_FAULTS"):
        faults.plan()


def test_an_outage_fails_a_services_calls_while_its_file_exists_in_workers_only(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import EndpointConnectionError
    from moto import mock_aws

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    flag = tmp_path / "down"
    flag.touch()
    _set(monkeypatch, outage={"services": ["s3"], "while_exists": str(flag)})
    with mock_aws():

        def client() -> object:
            made = boto3.client("s3", region_name="us-east-1", config=Config(retries={"max_attempts": 1}))
            faults.instrument_client(made, "s3")
            return made

        outside = client()  # not a worker process: left alone
        outside.create_bucket(Bucket="harmonic-outage-test")
        outside.put_object(Bucket="harmonic-outage-test", Key="k", Body=b"clip")
        monkeypatch.setenv(faults.WORKER_FLAG, "1")
        worker = client()
        with pytest.raises(EndpointConnectionError):
            worker.get_object(Bucket="harmonic-outage-test", Key="k")
        flag.unlink()  # repaired
        assert worker.get_object(Bucket="harmonic-outage-test", Key="k")["Body"].read() == b"clip"
