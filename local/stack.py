"""The whole system in one process: moto server, resources from stages.py, SQS pollers, the state machine
with its tasks routed to the real handlers, and the HTTP front.

What is real: the handlers (API, SQS stage, Step Functions task) run unchanged, against S3, SQS, DynamoDB
and Step Functions served by a moto server on 127.0.0.1 over HTTP (boto3 reaches it through
``AWS_ENDPOINT_URL``), so presigned upload URLs work as deployed. What stands in for AWS's managed glue:

- event-source mappings: one poller thread per stage queue, receiving up to the stage's batch size, calling
  the SQS handler with a Lambda-shaped event, deleting the records it did not report as failed; failed
  records come back after the queue's visibility timeout and land in the DLQ after ``maxReceiveCount``
  receives (moto applies the redrive policy);
- Lambda for the state machine: moto's Docker-free Lambda backend (``LambdaSimpleBackend.invoke``) is
  routed to the task handler in-process; a raised exception becomes a function error whose ``errorType``
  the ASL's Retry/Catch match, as with real Lambda;
- API Gateway: :mod:`local.http_front`.

Handlers keep process-wide state, as a Lambda sandbox does: Powertools' batch processor and resolver, and
the Logger's keys (correlation id, stage, invocation id), which every logger of the "harmonic" service shares.
In Lambda each function has its own process; here they share one, so handler calls are serialized by one
lock: every log line then carries its own invocation's keys. Throughput is one handler call at a time.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import re
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from local import ROOT

REGION = "us-east-1"
ACCOUNT = "123456789012"
PREFIX = "harmonic-local"
ASL_PATH = ROOT / "statemachines" / "harmonic.asl.json"
API_GATEWAY_MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway REST's payload limit
log = logging.getLogger("local_stack")


@dataclass(frozen=True)
class LocalSettings:
    """How the local stack runs; every field has an environment variable in ``python -m local``."""

    host: str = "127.0.0.1"
    port: int = 8765  # the HTTP front (PORT)
    moto_port: int = 0  # 0: any free port (MOTO_PORT)
    visibility_timeout_s: int = 5  # deployed: 6x the function timeout; here short so retries are quick
    max_body_bytes: int = API_GATEWAY_MAX_BODY_BYTES
    poll_wait_s: int = 1
    # API Gateway's stage throttling, as cdk.json's api_throttle_rate / api_throttle_burst (0: off)
    throttle_rate: float = 50.0
    throttle_burst: int = 100
    environment: dict[str, str] = field(default_factory=dict)  # extra handler environment (fault injection)


@dataclass
class FakeLambdaContext:
    """The parts of a Lambda context that Powertools reads."""

    function_name: str = "harmonic"
    memory_limit_in_mb: int = 1024
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = "/aws/lambda/local"
    log_stream_name: str = "local"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


class Sandbox:
    """One handler module, called as Lambda would, under the lock all sandboxes share."""

    lock = threading.Lock()  # one for every handler: they share the Logger's state (see the module doc)

    def __init__(self, module: str) -> None:
        self.module = module
        self._handler: Callable[[dict[str, Any], Any], Any] | None = None

    def call(self, event: dict[str, Any], function_name: str, stage: str | None = None) -> Any:
        from harmonic_service.config import stage_override

        with self.lock:
            if self._handler is None:
                self._handler = importlib.import_module(self.module).handler
            token = stage_override.set(stage)
            try:
                return self._handler(event, FakeLambdaContext(function_name=function_name))
            finally:
                stage_override.reset(token)


_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9]+)\}")


def placeholder_function_name(placeholder: str) -> str:
    """Function name of an ASL placeholder: ``IngestFunctionArn`` → ``harmonic-local-ingest``."""
    words = re.findall(r"[A-Z][a-z0-9]*", placeholder.removesuffix("FunctionArn"))
    return f"{PREFIX}-" + "-".join(word.lower() for word in words)


def render_state_machine(asl_text: str) -> tuple[str, dict[str, str]]:
    """The ASL with its ``${...}Arn`` placeholders substituted (as CloudFormation does), and the map of
    function name → stage name ("" for helper tasks that are not a stage)."""
    from harmonic_service.stages import STAGE_NAMES

    function_stage: dict[str, str] = {}

    def arn(match: re.Match[str]) -> str:
        name = placeholder_function_name(match.group(1))
        stage = name.removeprefix(f"{PREFIX}-")
        function_stage[name] = stage if stage in STAGE_NAMES else ""
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"

    rendered = _PLACEHOLDER.sub(arn, asl_text)
    json.loads(rendered)
    return rendered, function_stage


def sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """The event Lambda's SQS event-source mapping delivers for `messages` (from ReceiveMessage)."""
    records = []
    for message in messages:
        attributes = message.get("Attributes", {})
        records.append(
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": {
                    "ApproximateReceiveCount": attributes.get("ApproximateReceiveCount", "1"),
                    "SentTimestamp": attributes.get("SentTimestamp", "0"),
                    "SenderId": attributes.get("SenderId", ACCOUNT),
                    "ApproximateFirstReceiveTimestamp": attributes.get(
                        "ApproximateFirstReceiveTimestamp", "0"
                    ),
                },
                "messageAttributes": {},
                "md5OfBody": message.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            }
        )
    return {"Records": records}


