"""The stage runner shared by the SQS handler and the Step Functions task adapter.

`run_stage(envelope)` does one stage of one invocation, exactly once in effect:

1. `start_stage`: a conditional update that counts the attempt; a duplicate (stage already done) or stale
   (invocation FAILED) message stops here and is dropped.
2. the stage's `run` with a `StoredContext` (its inputs from S3 and the checkpoint), then its outputs to
   `invocations/<id>/<stage>.npz|.json` (whole-object overwrites: a retry is idempotent).
3. `complete_stage`: one conditional update that also marks the following optional stages SKIPPED when
   their skip rule holds; the last stage stores the result and marks the invocation SUCCEEDED.
4. return the next stage's envelope; the caller sends it (SQS) or returns it (Step Functions).

Nothing here knows what a stage does: that is each stage's declaration (harmonic_service.stages).

Permanent errors (InvalidAudio, PermanentStageError) mark the invocation FAILED and are not raised.
Anything else is transient and raised for a retry; on the last allowed delivery the invocation is first
marked FAILED ("retries_exhausted") so that it can be resumed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from aws_lambda_powertools import Logger

from harmonic import InvalidAudio, WavLimits
from harmonic_service import faults, pattern_cache, timestamps
from harmonic_service.breaker import dependency_of
from harmonic_service.config import get_settings
from harmonic_service.dal import checkpoints, payloads
from harmonic_service.deadlines import redispatch_after_s
from harmonic_service.errors import PermanentStageError, StaleMessage
from harmonic_service.logic.options import Options, parse_options
from harmonic_service.logic.patterns import PatternSet
from harmonic_service.models import Envelope, Invocation, InvocationStatus, StageOutcome, StageStatus
from harmonic_service.stages import (
    ANALYSIS_SAMPLE_RATE,
    STAGE_NAMES,
    Stage,
    StageOutput,
    earlier,
    following,
    get_stage,
    in_parallel_group,
    skip_reason,
)
from harmonic_service.tenancy import Viewer

logger = Logger(service="harmonic", child=True)

# A stage summary larger than this stays in S3 only; the item keeps a pointer.
MAX_ITEM_SUMMARY_BYTES = 8 * 1024


@dataclass(frozen=True)
class StageRun:
    """What one `run_stage` call did (`outcome`), and what the handler reports of it."""

    stage: str
    outcome: StageOutcome
    next_envelope: Envelope | None = None
    duration_ms: int | None = None
    audio_seconds: float | None = None
    attempts: int | None = None
    error: dict[str, str] | None = None
    skipped: dict[str, str] = field(default_factory=dict)
    output_key: str | None = None  # where its output went (events: the StageCompleted's output_key)
    republish: bool = False  # events mode: a duplicate whose completion event was evidently lost


class StoredContext:
    """A stage's view of its invocation from S3 and the checkpoint (the StageContext of deployed stages).

    Summaries come from the checkpoint item when it holds them whole (from S3 otherwise); audio from the
    `.npz` of the last audio stage that ran; the clip from S3; patterns from the registry. A stage's own
    output is recorded with `record` so the skip rules of the stages after it can read it before the
    checkpoint does.
    """

    def __init__(self, invocation: Invocation, options: Options, envelope: Envelope) -> None:
        self.invocation = invocation
        self._options = options
        self._envelope = envelope
        self._summaries: dict[str, Mapping[str, Any]] = {}
        self.audio_seconds: float | None = None  # of the audio the stage read, once it did

    @property
    def options(self) -> Options:
        return self._options

    @property
    def steps(self) -> Sequence[str]:
        return self.invocation.steps

    @property
    def mode(self) -> str:
        return self._envelope.mode

    @cached_property
    def limits(self) -> WavLimits:
        return get_settings().wav_limits

    def clip(self) -> bytes:
        key = self._envelope.input_key or payloads.input_key(self.invocation.invocation_id)
        try:
            return payloads.get_bytes(key)
        except KeyError:
            raise PermanentStageError(f"the submitted clip {key} is gone", code="input_missing") from None

    def audio(self) -> Any:
        key = self.invocation.audio_key_for(self._envelope.stage)
        try:
            audio = payloads.get_arrays(key)["audio"]
        except KeyError:
            raise PermanentStageError(
                f"the stage input {key} is gone (expired?)", code="input_missing"
            ) from None
        self.audio_seconds = audio.size / ANALYSIS_SAMPLE_RATE
        return audio

    def audio_of(self, stage: str) -> Any:
        checkpoint = self.invocation.stage(stage)
        if not (
            checkpoint.status == StageStatus.SUCCEEDED
            and checkpoint.output_key
            and get_stage(stage).produces_audio
        ):
            raise ValueError(f"stage {stage} produced no audio in invocation {self.invocation.invocation_id}")
        try:
            return payloads.get_arrays(checkpoint.output_key)["audio"]
        except KeyError:
            raise PermanentStageError(
                f"the audio of stage {stage}, {checkpoint.output_key}, is gone (expired?)",
                code="input_missing",
            ) from None

    def summary(self, stage: str) -> Mapping[str, Any]:
        if stage not in self._summaries:
            self._summaries[stage] = self._stored_summary(stage)
        return self._summaries[stage]

    def _stored_summary(self, stage: str) -> Mapping[str, Any]:
        checkpoint = self.invocation.stage(stage)
        if checkpoint.status == StageStatus.SKIPPED:
            return get_stage(stage).skipped_summary(checkpoint.skip_reason or "")
        if checkpoint.summary is not None and not checkpoint.summary.get("in_s3"):
            return checkpoint.summary
        return payloads.get_json(payloads.json_key(self.invocation.invocation_id, stage))

    def earlier(self) -> Sequence[Stage]:
        return earlier(self._envelope.stage)

    def patterns(self) -> PatternSet:
        return pattern_cache.current()

    def pattern_count(self) -> int:
        return pattern_cache.selected_count(self._options.patterns, self.viewer())

    def viewer(self) -> Viewer:
        return Viewer.of(self.invocation.owner, get_settings().shared_pattern_owners)

    def record(self, stage: str, summary: Mapping[str, Any]) -> None:
        """Make `stage`'s fresh summary visible to the skip rules evaluated after it."""
        self._summaries[stage] = summary


