"""Harmonic's handlers against moto, as Lambda would run them: the one harness behind the local stack
(:mod:`local.stack`) and the integration tests (tests/integration/conftest.py).

Each piece of AWS's managed glue is written here once:

- the resources: :func:`provision` creates the bucket, the three tables, every stage's queue with its DLQ
  and redrive policy (from ``harmonic_service.stages``) and, given the ASL, the state machine with its
  ``${...FunctionArn}`` placeholders substituted as CloudFormation does (:func:`render_state_machine`);
  :meth:`Resources.environment` is what a deployed function is told about them;
- a Lambda sandbox: :class:`Sandbox` calls a handler module with a :class:`FakeLambdaContext`, the stage
  set through ``harmonic_service.config.stage_override`` and under a lock (handlers share process-wide
  state: Powertools' Logger keys, batch processor and resolver);
- the SQS event-source mapping: :class:`StageConsumer` receives up to a stage's batch size, calls the
  pipeline handler with the event Lambda delivers (:func:`sqs_event`) and deletes the records the handler
  did not report as failed;
- Lambda for the state machine: :func:`route_lambda` patches moto's Docker-free Lambda backend so that the
  state machine's tasks reach the task handler in-process through a :class:`TaskRouter`; a raised exception
  becomes a function error whose ``errorType`` the ASL's Retry/Catch match, as with real Lambda.

Everything that touches boto3, moto or ``harmonic_service`` imports it inside the function: moto (the
server or ``mock_aws``) must be running before a boto3 client exists.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from harmonic_service.config import stage_override
from harmonic_service.dal.checkpoints import INDEXES as INVOCATION_INDEXES
from harmonic_service.dal.checkpoints import Index
from harmonic_service.events import AUDIT, SUBSCRIBERS
from harmonic_service.stages import STAGE_NAMES, STAGES
from infra.asl import substitution_key
from local import ROOT

REGION = "us-east-1"
ACCOUNT = "123456789012"
ASL_PATH = ROOT / "statemachines" / "harmonic.asl.json"
SERVICES = ("s3", "sqs", "dynamodb", "stepfunctions", "events", "secretsmanager")
# moto runs state machines (off by default) and its Lambda without Docker (the tasks are routed in-process).
MOTO_CONFIG: dict[str, dict[str, bool]] = {
    "stepfunctions": {"execute_state_machine": True},
    "lambda": {"use_docker": False},
}
API_HANDLER = "harmonic_service.handlers.api"
PIPELINE_HANDLER = "harmonic_service.handlers.pipeline"
EVENTS_HANDLER = "harmonic_service.handlers.events"
TASK_HANDLER = "harmonic_service.handlers.statemachine"
SWEEPER_HANDLER = "harmonic_service.handlers.sweeper"
# (environment variable, table name suffix, hash key) of each DynamoDB table (docs/design.md)
TABLES = (
    ("INVOCATIONS_TABLE", "invocations", "invocation_id"),
    ("IDEMPOTENCY_TABLE", "idempotency", "id"),
    ("PATTERNS_TABLE", "patterns", "pattern_id"),
    ("AUDIT_TABLE", "audit", "invocation_id"),
)
# Tables with a sort key as well (name suffix → sort key).
SORT_KEYS = {"audit": "event_key"}
AUDIT_HANDLER = "harmonic_service.handlers.audit"
# Variables that would point boto3 or Powertools elsewhere than the harness's fake AWS and sandbox.
UNSET_VARIABLES = (
    "AWS_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_ENDPOINT_URL",
    "AWS_LAMBDA_FUNCTION_NAME",
    "LAMBDA_TASK_ROOT",
    "STAGE_NAME",
)
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9]+)\}")
log = logging.getLogger("local_stack")


def function_arn(name: str) -> str:
    """The ARN of Lambda function `name` in the harness's account and region."""
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


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
        return function_arn(self.function_name)

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


