"""`make cost`: the monthly AWS bill of N invocations for each mode, itemized, from measured stage times.

Usage: ``python bench/cost.py [--invocations 1000000] [--clip-s 5] [--mode pipeline|statemachine|...]
[--polls 3] [--json]``.

Inputs:

- prices: bench/prices.json (us-east-1 list prices, dated ``as_of``, sources named; update it when AWS
  changes prices);
- memory per function: the stage declarations (functions/harmonic_service/stages/) with cdk.json's
  overrides (infra/settings.py), the API function's ``api_memory_mb``;
- durations and sizes: bench/results/operating.json, written by ``make bench`` (DSP milliseconds per stage
  as a fixed part plus a part per audio second, the API's submit/status times, artifact bytes, the invocation
  item's size, the envelope's size). When that file is missing, the documented defaults below are used, and
  the output says so.

What one invocation does, per mode (runner.py, service.py, docs/design.md; every stage runs, nothing fails):

- sync (``POST /v1/analyze``): one API request; one API Lambda runs the whole chain; one DynamoDB read (the
  pattern registry's version); nothing is stored.
- pipeline: submit (S3 PUT of the clip, the item's creation, an SQS send; with an ``Idempotency-Key`` two
  writes to the idempotency table) and ``--polls`` status requests (one consistent read each). Per stage: one
  Lambda invocation, two conditional checkpoint updates, its S3 GETs and PUTs (`stage_io()`), a registry read
  where match is decided; per message three SQS requests (send, receive, delete), each billed per 64 KB chunk.
  The invocations table's indexes: the sweeper's entry and its removal, and the history's projection changing
  three times (acceptance, RUNNING, the end), a write unit each.
- statemachine Standard: the same without SQS, plus the state transitions of the happy path of
  statemachines/harmonic.asl.json; Express: one request plus the execution's duration, rounded up to 100 ms,
  at its memory rounded up to 64 MB steps.

Stage Lambda durations = DSP time (stretched by 1,769 MB / memory below Lambda's one-vCPU size, unless
``--no-cpu-scaling``) + the stage's AWS calls × ``--aws-call-ms``; billed per 1 ms.
Not modelled: free tiers, volume tiers, CloudWatch Logs/metrics, X-Ray, KMS, data transfer, retries.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# The stage table (harmonic_service.stages) and the CDK settings (infra) are read from the repository.
for _path in (ROOT / "functions", ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))
PRICES = ROOT / "bench" / "prices.json"
MEASURED = ROOT / "bench" / "results" / "operating.json"
ASL = ROOT / "statemachines" / "harmonic.asl.json"
MODES = ("sync", "pipeline", "statemachine_standard", "statemachine_express", "events")
MODE_ALIASES = {
    "statemachine": ("statemachine_standard", "statemachine_express"),
    "standard": ("statemachine_standard",),
    "express": ("statemachine_express",),
}
ARCHITECTURES = ("arm64", "x86_64")
LAMBDA_ONE_VCPU_MB = 1769  # Lambda: "at 1,769 MB, a function has the equivalent of one vCPU"

# Documented defaults, used when bench/results/operating.json is absent: `make bench` of 2026-11-25
# (Linux x86_64, 2 CPUs, Python 3.11), rounded up. (fixed ms, ms per second of audio) per stage.
DEFAULT_STAGE_MS: dict[str, tuple[float, float]] = {
    "ingest": (1.0, 0.7),
    "denoise": (310.0, 90.0),  # DeepFilterNet3 since 2026-12-01 (make bench of that day); gating: (1.0, 2.3)
    "normalize": (1.0, 0.2),
    "features": (4.0, 3.5),
    "match": (2.0, 0.8),
    "respond": (0.1, 0.0),
}
DEFAULT_API_SUBMIT_MS = 25.0  # validate, S3 PUT, DynamoDB put, SQS send / StartExecution
DEFAULT_API_STATUS_MS = 10.0  # one DynamoDB read
DEFAULT_ARTIFACT_BYTES = (20_000.0, 224_000.0)  # S3 bytes per invocation: fixed + per audio second
DEFAULT_ITEM_BYTES = (1_000, 6_000)  # the invocation item at creation and at the end
DEFAULT_ENVELOPE_BYTES = 600

CHECKPOINT_WRITES_PER_STAGE = 2  # start_stage and complete_stage/succeed: conditional updates
IDEMPOTENCY_WRITES = 2  # Powertools idempotency: the in-progress record, then the completed one
SWEEP_INDEX_WRITES = 2  # the sweeper's keys-only index: the entry at acceptance, its removal at the end
HISTORY_INDEX_WRITES = 3  # the history's by-owner index: its projection changes at acceptance, RUNNING, end
SWEEPS_PER_MONTH = 30 * 24 * 60  # the sweeper's schedule: every minute, whatever the volume
SQS_REQUESTS_PER_MESSAGE = 3  # send, receive, delete
SQS_IDLE_POLLERS_PER_QUEUE = 5  # Lambda's event-source mapping starts with five pollers
SQS_LONG_POLL_S = 20


@dataclass(frozen=True)
class StageIO:
    """A stage's AWS calls besides its two checkpoint updates (runner.py; every stage runs)."""

    s3_gets: int
    s3_puts: int
    registry_reads: int = 0  # consistent reads of the pattern registry's version (tiny item: 1 RRU)
    sends_next: bool = True  # pipeline: sends the next stage's envelope

    @property
    def aws_calls(self) -> int:
        return CHECKPOINT_WRITES_PER_STAGE + self.s3_gets + self.s3_puts + self.registry_reads