@dataclass
class _Stored:
    """Where a stage's output went."""

    output_key: str
    audio_key: str | None  # the audio the following stages read
    audio_seconds: float | None
    summary: dict[str, Any]
    result: dict[str, Any] | None = None  # the last stage: the result, when small enough to inline


def _store(envelope: Envelope, stage: Stage, output: StageOutput, context: StoredContext) -> _Stored:
    """Write a stage's output: its audio to `<stage>.npz`, its summary to `<stage>.json`; the last stage's
    summary is the result (`result.json`, and inline in the item when small)."""
    invocation_id = envelope.invocation_id
    if stage.name == STAGE_NAMES[-1]:
        key = payloads.result_key(invocation_id)
        size = payloads.put_json(key, output.summary)
        inline = output.summary if size <= get_settings().max_inline_result_bytes else None
        return _Stored(key, None, None, {"result_bytes": size}, result=inline)
    if stage.produces_audio:
        if output.audio is None:
            raise TypeError(f"stage {stage.name} declares produces_audio but returned no audio")
        audio_key: str | None = payloads.arrays_key(invocation_id, stage.name)
        payloads.put_arrays(audio_key, audio=output.audio.astype("float32", copy=False))
        seconds = output.audio.size / ANALYSIS_SAMPLE_RATE
    else:  # the audio it read is what the stages after it read too
        audio_key = context.invocation.audio_key_for(stage.name)
        seconds = context.audio_seconds
    summary_key = payloads.json_key(invocation_id, stage.name)
    payloads.put_json(summary_key, output.summary)
    output_key = audio_key if stage.produces_audio and audio_key else summary_key
    return _Stored(output_key, audio_key, seconds, output.summary)


def _plan_skips(after: str, context: StoredContext) -> tuple[str | None, dict[str, str]]:
    """The next stage to run after `after` and the optional stages skipped on the way (name → reason).

    In statemachine mode a stage of a parallel group (`stages.parallel_groups`) ends the planning: the
    state machine runs the whole group, and each of its stages decides its own skip.
    """
    skipped: dict[str, str] = {}
    stop_at_groups = context.mode == "statemachine"
    for stage in following(after):
        if stop_at_groups and in_parallel_group(stage.name):
            return stage.name, skipped
        reason = skip_reason(stage, context)
        if reason is None:
            return stage.name, skipped
        skipped[stage.name] = reason
        context.record(stage.name, stage.skipped_summary(reason))
    return None, skipped


