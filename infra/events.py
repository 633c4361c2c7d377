"""The event-driven orchestration (mode ``events``): a custom EventBridge bus, and per stage of the table a
queue that the stage's rules fill and a function consuming it; likewise per subscriber that is not a stage
(``harmonic_service.events.SUBSCRIBERS``: the audit log, the completion notifications).

- Bus: a custom event bus; the API publishes ``InvocationSubmitted``/``InvocationResumed`` to it, each stage
  function its ``StageCompleted``/``StageSkipped``/``StageFailed`` and the invocation's end.
- Rules: one per subscription of a stage (``harmonic_service.events.subscriptions``: the completions of the
  stages it reads, and its resumes), derived from the stage table; no stage knows its successors. Each rule
  targets the stage's queue, with a dead-letter queue for events EventBridge cannot deliver.
- Queues: as the pipeline's (infra/queues.py: SQS-managed encryption, TLS only, visibility 6× the function
  timeout, a DLQ after the stage's ``max_receive_count``), consumed with partial batch responses and the
  stage's maximum concurrency.
- Functions: ``EVENTS_HANDLER`` over the same code asset, layers and stage runner as the other modes, with
  ``events:PutEvents`` on this bus only.
"""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_eventschemas as eventschemas
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from harmonic_service.events import (
    AUDIT,
    NOTIFY,
    SOURCE,
    SUBSCRIBERS,
    Subscriber,
    json_schemas,
    subscriptions,
)
from harmonic_service.stages import EVENTS_HANDLER, STAGES
from infra.function import HarmonicFunction
from infra.layer import Layers
from infra.nag import acknowledge
from infra.queues import consume, consume_as_stage, consumed_queue, dead_letter_queue
from infra.settings import Settings
from infra.storage import INVOCATIONS_PREFIX, Storage

# EventBridge retries a failed delivery to a target for up to 24 hours by default; then the target's DLQ.
DELIVERY_RETRY_ATTEMPTS = 185


def draft4(schema: dict[str, Any]) -> dict[str, Any]:
    """A pydantic JSON Schema as the registry's JSONSchemaDraft4 type takes it (``id``, ``$schema``)."""
    converted = {key: value for key, value in schema.items() if key != "$id"}
    return {"$schema": "http://json-schema.org/draft-04/schema#", "id": schema.get("$id", ""), **converted}


def event_pattern(pattern: dict[str, Any]) -> events.EventPattern:
    """A CDK EventPattern from an EventBridge pattern document (``source``, ``detail-type``, ``detail``)."""
    return events.EventPattern(
        source=pattern.get("source"), detail_type=pattern.get("detail-type"), detail=pattern.get("detail")
    )