@dataclass(frozen=True)
class Names:
    """What one stack calls its resources: ``{prefix}-payloads``, ``{prefix}-invocations``…, the stage
    queues ``{prefix}-{stage}`` and ``{prefix}-{stage}-dlq``; its functions ``{function_prefix}{name}``
    (default ``{prefix}-``) and its state machine ``state_machine`` (default ``{prefix}-harmonic``)."""

    prefix: str
    function_prefix: str = ""
    state_machine: str = ""

    def __post_init__(self) -> None:
        if not self.function_prefix:
            object.__setattr__(self, "function_prefix", f"{self.prefix}-")
        if not self.state_machine:
            object.__setattr__(self, "state_machine", f"{self.prefix}-harmonic")

    @property
    def bucket(self) -> str:
        return f"{self.prefix}-payloads"

    def table(self, kind: str) -> str:
        """``kind``: invocations, idempotency or patterns."""
        return f"{self.prefix}-{kind}"

    def queue(self, stage: str, dlq: bool = False, events: bool = False) -> str:
        """A stage's queue: the pipeline's, or (`events`) the one its event rules fill."""
        return f"{self.prefix}-{'events-' if events else ''}{stage}" + ("-dlq" if dlq else "")

    @property
    def bus(self) -> str:
        return f"{self.prefix}-bus"

    @property
    def archive(self) -> str:
        return f"{self.prefix}-events"

    def rule(self, stage: str, index: int) -> str:
        return f"{self.prefix}-{stage}-{index}"

    def function(self, name: str) -> str:
        """A function's name: a stage (``ingest``), ``api`` or a helper task (``record-failure``)."""
        return f"{self.function_prefix}{name}"

    @property
    def role_arn(self) -> str:
        return f"arn:aws:iam::{ACCOUNT}:role/{self.prefix}-state-machine"


def fake_aws_environment(credential: str) -> dict[str, str | None]:
    """The process environment for handlers against moto: fake credentials in ``credential``, the region,
    Powertools' service settings; ``None`` for a variable that must be unset (:data:`UNSET_VARIABLES`)."""
    environment: dict[str, str | None] = dict.fromkeys(UNSET_VARIABLES)
    environment.update(
        {
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": credential,
            "AWS_SECRET_ACCESS_KEY": credential,
            "AWS_SESSION_TOKEN": credential,
            "POWERTOOLS_SERVICE_NAME": "harmonic",
            "POWERTOOLS_METRICS_NAMESPACE": "Harmonic",
            "POWERTOOLS_TRACE_DISABLED": "true",
        }
    )
    return environment


def aws_clients() -> dict[str, Any]:
    """One boto3 client per service the harness uses, for the AWS the environment points at (moto)."""
    import boto3

    return {service: boto3.client(service, region_name=REGION) for service in SERVICES}


# --- the state machine's definition -----------------------------------------------------------------------


def placeholder_function_name(placeholder: str, function_prefix: str) -> str:
    """The function an ASL placeholder names: a stage's function is named after the stage
    (``IngestFunctionArn`` → ``{function_prefix}ingest``), a helper task after its words
    (``RecordFailureFunctionArn`` → ``{function_prefix}record-failure``)."""
    by_placeholder = {substitution_key(stage.name): stage.name for stage in STAGES}
    if placeholder in by_placeholder:
        return function_prefix + by_placeholder[placeholder]
    words = re.findall(r"[A-Z][a-z0-9]*", placeholder.removesuffix("FunctionArn"))
    return function_prefix + "-".join(word.lower() for word in words)


