"""The typed models that cross layers: the envelope between stages, the invocation, and the vocabularies.

The envelope carries ids and S3 keys only, never audio (claim check). The same JSON is the SQS message body
in pipeline mode and the task input/output in statemachine mode.

`Invocation` is the invocations table's item as the code sees it (docs/design.md "Invocation item"); only
the checkpoint adapter (dal/checkpoints.py) turns it into DynamoDB attributes and back.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from harmonic_service.config import MODES
from harmonic_service.errors import PoisonMessage
from harmonic_service.stages import STAGE_NAMES, dependencies, following, get_stage

# The asynchronous orchestrations a request may ask for (`mode`), as a type.
Mode = Literal[MODES]  # type: ignore[valid-type]


class InvocationStatus(StrEnum):
    ACCEPTED = "ACCEPTED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


class StageStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    SKIPPED = "SKIPPED"
    FAILED = "FAILED"


# A stage in one of these states lets the stages that read it run.
DONE_STAGE_STATUSES = frozenset({StageStatus.SUCCEEDED, StageStatus.SKIPPED})


class StageOutcome(StrEnum):
    """What one delivery of a stage's message came to (`runner.StageRun.outcome`).

    COMPLETED: the stage succeeded and a following stage is due. SKIPPED: the stage decided not to run (its
    own skip rule; events mode). SUCCEEDED: it was the last stage; the invocation is done. FAILED: a
    permanent error ended the invocation. The rest were dropped without work: DUPLICATE (the stage is
    already done), STALE (the invocation is FAILED), FINISHED (the invocation already SUCCEEDED),
    OUT_OF_ORDER (a stage it reads is not done yet), CONFLICT (the invocation is in a state that lets no
    stage run: a concurrent update won, or another event already claimed the stage).
    """

    COMPLETED = "completed"
    SKIPPED = "skipped"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DUPLICATE = "duplicate"
    STALE = "stale"
    FINISHED = "finished"
    OUT_OF_ORDER = "out_of_order"
    CONFLICT = "conflict"

    @property
    def dropped(self) -> bool:
        """Whether the message was dropped without doing the stage's work."""
        return self not in (
            StageOutcome.COMPLETED,
            StageOutcome.SKIPPED,
            StageOutcome.SUCCEEDED,
            StageOutcome.FAILED,
        )

    @property
    def already_done(self) -> bool:
        """Whether an earlier delivery did the work (so where to go next can still be answered)."""
        return self in (StageOutcome.DUPLICATE, StageOutcome.FINISHED)


class InvocationError(BaseModel):
    """Why an invocation FAILED: a code, a message for people, and the stage it failed in."""

    model_config = ConfigDict(extra="ignore")

    code: str
    message: str
    stage: str | None = None


class StageCheckpoint(BaseModel):
    """One stage's checkpoint inside the invocation item."""

    model_config = ConfigDict(extra="ignore")

    status: StageStatus = StageStatus.PENDING
    attempts: int = 0
    started_at: str | None = None
    completed_at: str | None = None
    duration_ms: int | None = None
    output_key: str | None = None
    summary: dict[str, Any] | None = None
    claim: str | None = None  # events mode: the event that started it (see checkpoints.start_stage)
    redispatched: bool = False  # the sweeper sent its lost message again (sweeper.py)
    completions: int = 0  # times it was completed (the checkpoint's conditions keep this at most 1)

    @property
    def done(self) -> bool:
        return self.status in DONE_STAGE_STATUSES

    @property
    def skip_reason(self) -> str | None:
        """The reason recorded when the stage was SKIPPED."""
        if self.status != StageStatus.SKIPPED:
            return None
        return (self.summary or {}).get("reason", "")


class HistoryEntry(BaseModel):
    """An invocation as a caller's history lists it: what the invocations table's by-owner index holds."""

    model_config = ConfigDict(extra="ignore")

    invocation_id: str
    status: InvocationStatus
    mode: str
    created_at: str
    finished_at: str | None = None  # when it SUCCEEDED or FAILED


