"""The Harmonic stack: storage, layers, the orchestrations, the API and monitoring, from one Settings.

Orchestrations: ``orchestration`` names the modes deployed (``all`` by default; ``both`` is the pipeline and
the state machine; or a comma-separated list): the pipeline (SQS-linked stages), the Step Functions state
machine, and the event-driven chain (an EventBridge bus, rules and a subscriber function per stage, whose
bus every function's ``EVENT_BUS_NAME`` names; the API and the subscribers may put events on it). The
state machine sets
``state_machine_arn``, the API function's ``STATE_MACHINE_ARN`` (only the API starts executions; the stage and
task functions get it empty, which also keeps the state machine from depending on itself), and the API
function may ``states:StartExecution`` on it. ``ORCHESTRATION`` names the modes deployed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks
from constructs import Construct

from infra import REPO_ROOT
from infra.api import Api
from infra.code_asset import code_asset
from infra.console import Console
from infra.events import EventBus, EventDriven
from infra.layer import Layers
from infra.monitoring import Monitoring
from infra.pipeline import Pipeline, StageQueues
from infra.settings import Settings
from infra.statemachine import StateMachine
from infra.storage import Storage
from infra.sweeper import Sweeper

STACK_NAME = "Harmonic"


class HarmonicStack(cdk.Stack):
    """Everything Harmonic runs on."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: Settings, **kwargs: Any) -> None:
        kwargs.setdefault("description", "Harmonic: serverless audio analysis (harmonic processing chain)")
        super().__init__(scope, construct_id, **kwargs)
        self.settings = settings

        self.storage = Storage(self, "Storage", settings=settings)
        self.layers = Layers(self, "Layers", settings=settings)
        self.code = code_asset(settings.python_runtime)
        self.queues = StageQueues(self, "Queues") if settings.deploys_pipeline else None
        self.state_machine_arn = ""  # set once the state machine exists (the API's STATE_MACHINE_ARN)
        self.bus = EventBus(self, "Events", settings=settings) if settings.deploys_events else None

        environment = self._environment()
        self.pipeline = (
            Pipeline(
                self,
                "Pipeline",
                settings=settings,
                storage=self.storage,
                layers=self.layers,
                code=self.code,
                queues=self.queues,
                environment=environment,
            )
            if self.queues is not None
            else None
        )
        self.state_machine = (
            StateMachine(
                self,
                "StateMachine",
                settings=settings,
                storage=self.storage,
                layers=self.layers,
                code=self.code,
                environment=environment,
            )
            if settings.deploys_state_machine
            else None
        )
        if self.state_machine is not None:
            self.state_machine_arn = self.state_machine.arn
        self.event_driven = (
            EventDriven(
                self,
                "EventDriven",
                bus=self.bus,
                settings=settings,
                storage=self.storage,
                layers=self.layers,
                code=self.code,
                environment=environment,
            )
            if self.bus is not None
            else None
        )
        if self.bus is not None:
            # The pipeline's and the state machine's functions publish the end of an invocation, so that the
            # bus's subscribers (the notifications, the audit log) hear of every mode's.
            enders = [*(self.pipeline.functions.values() if self.pipeline else [])]
            enders += self.state_machine.all_functions if self.state_machine else []
            for function in enders:
                self.bus.bus.grant_put_events_to(function.function)
        # The console's bucket and distribution first: the API allows its origin (CORS), and the console's
        # config.json (deploy_files, below) names the API's URL.
        self.console = (
            Console(self, "Console", access_log_bucket=self.storage.access_log_bucket)
            if settings.console
            else None
        )
        self.api = Api(
            self,
            "Api",
            settings=settings,
            storage=self.storage,
            layers=self.layers,
            code=self.code,
            queues=self.queues,
            environment=self._environment(),  # now with STATE_MACHINE_ARN
            cors_origin=self.console.origin if self.console is not None else None,
        )
        if self.console is not None:
            self.console.deploy_files(api_url=self.api.url, auth=settings.auth)
        if self.state_machine is not None:
            # Submit and resume start executions; nothing else (no stop, no describe).
            self.state_machine.state_machine.grant_start_execution(self.api.handler.function)
        if self.bus is not None:
            # Submit and resume publish InvocationSubmitted / InvocationResumed; GET .../events reads the log.
            self.bus.bus.grant_put_events_to(self.api.handler.function)
            assert self.storage.audit_table is not None
            self.storage.audit_table.grant_read_data(self.api.handler.function)
        self.sweeper = Sweeper(
            self,
            "Sweeper",
            settings=settings,
            storage=self.storage,
            layers=self.layers,
            code=self.code,
            environment=self._environment(),
            stage_queues=self.queues.queues if self.queues is not None else {},
            stage_mappings=self._stage_mappings(),
            bus=self.bus.bus if self.bus is not None else None,
            state_machine=self.state_machine.state_machine if self.state_machine is not None else None,
        )
        functions, queues, dead_letter_queues = self._monitored()
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            settings=settings,
            stage_functions=functions,
            stage_queues=queues,
            dead_letter_queues=dead_letter_queues,
            api=self.api.rest_api,
            api_function=self.api.handler.function,
            state_machine=self.state_machine.state_machine if self.state_machine else None,
            event_rules=self.event_driven.rules if self.event_driven else None,
            sweeper_rules=self.sweeper.rules,
        )
        self._outputs()

    @property
    def deployed_modes(self) -> tuple[str, ...]:
        """The asynchronous orchestration modes this stack really deploys."""
        return self.settings.modes

    def _stage_mappings(self) -> dict[str, list[Any]]:
        """{stage: its event-source mappings} (the pipeline's and the events mode's), which the sweeper
        switches off while the stage's circuit breaker is open."""
        mappings: dict[str, list[Any]] = {}
        for orchestration in (self.pipeline, self.event_driven):
            for stage, source in (orchestration.mappings if orchestration is not None else {}).items():
                mappings.setdefault(stage, []).append(source)
        return mappings

    def _monitored(self) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """The stage functions, queues and DLQs to watch: the pipeline's by stage name, the events mode's as
        ``events-<stage>``."""
        functions: dict[str, Any] = {}
        queues: dict[str, Any] = {}
        dead_letter_queues: dict[str, Any] = {}
        if self.pipeline is not None and self.queues is not None:
            functions.update({name: f.function for name, f in self.pipeline.functions.items()})
            queues.update(self.queues.queues)
            dead_letter_queues.update(self.queues.dead_letter_queues)
        if self.event_driven is not None:
            driven = self.event_driven
            functions.update({f"events-{name}": f.function for name, f in driven.functions.items()})
            queues.update({f"events-{name}": queue for name, queue in driven.queues.items()})
            dead_letter_queues.update({f"events-{n}": q for n, q in driven.dead_letter_queues.items()})
            dead_letter_queues["events-delivery"] = driven.delivery_dead_letter_queue
        functions["sweeper"] = self.sweeper.function.function
        dead_letter_queues["sweeper-rules"] = self.sweeper.dead_letter_queue
        return functions, queues, dead_letter_queues

    def _environment(self) -> dict[str, str]:
        """The environment of every function (docs/design.md, 'Environment of every function')."""
        settings = self.settings
        modes = self.deployed_modes
        storage = self.storage
        return {
            "INVOCATIONS_TABLE": storage.invocations_table.table_name,
            "IDEMPOTENCY_TABLE": storage.idempotency_table.table_name,
            "PATTERNS_TABLE": storage.patterns_table.table_name,
            "PAYLOAD_BUCKET": storage.payload_bucket.bucket_name,
            "STAGE_QUEUE_URLS": self.to_json_string(self.queues.urls()) if self.queues else json.dumps({}),
            "STATE_MACHINE_ARN": self.state_machine_arn,
            "EVENT_BUS_NAME": self.bus.name if self.bus is not None else "",
            "CALLBACK_SECRET_ID": self.bus.callback_secret_name if self.bus is not None else "",
            "AUDIT_TABLE": storage.audit_table.table_name if storage.audit_table is not None else "",
            "ORCHESTRATION": ",".join(modes),
            "MAX_INLINE_BYTES": str(settings.max_inline_bytes),
            "MAX_UPLOAD_BYTES": str(settings.max_upload_bytes),
            "MAX_DURATION_S": f"{settings.max_duration_s:g}",
            "MAX_SAMPLE_RATE": str(settings.max_sample_rate),
            "RETENTION_DAYS": str(settings.retention_days),
            "BREAKER_THRESHOLD": str(settings.breaker_threshold),
            "BREAKER_WINDOW_S": str(settings.breaker_window_s),
            "BREAKER_COOLDOWN_S": str(settings.breaker_cooldown_s),
            "BREAKER_MAX_REQUEUES": str(settings.breaker_max_requeues),
            "SHARED_PATTERN_OWNERS": json.dumps(list(settings.shared_pattern_owners)),
            "POWERTOOLS_SERVICE_NAME": "harmonic",
            "POWERTOOLS_METRICS_NAMESPACE": "Harmonic",
        }

    def _outputs(self) -> None:
        cdk.CfnOutput(
            self, "ApiUrl", value=self.api.url, description="Base URL of the API (routes under /v1)"
        )
        cdk.CfnOutput(self, "AuthMode", value=self.settings.auth)
        if self.console is not None:
            cdk.CfnOutput(self, "ConsoleUrl", value=self.console.url, description="The web console")
        if self.api.api_key is not None:
            cdk.CfnOutput(
                self,
                "ApiKeyId",
                value=self.api.api_key.key_id,
                description="aws apigateway get-api-key --include-value --api-key <id> gives the key",
            )
        cdk.CfnOutput(self, "PayloadBucketName", value=self.storage.payload_bucket.bucket_name)
        cdk.CfnOutput(self, "InvocationsTableName", value=self.storage.invocations_table.table_name)
        cdk.CfnOutput(self, "PatternsTableName", value=self.storage.patterns_table.table_name)
        cdk.CfnOutput(self, "AlarmTopicArn", value=self.monitoring.topic.topic_arn)
        cdk.CfnOutput(self, "Orchestration", value=",".join(self.deployed_modes))
        if self.state_machine is not None:
            cdk.CfnOutput(self, "StateMachineArn", value=self.state_machine.arn)
        if self.bus is not None:
            cdk.CfnOutput(self, "EventBusName", value=self.bus.name)
            cdk.CfnOutput(
                self,
                "EventArchiveName",
                value=self.bus.archive.archive_name,
                description="make replay SINCE=… UNTIL=… EVENT_ARCHIVE=<this> replays a window of it",
            )


def cdk_json_context() -> dict[str, Any]:
    """The "context" of cdk.json: setting defaults and feature flags (the CLI hands them to app.py)."""
    return dict(json.loads((REPO_ROOT / "cdk.json").read_text())["context"])


def create_app(
    context: Mapping[str, Any] | None = None, *, outdir: str | None = None, with_cdk_json: bool = False
) -> tuple[cdk.App, HarmonicStack]:
    """The CDK app with the Harmonic stack and cdk-nag's AWS Solutions checks as a validation plugin.

    `app.py` calls it with no arguments (the CLI supplies cdk.json's context). Tests pass
    ``with_cdk_json=True`` and their overrides, so they synthesize with the same feature flags and defaults.
    """
    merged: dict[str, Any] = cdk_json_context() if with_cdk_json else {}
    merged.update(context or {})
    app = cdk.App(context=merged or None, outdir=outdir)
    settings = Settings.from_context(app.node.try_get_context)
    stack = HarmonicStack(app, app.node.try_get_context("stack_name") or STACK_NAME, settings=settings)
    # Every synth runs the AWS Solutions rules; a finding that is neither fixed nor acknowledged fails it.
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    return app, stack