def render_state_machine(asl_text: str, function_prefix: str) -> tuple[str, dict[str, str]]:
    """The ASL with its ``${...}`` placeholders substituted by function ARNs (as CloudFormation applies the
    CDK stack's DefinitionSubstitutions), and the map function name → stage name ("" for helper tasks
    that are not a stage, such as record-failure)."""
    function_stage: dict[str, str] = {}

    def arn(match: re.Match[str]) -> str:
        name = placeholder_function_name(match.group(1), function_prefix)
        stage = name.removeprefix(function_prefix)
        function_stage[name] = stage if stage in STAGE_NAMES else ""
        return function_arn(name)

    rendered = _PLACEHOLDER.sub(arn, asl_text)
    json.loads(rendered)  # a placeholder inside a string must leave valid JSON
    return rendered, function_stage


# --- the resources ----------------------------------------------------------------------------------------


@dataclass
class Resources:
    """What :func:`provision` created, and the clients it used."""

    names: Names
    clients: Mapping[str, Any]
    stages: tuple[Any, ...]  # harmonic_service.stages.STAGES
    queue_urls: dict[str, str] = field(default_factory=dict)
    queue_arns: dict[str, str] = field(default_factory=dict)
    dlq_urls: dict[str, str] = field(default_factory=dict)
    state_machine_arn: str = ""
    function_stage: dict[str, str] = field(default_factory=dict)  # see render_state_machine
    # events mode: the bus, and each stage's queue that its rules fill (with its DLQ)
    event_bus_name: str = ""
    event_queue_urls: dict[str, str] = field(default_factory=dict)
    event_queue_arns: dict[str, str] = field(default_factory=dict)
    event_dlq_urls: dict[str, str] = field(default_factory=dict)
    # the bus's other subscribers (harmonic_service.events.SUBSCRIBERS): name → (queue URL, ARN, DLQ URL)
    subscriber_queues: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    callback_secret_id: str = ""  # completion notifications' signing secret
    visibility_timeout_s: int = 0  # the stage queues' visibility timeout when overridden (0: declared)

    def environment(self) -> dict[str, str]:
        """The variables a deployed function gets about these resources (docs/design.md); ORCHESTRATION
        names the modes they support (the state machine only when it was created)."""
        modes = ["pipeline", *(["statemachine"] if self.state_machine_arn else []), "events"]
        return {
            **{variable: self.names.table(kind) for variable, kind, _ in TABLES},
            "PAYLOAD_BUCKET": self.names.bucket,
            "STAGE_QUEUE_URLS": json.dumps(self.queue_urls),
            "STATE_MACHINE_ARN": self.state_machine_arn,
            "EVENT_BUS_NAME": self.event_bus_name,
            "CALLBACK_SECRET_ID": self.callback_secret_id,
            "ORCHESTRATION": ",".join(modes),
            "QUEUE_VISIBILITY_TIMEOUT_S": str(self.visibility_timeout_s),
        }

    def subscriber_consumer(self, subscriber: Any, sandbox: Sandbox) -> StageConsumer:
        """The event-source mapping of a bus subscriber (harmonic_service.events.Subscriber)."""
        url, arn, _ = self.subscriber_queues[subscriber.name]
        return StageConsumer(
            stage=subscriber,
            sqs=self.clients["sqs"],
            queue_url=url,
            queue_arn=arn,
            sandbox=sandbox,
            function_name=self.names.function(subscriber.name),
        )

    def audit_consumer(self, sandbox: Sandbox) -> StageConsumer:
        """The audit subscriber's event-source mapping."""
        return self.subscriber_consumer(AUDIT, sandbox)

    def consumers(self, sandbox: Sandbox, *, events: bool = False) -> list[StageConsumer]:
        """One event-source mapping per stage queue (`events`: per events-mode queue), in stage order,
        invoking `sandbox`."""
        urls, arns = (
            (self.event_queue_urls, self.event_queue_arns) if events else (self.queue_urls, self.queue_arns)
        )
        return [
            StageConsumer(
                stage=stage,
                sqs=self.clients["sqs"],
                queue_url=urls[stage.name],
                queue_arn=arns[stage.name],
                sandbox=sandbox,
                function_name=self.names.function(("events-" if events else "") + stage.name),
            )
            for stage in self.stages
        ]


