"""The event-driven orchestration's resources: the bus, a rule per subscription of every stage, and per
stage a queue with its DLQ and a subscriber function consuming it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from harmonic_service.events import SUBSCRIBERS, subscriptions
from harmonic_service.stages import EVENTS_HANDLER, PIPELINE_HANDLER, STAGE_NAMES, STAGES, TASK_HANDLER
from infra.settings import Settings, SettingsError
from tests.infra.conftest import SKIP_BUNDLING, ref_id, resources, role_statements


def _subscribers(template: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    """{stage: (logical id, properties)} of the events mode's stage functions."""
    return {
        props["Environment"]["Variables"]["STAGE_NAME"]: (logical_id, props)
        for logical_id, props in resources(template, "AWS::Lambda::Function").items()
        if props["Handler"] == EVENTS_HANDLER
    }


def _bus_rules(template: dict[str, Any]) -> list[dict[str, Any]]:
    """The rules on Harmonic's bus (the sweeper's schedule and its Step Functions rule are not)."""
    return [rule for rule in resources(template, "AWS::Events::Rule").values() if "EventBusName" in rule]


def test_every_stage_subscribes_with_its_own_queue_and_function(template: dict[str, Any]) -> None:
    subscribers = _subscribers(template)
    assert set(subscribers) == set(STAGE_NAMES)
    queues = resources(template, "AWS::SQS::Queue")
    by_function = {logical_id: stage for stage, (logical_id, _) in subscribers.items()}
    consumed: dict[str, str] = {}
    for mapping in resources(template, "AWS::Lambda::EventSourceMapping").values():
        stage = by_function.get(mapping["FunctionName"]["Ref"])
        if stage is None:
            continue
        spec = next(s for s in STAGES if s.name == stage)
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert mapping["ScalingConfig"] == {"MaximumConcurrency": spec.max_concurrency}
        assert mapping["BatchSize"] == spec.batch_size
        queue_id = ref_id(mapping["EventSourceArn"])
        queue = queues[queue_id]
        assert queue["VisibilityTimeout"] == 6 * spec.timeout_s
        assert queue["RedrivePolicy"]["maxReceiveCount"] == spec.max_receive_count
        assert queue["SqsManagedSseEnabled"] is True
        consumed[stage] = queue_id
    assert set(consumed) == set(STAGE_NAMES)
    for stage, (_, props) in subscribers.items():
        spec = next(s for s in STAGES if s.name == stage)
        assert (props["MemorySize"], props["Timeout"]) == (spec.memory_mb, spec.timeout_s)


def test_the_rules_are_the_stage_tables_subscriptions(template: dict[str, Any]) -> None:
    (bus_id,) = resources(template, "AWS::Events::EventBus")
    rules = _bus_rules(template)
    subscribers = _subscribers(template)
    queue_of = {}
    for mapping in resources(template, "AWS::Lambda::EventSourceMapping").values():
        for stage, (logical_id, _) in subscribers.items():
            if mapping["FunctionName"]["Ref"] == logical_id:
                queue_of[ref_id(mapping["EventSourceArn"])] = stage
    found: dict[str, list[dict[str, Any]]] = {}
    for rule in rules:
        (target,) = rule["Targets"]
        stage = queue_of.get(ref_id(target["Arn"]), "not a stage")
        found.setdefault(stage, []).append(rule["EventPattern"])
        assert "DeadLetterConfig" in target  # undeliverable events are kept, not lost
        assert json.dumps(rule["EventBusName"]).count("AWS::StackName") == 1

    def canonical(patterns: list[dict[str, Any]]) -> list[str]:
        return sorted(json.dumps(pattern, sort_keys=True) for pattern in patterns)

    for stage in STAGE_NAMES:
        assert canonical(found[stage]) == canonical(subscriptions(stage))
    # the rest are the other subscribers' (audit, notifications), one rule each
    assert canonical(found["not a stage"]) == canonical([s.pattern for s in SUBSCRIBERS])
    assert bus_id


