"""The cost model's arithmetic (bench/cost.py) against hand-computed cases.

Prices used below (bench/prices.json): Lambda $0.20 per 1M requests, $0.0000133334 (arm64) and
$0.0000166667 (x86_64) per GB-s; SQS $0.40 per 1M requests; Step Functions Standard $0.025 per 1K
transitions, Express $1.00 per 1M requests + $0.00001667 per GB-s; DynamoDB $0.625 per 1M WRU, $0.125 per
1M RRU; S3 $0.005 per 1K PUT, $0.0004 per 1K GET, $0.023 per GB-month; API Gateway REST $3.50 per 1M.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest

from bench import cost
from harmonic_service.stages import STAGE_NAMES

PRICES = cost.load_prices()
M = 1_000_000


def _workload(**overrides) -> cost.Workload:
    """Every function 1 GB, every stage 100 ms of DSP, no AWS-call time, no CPU stretch: easy by hand.
    No event bus unless the mode needs it (the bus's extras: test_the_bus_adds_the_end_and_its_audit)."""
    base = {
        "invocations": M,
        "clip_s": 5.0,
        "status_polls": 3,
        "idempotency_keys": 0.0,
        "retention_days": 7,
        "stage_memory_mb": dict.fromkeys(STAGE_NAMES, 1024),
        "api_memory_mb": 1024,
        "stage_ms": {stage: (100.0, 0.0) for stage in STAGE_NAMES},
        "api_submit_ms": 50.0,
        "api_status_ms": 50.0,
        "aws_call_ms": 0.0,
        "cpu_scaling": False,
        "artifact_bytes": (40_000.0, 224_000.0),
        "item_bytes": (3072, 3072),
        "envelope_bytes": 1000,
        "state_transitions": 10,
        "express_task_overhead_ms": 50.0,
        "express_memory_mb": 64.0,
        "bus_deployed": False,
        "event_bytes": 1000,
    }
    base.update(overrides)
    return cost.Workload(**base)


# --- the prices file ----------------------------------------------------------------------------------------


def test_prices_file_is_dated_and_sourced() -> None:
    datetime.date.fromisoformat(PRICES["as_of"])
    assert PRICES["region"] == "us-east-1"
    services = {"lambda", "sqs", "stepfunctions", "dynamodb", "s3", "apigateway"}
    assert set(PRICES["sources"]) >= services
    assert all(url.startswith("https://aws.amazon.com/") for url in PRICES["sources"].values())
    assert PRICES["lambda"]["gb_second"] == {"arm64": 0.0000133334, "x86_64": 0.0000166667}
    assert PRICES["dynamodb"]["write_request_units_per_million"] == 0.625  # after the 2024-11 price cut


def test_a_prices_file_without_date_or_sources_is_refused(tmp_path: Path) -> None:
    undated = {key: value for key, value in PRICES.items() if key != "as_of"}
    (tmp_path / "prices.json").write_text(json.dumps(undated))
    with pytest.raises(ValueError, match="as_of"):
        cost.load_prices(tmp_path / "prices.json")


# --- billing rules ------------------------------------------------------------------------------------------


def test_lambda_arithmetic_and_1_ms_rounding() -> None:
    # 1M requests at $0.20/M + 1M × 0.100 s × 1 GB × $0.0000133334 = 0.20 + 1.33334
    assert cost.lambda_cost(PRICES, M, 100.0, 1024, "arm64") == pytest.approx(1.53334, rel=1e-12)
    # 100.2 ms bills as 101 ms; x86: 0.20 + 1M × 0.101 s × 0.5 GB × $0.0000166667 = 0.20 + 0.84166835
    assert cost.lambda_cost(PRICES, M, 100.2, 512, "x86_64") == pytest.approx(1.04166835, rel=1e-12)
    assert cost.lambda_cost(PRICES, 0, 100.0, 1024, "arm64") == 0.0
    assert cost.billed_ms(100.0, 1) == 100
    assert cost.billed_ms(100.0001, 1) == 101
    assert cost.billed_ms(0.3, 1) == 1
    assert cost.billed_ms(0.0, 1) == 0


def test_express_rounds_to_100_ms_and_64_mb() -> None:
    assert cost.billed_ms(900.0, 100) == 900
    assert cost.billed_ms(901.0, 100) == 1000
    assert cost.billed_ms(1.0, 100) == 100
    assert cost.express_billed_mb(1, PRICES) == 64
    assert cost.express_billed_mb(64, PRICES) == 64
    assert cost.express_billed_mb(65, PRICES) == 128
    assert cost.express_billed_mb(200, PRICES) == 256


def test_sqs_requests_count_64_kb_chunks() -> None:
    assert cost.sqs_requests(1, PRICES) == 1
    assert cost.sqs_requests(65_536, PRICES) == 1
    assert cost.sqs_requests(65_537, PRICES) == 2
    assert cost.sqs_requests(256 * 1024, PRICES) == 4


def test_dynamodb_units() -> None:
    assert [cost.write_units(b) for b in (1, 1024, 1025, 3072, 6000)] == [1, 1, 2, 3, 6]
    assert [cost.read_units(b) for b in (1, 4096, 4097)] == [1, 1, 2]
    assert cost.read_units(4097, consistent=False) == 1


# --- modes by hand ------------------------------------------------------------------------------------------


def test_sync_mode_by_hand() -> None:
    items = cost.monthly_cost("sync", _workload(), PRICES)
    # one API request; one 1 GB API function running 6 × 100 ms: 0.20 + 1M × 0.6 GB-s × $0.0000133334;
    # one registry read (1 RRU) per invocation; nothing stored
    expected = {"api_gateway": 3.50, "lambda_requests": 0.20, "lambda_duration": 8.00004, "dynamodb": 0.125}
    assert items == pytest.approx(dict.fromkeys(cost.ITEMS, 0.0) | expected)
    x86 = cost.monthly_cost("sync", _workload(), PRICES, architecture="x86_64")
    assert x86["lambda_duration"] == pytest.approx(600_000 * 0.0000166667)  # 10.00002


# S3 storage of the hand workload: (40,000 + 5 × 224,000) bytes = 1,160,000 bytes per invocation;
# 1M × 1,160,000 / 2^30 = 1,080.334 GB, kept 7 of 30 days = 252.078 GB-month × $0.023 = $5.7978
STORAGE = M * 1_160_000 / 1024**3 * 7 / 30 * 0.023


def test_pipeline_mode_by_hand() -> None:
    items = cost.monthly_cost("pipeline", _workload(), PRICES)
    assert items["api_gateway"] == pytest.approx(14.00)  # submit + 3 polls = 4 × $3.50
    assert items["lambda_requests"] == pytest.approx(2.00)  # submit + 3 status + 6 stages = 10 × $0.20
    # GB-s: 4 API calls × 0.05 s + 6 stages × 0.1 s = 0.8 GB-s × 1M × $0.0000133334
    assert items["lambda_duration"] == pytest.approx(10.66672)
    # messages: API → ingest, then five stages send on = 6; × (send, receive, delete) = 18 × $0.40
    assert items["sqs"] == pytest.approx(7.20)
    # writes: create + 6 × (start, complete) = 13 × 3 WRU = 39, plus the sweeper's index entry and its
    # removal (2 × 1 WRU) and the history index's three changes (acceptance, RUNNING, the end: 3 × 1 WRU)
    # = 44 → $27.50; reads: 3 polls + 2 registry = 5 RRU
    assert items["dynamodb"] == pytest.approx(27.50 + 0.625)
    # 10 PUTs (clip; npz + json × 3; features, match, result) → $50; 5 GETs (the clip; ingest's and
    # denoise's .npz; normalize's twice, for features and match; respond reads the checkpoint) → $2
    assert items["s3_requests"] == pytest.approx(52.00)
    assert items["s3_storage"] == pytest.approx(STORAGE)
    assert items["step_functions"] == 0.0
    assert sum(items.values()) == pytest.approx(14 + 2 + 10.66672 + 7.2 + 28.125 + 52 + STORAGE)


def test_events_mode_by_hand() -> None:
    items = cost.monthly_cost("events", _workload(), PRICES)
    # published: InvocationSubmitted, a completion per stage (6), InvocationCompleted = 8 × $1.00 per million;
    # archived: 8 × 1,000 B × 1M = 7.45 GiB × $0.10 processed, kept 7 days: 7.45 × 7/30 GB-months × $0.023
    gib = 8 * 1000 * M / 1024**3
    assert items["eventbridge"] == pytest.approx(8.00 + gib * 0.10 + gib * 7 / 30 * 0.023)  # 8.785
    # delivered to the stage queues: one event each for ingest..match, five for respond (it reads five
    # stages) = 10 messages, and every event to the audit queue = 8: 18 × (send, receive, delete) × $0.40
    assert items["sqs"] == pytest.approx(18 * 3 * 0.40)
    # submit + 3 status + 6 stages + respond's 4 early events (refused: not every input is done yet) + the
    # audit function once per event (8)
    assert items["lambda_requests"] == pytest.approx(22 * 0.20)
    # writes: create + 6 × (start, complete) = 13 × 3 WRU, plus 4 refused starts × 3 WRU, plus 8 audit items
    # × 1 WRU, plus the sweeper's index (2 WRU) and the history index (3 WRU) = 64 WRU → $40.00; reads:
    # 3 polls + 2 registry = 5 RRU
    assert items["dynamodb"] == pytest.approx(40.00 + 0.625)
    assert items["step_functions"] == 0.0
    assert items["s3_requests"] == pytest.approx(52.00)  # the same stage I/O as the pipeline


def test_the_bus_adds_the_end_and_its_audit() -> None:
    """Deployed with the bus (the default "all"), a pipeline or state machine invocation publishes its end:
    one event, archived, and kept by the audit subscriber."""
    for mode in ("pipeline", "statemachine_standard"):
        without = cost.monthly_cost(mode, _workload(), PRICES)
        with_bus = cost.monthly_cost(mode, _workload(bus_deployed=True), PRICES)
        gib = 1000 * M / 1024**3
        assert with_bus["eventbridge"] - without["eventbridge"] == pytest.approx(
            1.00 + gib * 0.10 + gib * 7 / 30 * 0.023
        )
        assert with_bus["sqs"] - without["sqs"] == pytest.approx(3 * 0.40)  # the audit queue's message
        assert with_bus["lambda_requests"] - without["lambda_requests"] == pytest.approx(0.20)
        assert with_bus["dynamodb"] - without["dynamodb"] == pytest.approx(0.625)  # one audit item: 1 WRU
    assert cost.Workload().bus_deployed  # the model's default is the default deployment


def test_state_machine_modes_by_hand() -> None:
    standard = cost.monthly_cost("statemachine_standard", _workload(), PRICES)
    assert standard["step_functions"] == pytest.approx(10 * M * 0.025 / 1000)  # $250
    assert standard["sqs"] == 0.0
    assert standard["dynamodb"] == pytest.approx(28.125)  # the same checkpoints and indexes as the pipeline
    express = cost.monthly_cost("statemachine_express", _workload(), PRICES)
    # 6 × (100 ms + 50 ms task overhead) = 900 ms → 900 ms billed; 64 MB: 1M × 0.9 s × 0.0625 GB
    assert express["step_functions"] == pytest.approx(1.00 + M * 0.9 * 0.0625 * 0.00001667)  # 1.9376875
    slower = _workload(stage_ms={s: (101.0, 0.0) for s in STAGE_NAMES})
    rounded = cost.monthly_cost("statemachine_express", slower, PRICES)
    # 6 × 151 = 906 ms rounds up to 1,000 ms
    assert rounded["step_functions"] == pytest.approx(1.00 + M * 1.0 * 0.0625 * 0.00001667)  # 2.041875
    bigger = cost.monthly_cost("statemachine_express", _workload(express_memory_mb=65.0), PRICES)
    assert bigger["step_functions"] == pytest.approx(1.00 + M * 0.9 * 0.125 * 0.00001667)  # 128 MB


def test_aws_calls_are_charged_to_each_stage_function() -> None:
    without = cost.monthly_cost("pipeline", _workload(), PRICES)["lambda_duration"]
    with_calls = cost.monthly_cost("pipeline", _workload(aws_call_ms=10.0), PRICES)["lambda_duration"]
    # calls: 2 checkpoints + GETs + PUTs + registry reads + the next send: ingest, denoise, normalize
    # 2+1+2+1 = 6 each, features 2+1+1+1+1 = 6, match 6, respond 2+0+1 = 3 (summaries from the checkpoint)
    # → 33 × 10 ms at 1 GB
    assert with_calls - without == pytest.approx(33 * 0.010 * M * 0.0000133334)  # 4.400022
    standard = cost.monthly_cost("statemachine_standard", _workload(aws_call_ms=10.0), PRICES)
    assert standard["lambda_duration"] - without == pytest.approx(28 * 0.010 * M * 0.0000133334)  # no sends


def test_cpu_scaling_below_one_vcpu() -> None:
    scaled = cost.usage("pipeline", _workload(cpu_scaling=True), PRICES)
    ingest = next(run for run in scaled.functions if run.name == "ingest")
    assert ingest.duration_ms == pytest.approx(100.0 * 1769 / 1024)  # 172.75 ms, billed as 173 ms
    big = _workload(cpu_scaling=True, stage_memory_mb=dict.fromkeys(STAGE_NAMES, 2048))
    assert (
        next(r for r in cost.usage("pipeline", big, PRICES).functions if r.name == "ingest").duration_ms
        == 100
    )


def test_item_growth_and_idempotency_writes() -> None:
    # the item grows 1 KB → 7 KB over 6 stages: 1, 2, …, 7 KB after each; create 1 WRU, stage k's start
    # (k+1) and completion (k+2) for k = 0..5: 1 + Σ(2k + 3) = 1 + 48 = 49 WRU, the sweeper's index 2 and
    # the history index 3; polls read 7 KB: 2 RRU each
    u = cost.usage("pipeline", _workload(item_bytes=(1024, 7168)), PRICES)
    assert u.ddb_write_units == 49 + 2 + 3
    assert u.ddb_read_units == 3 * 2 + 2
    keyed = cost.usage("pipeline", _workload(idempotency_keys=1.0), PRICES)
    assert keyed.ddb_write_units == 44 + 2  # Powertools: in-progress record, then completed


def test_large_envelopes_take_more_sqs_requests() -> None:
    items = cost.monthly_cost("pipeline", _workload(envelope_bytes=70_000), PRICES)
    assert items["sqs"] == pytest.approx(2 * 7.20)  # two 64 KB chunks per request


def test_zero_invocations_cost_nothing_and_unknown_mode_is_refused() -> None:
    for mode in cost.MODES:
        assert sum(cost.monthly_cost(mode, _workload(invocations=0), PRICES).values()) == 0.0
    with pytest.raises(ValueError, match="unknown mode"):
        cost.monthly_cost("carrier-pigeon", _workload(), PRICES)


def test_cost_scales_linearly_with_invocations() -> None:
    one = cost.monthly_cost("pipeline", _workload(), PRICES)
    hundred = cost.monthly_cost("pipeline", _workload(invocations=100 * M), PRICES)
    assert sum(hundred.values()) == pytest.approx(100 * sum(one.values()))


# --- inputs -------------------------------------------------------------------------------------------------


def test_stage_io_comes_from_the_declarations() -> None:
    assert list(cost.STAGE_IO) == list(STAGE_NAMES)
    # audio stages read one .npz (ingest the clip) and write .npz + .json
    for name in ("ingest", "denoise", "normalize"):
        assert (cost.STAGE_IO[name].s3_gets, cost.STAGE_IO[name].s3_puts) == (1, 2)
    # features decides whether match runs (a registry count); match reads the registry itself
    assert cost.STAGE_IO["features"].registry_reads == 1
    assert cost.STAGE_IO["match"].registry_reads == 1
    assert cost.STAGE_IO["normalize"].registry_reads == 0
    assert cost.STAGE_IO["respond"] == cost.StageIO(s3_gets=0, s3_puts=1, sends_next=False)


def test_transitions_come_from_the_state_machine(tmp_path: Path) -> None:
    # StartAtStage, Ingest, AfterIngest, Denoise, Normalize, FeaturesAndMatch (a Parallel state) and its
    # branches' Features and Match, Respond, Succeeded
    assert cost.happy_path_transitions() == 10
    asl = {
        "StartAt": "Route",
        "States": {
            "Route": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.stage", "StringEquals": "a", "Next": "A"}],
                "Default": "Oops",
            },
            "A": {"Type": "Task", "Next": "Tidy"},
            "Tidy": {"Type": "Pass", "Next": "Done"},
            "Done": {"Type": "Succeed"},
            "Oops": {"Type": "Fail"},
        },
    }
    (tmp_path / "asl.json").write_text(json.dumps(asl))
    assert cost.happy_path_transitions(tmp_path / "asl.json", stages=("a",)) == 4


