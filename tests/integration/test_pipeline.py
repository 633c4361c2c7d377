"""The pipeline orchestration end to end under moto: service → SQS stage handlers → DynamoDB/S3.

Each test submits through `harmonic_service.service` and drives the real SQS handler with
`drain_pipeline`, then checks the invocation item, the S3 artifacts and the queues.
"""

from __future__ import annotations

import json
from collections import Counter
from importlib import import_module

import numpy as np
import pytest

from harmonic_service import service
from harmonic_service.dal import checkpoints, payloads
from harmonic_service.errors import PermanentStageError
from harmonic_service.models import Envelope
from harmonic_service.stages import STAGE_NAMES
from tests.conftest import SPEECH_FILES, read_wav_reference
from tests.integration.conftest import AwsStack, wav_bytes

RESULT_KEYS = {"audio", "denoise", "loudness", "features", "matches"}


def stage_module(name: str):
    """The module of stage `name` (its pure function of the same name is what tests make fail)."""
    return import_module(f"harmonic_service.stages.{name}")


@pytest.fixture(scope="module")
def clean_wav() -> bytes:
    """An espeak-ng sentence as committed (16 kHz mono, no noise)."""
    return SPEECH_FILES[-1].read_bytes()


@pytest.fixture(scope="module")
def noisy_wav() -> bytes:
    """The same sentence at 44.1 kHz stereo with white noise at about 10 dB SNR: every stage has work."""
    from scipy.signal import resample_poly

    speech, _ = read_wav_reference(SPEECH_FILES[-1])
    speech = resample_poly(speech, 441, 160)
    rng = np.random.default_rng(7)
    noise_rms = np.sqrt(np.mean(speech**2)) / 10 ** (10 / 20)
    stereo = np.stack([speech, 0.8 * speech], axis=1) + noise_rms * rng.standard_normal((speech.size, 2))
    return wav_bytes(0.5 * stereo / np.abs(stereo).max(), 44_100)


def submit(audio: bytes, **kwargs) -> str:
    accepted = service.submit_invocation(
        audio=audio,
        audio_key=None,
        mode=kwargs.get("mode"),
        steps=kwargs.get("steps"),
        options=kwargs.get("options"),
        correlation_id=kwargs.get("correlation_id", "test-correlation"),
    )
    assert accepted["status"] == "ACCEPTED"
    return accepted["invocation_id"]


def stage_table(body: dict) -> dict[str, dict]:
    return {stage["name"]: stage for stage in body["stages"]}


