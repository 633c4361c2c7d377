"""``make chaos``: many invocations from concurrent clients against a local stack with faults injected.

The stack runs in a subprocess with ``HARMONIC_FAULTS`` (transient failures, crashes after side effects,
duplicate deliveries) and a short visibility timeout. Clients submit a mix of modes, including a few
permanently bad clips, wait for each invocation, and resume the ones whose retries ran out (what a user
does with a FAILED ``retries_exhausted``). Afterwards the stack's log is read to check that no stage of any
invocation completed twice. The last line is the verdict:

    chaos: N invocations, S succeeded, F failed as expected, L lost, D duplicated

Lost: not SUCCEEDED and not failed as expected by the deadline. Duplicated: a stage completion (or a
result) recorded more than once for one invocation. Both must be 0 and S + F = N; the exit status says so.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import local
from local.spawn import StackDidNotStart, start_stack_process

sys.path.insert(0, str(local.ROOT / "client"))
from harmonic_client import ApiError, Client

SPEECH = sorted((local.ROOT / "tests" / "data" / "speech").glob("*.wav"))
BAD_CLIP = b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x00\x00" + bytes(24)  # zero channels
COMPLETION_MESSAGES = ("stage completed", "stage succeeded")


def _one(client: Client, index: int, bad: bool, mode: str, deadline: float) -> tuple[str, str, str | None]:
    """(outcome, invocation id, detail): outcome in succeeded / failed_expected / lost."""
    audio = BAD_CLIP if bad else SPEECH[index % len(SPEECH)].read_bytes()
    accepted = client.submit(audio, mode=mode, idempotency_key=f"chaos-{index}")
    invocation_id = accepted["invocation_id"]
    resumes = 0
    while time.monotonic() < deadline:
        try:
            final = client.wait(invocation_id, timeout_s=max(1.0, deadline - time.monotonic()), poll_s=0.3)
        except TimeoutError:
            break
        if final["status"] == "SUCCEEDED":
            return ("failed_unexpectedly" if bad else "succeeded"), invocation_id, None
        error = final.get("error") or {}
        if bad and error.get("code") == "invalid_audio":
            return "failed_expected", invocation_id, None
        if error.get("code") in ("retries_exhausted", "dispatch_failed", "stage_timeout") and resumes < 5:
            resumes += 1
            try:
                client.resume(invocation_id)
            except ApiError as refused:
                if refused.status != 409:  # 409: someone else resumed it meanwhile
                    raise
            continue
        return "failed_unexpectedly", invocation_id, json.dumps(error)
    return "lost", invocation_id, None


def _duplicates(log_text: str, invocation_ids: set[str]) -> tuple[int, Counter]:
    completions: Counter = Counter()
    for line in log_text.splitlines():
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        invocation_id = record.get("invocation_id")
        if invocation_id in invocation_ids and record.get("message") in COMPLETION_MESSAGES:
            completions[(invocation_id, record.get("stage") or record.get("function_name"))] += 1
    duplicated = {invocation_id for (invocation_id, _), count in completions.items() if count > 1}
    return len(duplicated), completions


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make chaos", description=__doc__)
    parser.add_argument("--invocations", type=int, default=int(os.environ.get("CHAOS_INVOCATIONS", "200")))
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--bad", type=int, default=6, help="permanently bad clips among them")
    parser.add_argument("--fail-rate", type=float, default=0.12)
    parser.add_argument("--duplicate-rate", type=float, default=0.06)
    parser.add_argument("--crash-rate", type=float, default=0.05)
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds for the whole run")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    faults = {
        "fail_rate": args.fail_rate,
        "duplicate_rate": args.duplicate_rate,
        "crash_after_side_effect_rate": args.crash_rate,
        "seed": args.seed,
    }
    log_path = Path(tempfile.mkdtemp(prefix="harmonic-chaos-")) / "stack.log"
    try:
        stack = start_stack_process(
            log_path, environment={"HARMONIC_FAULTS": json.dumps(faults)}, visibility_timeout_s=2
        )
    except StackDidNotStart as error:
        raise SystemExit(str(error)) from None
    url = stack.base_url
    print(f"chaos against {url}: {args.invocations} invocations, {args.clients} clients, faults {faults}")
    rng = random.Random(args.seed)
    bad = set(rng.sample(range(args.invocations), min(args.bad, args.invocations)))
    modes = [rng.choice(("pipeline", "statemachine", "events")) for _ in range(args.invocations)]
    deadline = time.monotonic() + args.timeout
    started = time.perf_counter()
    outcomes: list[tuple[str, str, str | None]] = []
    lock = threading.Lock()

    def task(index: int) -> None:
        client = Client(url, auth="none", max_retries=8, timeout_s=60)
        outcome = _one(client, index, index in bad, modes[index], deadline)
        with lock:
            outcomes.append(outcome)
            if len(outcomes) % 25 == 0:
                print(
                    f"  {len(outcomes)}/{args.invocations} done after {time.perf_counter() - started:.0f} s",
                    flush=True,
                )

    try:
        with ThreadPoolExecutor(max_workers=args.clients) as pool:
            list(pool.map(task, range(args.invocations)))
    finally:
        stack.stop()
    counts = Counter(outcome for outcome, _, _ in outcomes)
    for outcome, invocation_id, detail in outcomes:
        if outcome in ("failed_unexpectedly", "lost"):
            print(f"  {outcome}: {invocation_id} {detail or ''}")
    duplicated, completions = _duplicates(log_path.read_text(errors="replace"), {i for _, i, _ in outcomes})
    injected = Counter()
    for line in log_path.read_text(errors="replace").splitlines():
        if "injected" in line:
            injected[
                "crash" if "after its side effects" in line else "duplicate" if "again" in line else "fail"
            ] += 1
    n = args.invocations
    succeeded, failed = counts["succeeded"], counts["failed_expected"]
    lost = n - succeeded - failed
    print(f"stage completions checked: {sum(completions.values())}; injected (log lines): {dict(injected)}")
    print(f"took {time.perf_counter() - started:.0f} s; stack log: {log_path}")
    verdict = f"{succeeded} succeeded, {failed} failed as expected, {lost} lost, {duplicated} duplicated"
    print(f"chaos: {n} invocations, {verdict}")
    return 0 if lost == 0 and duplicated == 0 and succeeded + failed == n else 1


if __name__ == "__main__":
    sys.exit(main())
