"""The stages' circuit breakers against moto: S3 goes away under the pipeline's first stage, the breaker
opens after the threshold, messages wait in the queue (none in a DLQ, no invocation FAILED), the sweeper
half-opens it after the cool-down, a failed probe opens it again, a successful one closes it and every
invocation completes. The sweeper switches real event-source mappings (moto's Lambda API), and postpones
the deadline of an invocation waiting behind an open breaker instead of failing it "stalled"."""

from __future__ import annotations

import io
import json
import time
import zipfile

import pytest
from botocore.exceptions import EndpointConnectionError

from harmonic_service import service, sweeper
from harmonic_service.breaker import BreakerState
from harmonic_service.config import clear_caches
from harmonic_service.dal import breakers, checkpoints, clients
from harmonic_service.deadlines import deadline_s
from local import harness
from tests.conftest import SPEECH_FILES
from tests.integration.conftest import AwsStack

CLIP = SPEECH_FILES[-1].read_bytes()
STAGE = "ingest"  # the first stage: it reads the submitted clip from S3


@pytest.fixture
def breaker_settings(monkeypatch: pytest.MonkeyPatch, aws: AwsStack) -> AwsStack:
    """Threshold 3 in a minute, a 1 s cool-down; botocore does not retry (each failed call fails at once)."""
    monkeypatch.setenv("BREAKER_THRESHOLD", "3")
    monkeypatch.setenv("BREAKER_WINDOW_S", "60")
    monkeypatch.setenv("BREAKER_COOLDOWN_S", "1")
    monkeypatch.setitem(clients._CONFIG_KWARGS, "retries", {"mode": "standard", "max_attempts": 1})
    clear_caches()
    return aws


class Outage:
    """S3 unreachable for the handlers' client while `down` (raised where botocore sends the request); it
    starts after the test submitted its invocations (the API stores the clip in S3)."""

    def __init__(self) -> None:
        self.down = False

    def start(self) -> None:
        """S3 goes away for the handlers' current client (after any clear_caches: clients are new then)."""
        clients.s3().meta.events.register("before-send.s3", self._send)
        self.down = True

    def _send(self, request: object, **_: object) -> None:
        if self.down:
            raise EndpointConnectionError(endpoint_url=str(getattr(request, "url", "s3")))


@pytest.fixture
def outage(breaker_settings: AwsStack) -> Outage:
    return Outage()


def _submit(count: int) -> list[str]:
    return [
        service.submit_invocation(CLIP, None, "pipeline", None, None, f"breaker-{i}")["invocation_id"]
        for i in range(count)
    ]


def _deliver_stage(aws: AwsStack, stage: str, rounds: int) -> int:
    """Deliver whatever the stage's queue shows, `rounds` times (failed records visible again at once);
    the records delivered."""
    consumer = next(c for c in aws.resources.consumers(aws.pipeline) if c.stage.name == stage)
    delivered = 0
    for _ in range(rounds):
        messages = consumer.receive(visibility_timeout_s=0)
        if messages:
            delivered += len(messages)
            consumer.deliver(messages)
    return delivered


def _held(aws: AwsStack, stage: str) -> int:
    """Messages on the stage's queue: visible, in flight, or put back with a delay."""
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    names.append("ApproximateNumberOfMessagesDelayed")
    attributes = aws.sqs.get_queue_attributes(QueueUrl=aws.queue_urls[stage], AttributeNames=names)
    return sum(int(value) for value in attributes["Attributes"].values())


def _statuses(ids: list[str]) -> set[str]:
    return {service.get_invocation(i)["status"] for i in ids}


def test_an_outage_opens_the_breaker_and_messages_wait_then_everything_completes(
    aws: AwsStack, outage: Outage
) -> None:
    ids = _submit(4)
    outage.start()
    _deliver_stage(aws, STAGE, rounds=3)
    breaker = breakers.get(STAGE)
    assert breaker.state == BreakerState.OPEN
    assert breaker.failures >= 3
    assert breaker.dependency == "s3"
    assert "EndpointConnectionError" in breaker.error
    assert sum(aws.dlq_depths().values()) == 0
    assert _held(aws, STAGE) == 4  # all still there, some put back with a delay
    assert _statuses(ids) <= {"ACCEPTED", "RUNNING"}

    # While OPEN, a message delivered anyway is put back untouched: no S3 call, no failure counted.
    time.sleep(1.1)  # the put-back copies become visible
    failures = breakers.get(STAGE).failures
    assert _deliver_stage(aws, STAGE, rounds=1) > 0
    assert breakers.get(STAGE).failures == failures
    assert _held(aws, STAGE) == 4

    # After the cool-down the sweeper half-opens it; a probe that fails opens it again.
    report = sweeper.tend_breakers(now=breakers.get(STAGE).opened_at + 1)
    assert report.half_opened == [STAGE]
    assert breakers.get(STAGE).state == BreakerState.HALF_OPEN
    breakers.forget()
    time.sleep(1.1)
    _deliver_stage(aws, STAGE, rounds=1)
    reopened = breakers.get(STAGE)
    assert reopened.state == BreakerState.OPEN
    assert reopened.opened_at > breaker.opened_at

    # S3 is back: the next probe closes the breaker and every invocation completes, nothing in a DLQ.
    outage.down = False
    assert sweeper.tend_breakers(now=reopened.opened_at + 1).half_opened == [STAGE]
    breakers.forget()
    time.sleep(1.1)
    aws.drain()
    assert breakers.get(STAGE).state == BreakerState.CLOSED
    assert _statuses(ids) == {"SUCCEEDED"}
    assert sum(aws.dlq_depths().values()) == 0


