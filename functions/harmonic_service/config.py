"""Settings of every Harmonic function, read from environment variables once per process.

The variables are the ones listed in docs/design.md ("Environment of every function"). Defaults suit local
runs and tests (moto); a deployed function gets every value from the stack.
"""

from __future__ import annotations

import contextvars
import functools
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harmonic import WavLimits

# The asynchronous orchestrations (a request's `mode`): SQS-linked stages, Step Functions, an EventBridge bus.
MODES: tuple[str, ...] = ("pipeline", "statemachine", "events")
# What a deployment runs (ORCHESTRATION, cdk.json's `orchestration`): a mode, a comma-separated list of modes,
# or one of these names.
ORCHESTRATION_NAMES: dict[str, tuple[str, ...]] = {"all": MODES, "both": ("pipeline", "statemachine")}
ORCHESTRATIONS: tuple[str, ...] = (*MODES, *ORCHESTRATION_NAMES)


def parse_orchestration(value: str) -> tuple[str, ...]:
    """The modes an orchestration setting names, in MODES order; ValueError naming the accepted values."""
    value = value.strip()
    if value in ORCHESTRATION_NAMES:
        return ORCHESTRATION_NAMES[value]
    wanted = {part.strip() for part in value.split(",") if part.strip()}
    unknown = sorted(wanted - set(MODES))
    if not wanted or unknown:
        raise ValueError(
            f"must be one of {', '.join(ORCHESTRATIONS)} or a comma-separated list of "
            f"{', '.join(MODES)}, got {value!r}"
        )
    return tuple(mode for mode in MODES if mode in wanted)


@dataclass(frozen=True)
class Settings:
    """Deployment settings (see docs/design.md); immutable, shared by every request of a process."""

    invocations_table: str = "harmonic-invocations"
    idempotency_table: str = "harmonic-idempotency"
    patterns_table: str = "harmonic-patterns"
    payload_bucket: str = "harmonic-payloads"
    stage_queue_urls: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    state_machine_arn: str = ""
    event_bus_name: str = ""
    audit_table: str = ""
    # Completion notifications (a request's callback_url): the HMAC signing secret's name (or ARN) in
    # Secrets Manager; empty where they are not deployed. CALLBACK_ALLOW_HTTP (the local stack only) also
    # allows plain http.
    callback_secret_id: str = ""
    callback_allow_http: bool = False
    orchestration: str = "pipeline"
    # The stage queues' visibility timeout when the deployment overrides the declarations' (the local stack
    # shortens it); 0: each stage's own. Deadlines and re-dispatches follow it (deadlines.py).
    queue_visibility_timeout_s: int = 0
    # Likewise the stage functions' timeout (the local stack enforces a short one on its workers); 0: each
    # stage's declared timeout.
    function_timeout_s: int = 0
    max_inline_bytes: int = 4 * 1024 * 1024
    max_upload_bytes: int = 100 * 1024 * 1024
    max_duration_s: float = 600.0
    max_sample_rate: int = 192_000
    retention_days: int = 7
    upload_url_expiry_s: int = 900
    # How long the presigned GET of a pattern's example (GET /v1/patterns/{id}/example) is valid.
    example_url_expiry_s: int = 900
    # A final result up to this size is stored inline in the invocation item; larger ones only in S3.
    max_inline_result_bytes: int = 64 * 1024
    # The stages' circuit breakers (breaker.py): dependency failures in a window that open one, the
    # window, the cool-down before a probe, and how often one message may be put back on its queue.
    breaker_threshold: int = 5
    breaker_window_s: int = 60
    breaker_cooldown_s: int = 60
    breaker_max_requeues: int = 60
    # The sweeper only: {stage name: [its event-source mapping ids]} (the pipeline's and the events
    # mode's), which it disables while the stage's breaker is open; empty where none are deployed (locally).
    # Owners (tenancy.py) whose patterns every caller sees and matches, read-only for the others.
    shared_pattern_owners: tuple[str, ...] = ()
    stage_event_source_mappings: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    # The API function only: the one origin (scheme://host[:port]) of a web console served elsewhere whose
    # requests it answers with CORS headers (cors.py); empty: none, no CORS headers at all.
    cors_allow_origin: str = ""

    @property
    def modes(self) -> tuple[str, ...]:
        """The orchestration modes this deployment accepts, default first."""
        return parse_orchestration(self.orchestration)

    @property
    def retention_s(self) -> int:
        return self.retention_days * 86_400

    @property
    def wav_limits(self) -> WavLimits:
        """The audio bounds every decode applies (MAX_DURATION_S, MAX_SAMPLE_RATE). harmonic is imported
        here, not at module level: functions that never decode audio never import the DSP."""
        from harmonic import WavLimits

        return WavLimits(max_duration_s=self.max_duration_s, max_sample_rate=self.max_sample_rate)


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    return float(raw) if raw else default


def _owners(raw: str) -> tuple[str, ...]:
    if not raw.strip():
        return ()
    owners = json.loads(raw)
    if not isinstance(owners, list) or not all(isinstance(o, str) and o for o in owners):
        raise ValueError("SHARED_PATTERN_OWNERS must be a JSON list of owner ids")
    return tuple(owners)