def test_measurements_are_read_and_missing_ones_fall_back(tmp_path: Path) -> None:
    missing = cost.workload_from_measurements(tmp_path / "absent.json")
    assert missing.source == "documented defaults"
    assert missing.stage_ms == cost.DEFAULT_STAGE_MS
    measured = {
        "measured_at": "2026-11-25T06:00:00+00:00",
        "machine": {"platform": "Linux-x86_64", "cpus": 2, "python": "3.11.7"},
        "stage_ms_model": {stage: [1.0, 2.0] for stage in STAGE_NAMES},
        "api_ms": {"submit": 30.0, "status": 12.0},
        "footprint": {
            "artifact_bytes_model": [3000, 224000],
            "item_bytes": {"created": 600, "final": 3800},
            "envelope_bytes": 380,
        },
    }
    (tmp_path / "operating.json").write_text(json.dumps(measured))
    workload = cost.workload_from_measurements(tmp_path / "operating.json", clip_s=30.0)
    assert workload.stage_ms["features"] == (1.0, 2.0)
    assert (workload.api_submit_ms, workload.api_status_ms) == (30.0, 12.0)
    assert workload.item_bytes == (600, 3800)
    assert workload.envelope_bytes == 380
    assert workload.clip_s == 30.0
    assert "2026-11-25" in workload.source


def test_cli_json_and_the_statemachine_alias(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rc = cost.main(
        [
            "--invocations",
            "1000",
            "--mode",
            "statemachine",
            "--json",
            "--results",
            str(tmp_path / "none.json"),
        ]
    )
    assert rc == 0
    document = json.loads(capsys.readouterr().out)
    assert set(document["modes"]) == {"statemachine_standard", "statemachine_express"}
    assert document["prices"]["as_of"] == PRICES["as_of"]
    standard = document["modes"]["statemachine_standard"]
    assert standard["monthly_usd"]["step_functions"] == pytest.approx(1000 * 10 * 0.025 / 1000)
    assert standard["total_usd"]["x86_64"] > standard["total_usd"]["arm64"]


def test_cli_table_says_when_defaults_are_used(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert cost.main(["--results", str(tmp_path / "absent.json")]) == 0
    captured = capsys.readouterr()
    assert "documented defaults" in captured.err
    for mode in cost.MODES:
        assert mode in captured.out
