"""The pipeline: a queue, a dead-letter queue and a function per stage, wired by the stage table."""

from __future__ import annotations

import json
from typing import Any

from harmonic_service.stages import PIPELINE_HANDLER, STAGE_NAMES, STAGES, VISIBILITY_TIMEOUT_FACTOR
from tests.infra.conftest import (
    X86_VARIANT,
    ref_id,
    resources,
    stage_functions,
    stage_queues,
)

DESIGN_ENVIRONMENT = {
    "INVOCATIONS_TABLE",
    "IDEMPOTENCY_TABLE",
    "PATTERNS_TABLE",
    "PAYLOAD_BUCKET",
    "STAGE_QUEUE_URLS",
    "STATE_MACHINE_ARN",
    "EVENT_BUS_NAME",
    "AUDIT_TABLE",
    "CALLBACK_SECRET_ID",
    "ORCHESTRATION",
    "MAX_INLINE_BYTES",
    "MAX_UPLOAD_BYTES",
    "MAX_DURATION_S",
    "MAX_SAMPLE_RATE",
    "RETENTION_DAYS",
    "BREAKER_THRESHOLD",
    "BREAKER_WINDOW_S",
    "BREAKER_COOLDOWN_S",
    "BREAKER_MAX_REQUEUES",
    "SHARED_PATTERN_OWNERS",
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
}


def test_every_stage_has_a_function_consuming_its_own_queue(template: dict[str, Any]) -> None:
    functions = stage_functions(template)
    queues = stage_queues(template)
    assert set(functions) == set(STAGE_NAMES) == set(queues)
    assert len(set(queues.values())) == len(STAGES)
    for stage, (_, props) in functions.items():
        assert props["Handler"] == PIPELINE_HANDLER, stage