class StagePoller(threading.Thread):
    """Lambda's SQS event-source mapping for one stage: receive a batch, invoke, delete what succeeded."""

    def __init__(self, stack: LocalStack, stage: Any) -> None:
        super().__init__(name=f"poller-{stage.name}", daemon=True)
        self.stack = stack
        self.stage = stage
        self.invocations = 0

    def run(self) -> None:
        sqs = self.stack.client("sqs")
        url = self.stack.queue_urls[self.stage.name]
        arn = self.stack.queue_arns[self.stage.name]
        while not self.stack.stopping.is_set():
            try:
                received = sqs.receive_message(
                    QueueUrl=url,
                    MaxNumberOfMessages=self.stage.batch_size,
                    WaitTimeSeconds=self.stack.settings.poll_wait_s,
                    AttributeNames=["All"],
                )
            except Exception:  # the server is stopping, or a hiccup: try again shortly
                if self.stack.stopping.wait(0.5):
                    return
                continue
            messages = received.get("Messages", [])
            if not messages:
                continue
            self.invocations += 1
            try:
                response = self.stack.pipeline.call(
                    sqs_event(messages, arn), f"{PREFIX}-{self.stage.name}", stage=self.stage.name
                )
                failed = {item["itemIdentifier"] for item in (response or {}).get("batchItemFailures", [])}
            except Exception:  # the whole invocation failed: every record is retried, as with Lambda
                log.exception("stage %s handler raised; the batch will be redelivered", self.stage.name)
                failed = {message["MessageId"] for message in messages}
            done = [m for m in messages if m["MessageId"] not in failed]
            if done:
                sqs.delete_message_batch(
                    QueueUrl=url,
                    Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
                )


