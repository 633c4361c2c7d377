"""The one timestamp format of items and bodies: ISO 8601 in UTC with milliseconds and a Z."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> str:
    """The current time, e.g. ``2026-11-30T08:38:58.123Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def age_s(timestamp: str | None) -> float:
    """Seconds since `timestamp` (a `now()` string); infinite when there is none."""
    if not timestamp:
        return float("inf")
    then = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    return (datetime.now(UTC) - then).total_seconds()
