"""The cost model's arithmetic against hand-computed cases."""

from __future__ import annotations

import datetime

import pytest

from bench import cost

PRICES = cost.load_prices()


def _workload(**overrides) -> cost.Workload:
    base = {
        "invocations": 1_000_000,
        "clip_s": 5.0,
        "status_polls": 3,
        "architecture": "arm64",
        "retention_days": 7,
        "stage_memory_mb": {
            "ingest": 1024,
            "denoise": 1024,
            "normalize": 1024,
            "features": 1024,
            "match": 1024,
            "respond": 1024,
        },
        "api_memory_mb": 1024,
        "stage_ms": {stage: (100.0, 0.0) for stage in cost.DEFAULT_STAGE_MS},
        "api_ms": 50.0,
        "item_kb": 3.0,
        "state_transitions": 10,
        "io_overhead_ms": 0.0,
    }
    base.update(overrides)
    return cost.Workload(**base)


def test_prices_file_is_dated_and_sourced() -> None:
    datetime.date.fromisoformat(PRICES["as_of"])
    assert set(PRICES["sources"]) >= {"lambda", "sqs", "stepfunctions", "dynamodb", "s3", "apigateway"}


def test_lambda_arithmetic_and_rounding() -> None:
    # 1M requests at $0.20/M + 1M × 0.100 s × 1 GB × $0.0000133334 = 0.20 + 1.33334
    assert cost.lambda_cost(PRICES, 1_000_000, 100.0, 1024, "arm64") == pytest.approx(1.53334, rel=1e-9)
    # 100.2 ms bills as 101 ms; x86: 1M × 0.101 × 0.5 GB × 0.0000166667 = 0.841668 + 0.20
    assert cost.lambda_cost(PRICES, 1_000_000, 100.2, 512, "x86_64") == pytest.approx(1.0416684, rel=1e-6)
    assert cost.lambda_cost(PRICES, 0, 100.0, 1024, "arm64") == 0.0


def test_sqs_requests_count_64_kb_chunks() -> None:
    assert cost.sqs_requests(1, PRICES) == 1
    assert cost.sqs_requests(65_536, PRICES) == 1
    assert cost.sqs_requests(65_537, PRICES) == 2
    assert cost.sqs_requests(256 * 1024, PRICES) == 4


def test_sync_mode_by_hand() -> None:
    items = cost.monthly_cost("sync", _workload(), PRICES)
    # API: 1M × $3.50/M; Lambda: 6 stages × 100 ms in one 1 GB function: 0.20 + 1M × 0.6 × 0.0000133334
    assert items == pytest.approx({"api_gateway": 3.50, "lambda_api": 0.20 + 8.00004})


def test_pipeline_mode_by_hand() -> None:
    items = cost.monthly_cost("pipeline", _workload(), PRICES)
    assert items["api_gateway"] == pytest.approx(4 * 3.50)  # submit + 3 polls
    assert items["lambda_api"] == pytest.approx(4 * 0.20 + 4 * 0.05 * 0.0000133334 * 1e6)
    assert items["lambda_stages"] == pytest.approx(6 * 1.53334)
    assert items["sqs"] == pytest.approx(6 * 3 * 0.40)  # send, receive, delete per stage
    # writes: (1 + 2 × 6) × 3 WRU = 39 → $24.375; reads: 3 polls + 2 = 5 RRU → $0.625
    assert items["dynamodb"] == pytest.approx(39 * 0.625 + 5 * 0.125)
    # 10 PUTs, 11 GETs per invocation; storage: (160 KB + 960 KB) × 1M × 7/30 GB-month
    storage = 1_000_000 * (5 * 16_000 * 2 + 5 * 16_000 * 12) / 1024**3 * 7 / 30 * 0.023
    assert items["s3"] == pytest.approx(10 * 5.0 + 11 * 0.4 + storage)


def test_state_machine_modes_by_hand() -> None:
    standard = cost.monthly_cost("statemachine_standard", _workload(), PRICES)
    assert standard["step_functions"] == pytest.approx(10 * 1_000_000 * 0.025 / 1000)  # $250
    assert "sqs" not in standard
    express = cost.monthly_cost("statemachine_express", _workload(), PRICES)
    # 6 × 100 ms + 6 × 50 ms overhead = 900 ms → 900 ms billed; 64 MB: 1M × 0.9 × 0.0625 GB-s
    assert express["step_functions"] == pytest.approx(1.00 + 1_000_000 * 0.9 * 0.0625 * 0.00001667)
    rounded = cost.monthly_cost(
        "statemachine_express", _workload(stage_ms={s: (101.0, 0.0) for s in cost.DEFAULT_STAGE_MS}), PRICES
    )
    # 906 ms rounds up to 1,000 ms
    assert rounded["step_functions"] == pytest.approx(1.00 + 1_000_000 * 1.0 * 0.0625 * 0.00001667)


def test_io_overhead_is_charged_to_each_stage_function() -> None:
    without = cost.monthly_cost("pipeline", _workload(), PRICES)["lambda_stages"]
    with_io = cost.monthly_cost("pipeline", _workload(io_overhead_ms=40.0), PRICES)["lambda_stages"]
    # 6 stages × 1M × 0.040 s × 1 GB × $0.0000133334
    assert with_io - without == pytest.approx(6 * 1_000_000 * 0.040 * 0.0000133334)


def test_zero_invocations_cost_nothing_and_unknown_mode_is_refused() -> None:
    for mode in cost.MODES:
        assert sum(cost.monthly_cost(mode, _workload(invocations=0), PRICES).values()) == 0.0
    with pytest.raises(ValueError, match="unknown mode"):
        cost.monthly_cost("carrier-pigeon", _workload(), PRICES)


def test_transitions_come_from_the_state_machine() -> None:
    assert cost.happy_path_transitions() == 10
