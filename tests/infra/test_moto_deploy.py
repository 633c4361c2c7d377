"""Deploy the synthesized default stack into moto's CloudFormation, the way `cdk deploy` would.

The cloud assembly is the CLI's, without the web console (`moto_assembly`: moto models no CloudFront). As the
default synthesizer expects of a bootstrapped account, the SSM parameter /cdk-bootstrap/hnb659fds/version
exists and every file asset of the asset manifest is in the bucket cdk-hnb659fds-assets-<account>-<region>
(directories zipped), the template included; the stack is created from that template's S3 URL with
CAPABILITY_IAM.

moto 5.2.5 does not model every resource type. It skips the types in MOTO_UNSUPPORTED (with a warning; the
stack still completes) and, for types it does model, ignores some properties: Lambda functions lose `Layers`,
`Architectures`, `TracingConfig` and `LoggingConfig`; layer versions lose `CompatibleArchitectures`; DynamoDB
tables lose point-in-time recovery, TTL and SSE; buckets lose lifecycle rules and the public access block.
Those are asserted on the template (test_pipeline, test_storage, test_api, test_monitoring); here the
assertions are on what moto does create, read back through the service APIs.
"""

from __future__ import annotations

import io
import json
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto import mock_aws
from moto.cloudformation.parsing import get_model_map

from harmonic_service.events import NOTIFY
from harmonic_service.stages import (
    API_HANDLER,
    AUDIT_HANDLER,
    EVENTS_HANDLER,
    PIPELINE_HANDLER,
    STAGE_NAMES,
    STAGES,
    TASK_HANDLER,
)
from infra.stack import STACK_NAME

NOTIFY_HANDLER = f"{NOTIFY.handler}.handler"
SWEEPER_HANDLER = "harmonic_service.handlers.sweeper.handler"

ACCOUNT = "123456789012"
REGION = "us-east-1"
ASSET_BUCKET = f"cdk-hnb659fds-assets-{ACCOUNT}-{REGION}"
BOOTSTRAP_VERSION_PARAMETER = "/cdk-bootstrap/hnb659fds/version"

# Resource types of the template that moto's CloudFormation does not implement (moto 5.2.5).
MOTO_UNSUPPORTED = {
    "AWS::ApiGateway::Account",
    "AWS::ApiGateway::GatewayResponse",
    "AWS::ApiGateway::Model",
    "AWS::ApiGateway::RequestValidator",
    "AWS::ApiGateway::Stage",
    "AWS::CDK::Metadata",
    "AWS::CloudWatch::Alarm",
    "AWS::EventSchemas::Registry",
    "AWS::EventSchemas::Schema",
    "AWS::S3::BucketPolicy",
    "AWS::SecretsManager::Secret",
    "AWS::SNS::TopicPolicy",
    "AWS::SQS::QueuePolicy",
}

# Types moto creates but lists without a physical id; the tests below find them through the service APIs.
MOTO_NO_PHYSICAL_ID = {
    "AWS::Events::Archive",
    "AWS::Events::EventBus",
    "AWS::ApiGateway::Deployment",
    "AWS::ApiGateway::Method",
    "AWS::Lambda::LayerVersion",
    "AWS::Lambda::Permission",
}


def _zip_directory(directory: Path) -> bytes:
    buffer = io.BytesIO()
    # Stored, not deflated: moto does not care and the layer is 140 MiB.
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(directory))
    return buffer.getvalue()


def _resolve(text: str) -> str:
    return text.replace("${AWS::AccountId}", ACCOUNT).replace("${AWS::Region}", REGION)


