"""The events of the event-driven architecture (`mode: "events"`): their contracts and the subscriptions.

Stages publish facts to an EventBridge bus instead of sending work to a successor; each stage subscribes
to the facts it depends on. The dependency graph lives in the subscriptions, derived from the stage table
(`stages.dependencies`): a stage's rule matches the `StageCompleted` and `StageSkipped` events of the
stages it reads (the first stage's rule, `InvocationSubmitted`), and `InvocationResumed` naming it.

Events carry ids and S3 keys, never audio. Every detail has `schema_version`; readers are tolerant: they
ignore fields they do not know and accept every version from MIN_SCHEMA_VERSION on, so a publisher can
add a field without breaking a consumer still running the previous code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harmonic_service.errors import PoisonMessage
from harmonic_service.stages import STAGES, VISIBILITY_TIMEOUT_FACTOR, dependencies

SOURCE = "harmonic"
SCHEMA_VERSION = 1
MIN_SCHEMA_VERSION = 1


class EventDetail(BaseModel):
    """What every event says: which invocation, its correlation id, and the detail's schema version."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    detail_type: ClassVar[str] = ""

    schema_version: int = Field(default=SCHEMA_VERSION, ge=MIN_SCHEMA_VERSION)
    invocation_id: str = Field(min_length=1, max_length=80)
    correlation_id: str = Field(min_length=1, max_length=200)
    # When the publisher made the event, to the microsecond (EventBridge's `time` has whole seconds only):
    # orders an invocation's events in the audit log.
    published_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="microseconds"))

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.detail_type = cls.__name__


class InvocationSubmitted(EventDetail):
    """The API accepted a clip (`input_key`) for the event-driven chain."""

    input_key: str


class InvocationResumed(EventDetail):
    """A FAILED invocation was resumed: `stage` starts again (its dependencies are done)."""

    stage: str


class StageCompleted(EventDetail):
    """`stage` succeeded; its output is at `output_key` (its audio's .npz, or its summary's .json)."""

    stage: str
    output_key: str | None = None
    duration_ms: int | None = None


class StageSkipped(EventDetail):
    """`stage` did not run, for `reason`; the stages that read it may go on."""

    stage: str
    reason: str


class StageFailed(EventDetail):
    """`stage` failed for good (`code`, `message`); the invocation is FAILED and can be resumed."""

    stage: str
    code: str
    message: str


class InvocationCompleted(EventDetail):
    """The invocation SUCCEEDED (in any mode); its result is at `result_key`. `notify`: its request named a
    ``callback_url`` (the notification subscriber's rule matches on it; the URL itself stays in the
    invocation item)."""

    result_key: str
    notify: bool = False


class InvocationFailed(EventDetail):
    """The invocation FAILED (in any mode) at `stage` with `code` and `message`; `notify` as for
    InvocationCompleted."""

    stage: str
    code: str
    message: str
    notify: bool = False


EVENT_TYPES: dict[str, type[EventDetail]] = {
    model.__name__: model
    for model in (
        InvocationSubmitted,
        InvocationResumed,
        StageCompleted,
        StageSkipped,
        StageFailed,
        InvocationCompleted,
        InvocationFailed,
    )
}
# What a stage's work is triggered by (the rest are for other subscribers: notifications, audit).
TRIGGERS = ("InvocationSubmitted", "InvocationResumed", "StageCompleted", "StageSkipped")


def parse_event(event: Any) -> tuple[str, EventDetail]:
    """(event id, detail) of an EventBridge event as a target receives it; PoisonMessage when it is not one
    of Harmonic's events or its detail does not validate (never worth retrying as it is)."""
    if not isinstance(event, dict):
        raise PoisonMessage("the message is not an EventBridge event (a JSON object)")
    detail_type = event.get("detail-type")
    model = EVENT_TYPES.get(detail_type) if isinstance(detail_type, str) else None
    if event.get("source") != SOURCE or model is None:
        raise PoisonMessage(
            f"not a Harmonic event: source {event.get('source')!r}, detail-type {detail_type!r}"
        )
    try:
        detail = model.model_validate(event.get("detail"))
    except ValidationError as error:
        details = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'detail'}: {e['msg']}" for e in error.errors()
        )
        raise PoisonMessage(f"malformed {detail_type} event: {details}") from error
    return str(event.get("id") or ""), detail


