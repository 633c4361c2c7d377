"""The stack as a whole: orchestration choice, the code asset, outputs, and CDK's own annotations."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Annotations, Match

from harmonic_service.events import NOTIFY
from harmonic_service.stages import API_HANDLER, AUDIT_HANDLER, EVENTS_HANDLER, PIPELINE_HANDLER, TASK_HANDLER
from infra import FUNCTIONS_DIR
from infra.layer_build import bytecode_interpreter
from tests.infra.conftest import (
    API_KEY_VARIANT,
    STATEMACHINE_VARIANT,
    X86_VARIANT,
    assert_bytecode_for_the_runtime,
    resources,
)


@pytest.mark.parametrize(
    "handler",
    [PIPELINE_HANDLER, TASK_HANDLER, API_HANDLER, EVENTS_HANDLER, AUDIT_HANDLER, f"{NOTIFY.handler}.handler"],
)
def test_handler_strings_name_modules_of_the_code_asset(handler: str) -> None:
    import importlib

    module, _, function = handler.rpartition(".")
    path = FUNCTIONS_DIR.joinpath(*module.split(".")).with_suffix(".py")
    assert path.is_file(), f"{handler}: {path} does not exist"
    entry = getattr(importlib.import_module(module), function, None)
    assert callable(entry), f"{handler}: {module} has no callable {function}"


def test_one_code_asset_for_every_function(template: dict[str, Any]) -> None:
    functions = resources(template, "AWS::Lambda::Function")
    # six pipeline stages, six state machine tasks, six events subscribers, the audit and notification
    # subscribers, the failure path, the API, the sweeper
    assert len(functions) == 23
    assert len({props["Code"]["S3Key"] for props in functions.values()}) == 1


def test_code_asset_is_the_functions_directory_compiled_for_the_runtime(
    template: dict[str, Any], cli_assembly
) -> None:
    (key,) = {props["Code"]["S3Key"] for props in resources(template, "AWS::Lambda::Function").values()}
    asset = cli_assembly / f"asset.{key.removesuffix('.zip')}"
    shipped = {p.relative_to(asset) for p in asset.rglob("*.py")}
    assert shipped
    expected = {
        p.relative_to(FUNCTIONS_DIR) for p in FUNCTIONS_DIR.rglob("*.py") if "__pycache__" not in p.parts
    }
    assert shipped == expected
    tag = "cpython-313" if bytecode_interpreter("3.13") else None
    assert_bytecode_for_the_runtime(asset, tag)


def test_outputs(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    for name in ("ApiUrl", "PayloadBucketName", "InvocationsTableName", "AlarmTopicArn"):
        assert name in outputs
    assert outputs["Orchestration"]["Value"] == "pipeline,statemachine,events"
    assert "StateMachineArn" in outputs
    assert outputs["AuthMode"]["Value"] == "iam"
    assert "ApiKeyId" not in outputs


SWEEPER_DLQ = "SweeperRuleDeadLetterQueue0B6C63A5"  # the sweeper's rules' DLQ: every deployment has one


def test_pipeline_only_deployment(synth) -> None:
    stack, template = synth(**X86_VARIANT)
    assert stack.deployed_modes == ("pipeline",)
    assert len(resources(template, "AWS::SQS::Queue")) == 12 + 1  # a queue and a DLQ per stage; the sweeper's


def test_statemachine_only_deployment(synth) -> None:
    stack, template = synth(**STATEMACHINE_VARIANT)
    assert stack.deployed_modes == ("statemachine",)
    assert template["Outputs"]["Orchestration"]["Value"] == "statemachine"
    assert list(resources(template, "AWS::SQS::Queue")) == [SWEEPER_DLQ]  # no stage queue


def test_no_cdk_warnings_or_errors(synth) -> None:
    stack, _ = synth(**API_KEY_VARIANT)
    annotations = Annotations.from_stack(stack)
    assert annotations.find_error("*", Match.any_value()) == []
    assert annotations.find_warning("*", Match.any_value()) == []
