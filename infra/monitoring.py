"""Monitoring: a CloudWatch dashboard and alarms notifying an encrypted SNS topic.

Alarms (all to the topic; e-mail subscription when ``alarm_email`` is set):

- a dead-letter queue holds a message (>= 1 visible): a stage gave up on an invocation;
- a stage queue's oldest message is older than ``alarm_oldest_message_age_s``: the pipeline is stuck or
  starved of concurrency;
- a stage function's error rate (Errors / Invocations, percent) is above ``alarm_stage_error_rate_pct``:
  crashes and timeouts (handled failures are reported per record and do not count);
- the API answers 5xx (``alarm_api_5xx_count`` in 5 minutes);
- events mode (when deployed): a stage's rules fail to deliver an event to its queue (FailedInvocations);
- the state machine (when deployed): failed executions / started executions above
  ``alarm_stage_error_rate_pct`` (a rate, like the functions': a client's unusable clip also ends its
  execution FAILED), and any timed-out or aborted execution.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from harmonic_service.stages import STAGE_NAMES, get_stage
from infra.settings import Settings


def stage_metric(name: str, stage: str) -> cloudwatch.Metric:
    """A Harmonic EMF metric of one stage (every mode's functions publish it with these dimensions)."""
    return cloudwatch.Metric(
        namespace="Harmonic",
        metric_name=name,
        dimensions_map={"service": "harmonic", "stage": stage},
        statistic="Sum",
        period=PERIOD,
    )


def service_metric(name: str, statistic: str, period: cdk.Duration) -> cloudwatch.Metric:
    """A Harmonic EMF metric of the whole service (no stage dimension), such as the sweeper's."""
    return cloudwatch.Metric(
        namespace="Harmonic",
        metric_name=name,
        dimensions_map={"service": "harmonic"},
        statistic=statistic,
        period=period,
    )


PERIOD = cdk.Duration.minutes(5)
ONE_MINUTE = cdk.Duration.minutes(1)


class Monitoring(Construct):
    """Dashboard + alarms for the stage functions and queues, and the API."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        stage_functions: dict[str, lambda_.IFunction],
        stage_queues: dict[str, sqs.IQueue],
        dead_letter_queues: dict[str, sqs.IQueue],
        api: apigateway.RestApi,
        api_function: lambda_.IFunction,
        state_machine: sfn.IStateMachine | None = None,
        event_rules: dict[str, list[events.IRule]] | None = None,
        sweeper_rules: list[events.IRule] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "AlarmTopicKey",
            description="Harmonic: encrypts the alarm topic",
            enable_key_rotation=True,
            removal_policy=cdk.RemovalPolicy.DESTROY,
            pending_window=cdk.Duration.days(7),
        )
        # CloudWatch publishes alarm notifications to the encrypted topic with this key.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": cdk.Stack.of(self).account}},
            )
        )
        self.topic = sns.Topic(
            self, "AlarmTopic", display_name="Harmonic alarms", master_key=self.key, enforce_ssl=True
        )
        if settings.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(settings.alarm_email))
        action = cloudwatch_actions.SnsAction(self.topic)

        self.alarms: list[cloudwatch.Alarm] = []
        for name, queue in dead_letter_queues.items():
            self._alarm(
                f"{name}-dead-letters",
                queue.metric_approximate_number_of_messages_visible(period=ONE_MINUTE, statistic="Maximum"),
                threshold=1,
                description=f"Stage {name}: a message reached its dead-letter queue (retries exhausted).",
                action=action,
            )
        for name, queue in stage_queues.items():
            self._alarm(
                f"{name}-oldest-message",
                queue.metric_approximate_age_of_oldest_message(period=PERIOD, statistic="Maximum"),
                threshold=settings.alarm_oldest_message_age_s,
                description=f"Stage {name}: the oldest message waits longer than "
                f"{settings.alarm_oldest_message_age_s} s.",
                action=action,
            )
        for name, function in stage_functions.items():
            self._alarm(
                f"{name}-error-rate",
                self._error_rate(function),
                threshold=settings.alarm_stage_error_rate_pct,
                description=f"Stage {name}: more than {settings.alarm_stage_error_rate_pct:g} % of "
                "invocations failed (errors / invocations over 5 minutes).",
                action=action,
            )
            stage = name.removeprefix("events-")
            if stage in STAGE_NAMES:  # a stage function: its p95 duration against its timeout
                limit_ms = get_stage(stage).timeout_s * 1000 * settings.alarm_stage_p95_pct_of_timeout / 100
                self._alarm(
                    f"{name}-p95-duration",
                    function.metric_duration(period=PERIOD, statistic="p95"),
                    threshold=limit_ms,
                    description=f"Stage {name}: p95 duration above {limit_ms:,.0f} ms "
                    f"({settings.alarm_stage_p95_pct_of_timeout:g} % of its timeout) over 5 minutes.",
                    action=action,
                )
        self._stage_metric_alarms(settings, action)
        self._alarm(
            "api-error-rate",
            self._error_rate(api_function),
            threshold=settings.alarm_stage_error_rate_pct,
            description=f"API function: more than {settings.alarm_stage_error_rate_pct:g} % of invocations "
            "failed.",
            action=action,
        )
        self._alarm(
            "api-5xx",
            api.metric_server_error(period=PERIOD, statistic="Sum"),
            threshold=settings.alarm_api_5xx_count,
            description=f"API: {settings.alarm_api_5xx_count} or more 5xx answers in 5 minutes.",
            action=action,
        )

        if sweeper_rules:
            self._alarm(
                "sweeper-failed-deliveries",
                self._failed_invocations(sweeper_rules),
                threshold=1,
                description="Sweeper: EventBridge could not run the sweeper (its schedule or an execution "
                "status change; FailedInvocations of its rules, kept in their dead-letter queue).",
                action=action,
            )
        self._alarm(
            "invocations-stalled",
            service_metric("InvocationsStalled", "Sum", PERIOD),
            threshold=1,
            description="The sweeper failed an invocation that made no progress by its deadline (code "
            "stalled; it can be resumed): a stage killed on its last delivery, or a message lost twice.",
            action=action,
        )
        self._alarm(
            "breakers-open",
            service_metric("BreakersOpen", "Maximum", ONE_MINUTE),
            threshold=1,
            description="A stage's circuit breaker is open: a dependency (S3, DynamoDB, SQS, "
            "the bus) keeps failing, so the stage stopped pulling its queue; its messages wait there. The "
            "sweeper reports it every minute until a probe succeeds (the breaker item names the dependency).",
            action=action,
        )
        if state_machine is not None:
            self._state_machine_alarms(state_machine, settings, action)
        for name, rules in (event_rules or {}).items():
            self._alarm(
                f"events-{name}-failed-deliveries",
                self._failed_invocations(rules),
                threshold=1,
                description=f"Stage events-{name}: EventBridge could not deliver an event to its queue "
                "(FailedInvocations of its rules; the events wait in the delivery dead-letter queue).",
                action=action,
            )

        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            default_interval=cdk.Duration.hours(3),
            period_override=cloudwatch.PeriodOverride.AUTO,
        )
        self._dashboard(stage_functions, stage_queues, dead_letter_queues, api, api_function)
        if state_machine is not None:
            self._state_machine_widgets(state_machine)

    def _state_machine_alarms(
        self, state_machine: sfn.IStateMachine, settings: Settings, action: cloudwatch.IAlarmAction
    ) -> None:
        self._alarm(
            "state-machine-failure-rate",
            cloudwatch.MathExpression(
                expression="IF(started > 0, 100 * failed / started, IF(failed > 0, 100, 0))",
                using_metrics={
                    "failed": state_machine.metric_failed(period=PERIOD, statistic="Sum"),
                    "started": state_machine.metric_started(period=PERIOD, statistic="Sum"),
                },
                label="failed executions (%)",
                period=PERIOD,
            ),
            threshold=settings.alarm_stage_error_rate_pct,
            description=f"State machine: more than {settings.alarm_stage_error_rate_pct:g} % of executions "
            "failed (ExecutionsFailed / ExecutionsStarted over 5 minutes).",
            action=action,
        )
        self._alarm(
            "state-machine-timed-out-or-aborted",
            cloudwatch.MathExpression(
                expression="timed_out + aborted",
                using_metrics={
                    "timed_out": state_machine.metric_timed_out(period=PERIOD, statistic="Sum"),
                    "aborted": state_machine.metric_aborted(period=PERIOD, statistic="Sum"),
                },
                label="timed-out or aborted executions",
                period=PERIOD,
            ),
            threshold=1,
            description="State machine: an execution timed out or was aborted (its invocation may still "
            "read RUNNING; resume needs it FAILED).",
            action=action,
        )

    def _state_machine_widgets(self, state_machine: sfn.IStateMachine) -> None:
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="State machine executions",
                left=[
                    state_machine.metric_started(statistic="Sum", label="started"),
                    state_machine.metric_succeeded(statistic="Sum", label="succeeded"),
                    state_machine.metric_failed(statistic="Sum", label="failed"),
                    state_machine.metric_timed_out(statistic="Sum", label="timed out"),
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="State machine execution time (ms)",
                left=[
                    state_machine.metric_time(statistic="p50", label="p50"),
                    state_machine.metric_time(statistic="p99", label="p99"),
                ],
                right=[state_machine.metric_throttled(statistic="Sum", label="throttled")],
                width=12,
            ),
        )

    def _failed_invocations(self, rules: list[events.IRule]) -> cloudwatch.IMetric:
        """The sum of the rules' FailedInvocations (AWS/Events, per rule name)."""
        metrics = {
            f"r{index}": cloudwatch.Metric(
                namespace="AWS/Events",
                metric_name="FailedInvocations",
                dimensions_map={"RuleName": rule.rule_name},
                period=PERIOD,
                statistic="Sum",
            )
            for index, rule in enumerate(rules)
        }
        return cloudwatch.MathExpression(
            expression=" + ".join(f"FILL({key}, 0)" for key in metrics),
            using_metrics=metrics,
            label="failed deliveries",
            period=PERIOD,
        )

    def _error_rate(self, function: lambda_.IFunction) -> cloudwatch.MathExpression:
        return cloudwatch.MathExpression(
            expression="IF(invocations > 0, 100 * errors / invocations, 0)",
            using_metrics={
                "errors": function.metric_errors(period=PERIOD, statistic="Sum"),
                "invocations": function.metric_invocations(period=PERIOD, statistic="Sum"),
            },
            label="error rate (%)",
            period=PERIOD,
        )

    def _stage_metric_alarms(self, settings: Settings, action: cloudwatch.IAlarmAction) -> None:
        """Per stage, over every mode (the handlers' EMF metrics, dimensions service and stage): failed
        attempts (StageFailures: retried or not) and poison messages (PoisonMessages: each ends in a DLQ)."""
        for stage in STAGE_NAMES:
            self._alarm(
                f"{stage}-stage-failures",
                stage_metric("StageFailures", stage),
                threshold=settings.alarm_stage_failures,
                description=f"Stage {stage}: {settings.alarm_stage_failures} or more failed attempts in 5 "
                "minutes, in any mode (retried or not: SQS redeliveries do not count as Lambda errors).",
                action=action,
            )
            self._alarm(
                f"{stage}-poison-messages",
                stage_metric("PoisonMessages", stage),
                threshold=1,
                description=f"Stage {stage}: a poison message (malformed, or for an unknown invocation); "
                "it waits in a dead-letter queue.",
                action=action,
            )

    def _alarm(
        self,
        name: str,
        metric: cloudwatch.IMetric,
        *,
        threshold: float,
        description: str,
        action: cloudwatch.IAlarmAction,
    ) -> None:
        alarm = cloudwatch.Alarm(
            self,
            "".join(part.title() for part in name.split("-")) + "Alarm",
            metric=metric,
            threshold=threshold,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=f"Harmonic: {description}",
        )
        alarm.add_alarm_action(action)
        self.alarms.append(alarm)

    def _dashboard(
        self,
        stage_functions: dict[str, lambda_.IFunction],
        stage_queues: dict[str, sqs.IQueue],
        dead_letter_queues: dict[str, sqs.IQueue],
        api: apigateway.RestApi,
        api_function: lambda_.IFunction,
    ) -> None:
        stages = list(stage_functions)
        width = 8

        def per_stage(
            title: str, metric_of, *, unit_left: str | None = None, among: dict | None = None
        ) -> cloudwatch.GraphWidget:
            """One line per function (`among`: only those that are keys of it, e.g. those with a queue)."""
            names = [name for name in stages if among is None or name in among]
            return cloudwatch.GraphWidget(
                title=title,
                left=[metric_of(name).with_(label=name) for name in names],
                width=width,
                left_y_axis=cloudwatch.YAxisProps(label=unit_left, show_units=False) if unit_left else None,
            )

        self.dashboard.add_widgets(
            cloudwatch.TextWidget(
                markdown="# Harmonic\nPipeline stages (SQS → Lambda), dead-letter queues and the HTTP API.",
                width=24,
                height=2,
            )
        )
        self.dashboard.add_widgets(
            per_stage(
                "Stage duration p99 (ms)", lambda n: stage_functions[n].metric_duration(statistic="p99")
            ),
            per_stage("Stage errors", lambda n: stage_functions[n].metric_errors(statistic="Sum")),
            per_stage("Stage invocations", lambda n: stage_functions[n].metric_invocations(statistic="Sum")),
        )
        self.dashboard.add_widgets(
            *(
                cloudwatch.GraphWidget(
                    title=f"{metric} per stage (every mode)",
                    left=[stage_metric(metric, stage).with_(label=stage) for stage in STAGE_NAMES],
                    width=width,
                )
                for metric in ("StageFailures", "PoisonMessages", "DependencyFailures")
            ),
            cloudwatch.GraphWidget(
                title="Circuit breaker open (1) per stage",
                left=[
                    stage_metric("BreakerOpen", stage).with_(
                        label=stage, statistic="Maximum", period=ONE_MINUTE
                    )
                    for stage in STAGE_NAMES
                ],
                width=width,
            ),
            cloudwatch.GraphWidget(
                title="Watchdog: stalled and re-dispatched invocations, open breakers",
                left=[
                    service_metric("InvocationsStalled", "Sum", PERIOD).with_(label="stalled"),
                    service_metric("InvocationsRedispatched", "Sum", PERIOD).with_(label="re-dispatched"),
                ],
                right=[service_metric("BreakersOpen", "Maximum", ONE_MINUTE).with_(label="breakers open")],
                width=width,
            ),
            cloudwatch.GraphWidget(
                title="Messages held back by a breaker (requeued) per stage",
                left=[stage_metric("MessagesRequeued", stage).with_(label=stage) for stage in STAGE_NAMES],
                width=width,
            ),
            per_stage(
                "Stage duration p95 (ms)", lambda n: stage_functions[n].metric_duration(statistic="p95")
            ),
        )
        self.dashboard.add_widgets(
            per_stage(
                "Queue depth (visible messages)",
                lambda n: stage_queues[n].metric_approximate_number_of_messages_visible(statistic="Maximum"),
                among=stage_queues,
            ),
            per_stage(
                "Age of oldest message (s)",
                lambda n: stage_queues[n].metric_approximate_age_of_oldest_message(statistic="Maximum"),
                among=stage_queues,
            ),
            per_stage(
                "Dead-letter queue depth",
                lambda n: dead_letter_queues[n].metric_approximate_number_of_messages_visible(
                    statistic="Maximum"
                ),
                among=dead_letter_queues,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="API requests and errors",
                left=[
                    api.metric_count(statistic="Sum", label="requests"),
                    api.metric_client_error(statistic="Sum", label="4xx"),
                    api.metric_server_error(statistic="Sum", label="5xx"),
                ],
                width=width,
            ),
            cloudwatch.GraphWidget(
                title="API latency (ms)",
                left=[
                    api.metric_latency(statistic="p50", label="p50"),
                    api.metric_latency(statistic="p99", label="p99"),
                    api.metric_integration_latency(statistic="p99", label="integration p99"),
                ],
                width=width,
            ),
            cloudwatch.GraphWidget(
                title="API function",
                left=[
                    api_function.metric_duration(statistic="p99", label="duration p99 (ms)"),
                ],
                right=[
                    api_function.metric_errors(statistic="Sum", label="errors"),
                    api_function.metric_throttles(statistic="Sum", label="throttles"),
                ],
                width=width,
            ),
        )