def stage_io() -> dict[str, StageIO]:
    """Each stage's requests, from its declaration (harmonic_service.stages) and what the runner does:

    - S3 GETs: the clip (reads_clip) or the audio it works on (reads_audio); summaries of earlier stages come
      from the checkpoint item the stage's start returned (from S3 only past 8 KB, not modelled);
    - S3 PUTs: `<stage>.npz` when it produces audio, and `<stage>.json` (the last stage: `result.json` only);
    - registry reads: one when its run reads the patterns (uses_patterns), and one when the stage after it
      is optional and its skip rule counts patterns (evaluated at this stage's completion);
    - the pipeline sends the next stage's envelope after every stage but the last.
    """
    from harmonic_service.stages import STAGES

    table: dict[str, StageIO] = {}
    for index, stage in enumerate(STAGES):
        last = index == len(STAGES) - 1
        following = None if last else STAGES[index + 1]
        decides = following is not None and following.optional and following.uses_patterns
        table[stage.name] = StageIO(
            s3_gets=int(stage.reads_clip or stage.reads_audio),
            s3_puts=1 if last else 1 + int(stage.produces_audio),
            registry_reads=int(stage.uses_patterns) + int(decides),
            sends_next=not last,
        )
    return table


STAGE_IO: dict[str, StageIO] = stage_io()
# A stage nobody measured yet (a new one): 1 ms, nothing per audio second; the output names it.
UNMEASURED_STAGE_MS = (1.0, 0.0)
SUBMIT_S3_PUTS = 1  # invocations/<id>/input.wav


@dataclass(frozen=True)
class Workload:
    """One month of invocations and everything the model assumes about them."""

    invocations: int = 1_000_000
    clip_s: float = 5.0
    status_polls: int = 3  # GET /v1/invocations/{id} per asynchronous invocation
    idempotency_keys: float = 1.0  # fraction of submissions with an Idempotency-Key header
    retention_days: int = 7
    stage_memory_mb: Mapping[str, int] = field(default_factory=dict)
    api_memory_mb: int = 1536
    stage_ms: Mapping[str, tuple[float, float]] = field(default_factory=lambda: dict(DEFAULT_STAGE_MS))
    api_submit_ms: float = DEFAULT_API_SUBMIT_MS
    api_status_ms: float = DEFAULT_API_STATUS_MS
    aws_call_ms: float = 8.0  # one S3/DynamoDB/SQS call from a deployed function (assumed, not measured)
    cpu_scaling: bool = True
    artifact_bytes: tuple[float, float] = DEFAULT_ARTIFACT_BYTES
    item_bytes: tuple[int, int] = DEFAULT_ITEM_BYTES
    envelope_bytes: int = DEFAULT_ENVELOPE_BYTES
    state_transitions: int = 10
    express_task_overhead_ms: float = 20.0  # Step Functions' Lambda invoke per Task, besides the function
    express_memory_mb: float = 64.0  # definition + payloads: envelopes of ~1 KB
    # The default deployment (orchestration "all") has the event bus: every asynchronous mode then publishes
    # the invocation's end on it, the audit subscriber keeps every event, and the archive stores them.
    bus_deployed: bool = True
    event_bytes: int = 1_000  # one event as EventBridge stores it: the detail plus its envelope
    source: str = "documented defaults"


@dataclass
class FunctionRun:
    """Lambda invocations of one function per Harmonic invocation."""

    name: str
    requests: float
    duration_ms: float
    memory_mb: int


