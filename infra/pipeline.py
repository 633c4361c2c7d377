"""The pipeline orchestration: per stage of the table (harmonic_service.stages) an SQS queue with its
dead-letter queue and a Lambda.

Delivery rules come from each stage's declaration: the function's memory (overridable by
``stage_memory_mb``) and
timeout, the event source's batch size and maximum concurrency, the queue's visibility timeout
(``queue_visibility_timeout_s``, 6x the function timeout as AWS advises for SQS event sources) and the
dead-letter queue's ``max_receive_count``. Functions report partial batch failures, so one bad record does not
redeliver its whole batch.
"""

from __future__ import annotations

from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from harmonic_service.stages import PIPELINE_HANDLER, STAGES, Stage
from infra.function import HarmonicFunction
from infra.layer import Layers
from infra.queues import consume_as_stage, consumed_queue
from infra.settings import Settings
from infra.storage import Storage


class StageQueues(Construct):
    """The queue and dead-letter queue of every stage (made before the functions, which all need the URLs)."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.queues: dict[str, sqs.Queue] = {}
        self.dead_letter_queues: dict[str, sqs.Queue] = {}
        for spec in STAGES:
            self.queues[spec.name], self.dead_letter_queues[spec.name] = consumed_queue(
                self,
                spec.title,
                visibility_timeout_s=spec.queue_visibility_timeout_s,
                max_receive_count=spec.max_receive_count,
            )

    def urls(self) -> dict[str, str]:
        """{stage name: queue URL} (tokens until deploy), the content of STAGE_QUEUE_URLS."""
        return {name: queue.queue_url for name, queue in self.queues.items()}


class Pipeline(Construct):
    """One function per stage, each consuming its own queue."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        storage: Storage,
        layers: Layers,
        code: lambda_.Code,
        queues: StageQueues,
        environment: dict[str, str],
    ) -> None:
        super().__init__(scope, construct_id)
        self.queues = queues
        self.functions: dict[str, HarmonicFunction] = {}
        self.mappings: dict[str, event_sources.SqsEventSource] = {}  # per stage: what its breaker switches
        for index, spec in enumerate(STAGES):
            function = HarmonicFunction.for_stage(
                self,
                spec.title,
                spec,
                handler=PIPELINE_HANDLER,
                code=code,
                layers=layers,
                settings=settings,
                environment=environment,
                description=f"pipeline stage {spec.name}",
            )
            self.functions[spec.name] = function
            self._wire(function, spec, STAGES[index + 1 :], storage)

    def _wire(
        self, function: HarmonicFunction, spec: Stage, later: tuple[Stage, ...], storage: Storage
    ) -> None:
        queue = self.queues.queues[spec.name]
        self.mappings[spec.name] = consume_as_stage(function.function, queue, spec)
        # A stage hands over to the next stage that runs; optional stages may be skipped, so any later one.
        for next_spec in later:
            self.queues.queues[next_spec.name].grant_send_messages(function.function)
        storage.grant_stage(function)
