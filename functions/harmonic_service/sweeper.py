"""The watchdog: no invocation stays RUNNING forever.

Every invocation has a deadline (`deadlines.py`: the stage table's retry budget along the chain) and
sits in a sparse index of the invocations table until it ends (`checkpoints.DEADLINE_INDEX`). Every minute
(an EventBridge schedule; a thread in the local stack) `sweep` reads the overdue ones:

- ended since (an item from before the index was kept current): taken out of the index;
- a stage whose inputs are all done is still PENDING and never started: the message that should have
  started it was lost (a send that failed after its checkpoint, a publish that never happened). In the
  pipeline and events modes it is sent again, once (`redispatched` on its checkpoint), and the deadline
  starts over;
- anything else (a stage started and never finished: its function killed on its last delivery, its message
  in the DLQ; a second loss; a state machine run that went quiet): FAILED with ``code: "stalled"``, which
  `resume` restarts from the first stage not done.

An invocation whose pending stage waits behind an open circuit breaker is not stuck: its message waits in
the queue until the dependency is back, so its deadline is postponed instead (`postponed`).
`tend_breakers`, in the same run, moves each breaker on (breaker.py): OPEN past its cool-down becomes
HALF_OPEN, and every stage's event-source mappings follow its breaker (disabled while OPEN).

`execution_ended` records what Step Functions says when an execution ends without the state machine's own
failure path (TIMED_OUT, ABORTED, or FAILED before RecordFailure ran): EventBridge's "Step Functions
Execution Status Change" events reach the sweeper's function.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger

from harmonic_service import events
from harmonic_service.breaker import BreakerState, probe_due
from harmonic_service.dal import breakers, bus, checkpoints, mappings, queues
from harmonic_service.models import Envelope, Invocation, InvocationStatus, StageStatus
from harmonic_service.stages import STAGE_NAMES

logger = Logger(service="harmonic", child=True)

# Step Functions execution statuses that end a run; RecordFailure records FAILED itself, unless the run
# failed before reaching it.
_ENDED_EXECUTION = {
    "TIMED_OUT": "execution_timed_out",
    "ABORTED": "execution_aborted",
    "FAILED": "execution_failed",
}


@dataclass
class SweepReport:
    """What one sweep did, by invocation id."""

    examined: int = 0
    redispatched: list[str] = field(default_factory=list)
    stalled: list[str] = field(default_factory=list)
    settled: list[str] = field(default_factory=list)
    postponed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "examined": self.examined,
            "redispatched": self.redispatched,
            "stalled": self.stalled,
            "settled": self.settled,
            "postponed": self.postponed,
        }


def sweep(now: float | None = None, limit: int = 100) -> SweepReport:
    """Look at up to `limit` invocations past their deadline at `now` (default: the clock)."""
    report = SweepReport()
    for invocation_id in checkpoints.overdue(now, limit):
        report.examined += 1
        item = checkpoints.get(invocation_id)
        if item is None:
            continue
        if item.status in (InvocationStatus.SUCCEEDED, InvocationStatus.FAILED):
            checkpoints.leave_index(invocation_id)
            report.settled.append(invocation_id)
            continue
        if _behind_open_breaker(item):  # its message waits in the queue: neither lost nor stuck
            if checkpoints.postpone_deadline(invocation_id):
                report.postponed.append(invocation_id)
            continue
        lost = _lost_stages(item)
        if lost and item.mode in ("pipeline", "events") and _redispatch(item, lost):
            report.redispatched.append(invocation_id)
            continue
        if _stall(item):
            report.stalled.append(invocation_id)
    return report


def _behind_open_breaker(item: Invocation) -> bool:
    """Whether a stage the invocation waits for has an OPEN breaker (queue-fed modes). Half-open, messages
    flow again, and the usual rules apply."""
    if item.mode not in ("pipeline", "events"):
        return False
    return any(breakers.state(stage).state == BreakerState.OPEN for stage in item.ready_stages())


@dataclass
class BreakerReport:
    """What `tend_breakers` saw and did: the stages whose breaker is OPEN (after it half-opened those whose
    cool-down is over), those it half-opened, and the event-source mappings it switched."""

    open: list[str] = field(default_factory=list)
    half_opened: list[str] = field(default_factory=list)
    switched: dict[str, list[str]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"open": self.open, "half_opened": self.half_opened, "switched": self.switched}


def tend_breakers(now: float | None = None) -> BreakerReport:
    """Half-open the breakers whose cool-down is over and make every stage's event-source mappings follow
    its breaker: disabled while OPEN, enabled otherwise (a mapping someone disabled by hand while its
    breaker is CLOSED is enabled again: the breaker owns the switch)."""
    now = time.time() if now is None else now
    settings = breakers.breaker_settings()
    report = BreakerReport()
    for breaker in breakers.all_breakers(STAGE_NAMES):
        state = breaker.state
        if probe_due(state, breaker.opened_at, now, settings) and breakers.half_open(
            breaker.stage, breaker.opened_at, now
        ):
            state = BreakerState.HALF_OPEN
            report.half_opened.append(breaker.stage)
            logger.info("breaker half-open: a probe may run", extra={"stage": breaker.stage})
        if state == BreakerState.OPEN:
            report.open.append(breaker.stage)
        try:
            switched = mappings.set_pulling(breaker.stage, enabled=state != BreakerState.OPEN)
        except Exception:  # the next run tries again
            logger.exception("could not switch the event-source mappings", extra={"stage": breaker.stage})
            continue
        if switched:
            report.switched[breaker.stage] = switched
    return report


def _lost_stages(item: Invocation) -> list[str]:
    """The stages that should be running but never started and were not re-dispatched already."""
    ready = item.ready_stages()
    lost = [
        name
        for name in ready
        if item.stage(name).status == StageStatus.PENDING
        and item.stage(name).attempts == 0
        and not item.stage(name).redispatched
    ]
    return lost if lost == ready else []  # a sibling started and hangs: that is a stall, not a loss


def _redispatch(item: Invocation, stages: list[str]) -> bool:
    """Send the lost stages' messages again; False if the invocation moved on meanwhile."""
    if not all(checkpoints.extend_deadline(item.invocation_id, name, extra_s=0) for name in stages):
        return False
    ids = {"invocation_id": item.invocation_id, "correlation_id": item.correlation_id or item.invocation_id}
    if item.mode == "pipeline":
        for name in stages:
            queues.send_envelope(
                Envelope(
                    **ids,
                    stage=name,
                    mode="pipeline",
                    input_key=item.audio_key_for(name),
                    options=item.options,
                    steps=item.steps,
                )
            )
    else:
        bus.publish(*(events.InvocationResumed(**ids, stage=name) for name in stages))
    logger.warning(
        "re-dispatched lost stage messages",
        extra={"invocation_id": item.invocation_id, "stages": stages, "mode": item.mode},
    )
    return True