@dataclass
class Usage:
    """What one Harmonic invocation consumes, in billing units."""

    functions: list[FunctionRun] = field(default_factory=list)
    api_requests: float = 0.0
    sqs_requests: float = 0.0
    sfn_transitions: float = 0.0
    express_requests: float = 0.0
    express_gb_seconds: float = 0.0
    events_published: float = 0.0  # EventBridge custom events (64 KB chunks)
    archived_gb: float = 0.0  # event bytes the archive ingests
    archive_gb_months: float = 0.0
    ddb_write_units: float = 0.0
    ddb_read_units: float = 0.0
    s3_puts: float = 0.0
    s3_gets: float = 0.0
    s3_gb_months: float = 0.0

    def lambda_requests(self) -> float:
        return sum(run.requests for run in self.functions)

    def lambda_gb_seconds(self, rounding_ms: float = 1.0) -> float:
        return sum(
            run.requests * billed_ms(run.duration_ms, rounding_ms) / 1000 * run.memory_mb / 1024
            for run in self.functions
        )

    def summary(self, rounding_ms: float = 1.0) -> dict[str, float]:
        units = {k: v for k, v in asdict(self).items() if k != "functions"}
        units["lambda_requests"] = self.lambda_requests()
        units["lambda_gb_seconds"] = self.lambda_gb_seconds(rounding_ms)
        units["lambda_ms"] = {run.name: round(run.duration_ms, 3) for run in self.functions}
        return units


# --- prices and billing rules ---------------------------------------------------------------------------


def load_prices(path: Path = PRICES) -> dict[str, Any]:
    """The prices file; ValueError without an as_of date and sources."""
    prices = json.loads(path.read_text())
    if "as_of" not in prices or not prices.get("sources"):
        raise ValueError(f"{path}: prices need an as_of date and their sources")
    return prices


def billed_ms(duration_ms: float, step_ms: float) -> float:
    """A duration rounded up to the billing step (Lambda: 1 ms; Express: 100 ms)."""
    if duration_ms <= 0:
        return 0.0
    return math.ceil(round(duration_ms / step_ms, 9)) * step_ms


def lambda_cost(
    prices: dict, invocations: float, duration_ms: float, memory_mb: int, architecture: str
) -> float:
    """Requests plus GB-seconds, the duration rounded up to the billing granularity (1 ms)."""
    billed_s = billed_ms(duration_ms, prices["lambda"]["duration_rounding_ms"]) / 1000.0
    gb_seconds = invocations * billed_s * memory_mb / 1024.0
    return (
        invocations * prices["lambda"]["requests_per_million"] / 1e6
        + gb_seconds * prices["lambda"]["gb_second"][architecture]
    )


def sqs_requests(payload_bytes: int, prices: dict) -> int:
    """Billed requests for one API call carrying `payload_bytes` (each 64 KB chunk is a request)."""
    return max(1, math.ceil(payload_bytes / prices["sqs"]["request_chunk_bytes"]))


def express_billed_mb(memory_mb: float, prices: dict) -> int:
    """Express workflows' memory, billed in 64 MB steps (at least one)."""
    step = prices["stepfunctions"]["express_memory_step_mb"]
    return max(1, math.ceil(memory_mb / step)) * step


def write_units(item_bytes: float) -> int:
    """On-demand write request units of one write: 1 per KB (rounded up) of the larger item image."""
    return max(1, math.ceil(item_bytes / 1024))


def read_units(item_bytes: float, consistent: bool = True) -> float:
    """Read request units of one read: 1 per 4 KB strongly consistent, half that eventually consistent."""
    units = max(1, math.ceil(item_bytes / 4096))
    return units if consistent else units / 2


def happy_path_transitions(asl_path: Path = ASL, stages: tuple[str, ...] | None = None) -> int:
    """State transitions of a new invocation that runs every stage: states entered from StartAt to the end,
    the states of a Parallel state's branches included (Step Functions bills each).

    Choice states follow the branch whose `$.stage` is the next stage to run.
    """
    if stages is None:
        from harmonic_service.stages import STAGE_NAMES

        stages = STAGE_NAMES
    definition = json.loads(asl_path.read_text())
    pending = list(stages)  # the next stage's envelope is what a Choice looks at
    return _walk(definition, pending, str(asl_path))


