"""The whole backend under moto: tables, bucket and queues built from stages.py, and a pipeline driver.

Fixtures and helpers meant for every integration test (the service's and the API's):

- `aws`: an `AwsStack` inside `mock_aws`, with the environment of a deployed function set (docs/design.md)
  and the service's caches (settings, boto3 clients) cleared before and after.
- `drain_pipeline(aws)` (also `aws.drain()`): feeds every stage queue's messages to the real SQS handler
  (`harmonic_service.handlers.pipeline.handler`) as Lambda would, deleting the records the handler did not
  report as failed, until every queue is empty. Failed records are redelivered on the next round with a
  higher ApproximateReceiveCount and move to the stage's DLQ after `max_receive_count` deliveries.
- `wav_bytes(samples, sr)`: a 16-bit PCM WAV written by scipy (independent of harmonic's encoder).
- `sfn_aws`: the same stack plus the state machine (statemachines/harmonic.asl.json, its `${...}` function
  ARNs substituted as CloudFormation's DefinitionSubstitutions would) executed by moto
  (`execute_state_machine`), with every Lambda invocation of its tasks routed to the real task handler
  (`harmonic_service.handlers.statemachine.handler`) in-process by a `TaskRouter`; ORCHESTRATION=both.
  Retry waits are recorded and shortened (`RETRY_TIME_SCALE`): moto sleeps the ASL's intervals literally.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from harmonic_service.config import clear_caches
from harmonic_service.stages import STAGE_NAMES, STAGES
from moto import mock_aws

from local.stack import FakeLambdaContext as LocalLambdaContext
from local.stack import sqs_event

REGION = "us-east-1"
ACCOUNT = "123456789012"
BUCKET = "harmonic-test-payloads"
INVOCATIONS_TABLE = "harmonic-test-invocations"
IDEMPOTENCY_TABLE = "harmonic-test-idempotency"
PATTERNS_TABLE = "harmonic-test-patterns"
ASL_PATH = Path(__file__).resolve().parents[2] / "statemachines" / "harmonic.asl.json"
STATE_MACHINE_NAME = "harmonic-test"
TASK_FUNCTION_PREFIX = "harmonic-task-"
# moto sleeps each Retry interval literally; tests wait this fraction of it (and record what was asked).
RETRY_TIME_SCALE = 0.01
SFN_CONFIG = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}


def wav_bytes(samples: np.ndarray, sr: int) -> bytes:
    """16-bit PCM WAV of float samples in [-1, 1] (mono `(n,)` or channel-last `(n, channels)`)."""
    from scipy.io import wavfile

    pcm = np.clip(np.round(np.asarray(samples, dtype=np.float64) * 32767.0), -32768, 32767).astype(np.int16)
    buffer = io.BytesIO()
    wavfile.write(buffer, sr, pcm)
    return buffer.getvalue()


FakeLambdaContext = LocalLambdaContext  # re-exported for the tests that import it from here


@dataclass
class DrainReport:
    """What one `drain_pipeline` run did."""

    deliveries: Counter = field(default_factory=Counter)  # stage → records handed to the handler
    failures: list[tuple[str, str]] = field(default_factory=list)  # (stage, message body) reported failed
    rounds: int = 0


@dataclass
class AwsStack:
    """The mocked resources of one test, and clients to inspect them."""

    monkeypatch: pytest.MonkeyPatch
    queue_urls: dict[str, str]
    dlq_urls: dict[str, str]
    bucket: str = BUCKET
    invocations_table: str = INVOCATIONS_TABLE
    state_machine_arn: str = ""
    router: TaskRouter | None = None

    @property
    def s3(self) -> Any:
        import boto3

        return boto3.client("s3", region_name=REGION)

    @property
    def sqs(self) -> Any:
        import boto3

        return boto3.client("sqs", region_name=REGION)

    def s3_keys(self, prefix: str = "") -> list[str]:
        response = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return sorted(obj["Key"] for obj in response.get("Contents", []))

    def queue_depth(self, url: str) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )

    def dlq_depths(self) -> dict[str, int]:
        return {stage: self.queue_depth(url) for stage, url in self.dlq_urls.items()}

    def send(self, stage: str, body: str) -> None:
        """Put a raw message on a stage queue (as if another stage or a client had sent it)."""
        self.sqs.send_message(QueueUrl=self.queue_urls[stage], MessageBody=body)

    def drain(self, **kwargs: Any) -> DrainReport:
        return drain_pipeline(self, **kwargs)

    @property
    def sfn(self) -> Any:
        import boto3

        return boto3.client("stepfunctions", region_name=REGION)

    def executions(self) -> list[dict[str, Any]]:
        """Every execution of the state machine (newest first, as Step Functions lists them)."""
        return self.sfn.list_executions(stateMachineArn=self.state_machine_arn)["executions"]

    def execution_arn(self, name: str) -> str:
        return self.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"

    def wait_for_execution(self, name: str, timeout_s: float = 120.0) -> dict[str, Any]:
        """describe_execution of execution `name` once it is no longer RUNNING."""
        deadline = time.monotonic() + timeout_s
        arn = self.execution_arn(name)
        while True:
            described = self.sfn.describe_execution(executionArn=arn)
            if described["status"] != "RUNNING":
                return described
            if time.monotonic() > deadline:
                raise AssertionError(f"execution {name} still RUNNING after {timeout_s} s")
            time.sleep(0.02)

    def history(self, name: str) -> list[dict[str, Any]]:
        """The execution's history events, oldest first."""
        arn = self.execution_arn(name)
        return self.sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]

    def entered_states(self, name: str) -> list[str]:
        """The names of the states the execution entered, in order."""
        return [
            event["stateEnteredEventDetails"]["name"]
            for event in self.history(name)
            if "stateEnteredEventDetails" in event
        ]