def _stall(item: Invocation) -> bool:
    """FAILED with code "stalled" at the first stage not done; False if it ended meanwhile."""
    stage = item.first_pending_stage() or STAGE_NAMES[-1]
    deadline = (
        datetime.fromtimestamp(item.deadline_at, UTC).isoformat(timespec="seconds")
        if item.deadline_at
        else "?"
    )
    message = f"no progress at stage {stage} by the invocation's deadline ({deadline}); resume to retry"
    changed = checkpoints.fail(item.invocation_id, stage=stage, code="stalled", message=message)
    if changed:
        logger.warning("invocation stalled", extra={"invocation_id": item.invocation_id, "stage": stage})
    return changed


def execution_ended(event: dict[str, Any]) -> str | None:
    """From a "Step Functions Execution Status Change" event: FAILED the invocation its execution ran when
    the run ended TIMED_OUT, ABORTED or FAILED and nothing recorded it; the invocation id when it did."""
    detail = event.get("detail") or {}
    code = _ENDED_EXECUTION.get(str(detail.get("status")))
    if code is None:
        return None
    try:
        invocation_id = str(json.loads(detail.get("input") or "{}").get("invocation_id") or "")
    except (TypeError, ValueError):
        invocation_id = ""
    item = checkpoints.get(invocation_id) if invocation_id else None
    if item is None or item.status in (InvocationStatus.SUCCEEDED, InvocationStatus.FAILED):
        return None
    stage = item.first_pending_stage() or STAGE_NAMES[-1]
    message = f"the state machine's execution {detail.get('name', '?')} ended {detail.get('status')}"
    if detail.get("cause"):
        message += f": {str(detail['cause'])[:300]}"
    return invocation_id if checkpoints.fail(invocation_id, stage=stage, code=code, message=message) else None