def _walk(machine: dict[str, Any], pending: list[str], where: str) -> int:
    """States entered through `machine` (a definition or a Parallel branch), consuming `pending` stages."""
    states = machine["States"]
    name, entered = machine["StartAt"], 0
    while True:
        entered += 1
        if entered > len(states) * 2:
            raise ValueError(f"{where}: no end reached from {machine['StartAt']}")
        state = states[name]
        if state["Type"] == "Choice":
            wanted = pending[0] if pending else None
            branch = [c["Next"] for c in state["Choices"] if c.get("StringEquals") == wanted]
            name = branch[0] if branch else state["Default"]
            continue
        if state["Type"] == "Parallel":
            entered += sum(_walk(branch, pending, where) for branch in state["Branches"])
        elif state["Type"] == "Task" and pending:
            named = state.get("Parameters", {}).get("Payload", {})
            stage = named.get("stage") if isinstance(named, dict) else None
            pending.remove(stage if stage in pending else pending[0])
        if state["Type"] in ("Succeed", "Fail") or state.get("End"):
            return entered
        name = state["Next"]


# --- the model --------------------------------------------------------------------------------------------


def event_triggers() -> dict[str, int]:
    """Events mode: how many events reach each stage's queue per invocation (every stage runs): the
    completions of the stages it reads (harmonic_service.events.subscriptions), one for the first stage."""
    from harmonic_service.stages import STAGE_NAMES, dependencies

    return {stage: max(1, len(dependencies(stage))) for stage in STAGE_NAMES}


def dsp_ms(workload: Workload, stage: str, memory_mb: int) -> float:
    """A stage's measured DSP time for the clip, stretched for a function below one vCPU."""
    fixed, per_second = workload.stage_ms.get(stage, UNMEASURED_STAGE_MS)
    measured = fixed + per_second * workload.clip_s
    if workload.cpu_scaling:
        measured *= max(1.0, LAMBDA_ONE_VCPU_MB / memory_mb)
    return measured


def _memory(workload: Workload) -> dict[str, int]:
    from harmonic_service.stages import STAGES

    return {spec.name: int(workload.stage_memory_mb.get(spec.name, spec.memory_mb)) for spec in STAGES}


