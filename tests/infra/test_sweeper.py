"""The watchdog's resources: its function on a one-minute schedule, the Step Functions status rule, both with
a dead-letter queue, and only the permissions it needs."""

from __future__ import annotations

import json
from typing import Any

from harmonic_service.stages import EVENTS_HANDLER, PIPELINE_HANDLER, STAGE_NAMES
from tests.infra.conftest import ref_id, resources, role_statements

SWEEPER = "harmonic_service.handlers.sweeper.handler"


def _sweeper(template: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    ((logical_id, props),) = [
        (k, p) for k, p in resources(template, "AWS::Lambda::Function").items() if p["Handler"] == SWEEPER
    ]
    return logical_id, props


def test_a_schedule_runs_the_sweeper_every_minute(template: dict[str, Any]) -> None:
    function_id, props = _sweeper(template)
    assert props["Timeout"] == 60
    rules = [r for r in resources(template, "AWS::Events::Rule").values() if "ScheduleExpression" in r]
    (schedule,) = rules
    assert schedule["ScheduleExpression"] == "rate(1 minute)"
    (target,) = schedule["Targets"]
    assert ref_id(target["Arn"]) == function_id
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 2
    assert ref_id(target["DeadLetterConfig"]["Arn"]) in resources(template, "AWS::SQS::Queue")


def test_executions_that_end_badly_reach_the_sweeper(template: dict[str, Any]) -> None:
    function_id, _ = _sweeper(template)
    (rule,) = [
        r
        for r in resources(template, "AWS::Events::Rule").values()
        if r.get("EventPattern", {}).get("source") == ["aws.states"]
    ]
    pattern = rule["EventPattern"]
    assert pattern["detail-type"] == ["Step Functions Execution Status Change"]
    assert sorted(pattern["detail"]["status"]) == ["ABORTED", "FAILED", "TIMED_OUT"]
    (machine,) = resources(template, "AWS::StepFunctions::StateMachine")
    assert [ref_id(arn) for arn in pattern["detail"]["stateMachineArn"]] == [machine]
    assert "EventBusName" not in rule  # the default bus, where Step Functions reports
    assert ref_id(rule["Targets"][0]["Arn"]) == function_id


def test_the_sweeper_may_touch_only_the_invocations_the_stage_queues_and_the_bus(
    template: dict[str, Any],
) -> None:
    _, props = _sweeper(template)
    granted = json.dumps(role_statements(template, ref_id(props["Role"])))
    (invocations,) = [
        k
        for k, p in resources(template, "AWS::DynamoDB::Table").items()
        if p["KeySchema"] == [{"AttributeName": "invocation_id", "KeyType": "HASH"}]
    ]
    assert invocations in granted
    assert "sqs:SendMessage" in granted
    assert "events:PutEvents" in granted
    for other in ("s3:", "states:", "secretsmanager:", "PatternsTable", "IdempotencyTable"):
        assert other not in granted, other


def test_the_sweeper_switches_exactly_the_stages_event_source_mappings(template: dict[str, Any]) -> None:
    """Circuit breakers: per stage, the pipeline's and the events mode's mappings, by id in its environment;
    it may get and update those mappings and no other Lambda resource."""
    _, props = _sweeper(template)
    mappings = resources(template, "AWS::Lambda::EventSourceMapping")
    handlers = {
        logical_id: (p["Handler"], p.get("Environment", {}).get("Variables", {}).get("STAGE_NAME"))
        for logical_id, p in resources(template, "AWS::Lambda::Function").items()
    }
    expected: dict[str, set[str]] = {}
    for mapping_id, mapping in mappings.items():
        handler, stage = handlers[ref_id(mapping["FunctionName"])]
        if handler in (PIPELINE_HANDLER, EVENTS_HANDLER):
            expected.setdefault(stage, set()).add(mapping_id)
    assert set(expected) == set(STAGE_NAMES)
    assert all(len(ids) == 2 for ids in expected.values())  # the pipeline's and the events mode's
    variable = props["Environment"]["Variables"]["STAGE_EVENT_SOURCE_MAPPINGS"]
    referenced = json.dumps(variable)
    for ids in expected.values():
        for mapping_id in ids:
            assert f'"Ref": "{mapping_id}"' in referenced, mapping_id
    lambda_statements = [
        s
        for s in role_statements(template, ref_id(props["Role"]))
        if any(str(action).startswith("lambda:") for action in _as_list(s["Action"]))
    ]
    (statement,) = lambda_statements
    assert sorted(_as_list(statement["Action"])) == [
        "lambda:GetEventSourceMapping",
        "lambda:UpdateEventSourceMapping",
    ]
    resources_json = json.dumps(statement["Resource"])
    assert '"*"' not in resources_json
    assert resources_json.count("event-source-mapping:") == sum(len(ids) for ids in expected.values())


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
