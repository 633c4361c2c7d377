"""``make spike``: a burst of invocations at the local stack, all at once, and what it does to the queues.

The stack runs in a subprocess with API Gateway's throttle as deployed (cdk.json: 50 requests/s, bursts of
100; beyond it 429 with ``Retry-After``, which the client honours), stage workers in processes, and per stage
queue as many pollers as the stage's ``maxConcurrency`` allows (capped by the workers). `--clients` threads
submit `--invocations` clips of one mode as fast as they can (the burst), then every invocation is waited
for; latencies are the service's own (accepted to finished, from the status document). A sampler
reads every stage queue's depth (visible + in flight) twice a second.

Reported: the submissions' 429s, the peak depth per stage queue and when it was reached, the drain time
(first submission to last completion), the end-to-end latency p50/p95 during the spike, and the lost ones
(not SUCCEEDED). The last line:

    spike: N invocations in M mode, S succeeded, L lost, drained in D s, p50 X s, p95 Y s,
           peak queue Q (stage)

(one line).

The exit status is 0 when nothing was lost.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import local
from harmonic_service.stages import STAGE_NAMES
from local.spawn import StackDidNotStart, StackProcess, start_stack_process

sys.path.insert(0, str(local.ROOT / "client"))
from harmonic_client import Client

CLIP = sorted((local.ROOT / "tests" / "data" / "speech").glob("*.wav"))[0]
PREFIX = "harmonic-local"  # local.stack.NAMES
SAMPLE_EVERY_S = 0.5


class DepthSampler(threading.Thread):
    """The depth (visible + in flight) of every stage queue of `mode`, twice a second: peaks and when."""

    def __init__(self, stack: StackProcess, mode: str) -> None:
        super().__init__(daemon=True)
        self.sqs = stack.aws("sqs")
        infix = "-events" if mode == "events" else ""
        urls = {
            url.rsplit("/", 1)[-1]: url for url in self.sqs.list_queues(QueueNamePrefix=PREFIX)["QueueUrls"]
        }
        self.urls = {
            stage: urls[name] for stage in STAGE_NAMES if (name := f"{PREFIX}{infix}-{stage}") in urls
        }
        self.peak: dict[str, int] = dict.fromkeys(self.urls, 0)
        self.peak_at: dict[str, float] = dict.fromkeys(self.urls, 0.0)
        self.started = time.monotonic()
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(SAMPLE_EVERY_S):
            for stage, url in self.urls.items():
                try:
                    attributes = self.sqs.get_queue_attributes(
                        QueueUrl=url,
                        AttributeNames=[
                            "ApproximateNumberOfMessages",
                            "ApproximateNumberOfMessagesNotVisible",
                        ],
                    )["Attributes"]
                except Exception:  # the stack is stopping
                    return
                depth = int(attributes["ApproximateNumberOfMessages"]) + int(
                    attributes["ApproximateNumberOfMessagesNotVisible"]
                )
                if depth > self.peak[stage]:
                    self.peak[stage], self.peak_at[stage] = depth, time.monotonic() - self.started


def _seconds(timestamp: str) -> float:
    """Epoch seconds of an ISO 8601 timestamp of the service (``...Z``)."""
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make spike", description=__doc__)
    parser.add_argument("--invocations", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--mode", choices=("pipeline", "statemachine", "events"), default="pipeline")
    parser.add_argument("--workers", type=int, default=3, help="worker processes per stage handler module")
    parser.add_argument("--timeout", type=float, default=3600.0)
    args = parser.parse_args(argv)
    if args.mode == "statemachine":
        print("(the state machine mode has no stage queues: the depths stay 0)")
    log_path = Path(tempfile.mkdtemp(prefix="harmonic-spike-")) / "stack.log"
    environment = {
        "LOCAL_SANDBOX_WORKERS": str(args.workers),
        "LOCAL_POLLERS_PER_QUEUE": str(args.workers),  # each stage: min(this, its maxConcurrency)
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }
    try:
        stack = start_stack_process(log_path, environment=environment)
    except StackDidNotStart as error:
        raise SystemExit(str(error)) from None
    print(
        f"spike against {stack.base_url}: {args.invocations} {args.mode} invocations "
        f"from {args.clients} clients"
    )
    audio = CLIP.read_bytes()
    throttled = [0]
    lock = threading.Lock()
    sampler = DepthSampler(stack, args.mode)
    deadline = time.monotonic() + args.timeout

    def submit(index: int) -> str:
        client = Client(stack.base_url, auth="none", max_retries=60, timeout_s=60)
        sleep = client.sleep

        def counting_sleep(seconds: float) -> None:  # the client sleeps before each retry of a 429
            with lock:
                throttled[0] += 1
            sleep(seconds)

        client.sleep = counting_sleep
        return client.submit(audio, mode=args.mode)["invocation_id"]

    def wait(invocation_id: str) -> dict[str, Any]:
        client = Client(stack.base_url, auth="none", max_retries=10, timeout_s=60)
        try:
            return client.wait(invocation_id, timeout_s=max(1.0, deadline - time.monotonic()))
        except TimeoutError:
            return {"status": "TIMED_OUT"}

    try:
        sampler.start()
        with ThreadPoolExecutor(max_workers=args.clients) as pool:
            submitted = list(pool.map(submit, range(args.invocations)))  # the burst: all of them first
            finals = list(pool.map(wait, submitted))
    finally:
        sampler.stopping.set()
        stack.stop()
    statuses = [final["status"] for final in finals]
    done = [final for final in finals if final["status"] == "SUCCEEDED"]
    # the service's own clock: accepted (created_at) to finished (updated_at), no polling in it
    latencies = [_seconds(final["updated_at"]) - _seconds(final["created_at"]) for final in done]
    first = min((_seconds(final["created_at"]) for final in done), default=0.0)
    finished = [_seconds(final["updated_at"]) - first for final in done]
    succeeded = statuses.count("SUCCEEDED")
    lost = args.invocations - succeeded
    drained = max(finished) if finished else float("nan")
    p50 = statistics.median(latencies) if latencies else float("nan")
    p95 = statistics.quantiles(latencies, n=20)[-1] if len(latencies) >= 2 else p50
    print(f"retries after 429 (API Gateway's throttle): {throttled[0]}")
    print("peak depth per stage queue (visible + in flight), and when:")
    for stage in sampler.peak:
        print(f"  {stage:<10} {sampler.peak[stage]:>5} at {sampler.peak_at[stage]:6.1f} s")
    worst = max(sampler.peak, key=lambda stage: sampler.peak[stage]) if sampler.peak else "-"
    print(f"stack log: {log_path}")
    print(
        f"spike: {args.invocations} invocations in {args.mode} mode, {succeeded} succeeded, {lost} lost, "
        f"drained in {drained:.0f} s, p50 {p50:.1f} s, p95 {p95:.1f} s, "
        f"peak queue {sampler.peak.get(worst, 0)} ({worst})"
    )
    return 0 if lost == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