def usage(mode: str, workload: Workload, prices: dict) -> Usage:
    """What one invocation in `mode` consumes (see the module docstring)."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; modes are {', '.join(MODES)}")
    memory = _memory(workload)
    stages = list(memory)
    if set(stages) != set(STAGE_IO):
        raise ValueError(f"STAGE_IO ({', '.join(STAGE_IO)}) and the stage table ({', '.join(stages)}) differ")
    u = Usage()
    if mode == "sync":
        chain = sum(dsp_ms(workload, stage, workload.api_memory_mb) for stage in stages)
        u.functions.append(FunctionRun("api", 1, chain + workload.aws_call_ms, workload.api_memory_mb))
        u.api_requests = 1
        u.ddb_read_units = 1  # the registry's version
        return u

    pipeline = mode == "pipeline"
    events = mode == "events"
    u.api_requests = 1 + workload.status_polls
    u.functions.append(FunctionRun("api_submit", 1, workload.api_submit_ms, workload.api_memory_mb))
    if workload.status_polls:
        u.functions.append(
            FunctionRun("api_status", workload.status_polls, workload.api_status_ms, workload.api_memory_mb)
        )
    triggers = event_triggers() if events else {}
    for stage in stages:
        io = STAGE_IO[stage]
        # the pipeline sends the next envelope; in events mode every stage publishes what it did
        calls = io.aws_calls + (1 if (pipeline and io.sends_next) or events else 0)
        duration = dsp_ms(workload, stage, memory[stage]) + calls * workload.aws_call_ms
        u.functions.append(FunctionRun(stage, 1, duration, memory[stage]))
    for stage, count in triggers.items():
        if count > 1:  # a fan-in: the events before the last find it not ready (one refused start each)
            early = FunctionRun(f"{stage} (early events)", count - 1, workload.aws_call_ms, memory[stage])
            u.functions.append(early)

    # DynamoDB: the item grows from its created size to its final size, evenly over the stages; an update
    # is billed on the larger image: a stage's start on the size before it, its completion on the size after.
    created, final = workload.item_bytes
    sizes = [created + (final - created) * k / len(stages) for k in range(len(stages) + 1)]
    writes = write_units(created) + sum(
        write_units(sizes[k]) + write_units(sizes[k + 1]) for k in range(len(stages))
    )
    # a refused conditional write is billed too (fan-in events that arrive early)
    refused = sum(count - 1 for count in triggers.values()) * write_units(final)
    indexes = SWEEP_INDEX_WRITES + HISTORY_INDEX_WRITES  # projected items under 1 KB: one unit each
    u.ddb_write_units = writes + refused + workload.idempotency_keys * IDEMPOTENCY_WRITES + indexes
    registry_reads = sum(STAGE_IO[s].registry_reads for s in stages)
    u.ddb_read_units = workload.status_polls * read_units(final) + registry_reads

    u.s3_puts = SUBMIT_S3_PUTS + sum(STAGE_IO[s].s3_puts for s in stages)
    u.s3_gets = sum(STAGE_IO[s].s3_gets for s in stages)
    fixed, per_second = workload.artifact_bytes
    stored = fixed + per_second * workload.clip_s
    u.s3_gb_months = stored / 1024**3 * workload.retention_days / 30.0

    if pipeline:
        messages = 1 + sum(1 for s in stages if STAGE_IO[s].sends_next)  # the API's, then each stage's
        u.sqs_requests = messages * SQS_REQUESTS_PER_MESSAGE * sqs_requests(workload.envelope_bytes, prices)
    elif events:
        # the rules deliver each trigger to its stage's queue (what is published: _bus_subscribers)
        messages = sum(triggers.values())
        u.sqs_requests = messages * SQS_REQUESTS_PER_MESSAGE * sqs_requests(workload.envelope_bytes, prices)
    elif mode == "statemachine_standard":
        u.sfn_transitions = workload.state_transitions
    else:
        sfn = prices["stepfunctions"]
        task_ms = sum(
            run.duration_ms + workload.express_task_overhead_ms for run in u.functions[-len(stages) :]
        )
        seconds = billed_ms(task_ms, sfn["express_duration_rounding_ms"]) / 1000
        u.express_requests = 1
        u.express_gb_seconds = seconds * express_billed_mb(workload.express_memory_mb, prices) / 1024
    if workload.bus_deployed or events:
        _bus_subscribers(u, workload, prices, published=(len(stages) + 2) if events else 1)
    return u


def _bus_subscribers(u: Usage, workload: Workload, prices: dict, published: int) -> None:
    """Where the bus is deployed: the events an asynchronous invocation publishes (events mode: submitted,
    a completion per stage and the end; the other modes: the end only), each archived and kept by the
    audit subscriber (one SQS message, one invocation of its function, one DynamoDB write). Completion
    notifications are left out: they run only for requests that name a callback_url."""
    from harmonic_service.events import AUDIT

    chunk = prices["eventbridge"]["event_chunk_bytes"]
    u.events_published = published * max(1, math.ceil(workload.event_bytes / chunk))
    u.archived_gb = published * workload.event_bytes / 1024**3
    # the archive keeps events for its retention (cdk.json's event_archive_retention_days, like the data's)
    u.archive_gb_months = u.archived_gb * workload.retention_days / 30.0
    u.sqs_requests += published * SQS_REQUESTS_PER_MESSAGE * sqs_requests(workload.event_bytes, prices)
    # at a million a month (0.4/s) batches rarely fill: one invocation per event
    u.functions.append(FunctionRun("audit", published, workload.aws_call_ms, AUDIT.memory_mb))
    u.ddb_write_units += published * write_units(workload.event_bytes)


ITEMS = (
    "api_gateway",
    "lambda_requests",
    "lambda_duration",
    "sqs",
    "step_functions",
    "eventbridge",
    "dynamodb",
    "s3_requests",
    "s3_storage",
)


def price(u: Usage, invocations: float, prices: dict, architecture: str) -> dict[str, float]:
    """Monthly USD per item for `invocations` invocations consuming `u` each."""
    n = invocations
    lam, sfn, ddb, s3 = prices["lambda"], prices["stepfunctions"], prices["dynamodb"], prices["s3"]
    return {
        "api_gateway": n * u.api_requests * prices["apigateway"]["rest_requests_per_million"] / 1e6,
        "lambda_requests": n * u.lambda_requests() * lam["requests_per_million"] / 1e6,
        "lambda_duration": n
        * u.lambda_gb_seconds(lam["duration_rounding_ms"])
        * lam["gb_second"][architecture],
        "sqs": n * u.sqs_requests * prices["sqs"]["requests_per_million"] / 1e6,
        "step_functions": n
        * (
            u.sfn_transitions * sfn["standard_per_thousand_transitions"] / 1e3
            + u.express_requests * sfn["express_requests_per_million"] / 1e6
            + u.express_gb_seconds * sfn["express_gb_second"]
        ),
        "eventbridge": n
        * (
            u.events_published * prices["eventbridge"]["custom_events_per_million"] / 1e6
            + u.archived_gb * prices["eventbridge"]["archive_processing_per_gb"]
            + u.archive_gb_months * prices["eventbridge"]["archive_storage_per_gb_month"]
        ),
        "dynamodb": n
        * (
            u.ddb_write_units * ddb["write_request_units_per_million"]
            + u.ddb_read_units * ddb["read_request_units_per_million"]
        )
        / 1e6,
        "s3_requests": n * (u.s3_puts * s3["put_per_thousand"] + u.s3_gets * s3["get_per_thousand"]) / 1e3,
        "s3_storage": n * u.s3_gb_months * s3["gb_month"],
    }


def monthly_cost(
    mode: str, workload: Workload, prices: dict, architecture: str = "arm64"
) -> dict[str, float]:
    """Itemized monthly cost (USD) of `workload` in `mode` with Lambda on `architecture`."""
    return price(usage(mode, workload, prices), workload.invocations, prices, architecture)


def sweeper_monthly(prices: dict, run_ms: float = 100.0, memory_mb: int = 256) -> float:
    """The sweeper's schedule, whatever the volume: a run a minute (`run_ms` at `memory_mb`, arm64) and its
    query of the index (one read unit when nothing is overdue)."""
    lam, ddb = prices["lambda"], prices["dynamodb"]
    compute = SWEEPS_PER_MONTH * run_ms / 1000 * memory_mb / 1024 * lam["gb_second"]["arm64"]
    requests = SWEEPS_PER_MONTH * lam["requests_per_million"] / 1e6
    reads = SWEEPS_PER_MONTH * ddb["read_request_units_per_million"] / 1e6
    return compute + requests + reads


def sqs_idle_receives_monthly(prices: dict, queues: int = 6) -> float:
    """Empty receives of Lambda's pollers on idle queues (long polling): a fixed cost whatever the volume."""
    requests = queues * SQS_IDLE_POLLERS_PER_QUEUE * 30 * 86_400 / SQS_LONG_POLL_S
    return requests * prices["sqs"]["requests_per_million"] / 1e6