def _index(index: Index) -> dict[str, Any]:
    """A global secondary index of checkpoints.INDEXES as CreateTable takes it."""
    projection: dict[str, Any] = {"ProjectionType": "INCLUDE" if index.include else "KEYS_ONLY"}
    if index.include:
        projection["NonKeyAttributes"] = list(index.include)
    return {
        "IndexName": index.name,
        "KeySchema": [
            {"AttributeName": index.partition_key[0], "KeyType": "HASH"},
            {"AttributeName": index.sort_key[0], "KeyType": "RANGE"},
        ],
        "Projection": projection,
    }


def provision(
    names: Names,
    clients: Mapping[str, Any],
    *,
    visibility_timeout_s: int | None = None,
    asl_text: str | None = None,
) -> Resources:
    """Create the bucket, the tables, each stage's queue and DLQ (redrive after the stage's
    ``max_receive_count`` receives; visibility timeout `visibility_timeout_s`, or the stage's own when
    None) and, when `asl_text` is given, the state machine."""
    resources = Resources(
        names=names, clients=clients, stages=tuple(STAGES), visibility_timeout_s=visibility_timeout_s or 0
    )
    clients["s3"].create_bucket(Bucket=names.bucket)
    for _, kind, key in TABLES:
        schema = [{"AttributeName": key, "KeyType": "HASH"}]
        if kind in SORT_KEYS:
            schema.append({"AttributeName": SORT_KEYS[kind], "KeyType": "RANGE"})
        attributes = [{"AttributeName": k["AttributeName"], "AttributeType": "S"} for k in schema]
        indexes = {}
        if kind == "invocations":  # the sweeper's and the history's indexes, as the infra declares them
            index_keys = dict(key for i in INVOCATION_INDEXES for key in (i.partition_key, i.sort_key))
            attributes += [{"AttributeName": a, "AttributeType": t} for a, t in index_keys.items()]
            indexes["GlobalSecondaryIndexes"] = [_index(index) for index in INVOCATION_INDEXES]
        clients["dynamodb"].create_table(
            TableName=names.table(kind),
            KeySchema=schema,
            AttributeDefinitions=attributes,
            BillingMode="PAY_PER_REQUEST",
            **indexes,
        )
    sqs = clients["sqs"]

    def queue_arn(url: str) -> str:
        return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    def stage_queue(stage: Any, events: bool) -> tuple[str, str, str]:
        """(URL, ARN, DLQ URL) of the queue of `stage` (a stage, or a bus subscriber such as the audit)."""
        dlq_url = sqs.create_queue(QueueName=names.queue(stage.name, dlq=True, events=events))["QueueUrl"]
        redrive = {"deadLetterTargetArn": queue_arn(dlq_url), "maxReceiveCount": str(stage.max_receive_count)}
        visibility = (
            stage.queue_visibility_timeout_s if visibility_timeout_s is None else visibility_timeout_s
        )
        url = sqs.create_queue(
            QueueName=names.queue(stage.name, events=events),
            Attributes={"VisibilityTimeout": str(visibility), "RedrivePolicy": json.dumps(redrive)},
        )["QueueUrl"]
        return url, queue_arn(url), dlq_url

    for stage in resources.stages:
        url, arn, dlq_url = stage_queue(stage, events=False)
        resources.queue_urls[stage.name], resources.queue_arns[stage.name] = url, arn
        resources.dlq_urls[stage.name] = dlq_url
    _provision_bus(resources, stage_queue)
    if asl_text is not None:
        definition, resources.function_stage = render_state_machine(asl_text, names.function_prefix)
        resources.state_machine_arn = clients["stepfunctions"].create_state_machine(
            name=names.state_machine, definition=definition, roleArn=names.role_arn, type="STANDARD"
        )["stateMachineArn"]
    return resources


