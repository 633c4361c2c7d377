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


def _loaded_after_import(module: str) -> set[str]:
    code = f"import sys, json, {module}; print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT / 'functions'}:{ROOT / 'layers' / 'harmonic' / 'python'}",
        "AWS_LAMBDA_FUNCTION_NAME": "harmonic-test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout))


@pytest.mark.parametrize("handler", ["api", "sweeper", "notify", "audit"])
def test_functions_without_stages_do_not_import_the_dsp(handler: str) -> None:
    loaded = _loaded_after_import(f"harmonic_service.handlers.{handler}")
    assert "harmonic_service" in loaded
    assert not loaded & set(DSP), loaded & set(DSP)


@pytest.mark.parametrize("handler", ["pipeline", "events", "statemachine"])
def test_stage_functions_load_the_dsp_during_init(handler: str) -> None:
    assert set(DSP) <= _loaded_after_import(f"harmonic_service.handlers.{handler}")
