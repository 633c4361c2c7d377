"""The event-driven architecture (`mode: "events"`) under moto: the API publishes to an EventBridge bus, the
stage table's rules fill each stage's queue, the events handler runs the stage and publishes its completion.

`drain_pipeline` (aws.drain) delivers every stage queue's messages to the real handlers until all are empty.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from harmonic_service import service
from harmonic_service.dal import checkpoints
from harmonic_service.events import SCHEMA_VERSION, SOURCE, subscriptions
from harmonic_service.stages import STAGE_NAMES
from tests.conftest import SPEECH_FILES, read_wav_reference
from tests.integration.conftest import AwsStack, wav_bytes

KEYWORDS = Path(__file__).resolve().parents[1] / "data" / "keywords"


@pytest.fixture(scope="module")
def noisy_wav() -> bytes:
    """An espeak-ng sentence with white noise at about 10 dB SNR: denoise runs."""
    speech, sr = read_wav_reference(SPEECH_FILES[-1])
    rng = np.random.default_rng(11)
    noise_rms = np.sqrt(np.mean(speech**2)) / 10 ** (10 / 20)
    noisy = speech + noise_rms * rng.standard_normal(speech.size)
    return wav_bytes(0.5 * noisy / np.abs(noisy).max(), sr)


def submit(audio: bytes, correlation_id: str = "events-test", **kwargs) -> str:
    accepted = service.submit_invocation(
        audio=audio,
        audio_key=None,
        mode="events",
        steps=kwargs.get("steps"),
        options=kwargs.get("options"),
        correlation_id=correlation_id,
    )
    assert accepted == {**accepted, "status": "ACCEPTED", "mode": "events"}
    return accepted["invocation_id"]


def stage_table(body: dict) -> dict[str, dict]:
    return {stage["name"]: stage for stage in body["stages"]}


def test_events_mode_runs_every_stage_and_matches_analyze(aws: AwsStack, noisy_wav: bytes) -> None:
    service.create_pattern("music", "template", (KEYWORDS / "enrol_music_0.wav").read_bytes(), None)
    invocation_id = submit(noisy_wav)
    report = aws.drain()

    body = service.get_invocation(invocation_id)
    assert body["status"] == "SUCCEEDED", body.get("error")
    assert report.failures == []
    stages = stage_table(body)
    assert {name: stage["status"] for name, stage in stages.items()} == dict.fromkeys(
        STAGE_NAMES, "SUCCEEDED"
    )
    # every stage ran once, respond too although five events (one per stage it reads) reached its queue
    assert {name: stage["attempts"] for name, stage in stages.items()} == dict.fromkeys(STAGE_NAMES, 1)
    assert report.deliveries["events-respond"] == 5
    assert all(report.deliveries[f"events-{name}"] >= 1 for name in STAGE_NAMES)
    assert not any(report.deliveries.get(name) for name in STAGE_NAMES)  # no pipeline queue was used
    analyzed = service.analyze(noisy_wav, None, None, None)
    assert body["result"] == analyzed


def test_a_clean_clip_skips_denoise_and_without_patterns_match(aws: AwsStack) -> None:
    invocation_id = submit(SPEECH_FILES[1].read_bytes())
    aws.drain()
    body = service.get_invocation(invocation_id)
    assert body["status"] == "SUCCEEDED", body.get("error")
    stages = stage_table(body)
    assert stages["denoise"]["status"] == "SKIPPED"
    assert stages["denoise"]["reason"].startswith("clean clip")
    assert stages["match"]["status"] == "SKIPPED"
    assert stages["match"]["reason"] == "no patterns registered"
    assert body["result"]["denoise"]["applied"] is False
    assert body["result"]["matches"] == []


def test_every_stage_time_is_recorded(aws: AwsStack, noisy_wav: bytes) -> None:
    invocation_id = submit(noisy_wav)
    aws.drain()
    stages = stage_table(service.get_invocation(invocation_id))
    for name, stage in stages.items():
        assert stage["finished_at"] is not None, name
        if stage["status"] == "SUCCEEDED":
            assert stage["started_at"] <= stage["finished_at"], name
    # features and match both start after normalize finished; respond after both
    assert stages["features"]["started_at"] >= stages["normalize"]["finished_at"]
    assert stages["respond"]["started_at"] >= max(
        stages["features"]["finished_at"], stages["match"]["finished_at"]
    )


def test_a_duplicated_event_does_no_work_twice(aws: AwsStack, noisy_wav: bytes) -> None:
    invocation_id = submit(noisy_wav)
    report = aws.drain(duplicate=True)
    body = service.get_invocation(invocation_id)
    assert body["status"] == "SUCCEEDED", body.get("error")
    assert {stage["name"]: stage["attempts"] for stage in body["stages"]} == dict.fromkeys(STAGE_NAMES, 1)
    assert report.failures == []


def _event(detail_type: str, detail: dict, event_id: str = "e-1") -> str:
    return json.dumps({"id": event_id, "source": SOURCE, "detail-type": detail_type, "detail": detail})


def test_a_newer_event_with_an_unknown_field_is_still_processed(aws: AwsStack, noisy_wav: bytes) -> None:
    invocation_id = submit(noisy_wav)
    aws.sqs.purge_queue(QueueUrl=aws.resources.event_queue_urls["ingest"])  # replace the real event
    item = checkpoints.get(invocation_id)
    detail = {
        "schema_version": SCHEMA_VERSION,
        "invocation_id": invocation_id,
        "correlation_id": "events-test",
        "input_key": item.input_key,
        "priority": "high",  # a field this code does not know
    }
    aws.sqs.send_message(
        QueueUrl=aws.resources.event_queue_urls["ingest"], MessageBody=_event("InvocationSubmitted", detail)
    )
    aws.drain()
    assert service.get_invocation(invocation_id)["status"] == "SUCCEEDED"


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        json.dumps({"source": "somebody-else", "detail-type": "InvocationSubmitted", "detail": {}}),
        _event("InvocationSubmitted", {"invocation_id": "x"}),  # no correlation id, no input key
        _event(
            "InvocationSubmitted",
            {"invocation_id": "x", "correlation_id": "c", "input_key": "k", "schema_version": 0},
        ),
        _event("InvocationCompleted", {"invocation_id": "x", "correlation_id": "c", "result_key": "k"}),
    ],
)
def test_a_malformed_event_ends_in_the_dead_letter_queue_and_blocks_nothing(
    aws: AwsStack, noisy_wav: bytes, body: str
) -> None:
    aws.sqs.send_message(QueueUrl=aws.resources.event_queue_urls["ingest"], MessageBody=body)
    invocation_id = submit(noisy_wav)
    report = aws.drain()
    assert service.get_invocation(invocation_id)["status"] == "SUCCEEDED"
    assert [stage for stage, _ in report.failures] == ["events-ingest"] * 3  # maxReceiveCount deliveries
    assert aws.queue_depth(aws.resources.event_dlq_urls["ingest"]) == 1


def test_a_failed_stage_fails_the_invocation_and_resume_completes_it(
    aws: AwsStack, noisy_wav: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    from importlib import import_module

    from harmonic_service.errors import PermanentStageError

    features_module = import_module("harmonic_service.stages.features")
    original = features_module.features
    calls = []

    def fails_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise PermanentStageError("feature backend missing", code="no_backend")
        return original(*args, **kwargs)

    monkeypatch.setattr(features_module, "features", fails_once)
    service.create_pattern("music", "template", (KEYWORDS / "enrol_music_0.wav").read_bytes(), None)
    invocation_id = submit(noisy_wav)
    aws.drain()
    failed = service.get_invocation(invocation_id)
    assert failed["status"] == "FAILED"
    assert failed["error"] == {
        "code": "no_backend",
        "message": "feature backend missing",
        "stage": "features",
    }

    resumed = service.resume_invocation(invocation_id, correlation_id="events-resume")
    assert resumed["resumed_from"] == "features"
    aws.drain()
    done = service.get_invocation(invocation_id)
    assert done["status"] == "SUCCEEDED", done.get("error")
    stages = stage_table(done)
    assert stages["features"]["attempts"] == 2
    assert stages["ingest"]["attempts"] == 1  # the completed stages were not run again
    assert stages["match"]["status"] == "SUCCEEDED"


def test_the_rules_come_from_the_stage_table() -> None:
    assert subscriptions("ingest")[0] == {"source": [SOURCE], "detail-type": ["InvocationSubmitted"]}
    after_normalize = {
        "source": [SOURCE],
        "detail-type": ["StageCompleted", "StageSkipped"],
        "detail": {"stage": ["normalize"]},
    }
    assert subscriptions("features")[0] == after_normalize
    assert subscriptions("match")[0] == after_normalize  # so features and match start together
    assert subscriptions("respond")[0]["detail"]["stage"] == [
        "ingest",
        "denoise",
        "normalize",
        "features",
        "match",
    ]
    for stage in STAGE_NAMES:
        assert subscriptions(stage)[1]["detail"] == {"stage": [stage]}  # its resumes


def test_events_mode_without_a_bus_is_a_bad_request(aws: AwsStack, noisy_wav: bytes) -> None:
    from harmonic_service.config import clear_caches
    from harmonic_service.errors import BadRequest

    aws.monkeypatch.setenv("EVENT_BUS_NAME", "")
    aws.monkeypatch.setenv("ORCHESTRATION", "pipeline")
    clear_caches()
    with pytest.raises(BadRequest, match="mode events is not deployed here; available: pipeline"):
        submit(noisy_wav)


def test_a_replay_of_the_window_completes_what_failed_and_leaves_the_rest(
    aws: AwsStack, noisy_wav: bytes
) -> None:
    """A stage fails by fault injection on every delivery; once the fault is gone (the directed fault ends
    after its count of attempts), replaying the archive's window completes the failed invocation and does
    not run the succeeded one again."""
    from datetime import UTC, datetime, timedelta

    from harmonic_service.config import clear_caches
    from local.replay import replay

    aws.monkeypatch.setenv("HARMONIC_FAULTS_ENABLED", "true")
    clear_caches()
    since = datetime.now(UTC) - timedelta(seconds=5)
    healthy = submit(noisy_wav, correlation_id="replay-healthy")
    failing = submit(noisy_wav, correlation_id="replay-fault-features-fail-3")  # fails all 3 deliveries
    aws.drain()
    assert service.get_invocation(healthy)["status"] == "SUCCEEDED"
    failed = service.get_invocation(failing)
    assert failed["status"] == "FAILED"
    assert failed["error"]["code"] == "retries_exhausted"
    healthy_before = service.get_invocation(healthy)
    before = stage_table(healthy_before)

    state = replay(aws.resources.clients["events"], aws.resources.names.archive, since, datetime.now(UTC))
    assert state["State"] == "COMPLETED"
    report = aws.drain()
    assert report.deliveries["events-ingest"] == 2  # both invocations' InvocationSubmitted, replayed
    done = service.get_invocation(failing)
    assert done["status"] == "SUCCEEDED", done.get("error")
    assert stage_table(done)["features"]["attempts"] == 4  # three injected failures, then the replay's
    assert stage_table(done)["ingest"]["attempts"] == 1  # what had succeeded did not run again
    after = stage_table(service.get_invocation(healthy))
    assert {n: s["attempts"] for n, s in after.items()} == {n: s["attempts"] for n, s in before.items()}
    assert service.get_invocation(healthy)["updated_at"] == healthy_before["updated_at"]  # not touched


def test_a_replay_outside_the_window_replays_nothing(aws: AwsStack, noisy_wav: bytes) -> None:
    from datetime import UTC, datetime, timedelta

    from local.replay import replay

    submit(noisy_wav)
    aws.drain()
    long_ago = datetime.now(UTC) - timedelta(days=1)
    state = replay(
        aws.resources.clients["events"], aws.resources.names.archive, long_ago, long_ago + timedelta(hours=1)
    )
    assert state["State"] == "COMPLETED"
    assert aws.drain().deliveries == {}


def test_the_audit_subscriber_keeps_every_event_of_an_invocation(aws: AwsStack, noisy_wav: bytes) -> None:
    """A consumer no stage knows about: every event on the bus, per invocation, at GET .../events."""
    invocation_id = submit(noisy_wav)
    report = aws.drain(duplicate=True)  # every event delivered twice: kept once
    body = service.invocation_events(invocation_id)
    types = [event["detail_type"] for event in body["events"]]
    assert types[0] == "InvocationSubmitted"
    assert types[-1] == "InvocationCompleted"
    completed = [
        e["detail"]["stage"] for e in body["events"] if e["detail_type"] in ("StageCompleted", "StageSkipped")
    ]
    assert sorted(completed) == sorted(STAGE_NAMES)  # each stage announced once
    assert body["count"] == len(STAGE_NAMES) + 2
    assert all(event["detail"]["invocation_id"] == invocation_id for event in body["events"])
    assert report.deliveries["audit"] == len(STAGE_NAMES) + 2  # one message per event on the bus
    assert len({event["id"] for event in body["events"]}) == body["count"]


def test_events_of_other_modes_and_unknown_invocations(aws: AwsStack, noisy_wav: bytes) -> None:
    """A pipeline invocation publishes only its end on the bus: the audit log has that one event."""
    pipeline_id = service.submit_invocation(noisy_wav, None, "pipeline", None, None, "c")["invocation_id"]
    aws.drain()
    logged = service.invocation_events(pipeline_id)
    assert logged["count"] == 1
    assert [event["detail_type"] for event in logged["events"]] == ["InvocationCompleted"]
    assert logged["events"][0]["detail"]["notify"] is False
    with pytest.raises(service.NotFound):
        service.invocation_events("no-such-invocation")