def _item_summary(summary: dict[str, Any]) -> dict[str, Any]:
    size = len(json.dumps(summary, separators=(",", ":")))
    return summary if size <= MAX_ITEM_SUMMARY_BYTES else {"summary_bytes": size, "in_s3": True}


def _completed_long_ago(envelope: Envelope, item: Invocation | None) -> bool:
    """For a duplicate: whether its invocation still runs and the stage completed long enough ago that what
    it sent on would have been received by now (`deadlines.redispatch_after_s`, from the queue settings of
    the stages that read it); younger completions are ordinary duplicates racing what they sent."""
    if not item or item.status != InvocationStatus.RUNNING:
        return False
    after = redispatch_after_s(envelope.stage, get_settings().queue_visibility_timeout_s)
    return timestamps.age_s(item.stage(envelope.stage).completed_at) >= after


def _recover_next(envelope: Envelope, item: Invocation | None) -> Envelope | None:
    """For a duplicate: the next envelope again if it was evidently lost (see `_completed_long_ago`)."""
    if item is None or not _completed_long_ago(envelope, item):
        return None
    following_stage = item.next_stage_to_run(envelope.stage)
    if following_stage is None or item.stage(following_stage).status != StageStatus.PENDING:
        return None
    logger.warning(
        "re-dispatching the next stage: its message was lost", extra={"next_stage": following_stage}
    )
    return envelope.for_stage(following_stage, item.audio_key_for(following_stage))


def _completion_lost(envelope: Envelope, item: Invocation | None) -> bool:
    """Events mode, for a duplicate: whether the stage's completion event was evidently lost (the stages
    that wait for it are still PENDING long after it completed; see `_completed_long_ago`)."""
    if item is None or not _completed_long_ago(envelope, item):
        return False
    return any(item.stage(name).status == StageStatus.PENDING for name in item.ready_stages())


def _drop(envelope: Envelope, stale: StaleMessage, when: str) -> StageRun:
    logger.info(
        f"dropped {stale.reason} message {when}: {stale}",
        extra={"drop_reason": str(stale.reason), "invocation_id": envelope.invocation_id},
    )
    outcome = StageOutcome(stale.reason)
    if outcome != StageOutcome.DUPLICATE:
        return StageRun(envelope.stage, outcome)
    if envelope.mode == "events":
        return StageRun(envelope.stage, outcome, republish=_completion_lost(envelope, stale.item))
    if envelope.mode == "statemachine":  # the task answers from the checkpoint (tasks._after_drop)
        return StageRun(envelope.stage, outcome)
    return StageRun(envelope.stage, outcome, next_envelope=_recover_next(envelope, stale.item))


def _skip(envelope: Envelope, reason: str, attempts: int, context: StoredContext, plan: bool) -> StageRun:
    """A stage that decides its own skip: SKIPPED in one conditional update, with (`plan`) the skips of the
    stages after it, as a completion would."""
    skipped = {envelope.stage: reason}
    next_name = None
    if plan:
        context.record(envelope.stage, get_stage(envelope.stage).skipped_summary(reason))
        next_name, following_skips = _plan_skips(envelope.stage, context)
        skipped.update(following_skips)
    try:
        checkpoints.skip_stage(envelope.invocation_id, envelope.stage, reason, following=skipped)
    except StaleMessage as stale:
        return _drop(envelope, stale, "at skip")
    for name, why in skipped.items():
        logger.info(f"skipped stage {name}: {why}", extra={"skipped_stage": name})
    next_envelope = None
    if next_name:
        next_envelope = envelope.for_stage(next_name, context.invocation.audio_key_for(envelope.stage))
    return StageRun(
        envelope.stage, StageOutcome.SKIPPED, attempts=attempts, skipped=skipped, next_envelope=next_envelope
    )