@pytest.fixture(scope="module")
def deployed(moto_assembly: Path) -> Iterator[dict[str, Any]]:
    """The stack created in moto; yields {"stack", "resources", "skipped", "template"} inside mock_aws."""
    template = json.loads((moto_assembly / f"{STACK_NAME}.template.json").read_text())
    with pytest.MonkeyPatch.context() as patch, mock_aws():
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": REGION,
        }.items():
            patch.setenv(name, value)
        boto3.client("ssm").put_parameter(Name=BOOTSTRAP_VERSION_PARAMETER, Value="30", Type="String")
        # Without flexible checksums a 140 MiB put into moto takes 0.5 s instead of 12 s.
        s3 = boto3.client("s3", config=Config(request_checksum_calculation="when_required"))
        s3.create_bucket(Bucket=ASSET_BUCKET)
        manifest = json.loads((moto_assembly / f"{STACK_NAME}.assets.json").read_text())
        template_url = None
        for asset in manifest["files"].values():
            source = moto_assembly / asset["source"]["path"]
            body = _zip_directory(source) if asset["source"]["packaging"] == "zip" else source.read_bytes()
            for destination in asset["destinations"].values():
                bucket = _resolve(destination["bucketName"])
                s3.put_object(Bucket=bucket, Key=destination["objectKey"], Body=body)
                if source.name == f"{STACK_NAME}.template.json":
                    template_url = f"https://s3.{REGION}.amazonaws.com/{bucket}/{destination['objectKey']}"
        assert template_url, "the asset manifest has no template"

        cloudformation = boto3.client("cloudformation")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            cloudformation.create_stack(
                StackName=STACK_NAME, TemplateURL=template_url, Capabilities=["CAPABILITY_IAM"]
            )
            (stack,) = cloudformation.describe_stacks(StackName=STACK_NAME)["Stacks"]
            summaries = cloudformation.list_stack_resources(StackName=STACK_NAME)["StackResourceSummaries"]
        skipped = {
            str(w.message).split()[3]
            for w in caught
            if "not supported by moto's CloudFormation implementation" in str(w.message)
        }
        yield {"stack": stack, "resources": summaries, "skipped": skipped, "template": template}


def test_stack_is_created(deployed: dict[str, Any]) -> None:
    assert deployed["stack"]["StackStatus"] == "CREATE_COMPLETE"
    outputs = {o["OutputKey"]: o["OutputValue"] for o in deployed["stack"]["Outputs"]}
    assert outputs["ApiUrl"].startswith("https://")
    assert outputs["Orchestration"] == "pipeline,statemachine,events"


def test_only_the_known_unsupported_types_are_skipped(deployed: dict[str, Any]) -> None:
    template_types = {r["Type"] for r in deployed["template"]["Resources"].values()}
    assert {t for t in template_types if t not in get_model_map()} == MOTO_UNSUPPORTED
    assert deployed["skipped"] == MOTO_UNSUPPORTED  # what moto itself reported while creating the stack
    physical = {r["LogicalResourceId"]: r.get("PhysicalResourceId") for r in deployed["resources"]}
    missing = sorted(
        f"{logical_id} ({resource['Type']})"
        for logical_id, resource in deployed["template"]["Resources"].items()
        if resource["Type"] not in MOTO_UNSUPPORTED
        and (
            logical_id not in physical
            or (resource["Type"] not in MOTO_NO_PHYSICAL_ID and not physical[logical_id])
        )
    )
    assert not missing


def test_queues_with_dead_letter_queues(deployed: dict[str, Any]) -> None:
    sqs = boto3.client("sqs")
    urls = sqs.list_queues()["QueueUrls"]
    # per stage: the pipeline's queue and DLQ, the events mode's queue and DLQ; the rules' delivery DLQ; the
    # audit and notification subscribers' queues and DLQs; the sweeper's rules' DLQ
    assert len(urls) == 4 * len(STAGES) + 1 + 2 * 2 + 1
    attributes = {
        url: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"] for url in urls
    }
    arns = {a["QueueArn"]: url for url, a in attributes.items()}
    stage_queues = {url: a for url, a in attributes.items() if "RedrivePolicy" in a}
    assert len(stage_queues) == 2 * len(STAGES) + 2  # and the audit and notification queues
    for attrs in attributes.values():
        assert attrs["SqsManagedSseEnabled"] == "true"
    timeouts = sorted(int(a["VisibilityTimeout"]) for a in stage_queues.values())
    assert timeouts == sorted([*2 * [spec.queue_visibility_timeout_s for spec in STAGES], 6 * 30, 6 * 15])
    receive_counts = []
    for attrs in stage_queues.values():
        redrive = json.loads(attrs["RedrivePolicy"])
        receive_counts.append(redrive["maxReceiveCount"])
        assert attributes[arns[redrive["deadLetterTargetArn"]]]["MessageRetentionPeriod"] == str(14 * 86_400)
    assert sorted(receive_counts) == [3] * (2 * len(STAGES) + 1) + [5]  # notifications: five attempts


