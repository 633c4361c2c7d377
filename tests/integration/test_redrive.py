"""Poison and exhausted messages: to the DLQ after bounded attempts, never blocking others; redrive moves
them back (StartMessageMoveTask semantics), and resume then finishes the invocations."""

from __future__ import annotations

from pathlib import Path

import pytest

from harmonic_service import service
from harmonic_service.config import clear_caches
from harmonic_service.dal.redrive import redrive

SPEECH = Path(__file__).resolve().parents[1] / "data" / "speech" / "en_us_m.wav"


@pytest.fixture
def faults_enabled(aws):
    aws.monkeypatch.setenv("HARMONIC_FAULTS_ENABLED", "true")
    clear_caches()
    return aws


def test_poison_goes_to_the_dlq_without_blocking_and_redrive_then_resume_finishes(faults_enabled) -> None:
    aws = faults_enabled
    doomed = service.submit_invocation(
        SPEECH.read_bytes(), None, "pipeline", None, None, "ops-fault-features-fail-3"
    )
    healthy = service.submit_invocation(SPEECH.read_bytes(), None, "pipeline", None, None, "healthy-1")
    aws.send("features", "{this is not an envelope")
    report = aws.drain()
    assert service.get_invocation(healthy["invocation_id"])["status"] == "SUCCEEDED"  # not blocked
    failed = service.get_invocation(doomed["invocation_id"])
    assert failed["status"] == "FAILED"
    assert failed["error"]["code"] == "retries_exhausted"
    assert aws.dlq_depths()["features"] == 2  # the poison message and the exhausted one
    assert report.deliveries["features"] == 1 + 3 * 2  # the healthy one once; the others 3 times each

    outcome = redrive(aws.dlq_urls["features"], aws.queue_urls["features"])
    assert outcome == {"method": "by_hand", "moved": 2}
    assert aws.dlq_depths()["features"] == 0
    aws.drain()  # the redriven envelope is stale (invocation FAILED): dropped; the poison returns to the DLQ
    assert service.get_invocation(doomed["invocation_id"])["status"] == "FAILED"
    assert aws.dlq_depths()["features"] == 1

    service.resume_invocation(doomed["invocation_id"], "ops-resume")
    aws.drain()
    final = service.get_invocation(doomed["invocation_id"])
    assert final["status"] == "SUCCEEDED"
    assert {stage["name"]: stage["attempts"] for stage in final["stages"]}["features"] == 4
    assert {stage["name"]: stage["attempts"] for stage in final["stages"]}["ingest"] == 1