def test_the_last_allowed_receive_of_a_dependency_failure_is_put_back_not_dead_lettered(
    aws: AwsStack, breaker_settings: AwsStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BREAKER_THRESHOLD", "1000")  # the breaker never opens: only the put-back keeps it
    clear_caches()
    outage = Outage()
    (invocation_id,) = _submit(1)
    outage.start()
    _deliver_stage(aws, STAGE, rounds=6)  # twice the stage's maxReceiveCount
    assert sum(aws.dlq_depths().values()) == 0
    assert service.get_invocation(invocation_id)["status"] == "RUNNING"  # not FAILED retries_exhausted
    outage.down = False
    time.sleep(1.1)
    aws.drain()
    assert service.get_invocation(invocation_id)["status"] == "SUCCEEDED"


def test_a_message_put_back_too_often_takes_its_normal_retries(
    aws: AwsStack, outage: Outage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BREAKER_MAX_REQUEUES", "0")
    clear_caches()
    _submit(1)
    outage.start()
    _deliver_stage(aws, STAGE, rounds=6)
    assert aws.dlq_depths()[STAGE] == 1  # nothing holds it: the redrive policy takes it


def test_the_sweeper_postpones_an_invocation_behind_an_open_breaker(aws: AwsStack, outage: Outage) -> None:
    ids = _submit(3)
    outage.start()
    _deliver_stage(aws, STAGE, rounds=3)
    assert breakers.get(STAGE).state == BreakerState.OPEN
    for invocation_id in ids:  # an hour later: every deadline has passed
        aws.resources.clients["dynamodb"].update_item(
            TableName=aws.invocations_table,
            Key={"invocation_id": {"S": invocation_id}},
            UpdateExpression="SET deadline_at = :past",
            ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 3600)}},
        )
    report = sweeper.sweep()
    assert sorted(report.postponed) == sorted(ids)
    assert report.stalled == []
    assert report.redispatched == []  # their messages wait in the queue: not lost
    assert all(checkpoints.get(i).deadline_at >= time.time() + deadline_s() - 5 for i in ids)
    assert _statuses(ids) <= {"ACCEPTED", "RUNNING"}


def _lambda_function_with_mapping(aws: AwsStack, queue_arn: str) -> str:
    """A function in moto's Lambda with an event-source mapping on `queue_arn` (never invoked here)."""
    iam = harness_client("iam")
    role = iam.create_role(
        RoleName="stage-role", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17"})
    )
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("index.py", "def handler(event, context):\n    return {}\n")
    lambda_client = harness_client("lambda")
    lambda_client.create_function(
        FunctionName="harmonic-stage-ingest",
        Runtime="python3.12",
        Role=role["Role"]["Arn"],
        Handler="index.handler",
        Code={"ZipFile": archive.getvalue()},
    )
    return lambda_client.create_event_source_mapping(
        EventSourceArn=queue_arn, FunctionName="harmonic-stage-ingest", BatchSize=1
    )["UUID"]


def harness_client(service_name: str) -> object:
    import boto3

    return boto3.client(service_name, region_name=harness.REGION)


def test_the_sweeper_disables_the_stages_mappings_while_open_and_enables_them_after(
    aws: AwsStack, outage: Outage, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A queue of its own: moto's SQS would hand a mapped queue's messages to moto's Lambda.
    queue = aws.sqs.create_queue(QueueName="mapped")["QueueUrl"]
    arn = aws.sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    mapping = _lambda_function_with_mapping(aws, arn)
    monkeypatch.setenv("STAGE_EVENT_SOURCE_MAPPINGS", json.dumps({STAGE: [mapping]}))
    clear_caches()
    lambda_client = harness_client("lambda")

    def state() -> str:
        return lambda_client.get_event_source_mapping(UUID=mapping)["State"]

    assert state() == "Enabled"
    assert sweeper.tend_breakers().switched == {}  # CLOSED: nothing to switch
    _submit(3)
    outage.start()
    _deliver_stage(aws, STAGE, rounds=3)
    opened_at = breakers.get(STAGE).opened_at
    report = sweeper.tend_breakers(now=opened_at + 0.5)  # still cooling down
    assert report.open == [STAGE]
    assert report.switched == {STAGE: [mapping]}
    assert state() == "Disabled"
    assert sweeper.tend_breakers(now=opened_at + 0.6).switched == {}  # already disabled
    report = sweeper.tend_breakers(now=opened_at + 1)  # half-open: pulling again, for the probe
    assert report.half_opened == [STAGE]
    assert state() == "Enabled"
