"""`make cost`: the monthly AWS bill of N invocations for each mode, itemized, from measured stage times.

Usage: ``python bench/cost.py [--invocations 1000000] [--clip-s 5] [--mode pipeline] [--json]``.

Inputs: prices from bench/prices.json (dated, with sources), memory per function from stages.py and
cdk.json (infra/settings.py), stage durations measured by ``make bench`` (bench/results/operating.json:
milliseconds per stage as a fixed part plus a part per second of audio) or, when that file is missing,
the defaults below (measured on the local stack, 2 cores, 2026-11-25). What one invocation costs, per mode:

- sync (``/v1/analyze``): one API request, one API Lambda running the whole chain; nothing stored.
- pipeline: submit + status polls on the API; per stage run one Lambda invocation and three SQS requests
  (send, receive, delete; an envelope is far below one 64 KB request chunk); DynamoDB: the item's creation,
  a start and a completion write per stage, a read per poll; S3: the clip and each stage's artifacts.
- statemachine (Standard): the same, with state transitions instead of SQS (every state entered on the
  happy path of statemachines/harmonic.asl.json); Express: one request plus duration at 64 MB, 100 ms steps.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PRICES = ROOT / "bench" / "prices.json"
MEASURED = ROOT / "bench" / "results" / "operating.json"
ASL = ROOT / "statemachines" / "harmonic.asl.json"
MODES = ("sync", "pipeline", "statemachine_standard", "statemachine_express")
# (fixed ms, ms per second of audio) per stage when bench/results/operating.json is absent.
DEFAULT_STAGE_MS = {
    "ingest": (20.0, 3.0),
    "denoise": (8.0, 3.0),
    "normalize": (10.0, 1.0),
    "features": (12.0, 8.0),
    "match": (15.0, 4.0),
    "respond": (25.0, 0.0),
}
DEFAULT_API_MS = 25.0  # submit or status: a few DynamoDB/S3/SQS calls
FAILURE_PATH_STATES = {"UnexpectedStage", "RecordFailure", "Failed", "FailureNotRecorded"}


@dataclass(frozen=True)
class Workload:
    invocations: int = 1_000_000
    clip_s: float = 5.0
    status_polls: int = 3  # GET /v1/invocations/{id} per asynchronous invocation
    architecture: str = "arm64"
    retention_days: int = 7
    stage_memory_mb: dict[str, int] = field(default_factory=dict)
    api_memory_mb: int = 1536
    stage_ms: dict[str, tuple[float, float]] = field(default_factory=lambda: dict(DEFAULT_STAGE_MS))
    api_ms: float = DEFAULT_API_MS
    item_kb: float = 3.0  # the invocation item (stages, summaries) in DynamoDB
    # What a deployed stage spends on AWS calls besides its DSP (S3 get/put, two DynamoDB updates, an SQS
    # send: ~5 calls of ~8 ms); measured DSP times come from the local machine and do not include it.
    io_overhead_ms: float = 40.0
    state_transitions: int = 10


def load_prices(path: Path = PRICES) -> dict[str, Any]:
    prices = json.loads(path.read_text())
    if "as_of" not in prices or not prices.get("sources"):
        raise ValueError(f"{path}: prices need an as_of date and their sources")
    return prices


def happy_path_transitions(asl_path: Path = ASL) -> int:
    """States entered by a successful execution that runs every stage: all but the failure path."""
    states = json.loads(asl_path.read_text())["States"]
    return sum(1 for name in states if name not in FAILURE_PATH_STATES)


def lambda_cost(
    prices: dict, invocations: float, duration_ms: float, memory_mb: int, architecture: str
) -> float:
    """Requests plus GB-seconds, the duration rounded up to the billing granularity (1 ms)."""
    step = prices["lambda"]["duration_rounding_ms"]
    billed_s = math.ceil(duration_ms / step) * step / 1000.0
    gb_seconds = invocations * billed_s * memory_mb / 1024.0
    return (
        invocations * prices["lambda"]["requests_per_million"] / 1e6
        + gb_seconds * prices["lambda"]["gb_second"][architecture]
    )


def sqs_requests(payload_bytes: int, prices: dict) -> int:
    """Billed requests for one API call carrying `payload_bytes` (each 64 KB chunk is a request)."""
    return max(1, math.ceil(payload_bytes / prices["sqs"]["request_chunk_bytes"]))


def stage_duration_ms(workload: Workload, stage: str) -> float:
    fixed, per_second = workload.stage_ms[stage]
    return fixed + per_second * workload.clip_s


def monthly_cost(mode: str, workload: Workload, prices: dict) -> dict[str, float]:
    """Itemized monthly cost (USD) of `workload` in `mode`."""
    from harmonic_service.stages import STAGES

    n = workload.invocations
    arch = workload.architecture
    memory = {spec.name: workload.stage_memory_mb.get(spec.name, spec.memory_mb) for spec in STAGES}
    items: dict[str, float] = {}
    api_price = prices["apigateway"]["rest_requests_per_million"] / 1e6
    if mode == "sync":
        chain_ms = sum(stage_duration_ms(workload, spec.name) for spec in STAGES)
        items["api_gateway"] = n * api_price
        items["lambda_api"] = lambda_cost(prices, n, chain_ms, workload.api_memory_mb, arch)
        return items
    calls = 1 + workload.status_polls
    items["api_gateway"] = n * calls * api_price
    items["lambda_api"] = lambda_cost(prices, n * calls, workload.api_ms, workload.api_memory_mb, arch)
    items["lambda_stages"] = sum(
        lambda_cost(
            prices,
            n,
            stage_duration_ms(workload, spec.name) + workload.io_overhead_ms,
            memory[spec.name],
            arch,
        )
        for spec in STAGES
    )
    stages_run = len(STAGES)
    if mode == "pipeline":
        items["sqs"] = (
            n * stages_run * 3 * sqs_requests(2048, prices) * prices["sqs"]["requests_per_million"] / 1e6
        )
    elif mode == "statemachine_standard":
        transitions = n * workload.state_transitions
        items["step_functions"] = (
            transitions * prices["stepfunctions"]["standard_per_thousand_transitions"] / 1e3
        )
    elif mode == "statemachine_express":
        sfn = prices["stepfunctions"]
        total_ms = sum(stage_duration_ms(workload, spec.name) for spec in STAGES) + 50.0 * stages_run
        billed_s = (
            math.ceil(total_ms / sfn["express_duration_rounding_ms"])
            * sfn["express_duration_rounding_ms"]
            / 1000
        )
        gb_seconds = n * billed_s * sfn["express_memory_mb_minimum"] / 1024
        items["step_functions"] = (
            n * sfn["express_requests_per_million"] / 1e6 + gb_seconds * sfn["express_gb_second"]
        )
    else:
        raise ValueError(f"unknown mode {mode!r}; modes are {', '.join(MODES)}")
    write_units = (1 + 2 * stages_run) * math.ceil(workload.item_kb)
    read_units = workload.status_polls * math.ceil(workload.item_kb / 4) + 2  # polls + registry version reads
    ddb = prices["dynamodb"]
    items["dynamodb"] = (
        n
        * (
            write_units * ddb["write_request_units_per_million"]
            + read_units * ddb["read_request_units_per_million"]
        )
        / 1e6
    )
    puts = 1 + 2 * 3 + 3  # clip; npz+json of 3 audio stages; features, match, result json
    gets = stages_run + 5  # each stage's input; respond reads the summaries
    clip_bytes = workload.clip_s * 16_000 * 2 + workload.clip_s * 16_000 * 4 * 3  # WAV + three float32 npz
    gb_month = n * clip_bytes / 1024**3 * workload.retention_days / 30.0
    s3 = prices["s3"]
    items["s3"] = (
        n * (puts * s3["put_per_thousand"] + gets * s3["get_per_thousand"]) / 1e3 + gb_month * s3["gb_month"]
    )
    return items


def workload_from_measurements(**overrides: Any) -> Workload:
    """A Workload with memory from the CDK settings and stage times from `make bench`, when present."""
    base: dict[str, Any] = {"state_transitions": happy_path_transitions()}
    try:
        from infra.settings import Settings

        context = json.loads((ROOT / "cdk.json").read_text()).get("context", {})
        settings = Settings.from_context(context.get)
        base.update(stage_memory_mb=dict(settings.stage_memory_mb), api_memory_mb=settings.api_memory_mb)
        base.update(architecture=settings.architecture, retention_days=settings.retention_days)
    except Exception as error:  # infra's dependencies (aws-cdk-lib) are optional for this script
        print(f"(CDK settings not read: {error}; using stages.py defaults)", file=sys.stderr)
    if MEASURED.exists():
        measured = json.loads(MEASURED.read_text()).get("stage_ms_model")
        if measured:
            base["stage_ms"] = {stage: tuple(values) for stage, values in measured.items()}
    base.update(overrides)
    return Workload(**base)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="make cost", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--invocations", type=int, default=1_000_000)
    parser.add_argument("--clip-s", type=float, default=5.0)
    parser.add_argument("--mode", choices=MODES)
    parser.add_argument("--architecture", choices=["arm64", "x86_64"])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    sys.path[:0] = [str(ROOT / "functions"), str(ROOT)]
    prices = load_prices()
    overrides: dict[str, Any] = {"invocations": args.invocations, "clip_s": args.clip_s}
    if args.architecture:
        overrides["architecture"] = args.architecture
    workload = workload_from_measurements(**overrides)
    modes = [args.mode] if args.mode else list(MODES)
    report = {mode: monthly_cost(mode, workload, prices) for mode in modes}
    if args.json:
        print(
            json.dumps(
                {"prices_as_of": prices["as_of"], "workload": workload.__dict__, "monthly_usd": report},
                indent=2,
                default=str,
            )
        )
        return 0
    columns = sorted({item for items in report.values() for item in items})
    what = f"{args.invocations:,} invocations of {args.clip_s:g} s clips, {workload.architecture}"
    print(f"Monthly cost, {what}, prices {prices['region']} as of {prices['as_of']} (USD)")
    print(f"{'mode':<24}" + "".join(f"{c:>15}" for c in columns) + f"{'total':>12}")
    for mode, items in report.items():
        print(
            f"{mode:<24}"
            + "".join(f"{items.get(c, 0.0):>15.2f}" for c in columns)
            + f"{sum(items.values()):>12.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