class Invocation(BaseModel):
    """An invocation and its checkpoints (the invocations table's item)."""

    model_config = ConfigDict(extra="ignore")

    invocation_id: str
    status: InvocationStatus
    mode: str
    created_at: str
    updated_at: str
    correlation_id: str = ""
    input_key: str = ""
    steps: list[str] = Field(default_factory=lambda: list(STAGE_NAMES))
    options: dict[str, Any] = Field(default_factory=dict)
    stages: dict[str, StageCheckpoint] = Field(default_factory=dict)
    error: InvocationError | None = None
    result: dict[str, Any] | None = None
    result_key: str | None = None
    expires_at: int | None = None
    callback_url: str | None = None  # where the end of the invocation is POSTed (handlers/notify.py)
    # the caller that submitted it (tenancy.py); items from before owners were kept: anonymous
    owner: str = "anonymous"
    deadline_at: int | None = None  # epoch s: past it and still running, the sweeper steps in
    # when it SUCCEEDED or FAILED (None while it may run, and on items that ended before it was kept)
    finished_at: str | None = None
    # The item's layout version (ITEM_VERSION); 0: written before items had one. Unknown attributes are
    # ignored and a stage missing from `stages` reads as PENDING, so older items still run and resume.
    schema_version: int = 0

    def stage(self, name: str) -> StageCheckpoint:
        """The checkpoint of stage `name` (PENDING when the item has none, e.g. a stage added since)."""
        return self.stages.get(name) or StageCheckpoint()

    def done(self, name: str) -> bool:
        return self.stage(name).done

    def first_pending_stage(self) -> str | None:
        """The first stage that is neither SUCCEEDED nor SKIPPED (where a resume starts), or None."""
        return next((name for name in STAGE_NAMES if not self.done(name)), None)

    def ready_stages(self) -> list[str]:
        """The stages that are not done while everything they read is: what may run now (in events mode,
        parallel ones together)."""
        return [
            name
            for name in STAGE_NAMES
            if not self.done(name) and all(self.done(read) for read in dependencies(name))
        ]

    def audio_key_for(self, stage: str) -> str:
        """The audio `stage` reads: the output of the last audio stage before it that ran, else the clip."""
        for name in reversed(STAGE_NAMES[: STAGE_NAMES.index(stage)]):
            checkpoint = self.stage(name)
            ran = checkpoint.status == StageStatus.SUCCEEDED and checkpoint.output_key
            if ran and get_stage(name).produces_audio:
                return checkpoint.output_key
        return self.input_key

    def next_stage_to_run(self, after: str) -> str | None:
        """The first stage after `after` that is not SKIPPED (None: `after` was the last one to run)."""
        for stage in following(after):
            if self.stage(stage.name).status != StageStatus.SKIPPED:
                return stage.name
        return None


ITEM_VERSION = 1
# The envelope's version. Readers are tolerant: they ignore fields they do not know (a newer writer's) and
# accept every version from MIN_ENVELOPE_VERSION on; 0 is the envelope from before it had the field.
ENVELOPE_VERSION = 1
MIN_ENVELOPE_VERSION = 0


class Envelope(BaseModel):
    """One stage's work order: which invocation, which stage, where its input is."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    schema_version: int = Field(default=ENVELOPE_VERSION, ge=MIN_ENVELOPE_VERSION)
    invocation_id: str = Field(min_length=1, max_length=80)
    correlation_id: str = Field(min_length=1, max_length=200)
    stage: str
    mode: Mode = "pipeline"
    input_key: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    steps: list[str] = Field(default_factory=lambda: list(STAGE_NAMES))
    attempt: int = Field(default=1, ge=1)

    @field_validator("stage")
    @classmethod
    def _known_stage(cls, value: str) -> str:
        if value not in STAGE_NAMES:
            raise ValueError(f"unknown stage {value!r}")
        return value

    @field_validator("steps")
    @classmethod
    def _known_steps(cls, value: list[str]) -> list[str]:
        unknown = [name for name in value if name not in STAGE_NAMES]
        if unknown:
            raise ValueError(f"unknown steps {unknown}")
        return value

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, body: str | bytes) -> Envelope:
        """Parse a message body; anything malformed is a PoisonMessage (never worth retrying as is)."""
        try:
            return cls.model_validate_json(body)
        except ValidationError as error:
            details = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in error.errors()
            )
            raise PoisonMessage(f"malformed envelope: {details}") from error

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Envelope:
        try:
            return cls.model_validate(data)
        except ValidationError as error:
            raise PoisonMessage(f"malformed envelope: {error.error_count()} errors") from error

    def for_stage(self, stage: str, input_key: str | None) -> Envelope:
        """The envelope of the next stage of the same invocation."""
        return self.model_copy(update={"stage": stage, "input_key": input_key, "attempt": 1})
