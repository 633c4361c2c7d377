"""Run inside a copy of the repository that has one more stage: report what every consumer of the table did.

`tests/e2e/test_adding_a_stage.py` copies the repository, follows docs/adding-a-stage.md (one module, one line
in the table) and runs this file there with ``python toy_stage_probe.py <stage> <outdir>``. It prints one JSON
object: the stage table, the generated ASL, the API's stage enum, the cost model, the synthesized template's
resources for the stage, and a clip through `/v1/analyze`, the pipeline and the state machine of the local
stack (moto), over HTTP with the client. The test makes the assertions.
"""

from __future__ import annotations

import io
import json
import sys
import typing
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
for path in (ROOT, ROOT / "functions", ROOT / "layers" / "harmonic" / "python", ROOT / "client"):
    sys.path.insert(0, str(path))


def clip_wav(seconds: float = 1.0, sr: int = 16_000) -> bytes:
    """A noisy 220 Hz tone (so that denoise runs too) as 16-bit PCM WAV."""
    import numpy as np
    from scipy.io import wavfile

    t = np.arange(int(seconds * sr)) / sr
    rng = np.random.default_rng(7)
    samples = 0.3 * np.sin(2 * np.pi * 220.0 * t) + 0.05 * rng.standard_normal(t.size)
    buffer = io.BytesIO()
    wavfile.write(buffer, sr, np.round(np.clip(samples, -1, 1) * 32767).astype(np.int16))
    return buffer.getvalue()


def table(stage: str) -> dict[str, Any]:
    from harmonic_service.stages import STAGE_NAMES, dependencies, parallel_groups

    return {
        "names": list(STAGE_NAMES),
        "dependencies": list(dependencies(stage)),
        "parallel_groups": [list(group) for group in parallel_groups()],
    }


def state_machine(stage: str) -> dict[str, Any]:
    from infra import asl

    asl.main([])
    definition = json.loads(asl.ASL_PATH.read_text())
    states = definition["States"]
    title = stage.title()
    parallel = {
        name: [branch["StartAt"] for branch in state["Branches"]]
        for name, state in states.items()
        if state["Type"] == "Parallel"
    }
    task = states.get(title)
    for state in states.values():
        for branch in state.get("Branches", []):
            task = branch["States"].get(title, task)
    return {
        "task": task,
        "parallel": parallel,
        "start": {c["StringEquals"]: c["Next"] for c in states["StartAtStage"]["Choices"]},
        "top_level": list(states),
    }


def api_enum() -> dict[str, Any]:
    from harmonic_service import api_models
    from scripts.export_openapi import generate

    document = generate()
    return {"stage_name": list(typing.get_args(api_models.StageName)), "openapi": document}


def cost_model(stage: str) -> dict[str, Any]:
    from dataclasses import asdict

    from bench import cost

    usage = cost.usage("pipeline", cost.Workload(), cost.load_prices())
    return {
        "stage_io": asdict(cost.STAGE_IO[stage]),
        "functions": [run.name for run in usage.functions],
        "monthly": cost.monthly_cost("pipeline", cost.Workload(), cost.load_prices()),
    }


def template(stage: str, outdir: str) -> dict[str, Any]:
    from infra.stack import create_app

    app, stack = create_app({"aws:cdk:bundling-stacks": []}, outdir=outdir, with_cdk_json=True)
    resources = app.synth().get_stack_by_name(stack.stack_name).template["Resources"]
    title = stage.title()

    def of(kind: str) -> dict[str, Any]:
        return {key: value for key, value in resources.items() if value["Type"] == kind}

    functions = {
        key: value["Properties"]
        for key, value in of("AWS::Lambda::Function").items()
        if value["Properties"].get("Environment", {}).get("Variables", {}).get("STAGE_NAME") == stage
    }
    return {
        "queues": sorted(
            key for key in of("AWS::SQS::Queue") if f"Queues{title}" in key or f"EventDriven{title}" in key
        ),
        "functions": {key: props["Handler"] for key, props in functions.items()},
        "event_sources": sorted(
            key
            for key, value in of("AWS::Lambda::EventSourceMapping").items()
            if value["Properties"]["FunctionName"].get("Ref") in functions
        ),
        "alarms": sorted(
            value["Properties"].get("AlarmDescription", "")
            for value in of("AWS::CloudWatch::Alarm").values()
            if any(
                f"Stage {name}:" in value["Properties"].get("AlarmDescription", "")
                for name in (stage, f"events-{stage}")
            )
        ),
        "rules": sorted(
            json.dumps(value["Properties"]["EventPattern"], sort_keys=True)
            for key, value in of("AWS::Events::Rule").items()
            if key.startswith(f"EventDriven{title}Rule")
        ),
        "state_machine_mentions_it": any(
            title in json.dumps(value["Properties"])
            for value in of("AWS::StepFunctions::StateMachine").values()
        ),
    }


def local_stack(stage: str) -> dict[str, Any]:
    from harmonic_client import Client
    from local.stack import LocalSettings, LocalStack

    wav = clip_wav()
    force_denoise = {"clean_snr_db": 200}
    with LocalStack(LocalSettings(port=0)) as stack:
        client = Client(stack.base_url, auth="none", timeout_s=60)
        analyzed = client.analyze(wav, options=force_denoise)
        runs = {}
        for mode in ("pipeline", "statemachine", "events"):
            done = client.invoke(wav, mode=mode, wait=True, options=force_denoise)
            runs[mode] = {
                "status": done["status"],
                "error": done.get("error"),
                "stages": {s["name"]: s["status"] for s in done["stages"]},
                "section": (done.get("result") or {}).get(stage),
            }
    return {"analyze": analyzed.get(stage), "modes": runs}


def main() -> None:
    stage, outdir = sys.argv[1], sys.argv[2]
    report = {
        "table": table(stage),
        "asl": state_machine(stage),
        "api": api_enum(),
        "cost": cost_model(stage),
        "template": template(stage, outdir),
        "local": local_stack(stage),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