def _provision_bus(resources: Resources, stage_queue: Callable[[Any, bool], tuple[str, str, str]]) -> None:
    """Events mode: the bus, each stage's queue (with its DLQ) and the rules that fill it, from the stage
    table's subscriptions (harmonic_service.events)."""
    from harmonic_service.events import SOURCE, all_subscriptions

    names, bus = resources.names, resources.clients["events"]
    bus_arn = bus.create_event_bus(Name=names.bus)["EventBusArn"]
    resources.event_bus_name = names.bus
    bus.create_archive(
        ArchiveName=names.archive,
        EventSourceArn=bus_arn,
        EventPattern=json.dumps({"source": [SOURCE]}),
        RetentionDays=1,
    )

    def subscribe(rule: str, pattern: dict[str, Any], queue_arn: str) -> None:
        bus.put_rule(Name=rule, EventBusName=names.bus, EventPattern=json.dumps(pattern))
        bus.put_targets(Rule=rule, EventBusName=names.bus, Targets=[{"Id": "queue", "Arn": queue_arn}])

    for stage, patterns in all_subscriptions().items():
        url, arn, dlq_url = stage_queue(next(s for s in resources.stages if s.name == stage), True)
        resources.event_queue_urls[stage], resources.event_queue_arns[stage] = url, arn
        resources.event_dlq_urls[stage] = dlq_url
        for index, pattern in enumerate(patterns):
            subscribe(names.rule(stage, index), pattern, arn)
    # the other subscribers (the audit log, the notifications): each a queue of its own with a DLQ
    for subscriber in SUBSCRIBERS:
        resources.subscriber_queues[subscriber.name] = stage_queue(subscriber, True)
        subscribe(
            names.rule(subscriber.name, 0),
            subscriber.pattern,
            resources.subscriber_queues[subscriber.name][1],
        )
    # the notifications' signing secret, as the CDK app generates one per deployment
    resources.callback_secret_id = resources.clients["secretsmanager"].create_secret(
        Name=f"{names.prefix}-callback-signing", SecretString=secrets.token_hex(32)
    )["ARN"]


@contextlib.contextmanager
def faithful_replay() -> Iterator[None]:
    """Inside: moto's StartReplay replays like EventBridge. moto 5.2.5 replays every archived event whatever
    the replay's time window, and to the archive's own rule too (archiving the replay again); EventBridge
    replays the events of the window, to the bus's other rules, each with a new id and ``replay-name``.
    This does that by hand, with moto's own archive and rule matching."""
    from moto.core.utils import unix_time
    from moto.events import models

    def replay_events(self: Any, archive: Any) -> None:
        backend = models.events_backends[self.account_id][self.region]
        event_bus = backend.describe_event_bus(self.destination["Arn"].split("/")[-1])
        archive_rules = {id(a.rule) for a in backend.archives.values() if a.rule is not None}
        start, end = float(self.event_start_time), float(self.event_end_time)
        for event in list(archive.events):
            if not start <= float(event.get("time", 0.0)) <= end:
                continue
            replayed = {**event, "id": str(uuid.uuid4()), "replay-name": self.name}
            for rule in list(event_bus.rules.values()):
                if id(rule) not in archive_rules:
                    rule.send_to_targets(dict(replayed), transform_input=False)
        self.state = models.ReplayState.COMPLETED
        self.end_time = unix_time()

    original = models.Replay.replay_events
    models.Replay.replay_events = replay_events  # type: ignore[method-assign]
    try:
        yield
    finally:
        models.Replay.replay_events = original  # type: ignore[method-assign]