def count_puts(monkeypatch: pytest.MonkeyPatch) -> Counter:
    """Count S3 writes per key (payloads.put_bytes is the only writer)."""
    puts: Counter = Counter()
    original = payloads.put_bytes

    def counting(key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        puts[key] += 1
        original(key, data, content_type)

    monkeypatch.setattr(payloads, "put_bytes", counting)
    return puts


def fail_first_calls(monkeypatch: pytest.MonkeyPatch, name: str, error: Exception, times: int = 1) -> Counter:
    """Make logic stage `name` raise `error` on its first `times` calls; returns the call counter."""
    calls: Counter = Counter()
    original = getattr(stage_module(name), name)

    def flaky(*args, **kwargs):
        calls[name] += 1
        if calls[name] <= times:
            raise error
        return original(*args, **kwargs)

    monkeypatch.setattr(stage_module(name), name, flaky)
    return calls


def test_noisy_clip_runs_every_stage_to_succeeded(aws: AwsStack, noisy_wav: bytes) -> None:
    invocation_id = submit(noisy_wav)
    report = aws.drain()

    body = service.get_invocation(invocation_id)
    assert body["status"] == "SUCCEEDED", body.get("error")
    assert report.failures == []
    stages = stage_table(body)
    assert [s["name"] for s in body["stages"]] == list(STAGE_NAMES)
    for name in ("ingest", "denoise", "normalize", "features", "respond"):
        assert stages[name]["status"] == "SUCCEEDED"
        assert stages[name]["attempts"] == 1
        assert stages[name]["duration_ms"] >= 0
    assert stages["match"]["status"] == "SKIPPED"
    assert stages["match"]["reason"] == "no patterns registered"

    result = body["result"]
    assert set(result) == RESULT_KEYS
    assert result["audio"]["sample_rate"] == 44_100
    assert result["audio"]["channels"] == 2
    assert result["audio"]["duration_s"] == pytest.approx(4.459, abs=0.01)
    assert result["audio"]["clean"] is False
    assert result["denoise"]["applied"] is True
    assert result["denoise"]["snr_db_after"] > result["denoise"]["snr_db_before"]
    loudness = result["loudness"]
    assert {"input_lufs", "output_lufs", "gain_db"} <= set(loudness)
    if not loudness.get("peak_limited"):
        assert loudness["output_lufs"] == pytest.approx(-23.0, abs=0.5)
    features = result["features"]
    assert {"f0_hz", "voiced_fraction", "hnr_db", "spectral_centroid_hz", "mfcc_mean", "chroma_mean"} <= set(
        features
    )
    assert 60 < features["f0_hz"]["median"] < 250  # a male espeak voice
    assert result["matches"] == []

    # Claim check: arrays and metadata in S3, the result both inline and in S3, queues drained.
    keys = set(aws.s3_keys(f"invocations/{invocation_id}/"))
    expected = {f"invocations/{invocation_id}/{name}" for name in ("input.wav", "result.json")}
    expected |= {f"invocations/{invocation_id}/{s}.npz" for s in ("ingest", "denoise", "normalize")}
    described = ("ingest", "denoise", "normalize", "features")
    expected |= {f"invocations/{invocation_id}/{s}.json" for s in described}
    assert keys == expected
    assert payloads.get_json(payloads.result_key(invocation_id)) == result
    denoised = payloads.get_arrays(payloads.arrays_key(invocation_id, "denoise"))["audio"]
    assert denoised.dtype == np.float32
    assert denoised.size == pytest.approx(4.459 * 16_000, abs=16)
    assert all(aws.queue_depth(url) == 0 for url in aws.queue_urls.values())
    assert set(aws.dlq_depths().values()) == {0}

    timings = {s["name"]: s["duration_ms"] for s in body["stages"] if s["status"] == "SUCCEEDED"}
    print(f"\nper-stage duration_ms (4.46 s clip, 44.1 kHz stereo, noisy): {json.dumps(timings)}")


def test_duplicate_deliveries_do_the_work_once(
    aws: AwsStack, noisy_wav: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference_id = submit(noisy_wav)
    aws.drain()
    reference = service.get_invocation(reference_id)["result"]

    puts = count_puts(monkeypatch)
    calls: Counter = Counter()
    for name in ("ingest", "denoise", "normalize", "features"):
        original = getattr(stage_module(name), name)

        def counted(*args, _name=name, _original=original, **kwargs):
            calls[_name] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(stage_module(name), name, counted)

    invocation_id = submit(noisy_wav)
    report = aws.drain(duplicate=True)

    body = service.get_invocation(invocation_id)
    assert body["status"] == "SUCCEEDED"
    assert report.failures == []
    assert calls == Counter(ingest=1, denoise=1, normalize=1, features=1)
    assert {s["name"]: s["attempts"] for s in body["stages"]} == {
        "ingest": 1,
        "denoise": 1,
        "normalize": 1,
        "features": 1,
        "match": 0,
        "respond": 1,
    }
    written = {key: n for key, n in puts.items() if key.startswith(f"invocations/{invocation_id}/")}
    assert len(written) == 9  # input.wav, 3 npz, 4 json, result.json, and nothing twice
    assert set(written.values()) == {1}
    assert body["result"] == reference


def test_invalid_audio_fails_permanently_without_retry(aws: AwsStack) -> None:
    garbage = b"RIFF\x24\x00\x00\x00WAVE" + bytes(range(256)) * 4
    invocation_id = submit(garbage)
    report = aws.drain()

    body = service.get_invocation(invocation_id)
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
    assert report.failures == []
    assert report.deliveries == Counter(ingest=1, audit=1)  # the InvocationFailed the pipeline published
    assert set(aws.dlq_depths().values()) == {0}
    assert aws.s3_keys(f"invocations/{invocation_id}/") == [payloads.input_key(invocation_id)]


@pytest.mark.parametrize("problem", ["nan", "too_short", "clipped"])
def test_bad_samples_fail_at_ingest(aws: AwsStack, problem: str) -> None:
    import io

    from scipy.io import wavfile

    t = np.arange(16_000) / 16_000
    samples = (0.5 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    if problem == "nan":
        samples[100:200] = np.nan
    elif problem == "too_short":
        samples = samples[:800]
    else:
        samples = np.clip(samples * 50, -1.0, 1.0)
    buffer = io.BytesIO()
    wavfile.write(buffer, 16_000, samples)
    invocation_id = submit(buffer.getvalue())
    report = aws.drain()

    body = service.get_invocation(invocation_id)
    assert body["status"] == "FAILED"
    assert body["error"]["code"] == "invalid_audio"
    assert body["error"]["stage"] == "ingest"
    assert report.failures == []
    assert stage_table(body)["ingest"]["attempts"] == 1


def test_transient_failure_is_retried_and_succeeds(
    aws: AwsStack, noisy_wav: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = fail_first_calls(monkeypatch, "normalize", RuntimeError("throttled"))
    invocation_id = submit(noisy_wav)
    report = aws.drain()

    body = service.get_invocation(invocation_id)
    assert body["status"] == "SUCCEEDED"
    assert [stage for stage, _ in report.failures] == ["normalize"]
    assert report.deliveries["normalize"] == 2
    assert calls["normalize"] == 2
    attempts = {s["name"]: s["attempts"] for s in body["stages"]}
    assert attempts["normalize"] == 2
    assert attempts["ingest"] == attempts["denoise"] == attempts["features"] == attempts["respond"] == 1
    assert set(aws.dlq_depths().values()) == {0}


def test_exhausted_retries_fail_the_invocation_and_reach_the_dlq(
    aws: AwsStack, clean_wav: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    fail_first_calls(monkeypatch, "features", TimeoutError("DSP timed out"), times=100)
    invocation_id = submit(clean_wav)
    report = aws.drain()

    body = service.get_invocation(invocation_id)
    assert body["status"] == "FAILED"
    assert body["error"]["code"] == "retries_exhausted"
    assert body["error"]["stage"] == "features"
    assert "TimeoutError" in body["error"]["message"]
    assert stage_table(body)["features"]["attempts"] == 3
    assert len(report.failures) == 3
    assert aws.dlq_depths()["features"] == 1


def test_stale_message_for_failed_invocation_is_dropped(aws: AwsStack, clean_wav: bytes) -> None:
    invocation_id = submit(b"RIFF\x24\x00\x00\x00WAVEjunk" * 4)
    aws.drain()
    before = checkpoints.get(invocation_id)
    assert before.status == "FAILED"

    for stage in ("ingest", "normalize"):
        stale = Envelope(
            invocation_id=invocation_id,
            correlation_id="late",
            stage=stage,
            input_key=payloads.input_key(invocation_id),
        )
        aws.send(stage, stale.to_json())
    report = aws.drain()

    assert report.failures == []
    assert report.deliveries == Counter(ingest=1, normalize=1)
    assert checkpoints.get(invocation_id) == before
    assert all(aws.queue_depth(url) == 0 for url in aws.queue_urls.values())


def test_resume_restarts_from_the_failed_middle_stage(
    aws: AwsStack, noisy_wav: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = PermanentStageError("model missing", code="features_broken")
    calls = fail_first_calls(monkeypatch, "features", broken)
    invocation_id = submit(noisy_wav)
    aws.drain()
    failed = service.get_invocation(invocation_id)
    assert failed["status"] == "FAILED"
    assert failed["error"] == {"code": "features_broken", "message": "model missing", "stage": "features"}
    assert stage_table(failed)["normalize"]["status"] == "SUCCEEDED"
    assert stage_table(failed)["features"]["status"] == "FAILED"

    resumed = service.resume_invocation(invocation_id, correlation_id="resume-1")
    assert resumed == {
        "invocation_id": invocation_id,
        "status": "RUNNING",
        "mode": "pipeline",
        "resumed_from": "features",
    }
    report = aws.drain()

    body = service.get_invocation(invocation_id)
    assert body["status"] == "SUCCEEDED"
    assert "error" not in body
    assert report.deliveries == Counter(features=1, respond=1, audit=1)  # audit: its InvocationCompleted
    assert calls["features"] == 2
    attempts = {s["name"]: s["attempts"] for s in body["stages"]}
    assert attempts == {"ingest": 1, "denoise": 1, "normalize": 1, "features": 2, "match": 0, "respond": 1}
    assert set(body["result"]) == RESULT_KEYS

    with pytest.raises(service.Conflict):
        service.resume_invocation(invocation_id, correlation_id="resume-2")
    with pytest.raises(service.NotFound):
        service.resume_invocation("no-such-invocation", correlation_id="resume-3")


def test_clean_clip_skips_denoise(aws: AwsStack, clean_wav: bytes) -> None:
    invocation_id = submit(clean_wav)
    aws.drain()

    body = service.get_invocation(invocation_id)
    assert body["status"] == "SUCCEEDED"
    denoise = stage_table(body)["denoise"]
    assert denoise["status"] == "SKIPPED"
    assert denoise["attempts"] == 0
    assert denoise["reason"].startswith("clean clip")
    assert body["result"]["audio"]["clean"] is True
    assert body["result"]["denoise"]["applied"] is False
    assert body["result"]["denoise"]["reason"] == denoise["reason"]
    assert not any("denoise" in key for key in aws.s3_keys(f"invocations/{invocation_id}/"))


def test_steps_exclude_optional_stages_and_options_apply(aws: AwsStack, noisy_wav: bytes) -> None:
    invocation_id = submit(noisy_wav, steps=["ingest", "features"], options={"target_lufs": -16.0})
    aws.drain()

    body = service.get_invocation(invocation_id)
    assert body["status"] == "SUCCEEDED"
    assert body["steps"] == ["ingest", "normalize", "features", "respond"]
    stages = stage_table(body)
    assert stages["denoise"]["status"] == "SKIPPED"
    assert stages["denoise"]["reason"] == "excluded by steps"
    assert stages["match"]["reason"] == "excluded by steps"
    loudness = body["result"]["loudness"]
    assert loudness["target_lufs"] == -16.0
    if not loudness.get("peak_limited"):
        assert loudness["output_lufs"] == pytest.approx(-16.0, abs=0.5)


def test_poison_messages_are_retried_then_dead_lettered(aws: AwsStack, clean_wav: bytes) -> None:
    aws.send("ingest", "{not json")
    unknown = Envelope(invocation_id="0000-dead-beef", correlation_id="x", stage="ingest")
    aws.send("ingest", unknown.to_json())
    wrong_queue = Envelope(invocation_id="whatever", correlation_id="x", stage="respond")
    aws.send("normalize", wrong_queue.to_json())
    report = aws.drain()

    assert len(report.failures) == 3 * 3  # each delivered max_receive_count (3) times
    assert aws.dlq_depths() == {name: {"ingest": 2, "normalize": 1}.get(name, 0) for name in STAGE_NAMES}


def test_lost_next_message_is_recovered_by_the_redelivery(
    aws: AwsStack, noisy_wav: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The send of the next envelope fails after the checkpoint: the redelivered message re-sends it."""
    from harmonic_service import runner
    from harmonic_service.dal import queues

    monkeypatch.setattr(runner, "redispatch_after_s", lambda *_: 0)  # the test cannot wait minutes
    original = queues.send_envelope
    sent: Counter = Counter()

    def lossy(envelope: Envelope) -> str:
        sent[envelope.stage] += 1
        if envelope.stage == "normalize" and sent["normalize"] == 1:
            raise ConnectionError("SQS unreachable")
        return original(envelope)

    monkeypatch.setattr(queues, "send_envelope", lossy)
    invocation_id = submit(noisy_wav)
    report = aws.drain()

    body = service.get_invocation(invocation_id)
    assert body["status"] == "SUCCEEDED"
    assert [stage for stage, _ in report.failures] == ["denoise"]
    assert stage_table(body)["denoise"]["attempts"] == 1  # the redelivery did not redo the work
    assert sent["normalize"] == 2


def test_a_stage_can_read_the_audio_an_earlier_audio_stage_produced(aws: AwsStack, noisy_wav: bytes) -> None:
    """StoredContext.audio_of: the match stage fingerprints ingest's audio (before the enhancer)."""
    from harmonic_service.logic.options import Options
    from harmonic_service.runner import StoredContext

    invocation_id = submit(noisy_wav)
    aws.drain()
    invocation = checkpoints.get(invocation_id)
    assert invocation is not None
    context = StoredContext(
        invocation, Options(), Envelope(invocation_id=invocation_id, correlation_id="c", stage="match")
    )
    ingested, denoised = context.audio_of("ingest"), context.audio_of("denoise")
    assert ingested.size == pytest.approx(4.459 * 16_000, abs=200)  # the clip at the analysis rate
    assert denoised.shape == ingested.shape
    assert not np.array_equal(denoised, ingested)  # the noisy clip was denoised
    np.testing.assert_array_equal(
        context.audio(), payloads.get_arrays(invocation.audio_key_for("match"))["audio"]
    )
    with pytest.raises(ValueError, match="features produced no audio"):
        context.audio_of("features")
