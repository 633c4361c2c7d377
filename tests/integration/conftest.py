"""The whole backend under moto, built by the harness the local stack uses (local/harness.py): tables,
bucket and queues from stages.py, the state machine from its ASL, and a pipeline driver.

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
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from moto import mock_aws

from harmonic_service.config import clear_caches
from harmonic_service.events import NOTIFY
from local import harness
from local.harness import REGION as REGION  # re-exported: tests import it from here
from local.harness import FakeLambdaContext as FakeLambdaContext  # re-exported, likewise

NAMES = harness.Names(prefix="harmonic-test", function_prefix="harmonic-task-", state_machine="harmonic-test")
BUCKET = NAMES.bucket
INVOCATIONS_TABLE = NAMES.table("invocations")
IDEMPOTENCY_TABLE = NAMES.table("idempotency")
PATTERNS_TABLE = NAMES.table("patterns")
TASK_FUNCTION_PREFIX = NAMES.function_prefix
# moto sleeps each Retry interval literally; tests wait this fraction of it (and record what was asked).
RETRY_TIME_SCALE = 0.01


def wav_bytes(samples: np.ndarray, sr: int) -> bytes:
    """16-bit PCM WAV of float samples in [-1, 1] (mono `(n,)` or channel-last `(n, channels)`)."""
    from scipy.io import wavfile

    pcm = np.clip(np.round(np.asarray(samples, dtype=np.float64) * 32767.0), -32768, 32767).astype(np.int16)
    buffer = io.BytesIO()
    wavfile.write(buffer, sr, pcm)
    return buffer.getvalue()


def _sandbox(module: str) -> harness.Sandbox:
    """A handler sandbox with a lock of its own: the SQS handler's and the tasks' calls do not wait for
    each other (a test's hook may hold a task while the test drives the pipeline)."""
    return harness.Sandbox(module, lock=threading.RLock())


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
    resources: harness.Resources
    router: harness.TaskRouter | None = None
    pipeline: harness.Sandbox = field(default_factory=lambda: _sandbox(harness.PIPELINE_HANDLER))
    events: harness.Sandbox = field(default_factory=lambda: _sandbox(harness.EVENTS_HANDLER))
    audit: harness.Sandbox = field(default_factory=lambda: _sandbox(harness.AUDIT_HANDLER))
    notify: harness.Sandbox = field(default_factory=lambda: _sandbox(NOTIFY.handler))
    bucket: str = BUCKET
    invocations_table: str = INVOCATIONS_TABLE

    @property
    def queue_urls(self) -> dict[str, str]:
        return self.resources.queue_urls

    @property
    def dlq_urls(self) -> dict[str, str]:
        return self.resources.dlq_urls

    @property
    def state_machine_arn(self) -> str:
        return self.resources.state_machine_arn

    @property
    def s3(self) -> Any:
        return self.resources.clients["s3"]

    @property
    def sqs(self) -> Any:
        return self.resources.clients["sqs"]

    @property
    def sfn(self) -> Any:
        return self.resources.clients["stepfunctions"]

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


@contextlib.contextmanager
def _mocked_stack(monkeypatch: pytest.MonkeyPatch, state_machine: bool) -> Iterator[AwsStack]:
    """mock_aws, Harmonic's resources (with the state machine, its tasks routed to the in-process handler,
    if `state_machine`) and a deployed function's environment."""
    for name, value in harness.fake_aws_environment("testing").items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    clear_caches()
    with contextlib.ExitStack() as inside, mock_aws(config=harness.MOTO_CONFIG if state_machine else None):
        asl_text = harness.ASL_PATH.read_text() if state_machine else None
        resources = harness.provision(NAMES, harness.aws_clients(), asl_text=asl_text)
        for name, value in {**resources.environment(), "RETENTION_DAYS": "1"}.items():
            monkeypatch.setenv(name, value)
        clear_caches()
        stack = AwsStack(monkeypatch=monkeypatch, resources=resources)
        inside.enter_context(harness.faithful_replay())
        if state_machine:
            tasks = _sandbox(harness.TASK_HANDLER)
            stack.router = harness.TaskRouter(tasks, resources.function_stage, NAMES.function_prefix)
            inside.enter_context(harness.route_lambda(stack.router, retry_time_scale=RETRY_TIME_SCALE))
        try:
            yield stack
        finally:
            if state_machine:  # executions still running use the mock from their worker threads
                harness.wait_for_executions(stack.sfn, resources.state_machine_arn, timeout_s=30.0)
    clear_caches()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsStack]:
    """moto S3/SQS/DynamoDB/Step Functions with Harmonic's resources and a deployed function's environment."""
    with _mocked_stack(monkeypatch, state_machine=False) as stack:
        yield stack


@pytest.fixture
def sfn_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsStack]:
    """`aws` plus the state machine, executed by moto with its tasks routed to the in-process handler."""
    with _mocked_stack(monkeypatch, state_machine=True) as stack:
        yield stack


def drain_pipeline(aws: AwsStack, *, duplicate: bool = False, max_rounds: int = 100) -> DrainReport:
    """Run the stage handlers on every queued message (the pipeline's queues, then the events-mode queues the
    bus's rules fill), stage by stage, until all queues are empty.

    `duplicate=True` delivers every batch twice (the second time before the first is deleted), as SQS's
    at-least-once delivery may. Deliveries and failures are counted per stage (`events-<stage>` for the
    events-mode queues; `audit` and `notify` for the bus's other subscribers). Raises AssertionError if the
    queues are not empty after `max_rounds`.
    """
    report = DrainReport()
    consumers = [(c.stage.name, c) for c in aws.resources.consumers(aws.pipeline)]
    consumers += [(f"events-{c.stage.name}", c) for c in aws.resources.consumers(aws.events, events=True)]
    consumers.append(("audit", aws.resources.audit_consumer(aws.audit)))
    consumers.append(("notify", aws.resources.subscriber_consumer(NOTIFY, aws.notify)))
    for _ in range(max_rounds):
        report.rounds += 1
        handled = 0
        for label, consumer in consumers:
            messages = consumer.receive(visibility_timeout_s=0)  # failed records: again next round
            if not messages:
                continue
            handled += len(messages)
            failed = consumer.deliver(messages, times=2 if duplicate else 1)
            report.deliveries[label] += len(messages)
            report.failures += [(label, message["Body"]) for message in failed]
        if handled == 0:
            return report
    raise AssertionError(f"queues still busy after {max_rounds} rounds: {report}")