def wait_for_executions(sfn: Any, state_machine_arn: str, timeout_s: float) -> bool:
    """Wait until no execution of the state machine is RUNNING (their worker threads still use moto);
    False if some still are after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while sfn.list_executions(stateMachineArn=state_machine_arn, statusFilter="RUNNING")["executions"]:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# --- Lambda -----------------------------------------------------------------------------------------------

# One lock for every sandbox by default: in one process, handlers share the Logger's state, so calls are
# serialized and every log line carries its own invocation's keys. Reentrant: a TaskRouter holds it
# around its hooks and the handler call.
HANDLER_LOCK = threading.RLock()


class Sandbox:
    """One handler module, called as Lambda would: a fresh context per call, the stage of the function
    through ``stage_override`` (several stages share this process), under `lock` (default
    :data:`HANDLER_LOCK`). The module is imported on the first call, under the lock."""

    def __init__(self, module: str, lock: contextlib.AbstractContextManager[Any] | None = None) -> None:
        self.module = module
        self.lock = HANDLER_LOCK if lock is None else lock

    def call(
        self, event: dict[str, Any], function_name: str, stage: str | None = None, request_id: str = ""
    ) -> Any:
        """The handler's return value for `event`; its exceptions propagate. `request_id`: the context's
        ``aws_request_id`` (default a fresh one)."""
        context = FakeLambdaContext(function_name=function_name)
        if request_id:
            context.aws_request_id = request_id
        with self.lock:
            handler = importlib.import_module(self.module).handler
            token = stage_override.set(stage)
            try:
                return handler(event, context)
            finally:
                stage_override.reset(token)


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
                "messageAttributes": {
                    name: {
                        "stringValue": value.get("StringValue"),
                        "binaryValue": value.get("BinaryValue"),
                        "stringListValues": [],
                        "binaryListValues": [],
                        "dataType": value.get("DataType", "String"),
                    }
                    for name, value in message.get("MessageAttributes", {}).items()
                },
                "md5OfBody": message.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            }
        )
    return {"Records": records}


@dataclass
class StageConsumer:
    """Lambda's SQS event-source mapping for one stage: receive a batch, invoke, delete what succeeded.

    Records the handler reports in ``batchItemFailures`` stay on the queue: they come back after the
    queue's visibility timeout with a higher ApproximateReceiveCount, and moto moves them to the DLQ after
    ``maxReceiveCount`` receives.
    """

    stage: Any  # a harmonic_service.stages stage
    sqs: Any
    queue_url: str
    queue_arn: str
    sandbox: Sandbox
    function_name: str

    def receive(
        self, wait_s: int | None = None, visibility_timeout_s: int | None = None
    ) -> list[dict[str, Any]]:
        """Up to the stage's batch size of messages (long-polling `wait_s`; `visibility_timeout_s`
        overrides the queue's, 0 to see failed records again at once)."""
        options: dict[str, Any] = {}
        if wait_s is not None:
            options["WaitTimeSeconds"] = wait_s
        if visibility_timeout_s is not None:
            options["VisibilityTimeout"] = visibility_timeout_s
        return self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self.stage.batch_size,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            **options,
        ).get("Messages", [])

    def deliver(
        self, messages: list[dict[str, Any]], *, times: int = 1, contain_errors: bool = False
    ) -> list[dict[str, Any]]:
        """Invoke the handler with the batch (`times` > 1: again before anything is deleted, as SQS's
        at-least-once delivery may), delete the messages the first invocation did not report as failed,
        and return the failed ones. An exception from the handler propagates, or with `contain_errors`
        is logged and fails the whole batch, as Lambda retries every record of a failed invocation."""
        event = sqs_event(messages, self.queue_arn)
        try:
            response = self.sandbox.call(event, self.function_name, stage=self.stage.name)
            for _ in range(times - 1):
                self.sandbox.call(event, self.function_name, stage=self.stage.name)
            failed = {item["itemIdentifier"] for item in (response or {}).get("batchItemFailures", [])}
        except Exception:
            if not contain_errors:
                raise
            log.exception("stage %s handler raised; the batch will be redelivered", self.stage.name)
            failed = {message["MessageId"] for message in messages}
        done = [message for message in messages if message["MessageId"] not in failed]
        if done:
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        return [message for message in messages if message["MessageId"] in failed]