def test_tables(deployed: dict[str, Any]) -> None:
    dynamodb = boto3.client("dynamodb")
    keys = set()
    for name in dynamodb.list_tables()["TableNames"]:
        table = dynamodb.describe_table(TableName=name)["Table"]
        assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        keys.add(table["KeySchema"][0]["AttributeName"])
        if table["KeySchema"] == [{"AttributeName": "invocation_id", "KeyType": "HASH"}]:
            # the sweeper's overdue invocations, and a caller's history newest first
            indexes = {i["IndexName"]: i["KeySchema"] for i in table["GlobalSecondaryIndexes"]}
            assert indexes == {
                "by-deadline": [
                    {"AttributeName": "sweep", "KeyType": "HASH"},
                    {"AttributeName": "deadline_at", "KeyType": "RANGE"},
                ],
                "by-owner": [
                    {"AttributeName": "owner", "KeyType": "HASH"},
                    {"AttributeName": "created_at", "KeyType": "RANGE"},
                ],
            }
    assert keys == {"invocation_id", "id", "pattern_id"}


def test_functions_layers_and_event_source_mappings(deployed: dict[str, Any]) -> None:
    awslambda = boto3.client("lambda")
    functions = awslambda.list_functions()["Functions"]
    # pipeline stages, state machine tasks, events subscribers, the audit and notification subscribers,
    # failure path, API, sweeper
    assert len(functions) == 3 * len(STAGES) + 5
    queue_urls = set(boto3.client("sqs").list_queues()["QueueUrls"])
    by_stage = {}
    tasks = {}
    subscribers = {}
    for function in functions:
        variables = function["Environment"]["Variables"]
        assert function["Runtime"] == "python3.13"
        # Every token resolved to a deployed resource.
        assert set(json.loads(variables["STAGE_QUEUE_URLS"])) == set(STAGE_NAMES)
        assert set(json.loads(variables["STAGE_QUEUE_URLS"]).values()) <= queue_urls
        assert variables["PAYLOAD_BUCKET"].startswith("harmonic-storagepayloadbucket")
        assert variables["EVENT_BUS_NAME"] == "Harmonic-events"
        if function["Handler"] == TASK_HANDLER:
            tasks[variables.get("STAGE_NAME", "")] = function
        elif function["Handler"] == EVENTS_HANDLER:
            subscribers[variables["STAGE_NAME"]] = function
        elif function["Handler"] in (AUDIT_HANDLER, NOTIFY_HANDLER, SWEEPER_HANDLER):
            assert "STAGE_NAME" not in variables
        elif variables.get("STAGE_NAME"):
            assert function["Handler"] == PIPELINE_HANDLER
            by_stage[variables["STAGE_NAME"]] = function
        else:
            assert function["Handler"] == API_HANDLER
            # API Gateway may invoke it: one permission per route (the 14 of docs/design.md "HTTP API").
            policy = json.loads(awslambda.get_policy(FunctionName=function["FunctionName"])["Policy"])
            assert len(policy["Statement"]) == 14
            assert {s["Principal"]["Service"] for s in policy["Statement"]} == {"apigateway.amazonaws.com"}
    assert set(tasks) == {*STAGE_NAMES, ""}
    assert set(subscribers) == set(STAGE_NAMES)
    for spec in STAGES:
        for function in (by_stage[spec.name], tasks[spec.name], subscribers[spec.name]):
            assert function["MemorySize"] == spec.memory_mb
            assert function["Timeout"] == spec.timeout_s

    layers = awslambda.list_layers()["Layers"]
    assert len(layers) == 3  # harmonic, deps, speech (python3.13)
    for layer in layers:
        assert layer["LatestMatchingVersion"]["CompatibleRuntimes"] == ["python3.13"]

    mappings = awslambda.list_event_source_mappings()["EventSourceMappings"]
    # the pipeline's and the events mode's stage queues, and the audit and notification queues
    assert len(mappings) == 2 * len(STAGES) + 2
    function_by_arn = {f["FunctionArn"]: f for f in functions}
    for mapping in mappings:
        if function_by_arn[mapping["FunctionArn"]]["Handler"] in (AUDIT_HANDLER, NOTIFY_HANDLER):
            continue
        stage = function_by_arn[mapping["FunctionArn"]]["Environment"]["Variables"]["STAGE_NAME"]
        spec = next(s for s in STAGES if s.name == stage)
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert mapping["ScalingConfig"] == {"MaximumConcurrency": spec.max_concurrency}
        assert mapping["BatchSize"] == spec.batch_size
        assert mapping["State"] == "Enabled"


