"""``make chaos``: many invocations from concurrent clients against a local stack with faults injected, in
every asynchronous mode, with real kills.

The stack runs in a subprocess with its stage functions in worker processes, a short visibility timeout, a
short function timeout (enforced: a call past it kills its worker) and the sweeper every two seconds. Its
``HARMONIC_FAULTS`` inject transient failures, crashes after side effects, duplicate deliveries, latency, and
**SIGKILLs of the worker** in the middle of a stage: after its side effects and before its checkpoint, or
after its checkpoint and before its acknowledgement. Malformed messages are put on every stage queue and on
the bus as well. Clients submit a mix of modes, including a few permanently bad clips, wait for each
invocation, and resume the ones that FAILED for a reason a user would retry (retries exhausted, stalled).

Then the store is read, never the logs, for what matters:

- duplicated: an invocation with a stage whose checkpoint counts more than one completion;
- stuck: an invocation still ACCEPTED or RUNNING after its deadline plus the sweeper's period;
- lost: not SUCCEEDED and not failed as expected;

and the stack's log for the workers killed (its sandboxes log each death), and for when each injected kill
hit which invocation: the time from a kill to the invocation's next end that a client saw (SUCCEEDED, or
FAILED and so resumable) is the recovery time, printed as percentiles. The summary lines:

    chaos: N invocations, S succeeded, F failed as expected, L lost, D duplicated, K workers killed, T stuck
    chaos[pipeline]: ...   (one line per mode)

The exit status is 0 when L = D = T = 0, S + F = N, the malformed messages all reached a dead-letter queue,
and at least ``--min-kills`` workers were killed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import local
from harmonic_service.stages import STAGE_NAMES
from local.spawn import StackDidNotStart, StackProcess, start_stack_process

sys.path.insert(0, str(local.ROOT / "client"))
from harmonic_client import ApiError, Client

SPEECH = sorted((local.ROOT / "tests" / "data" / "speech").glob("*.wav"))
BAD_CLIP = b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x00\x00" + bytes(24)  # zero channels
MODES = ("pipeline", "statemachine", "events")
# Errors a user resumes after: the stage's retries ran out, or the watchdog found it stalled.
RESUMABLE = ("retries_exhausted", "dispatch_failed", "stalled", "execution_timed_out", "execution_aborted")
VISIBILITY_TIMEOUT_S = 2
FUNCTION_TIMEOUT_S = 5
SWEEP_PERIOD_S = 2
PREFIX = "harmonic-local"  # local.stack.NAMES
# A worker's death, as local/sandboxes.py logs it: "<handler module> worker <pid> exited (code -9) ..."
_DEATH = re.compile(r"harmonic_service\.handlers\.(?P<module>\w+) worker \d+ (exited|timed out)")
_MODULE_MODE = {"pipeline": "pipeline", "statemachine": "statemachine", "events": "events"}
# An injected kill, as faults.maybe_kill prints it
_KILL = re.compile(
    r"injected kill of worker \d+ in \w+ .*\(invocation (?P<id>[0-9a-f-]{36}), at (?P<at>[\d.]+)\)"
)


@dataclass
class Outcome:
    invocation_id: str
    mode: str
    result: str  # succeeded, failed_expected, failed_unexpectedly, lost
    detail: str = ""
    ends: list[float] = field(default_factory=list)  # when the client saw it SUCCEEDED or FAILED (epoch s)


def _one(client: Client, index: int, bad: bool, mode: str, deadline: float) -> Outcome:
    audio = BAD_CLIP if bad else SPEECH[index % len(SPEECH)].read_bytes()
    accepted = client.submit(audio, mode=mode, idempotency_key=f"chaos-{index}")
    invocation_id = accepted["invocation_id"]
    resumes = 0
    ends: list[float] = []
    while time.monotonic() < deadline:
        try:
            final = client.wait(invocation_id, timeout_s=max(1.0, deadline - time.monotonic()), poll_s=0.3)
        except TimeoutError:
            break
        ends.append(time.time())
        if final["status"] == "SUCCEEDED":
            return Outcome(invocation_id, mode, "failed_unexpectedly" if bad else "succeeded", ends=ends)
        error = final.get("error") or {}
        if bad and error.get("code") == "invalid_audio":
            return Outcome(invocation_id, mode, "failed_expected", ends=ends)
        if error.get("code") in RESUMABLE and resumes < 8:
            resumes += 1
            try:
                client.resume(invocation_id)
            except ApiError as refused:
                if refused.status != 409:  # 409: someone else resumed it meanwhile
                    raise
            continue
        return Outcome(invocation_id, mode, "failed_unexpectedly", json.dumps(error), ends=ends)
    return Outcome(invocation_id, mode, "lost", ends=ends)


def recovery_times(log_text: str, outcomes: list[Outcome]) -> list[float]:
    """Per injected kill: seconds from the kill to the next end of its invocation that a client saw
    (SUCCEEDED, or FAILED and so resumable). Kills whose invocation never ended again are left out (they are
    counted as lost or stuck)."""
    ends = {o.invocation_id: o.ends for o in outcomes}
    times = []
    for kill in _KILL.finditer(log_text):
        at = float(kill["at"])
        later = [end for end in ends.get(kill["id"], []) if end >= at]
        if later:
            times.append(min(later) - at)
    return sorted(times)


def _percentile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def _items(stack: StackProcess, invocation_ids: set[str]) -> dict[str, dict[str, Any]]:
    """The invocation items of the run, read from the store (DynamoDB, decoded)."""
    from boto3.dynamodb.types import TypeDeserializer

    dynamodb, decode = stack.aws("dynamodb"), TypeDeserializer()
    items: dict[str, dict[str, Any]] = {}
    pages = dynamodb.get_paginator("scan").paginate(TableName=f"{PREFIX}-invocations")
    for page in pages:
        for raw in page["Items"]:
            item = {key: decode.deserialize(value) for key, value in raw.items()}
            if item["invocation_id"] in invocation_ids:
                items[item["invocation_id"]] = item
    return items


def _duplicated(item: dict[str, Any]) -> bool:
    return any(int(stage.get("completions", 0)) > 1 for stage in item.get("stages", {}).values())


def _unfinished(items: dict[str, dict[str, Any]]) -> list[str]:
    return [i for i, item in items.items() if item["status"] in ("ACCEPTED", "RUNNING")]


def _stuck(stack: StackProcess, invocation_ids: set[str], limit_s: float) -> set[str]:
    """The invocations still ACCEPTED or RUNNING once their deadline plus the sweeper's period has passed
    (waiting for that moment, at most `limit_s`)."""
    items = _items(stack, invocation_ids)
    waiting = _unfinished(items)
    if not waiting:
        return set()
    due = max(float(items[i].get("deadline_at") or 0) for i in waiting) + 2 * SWEEP_PERIOD_S
    time.sleep(max(0.0, min(limit_s, due - time.time())))
    return set(_unfinished(_items(stack, set(waiting))))


def _poison(stack: StackProcess) -> int:
    """Put a malformed message on every stage queue of the pipeline and the events mode, and a malformed
    Harmonic event on the bus; how many were put."""
    sqs, events = stack.aws("sqs"), stack.aws("events")
    urls = [
        url
        for url in sqs.list_queues(QueueNamePrefix=PREFIX).get("QueueUrls", [])
        if not url.endswith("-dlq") and "-audit" not in url and "-notify" not in url
    ]
    for url in urls:
        sqs.send_message(QueueUrl=url, MessageBody='{"not": "an envelope"')
    events.put_events(
        Entries=[
            {
                "Source": "harmonic",
                "DetailType": "StageCompleted",
                "Detail": json.dumps({"schema_version": 1, "stage": STAGE_NAMES[0]}),  # no invocation
                "EventBusName": f"{PREFIX}-bus",
            }
        ]
    )
    return len(urls) + 1


def _dead_letters(stack: StackProcess) -> int:
    sqs = stack.aws("sqs")
    total = 0
    for url in sqs.list_queues(QueueNamePrefix=PREFIX).get("QueueUrls", []):
        if url.endswith("-dlq"):
            attributes = sqs.get_queue_attributes(
                QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
            )
            total += int(attributes["Attributes"]["ApproximateNumberOfMessages"])
    return total


def _kills(log_text: str) -> Counter:
    """Workers that died during a call, per mode (the sandboxes' log lines)."""
    return Counter(_MODULE_MODE.get(m["module"], m["module"]) for m in _DEATH.finditer(log_text))


def _line(label: str, outcomes: list[Outcome], duplicated: set[str], stuck: set[str], killed: int) -> str:
    counts = Counter(o.result for o in outcomes)
    ids = {o.invocation_id for o in outcomes}
    n, succeeded, failed = len(outcomes), counts["succeeded"], counts["failed_expected"]
    return (
        f"{label}: {n} invocations, {succeeded} succeeded, {failed} failed as expected, "
        f"{n - succeeded - failed} lost, {len(duplicated & ids)} duplicated, {killed} workers killed, "
        f"{len(stuck & ids)} stuck"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make chaos", description=__doc__)
    parser.add_argument("--invocations", type=int, default=int(os.environ.get("CHAOS_INVOCATIONS", "300")))
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--bad", type=int, default=6, help="permanently bad clips among them")
    parser.add_argument("--fail-rate", type=float, default=0.10)
    parser.add_argument("--duplicate-rate", type=float, default=0.06)
    parser.add_argument("--crash-rate", type=float, default=0.04)
    parser.add_argument("--kill-rate", type=float, default=0.05, help="per attempt, at each of two points")
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--min-kills", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=1200.0, help="seconds for the whole run")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    faults = {
        "fail_rate": args.fail_rate,
        "duplicate_rate": args.duplicate_rate,
        "crash_after_side_effect_rate": args.crash_rate,
        "kill_rate": args.kill_rate,
        "latency_ms": args.latency_ms,
        "seed": args.seed,
    }
    log_path = Path(tempfile.mkdtemp(prefix="harmonic-chaos-")) / "stack.log"
    environment = {
        "HARMONIC_FAULTS": json.dumps(faults),
        "LOCAL_FUNCTION_TIMEOUT_S": str(FUNCTION_TIMEOUT_S),
        "LOCAL_SWEEP_PERIOD_S": str(SWEEP_PERIOD_S),
    }
    try:
        stack = start_stack_process(
            log_path, environment=environment, visibility_timeout_s=VISIBILITY_TIMEOUT_S
        )
    except StackDidNotStart as error:
        raise SystemExit(str(error)) from None
    print(
        f"chaos against {stack.base_url}: {args.invocations} invocations, {args.clients} clients, "
        f"faults {faults}"
    )
    rng = random.Random(args.seed)
    bad = set(rng.sample(range(args.invocations), min(args.bad, args.invocations)))
    modes = [MODES[i % len(MODES)] for i in range(args.invocations)]
    rng.shuffle(modes)
    deadline = time.monotonic() + args.timeout
    started = time.perf_counter()
    outcomes: list[Outcome] = []
    lock = threading.Lock()

    def task(index: int) -> None:
        client = Client(stack.base_url, auth="none", max_retries=8, timeout_s=60)
        outcome = _one(client, index, index in bad, modes[index], deadline)
        with lock:
            outcomes.append(outcome)
            if len(outcomes) % 50 == 0:
                print(
                    f"  {len(outcomes)}/{args.invocations} done after {time.perf_counter() - started:.0f} s",
                    flush=True,
                )

    try:
        poisoned = _poison(stack)
        with ThreadPoolExecutor(max_workers=args.clients) as pool:
            list(pool.map(task, range(args.invocations)))
        ids = {o.invocation_id for o in outcomes}
        stuck = _stuck(stack, ids, limit_s=max(0.0, deadline - time.monotonic()) + 300)
        items = _items(stack, ids)
        duplicated = {i for i, item in items.items() if _duplicated(item)}
        dead_letters = _dead_letters(stack)
    finally:
        stack.stop()
    log_text = log_path.read_text(errors="replace")
    kills = _kills(log_text)
    recoveries = recovery_times(log_text, outcomes)
    for outcome in outcomes:
        if outcome.result in ("failed_unexpectedly", "lost"):
            print(f"  {outcome.result}: {outcome.invocation_id} ({outcome.mode}) {outcome.detail}")
    completions = sum(
        int(s.get("completions", 0)) for item in items.values() for s in item["stages"].values()
    )
    print(
        f"stage completions in the store: {completions}; malformed messages put: {poisoned}, messages in "
        f"dead-letter queues: {dead_letters}; took {time.perf_counter() - started:.0f} s; "
        f"stack log: {log_path}"
    )
    if recoveries:
        print(
            f"from a SIGKILL to a finished or resumable invocation ({len(recoveries)} kills): p50 "
            f"{_percentile(recoveries, 0.5):.1f} s, p95 {_percentile(recoveries, 0.95):.1f} s, max "
            f"{recoveries[-1]:.1f} s"
        )
    for mode in MODES:
        mine = [o for o in outcomes if o.mode == mode]
        print(_line(f"chaos[{mode}]", mine, duplicated, stuck, kills[mode]))
    print(_line("chaos", outcomes, duplicated, stuck, sum(kills.values())))
    counts = Counter(o.result for o in outcomes)
    clean = (
        counts["succeeded"] + counts["failed_expected"] == args.invocations and not duplicated and not stuck
    )
    return 0 if clean and dead_letters >= poisoned and sum(kills.values()) >= args.min_kills else 1


if __name__ == "__main__":
    sys.exit(main())