@dataclass
class TaskRouter:
    """The Lambda invocations of the state machine's tasks, answered by the task handler in-process.

    :func:`route_lambda` sends moto's invocations here: the payload is the task's event, the function name
    says which stage it is (`function_stage`); the handler's return value is the JSON payload, and an
    exception becomes a function error (``X-Amz-Function-Error: Unhandled``, ``{"errorType",
    "errorMessage"}``) whose errorType Step Functions' Retry/Catch match on, as with a real Lambda.

    Test knobs: `before[function name](event)` hooks run before the handler, `after[function name](event,
    result)` after it; raising a moto ``JsonRESTError`` there makes the Lambda API call itself fail (e.g.
    ServiceException, which Step Functions reports as ``Lambda.ServiceException``), any other exception is a
    function error. With `record`, `calls` keeps (function name, event) and `request_ids` the invocations'
    Lambda request ids; `retry_waits` gets the Retry intervals moto was asked to sleep (see route_lambda).
    """

    sandbox: Sandbox
    function_stage: dict[str, str]
    function_prefix: str = ""  # calls_to("ingest") means the function {function_prefix}ingest
    record: bool = True
    before: dict[str, Callable[[dict[str, Any]], None]] = field(default_factory=dict)
    after: dict[str, Callable[[dict[str, Any], Any], None]] = field(default_factory=dict)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    request_ids: list[str] = field(default_factory=list)
    retry_waits: list[float] = field(default_factory=list)

    def invoke(self, function_name: str, body: Any) -> tuple[bytes, str | None]:
        """(payload, function error or None) of one invocation of `function_name` (a name or an ARN)."""
        from moto.core.exceptions import JsonRESTError

        name = function_name.rsplit(":", 1)[-1]
        event = json.loads(body or "{}")
        request_id = str(uuid.uuid4())
        with self.sandbox.lock:
            if self.record:
                self.calls.append((name, event))
                self.request_ids.append(request_id)
            try:
                if name in self.before:
                    self.before[name](event)
                result = self.sandbox.call(event, name, self.function_stage.get(name, ""), request_id)
                if name in self.after:
                    self.after[name](event, result)
            except JsonRESTError:  # the Lambda service failed (not the function)
                raise
            except Exception as error:  # a function error, as the Lambda runtime reports it
                error_type = getattr(error, "error_type", None) or type(error).__name__  # from a worker
                payload = {"errorType": error_type, "errorMessage": str(error)}
                return json.dumps(payload).encode(), "Unhandled"
        return json.dumps(result).encode(), None

    def calls_to(self, stage_or_name: str) -> list[dict[str, Any]]:
        """The events of the recorded calls to a function, by its name or its stage's."""
        name = stage_or_name
        if not name.startswith(self.function_prefix):
            name = self.function_prefix + name
        return [event for called, event in self.calls if called == name]


@contextlib.contextmanager
def route_lambda(router: TaskRouter, *, retry_time_scale: float | None = None) -> Iterator[TaskRouter]:
    """Inside: moto's Lambda invocations (``LambdaSimpleBackend.invoke``) go to `router`. With
    `retry_time_scale`, moto's Retry waits (which it sleeps literally) are recorded in
    ``router.retry_waits`` and shortened to that fraction."""
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
        """``time`` for moto's retrier: records each Retry wait and sleeps `retry_time_scale` of it."""

        @staticmethod
        def sleep(seconds: float) -> None:
            router.retry_waits.append(seconds)
            time.sleep(seconds * (retry_time_scale or 0.0))

    original_invoke, original_time = LambdaSimpleBackend.invoke, retrier_decl.time
    LambdaSimpleBackend.invoke = invoke  # type: ignore[method-assign,assignment]
    if retry_time_scale is not None:
        retrier_decl.time = _ScaledTime  # type: ignore[assignment]
    try:
        yield router
    finally:
        LambdaSimpleBackend.invoke = original_invoke  # type: ignore[method-assign]
        retrier_decl.time = original_time