def test_api_routes_with_iam_auth(deployed: dict[str, Any]) -> None:
    apigateway = boto3.client("apigateway")
    (api,) = apigateway.get_rest_apis()["items"]
    routes = {
        (resource["path"], method)
        for resource in apigateway.get_resources(restApiId=api["id"])["items"]
        for method in resource.get("resourceMethods", {})
    }
    assert ("/v1/invocations", "POST") in routes
    assert ("/v1/invocations", "GET") in routes
    assert ("/v1/patterns/{id}/example", "GET") in routes
    assert ("/v1/health", "GET") in routes
    assert ("/v1/patterns/{id}/rebuild", "POST") in routes
    assert len(routes) == 14
    for path, method in routes:
        resource_id = next(
            r["id"] for r in apigateway.get_resources(restApiId=api["id"])["items"] if r["path"] == path
        )
        described = apigateway.get_method(restApiId=api["id"], resourceId=resource_id, httpMethod=method)
        assert described["authorizationType"] == "AWS_IAM"
        assert described["methodIntegration"]["type"] == "AWS_PROXY"


def test_payload_bucket_is_encrypted_and_monitoring_exists(deployed: dict[str, Any]) -> None:
    s3 = boto3.client("s3")
    buckets = [b["Name"] for b in s3.list_buckets()["Buckets"] if b["Name"] != ASSET_BUCKET]
    assert len(buckets) == 2
    for bucket in buckets:
        (rule,) = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
        assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    (topic,) = boto3.client("sns").list_topics()["Topics"]
    attributes = boto3.client("sns").get_topic_attributes(TopicArn=topic["TopicArn"])["Attributes"]
    assert attributes["KmsMasterKeyId"].startswith(f"arn:aws:kms:{REGION}:{ACCOUNT}:key/")
    assert len(boto3.client("cloudwatch").list_dashboards()["DashboardEntries"]) == 1


def test_state_machine_is_what_the_api_starts(deployed: dict[str, Any]) -> None:
    stepfunctions = boto3.client("stepfunctions")
    (machine,) = stepfunctions.list_state_machines()["stateMachines"]
    described = stepfunctions.describe_state_machine(stateMachineArn=machine["stateMachineArn"])
    assert json.loads(described["definition"])["StartAt"] == "StartAtStage"
    (api,) = [f for f in boto3.client("lambda").list_functions()["Functions"] if f["Handler"] == API_HANDLER]
    assert api["Environment"]["Variables"]["STATE_MACHINE_ARN"] == machine["stateMachineArn"]
    assert api["Environment"]["Variables"]["ORCHESTRATION"] == "pipeline,statemachine,events"


def test_event_bus_and_the_rules_of_the_stage_table(deployed: dict[str, Any]) -> None:
    from harmonic_service.events import subscriptions

    events = boto3.client("events")
    buses = [bus["Name"] for bus in events.list_event_buses()["EventBuses"]]
    assert "Harmonic-events" in buses
    # the archive's own rule is EventBridge's (ManagedBy), not the stage table's
    rules = [r for r in events.list_rules(EventBusName="Harmonic-events")["Rules"] if not r.get("ManagedBy")]
    (archive,) = events.list_archives()["Archives"]
    assert archive["ArchiveName"] == "Harmonic-events"
    assert archive["EventSourceArn"].endswith(":event-bus/Harmonic-events")
    assert archive["RetentionDays"] == 7
    patterns = sorted(json.loads(rule["EventPattern"]).get("detail-type", ["*"])[0] for rule in rules)
    expected = sorted(pattern["detail-type"][0] for stage in STAGE_NAMES for pattern in subscriptions(stage))
    # one rule per subscription of every stage, the audit's (every event) and the notifications' (the ends)
    assert patterns == sorted([*expected, "*", "InvocationCompleted"])
    queue_arns = {
        boto3.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        for url in boto3.client("sqs").list_queues()["QueueUrls"]
    }
    for rule in rules:
        (target,) = events.list_targets_by_rule(Rule=rule["Name"], EventBusName="Harmonic-events")["Targets"]
        assert target["Arn"] in queue_arns
