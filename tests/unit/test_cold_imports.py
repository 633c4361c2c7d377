"""Cold starts: the functions that never run a stage (the API: status polls, pattern listings, uploads; the
sweeper; the notification and audit subscribers) import neither numpy nor SciPy; the stage functions load
their DSP while Lambda initializes them (at full CPU), not in their first invocation. The times are
`make bench`'s (bench/operating.py), not a test's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DSP = ("numpy", "scipy")


def _run_as_lambda(code: str) -> object:
    """What `code` prints (JSON), run in a fresh interpreter set up as a Lambda function with tracing on."""
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith("POWERTOOLS_TRACE")},
        "PYTHONPATH": f"{ROOT / 'functions'}:{ROOT / 'layers' / 'harmonic' / 'python'}",
        "AWS_LAMBDA_FUNCTION_NAME": "harmonic-test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR",
        "LAMBDA_TASK_ROOT": str(ROOT / "functions"),  # the X-Ray SDK takes its Lambda set-up from it
    }
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _modules_after_import(module: str) -> set[str]:
    return set(_run_as_lambda(f"import sys, json, {module}; print(json.dumps(sorted(sys.modules)))"))  # type: ignore[arg-type]


def _loaded_after_import(module: str) -> set[str]:
    return {name.split(".")[0] for name in _modules_after_import(module)}


@pytest.mark.parametrize("handler", ["api", "sweeper", "notify", "audit"])
def test_functions_without_stages_do_not_import_the_dsp(handler: str) -> None:
    loaded = _loaded_after_import(f"harmonic_service.handlers.{handler}")
    assert "harmonic_service" in loaded
    assert not loaded & set(DSP), loaded & set(DSP)


@pytest.mark.parametrize("handler", ["pipeline", "events", "statemachine"])
def test_stage_functions_load_the_dsp_during_init(handler: str) -> None:
    assert set(DSP) <= _loaded_after_import(f"harmonic_service.handlers.{handler}")


def test_tracing_loads_the_aws_sdk_only_when_a_route_calls_aws() -> None:
    """The API function's Tracer does not patch at init (which imports botocore's client machinery and
    requests); the first AWS client patches botocore, so every AWS call still gets its subsegment."""
    loaded = _modules_after_import("harmonic_service.handlers.api")
    assert "aws_xray_sdk.core" in loaded  # tracing is on
    assert not {"botocore.client", "requests"} & loaded
    patched = _run_as_lambda(
        "import json\n"
        "import harmonic_service.handlers.api\n"
        "from aws_xray_sdk.core import patcher\n"
        "from harmonic_service.dal import clients\n"
        "before = sorted(patcher._PATCHED_MODULES)\n"
        "clients.dynamodb()\n"
        "print(json.dumps([before, sorted(patcher._PATCHED_MODULES)]))"
    )
    assert patched == [[], ["botocore"]]


HANDLERS = ("api", "sweeper", "notify", "audit", "pipeline", "events", "statemachine")


@pytest.mark.parametrize("handler", HANDLERS)
def test_handlers_do_not_build_powertools_parser_models(handler: str) -> None:
    """Powertools' batch types import every parser model when pydantic is loaded before them; the handlers
    package imports the batch utility first, so none of those models is built at a cold start."""
    loaded = _modules_after_import(f"harmonic_service.handlers.{handler}")
    assert "aws_lambda_powertools.utilities.batch.types" in loaded
    assert "aws_lambda_powertools.utilities.parser.models" not in loaded
