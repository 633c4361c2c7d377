"""The watchdog (harmonic_service.sweeper): a small function that an EventBridge schedule runs every minute to
fail or re-dispatch the invocations past their deadline (found through the invocations table's sparse
``by-deadline`` index) and to tend the stages' circuit breakers (it may switch the stages' event-source
mappings, and nothing else of Lambda), and that hears Step Functions' "Execution Status Change" events for
runs that ended TIMED_OUT, ABORTED or FAILED without the state machine's own failure path. Both rules keep
what they could not deliver in a dead-letter queue."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.function import HarmonicFunction
from infra.layer import Layers
from infra.nag import acknowledge
from infra.queues import dead_letter_queue
from infra.settings import Settings
from infra.storage import Storage

SWEEPER_HANDLER = "harmonic_service.handlers.sweeper.handler"
SWEEP_EVERY = cdk.Duration.minutes(1)
# Step Functions statuses that end a run; RecordFailure records FAILED itself unless the run died first.
ENDED_STATUSES = ["TIMED_OUT", "ABORTED", "FAILED"]


class Sweeper(Construct):
    """The sweeper's function, its schedule, and (with a state machine) its execution-status rule."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        storage: Storage,
        layers: Layers,
        code: lambda_.Code,
        environment: dict[str, str],
        stage_queues: dict[str, sqs.IQueue],
        stage_mappings: dict[str, list[event_sources.SqsEventSource]],
        bus: events.IEventBus | None,
        state_machine: sfn.IStateMachine | None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.function = HarmonicFunction(
            self,
            "Function",
            code=code,
            handler=SWEEPER_HANDLER,
            layers=layers,
            settings=settings,
            memory_mb=256,
            timeout_s=60,
            environment={
                **environment,
                # the event-source mappings it switches off while a stage's circuit breaker is open
                "STAGE_EVENT_SOURCE_MAPPINGS": cdk.Stack.of(self).to_json_string(
                    {
                        stage: [m.event_source_mapping_id for m in sources]
                        for stage, sources in stage_mappings.items()
                    }
                ),
            },
            description="watchdog: fails or re-dispatches invocations past their deadline; tends breakers",
        )
        mapping_arns = [m.event_source_mapping_arn for sources in stage_mappings.values() for m in sources]
        if mapping_arns:
            self.function.function.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["lambda:GetEventSourceMapping", "lambda:UpdateEventSourceMapping"],
                    resources=mapping_arns,
                )
            )
        # reads the index and the items, re-dispatches (pipeline: the stage queues; events: the bus), fails
        storage.invocations_table.grant_read_write_data(self.function.function)
        for queue in stage_queues.values():
            queue.grant_send_messages(self.function.function)
        if bus is not None:
            bus.grant_put_events_to(self.function.function)
        self.dead_letter_queue = dead_letter_queue(self, "RuleDeadLetterQueue")
        acknowledge(
            self.dead_letter_queue,
            "AwsSolutions-SQS3",
            "This queue is itself the dead-letter queue of the sweeper's rules (schedule ticks and status "
            "changes EventBridge could not deliver); a dead-letter queue of it would only move the problem.",
        )
        target = targets.LambdaFunction(
            self.function.function, dead_letter_queue=self.dead_letter_queue, retry_attempts=2
        )
        self.schedule = events.Rule(
            self,
            "Schedule",
            description="Harmonic: sweep the invocations past their deadline",
            schedule=events.Schedule.rate(SWEEP_EVERY),
            targets=[target],
        )
        self.rules: list[events.Rule] = [self.schedule]
        if state_machine is not None:
            pattern: dict[str, Any] = {
                "status": ENDED_STATUSES,
                "stateMachineArn": [state_machine.state_machine_arn],
            }
            self.execution_ended = events.Rule(
                self,
                "ExecutionEnded",
                description="Harmonic: record executions that ended without the state machine's failure path",
                event_pattern=events.EventPattern(
                    source=["aws.states"],
                    detail_type=["Step Functions Execution Status Change"],
                    detail=pattern,
                ),
                targets=[target],
            )
            self.rules.append(self.execution_ended)
