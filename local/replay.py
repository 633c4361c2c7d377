"""``make replay SINCE=… UNTIL=…``: replay the event archive's window onto the bus.

Every stage is idempotent on its checkpoint and a replayed event resumes a FAILED invocation, so a replay
completes the invocations that failed in the window and leaves the finished ones as they are. Works against
AWS (the stack's archive, ``--archive``, default ``<stack>-events``) and against the local stack
(``AWS_ENDPOINT_URL``; its archive is ``harmonic-local-events``, and local.harness.faithful_replay makes moto
replay the window as EventBridge does).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

LOCAL_ARCHIVE = "harmonic-local-events"


def parse_time(value: str) -> datetime:
    """An ISO 8601 time (a Z or an offset; naive means UTC)."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def replay(events: Any, archive: str, since: datetime, until: datetime, timeout_s: float = 300.0) -> dict:
    """Start a replay of `archive` between `since` and `until` onto its own bus and wait for it to end;
    the final DescribeReplay."""
    described = events.describe_archive(ArchiveName=archive)
    name = f"harmonic-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    events.start_replay(
        ReplayName=name,
        EventSourceArn=described["ArchiveArn"],
        EventStartTime=since,
        EventEndTime=until,
        Destination={"Arn": described["EventSourceArn"]},
    )
    deadline = time.monotonic() + timeout_s
    while True:
        state = events.describe_replay(ReplayName=name)
        if state["State"] in ("COMPLETED", "FAILED", "CANCELLED"):
            return state
        if time.monotonic() > deadline:
            raise TimeoutError(f"replay {name} still {state['State']} after {timeout_s} s")
        time.sleep(1.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make replay", description=__doc__.splitlines()[0])
    parser.add_argument("--since", required=True, help="start of the window, ISO 8601 (UTC if no offset)")
    parser.add_argument("--until", default=None, help="end of the window (default: now)")
    parser.add_argument("--archive", default=os.environ.get("EVENT_ARCHIVE"), help="the archive's name")
    args = parser.parse_args(argv)
    import boto3

    local = bool(os.environ.get("AWS_ENDPOINT_URL"))
    archive = args.archive or (
        LOCAL_ARCHIVE if local else f"{os.environ.get('STACK_NAME', 'Harmonic')}-events"
    )
    since = parse_time(args.since)
    until = parse_time(args.until) if args.until else datetime.now(UTC)
    if since >= until:
        parser.error("--since must be before --until")
    state = replay(boto3.client("events"), archive, since, until)
    window = f"from {since.isoformat()} to {until.isoformat()}"
    print(f"replay {state['ReplayName']} of {archive} {window}: {state['State']}")
    return 0 if state["State"] == "COMPLETED" else 1


if __name__ == "__main__":
    sys.exit(main())
