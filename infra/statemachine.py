"""The statemachine orchestration: the ASL of statemachines/ and one task function per stage.

- Definition: ``statemachines/harmonic.asl.json`` (JSONPath; generated from the stage table by ``make asl``,
  infra/asl.py), loaded inline with
  ``DefinitionBody.from_string``; its ``${<Stage>FunctionArn}`` and ``${RecordFailureFunctionArn}``
  placeholders become DefinitionSubstitutions with the task functions' ARNs.
- Task functions: one per stage (its declaration: memory, overridable by ``stage_memory_mb``, and timeout),
  running ``TASK_HANDLER`` over the same code asset, layers and stage runner as the pipeline's functions,
  plus a small one for the failure path. They are separate from the pipeline's functions (a function has
  one handler, and ``orchestration=statemachine`` deploys no pipeline): their own roles hold no SQS
  permission, and their Lambda errors (which drive Retry/Catch) stay out of the pipeline functions'
  error-rate alarms.
- Type from ``state_machine_type``: STANDARD (exactly-once state transitions, execution names unique for 90
  days, up to a year) or EXPRESS (cheaper per request, at most 5 minutes, at-least-once when started
  asynchronously; the checkpoints make duplicates harmless). See docs/infra.md.
- Logs: every event (level ALL) to its own log group under ``/aws/vendedlogs/states/``, without execution
  data (envelopes hold only ids and keys, but the history needs no copy of them). X-Ray tracing on.
- Role: ``lambda:InvokeFunction`` on exactly its task functions (unqualified ARNs), plus what CDK adds for
  log delivery and X-Ray.
"""

from __future__ import annotations

import re

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from harmonic_service.stages import STAGES, TASK_HANDLER
from infra.asl import ASL_PATH, RECORD_FAILURE_KEY, substitution_key
from infra.function import HarmonicFunction, log_retention
from infra.layer import Layers
from infra.nag import acknowledge
from infra.settings import Settings
from infra.storage import Storage

# The failure path only reads and updates one invocation item.
RECORD_FAILURE_MEMORY_MB = 512
RECORD_FAILURE_TIMEOUT_S = 30
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9]+)\}")


__all__ = ["ASL_PATH", "RECORD_FAILURE_KEY", "StateMachine", "asl_placeholders", "substitution_key"]


def asl_placeholders(asl_text: str) -> set[str]:
    """Every `${...}` placeholder of a definition."""
    return set(_PLACEHOLDER.findall(asl_text))


class StateMachine(Construct):
    """The Step Functions state machine and its task functions."""

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
    ) -> None:
        super().__init__(scope, construct_id)
        self.functions: dict[str, HarmonicFunction] = {}
        for spec in STAGES:
            function = HarmonicFunction.for_stage(
                self,
                f"{spec.title}Task",
                spec,
                handler=TASK_HANDLER,
                code=code,
                layers=layers,
                settings=settings,
                environment=environment,
                description=f"state machine task {spec.name}",
            )
            storage.grant_stage(function)
            self.functions[spec.name] = function
        self.record_failure = HarmonicFunction(
            self,
            "RecordFailureTask",
            code=code,
            handler=TASK_HANDLER,
            layers=layers,
            settings=settings,
            memory_mb=RECORD_FAILURE_MEMORY_MB,
            timeout_s=RECORD_FAILURE_TIMEOUT_S,
            environment=environment,
            description="state machine failure path",
        )
        storage.invocations_table.grant_read_write_data(self.record_failure.function)

        self.substitutions: dict[str, str] = {
            substitution_key(name): task.function.function_arn for name, task in self.functions.items()
        }
        self.substitutions[RECORD_FAILURE_KEY] = self.record_failure.function.function_arn
        asl_text = ASL_PATH.read_text()
        missing = asl_placeholders(asl_text) ^ set(self.substitutions)
        if missing:
            raise ValueError(f"{ASL_PATH.name} and the task functions disagree on {sorted(missing)}")

        stack = cdk.Stack.of(self)
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            # The vendedlogs prefix keeps CloudWatch Logs' resource policy small (AWS's advice for Step
            # Functions and other vended logs).
            log_group_name=f"/aws/vendedlogs/states/{stack.stack_name}-{cdk.Names.unique_id(self)}",
            retention=log_retention(settings.log_retention_days),
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            definition_body=sfn.DefinitionBody.from_string(asl_text),
            definition_substitutions=self.substitutions,
            state_machine_type=sfn.StateMachineType[settings.state_machine_type],
            logs=sfn.LogOptions(
                destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=False
            ),
            tracing_enabled=True,
        )
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["lambda:InvokeFunction"],
                resources=[function.function.function_arn for function in self.all_functions],
            )
        )
        # CDK makes the state machine depend on its role and the role's policy; the role is implied by the
        # RoleArn attribute (cfn-lint W3005), the policy must stay (invoke and logging permissions first).
        policy = self.state_machine.role.node.find_child("DefaultPolicy").node.default_child
        resource = self.state_machine.node.default_child
        assert isinstance(policy, cdk.CfnResource)
        assert isinstance(resource, cdk.CfnResource)
        resource.add_override("DependsOn", [stack.get_logical_id(policy)])
        acknowledge(
            self.state_machine,
            "AwsSolutions-IAM5[Resource::*]",
            "Step Functions log delivery (logs:CreateLogDelivery, GetLogDelivery, UpdateLogDelivery, "
            "DeleteLogDelivery, ListLogDeliveries, PutResourcePolicy, DescribeResourcePolicies, "
            "DescribeLogGroups) and X-Ray (PutTraceSegments, PutTelemetryRecords, GetSamplingRules, "
            "GetSamplingTargets) have no resource-level permissions; CDK adds them for logging and tracing.",
        )

    @property
    def all_functions(self) -> list[HarmonicFunction]:
        """Every task function: the stages' in stage order, then the failure path's."""
        return [*self.functions.values(), self.record_failure]

    @property
    def arn(self) -> str:
        return self.state_machine.state_machine_arn