def _fail(envelope: Envelope, code: str, message: str, attempts: int | None) -> StageRun:
    changed = checkpoints.fail(envelope.invocation_id, stage=envelope.stage, code=code, message=message)
    logger.warning(
        f"stage failed permanently: {code}: {message}",
        extra={"error_code": code, "recorded": changed, "invocation_id": envelope.invocation_id},
    )
    error = {"code": code, "message": message, "stage": envelope.stage}
    return StageRun(envelope.stage, StageOutcome.FAILED, attempts=attempts, error=error)


def run_stage(
    envelope: Envelope,
    *,
    receive_count: int = 1,
    max_receive_count: int | None = None,
    claim: str | None = None,
    own_skip: bool = False,
    plan: bool = True,
) -> StageRun:
    """Run `envelope.stage` for its invocation (see the module docstring).

    `receive_count`/`max_receive_count`: this delivery's number and the most the queue allows; on the last
    one a transient error also marks the invocation FAILED before it is raised. `claim` (events mode: the
    triggering event's id) makes the start exclusive. `own_skip`: the stage decides its own skip when it
    starts (events mode; a state machine's parallel branch and the stage after it), instead of the stage
    before it. `plan`: decide the skips of the stages that follow and return the next one's envelope (off in
    events mode, where the bus carries the completion to whoever subscribes, and in a parallel branch).
    Raises UnknownInvocation (poison) and transient errors; returns for everything else.
    """
    stage = get_stage(envelope.stage)
    try:
        invocation = checkpoints.start_stage(envelope.invocation_id, stage.name, claim=claim)
    except StaleMessage as stale:
        return _drop(envelope, stale, "before start")
    attempts = invocation.stage(stage.name).attempts
    started = time.perf_counter()
    try:
        try:
            options = parse_options(invocation.options)
        except ValueError as error:
            raise PermanentStageError(str(error), code="bad_request") from None
        context = StoredContext(invocation, options, envelope)
        if own_skip and (reason := skip_reason(stage, context)) is not None:
            return _skip(envelope, reason, attempts, context, plan)
        faults.before_work(stage.name, envelope.correlation_id, attempts)
        output = stage.run(context)
        stored = _store(envelope, stage, output, context)
        faults.after_side_effect(stage.name, envelope.correlation_id, attempts, envelope.invocation_id)
    except InvalidAudio as error:
        return _fail(envelope, "invalid_audio", str(error), attempts)
    except PermanentStageError as error:
        return _fail(envelope, error.code, error.message, attempts)
    except Exception as error:
        # A dependency failure is not this invocation's fault: its message is put back on the queue to
        # wait for the dependency (handlers/delivery.with_breaker) rather than failing it here.
        last = max_receive_count is not None and receive_count >= max_receive_count
        if last and dependency_of(error) is None:
            message = (
                f"{stage.name} failed on all {receive_count} deliveries; last error: {type(error).__name__}"
            )
            _fail(envelope, "retries_exhausted", message, attempts)
        raise
    duration_ms = round((time.perf_counter() - started) * 1000)

    if stage.name == STAGE_NAMES[-1]:
        try:
            checkpoints.succeed(
                envelope.invocation_id,
                stage.name,
                duration_ms=duration_ms,
                result=stored.result,
                result_key=stored.output_key,
                summary=stored.summary,
            )
        except StaleMessage as stale:
            return _drop(envelope, stale, "at completion")
        return StageRun(
            stage.name,
            StageOutcome.SUCCEEDED,
            duration_ms=duration_ms,
            attempts=attempts,
            output_key=stored.output_key,
        )

    context.record(stage.name, stored.summary)
    next_name, skipped = _plan_skips(stage.name, context) if plan else (None, {})
    try:
        checkpoints.complete_stage(
            envelope.invocation_id,
            stage.name,
            duration_ms=duration_ms,
            output_key=stored.output_key,
            summary=_item_summary(stored.summary),
            skipped=skipped,
        )
    except StaleMessage as stale:
        return _drop(envelope, stale, "at completion")
    for name, reason in skipped.items():
        logger.info(f"skipped stage {name}: {reason}", extra={"skipped_stage": name})
    next_envelope = envelope.for_stage(next_name, stored.audio_key) if next_name else None
    return StageRun(
        stage.name,
        StageOutcome.COMPLETED,
        next_envelope=next_envelope,
        duration_ms=duration_ms,
        audio_seconds=stored.audio_seconds,
        attempts=attempts,
        skipped=skipped,
        output_key=stored.output_key,
    )