def _mapping_ids(raw: str) -> Mapping[str, tuple[str, ...]]:
    if not raw.strip():
        return MappingProxyType({})
    ids = json.loads(raw)
    if not isinstance(ids, dict) or not all(
        isinstance(v, list) and all(isinstance(i, str) for i in v) for v in ids.values()
    ):
        raise ValueError("STAGE_EVENT_SOURCE_MAPPINGS must be a JSON object {stage name: [mapping id, ...]}")
    return MappingProxyType({stage: tuple(v) for stage, v in ids.items()})


def _queue_urls(raw: str) -> Mapping[str, str]:
    if not raw.strip():
        return MappingProxyType({})
    urls = json.loads(raw)
    if not isinstance(urls, dict) or not all(isinstance(v, str) for v in urls.values()):
        raise ValueError("STAGE_QUEUE_URLS must be a JSON object {stage name: queue URL}")
    return MappingProxyType(dict(urls))


def _origin(raw: str) -> str:
    from harmonic_service.cors import check_origin

    return check_origin(raw.strip()) if raw.strip() else ""


@functools.cache
def get_settings() -> Settings:
    """The settings of this process, read from the environment on first use."""
    defaults = Settings()
    orchestration = os.environ.get("ORCHESTRATION", defaults.orchestration).strip() or defaults.orchestration
    try:
        parse_orchestration(orchestration)
    except ValueError as error:
        raise ValueError(f"ORCHESTRATION {error}") from None
    return Settings(
        invocations_table=os.environ.get("INVOCATIONS_TABLE", defaults.invocations_table),
        idempotency_table=os.environ.get("IDEMPOTENCY_TABLE", defaults.idempotency_table),
        patterns_table=os.environ.get("PATTERNS_TABLE", defaults.patterns_table),
        payload_bucket=os.environ.get("PAYLOAD_BUCKET", defaults.payload_bucket),
        stage_queue_urls=_queue_urls(os.environ.get("STAGE_QUEUE_URLS", "")),
        state_machine_arn=os.environ.get("STATE_MACHINE_ARN", "").strip(),
        event_bus_name=os.environ.get("EVENT_BUS_NAME", "").strip(),
        audit_table=os.environ.get("AUDIT_TABLE", "").strip(),
        callback_secret_id=os.environ.get("CALLBACK_SECRET_ID", "").strip(),
        callback_allow_http=os.environ.get("CALLBACK_ALLOW_HTTP", "").strip().lower() == "true",
        orchestration=orchestration,
        queue_visibility_timeout_s=_int("QUEUE_VISIBILITY_TIMEOUT_S", defaults.queue_visibility_timeout_s),
        function_timeout_s=_int("FUNCTION_TIMEOUT_S", defaults.function_timeout_s),
        max_inline_bytes=_int("MAX_INLINE_BYTES", defaults.max_inline_bytes),
        max_upload_bytes=_int("MAX_UPLOAD_BYTES", defaults.max_upload_bytes),
        max_duration_s=_float("MAX_DURATION_S", defaults.max_duration_s),
        max_sample_rate=_int("MAX_SAMPLE_RATE", defaults.max_sample_rate),
        retention_days=_int("RETENTION_DAYS", defaults.retention_days),
        breaker_threshold=_int("BREAKER_THRESHOLD", defaults.breaker_threshold),
        breaker_window_s=_int("BREAKER_WINDOW_S", defaults.breaker_window_s),
        breaker_cooldown_s=_int("BREAKER_COOLDOWN_S", defaults.breaker_cooldown_s),
        breaker_max_requeues=_int("BREAKER_MAX_REQUEUES", defaults.breaker_max_requeues),
        shared_pattern_owners=_owners(os.environ.get("SHARED_PATTERN_OWNERS", "")),
        stage_event_source_mappings=_mapping_ids(os.environ.get("STAGE_EVENT_SOURCE_MAPPINGS", "")),
        cors_allow_origin=_origin(os.environ.get("CORS_ALLOW_ORIGIN", "")),
    )


# Set by hosts that run several stages in one process (the local stack's threads); Lambda never sets it.
stage_override: contextvars.ContextVar[str | None] = contextvars.ContextVar("stage_override", default=None)


def current_stage() -> str:
    """STAGE_NAME of this function, read at call time (one stage per function; tests switch it).

    `stage_override`, when set in the calling context, wins: the local stack runs every stage's handler
    in one process, each poller thread in its own context.
    """
    override = stage_override.get()
    return override if override is not None else os.environ.get("STAGE_NAME", "")


_clearers: list[Callable[[], None]] = []


def on_clear(clear: Callable[[], None]) -> None:
    """Have `clear_caches` call `clear` too: modules that cache per process (clients, registry, faults)
    register here, so this leaf module imports none of them."""
    if clear not in _clearers:
        _clearers.append(clear)


def clear_caches() -> None:
    """Forget the settings and every per-process cache (tests change the environment between cases)."""
    get_settings.cache_clear()
    for clear in _clearers:
        clear()