# --- inputs -------------------------------------------------------------------------------------------------


def workload_from_measurements(measured: Path = MEASURED, **overrides: Any) -> Workload:
    """A Workload with memory from the CDK settings and durations/sizes from `make bench`, when present."""
    base: dict[str, Any] = {"state_transitions": happy_path_transitions()}
    try:
        from infra.settings import Settings

        context = json.loads((ROOT / "cdk.json").read_text()).get("context", {})
        settings = Settings.from_context(context.get)
        base.update(stage_memory_mb=dict(settings.stage_memory_mb), api_memory_mb=settings.api_memory_mb)
        base.update(retention_days=settings.retention_days)
    except Exception as error:  # infra's dependencies (aws-cdk-lib) are optional for this script
        print(f"(CDK settings not read: {error}; using the stage declarations' defaults)", file=sys.stderr)
    if measured.exists():
        report = json.loads(measured.read_text())
        model = report.get("stage_ms_model") or {}
        if model:
            fallback = {**dict.fromkeys(STAGE_IO, UNMEASURED_STAGE_MS), **DEFAULT_STAGE_MS}
            base["stage_ms"] = {stage: tuple(model.get(stage) or fallback[stage]) for stage in STAGE_IO}
            machine = report.get("machine", {})
            base["source"] = (
                f"{measured.relative_to(ROOT) if measured.is_relative_to(ROOT) else measured}, measured "
                f"{report.get('measured_at', '?')[:10]} on {machine.get('platform', '?')}, "
                f"{machine.get('cpus', '?')} CPUs, Python {machine.get('python', '?')}"
            )
            unmeasured = [stage for stage in STAGE_IO if stage not in model]
            if unmeasured:
                base["source"] += f" (not measured there: {', '.join(unmeasured)}; defaults used)"
        api = report.get("api_ms") or {}
        if "submit" in api and "status" in api:
            base.update(api_submit_ms=api["submit"], api_status_ms=api["status"])
        footprint = report.get("footprint") or {}
        if footprint.get("artifact_bytes_model"):
            base["artifact_bytes"] = tuple(footprint["artifact_bytes_model"])
        if footprint.get("item_bytes"):
            base["item_bytes"] = (footprint["item_bytes"]["created"], footprint["item_bytes"]["final"])
        if footprint.get("envelope_bytes"):
            base["envelope_bytes"] = footprint["envelope_bytes"]
    base.update(overrides)
    return Workload(**base)


