"""The statemachine orchestration end to end: service → Step Functions (moto) → task handler → DynamoDB/S3.

moto executes the real ASL (statemachines/harmonic.asl.json, function ARNs substituted) and every Lambda task
is routed to `harmonic_service.handlers.statemachine.handler` in-process (`sfn_aws`, tests/integration/
conftest.py), so Retry/Catch/Choice, the execution name and the checkpoints are all exercised for real.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from importlib import import_module
from typing import Any

import numpy as np
import pytest
from botocore.exceptions import ClientError
from moto.core.exceptions import JsonRESTError

from harmonic_service import pattern_cache, service
from harmonic_service.dal import checkpoints, executions, payloads
from harmonic_service.errors import PermanentStageError
from harmonic_service.logic.patterns import PatternSet
from harmonic_service.models import Envelope
from harmonic_service.stages import STAGE_NAMES, StageOutput
from tests.conftest import SPEECH_FILES, read_wav_reference
from tests.integration.conftest import TASK_FUNCTION_PREFIX, AwsStack, wav_bytes

RESULT_KEYS = {"audio", "denoise", "loudness", "features", "matches"}
RECORD_FAILURE = TASK_FUNCTION_PREFIX + "record-failure"
GARBAGE_WAV = b"RIFF\x24\x00\x00\x00WAVE" + bytes(range(256)) * 4


def stage_module(name: str):
    """The module of stage `name` (its pure function of the same name is what tests make fail)."""
    return import_module(f"harmonic_service.stages.{name}")


@pytest.fixture(scope="module")
def clean_wav() -> bytes:
    """An espeak-ng sentence as committed (16 kHz mono, no noise: ingest measures it clean)."""
    return SPEECH_FILES[0].read_bytes()


@pytest.fixture(scope="module")
def noisy_wav() -> bytes:
    """A committed sentence with white noise at about 10 dB SNR (16 kHz mono): denoise has work."""
    speech, sr = read_wav_reference(SPEECH_FILES[-1])
    rng = np.random.default_rng(11)
    noisy = speech + np.sqrt(np.mean(speech**2)) / 10 ** (10 / 20) * rng.standard_normal(speech.size)
    return wav_bytes(0.5 * noisy / np.abs(noisy).max(), sr)


def submit(audio: bytes, mode: str = "statemachine", **kwargs: Any) -> str:
    accepted = service.submit_invocation(
        audio=audio,
        audio_key=None,
        mode=mode,
        steps=kwargs.get("steps"),
        options=kwargs.get("options"),
        correlation_id=kwargs.get("correlation_id", "sfn-test"),
    )
    assert accepted == {"invocation_id": accepted["invocation_id"], "status": "ACCEPTED", "mode": mode}
    return accepted["invocation_id"]


def run(aws: AwsStack, audio: bytes, **kwargs: Any) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """Submit in statemachine mode and wait: (invocation id, describe_execution, GET body)."""
    invocation_id = submit(audio, **kwargs)
    execution = aws.wait_for_execution(invocation_id)
    return invocation_id, execution, service.get_invocation(invocation_id)


def stage_table(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {stage["name"]: stage for stage in body["stages"]}


def fail_first_calls(monkeypatch: pytest.MonkeyPatch, name: str, error: Exception, times: int = 1) -> Counter:
    """Make logic stage `name` raise `error` on its first `times` calls; returns the call counter."""
    calls: Counter = Counter()
    original = getattr(stage_module(name), name)

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls[name] += 1
        if calls[name] <= times:
            raise error
        return original(*args, **kwargs)

    monkeypatch.setattr(stage_module(name), name, flaky)
    return calls


def register_fake_pattern(monkeypatch: pytest.MonkeyPatch) -> None:
    """One registered pattern and a match stage that finds it: the state machine's branches, not matching."""
    registered = PatternSet(names={"p-1": "hello"}, kinds={"p-1": "template"})
    monkeypatch.setattr(pattern_cache, "current", lambda: registered)
    monkeypatch.setattr(
        pattern_cache, "selected_count", lambda selectors, viewer=None: len(registered.selected(selectors))
    )
    found = {"pattern_id": "p-1", "name": "hello", "kind": "template", "score": 0.9, "start_s": 0.5}
    monkeypatch.setattr(
        stage_module("match"),
        "match",
        # the stage's keyword arguments (enhanced, near_duplicates, ...) change nothing here
        lambda audio, sr, patterns=(), selectors=None, viewer=None, **_: StageOutput(
            None, {"matches": [{**found, "end_s": 1.0}]}
        ),
    )