def test_only_the_api_and_the_subscribers_may_put_events_on_the_bus(template: dict[str, Any]) -> None:
    (bus_id,) = resources(template, "AWS::Events::EventBus")
    allowed_roles = set()
    for props in resources(template, "AWS::IAM::Policy").values():
        for statement in props["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if "events:PutEvents" in actions:
                assert ref_id(statement["Resource"]) == bus_id  # this bus only, not "*"
                allowed_roles.update(ref_id(role) for role in props["Roles"])
    functions = resources(template, "AWS::Lambda::Function").values()
    roles = {ref_id(p["Role"]): p["Handler"] for p in functions}
    # the API (submit, resume), the events stages, the pipeline's and the state machine's functions (the end
    # of an invocation) and the sweeper; not the audit log nor the notifications, which only listen
    publishers = {
        EVENTS_HANDLER,
        PIPELINE_HANDLER,
        TASK_HANDLER,
        "harmonic_service.handlers.api.handler",
        "harmonic_service.handlers.sweeper.handler",  # re-dispatches, and the end of what it fails
    }
    assert allowed_roles == {role for role, handler in roles.items() if handler in publishers}
    assert sum(handler == EVENTS_HANDLER for handler in (roles[r] for r in allowed_roles)) == len(STAGES)


def test_orchestration_without_events_deploys_no_bus(synth) -> None:
    _, template = synth(orchestration="pipeline,statemachine", **SKIP_BUNDLING)
    assert not resources(template, "AWS::Events::EventBus")
    assert not _subscribers(template)
    variables = [p["Environment"]["Variables"] for p in resources(template, "AWS::Lambda::Function").values()]
    assert {v["ORCHESTRATION"] for v in variables} == {"pipeline,statemachine"}
    assert {v["EVENT_BUS_NAME"] for v in variables} == {""}


@pytest.mark.parametrize(
    ("value", "modes"),
    [
        ("all", ("pipeline", "statemachine", "events")),
        ("both", ("pipeline", "statemachine")),
        ("events", ("events",)),
        ("events, pipeline", ("pipeline", "events")),
    ],
)
def test_orchestration_names_the_modes(value: str, modes: tuple[str, ...]) -> None:
    assert Settings(orchestration=value).modes == modes


def test_an_unknown_orchestration_is_refused() -> None:
    with pytest.raises(SettingsError, match="orchestration must be one of"):
        Settings(orchestration="pipeline,carrier-pigeon")


def test_the_schema_registry_holds_every_event_contract(template: dict[str, Any]) -> None:
    from harmonic_service.events import EVENT_TYPES, SCHEMA_VERSION
    from infra import REPO_ROOT

    (registry_id,) = resources(template, "AWS::EventSchemas::Registry")
    schemas = resources(template, "AWS::EventSchemas::Schema").values()
    assert {schema["SchemaName"] for schema in schemas} == {f"harmonic@{name}" for name in EVENT_TYPES}
    for schema in schemas:
        assert schema["Type"] == "JSONSchemaDraft4"
        assert ref_id(schema["RegistryName"]) == registry_id
        content = json.loads(schema["Content"])
        name = schema["SchemaName"].removeprefix("harmonic@")
        committed = json.loads((REPO_ROOT / "docs" / "events" / f"{name}.v{SCHEMA_VERSION}.json").read_text())
        assert content["properties"] == committed["properties"]  # the committed contract, registered
        assert content["required"] == committed["required"]


def test_the_bus_archives_every_event_for_replays(template: dict[str, Any]) -> None:
    (bus_id,) = resources(template, "AWS::Events::EventBus")
    (archive,) = resources(template, "AWS::Events::Archive").values()
    assert ref_id(archive["SourceArn"]) == bus_id
    assert json.loads(archive["EventPattern"]) == {"source": ["harmonic"]}
    assert archive["RetentionDays"] == 7  # cdk.json's event_archive_retention_days
    outputs = template["Outputs"]
    assert {"EventBusName", "EventArchiveName"} <= set(outputs)


def test_the_audit_subscriber_hears_every_event_and_writes_only_its_log(template: dict[str, Any]) -> None:
    from harmonic_service.stages import AUDIT_HANDLER

    ((function_id, function),) = [
        (k, p)
        for k, p in resources(template, "AWS::Lambda::Function").items()
        if p["Handler"] == AUDIT_HANDLER
    ]
    (rule,) = [r for r in _bus_rules(template) if r["EventPattern"] == {"source": ["harmonic"]}]
    (mapping,) = [
        m
        for m in resources(template, "AWS::Lambda::EventSourceMapping").values()
        if m["FunctionName"]["Ref"] == function_id
    ]
    assert ref_id(rule["Targets"][0]["Arn"]) == ref_id(mapping["EventSourceArn"])  # the rule fills its queue
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    role = ref_id(function["Role"])
    written = {
        ref_id(resource)
        for statement in role_statements(template, role)
        if "dynamodb:PutItem" in statement["Action"]
        for resource in (
            statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        )
        if isinstance(resource, dict)
    }
    (audit_table,) = [
        k for k, p in resources(template, "AWS::DynamoDB::Table").items() if len(p["KeySchema"]) == 2
    ]
    assert written == {audit_table}


def test_the_notifier_hears_the_ends_that_asked_for_it_and_reads_the_signing_secret(
    template: dict[str, Any],
) -> None:
    functions = resources(template, "AWS::Lambda::Function")
    ((function_id, function),) = [
        (k, p) for k, p in functions.items() if p["Handler"] == "harmonic_service.handlers.notify.handler"
    ]
    (rule,) = [r for r in _bus_rules(template) if r["EventPattern"].get("detail", {}).get("notify") == [True]]
    assert sorted(rule["EventPattern"]["detail-type"]) == ["InvocationCompleted", "InvocationFailed"]
    (mapping,) = [
        m
        for m in resources(template, "AWS::Lambda::EventSourceMapping").values()
        if m["FunctionName"]["Ref"] == function_id
    ]
    assert ref_id(rule["Targets"][0]["Arn"]) == ref_id(mapping["EventSourceArn"])
    queue = resources(template, "AWS::SQS::Queue")[ref_id(mapping["EventSourceArn"])]
    assert queue["RedrivePolicy"]["maxReceiveCount"] == 5  # five attempts, then the DLQ
    assert queue["VisibilityTimeout"] == 6 * function["Timeout"]

    (secret,) = resources(template, "AWS::SecretsManager::Secret").values()
    name = json.dumps(secret["Name"])
    assert "AWS::StackName" in name
    assert "-callback-signing" in name
    role = ref_id(function["Role"])
    read_secret = [
        s for s in role_statements(template, role) if "secretsmanager:GetSecretValue" in s["Action"]
    ]
    (statement,) = read_secret
    assert json.dumps(statement["Resource"]).endswith('-callback-signing-??????"]]}')  # this secret only
    assert statement["Action"] == "secretsmanager:GetSecretValue"
    readers = {
        ref_id(r)
        for policy in resources(template, "AWS::IAM::Policy").values()
        if "secretsmanager:" in json.dumps(policy["PolicyDocument"])
        for r in policy["Roles"]
    }
    assert readers == {role}  # nobody else reads it
    for props in functions.values():  # every function knows where the secret is
        assert props["Environment"]["Variables"]["CALLBACK_SECRET_ID"] == secret["Name"]
