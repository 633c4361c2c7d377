"""Fixtures of the infra tier: synthesized templates, built once per session.

- ``cli_assembly``: the default app synthesized by the pinned CDK CLI exactly as ``make synth`` does
  (cdk.json's ``app`` command, cdk-nag as a validation plugin, the three layers bundled locally), into a
  temporary directory.
- ``synth``: in-process synthesis of a variant (context overrides on top of cdk.json), cached per variant.

Layer builds are cached under build/layers/ (infra/layer_build.py), so only the first session on a fresh
machine pays for the pip downloads.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from infra import REPO_ROOT
from infra.stack import STACK_NAME, HarmonicStack, create_app

# Node.js 22 from the npm registry (package.json), first on PATH as the Makefile puts it, also when pytest
# runs without make: for the CDK CLI below and for jsii, which aws-cdk-lib starts in this process.
NODE_BIN = REPO_ROOT / "node_modules" / ".bin"
if NODE_BIN.is_dir() and not os.environ.get("PATH", "").startswith(str(NODE_BIN)):
    os.environ["PATH"] = f"{NODE_BIN}{os.pathsep}{os.environ.get('PATH', '')}"
CLI_ENV = {"CDK_DISABLE_CLI_TELEMETRY": "true"}
# Variants whose tests only read the template skip layer bundling (their layer content is the default's).
SKIP_BUNDLING = {"aws:cdk:bundling-stacks": []}
# The non-default deployments the tests synthesize (each once per session).
API_KEY_VARIANT = {
    "auth": "api_key",
    "retention_days": 3,
    "api_throttle_rate": 10,
    "api_throttle_burst": 20,
    "alarm_email": "ops@example.com",
    **SKIP_BUNDLING,
}
STATEMACHINE_VARIANT = {"orchestration": "statemachine", "state_machine_type": "EXPRESS", **SKIP_BUNDLING}
# The non-default runtime: 3.12, which has no speech layer (pocketsphinx has no 3.12 wheel).
X86_VARIANT = {
    "architecture": "x86_64",
    "python_runtime": "3.12",
    "stage_memory_mb": {"features": 2048},
    "orchestration": "pipeline",
    **SKIP_BUNDLING,
}


def _cli_synth(outdir: Path, *context: str) -> Path:
    """`cdk synth` by the pinned CLI (node_modules/.bin/cdk), offline, into `outdir`; `context`: key=value."""
    result = subprocess.run(
        [
            str(REPO_ROOT / "node_modules" / ".bin" / "cdk"),
            "synth",
            "--quiet",
            "--no-notices",
            "--output",
            str(outdir),
            *(argument for pair in context for argument in ("-c", pair)),
        ],
        cwd=REPO_ROOT,
        env={**os.environ, **CLI_ENV},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, f"cdk synth failed:\n{result.stdout}\n{result.stderr}"
    return outdir


@pytest.fixture(scope="session")
def cli_assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """cdk.out of `cdk synth` run by the pinned CLI (node_modules/.bin/cdk), offline."""
    return _cli_synth(tmp_path_factory.mktemp("cdk.out"))


@pytest.fixture(scope="session")
def moto_assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The CLI's cloud assembly without the web console, for the deployments into moto: moto 5.2.5 does not
    model CloudFront (a GetAtt of the distribution's domain name is an undefined resource there), and the
    console's BucketDeployment is a custom resource whose function moto cannot run. test_console checks the
    console's resources on the template."""
    return _cli_synth(tmp_path_factory.mktemp("cdk.out-moto"), "console=false")


@pytest.fixture(scope="session")
def template(cli_assembly: Path) -> dict[str, Any]:
    """The default stack's CloudFormation template (from the CLI synth)."""
    return json.loads((cli_assembly / f"{STACK_NAME}.template.json").read_text())


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., tuple[HarmonicStack, dict[str, Any]]]:
    """synth(**context) -> (stack, template) of a variant, synthesized once per session (cdk-nag included)."""
    cache: dict[str, tuple[HarmonicStack, dict[str, Any]]] = {}

    def _synth(**context: Any) -> tuple[HarmonicStack, dict[str, Any]]:
        key = json.dumps(context, sort_keys=True)
        if key not in cache:
            app, stack = create_app(
                context, outdir=str(tmp_path_factory.mktemp("variant")), with_cdk_json=True
            )
            assembly = app.synth()
            cache[key] = (stack, assembly.get_stack_by_name(stack.stack_name).template)
        return cache[key]

    return _synth


