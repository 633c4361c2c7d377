"""The watchdog against moto: no invocation stays RUNNING past its deadline. A lost message is sent again
once; a stage that started and never finished, or a second loss, ends FAILED "stalled" and resumable; an
execution that Step Functions ended without the failure path is recorded; ended invocations leave the
index. Sweeps run at a `now` past the deadline instead of waiting for it."""

from __future__ import annotations

import time

from harmonic_service import service, sweeper
from harmonic_service.dal import checkpoints
from harmonic_service.deadlines import deadline_s
from harmonic_service.models import Envelope
from local import harness
from tests.conftest import SPEECH_FILES
from tests.integration.conftest import AwsStack

CLIP = SPEECH_FILES[-1].read_bytes()


def _submit(mode: str = "pipeline") -> str:
    return service.submit_invocation(CLIP, None, mode, None, None, "sweeper-test")["invocation_id"]


def _purge(aws: AwsStack, url: str) -> None:
    """Lose every message on the queue (received and deleted; PurgeQueue allows one call a minute)."""
    while messages := aws.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            aws.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def _past(invocation_id: str) -> float:
    item = checkpoints.get(invocation_id)
    assert item is not None
    assert item.deadline_at is not None
    return item.deadline_at + 1


def test_an_invocation_is_indexed_with_its_deadline_until_it_ends(aws: AwsStack) -> None:
    before = time.time()
    invocation_id = _submit()
    deadline = checkpoints.get(invocation_id).deadline_at
    assert before + deadline_s() - 1 <= deadline <= time.time() + deadline_s() + 1
    assert checkpoints.overdue(now=deadline - 10) == []
    assert checkpoints.overdue(now=deadline + 1) == [invocation_id]
    aws.drain()
    assert service.get_invocation(invocation_id)["status"] == "SUCCEEDED"
    assert checkpoints.overdue(now=deadline + 1) == []  # out of the index: nothing for the sweeper
    assert sweeper.sweep(now=deadline + 1).examined == 0


def test_a_lost_message_is_sent_again_once_then_the_invocation_stalls(aws: AwsStack) -> None:
    invocation_id = _submit()
    _purge(aws, aws.queue_urls["ingest"])  # the first stage's message is lost
    report = sweeper.sweep(now=_past(invocation_id))
    assert report.redispatched == [invocation_id]
    assert checkpoints.get(invocation_id).stage("ingest").redispatched
    aws.drain()
    assert service.get_invocation(invocation_id)["status"] == "SUCCEEDED"

    again = _submit()
    _purge(aws, aws.queue_urls["ingest"])
    assert sweeper.sweep(now=_past(again)).redispatched == [again]
    _purge(aws, aws.queue_urls["ingest"])  # lost a second time
    report = sweeper.sweep(now=_past(again))  # the extended deadline
    assert report.stalled == [again]
    failed = service.get_invocation(again)
    assert failed["status"] == "FAILED"
    assert (failed["error"]["code"], failed["error"]["stage"]) == ("stalled", "ingest")
    assert checkpoints.overdue(now=time.time() + 10 * deadline_s()) == []  # FAILED: out of the index
    service.resume_invocation(again, correlation_id="after-stall")
    aws.drain()
    assert service.get_invocation(again)["status"] == "SUCCEEDED"


def test_a_stage_killed_on_its_last_delivery_stalls_and_resumes(aws: AwsStack) -> None:
    """The stage started (its attempt counted) and its process died; the message is gone (the DLQ)."""
    invocation_id = _submit()
    checkpoints.start_stage(invocation_id, "ingest")
    _purge(aws, aws.queue_urls["ingest"])
    report = sweeper.sweep(now=_past(invocation_id))
    assert (report.redispatched, report.stalled) == ([], [invocation_id])
    assert service.get_invocation(invocation_id)["error"]["code"] == "stalled"
    assert service.resume_invocation(invocation_id, correlation_id="r")["resumed_from"] == "ingest"
    aws.drain()
    assert service.get_invocation(invocation_id)["status"] == "SUCCEEDED"


def test_events_mode_lost_trigger_is_published_again(aws: AwsStack) -> None:
    invocation_id = _submit("events")
    _purge(aws, aws.resources.event_queue_urls["ingest"])  # InvocationSubmitted's delivery is lost
    assert sweeper.sweep(now=_past(invocation_id)).redispatched == [invocation_id]
    aws.drain()
    assert service.get_invocation(invocation_id)["status"] == "SUCCEEDED"


def test_the_sweepers_function_fails_and_announces_a_stalled_invocation(aws: AwsStack, monkeypatch) -> None:
    invocation_id = _submit()
    checkpoints.start_stage(invocation_id, "ingest")
    _purge(aws, aws.queue_urls["ingest"])
    due = _past(invocation_id)
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: due)  # the schedule fires after the deadline
    handler = harness.Sandbox(harness.SWEEPER_HANDLER)
    result = handler.call({"source": "aws.events", "detail-type": "Scheduled Event"}, "harmonic-sweeper")
    monkeypatch.setattr(time, "time", real_time)
    assert result["stalled"] == [invocation_id]
    aws.drain()  # the audit subscriber hears the InvocationFailed it published
    logged = service.invocation_events(invocation_id)["events"]
    (announced,) = [event for event in logged if event["detail_type"] == "InvocationFailed"]
    assert announced["detail"]["code"] == "stalled"


def test_an_execution_that_ended_without_its_failure_path_is_recorded(aws: AwsStack) -> None:
    invocation_id = _submit()
    envelope = Envelope(invocation_id=invocation_id, correlation_id="c", stage="ingest", mode="statemachine")

    def ended(status: str) -> dict:
        return {
            "source": "aws.states",
            "detail-type": "Step Functions Execution Status Change",
            "detail": {"status": status, "name": invocation_id, "input": envelope.to_json(), "cause": "x"},
        }

    assert sweeper.execution_ended(ended("SUCCEEDED")) is None  # not an ending we record
    assert sweeper.execution_ended(ended("ABORTED")) == invocation_id
    failed = service.get_invocation(invocation_id)
    assert failed["error"]["code"] == "execution_aborted"
    assert "ABORTED" in failed["error"]["message"]
    assert sweeper.execution_ended(ended("TIMED_OUT")) is None  # already FAILED: the first record stands
    assert service.get_invocation(invocation_id)["error"]["code"] == "execution_aborted"
    handler = harness.Sandbox(harness.SWEEPER_HANDLER)
    garbage = {"source": "aws.states", "detail": {"status": "FAILED", "input": "not json"}}
    assert handler.call(garbage, "harmonic-sweeper") == {"failed": None}  # unreadable: nothing recorded
