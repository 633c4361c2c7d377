"""One Harmonic Lambda function: its own role, its own log group, all the layers, X-Ray tracing.

The role is built here rather than by the Function construct so that it holds no AWS-managed policy: the only
log permissions are CreateLogStream/PutLogEvents on this function's own log group. Everything else is granted
by the construct that wires the function (pipeline, api).
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from harmonic_service.stages import Stage
from infra.layer import Layers
from infra.nag import acknowledge
from infra.settings import Settings

RETENTION = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    2192: logs.RetentionDays.SIX_YEARS,
    2557: logs.RetentionDays.SEVEN_YEARS,
}


def log_retention(days: int) -> logs.RetentionDays:
    return RETENTION[days]


class HarmonicFunction(Construct):
    """A function running Harmonic code from the shared ``functions/`` asset."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        code: lambda_.Code,
        handler: str,
        layers: Layers,
        settings: Settings,
        memory_mb: int,
        timeout_s: int,
        environment: dict[str, str],
        description: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(
            self,
            "LogGroup",
            retention=log_retention(settings.log_retention_days),
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Harmonic: {description}",
        )
        self.log_group.grant_write(self.role)
        self.function = lambda_.Function(
            self,
            "Function",
            code=code,
            handler=handler,
            runtime=layers.runtime,
            architecture=layers.architecture,
            layers=layers.all,
            memory_size=memory_mb,
            timeout=cdk.Duration.seconds(timeout_s),
            environment=environment,
            role=self.role,
            log_group=self.log_group,
            tracing=lambda_.Tracing.ACTIVE,
            description=f"Harmonic: {description}",
        )
        # CDK makes the function depend on its role and the role's policy; the role is already implied by
        # the function's Role attribute (cfn-lint W3005), the policy must stay (event source mappings check
        # the function's permissions when they are created).
        policy = self.role.node.find_child("DefaultPolicy").node.default_child
        function_resource = self.function.node.default_child
        assert isinstance(policy, cdk.CfnResource)
        assert isinstance(function_resource, cdk.CfnResource)
        function_resource.add_override("DependsOn", [cdk.Stack.of(self).get_logical_id(policy)])
        acknowledge(
            self,
            "AwsSolutions-IAM5[Resource::*]",
            "X-Ray tracing: xray:PutTraceSegments and xray:PutTelemetryRecords have no resource-level "
            "permissions, so the tracing statement CDK adds must name Resource '*'.",
        )
        acknowledge(
            self,
            "AwsSolutions-L1",
            f"Python {settings.python_runtime} on purpose (context python_runtime: 3.12 or 3.13): the "
            "layers' wheels are built for it and the code is tested on it; a newer runtime is adopted "
            "deliberately.",
        )

    @classmethod
    def for_stage(
        cls,
        scope: Construct,
        construct_id: str,
        stage: Stage,
        *,
        handler: str,
        code: lambda_.Code,
        layers: Layers,
        settings: Settings,
        environment: dict[str, str],
        description: str,
    ) -> HarmonicFunction:
        """The function of one stage: its declared size (memory overridable by ``stage_memory_mb``) and
        ``STAGE_NAME`` in its environment."""
        return cls(
            scope,
            construct_id,
            code=code,
            handler=handler,
            layers=layers,
            settings=settings,
            memory_mb=settings.stage_memory(stage.name),
            timeout_s=stage.timeout_s,
            environment={**environment, "STAGE_NAME": stage.name},
            description=description,
        )

    def acknowledge(self, finding: str, reason: str) -> None:
        """Acknowledge one cdk-nag finding on this function (role and policy included)."""
        acknowledge(self, finding, reason)