def _pipeline_queues(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The queues of the pipeline's construct (`Queues`), by logical id."""
    return {k: v for k, v in resources(template, "AWS::SQS::Queue").items() if k.startswith("Queues")}


def test_queues_follow_the_stage_specs(template: dict[str, Any]) -> None:
    all_queues = _pipeline_queues(template)
    functions = stage_functions(template)
    queues = stage_queues(template)
    dead_letter_ids = set()
    for spec in STAGES:
        queue = all_queues[queues[spec.name]]
        timeout = functions[spec.name][1]["Timeout"]
        assert timeout == spec.timeout_s
        assert queue["VisibilityTimeout"] == spec.queue_visibility_timeout_s
        assert queue["VisibilityTimeout"] >= VISIBILITY_TIMEOUT_FACTOR * timeout
        redrive = queue["RedrivePolicy"]
        assert redrive["maxReceiveCount"] == spec.max_receive_count
        dead_letter_ids.add(ref_id(redrive["deadLetterTargetArn"]))
    assert len(dead_letter_ids) == len(STAGES)
    assert set(all_queues) == dead_letter_ids | set(queues.values())
    for logical_id in dead_letter_ids:
        assert all_queues[logical_id]["MessageRetentionPeriod"] == 14 * 86_400
        assert "RedrivePolicy" not in all_queues[logical_id]


def test_every_queue_is_encrypted_and_requires_tls(template: dict[str, Any]) -> None:
    all_queues = resources(template, "AWS::SQS::Queue")
    assert len(_pipeline_queues(template)) == 2 * len(STAGES)
    # with the events mode's queue and DLQ per stage, its rules' delivery DLQ, a queue and a DLQ for each
    # of the bus's other two subscribers (audit, notifications), and the sweeper's rules' DLQ
    assert len(all_queues) == 4 * len(STAGES) + 1 + 2 * 2 + 1
    for logical_id, props in all_queues.items():
        assert props["SqsManagedSseEnabled"] is True, logical_id
    protected = set()
    for props in resources(template, "AWS::SQS::QueuePolicy").values():
        for statement in props["PolicyDocument"]["Statement"]:
            if statement["Effect"] == "Deny" and statement["Condition"] == {
                "Bool": {"aws:SecureTransport": "false"}
            }:
                protected.update(ref_id(queue) for queue in props["Queues"])
    assert protected == set(all_queues)


def test_event_sources_report_partial_failures_with_bounded_concurrency(template: dict[str, Any]) -> None:
    functions = stage_functions(template)
    by_function = {logical_id: stage for stage, (logical_id, _) in functions.items()}
    mappings = {
        key: props
        for key, props in resources(template, "AWS::Lambda::EventSourceMapping").items()
        if props["FunctionName"]["Ref"] in by_function
    }
    assert len(mappings) == len(STAGES)
    specs = {spec.name: spec for spec in STAGES}
    for props in mappings.values():
        spec = specs[by_function[props["FunctionName"]["Ref"]]]
        assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert props["ScalingConfig"] == {"MaximumConcurrency": spec.max_concurrency}
        assert props["BatchSize"] == spec.batch_size


def test_stage_functions_run_as_the_stage_spec_says(template: dict[str, Any]) -> None:
    layer_ids = set(resources(template, "AWS::Lambda::LayerVersion"))
    log_groups = resources(template, "AWS::Logs::LogGroup")
    for spec in STAGES:
        _, props = stage_functions(template)[spec.name]
        assert props["MemorySize"] == spec.memory_mb
        assert props["Timeout"] == spec.timeout_s
        assert props["Runtime"] == "python3.13"
        assert props["Architectures"] == ["arm64"]
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert {ref_id(layer) for layer in props["Layers"]} == layer_ids
        log_group = log_groups[ref_id(props["LoggingConfig"]["LogGroup"])]
        assert log_group["RetentionInDays"] == 30
        variables = props["Environment"]["Variables"]
        assert set(variables) == DESIGN_ENVIRONMENT | {"STAGE_NAME"}
        assert variables["STAGE_NAME"] == spec.name
        assert variables["ORCHESTRATION"] == "pipeline,statemachine,events"
        assert variables["STATE_MACHINE_ARN"] == ""  # only the API function starts executions


def test_stage_queue_urls_name_every_stage_queue(template: dict[str, Any]) -> None:
    queues = stage_queues(template)
    _, props = stage_functions(template)["ingest"]
    parts = props["Environment"]["Variables"]["STAGE_QUEUE_URLS"]["Fn::Join"][1]
    # {"ingest": "<Ref IngestQueue>", ...} rendered by Stack.to_json_string: a JSON skeleton around Refs.
    skeleton = "".join(part if isinstance(part, str) else f"@{part['Ref']}@" for part in parts)
    urls = json.loads(skeleton)
    assert urls == {stage: f"@{queues[stage]}@" for stage in STAGE_NAMES}


def _statements(template: dict[str, Any], function_props: dict[str, Any]) -> list[dict[str, Any]]:
    role = ref_id(function_props["Role"])
    statements = []
    for props in resources(template, "AWS::IAM::Policy").values():
        if role in {ref_id(r) for r in props["Roles"]}:
            statements += props["PolicyDocument"]["Statement"]
    return statements


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_stage_permissions_are_least_privilege(template: dict[str, Any]) -> None:
    queues = stage_queues(template)
    tables = resources(template, "AWS::DynamoDB::Table")
    # by partition key (the audit log, keyed by invocation_id and event_key, is not the stages' business)
    table_ids = {
        props["KeySchema"][0]["AttributeName"]: logical_id
        for logical_id, props in tables.items()
        if len(props["KeySchema"]) == 1
    }
    for index, spec in enumerate(STAGES):
        _, props = stage_functions(template)[spec.name]
        statements = _statements(template, props)
        actions_by_resource: dict[str, set[str]] = {}
        for statement in statements:
            assert statement["Effect"] == "Allow"
            actions = set(_as_list(statement["Action"]))
            assert not any(action.endswith("*") for action in actions), actions
            for resource in _as_list(statement["Resource"]):
                if resource == "*":
                    assert actions <= {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
                    continue
                if isinstance(resource, dict) and "Fn::Join" in resource:
                    key = ref_id(resource["Fn::Join"][1][0]) + resource["Fn::Join"][1][1]
                else:
                    key = ref_id(resource)
                actions_by_resource.setdefault(key, set()).update(actions)
        sent_to = {q for q, actions in actions_by_resource.items() if "sqs:SendMessage" in actions}
        # the later stages (the next one that runs), and its own: an open breaker puts a message back
        assert sent_to == {queues[later.name] for later in STAGES[index:]}, spec.name
        assert "sqs:ReceiveMessage" in actions_by_resource[queues[spec.name]]
        assert "dynamodb:UpdateItem" in actions_by_resource[table_ids["invocation_id"]]
        assert "dynamodb:GetItem" in actions_by_resource[table_ids["pattern_id"]]
        assert not actions_by_resource.get(table_ids["pattern_id"], set()) & {
            "dynamodb:PutItem",
            "dynamodb:DeleteItem",
        }
        assert table_ids["id"] not in actions_by_resource
        # CDK grants the table's indexes with it (the sweeper's by-deadline, the history's by-owner)
        index = table_ids["invocation_id"] + "/index/*"
        assert actions_by_resource.pop(index) == actions_by_resource[table_ids["invocation_id"]]
        object_prefixes = {
            key.split("/", 1)[1]: actions for key, actions in actions_by_resource.items() if "/" in key
        }
        assert object_prefixes == {
            "invocations/*": {"s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"},
            "patterns/*": {"s3:GetObject"},
        }


def test_architecture_runtime_and_memory_come_from_the_context(synth) -> None:
    _, template = synth(**X86_VARIANT)
    for props in resources(template, "AWS::Lambda::LayerVersion").values():
        assert props["CompatibleArchitectures"] == ["x86_64"]
        assert props["CompatibleRuntimes"] == ["python3.12"]
    functions = stage_functions(template)
    for spec in STAGES:
        _, props = functions[spec.name]
        assert props["Architectures"] == ["x86_64"]
        assert props["Runtime"] == "python3.12"
        assert props["MemorySize"] == (2048 if spec.name == "features" else spec.memory_mb)