class EventBus(Construct):
    """The custom bus (made before the functions: every function's environment names it), its archive
    (every Harmonic event, ``event_archive_retention_days``; `make replay` replays a window of it) and the
    schema registry of its events."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: Settings) -> None:
        super().__init__(scope, construct_id)
        # Named after the stack, and the rules name it by that name rather than by a Ref to the bus: moto's
        # CloudFormation resolves such a Ref to an object (tests/infra/test_moto_deploy.py deploys there).
        self.name = f"{cdk.Aws.STACK_NAME}-events"
        self.bus = events.EventBus(
            self, "Bus", event_bus_name=self.name, description="Harmonic: invocation and stage events"
        )
        self.by_name = events.EventBus.from_event_bus_name(self, "ByName", self.name)
        self.archive = events.Archive(
            self,
            "Archive",
            source_event_bus=self.bus,
            archive_name=f"{cdk.Aws.STACK_NAME}-events",
            description="Harmonic: every event on the bus, for replays (make replay)",
            event_pattern=events.EventPattern(source=[SOURCE]),
            retention=cdk.Duration.days(settings.event_archive_retention_days),
        )
        # The pattern as a JSON string (CloudFormation takes both for this Json property): moto's
        # CloudFormation, which tests/infra/test_moto_deploy.py deploys into, parses it as a string.
        archive_resource = self.archive.node.default_child
        assert isinstance(archive_resource, cdk.CfnResource)
        archive_resource.add_property_override("EventPattern", json.dumps({"source": [SOURCE]}))
        # The event contracts, registered where EventBridge's tools (code bindings, discovery) find them.
        self.registry = eventschemas.CfnRegistry(
            self,
            "Schemas",
            registry_name=f"{cdk.Aws.STACK_NAME}-events",
            description="Harmonic: the versioned contracts of the events on the bus (docs/events/)",
        )
        self.schemas = [
            eventschemas.CfnSchema(
                self,
                f"{detail_type}Schema",
                registry_name=self.registry.attr_registry_name,
                schema_name=f"harmonic@{detail_type}",
                type="JSONSchemaDraft4",
                content=json.dumps(draft4(schema)),
                description=f"detail of {detail_type} events (source harmonic)",
            )
            for detail_type, schema in json_schemas().items()
        ]
        # Completion notifications are signed with this (logic/callbacks.py); receivers get it from the
        # operator (aws secretsmanager get-secret-value). One per deployment, generated at deploy time.
        # Functions find it by name and are granted it by ARN pattern, not by a Ref: moto's CloudFormation
        # (tests/infra/test_moto_deploy.py) does not model secrets, and a Ref to one resolves to nothing.
        self.callback_secret_name = f"{cdk.Aws.STACK_NAME}-callback-signing"
        self.callback_secret = secretsmanager.Secret(
            self,
            "CallbackSigningSecret",
            secret_name=self.callback_secret_name,
            description="Harmonic: the HMAC-SHA256 key of completion notifications (X-Harmonic-Signature)",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=64, exclude_punctuation=True
            ),
        )
        acknowledge(
            self.callback_secret,
            "AwsSolutions-SMG4",
            "Rotating the signing key would break every receiver that verifies with the old one until its "
            "operator copies the new one; rotate it by hand (put-secret-value) and tell the receivers. The "
            "notifier reads it at most every 5 minutes, so a rotation takes effect within that.",
        )

    def grant_callback_secret(self, function: HarmonicFunction) -> None:
        """Let `function` read the signing secret (its ARN ends in six random characters after the name)."""
        arn = (
            f"arn:{cdk.Aws.PARTITION}:secretsmanager:{cdk.Aws.REGION}:{cdk.Aws.ACCOUNT_ID}:secret:"
            f"{self.callback_secret_name}-??????"
        )
        function.role.add_to_principal_policy(
            iam.PolicyStatement(actions=["secretsmanager:GetSecretValue"], resources=[arn])
        )


class EventDriven(Construct):
    """Per stage: its queue and DLQ, the rules of its subscriptions, and its function."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bus: EventBus,
        settings: Settings,
        storage: Storage,
        layers: Layers,
        code: lambda_.Code,
        environment: dict[str, str],
    ) -> None:
        super().__init__(scope, construct_id)
        self.bus = bus
        self.queues: dict[str, sqs.Queue] = {}
        self.dead_letter_queues: dict[str, sqs.Queue] = {}
        self.functions: dict[str, HarmonicFunction] = {}
        self.mappings: dict[str, event_sources.SqsEventSource] = {}  # per stage: what its breaker switches
        self.rules: dict[str, list[events.Rule]] = {}
        self.delivery_dead_letter_queue = dead_letter_queue(self, "DeliveryDeadLetterQueue")
        acknowledge(
            self.delivery_dead_letter_queue,
            "AwsSolutions-SQS3",
            "This queue is itself the dead-letter queue of the rules' targets (events EventBridge could not "
            "deliver); a dead-letter queue of a dead-letter queue would only move the problem.",
        )
        for stage in STAGES:
            queue, dead_letters = consumed_queue(
                self,
                stage.title,
                visibility_timeout_s=stage.queue_visibility_timeout_s,
                max_receive_count=stage.max_receive_count,
            )
            function = HarmonicFunction.for_stage(
                self,
                f"{stage.title}Subscriber",
                stage,
                handler=EVENTS_HANDLER,
                code=code,
                layers=layers,
                settings=settings,
                environment=environment,
                description=f"events stage {stage.name}",
            )
            self.mappings[stage.name] = consume_as_stage(function.function, queue, stage)
            storage.grant_stage(function)
            bus.bus.grant_put_events_to(function.function)
            self.rules[stage.name] = [
                self._rule(
                    f"{stage.title}Rule{index}", f"events that start stage {stage.name}", pattern, queue
                )
                for index, pattern in enumerate(subscriptions(stage.name))
            ]
            self.queues[stage.name] = queue
            self.dead_letter_queues[stage.name] = dead_letters
            self.functions[stage.name] = function
        for subscriber in SUBSCRIBERS:
            self._subscriber(subscriber, settings, layers, code, environment)
        # what each subscriber's function may touch beyond its queue
        notify = self.functions[NOTIFY.name]
        assert storage.audit_table is not None
        storage.audit_table.grant_write_data(self.functions[AUDIT.name].function)
        storage.invocations_table.grant_read_data(notify.function)  # the invocation and its callback_url
        storage.grant_objects(notify, INVOCATIONS_PREFIX, write=False)  # a result too large for the item
        bus.grant_callback_secret(notify)

    def _rule(self, construct_id: str, what: str, pattern: dict[str, Any], queue: sqs.IQueue) -> events.Rule:
        """A rule on the bus sending the events of `pattern` to `queue`; what EventBridge cannot deliver goes
        to the delivery dead-letter queue."""
        rule = events.Rule(
            self,
            construct_id,
            event_bus=self.bus.by_name,
            description=f"Harmonic: {what}",
            event_pattern=event_pattern(pattern),
            targets=[
                targets.SqsQueue(
                    queue,
                    dead_letter_queue=self.delivery_dead_letter_queue,
                    retry_attempts=DELIVERY_RETRY_ATTEMPTS,
                )
            ],
        )
        rule.node.add_dependency(self.bus.bus)  # the rule names the bus by name, not by a reference
        return rule

    def _subscriber(
        self,
        subscriber: Subscriber,
        settings: Settings,
        layers: Layers,
        code: lambda_.Code,
        environment: dict[str, str],
    ) -> None:
        """A subscriber of the bus that is not a stage (harmonic_service.events.SUBSCRIBERS): its rule, its
        queue with a DLQ, and its function, sized and ruled by its declaration."""
        title = subscriber.name.title()
        queue, dead_letters = consumed_queue(
            self,
            title,
            visibility_timeout_s=subscriber.queue_visibility_timeout_s,
            max_receive_count=subscriber.max_receive_count,
        )
        function = HarmonicFunction(
            self,
            f"{title}Subscriber",
            code=code,
            handler=f"{subscriber.handler}.handler",
            layers=layers,
            settings=settings,
            memory_mb=subscriber.memory_mb,
            timeout_s=subscriber.timeout_s,
            environment=environment,
            description=f"events subscriber {subscriber.name}: {subscriber.description}",
        )
        consume(
            function.function,
            queue,
            batch_size=subscriber.batch_size,
            max_concurrency=subscriber.max_concurrency,
        )
        self.rules[subscriber.name] = [
            self._rule(f"{title}Rule", subscriber.description, subscriber.pattern, queue)
        ]
        self.queues[subscriber.name] = queue
        self.dead_letter_queues[subscriber.name] = dead_letters
        self.functions[subscriber.name] = function