def subscriptions(stage: str) -> list[dict[str, Any]]:
    """The EventBridge event patterns of `stage`'s rules: what it runs after, and its resumes."""
    resumed = {"source": [SOURCE], "detail-type": ["InvocationResumed"], "detail": {"stage": [stage]}}
    reads = list(dependencies(stage))
    if not reads:
        return [{"source": [SOURCE], "detail-type": ["InvocationSubmitted"]}, resumed]
    after = {
        "source": [SOURCE],
        "detail-type": ["StageCompleted", "StageSkipped"],
        "detail": {"stage": reads},
    }
    return [after, resumed]


@dataclass(frozen=True)
class Subscriber:
    """A consumer of the bus that is not a stage: what it hears (`pattern`), its handler, and its
    function's size and its queue's rules, as a stage declares them (the CDK app and the local stack read
    them all the same way)."""

    name: str
    pattern: dict[str, Any]
    handler: str  # the handler module (its ``handler`` function)
    description: str
    batch_size: int = 10
    max_concurrency: int = 5
    max_receive_count: int = 3
    timeout_s: int = 30
    memory_mb: int = 256

    @property
    def queue_visibility_timeout_s(self) -> int:
        return self.timeout_s * VISIBILITY_TIMEOUT_FACTOR


# The audit subscriber: every Harmonic event, kept per invocation (handlers/audit.py).
AUDIT = Subscriber(
    name="audit",
    pattern={"source": [SOURCE]},
    handler="harmonic_service.handlers.audit",
    description="every event, to the audit log",
)
# Completion notifications: the end of every invocation whose request named a callback_url, POSTed there
# (handlers/notify.py). A delivery that fails is retried by its queue (visibility timeout apart) and lands
# in the DLQ after max_receive_count attempts; the invocation keeps its status.
NOTIFY = Subscriber(
    name="notify",
    pattern={
        "source": [SOURCE],
        "detail-type": ["InvocationCompleted", "InvocationFailed"],
        "detail": {"notify": [True]},
    },
    handler="harmonic_service.handlers.notify",
    description="the end of an invocation, POSTed to its callback_url",
    batch_size=1,
    max_receive_count=5,
    timeout_s=15,
)
# Every subscriber that is not a stage, each with its own rule, queue, DLQ and function.
SUBSCRIBERS: tuple[Subscriber, ...] = (AUDIT, NOTIFY)


def all_subscriptions() -> dict[str, list[dict[str, Any]]]:
    """Every stage's event patterns, in stage order (the rules the infra and the local stack create)."""
    return {stage.name: subscriptions(stage.name) for stage in STAGES}


def json_schemas() -> dict[str, dict[str, Any]]:
    """The JSON Schema of every event's detail, by detail-type (committed under events/, registered by the
    CDK app in an EventBridge schema registry)."""
    schemas = {}
    for name, model in EVENT_TYPES.items():
        schema = model.model_json_schema()
        schema["$id"] = f"harmonic/{name}/v{SCHEMA_VERSION}"
        schema["x-detail-type"] = name
        schema["x-source"] = SOURCE
        schemas[name] = schema
    return schemas


__all__ = [
    "AUDIT",
    "EVENT_TYPES",
    "NOTIFY",
    "SCHEMA_VERSION",
    "SOURCE",
    "SUBSCRIBERS",
    "TRIGGERS",
    "EventDetail",
    "Subscriber",
    "all_subscriptions",
    "json_schemas",
    "parse_event",
    "subscriptions",
]