def task_failures(aws: AwsStack, name: str) -> list[str]:
    """The error names of the execution's failed Lambda task attempts, in order."""
    return [
        event["taskFailedEventDetails"]["error"]
        for event in aws.history(name)
        if event["type"] == "TaskFailed"
    ]


# --- the happy path and the Choice branches -------------------------------------------------------------


def test_clean_speech_succeeds_with_the_pipelines_result(sfn_aws: AwsStack, clean_wav: bytes) -> None:
    invocation_id, execution, body = run(sfn_aws, clean_wav)

    assert execution["status"] == "SUCCEEDED", execution
    assert body["status"] == "SUCCEEDED", body.get("error")
    assert body["mode"] == "statemachine"
    output = json.loads(execution["output"])
    assert output["status"] == "SUCCEEDED"
    assert output["result_key"] == payloads.result_key(invocation_id)
    states = sfn_aws.entered_states(invocation_id)
    assert states[:5] == ["StartAtStage", "Ingest", "AfterIngest", "Normalize", "FeaturesAndMatch"]
    # the Parallel state's branches, in whichever order they entered; then the fan-in
    assert sorted(states[5:7]) == ["Features", "Match"]
    assert states[7:] == ["Respond", "Succeeded"]
    stages = stage_table(body)
    assert [s["name"] for s in body["stages"]] == list(STAGE_NAMES)
    for name in ("ingest", "normalize", "features", "respond"):
        assert stages[name]["status"] == "SUCCEEDED"
        assert stages[name]["attempts"] == 1
    assert stages["denoise"]["status"] == "SKIPPED"
    assert stages["denoise"]["reason"].startswith("clean clip")
    # match is a parallel branch: its task started (one attempt) and decided to skip itself
    assert stages["match"] == {**stages["match"], "status": "SKIPPED", "reason": "no patterns registered"}
    assert stages["match"]["attempts"] == 1

    result = body["result"]
    assert set(result) == RESULT_KEYS
    assert result["audio"]["clean"] is True
    assert result["denoise"]["applied"] is False
    assert {"input_lufs", "output_lufs", "gain_db"} <= set(result["loudness"])
    if not result["loudness"].get("peak_limited"):
        assert result["loudness"]["output_lufs"] == pytest.approx(-23.0, abs=0.5)
    assert {"f0_hz", "voiced_fraction", "hnr_db", "mfcc_mean", "chroma_mean"} <= set(result["features"])
    assert payloads.get_json(payloads.result_key(invocation_id)) == result

    # Small JSON between states: the envelopes the tasks saw carry keys, never audio.
    events = [event for _, event in sfn_aws.router.calls]
    # the branches and the stage after them name their stage beside the envelope they were given
    seen = [event["stage"] if "envelope" in event else Envelope.from_dict(event).stage for event in events]
    assert seen[:2] == ["ingest", "normalize"]
    assert sorted(seen[2:4]) == ["features", "match"]
    assert seen[4:] == ["respond"]
    assert all(len(json.dumps(event)) < 1024 for event in events)
    # Step Functions carried the envelopes: nothing went through the pipeline's queues.
    assert all(sfn_aws.queue_depth(url) == 0 for url in sfn_aws.queue_urls.values())

    # The same stage code, orchestrated by the pipeline in the same stack, gives the same result.
    pipeline_id = submit(clean_wav, mode="pipeline")
    sfn_aws.drain()
    assert service.get_invocation(pipeline_id)["result"] == result


