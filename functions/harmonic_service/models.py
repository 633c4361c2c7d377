"""The message passed between stages (the envelope) and the status vocabularies.

The envelope carries ids and S3 keys only, never audio (claim check). The same JSON is the SQS message body
in pipeline mode and the task input/output in statemachine mode.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from harmonic_service.errors import PoisonMessage
from harmonic_service.stages import STAGE_NAMES


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


# A stage in one of these states lets the next one run.
DONE_STAGE_STATUSES = frozenset({StageStatus.SUCCEEDED, StageStatus.SKIPPED})

Mode = Literal["pipeline", "statemachine"]


class Envelope(BaseModel):
    """One stage's work order: which invocation, which stage, where its input is."""

    model_config = ConfigDict(extra="forbid", frozen=True)

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
