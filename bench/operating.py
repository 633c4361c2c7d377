"""Operating figures (run by `make bench` after bench/dsp.py): what each mode costs in time, measured.

Prints, and writes to bench/results/operating.json (read by bench/cost.py):

1. per-stage warm time of the stage functions for 1 s, 5 s and 30 s clips (median and p95), a fixed +
   per-audio-second model of each stage fitted to them, and the whole chain via /v1/analyze per length;
2. cold start: a fresh interpreter importing each handler module, beside a bare `import boto3`;
3. end-to-end latency on the local stack per mode (sync = /v1/analyze, pipeline, statemachine), p50/p95
   over ≥ 50 invocations of a 1 s clip, and throughput (invocations/s) with 2 concurrent clients;
4. the built layer's unzipped and zipped size (limit 150 MB unzipped).

Local-stack latencies include moto and an in-process poller, not Lambda's; they compare the modes'
orchestration overhead on one machine, they are not AWS figures.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from scipy.io import wavfile

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT / "functions", ROOT / "layers" / "harmonic" / "python", ROOT / "client", ROOT):
    sys.path.insert(0, str(path))

RESULTS = ROOT / "bench" / "results" / "operating.json"
SPEECH = sorted((ROOT / "tests" / "data" / "speech").glob("*.wav"))
SR = 16_000
HANDLERS = ("api", "pipeline", "statemachine")


def _clip(seconds: float) -> np.ndarray:
    speech = np.concatenate([wavfile.read(path)[1] for path in SPEECH]).astype(np.float64) / 32768
    reps = int(np.ceil(seconds * SR / speech.size))
    return np.tile(speech, reps)[: int(seconds * SR)].astype(np.float32)


def _wav_bytes(samples: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    wavfile.write(buffer, SR, (samples * 32767).astype(np.int16))
    return buffer.getvalue()


def _p(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def stage_times(runs: int = 7) -> dict:
    from harmonic_service.logic import stages
    from harmonic_service.logic.patterns import Pattern, build_artifact

    keyword = ROOT / "tests" / "data" / "keywords" / "enrol_music_0.wav"
    patterns = [Pattern("k", "music", "template", build_artifact("template", keyword.read_bytes())[0])]
    figures: dict[str, dict[str, dict[str, float]]] = {}
    for seconds in (1, 5, 30):
        wav = _wav_bytes(_clip(seconds) * 0.5 + 0.01 * np.random.default_rng(1).standard_normal(seconds * SR))
        samples: dict[str, list[float]] = {}
        for _ in range(runs):
            timings = {}
            started = time.perf_counter()
            audio = stages.ingest(wav).audio
            timings["ingest"] = time.perf_counter() - started
            for name, call in (
                ("denoise", lambda a: stages.denoise(a, SR).audio),
                ("normalize", lambda a: stages.normalize(a, SR).audio),
            ):
                started = time.perf_counter()
                audio = call(audio)
                timings[name] = time.perf_counter() - started
            for name, call in (
                ("features", lambda a: stages.features(a, SR)),
                ("match", lambda a: stages.match(a, SR, patterns)),
            ):
                started = time.perf_counter()
                call(audio)
                timings[name] = time.perf_counter() - started
            for name, value in timings.items():
                samples.setdefault(name, []).append(value * 1000)
        figures[f"{seconds}s"] = {
            name: {"median_ms": statistics.median(v), "p95_ms": _p(v, 95)} for name, v in samples.items()
        }
    return figures


def fit_stage_model(figures: dict) -> dict[str, list[float]]:
    """Per stage: [fixed ms, ms per audio second] by least squares over the 1/5/30 s medians."""
    model = {}
    seconds = np.array([1.0, 5.0, 30.0])
    for stage in figures["1s"]:
        medians = np.array([figures[f"{int(s)}s"][stage]["median_ms"] for s in seconds])
        slope, intercept = np.polyfit(seconds, medians, 1)
        model[stage] = [round(max(float(intercept), 0.0), 3), round(max(float(slope), 0.0), 3)]
    model["respond"] = [5.0, 0.0]  # assembling a result: JSON only
    return model


def cold_starts(repeats: int = 5) -> dict[str, float]:
    env = {
        "PYTHONPATH": f"{ROOT / 'functions'}:{ROOT / 'layers' / 'harmonic' / 'python'}",
        "PATH": "/usr/bin:/bin",
    }
    env.update(POWERTOOLS_TRACE_DISABLED="true", AWS_DEFAULT_REGION="us-east-1")

    def timed(code: str) -> float:
        values = []
        for _ in range(repeats):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True, env=env)
            values.append((time.perf_counter() - started) * 1000)
        return statistics.median(values)

    baseline = timed("pass")
    results = {"import boto3": timed("import boto3") - baseline}
    for handler in HANDLERS:
        results[f"handlers.{handler}"] = timed(f"import harmonic_service.handlers.{handler}") - baseline
    return results


def local_stack_latency(invocations: int = 50) -> dict:
    from harmonic_client import Client

    from local.stack import LocalSettings, LocalStack

    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    clip = _wav_bytes(_clip(1.0))
    results: dict[str, dict[str, float]] = {}
    with LocalStack(LocalSettings(port=0, visibility_timeout_s=2, throttle_rate=0)) as stack:
        client = Client(stack.base_url, auth="none")
        client.analyze(clip)  # warm every module
        handler_ms: dict[str, dict[str, list[float]]] = {}
        for seconds in (1, 5, 30):  # stage handlers as deployed: S3 in and out included (moto, local)
            noisy = _clip(seconds) * 0.5 + 0.01 * np.random.default_rng(2).standard_normal(seconds * SR)
            for _ in range(7):
                final = client.invoke(_wav_bytes(noisy.astype(np.float32)), mode="pipeline", wait=True)
                for stage in final["stages"]:
                    if stage.get("duration_ms") is not None:
                        handler_ms.setdefault(f"{seconds}s", {}).setdefault(stage["name"], []).append(
                            stage["duration_ms"]
                        )
        results["stage_handlers"] = {
            clip: {
                name: {"median_ms": statistics.median(v), "p95_ms": _p(v, 95)} for name, v in stages.items()
            }
            for clip, stages in handler_ms.items()
        }
        for seconds in (1, 5, 30):
            long_clip = _wav_bytes(_clip(seconds))
            chain = []
            for _ in range(7):
                started = time.perf_counter()
                client.analyze(long_clip)
                chain.append((time.perf_counter() - started) * 1000)
            results[f"analyze_{seconds}s"] = {
                "p50_ms": _p(chain, 50),
                "p95_ms": _p(chain, 95),
                "n": len(chain),
            }
        for mode in ("sync", "pipeline", "statemachine"):
            latencies = []
            for _ in range(invocations):
                started = time.perf_counter()
                if mode == "sync":
                    client.analyze(clip)
                else:
                    accepted = client.submit(clip, mode=mode)
                    final = client.wait(accepted["invocation_id"], poll_s=0.02)
                    assert final["status"] == "SUCCEEDED", final
                latencies.append((time.perf_counter() - started) * 1000)
            results[mode] = {"p50_ms": _p(latencies, 50), "p95_ms": _p(latencies, 95), "n": invocations}
        total = 40
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(lambda _: client.invoke(clip, mode="pipeline", wait=True), range(total)))
        results["throughput_2_clients"] = {
            "invocations_per_s": total / (time.perf_counter() - started),
            "n": total,
        }
    return results


def layer_sizes() -> dict[str, float]:
    try:
        from infra.layer_build import build_layer

        build = build_layer("harmonic", "arm64", "3.12", quiet=True)
    except Exception as error:  # building needs the package index; report instead of failing the bench
        return {"error": str(error)}
    return {"unzipped_mib": build.unzipped_bytes / 2**20, "zipped_mib": build.zipped_bytes / 2**20}


def main() -> int:
    started = time.perf_counter()
    report: dict = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
    }
    report["stages"] = stage_times()
    report["stage_ms_model"] = fit_stage_model(report["stages"])
    print("per-stage warm time (stage functions; median / p95 ms)")
    names = list(report["stages"]["1s"])
    print(f"{'clip':<6}" + "".join(f"{name:>20}" for name in names))
    for clip, stages in report["stages"].items():
        cells = "".join(f"{stages[n]['median_ms']:>11.1f} /{stages[n]['p95_ms']:>6.1f}" for n in names)
        print(f"{clip:<6}{cells}")
    print(f"model (fixed ms, ms per audio s): {report['stage_ms_model']}")

    report["cold_start_ms"] = cold_starts()
    print("\ncold start: fresh-process import (ms, interpreter start-up subtracted)")
    for name, value in report["cold_start_ms"].items():
        print(f"  {name:<28}{value:>8.0f}   ({value / report['cold_start_ms']['import boto3']:.1f}x boto3)")

    report["local_stack"] = local_stack_latency()
    print(
        "\nend to end on the local stack (ms; the modes with a 1 s clip, analyze_Ns: the whole chain on N s)"
    )
    handlers = report["local_stack"].pop("stage_handlers")
    report["stage_handlers"] = handlers
    print("\nper-stage warm handler time on the local stack (S3 in/out included; median / p95 ms)")
    names = list(handlers["1s"])
    print(f"{'clip':<6}" + "".join(f"{name:>20}" for name in names))
    for clip, stages in handlers.items():
        print(
            f"{clip:<6}"
            + "".join(f"{stages[n]['median_ms']:>11.1f} /{stages[n]['p95_ms']:>6.1f}" for n in names)
        )
    for mode, values in report["local_stack"].items():
        if mode.startswith("throughput"):
            print(f"  throughput, 2 clients, pipeline: {values['invocations_per_s']:.1f} invocations/s")
        else:
            p50, p95 = values["p50_ms"], values["p95_ms"]
            print(f"  {mode:<14} p50 {p50:>7.0f}   p95 {p95:>7.0f}   (n={values['n']})")

    report["layer"] = layer_sizes()
    layer = report["layer"]
    if "error" in layer:
        print(f"\nlayer: not built ({layer['error']})")
    else:
        verdict = "PASS" if layer["unzipped_mib"] * 2**20 < 150e6 else "FAIL"
        sizes = f"{layer['unzipped_mib']:.1f} MiB unzipped, {layer['zipped_mib']:.1f} MiB zipped"
        print(f"\nlayer (arm64, 3.12): {sizes} — {verdict} (< 150 MB)")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {RESULTS.relative_to(ROOT)} in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
