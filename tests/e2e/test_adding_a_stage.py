"""docs/adding-a-stage.md, followed on a copy of the repository: one new module and one line in the table.

The copy gets the recipe's example module (taken from the document itself, so the recipe and the test cannot
drift apart) and its one line in `STAGE_MODULES`; nothing else is edited. `toy_stage_probe.py` then runs in
the copy and reports what the generated ASL, the synthesized template, the API enum, the cost model,
`/v1/analyze`, the pipeline and the state machine (on the local stack, moto) made of the new stage.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "docs" / "adding-a-stage.md"
TABLE = Path("functions") / "harmonic_service" / "stages" / "__init__.py"
# What a checkout needs to run; not git, the virtualenv, node_modules, build caches or test data.
NOT_COPIED = {".git", ".venv", "node_modules", "build", "cdk.out", "tests", ".pytest_cache", ".ruff_cache"}
STAGE = "peak"


def recipe_module() -> str:
    """The example module of docs/adding-a-stage.md (the Python block between the toy-stage markers)."""
    text = RECIPE.read_text()
    block = re.search(r"<!-- toy-stage:begin -->\s*```python\n(.*?)```\s*<!-- toy-stage:end -->", text, re.S)
    assert block, "docs/adding-a-stage.md has no toy-stage example block"
    return block.group(1)


def add_one_line(table_text: str, stage: str, before: str) -> str:
    """The table with `"<stage>",` inserted as one line before the line naming `before`."""
    line = f'    "{before}",\n'
    assert table_text.count(line) == 1, f"the table has no single line {line!r}"
    return table_text.replace(line, f'    "{stage}",\n{line}')


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    copy = tmp_path_factory.mktemp("repo") / "harmonic"
    shutil.copytree(ROOT, copy, ignore=lambda _d, names: [n for n in names if n in NOT_COPIED])
    (copy / TABLE.parent / f"{STAGE}.py").write_text(recipe_module())
    table = copy / TABLE
    before = table.read_text()
    table.write_text(add_one_line(before, STAGE, before="respond"))
    changed = [
        line for line in table.read_text().splitlines() if line not in before.splitlines()
    ]  # exactly one new line
    assert changed == [f'    "{STAGE}",']
    shutil.copy(Path(__file__).with_name("toy_stage_probe.py"), copy / "toy_stage_probe.py")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MOTO_", "STAGE_NAME"))}
    env.update(PYTHONDONTWRITEBYTECODE="1", JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="20")
    result = subprocess.run(
        [sys.executable, "toy_stage_probe.py", STAGE, str(copy / "cdk.out")],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, f"the probe failed:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_table_places_the_stage_and_its_dependencies(report: dict[str, Any]) -> None:
    assert report["table"]["names"] == [
        "ingest",
        "denoise",
        "normalize",
        "features",
        "match",
        "peak",
        "respond",
    ]
    assert report["table"]["dependencies"] == ["normalize"]
    # features, match and peak all read only normalize: they may run together
    assert ["features", "match", "peak"] in report["table"]["parallel_groups"]


def test_the_generated_state_machine_has_its_task(report: dict[str, Any]) -> None:
    task = report["asl"]["task"]
    assert task["Type"] == "Task"
    assert task["Parameters"]["FunctionName"] == "${PeakFunctionArn}"
    # peak reads only normalize, like features and match: the three run together, as one Parallel state
    assert report["asl"]["parallel"] == {"FeaturesAndMatchAndPeak": ["Features", "Match", "Peak"]}
    assert task["End"] is True  # a branch; the Parallel state goes on to Respond
    assert task["Parameters"]["Payload"] == {
        "envelope.$": "$",
        "stage": "peak",
        "own_skip": True,
        "plan": False,
    }
    assert "TransientStageError" in json.dumps(task["Retry"])
    assert report["asl"]["start"]["peak"] == "FeaturesAndMatchAndPeak"  # a resume at peak reruns the group
    assert report["asl"]["top_level"].index("FeaturesAndMatchAndPeak") < report["asl"]["top_level"].index(
        "Respond"
    )


def test_the_template_has_its_queues_functions_event_sources_rules_and_alarms(report: dict[str, Any]) -> None:
    template = report["template"]
    # a queue and a DLQ in the pipeline and in the events mode
    assert len([q for q in template["queues"] if "DeadLetterQueue" in q]) == 2
    assert len([q for q in template["queues"] if "DeadLetterQueue" not in q]) == 2
    handlers = sorted(template["functions"].values())
    assert handlers == [
        "harmonic_service.handlers.events.handler",
        "harmonic_service.handlers.pipeline.handler",
        "harmonic_service.handlers.statemachine.handler",
    ]
    assert len(template["event_sources"]) == 2
    alarms = " | ".join(template["alarms"])
    # dead letters, oldest message, error rate, p95 duration, in both modes; its event rules' failed
    # deliveries; its failed attempts and poison messages (one alarm each, over every mode)
    assert len(template["alarms"]) == 11, alarms
    for what in ("reached its dead-letter queue", "oldest message", "invocations failed", "p95 duration"):
        assert alarms.count(what) == 2
    for what in ("could not deliver", "failed attempts", "a poison message"):
        assert alarms.count(what) == 1
    # its rules: after normalize (what it reads), and its resumes
    after = {"detail": {"stage": ["normalize"]}, "detail-type": ["StageCompleted", "StageSkipped"]}
    resumed = {"detail": {"stage": ["peak"]}, "detail-type": ["InvocationResumed"]}
    expected = sorted(json.dumps({**p, "source": ["harmonic"]}, sort_keys=True) for p in (after, resumed))
    assert template["rules"] == expected
    assert template["state_machine_mentions_it"]


def test_the_api_enum_and_openapi_name_it(report: dict[str, Any]) -> None:
    assert "peak" in report["api"]["stage_name"]
    assert '"peak"' in report["api"]["openapi"]


def test_the_cost_model_charges_it(report: dict[str, Any]) -> None:
    # reads the normalized audio (1 GET), writes its summary (1 PUT), no registry, sends the next envelope
    assert report["cost"]["stage_io"] == {"s3_gets": 1, "s3_puts": 1, "registry_reads": 0, "sends_next": True}
    assert "peak" in report["cost"]["functions"]


def test_analyze_the_pipeline_and_the_state_machine_run_it(report: dict[str, Any]) -> None:
    analyzed = report["local"]["analyze"]
    assert 0.0 < analyzed["rms"] < analyzed["peak"] <= 1.0
    assert analyzed["samples"] == 16_000  # one second at the analysis rate
    for mode, run in report["local"]["modes"].items():
        assert run["status"] == "SUCCEEDED", (mode, run["error"])
        assert run["stages"]["peak"] == "SUCCEEDED", mode
        assert run["stages"]["denoise"] == "SUCCEEDED", mode
        # the same stage code on the same clip: the same section in every mode
        assert run["section"] == analyzed, mode
