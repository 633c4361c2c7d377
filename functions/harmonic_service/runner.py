"""The stage runner shared by the SQS handler and the Step Functions task adapter.

`run_stage(envelope)` does one stage of one invocation, exactly once in effect:

1. `start_stage`: a conditional update that counts the attempt; a duplicate (stage already done) or stale
   (invocation FAILED) message stops here and is dropped.
2. load the stage's input from S3, call the pure stage function (`logic.stages`), write its outputs to
   `invocations/<id>/<stage>.npz|.json` (whole-object overwrites: a retry is idempotent).
3. `complete_stage`: one conditional update that also marks the following optional stages SKIPPED when
   their skip rule holds; the last stage stores the result and marks the invocation SUCCEEDED.
4. return the next stage's envelope; the caller sends it (SQS) or returns it (Step Functions).

Permanent errors (InvalidAudio, PermanentStageError) mark the invocation FAILED and are not raised.
Anything else is transient and raised for a retry; on the last allowed delivery the invocation is first
marked FAILED ("retries_exhausted") so that it can be resumed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from aws_lambda_powertools import Logger

from harmonic import InvalidAudio, WavLimits
from harmonic_service import faults
from harmonic_service.config import get_settings
from harmonic_service.dal import checkpoints, payloads
from harmonic_service.errors import PermanentStageError, StaleMessage
from harmonic_service.logic import options as options_logic
from harmonic_service.logic import stages as stage_logic
from harmonic_service.models import Envelope, InvocationStatus, StageStatus
from harmonic_service.stages import STAGE_NAMES, next_stage

logger = Logger(service="harmonic", child=True)

AUDIO_STAGES = ("ingest", "denoise", "normalize")
# A duplicate of a completed stage re-sends the next envelope when the next stage never started and the
# completion is at least this old: the first delivery's send was lost (it failed after the checkpoint).
# Younger completions are ordinary SQS duplicates racing the real next message.
REDISPATCH_AFTER_S = 30.0
# A stage summary larger than this stays in S3 only; the item keeps a pointer.
MAX_ITEM_SUMMARY_BYTES = 8 * 1024


@dataclass(frozen=True)
class StageRun:
    """What one `run_stage` call did.

    outcome: "completed" (next stage due), "succeeded" (the invocation is done), "failed" (permanent error,
    invocation FAILED), "duplicate" or "stale" (dropped without work).
    """

    stage: str
    outcome: str
    next_envelope: Envelope | None = None
    duration_ms: int | None = None
    audio_seconds: float | None = None
    attempts: int | None = None
    error: dict[str, str] | None = None
    skipped: dict[str, str] = field(default_factory=dict)


@dataclass
class _Output:
    output_key: str | None
    summary: dict[str, Any]
    audio_key: str | None  # the audio the following stages read
    audio_seconds: float | None = None
    result: dict[str, Any] | None = None


def input_key_for(item: dict[str, Any], stage: str) -> str:
    """The audio key a stage reads: the output of the last completed audio stage before it, else the clip."""
    index = STAGE_NAMES.index(stage)
    for name in reversed(STAGE_NAMES[:index]):
        entry = item["stages"][name]
        if name in AUDIO_STAGES and entry["status"] == StageStatus.SUCCEEDED and entry.get("output_key"):
            return entry["output_key"]
    return item["input_key"]


def _load_audio(key: str | None) -> np.ndarray:
    if not key:
        raise PermanentStageError("the envelope names no input audio", code="bad_envelope")
    try:
        arrays = payloads.get_arrays(key)
    except KeyError:
        raise PermanentStageError(f"the stage input {key} is gone (expired?)", code="input_missing") from None
    return arrays["audio"]


def _load_patterns() -> stage_logic.PatternSet:
    """The registered patterns (parsed once per process, reloaded when the registry's version changes)."""
    from harmonic_service import registry

    return registry.current()


def _store_audio(envelope: Envelope, output: stage_logic.StageOutput) -> _Output:
    key = payloads.arrays_key(envelope.invocation_id, envelope.stage)
    assert output.audio is not None
    payloads.put_arrays(key, audio=output.audio.astype(np.float32, copy=False))
    payloads.put_json(payloads.json_key(envelope.invocation_id, envelope.stage), output.summary)
    seconds = output.audio.size / stage_logic.ANALYSIS_SAMPLE_RATE
    return _Output(key, output.summary, audio_key=key, audio_seconds=seconds)


def _store_summary(envelope: Envelope, output: stage_logic.StageOutput, seconds: float) -> _Output:
    key = payloads.json_key(envelope.invocation_id, envelope.stage)
    payloads.put_json(key, output.summary)
    return _Output(key, output.summary, audio_key=envelope.input_key, audio_seconds=seconds)


def _summaries_for_result(item: dict[str, Any]) -> dict[str, dict[str, Any]]:
    summaries: dict[str, dict[str, Any]] = {}
    for name in STAGE_NAMES[:-1]:
        entry = item["stages"][name]
        if entry["status"] == StageStatus.SKIPPED:
            reason = (entry.get("summary") or {}).get("reason", "")
            summaries[name] = stage_logic.skipped_summary(name, reason)
        else:
            summaries[name] = payloads.get_json(payloads.json_key(item["invocation_id"], name))
    return summaries


def _execute(envelope: Envelope, item: dict[str, Any], opts: options_logic.Options) -> _Output:
    stage = envelope.stage
    sr = stage_logic.ANALYSIS_SAMPLE_RATE
    if stage == "ingest":
        key = envelope.input_key or payloads.input_key(envelope.invocation_id)
        try:
            wav = payloads.get_bytes(key)
        except KeyError:
            raise PermanentStageError(f"the submitted clip {key} is gone", code="input_missing") from None
        settings = get_settings()
        limits = WavLimits(max_duration_s=settings.max_duration_s, max_sample_rate=settings.max_sample_rate)
        output = _store_audio(envelope, stage_logic.ingest(wav, limits, clean_snr_db=opts.clean_snr_db))
        output.audio_seconds = output.summary.get("duration_s")
        return output
    if stage == "respond":
        summaries = _summaries_for_result(item)
        result = stage_logic.respond(summaries)
        key = payloads.result_key(envelope.invocation_id)
        size = payloads.put_json(key, result)
        inline = result if size <= get_settings().max_inline_result_bytes else None
        return _Output(key, {"result_bytes": size}, audio_key=None, result=inline)
    audio = _load_audio(envelope.input_key)
    seconds = audio.size / sr
    if stage == "denoise":
        snr_before = (item["stages"]["ingest"].get("summary") or {}).get("snr_db")
        return _store_audio(envelope, stage_logic.denoise(audio, sr, snr_before))
    if stage == "normalize":
        return _store_audio(envelope, stage_logic.normalize(audio, sr, opts.target_lufs, opts.peak_dbfs))
    if stage == "features":
        return _store_summary(envelope, stage_logic.features(audio, sr), seconds)
    if stage == "match":
        output = stage_logic.match(audio, sr, _load_patterns(), opts.patterns)
        return _store_summary(envelope, output, seconds)
    raise PermanentStageError(f"no runner for stage {stage}", code="bad_envelope")


def _skips_after(stage: str, envelope: Envelope, summary: dict[str, Any], opts) -> tuple[str | None, dict]:
    """The next stage to run after `stage` and the optional stages skipped on the way (name → reason)."""
    skipped: dict[str, str] = {}
    summaries = {stage: summary}
    spec = next_stage(stage)
    while spec is not None:
        pattern_count = len(_load_patterns().selected(opts.patterns)) if spec.name == "match" else 0
        reason = options_logic.skip_reason(spec.name, envelope.steps, summaries, opts, pattern_count)
        if reason is None:
            return spec.name, skipped
        skipped[spec.name] = reason
        spec = next_stage(spec.name)
    return None, skipped


def _item_summary(summary: dict[str, Any]) -> dict[str, Any]:
    import json

    size = len(json.dumps(summary, separators=(",", ":")))
    return summary if size <= MAX_ITEM_SUMMARY_BYTES else {"summary_bytes": size, "in_s3": True}


def _age_s(timestamp: str | None) -> float:
    if not timestamp:
        return float("inf")
    then = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    return (datetime.now(UTC) - then).total_seconds()


def _recover_next(envelope: Envelope, item: dict[str, Any] | None) -> Envelope | None:
    """For a duplicate: the next envelope again if it was evidently lost (see REDISPATCH_AFTER_S)."""
    if not item or item["status"] != InvocationStatus.RUNNING:
        return None
    entry = item["stages"][envelope.stage]
    if _age_s(entry.get("completed_at")) < REDISPATCH_AFTER_S:
        return None
    spec = next_stage(envelope.stage)
    while spec is not None and item["stages"][spec.name]["status"] == StageStatus.SKIPPED:
        spec = next_stage(spec.name)
    if spec is None or item["stages"][spec.name]["status"] != StageStatus.PENDING:
        return None
    logger.warning("re-dispatching the next stage: its message was lost", extra={"next_stage": spec.name})
    return envelope.for_stage(spec.name, input_key_for(item, spec.name))


def _drop(envelope: Envelope, stale: StaleMessage, when: str) -> StageRun:
    logger.info(
        f"dropped {stale.reason} message {when}: {stale}",
        extra={"drop_reason": stale.reason, "invocation_id": envelope.invocation_id},
    )
    outcome = "duplicate" if stale.reason in ("duplicate", "succeeded") else "stale"
    next_envelope = _recover_next(envelope, stale.item) if stale.reason == "duplicate" else None
    return StageRun(envelope.stage, outcome, next_envelope=next_envelope)


def _fail(envelope: Envelope, code: str, message: str, attempts: int | None) -> StageRun:
    changed = checkpoints.fail(envelope.invocation_id, stage=envelope.stage, code=code, message=message)
    logger.warning(
        f"stage failed permanently: {code}: {message}",
        extra={"error_code": code, "recorded": changed, "invocation_id": envelope.invocation_id},
    )
    error = {"code": code, "message": message, "stage": envelope.stage}
    return StageRun(envelope.stage, "failed", attempts=attempts, error=error)


def run_stage(
    envelope: Envelope, *, receive_count: int = 1, max_receive_count: int | None = None
) -> StageRun:
    """Run `envelope.stage` for its invocation (see the module docstring).

    `receive_count`/`max_receive_count`: this delivery's number and the most the queue allows; on the last
    one a transient error also marks the invocation FAILED before it is raised.
    Raises UnknownInvocation (poison) and transient errors; returns for everything else.
    """
    stage = envelope.stage
    try:
        item = checkpoints.start_stage(envelope.invocation_id, stage)
    except StaleMessage as stale:
        return _drop(envelope, stale, "before start")
    attempts = item["stages"][stage]["attempts"]
    started = time.perf_counter()
    try:
        try:
            opts = options_logic.parse_options(envelope.options)
        except ValueError as error:
            raise PermanentStageError(str(error), code="bad_request") from None
        faults.before_work(stage, envelope.correlation_id, attempts)
        output = _execute(envelope, item, opts)
        faults.after_side_effect(stage, envelope.correlation_id, attempts)
    except InvalidAudio as error:
        return _fail(envelope, "invalid_audio", str(error), attempts)
    except PermanentStageError as error:
        return _fail(envelope, error.code, error.message, attempts)
    except Exception as error:
        if max_receive_count is not None and receive_count >= max_receive_count:
            message = f"{stage} failed on all {receive_count} deliveries; last error: {type(error).__name__}"
            _fail(envelope, "retries_exhausted", message, attempts)
        raise
    duration_ms = round((time.perf_counter() - started) * 1000)

    if next_stage(stage) is None:
        try:
            checkpoints.succeed(
                envelope.invocation_id,
                stage,
                duration_ms=duration_ms,
                result=output.result,
                result_key=output.output_key or payloads.result_key(envelope.invocation_id),
                summary=output.summary,
            )
        except StaleMessage as stale:
            return _drop(envelope, stale, "at completion")
        return StageRun(stage, "succeeded", duration_ms=duration_ms, attempts=attempts)

    following, skipped = _skips_after(stage, envelope, output.summary, opts)
    try:
        checkpoints.complete_stage(
            envelope.invocation_id,
            stage,
            duration_ms=duration_ms,
            output_key=output.output_key,
            summary=_item_summary(output.summary),
            skipped=skipped,
        )
    except StaleMessage as stale:
        return _drop(envelope, stale, "at completion")
    for name, reason in skipped.items():
        logger.info(f"skipped stage {name}: {reason}", extra={"skipped_stage": name})
    next_envelope = envelope.for_stage(following, output.audio_key) if following else None
    return StageRun(
        stage,
        "completed",
        next_envelope=next_envelope,
        duration_ms=duration_ms,
        audio_seconds=output.audio_seconds,
        attempts=attempts,
        skipped=skipped,
    )