class LocalStack:
    """Start with :meth:`start` (or as a context manager); :attr:`base_url` is the API's address."""

    def __init__(self, settings: LocalSettings | None = None) -> None:
        self.settings = settings or LocalSettings()
        self.stopping = threading.Event()
        self.queue_urls: dict[str, str] = {}
        self.queue_arns: dict[str, str] = {}
        self.dlq_urls: dict[str, str] = {}
        self.state_machine_arn = ""
        self.api = Sandbox("harmonic_service.handlers.api")
        self.pipeline = Sandbox("harmonic_service.handlers.pipeline")
        self.task = Sandbox("harmonic_service.handlers.statemachine")
        self.function_stage: dict[str, str] = {}
        self._moto: Any = None
        self._front: Any = None
        self._threads: list[threading.Thread] = []
        self._clients: dict[str, Any] = {}
        self._restore: list[Callable[[], None]] = []

    # --- lifecycle ---------------------------------------------------------------------------------------

    def start(self) -> LocalStack:
        """Start moto, create the resources, then the pollers and the HTTP front."""
        started = time.perf_counter()
        # Metrics are disabled locally, so Powertools keeps the per-invocation dimension and warns each time.
        warnings.filterwarnings("ignore", message="Dimension 'stage' has already been added")
        self._start_moto()
        self._set_environment()
        self._create_resources()
        self._route_lambda()
        self._warm_clients()
        from harmonic_service.stages import STAGES

        for stage in STAGES:
            poller = StagePoller(self, stage)
            poller.start()
            self._threads.append(poller)
        from local.http_front import start_front

        self._front = start_front(self)
        log.info("local stack up in %.1f s at %s", time.perf_counter() - started, self.base_url)
        return self

    def stop(self) -> None:
        """Stop serving, let pollers finish their batch, stop moto, restore the process's environment."""
        self.stopping.set()
        if self._front is not None:
            self._front.shutdown()
            self._front.server_close()
        for thread in self._threads:
            thread.join(timeout=10)
        if self._moto is not None:
            self._wait_for_executions()
            self._moto.stop()
        for restore in reversed(self._restore):
            restore()
        self._restore.clear()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        host, port = self._front.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def moto_url(self) -> str:
        host, port = self._moto.get_host_and_port()
        return f"http://{host}:{port}"

    def client(self, service: str) -> Any:
        """A boto3 client for the local AWS (clients are thread-safe; creating them is not)."""
        return self._clients[service]

    # --- pieces ------------------------------------------------------------------------------------------

    def _start_moto(self) -> None:
        from moto.core.config import default_user_config
        from moto.moto_server.threaded_moto_server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per moto request is noise
        saved = json.loads(json.dumps(default_user_config))
        default_user_config["stepfunctions"] = {"execute_state_machine": True}
        default_user_config["lambda"] = {"use_docker": False}
        self._restore.append(lambda: default_user_config.update(saved))
        self._moto = ThreadedMotoServer(
            ip_address=self.settings.host, port=self.settings.moto_port, verbose=False
        )
        self._moto.start()

    def _set_env(self, name: str, value: str | None) -> None:
        previous = os.environ.get(name)
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value

        def restore() -> None:
            if previous is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = previous

        self._restore.append(restore)

    def _set_environment(self) -> None:
        """Fake credentials and the environment of a deployed function (docs/design.md)."""
        _, port = self._moto.get_host_and_port()
        for name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "STAGE_NAME"):
            self._set_env(name, None)
        for name, value in {
            "MOTO_PORT": str(port),  # moto's Step Functions reaches its own server through it
            "AWS_ENDPOINT_URL": self.moto_url,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_SESSION_TOKEN": "local",
            "POWERTOOLS_SERVICE_NAME": "harmonic",
            "POWERTOOLS_METRICS_NAMESPACE": "Harmonic",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "INVOCATIONS_TABLE": f"{PREFIX}-invocations",
            "IDEMPOTENCY_TABLE": f"{PREFIX}-idempotency",
            "PATTERNS_TABLE": f"{PREFIX}-patterns",
            "PAYLOAD_BUCKET": f"{PREFIX}-payloads",
            "ORCHESTRATION": "both",
            **self.settings.environment,
        }.items():
            self._set_env(name, value)
        import boto3

        for service in ("s3", "sqs", "dynamodb", "stepfunctions"):
            self._clients[service] = boto3.client(service, region_name=REGION)

    def _create_resources(self) -> None:
        """Bucket, tables, stage queues with DLQs (from stages.py) and the state machine (from the ASL)."""
        from harmonic_service.config import clear_caches
        from harmonic_service.stages import STAGES

        self.client("s3").create_bucket(Bucket=os.environ["PAYLOAD_BUCKET"])
        for variable, key in (
            ("INVOCATIONS_TABLE", "invocation_id"),
            ("IDEMPOTENCY_TABLE", "id"),
            ("PATTERNS_TABLE", "pattern_id"),
        ):
            self.client("dynamodb").create_table(
                TableName=os.environ[variable],
                KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
        sqs = self.client("sqs")
        for stage in STAGES:
            dlq_url = sqs.create_queue(QueueName=f"{PREFIX}-{stage.name}-dlq")["QueueUrl"]
            dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]
            redrive = {
                "deadLetterTargetArn": dlq_arn["QueueArn"],
                "maxReceiveCount": str(stage.max_receive_count),
            }
            url = sqs.create_queue(
                QueueName=f"{PREFIX}-{stage.name}",
                Attributes={
                    "VisibilityTimeout": str(self.settings.visibility_timeout_s),
                    "RedrivePolicy": json.dumps(redrive),
                },
            )["QueueUrl"]
            self.queue_urls[stage.name] = url
            self.queue_arns[stage.name] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
                "Attributes"
            ]["QueueArn"]
            self.dlq_urls[stage.name] = dlq_url
        self._set_env("STAGE_QUEUE_URLS", json.dumps(self.queue_urls))
        if ASL_PATH.exists():
            definition, self.function_stage = render_state_machine(ASL_PATH.read_text())
            self.state_machine_arn = self.client("stepfunctions").create_state_machine(
                name=f"{PREFIX}-harmonic",
                definition=definition,
                roleArn=f"arn:aws:iam::{ACCOUNT}:role/{PREFIX}-state-machine",
                type="STANDARD",
            )["stateMachineArn"]
        self._set_env("STATE_MACHINE_ARN", self.state_machine_arn)
        if not self.state_machine_arn:
            self._set_env("ORCHESTRATION", "pipeline")
        clear_caches()

    def _route_lambda(self) -> None:
        """moto's Lambda invocations (the state machine's tasks) → the task handler, in this process."""
        from moto.awslambda_simple.models import LambdaSimpleBackend

        stack = self
        original = LambdaSimpleBackend.invoke

        def invoke(
            backend: Any, function_name: str, qualifier: Any, body: Any, headers: Any, response_headers: Any
        ) -> bytes:
            name = function_name.rsplit(":", 1)[-1]
            event = json.loads(body or "{}")
            try:
                result = stack.task.call(event, name, stage=stack.function_stage.get(name, ""))
            except Exception as error:  # a function error, reported as the Lambda runtime does
                response_headers["x-amz-function-error"] = "Unhandled"
                return json.dumps({"errorType": type(error).__name__, "errorMessage": str(error)}).encode()
            return json.dumps(result).encode()

        LambdaSimpleBackend.invoke = invoke  # type: ignore[method-assign]
        self._restore.append(lambda: setattr(LambdaSimpleBackend, "invoke", original))

    def _warm_clients(self) -> None:
        """Create the handlers' boto3 clients once, before threads race to create them."""
        from harmonic_service.dal import clients

        for make in (clients.s3, clients.sqs, clients.dynamodb, clients.stepfunctions):
            make()

    def _wait_for_executions(self, timeout_s: float = 10.0) -> None:
        if not self.state_machine_arn:
            return
        deadline = time.monotonic() + timeout_s
        with contextlib.suppress(Exception):
            while time.monotonic() < deadline:
                running = self.client("stepfunctions").list_executions(
                    stateMachineArn=self.state_machine_arn, statusFilter="RUNNING"
                )["executions"]
                if not running:
                    return
                time.sleep(0.1)

    # --- inspection (tests, demo, chaos) -------------------------------------------------------------------

    def queue_depths(self, dlq: bool = False) -> dict[str, int]:
        """Messages visible + in flight per stage queue (or DLQ)."""
        depths = {}
        for stage, url in (self.dlq_urls if dlq else self.queue_urls).items():
            attributes = self.client("sqs").get_queue_attributes(
                QueueUrl=url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
            depths[stage] = sum(int(value) for value in attributes.values())
        return depths


@contextlib.contextmanager
def running(settings: LocalSettings | None = None) -> Iterator[LocalStack]:
    """``with running() as stack:`` the local stack, stopped on exit."""
    stack = LocalStack(settings)
    try:
        yield stack.start()
    finally:
        stack.stop()