def report(workload: Workload, prices: dict, modes: list[str]) -> dict[str, Any]:
    """Everything `make cost` prints: usage per invocation and monthly USD per mode and architecture."""
    out: dict[str, Any] = {"modes": {}}
    for mode in modes:
        u = usage(mode, workload, prices)
        by_arch = {arch: price(u, workload.invocations, prices, arch) for arch in ARCHITECTURES}
        out["modes"][mode] = {
            "usage_per_invocation": u.summary(prices["lambda"]["duration_rounding_ms"]),
            "monthly_usd": by_arch["arm64"],
            "lambda_duration_x86_64_usd": by_arch["x86_64"]["lambda_duration"],
            "total_usd": {arch: sum(items.values()) for arch, items in by_arch.items()},
            "per_1000_invocations_usd": {
                arch: (sum(items.values()) / workload.invocations * 1000 if workload.invocations else 0.0)
                for arch, items in by_arch.items()
            },
        }
    # the pipeline and the events mode each have a queue per stage that Lambda's pollers long-poll
    idle = sqs_idle_receives_monthly(prices)
    # and with the bus, each of its other subscribers (audit, notifications) has one too
    from harmonic_service.events import SUBSCRIBERS

    out["fixed_monthly_usd"] = {
        "sqs_empty_receives_pipeline": idle,
        "sqs_empty_receives_events": idle,
        "sqs_empty_receives_bus_subscribers": sqs_idle_receives_monthly(prices, queues=len(SUBSCRIBERS)),
        "sweeper": sweeper_monthly(prices),
    }
    return out


