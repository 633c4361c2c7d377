"""Deployment settings of the Harmonic stack, read once from the CDK context.

Every knob lives in `cdk.json` ("context") with its default and can be overridden on the command line,
e.g. `cdk deploy -c auth=api_key -c 'stage_memory_mb={"features": 2048}'`. Values given with `-c` arrive as
strings; they are parsed here (numbers, JSON objects) and validated, so a bad value stops the synth with a
message naming the setting instead of failing later inside CloudFormation.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from harmonic_service.config import Settings as FunctionSettings
from harmonic_service.config import parse_orchestration
from harmonic_service.stages import STAGE_NAMES, get_stage

# The functions' own defaults (harmonic_service/config.py): the stack passes the same values explicitly.
_FUNCTION_DEFAULTS = FunctionSettings()
AUTH_MODES = ("iam", "api_key")
ARCHITECTURES = ("arm64", "x86_64")
PYTHON_RUNTIMES = ("3.12", "3.13")
STATE_MACHINE_TYPES = ("STANDARD", "EXPRESS")

# Lambda's own bounds.
LAMBDA_MIN_MEMORY_MB = 128
LAMBDA_MAX_MEMORY_MB = 10_240
# CloudWatch Logs accepts only these retention periods (days).
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557)


class SettingsError(ValueError):
    """A context value that the stack cannot use; the message names the setting and what it accepts."""


@dataclass(frozen=True)
class Settings:
    """Everything the stack reads from the context, validated. Defaults are those of cdk.json."""

    orchestration: str = "all"
    auth: str = "iam"
    architecture: str = "arm64"
    # Lambda's Python: 3.13 (the speech layer, pocketsphinx, exists only there) or 3.12 (without it).
    python_runtime: str = "3.13"
    # Per-stage memory (MB) overrides of the stage declarations; `stage_memory(name)` is the effective value.
    stage_memory_mb: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    api_memory_mb: int = 1536
    api_timeout_s: int = 29
    # Days that invocation items (TTL) and S3 artifacts under invocations/ and uploads/ live.
    retention_days: int = _FUNCTION_DEFAULTS.retention_days
    log_retention_days: int = 30
    # API Gateway stage throttling: steady requests per second and burst; beyond them API Gateway answers 429.
    api_throttle_rate: float = 50.0
    api_throttle_burst: int = 100
    # Input limits, passed to every function (see docs/design.md).
    max_inline_bytes: int = _FUNCTION_DEFAULTS.max_inline_bytes
    max_upload_bytes: int = _FUNCTION_DEFAULTS.max_upload_bytes
    max_duration_s: float = _FUNCTION_DEFAULTS.max_duration_s
    max_sample_rate: int = _FUNCTION_DEFAULTS.max_sample_rate
    # Alarms.
    alarm_oldest_message_age_s: int = 300
    alarm_stage_error_rate_pct: float = 5.0
    alarm_api_5xx_count: int = 1
    # a stage's failed attempts (StageFailures, every mode) in 5 minutes; its p95 duration, % of its timeout
    alarm_stage_failures: int = 10
    alarm_stage_p95_pct_of_timeout: float = 80.0
    alarm_email: str = ""
    # Days the event bus's archive keeps every event (events mode), for `make replay`.
    event_archive_retention_days: int = 7
    # Step Functions: STANDARD or EXPRESS (infra/statemachine.py; the trade-off is in docs/infra.md).
    state_machine_type: str = "STANDARD"
    # The stages' circuit breakers (functions/harmonic_service/breaker.py): dependency failures in a
    # window that open one, the window, the cool-down before a probe, and how often one message may be put
    # back on its queue while it waits.
    breaker_threshold: int = _FUNCTION_DEFAULTS.breaker_threshold
    breaker_window_s: int = _FUNCTION_DEFAULTS.breaker_window_s
    breaker_cooldown_s: int = _FUNCTION_DEFAULTS.breaker_cooldown_s
    breaker_max_requeues: int = _FUNCTION_DEFAULTS.breaker_max_requeues
    # Callers (owner ids: "apikey:<API key id>" or an IAM principal ARN, a role for its sessions) whose
    # patterns every caller sees and matches, read-only for the others (functions/.../tenancy.py).
    shared_pattern_owners: tuple[str, ...] = ()
    # The web console (console/, infra/console.py): CloudFront in front of a private bucket, and CORS on the
    # API for its origin only. false: neither.
    console: bool = True

    def __post_init__(self) -> None:
        try:
            parse_orchestration(self.orchestration)
        except ValueError as error:
            raise SettingsError(f"orchestration {error}") from None
        _one_of("auth", self.auth, AUTH_MODES)
        _one_of("architecture", self.architecture, ARCHITECTURES)
        _one_of("python_runtime", self.python_runtime, PYTHON_RUNTIMES)
        _one_of("state_machine_type", self.state_machine_type, STATE_MACHINE_TYPES)
        unknown = sorted(set(self.stage_memory_mb) - set(STAGE_NAMES))
        if unknown:
            raise SettingsError(
                f"stage_memory_mb: unknown stage(s) {', '.join(unknown)}; stages are {', '.join(STAGE_NAMES)}"
            )
        for stage, memory in self.stage_memory_mb.items():
            _in_range(f"stage_memory_mb.{stage}", memory, LAMBDA_MIN_MEMORY_MB, LAMBDA_MAX_MEMORY_MB)
        _in_range("api_memory_mb", self.api_memory_mb, LAMBDA_MIN_MEMORY_MB, LAMBDA_MAX_MEMORY_MB)
        # API Gateway's integration timeout is 29 s by default; a longer API function would be cut off.
        _in_range("api_timeout_s", self.api_timeout_s, 3, 29)
        _in_range("retention_days", self.retention_days, 1, 3650)
        _in_range("event_archive_retention_days", self.event_archive_retention_days, 1, 3650)
        if self.log_retention_days not in LOG_RETENTION_DAYS:
            raise SettingsError(
                f"log_retention_days must be one of {', '.join(map(str, LOG_RETENTION_DAYS))}, "
                f"got {self.log_retention_days}"
            )
        _in_range("api_throttle_rate", self.api_throttle_rate, 1, 10_000)
        _in_range("api_throttle_burst", self.api_throttle_burst, 1, 5_000)
        # Lambda's synchronous payload limit is 6 MB; base64 grows the clip by 4/3 inside the JSON body.
        _in_range("max_inline_bytes", self.max_inline_bytes, 1024, 4_500_000)
        _in_range("max_upload_bytes", self.max_upload_bytes, 1024, 5 * 1024**3)
        if self.max_upload_bytes < self.max_inline_bytes:
            raise SettingsError("max_upload_bytes must be at least max_inline_bytes")
        _in_range("max_duration_s", self.max_duration_s, 1, 3600)
        _in_range("max_sample_rate", self.max_sample_rate, 8000, 384_000)
        _in_range("alarm_oldest_message_age_s", self.alarm_oldest_message_age_s, 60, 14 * 86_400)
        _in_range("alarm_stage_error_rate_pct", self.alarm_stage_error_rate_pct, 0.1, 100)
        _in_range("alarm_api_5xx_count", self.alarm_api_5xx_count, 1, 1_000_000)
        _in_range("alarm_stage_failures", self.alarm_stage_failures, 1, 1_000_000)
        _in_range("alarm_stage_p95_pct_of_timeout", self.alarm_stage_p95_pct_of_timeout, 1, 100)
        _in_range("breaker_threshold", self.breaker_threshold, 1, 10_000)
        _in_range("breaker_window_s", self.breaker_window_s, 1, 86_400)
        # a held message is put back with a delay of the rest of the cool-down, and SQS delays at most 900 s
        _in_range("breaker_cooldown_s", self.breaker_cooldown_s, 1, 900)
        _in_range("breaker_max_requeues", self.breaker_max_requeues, 0, 10_000)
        for owner in self.shared_pattern_owners:
            if not (owner.startswith("apikey:") or owner.startswith("arn:")):
                raise SettingsError(
                    f"shared_pattern_owners: {owner!r} is not an owner id (apikey:<API key id> or an IAM "
                    "principal ARN)"
                )
        if self.alarm_email and "@" not in self.alarm_email:
            raise SettingsError(f"alarm_email must be an e-mail address, got {self.alarm_email!r}")

    def stage_memory(self, stage: str) -> int:
        """Memory (MB) of stage `stage`'s function: the override if any, else its declaration's."""
        return self.stage_memory_mb.get(stage, get_stage(stage).memory_mb)

    @property
    def modes(self) -> tuple[str, ...]:
        """The orchestration modes deployed (harmonic_service.config.MODES order)."""
        return parse_orchestration(self.orchestration)

    @property
    def deploys_pipeline(self) -> bool:
        return "pipeline" in self.modes

    @property
    def deploys_state_machine(self) -> bool:
        return "statemachine" in self.modes

    @property
    def deploys_events(self) -> bool:
        return "events" in self.modes

    @classmethod
    def from_context(cls, lookup: Callable[[str], Any]) -> Settings:
        """Settings from a context lookup such as `app.node.try_get_context`; unset keys keep defaults."""
        values: dict[str, Any] = {}
        for name, parse in _PARSERS.items():
            raw = lookup(name)
            if raw is None or raw == "":
                continue
            try:
                values[name] = parse(raw)
            except (TypeError, ValueError) as error:
                if isinstance(error, SettingsError):
                    raise
                raise SettingsError(f"{name}: cannot use {raw!r}: {error}") from None
        return cls(**values)

    @classmethod
    def from_mapping(cls, context: Mapping[str, Any]) -> Settings:
        """Settings from a plain mapping (tests, scripts)."""
        return cls.from_context(context.get)


def _one_of(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise SettingsError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")


def _in_range(name: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low:g} and {high:g}, got {value!r}")


def _text(raw: Any) -> str:
    if not isinstance(raw, str):
        raise TypeError("expected a string")
    return raw.strip()


def _version(raw: Any) -> str:
    # `-c python_runtime=3.12` arrives as a string, but cdk.json may hold the number 3.12.
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise TypeError("expected a version such as 3.12")
    return str(raw).strip()


def _integer(raw: Any) -> int:
    if isinstance(raw, bool):
        raise TypeError("expected an integer")
    if isinstance(raw, float):
        if not raw.is_integer():
            raise ValueError("expected an integer")
        return int(raw)
    if isinstance(raw, str):
        return int(raw.strip())
    if isinstance(raw, int):
        return raw
    raise TypeError("expected an integer")


def _number(raw: Any) -> float:
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise TypeError("expected a number")
    return float(raw)


def _upper(raw: Any) -> str:
    return _text(raw).upper()


def _owner_list(raw: Any) -> tuple[str, ...]:
    if isinstance(raw, str):
        raw = json.loads(raw) if raw.strip().startswith("[") else [p for p in raw.split(",") if p.strip()]
    if not isinstance(raw, list | tuple) or not all(
        isinstance(owner, str) and owner.strip() for owner in raw
    ):
        raise TypeError('expected a list of owner ids such as ["apikey:a1b2c3d4e5"]')
    return tuple(owner.strip() for owner in raw)


def _memory_map(raw: Any) -> Mapping[str, int]:
    if isinstance(raw, str):
        raw = json.loads(raw)
    if not isinstance(raw, Mapping):
        raise TypeError(f'expected a JSON object such as {{"{STAGE_NAMES[-1]}": 2048}}')
    return MappingProxyType({str(stage): _integer(memory) for stage, memory in raw.items()})


def _flag(raw: Any) -> bool:
    """A JSON boolean, or its spelling on the command line (-c console=false)."""
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    raise ValueError("expected true or false")


_PARSERS: dict[str, Callable[[Any], Any]] = {
    "orchestration": _text,
    "auth": _text,
    "architecture": _text,
    "python_runtime": _version,
    "stage_memory_mb": _memory_map,
    "api_memory_mb": _integer,
    "api_timeout_s": _integer,
    "retention_days": _integer,
    "log_retention_days": _integer,
    "api_throttle_rate": _number,
    "api_throttle_burst": _integer,
    "max_inline_bytes": _integer,
    "max_upload_bytes": _integer,
    "max_duration_s": _number,
    "max_sample_rate": _integer,
    "alarm_oldest_message_age_s": _integer,
    "alarm_stage_error_rate_pct": _number,
    "alarm_api_5xx_count": _integer,
    "alarm_stage_failures": _integer,
    "alarm_stage_p95_pct_of_timeout": _number,
    "alarm_email": _text,
    "state_machine_type": _upper,
    "event_archive_retention_days": _integer,
    "breaker_threshold": _integer,
    "breaker_window_s": _integer,
    "breaker_cooldown_s": _integer,
    "breaker_max_requeues": _integer,
    "shared_pattern_owners": _owner_list,
    "console": _flag,
}
