"""The path to AWS: `make bootstrap|deploy|destroy` hand PROFILE, REGION, STACK and CONTEXT to the pinned CDK
CLI, which runs on Node.js 22 LTS (Node 20 reached its end of life in April 2026)."""

from __future__ import annotations

import json
import shlex
import subprocess

import pytest

from infra import REPO_ROOT


def _make(*args: str) -> str:
    result = subprocess.run(
        ["make", "--no-print-directory", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_toolchain_is_node_22_and_the_pinned_cdk_cli() -> None:
    pins = json.loads((REPO_ROOT / "package.json").read_text())["devDependencies"]
    assert pins["node"].startswith("22.")
    lines = dict(line.split(" ", 1) for line in _make("-s", "toolchain").splitlines())
    assert lines["node"].startswith("v22.")
    assert lines["cdk"].startswith(pins["aws-cdk"])


def _cdk_line(target: str, *variables: str) -> list[str]:
    """The words of the CDK command `make -n target` would run."""
    (line,) = [
        line for line in _make("-n", target, *variables).splitlines() if "node_modules/.bin/cdk" in line
    ]
    return shlex.split(line)


@pytest.mark.parametrize("target", ["bootstrap", "deploy", "destroy"])
def test_profile_region_stack_and_context_reach_the_cdk_cli(target: str) -> None:
    words = _cdk_line(
        target,
        "PROFILE=dev",
        "REGION=eu-west-1",
        "STACK=HarmonicDev",
        "CONTEXT=auth=api_key alarm_email=ops@example.com",
    )
    assert "AWS_PROFILE=dev" in words
    assert "AWS_REGION=eu-west-1" in words
    cdk = words.index(next(w for w in words if w.endswith("node_modules/.bin/cdk")))
    assert words[cdk + 1] == target
    rest = words[cdk + 2 :]
    assert rest[rest.index("--profile") + 1] == "dev"
    pairs = [rest[i + 1] for i, word in enumerate(rest) if word == "-c"]
    assert pairs == ["stack_name=HarmonicDev", "auth=api_key", "alarm_email=ops@example.com"]
    if target != "bootstrap":
        assert rest[0] == "HarmonicDev"  # deploy and destroy name the stack
    if target == "deploy":
        assert rest[rest.index("--require-approval") + 1] == "broadening"
        assert rest[rest.index("--outputs-file") + 1] == "cdk-outputs.json"
    if target == "destroy":
        assert "--force" in rest


def test_without_variables_the_default_stack_and_credentials_chain() -> None:
    words = _cdk_line("deploy")
    assert not any(w.startswith(("AWS_PROFILE=", "AWS_REGION=")) for w in words)
    assert "--profile" not in words
    assert "stack_name=Harmonic" in words