def _create_resources() -> tuple[dict[str, str], dict[str, str]]:
    import boto3

    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    for table, key in (
        (INVOCATIONS_TABLE, "invocation_id"),
        (IDEMPOTENCY_TABLE, "id"),
        (PATTERNS_TABLE, "pattern_id"),
    ):
        dynamodb.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    sqs = boto3.client("sqs", region_name=REGION)
    queue_urls: dict[str, str] = {}
    dlq_urls: dict[str, str] = {}
    for stage in STAGES:
        dlq_url = sqs.create_queue(QueueName=f"harmonic-{stage.name}-dlq")["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]
        dlq_arn = attributes["QueueArn"]
        redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(stage.max_receive_count)}
        queue_urls[stage.name] = sqs.create_queue(
            QueueName=f"harmonic-{stage.name}",
            Attributes={
                "VisibilityTimeout": str(stage.queue_visibility_timeout_s),
                "RedrivePolicy": json.dumps(redrive),
            },
        )["QueueUrl"]
        dlq_urls[stage.name] = dlq_url
    return queue_urls, dlq_urls


@contextlib.contextmanager
def _mocked_stack(
    monkeypatch: pytest.MonkeyPatch, config: dict[str, Any] | None = None
) -> Iterator[tuple[dict[str, str], dict[str, str]]]:
    """mock_aws (with `config`), Harmonic's resources and a deployed function's environment."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_LAMBDA_FUNCTION_NAME", "LAMBDA_TASK_ROOT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "POWERTOOLS_SERVICE_NAME": "harmonic",
        "POWERTOOLS_METRICS_NAMESPACE": "Harmonic",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    clear_caches()
    with mock_aws(config=config):
        queue_urls, dlq_urls = _create_resources()
        for name, value in {
            "INVOCATIONS_TABLE": INVOCATIONS_TABLE,
            "IDEMPOTENCY_TABLE": IDEMPOTENCY_TABLE,
            "PATTERNS_TABLE": PATTERNS_TABLE,
            "PAYLOAD_BUCKET": BUCKET,
            "STAGE_QUEUE_URLS": json.dumps(queue_urls),
            "STATE_MACHINE_ARN": "",
            "ORCHESTRATION": "pipeline",
            "RETENTION_DAYS": "1",
        }.items():
            monkeypatch.setenv(name, value)
        clear_caches()
        yield queue_urls, dlq_urls
    clear_caches()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsStack]:
    """moto S3/SQS/DynamoDB/Step Functions with Harmonic's resources and a deployed function's environment."""
    with _mocked_stack(monkeypatch) as (queue_urls, dlq_urls):
        yield AwsStack(monkeypatch=monkeypatch, queue_urls=queue_urls, dlq_urls=dlq_urls)


# --- the state machine under moto ------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9]+)\}")


def task_function_name(placeholder: str) -> str:
    """`IngestFunctionArn` → `harmonic-task-ingest`; `RecordFailureFunctionArn` → `...-record-failure`."""
    words = re.findall(r"[A-Z][a-z0-9]*", placeholder.removesuffix("FunctionArn"))
    return TASK_FUNCTION_PREFIX + "-".join(word.lower() for word in words)


def asl_substitutions(asl_text: str) -> dict[str, str]:
    """{placeholder: Lambda function ARN} for every `${...}` of the ASL (what the CDK stack substitutes)."""
    return {
        key: f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{task_function_name(key)}"
        for key in sorted(set(_PLACEHOLDER.findall(asl_text)))
    }


def render_asl(asl_text: str, substitutions: dict[str, str]) -> str:
    """The definition with `${key}` replaced, as CloudFormation applies DefinitionSubstitutions."""
    rendered = _PLACEHOLDER.sub(lambda m: substitutions[m.group(1)], asl_text)
    json.loads(rendered)
    return rendered


@dataclass
class TaskRouter:
    """Routes the Lambda invocations of moto's Step Functions tasks to the in-process task handler.

    Patched over `LambdaSimpleBackend.invoke` (moto's Docker-free Lambda): the payload is the task's event,
    the function name says which stage (`STAGE_NAME`) it is; the handler's return value is the JSON payload,
    and an exception becomes a function error (`X-Amz-Function-Error: Unhandled`, `{"errorType",
    "errorMessage"}`) whose errorType Step Functions' Retry/Catch match on, as with a real Lambda.

    `before[function name](event)` hooks run before the handler, `after[function name](event, result)` after
    it: raising a moto `JsonRESTError` there makes the Lambda API call itself fail (e.g. ServiceException,
    which Step Functions reports as `Lambda.ServiceException`); any other exception is a function error.
    `calls` records (function name, event), `request_ids` the invocations' Lambda request ids and
    `retry_waits` the Retry intervals moto was asked to sleep.
    """

    stage_of: dict[str, str]
    before: dict[str, Callable[[dict[str, Any]], None]] = field(default_factory=dict)
    after: dict[str, Callable[[dict[str, Any], Any], None]] = field(default_factory=dict)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    request_ids: list[str] = field(default_factory=list)
    retry_waits: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def invoke(self, function_name: str, body: Any) -> tuple[bytes, str | None]:
        from harmonic_service.handlers import statemachine
        from moto.core.exceptions import JsonRESTError

        name = function_name.rsplit(":", 1)[-1]
        event = json.loads(body or "{}")
        with self.lock:
            self.calls.append((name, event))
            previous = os.environ.get("STAGE_NAME")
            os.environ["STAGE_NAME"] = self.stage_of.get(name, "")
            try:
                if name in self.before:
                    self.before[name](event)
                context = FakeLambdaContext(function_name=name)
                self.request_ids.append(context.aws_request_id)
                result = statemachine.handler(event, context)
                if name in self.after:
                    self.after[name](event, result)
            except JsonRESTError:  # the Lambda service failed (not the function)
                raise
            except Exception as error:  # a function error, as the Lambda runtime reports it
                payload = {"errorType": type(error).__name__, "errorMessage": str(error)}
                return json.dumps(payload).encode(), "Unhandled"
            finally:
                if previous is None:
                    os.environ.pop("STAGE_NAME", None)
                else:
                    os.environ["STAGE_NAME"] = previous
        return json.dumps(result).encode(), None

    def calls_to(self, stage_or_name: str) -> list[dict[str, Any]]:
        name = stage_or_name
        if not name.startswith(TASK_FUNCTION_PREFIX):
            name = TASK_FUNCTION_PREFIX + name
        return [event for called, event in self.calls if called == name]


def _route_lambda_to(router: TaskRouter, monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.awslambda_simple.models import LambdaSimpleBackend
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    def invoke(
        backend: Any, function_name: str, qualifier: Any, body: Any, headers: Any, response_headers: Any
    ) -> bytes:
        payload, function_error = router.invoke(function_name, body)
        if function_error:
            response_headers["x-amz-function-error"] = function_error
        return payload

    class _ScaledTime:
        """`time` for moto's retrier: records each Retry wait and sleeps RETRY_TIME_SCALE of it."""

        @staticmethod
        def sleep(seconds: float) -> None:
            router.retry_waits.append(seconds)
            time.sleep(seconds * RETRY_TIME_SCALE)

    monkeypatch.setattr(LambdaSimpleBackend, "invoke", invoke)
    monkeypatch.setattr(retrier_decl, "time", _ScaledTime)


def _wait_for_running_executions(stack: AwsStack, timeout_s: float = 30.0) -> None:
    """Let executions still running finish inside the mock (their worker threads use it)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not any(e["status"] == "RUNNING" for e in stack.executions()):
            return
        time.sleep(0.05)


@pytest.fixture
def sfn_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsStack]:
    """`aws` plus the state machine, executed by moto with its tasks routed to the in-process handler."""
    import boto3

    asl_text = ASL_PATH.read_text()
    substitutions = asl_substitutions(asl_text)
    stage_of = {
        task_function_name(key): name
        for key in substitutions
        for name in STAGE_NAMES
        if task_function_name(key) == TASK_FUNCTION_PREFIX + name
    }
    router = TaskRouter(stage_of=stage_of)
    _route_lambda_to(router, monkeypatch)
    with _mocked_stack(monkeypatch, config=SFN_CONFIG) as (queue_urls, dlq_urls):
        arn = boto3.client("stepfunctions", region_name=REGION).create_state_machine(
            name=STATE_MACHINE_NAME,
            definition=render_asl(asl_text, substitutions),
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/harmonic-test-state-machine",
            type="STANDARD",
        )["stateMachineArn"]
        monkeypatch.setenv("STATE_MACHINE_ARN", arn)
        monkeypatch.setenv("ORCHESTRATION", "both")
        clear_caches()
        stack = AwsStack(
            monkeypatch=monkeypatch,
            queue_urls=queue_urls,
            dlq_urls=dlq_urls,
            state_machine_arn=arn,
            router=router,
        )
        try:
            yield stack
        finally:
            _wait_for_running_executions(stack)


def drain_pipeline(aws: AwsStack, *, duplicate: bool = False, max_rounds: int = 100) -> DrainReport:
    """Run the pipeline handler on every queued message, stage by stage, until all queues are empty.

    `duplicate=True` delivers every batch twice (the second time before the first is deleted), as SQS's
    at-least-once delivery may. Raises AssertionError if the queues are not empty after `max_rounds`.
    """
    from harmonic_service.handlers import pipeline

    sqs = aws.sqs
    report = DrainReport()
    previous_stage = os.environ.get("STAGE_NAME")
    try:
        for _ in range(max_rounds):
            report.rounds += 1
            handled = 0
            for stage in STAGES:
                url = aws.queue_urls[stage.name]
                messages = sqs.receive_message(
                    QueueUrl=url,
                    MaxNumberOfMessages=stage.batch_size,
                    VisibilityTimeout=0,
                    AttributeNames=["All"],
                ).get("Messages", [])
                if not messages:
                    continue
                handled += len(messages)
                arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:harmonic-{stage.name}"
                event = sqs_event(messages, arn)
                os.environ["STAGE_NAME"] = stage.name
                context = FakeLambdaContext(function_name=f"harmonic-{stage.name}")
                response = pipeline.handler(event, context)
                if duplicate:
                    pipeline.handler(event, FakeLambdaContext(function_name=f"harmonic-{stage.name}"))
                report.deliveries[stage.name] += len(messages)
                failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
                for message in messages:
                    if message["MessageId"] in failed:
                        report.failures.append((stage.name, message["Body"]))
                    else:
                        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            if handled == 0:
                return report
        raise AssertionError(f"queues still busy after {max_rounds} rounds: {report}")
    finally:
        if previous_stage is None:
            os.environ.pop("STAGE_NAME", None)
        else:
            os.environ["STAGE_NAME"] = previous_stage