def test_noisy_clip_takes_the_denoise_branch(sfn_aws: AwsStack, noisy_wav: bytes) -> None:
    invocation_id, execution, body = run(sfn_aws, noisy_wav)

    assert execution["status"] == "SUCCEEDED", body.get("error")
    states = sfn_aws.entered_states(invocation_id)
    assert states[:5] == ["StartAtStage", "Ingest", "AfterIngest", "Denoise", "Normalize"]
    stages = stage_table(body)
    assert stages["match"]["status"] == "SKIPPED"  # no pattern: the match branch skipped itself
    assert stages["denoise"]["status"] == "SUCCEEDED"
    assert body["result"]["denoise"]["applied"] is True
    assert body["result"]["audio"]["clean"] is False
    # normalize read the denoised audio
    (normalize_event,) = sfn_aws.router.calls_to("normalize")
    assert normalize_event["input_key"] == payloads.arrays_key(invocation_id, "denoise")


def test_steps_without_denoise_skip_it_even_for_a_noisy_clip(sfn_aws: AwsStack, noisy_wav: bytes) -> None:
    invocation_id, execution, body = run(sfn_aws, noisy_wav, steps=["match"])

    assert execution["status"] == "SUCCEEDED", body.get("error")
    assert "Denoise" not in sfn_aws.entered_states(invocation_id)
    assert stage_table(body)["denoise"]["reason"] == "excluded by steps"
    assert body["steps"] == ["ingest", "normalize", "features", "match", "respond"]
    assert sfn_aws.router.calls_to("denoise") == []


@pytest.mark.parametrize(
    ("steps", "match_runs"),
    [(None, True), (["denoise"], False)],
    ids=["patterns-registered", "steps-exclude-match"],
)
def test_match_branch(
    sfn_aws: AwsStack,
    clean_wav: bytes,
    monkeypatch: pytest.MonkeyPatch,
    steps: list[str] | None,
    match_runs: bool,
) -> None:
    register_fake_pattern(monkeypatch)
    invocation_id, execution, body = run(sfn_aws, clean_wav, steps=steps)

    assert execution["status"] == "SUCCEEDED", body.get("error")
    states = sfn_aws.entered_states(invocation_id)
    match = stage_table(body)["match"]
    assert "Match" in states  # a branch of FeaturesAndMatch either way; it decides its own skip
    assert states[-2:] == ["Respond", "Succeeded"]
    if match_runs:
        assert match["status"] == "SUCCEEDED"
        assert [m["pattern_id"] for m in body["result"]["matches"]] == ["p-1"]
    else:
        assert match["status"] == "SKIPPED"
        assert match["reason"] == "excluded by steps"
        assert body["result"]["matches"] == []


# --- retries, permanent errors, the failure path ----------------------------------------------------------