def _print_table(workload: Workload, prices: dict, result: dict[str, Any], configured_arch: str) -> None:
    modes = result["modes"]
    print(
        f"Monthly cost (USD) of {workload.invocations:,} invocations of {workload.clip_s:g} s clips, "
        f"prices {prices['region']} as of {prices['as_of']} (bench/prices.json)"
    )
    headers = [
        ("API GW", lambda m: m["monthly_usd"]["api_gateway"]),
        ("λ requests", lambda m: m["monthly_usd"]["lambda_requests"]),
        ("λ GB-s arm64", lambda m: m["monthly_usd"]["lambda_duration"]),
        ("λ GB-s x86", lambda m: m["lambda_duration_x86_64_usd"]),
        ("SQS", lambda m: m["monthly_usd"]["sqs"]),
        ("Step Fns", lambda m: m["monthly_usd"]["step_functions"]),
        ("EventBridge", lambda m: m["monthly_usd"]["eventbridge"]),
        ("DynamoDB", lambda m: m["monthly_usd"]["dynamodb"]),
        ("S3 req", lambda m: m["monthly_usd"]["s3_requests"]),
        ("S3 GB-mo", lambda m: m["monthly_usd"]["s3_storage"]),
        ("total arm64", lambda m: m["total_usd"]["arm64"]),
        ("total x86", lambda m: m["total_usd"]["x86_64"]),
    ]
    width = max(14, *(len(f"{get(m):,.2f}") + 2 for m in modes.values() for _, get in headers))
    print(f"{'mode':<22}" + "".join(f"{name:>{width}}" for name, _ in headers))
    for mode, m in modes.items():
        print(f"{mode:<22}" + "".join(f"{get(m):>{width},.2f}" for _, get in headers))

    print("\nper invocation (billing units)")
    units = [
        ("λ req", "lambda_requests", "{:.0f}"),
        ("λ GB-s", "lambda_gb_seconds", "{:.4f}"),
        ("API req", "api_requests", "{:.0f}"),
        ("SQS req", "sqs_requests", "{:.0f}"),
        ("transitions", "sfn_transitions", "{:.0f}"),
        ("Express GB-s", "express_gb_seconds", "{:.4f}"),
        ("events", "events_published", "{:.0f}"),
        ("WRU", "ddb_write_units", "{:.1f}"),
        ("RRU", "ddb_read_units", "{:.1f}"),
        ("PUT", "s3_puts", "{:.0f}"),
        ("GET", "s3_gets", "{:.0f}"),
        ("KB stored", "s3_gb_months", None),
    ]
    print(f"{'mode':<22}" + "".join(f"{name:>13}" for name, _, _ in units))
    stored_kb = (workload.artifact_bytes[0] + workload.artifact_bytes[1] * workload.clip_s) / 1024
    for mode, m in modes.items():
        per = m["usage_per_invocation"]
        cells = [
            fmt.format(per[key]) if fmt else (f"{stored_kb:.0f}" if per[key] else "0")
            for _, key, fmt in units
        ]
        print(f"{mode:<22}" + "".join(f"{cell:>13}" for cell in cells))

    memory = _memory(workload)
    print(
        f"\ninputs: stage DSP times from {workload.source}; memory (MB) "
        + ", ".join(f"{k} {v}" for k, v in memory.items())
        + f", api {workload.api_memory_mb} (configured architecture: {configured_arch})"
    )
    print(
        f"  {workload.aws_call_ms:g} ms per AWS call from a stage (assumed), DSP stretched below "
        f"{LAMBDA_ONE_VCPU_MB} MB: {'yes' if workload.cpu_scaling else 'no'}; API submit "
        f"{workload.api_submit_ms:.0f} ms, status {workload.api_status_ms:.0f} ms; {workload.status_polls} "
        f"status polls; Idempotency-Key on {workload.idempotency_keys:.0%} of submits; "
        f"{workload.retention_days} days' retention; item {workload.item_bytes[0]:,} → "
        f"{workload.item_bytes[1]:,} bytes; envelope {workload.envelope_bytes} bytes; "
        f"{workload.state_transitions} transitions (Standard); "
        + (
            "bus deployed: every mode publishes the invocation's end, archived and audited "
            f"({workload.event_bytes} bytes an event)"
            if workload.bus_deployed
            else "no bus (events mode only)"
        )
    )
    fixed = result["fixed_monthly_usd"]["sqs_empty_receives_pipeline"]
    print(
        f"  plus, for the pipeline and for the events mode each, whatever the volume: ~${fixed:.2f}/month "
        "of empty SQS receives "
        f"(6 queues, {SQS_IDLE_POLLERS_PER_QUEUE} Lambda pollers each, "
        f"one {SQS_LONG_POLL_S} s long poll at a time); with the bus, its audit and notification "
        f"queues: ~${result['fixed_monthly_usd']['sqs_empty_receives_bus_subscribers']:.2f}/month; the "
        f"sweeper's schedule: ~${result['fixed_monthly_usd']['sweeper']:.2f}/month"
    )
    print(
        "  not included: free tiers, volume discounts, CloudWatch Logs/metrics, X-Ray, KMS, data "
        "transfer, retries. Prices change: update bench/prices.json."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="make cost", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--invocations", type=int, default=1_000_000, help="per month")
    parser.add_argument("--clip-s", type=float, default=5.0, help="clip length in seconds")
    parser.add_argument("--mode", choices=[*MODES, *MODE_ALIASES], help="one mode (default: all)")
    parser.add_argument("--polls", type=int, default=3, help="status polls per asynchronous invocation")
    parser.add_argument("--idempotency-keys", type=float, default=1.0, help="fraction of submits with one")
    parser.add_argument("--retention-days", type=int, help="S3 artifact lifetime (default: cdk.json)")
    parser.add_argument("--aws-call-ms", type=float, default=8.0, help="one AWS call from a stage function")
    parser.add_argument("--no-cpu-scaling", action="store_true", help="use measured DSP times as they are")
    parser.add_argument("--results", type=Path, default=MEASURED, help="make bench's operating.json")
    parser.add_argument("--prices", type=Path, default=PRICES)
    parser.add_argument("--json", action="store_true", help="JSON instead of tables")
    args = parser.parse_args(argv)
    if args.invocations < 0 or args.clip_s <= 0 or args.polls < 0 or not 0 <= args.idempotency_keys <= 1:
        parser.error("--invocations, --polls ≥ 0; --clip-s > 0; --idempotency-keys in [0, 1]")
    prices = load_prices(args.prices)
    overrides: dict[str, Any] = {
        "invocations": args.invocations,
        "clip_s": args.clip_s,
        "status_polls": args.polls,
        "idempotency_keys": args.idempotency_keys,
        "aws_call_ms": args.aws_call_ms,
        "cpu_scaling": not args.no_cpu_scaling,
    }
    if args.retention_days is not None:
        overrides["retention_days"] = args.retention_days
    workload = workload_from_measurements(args.results, **overrides)
    if workload.source == "documented defaults":
        print(
            f"note: {args.results} not found or incomplete: stage times, sizes and API times are the "
            "documented defaults in bench/cost.py (run `make bench` to measure them)",
            file=sys.stderr,
        )
    configured_arch = "arm64"
    with contextlib.suppress(OSError, KeyError, ValueError):
        configured_arch = json.loads((ROOT / "cdk.json").read_text())["context"].get("architecture", "arm64")
    modes = list(MODE_ALIASES.get(args.mode, (args.mode,))) if args.mode else list(MODES)
    result = report(workload, prices, modes)
    if args.json:
        inputs = asdict(workload)
        inputs["memory_mb"] = _memory(workload)
        inputs["configured_architecture"] = configured_arch
        document = {
            "prices": {"as_of": prices["as_of"], "region": prices["region"], "sources": prices["sources"]},
            "inputs": inputs,
            **result,
        }
        print(json.dumps(document, indent=2, default=str))
        return 0
    _print_table(workload, prices, result, configured_arch)
    return 0


if __name__ == "__main__":
    sys.exit(main())