# CDK's own deploy-time machinery for the console's files (BucketDeployment): a singleton function of the
# stack with its role, and the AWS CLI layer. Not the app's; test_console and the cdk-nag and cfn-lint tests
# see it, `resources` leaves it out so that "every function" means every function of Harmonic.
CDK_DEPLOYMENT_MACHINERY = ("CustomCDKBucketDeployment", "ConsoleFilesAwsCliLayer")


def resources(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    """{logical id: properties} of every resource of `resource_type` (but CDK_DEPLOYMENT_MACHINERY)."""
    return {
        logical_id: resource.get("Properties", {})
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == resource_type and not logical_id.startswith(CDK_DEPLOYMENT_MACHINERY)
    }


def stage_functions(template: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    """{stage name: (logical id, properties)} of the pipeline functions (their handler and STAGE_NAME)."""
    from harmonic_service.stages import PIPELINE_HANDLER

    found = {}
    for logical_id, props in resources(template, "AWS::Lambda::Function").items():
        stage = props.get("Environment", {}).get("Variables", {}).get("STAGE_NAME")
        if stage and props["Handler"] == PIPELINE_HANDLER:
            found[stage] = (logical_id, props)
    return found


def api_function(template: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    from harmonic_service.stages import API_HANDLER

    (found,) = [
        (i, p) for i, p in resources(template, "AWS::Lambda::Function").items() if p["Handler"] == API_HANDLER
    ]
    return found


def stage_queues(template: dict[str, Any]) -> dict[str, str]:
    """{stage name: logical id of the queue its pipeline function consumes} (through the event source
    mappings; the events mode's subscribers are left out)."""
    by_function = {logical_id: stage for stage, (logical_id, _) in stage_functions(template).items()}
    return {
        by_function[props["FunctionName"]["Ref"]]: props["EventSourceArn"]["Fn::GetAtt"][0]
        for props in resources(template, "AWS::Lambda::EventSourceMapping").values()
        if props["FunctionName"]["Ref"] in by_function
    }


def role_statements(template: dict[str, Any], role: str) -> list[dict[str, Any]]:
    """Every IAM policy statement attached to the role with logical id `role`."""
    return [
        statement
        for policy in resources(template, "AWS::IAM::Policy").values()
        if role in {ref_id(r) for r in policy["Roles"]}
        for statement in policy["PolicyDocument"]["Statement"]
    ]


def ref_id(value: Any) -> str:
    """The logical id behind {"Ref": id} or {"Fn::GetAtt": [id, attr]}."""
    if isinstance(value, dict) and "Ref" in value:
        return value["Ref"]
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return value["Fn::GetAtt"][0]
    raise AssertionError(f"not a reference: {value!r}")


def assert_bytecode_for_the_runtime(tree: Path, tag: str | None) -> None:
    """Every module under `tree` has its pyc for cache tag `tag` ("cpython-313"), hash-based and never checked
    against its source (PEP 552 flags 0b01: the zip's file times do not matter); no other bytecode. With `tag`
    None (no interpreter of the runtime's version on this machine), no bytecode at all."""
    modules = sorted(tree.rglob("*.py"))
    pycs = sorted(tree.rglob("*.pyc"))
    assert modules
    if tag is None:
        assert not pycs, pycs[:5]
        return
    expected = {module.parent / "__pycache__" / f"{module.stem}.{tag}.pyc" for module in modules}
    assert set(pycs) == expected, sorted(set(pycs) ^ expected)[:5]
    for pyc in pycs[:: max(1, len(pycs) // 50)]:  # a sample of 50: the header is all that is checked
        flags = int.from_bytes(pyc.read_bytes()[4:8], "little")
        assert flags == 0b01, f"{pyc}: flags {flags:#b}, expected unchecked-hash (0b01)"