def test_transient_error_is_retried_with_backoff_then_succeeds(
    sfn_aws: AwsStack, clean_wav: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = fail_first_calls(monkeypatch, "normalize", RuntimeError("throttled by a dependency"))
    invocation_id, execution, body = run(sfn_aws, clean_wav)

    assert execution["status"] == "SUCCEEDED", body.get("error")
    assert body["status"] == "SUCCEEDED"
    assert task_failures(sfn_aws, invocation_id) == ["TransientStageError"]
    assert calls["normalize"] == 2
    attempts = {s["name"]: s["attempts"] for s in body["stages"]}
    assert attempts == {"ingest": 1, "denoise": 0, "normalize": 2, "features": 1, "match": 1, "respond": 1}
    # One wait before the retry: IntervalSeconds 2 with full jitter, so anywhere in [0, 2].
    assert len(sfn_aws.router.retry_waits) == 1
    assert 0 <= sfn_aws.router.retry_waits[0] <= 2
    assert sfn_aws.router.calls_to(RECORD_FAILURE) == []


def test_lost_task_response_is_retried_and_not_redone(
    sfn_aws: AwsStack, clean_wav: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ingest task did its work but Lambda failed to answer: the retry is a duplicate, no work redone."""
    calls = fail_first_calls(monkeypatch, "ingest", RuntimeError("unused"), times=0)  # counts the calls
    lost: list[dict[str, Any]] = []

    def lose_first_response(event: dict[str, Any], result: Any) -> None:
        if not lost:
            lost.append(result)
            raise JsonRESTError("ServiceException", "the Lambda service failed")

    sfn_aws.router.after[TASK_FUNCTION_PREFIX + "ingest"] = lose_first_response
    invocation_id, execution, body = run(sfn_aws, clean_wav)

    assert execution["status"] == "SUCCEEDED", body.get("error")
    assert task_failures(sfn_aws, invocation_id) == ["Lambda.ServiceException"]
    assert len(sfn_aws.router.calls_to("ingest")) == 2
    assert calls["ingest"] == 1  # the stage function ran once
    assert stage_table(body)["ingest"]["attempts"] == 1
    # The duplicate answered with the same next envelope as the lost answer.
    (normalize_event,) = sfn_aws.router.calls_to("normalize")
    assert normalize_event == lost[0]


def test_garbage_audio_fails_permanently_with_its_reason(sfn_aws: AwsStack) -> None:
    invocation_id, execution, body = run(sfn_aws, GARBAGE_WAV)

    assert execution["status"] == "FAILED"
    assert execution["error"] == "invalid_audio"
    assert execution["cause"] == body["error"]["message"]
    assert body["status"] == "FAILED"
    assert body["error"]["code"] == "invalid_audio"
    assert body["error"]["stage"] == "ingest"
    assert body["error"]["message"]
    assert "result" not in body
    stages = stage_table(body)
    ingest = stages["ingest"]
    assert ingest == {**ingest, "status": "FAILED", "duration_ms": None, "attempts": 1, "finished_at": None}
    assert ingest["started_at"] is not None
    assert all(stages[name]["status"] == "PENDING" for name in STAGE_NAMES[1:])
    # Not retried: one ingest call, then the failure path (which found the error already recorded).
    assert task_failures(sfn_aws, invocation_id) == ["PermanentStageError"]
    assert sfn_aws.entered_states(invocation_id) == ["StartAtStage", "Ingest", "RecordFailure", "Failed"]
    assert len(sfn_aws.router.calls_to("ingest")) == 1
    (failure_event,) = sfn_aws.router.calls_to(RECORD_FAILURE)
    assert failure_event["stage"] == "ingest"
    assert failure_event["failure"]["Error"] == "PermanentStageError"


def test_exhausted_retries_are_recorded_by_the_failure_path(
    sfn_aws: AwsStack, clean_wav: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    fail_first_calls(monkeypatch, "features", TimeoutError("DSP timed out"), times=100)
    invocation_id, execution, body = run(sfn_aws, clean_wav)

    assert execution["status"] == "FAILED"
    assert execution["error"] == "retries_exhausted"
    assert body["status"] == "FAILED"
    assert body["error"]["code"] == "retries_exhausted"
    assert body["error"]["stage"] == "features"
    assert "TimeoutError" in body["error"]["message"]
    assert stage_table(body)["features"]["attempts"] == 3  # MaxAttempts 2 retries, like maxReceiveCount 3
    assert task_failures(sfn_aws, invocation_id) == ["TransientStageError"] * 3
    # Exponential backoff (IntervalSeconds 2, BackoffRate 2) with full jitter: waits within [0, 2] and [0, 4].
    waits = sfn_aws.router.retry_waits
    assert len(waits) == 2
    assert 0 <= waits[0] <= 2
    assert 0 <= waits[1] <= 4


def test_resume_of_a_failed_statemachine_invocation(
    sfn_aws: AwsStack, clean_wav: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    fail_first_calls(
        monkeypatch, "features", PermanentStageError("feature backend missing", code="no_backend")
    )
    invocation_id, execution, body = run(sfn_aws, clean_wav)
    assert execution["status"] == "FAILED"
    assert body["error"] == {"code": "no_backend", "message": "feature backend missing", "stage": "features"}

    resumed = service.resume_invocation(invocation_id, correlation_id="sfn-resume")
    assert resumed == {
        "invocation_id": invocation_id,
        "status": "RUNNING",
        "mode": "statemachine",
        "resumed_from": "features",
    }
    (second,) = [e for e in sfn_aws.executions() if e["name"] != invocation_id]
    assert second["name"].startswith(f"{invocation_id}-resume-")
    finished = sfn_aws.wait_for_execution(second["name"])
    body = service.get_invocation(invocation_id)

    assert finished["status"] == "SUCCEEDED"
    assert body["status"] == "SUCCEEDED"
    assert "error" not in body
    assert sfn_aws.entered_states(second["name"])[:2] == ["StartAtStage", "FeaturesAndMatch"]
    attempts = {s["name"]: s["attempts"] for s in body["stages"]}
    # match ran (skipped itself) in the first execution or, if its branch was cancelled, in the second
    assert attempts == {**attempts, "ingest": 1, "denoise": 0, "normalize": 1, "features": 2, "respond": 1}
    assert attempts["match"] in (1, 2)
    assert stage_table(body)["match"]["status"] == "SKIPPED"
    assert len(sfn_aws.router.calls_to("ingest")) == 1  # completed stages are not redone
    # Only a FAILED invocation can be resumed.
    with pytest.raises(service.Conflict):
        service.resume_invocation(invocation_id, correlation_id="sfn-resume")


# --- duplicate starts ---------------------------------------------------------------------------------


def test_duplicate_start_is_treated_as_already_started(sfn_aws: AwsStack, clean_wav: bytes) -> None:
    ingest_started = threading.Event()
    release = threading.Event()

    def hold(event: dict[str, Any]) -> None:
        ingest_started.set()
        assert release.wait(10), "the test never released the ingest task"

    sfn_aws.router.before[TASK_FUNCTION_PREFIX + "ingest"] = hold
    invocation_id = submit(clean_wav)
    assert ingest_started.wait(10)
    envelope = Envelope.from_json(
        sfn_aws.sfn.describe_execution(executionArn=sfn_aws.execution_arn(invocation_id))["input"]
    )
    # While it runs: the same name and input is the running execution (idempotent in AWS); other input is not.
    assert executions.start_execution(envelope, name=invocation_id) is True
    other = envelope.model_copy(update={"correlation_id": "someone-else"})
    assert executions.start_execution(other, name=invocation_id) is False
    release.set()
    execution = sfn_aws.wait_for_execution(invocation_id)
    # Once it closed, any start under its name is refused: already started.
    assert executions.start_execution(envelope, name=invocation_id) is False

    assert execution["status"] == "SUCCEEDED"
    assert [e["name"] for e in sfn_aws.executions()] == [invocation_id]
    body = service.get_invocation(invocation_id)
    assert body["status"] == "SUCCEEDED"
    assert {s["name"]: s["attempts"] for s in body["stages"]}["respond"] == 1
    assert len(sfn_aws.router.calls_to("respond")) == 1
    assert sfn_aws.s3_keys(f"invocations/{invocation_id}/result.json") == [payloads.result_key(invocation_id)]


def test_duplicate_task_delivery_returns_the_next_envelope(sfn_aws: AwsStack, noisy_wav: bytes) -> None:
    """A stage task delivered again after it completed (e.g. an at-least-once Express retry) does no work."""
    from harmonic_service.handlers import statemachine
    from tests.integration.conftest import FakeLambdaContext

    invocation_id, execution, _ = run(sfn_aws, noisy_wav)
    assert execution["status"] == "SUCCEEDED"
    before = checkpoints.get(invocation_id)
    for stage in ("ingest", "denoise", "normalize", "features", "respond"):
        (first,) = sfn_aws.router.calls_to(stage)
        sfn_aws.monkeypatch.setenv("STAGE_NAME", stage)
        again = statemachine.handler(first, FakeLambdaContext(function_name=TASK_FUNCTION_PREFIX + stage))
        if stage == "respond":
            assert again["status"] == "SUCCEEDED"
        elif stage == "features":  # a parallel branch: the Parallel state keeps its input, not this
            assert again == {**again, "stage": "features", "outcome": "duplicate"}
        else:
            following = {"ingest": "denoise", "denoise": "normalize", "normalize": "features"}[stage]
            (expected,) = sfn_aws.router.calls_to(following)
            expected = expected.get("envelope", expected)  # the group's branches get the envelope wrapped
            assert again == expected
    after = checkpoints.get(invocation_id)
    assert {n: s.attempts for n, s in after.stages.items()} == {
        n: s.attempts for n, s in before.stages.items()
    }
    assert after.updated_at == before.updated_at


def test_task_logs_carry_the_correlation_id(sfn_aws: AwsStack, monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from harmonic_service.handlers import statemachine

    stream = io.StringIO()
    monkeypatch.setattr(statemachine.logger.registered_handler, "stream", stream)
    invocation_id, execution, _ = run(sfn_aws, GARBAGE_WAV, correlation_id="corr-42")
    assert execution["status"] == "FAILED"

    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith('{"level"')]
    # Every line logged inside a task invocation (the Lambda request ids the router made up).
    task_lines = [line for line in lines if line.get("function_request_id") in sfn_aws.router.request_ids]
    assert {line["function_name"] for line in task_lines} == {TASK_FUNCTION_PREFIX + "ingest", RECORD_FAILURE}
    for line in task_lines:
        assert line["correlation_id"] == "corr-42", line
        assert line["invocation_id"] == invocation_id, line
        assert line["stage"] == "ingest", line


def test_failed_start_is_recorded_and_resume_starts_a_new_execution(
    sfn_aws: AwsStack, clean_wav: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harmonic_service.config import clear_caches

    missing = sfn_aws.state_machine_arn.replace(":harmonic-test", ":harmonic-gone")
    monkeypatch.setenv("STATE_MACHINE_ARN", missing)
    clear_caches()
    with pytest.raises(ClientError, match="StateMachineDoesNotExist"):
        submit(clean_wav)
    item = _only_invocation(sfn_aws)
    assert item["status"] == "FAILED"
    assert item["error"]["code"] == "dispatch_failed"
    assert item["error"]["stage"] == "ingest"

    monkeypatch.setenv("STATE_MACHINE_ARN", sfn_aws.state_machine_arn)
    clear_caches()
    resumed = service.resume_invocation(item["invocation_id"], correlation_id="sfn-resume")
    assert resumed["resumed_from"] == "ingest"
    (execution,) = sfn_aws.executions()
    assert execution["name"].startswith(f"{item['invocation_id']}-resume-")
    assert sfn_aws.wait_for_execution(execution["name"])["status"] == "SUCCEEDED"
    assert service.get_invocation(item["invocation_id"])["status"] == "SUCCEEDED"


def _only_invocation(aws: AwsStack) -> dict[str, Any]:
    """The GET body of the one invocation in the table."""
    import boto3

    (raw,) = boto3.client("dynamodb", region_name="us-east-1").scan(TableName=aws.invocations_table)["Items"]
    return service.get_invocation(raw["invocation_id"]["S"])


def test_stale_task_for_a_failed_invocation_changes_nothing(sfn_aws: AwsStack, monkeypatch) -> None:
    from harmonic_service import tasks
    from harmonic_service.errors import StaleMessage
    from harmonic_service.handlers import statemachine
    from tests.integration.conftest import FakeLambdaContext

    invocation_id, execution, body = run(sfn_aws, GARBAGE_WAV)
    assert execution["status"] == "FAILED"
    (ingest_event,) = sfn_aws.router.calls_to("ingest")
    stale = {**ingest_event, "stage": "normalize", "input_key": payloads.arrays_key(invocation_id, "ingest")}
    before = checkpoints.get(invocation_id)

    monkeypatch.setenv("STAGE_NAME", "normalize")
    with pytest.raises(StaleMessage):
        statemachine.handler(stale, FakeLambdaContext(function_name=TASK_FUNCTION_PREFIX + "normalize"))
    recorded = tasks.record_failure(invocation_id, "normalize", {"Error": "StaleMessage", "Cause": "{}"})

    assert recorded == {**body["error"], "recorded": False}
    assert checkpoints.get(invocation_id) == before


def test_the_stage_after_a_parallel_group_records_its_own_failure_and_resumes_alone(
    sfn_aws: AwsStack, clean_wav: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """respond follows the FeaturesAndMatch group, whose input envelope names features: its failure must
    be recorded under respond, and never reopen features (which SUCCEEDED) for a resume to run again."""
    calls = fail_first_calls(monkeypatch, "respond", RuntimeError("result store unavailable"), times=3)
    invocation_id, execution, body = run(sfn_aws, clean_wav)
    assert execution["status"] == "FAILED"
    assert body["error"]["code"] == "retries_exhausted"
    assert body["error"]["stage"] == "respond"
    stages = stage_table(body)
    assert stages["features"]["status"] == "SUCCEEDED"
    assert stages["respond"]["status"] == "FAILED"
    assert calls["respond"] == 3  # the first attempt and the ASL's two retries

    resumed = service.resume_invocation(invocation_id, correlation_id="sfn-resume")
    assert resumed["resumed_from"] == "respond"
    (second,) = [e for e in sfn_aws.executions() if e["name"] != invocation_id]
    assert sfn_aws.wait_for_execution(second["name"])["status"] == "SUCCEEDED"
    done = stage_table(service.get_invocation(invocation_id))
    assert done["features"]["attempts"] == 1  # not run again
    assert done["respond"]["status"] == "SUCCEEDED"


def test_failing_an_invocation_keeps_a_finished_stages_checkpoint(sfn_aws: AwsStack) -> None:
    checkpoints.create(
        "inv-1", mode="statemachine", correlation_id="c", input_key="k", steps=list(STAGE_NAMES), options={}
    )
    checkpoints.start_stage("inv-1", "ingest")
    checkpoints.complete_stage("inv-1", "ingest", duration_ms=5, output_key="k.npz", summary={})
    # a failure reported under a stage that already SUCCEEDED (a misattributed report): the invocation
    # fails, the stage keeps its checkpoint, and a resume starts after it
    assert checkpoints.fail("inv-1", stage="ingest", code="retries_exhausted", message="x") is True
    item = checkpoints.get("inv-1")
    assert item.status == "FAILED"
    assert item.stage("ingest").status == "SUCCEEDED"
    assert item.error.stage == "ingest"
    assert checkpoints.prepare_resume("inv-1")[0] == "denoise"
    # an open stage is marked FAILED with it
    assert checkpoints.fail("inv-1", stage="denoise", code="stage_failed", message="y") is True
    assert checkpoints.get("inv-1").stage("denoise").status == "FAILED"
    assert checkpoints.fail("inv-1", stage="denoise", code="again", message="z") is False  # already FAILED


def test_a_failed_parallel_branch_is_recorded_once_under_its_stage(
    sfn_aws: AwsStack, clean_wav: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A branch records its own failure; the failed group must not record again: by then a client may have
    resumed the invocation, and a second record would fail the resumed run (found by the e2e resume test)."""
    fail_first_calls(monkeypatch, "features", RuntimeError("feature backend down"), times=3)
    _, execution, body = run(sfn_aws, clean_wav)
    assert execution["status"] == "FAILED"
    assert execution["error"] == "retries_exhausted"  # the recorded code, through the branch and the group
    assert body["error"]["code"] == "retries_exhausted"
    assert body["error"]["stage"] == "features"
    assert len(sfn_aws.router.calls_to("record-failure")) == 1
