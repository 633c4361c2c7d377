"""Write client/harmonic_client/figures.json: the measured figures `harmonic choose` cites.

From bench/results/operating.json (`make bench`: latency per mode on the local stack, the parallel branch's
speedup) and the cost model (bench/cost.py with bench/prices.json, 1M invocations of 5 s clips, arm64). Run
by `make bench` and `make cost`; tests/unit/test_choose.py checks that the committed file is what this
script makes of the committed results, so the chooser never cites stale numbers.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT / "functions", ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from bench import cost  # noqa: E402 - after the path setup

OPERATING = ROOT / "bench" / "results" / "operating.json"
OUTPUT = ROOT / "client" / "harmonic_client" / "figures.json"
# tests/e2e/test_adding_a_stage.py adds a stage by editing this many files (its module and the table's line)
# and checks that every mode, the infra and the API include it.
FILES_TO_ADD_A_STEP = 2


def figures(measured: Path, prices: dict[str, Any]) -> dict[str, Any]:
    """The chooser's figures from a `make bench` report (`measured`) and the prices."""
    operating = json.loads(measured.read_text())
    local = operating["local_stack"]
    latency = {}
    for mode, values in local["latency"].items():
        latency[f"{mode}_p50"] = round(values["p50_ms"], 1)
        latency[f"{mode}_p95"] = round(values["p95_ms"], 1)
    latency["sync_30s_clip_p50"] = round(local["analyze_30s"]["p50_ms"], 1)
    branch = local["parallel_branch"]
    parallel = {
        "dsp_bound_speedup": {k: round(v, 2) for k, v in local["parallel_branch_dsp_bound"].items()},
        "local_vs_pipeline": {
            mode: {length: round(branch[f"{length}/{mode}"]["vs_pipeline"], 2) for length in ("5s", "30s")}
            for mode in ("statemachine", "events")
        },
    }
    workload = cost.workload_from_measurements(measured)
    modes = list(cost.MODES)
    totals = {
        mode: round(values["total_usd"]["arm64"], 2)
        for mode, values in cost.report(workload, prices, modes)["modes"].items()
    }
    per_million = {
        "sync": totals["sync"],
        "pipeline": totals["pipeline"],
        "statemachine": totals["statemachine_express"],
        "statemachine_standard": totals["statemachine_standard"],
        "events": totals["events"],
    }
    transition = prices["stepfunctions"]["standard_per_thousand_transitions"] * 1000
    return {
        "source": f"make bench of {operating['measured_at'][:10]} (local stack) and make cost "
        f"(prices of {prices['as_of']}, 1M 5 s clips, arm64)",
        "latency_ms": latency,
        "parallel_branch": parallel,
        "cost_per_million_usd": per_million,
        "cost_per_step_per_million_usd": {"statemachine_standard": round(transition, 2)},
        "files_to_add_a_step": FILES_TO_ADD_A_STEP,
    }


def main() -> int:
    result = figures(OPERATING, cost.load_prices())
    OUTPUT.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
