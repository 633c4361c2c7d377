"""Monitoring: alarms (dead letters, message age, error rates, API 5xx) to an encrypted topic; a dashboard."""

from __future__ import annotations

import json
from typing import Any

from harmonic_service.stages import STAGES, TASK_HANDLER
from infra.settings import Settings
from infra.stack import cdk_json_context
from tests.infra.conftest import API_KEY_VARIANT, ref_id, resources, stage_queues


def _alarms(template: dict[str, Any]) -> list[dict[str, Any]]:
    return list(resources(template, "AWS::CloudWatch::Alarm").values())


def _queue_of(alarm: dict[str, Any]) -> str:
    (dimension,) = alarm["Dimensions"]
    assert dimension["Name"] == "QueueName"
    return ref_id(dimension["Value"])


def test_every_dead_letter_queue_alarms_on_its_first_message(template: dict[str, Any]) -> None:
    queues = resources(template, "AWS::SQS::Queue")
    dead_letter_ids = {
        ref_id(q["RedrivePolicy"]["deadLetterTargetArn"]) for q in queues.values() if "RedrivePolicy" in q
    }
    # and the dead-letter queue of the event rules' targets (events EventBridge could not deliver)
    dead_letter_ids |= {
        ref_id(target["DeadLetterConfig"]["Arn"])
        for rule in resources(template, "AWS::Events::Rule").values()
        for target in rule["Targets"]
    }
    alarmed = {
        _queue_of(alarm)
        for alarm in _alarms(template)
        if alarm.get("MetricName") == "ApproximateNumberOfMessagesVisible"
        and alarm["Threshold"] == 1
        and alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    }
    assert alarmed == dead_letter_ids


def test_every_stage_queue_alarms_on_old_messages(template: dict[str, Any]) -> None:
    alarmed = {
        _queue_of(alarm)
        for alarm in _alarms(template)
        if alarm.get("MetricName") == "ApproximateAgeOfOldestMessage"
        and alarm["Threshold"] == Settings().alarm_oldest_message_age_s
    }
    consumed = {
        ref_id(mapping["EventSourceArn"])
        for mapping in resources(template, "AWS::Lambda::EventSourceMapping").values()
    }
    assert set(stage_queues(template).values()) < consumed  # the pipeline's, and the events mode's
    assert alarmed == consumed


def test_error_rate_alarms_divide_errors_by_invocations(template: dict[str, Any]) -> None:
    rate_alarms = [alarm for alarm in _alarms(template) if "Errors" in json.dumps(alarm.get("Metrics", []))]
    # every pipeline stage, every events subscriber, the audit and notification subscribers, the API, the
    # sweeper
    assert len(rate_alarms) == 2 * len(STAGES) + 2 + 1 + 1
    # Not the state machine's task functions: their errors are Retry/Catch control flow (a bad clip raises
    # PermanentStageError); the state machine's failure-rate alarm covers them.
    functions = {
        logical_id
        for logical_id, props in resources(template, "AWS::Lambda::Function").items()
        if props["Handler"] != TASK_HANDLER
    }
    covered = set()
    for alarm in rate_alarms:
        assert alarm["Threshold"] == Settings().alarm_stage_error_rate_pct
        expression = next(m for m in alarm["Metrics"] if "Expression" in m)
        assert expression["Expression"] == "IF(invocations > 0, 100 * errors / invocations, 0)"
        names = {m["MetricStat"]["Metric"]["MetricName"] for m in alarm["Metrics"] if "MetricStat" in m}
        assert names == {"Errors", "Invocations"}
        for metric in alarm["Metrics"]:
            if "MetricStat" in metric:
                (dimension,) = metric["MetricStat"]["Metric"]["Dimensions"]
                covered.add(ref_id(dimension["Value"]))
    assert covered == functions


def test_api_5xx_alarm_and_every_alarm_notifies_the_encrypted_topic(template: dict[str, Any]) -> None:
    (topic_id, topic), *others = resources(template, "AWS::SNS::Topic").items()
    assert not others
    assert ref_id(topic["KmsMasterKeyId"]) in resources(template, "AWS::KMS::Key")
    (key,) = resources(template, "AWS::KMS::Key").values()
    assert key["EnableKeyRotation"] is True
    principals = [s.get("Principal", {}).get("Service") for s in key["KeyPolicy"]["Statement"]]
    assert "cloudwatch.amazonaws.com" in principals
    api_5xx = [a for a in _alarms(template) if a.get("MetricName") == "5XXError"]
    assert len(api_5xx) == 1
    assert api_5xx[0]["Namespace"] == "AWS/ApiGateway"
    # per queue of the pipeline, of the events mode and of the audit and notification subscribers: dead
    # letters, oldest message, error rate; the rules' delivery DLQ; per events stage and for each of those
    # two subscribers, its rules' failed deliveries; the API's two; the state machine's two; the sweeper's:
    # error rate, its rules' DLQ and failed deliveries, stalled invocations and open circuit breakers; per
    # stage, failed attempts and poison messages (every mode), and the p95 duration of its pipeline and
    # events functions
    per_stage = 2 + 2
    assert len(_alarms(template)) == 3 * (2 * len(STAGES) + 2) + 1 + (len(STAGES) + 2) + 2 + 2 + 5 + (
        per_stage * len(STAGES)
    )
    (stalled,) = [a for a in _alarms(template) if a.get("MetricName") == "InvocationsStalled"]
    assert (stalled["Namespace"], stalled["Statistic"], stalled["Threshold"]) == ("Harmonic", "Sum", 1)
    for alarm in _alarms(template):
        assert [ref_id(action) for action in alarm["AlarmActions"]] == [topic_id]
        assert alarm["TreatMissingData"] == "notBreaching"


def test_every_stages_rules_alarm_on_failed_deliveries(template: dict[str, Any]) -> None:
    rules = resources(template, "AWS::Events::Rule")
    alarmed: list[str] = []
    for alarm in _alarms(template):
        names = [
            m["MetricStat"]["Metric"]
            for m in alarm.get("Metrics", [])
            if "MetricStat" in m and m["MetricStat"]["Metric"]["MetricName"] == "FailedInvocations"
        ]
        if names:
            assert alarm["Threshold"] == 1
            alarmed += [ref_id(metric["Dimensions"][0]["Value"]) for metric in names]
    assert sorted(alarmed) == sorted(rules)  # every rule, each in its stage's alarm


def test_alarm_email_subscribes_to_the_topic(template: dict[str, Any], synth) -> None:
    assert not resources(template, "AWS::SNS::Subscription")
    _, variant = synth(**API_KEY_VARIANT)
    (subscription,) = resources(variant, "AWS::SNS::Subscription").values()
    assert subscription["Protocol"] == "email"
    assert subscription["Endpoint"] == "ops@example.com"


def test_dashboard_shows_stages_queues_dead_letters_and_the_api(template: dict[str, Any]) -> None:
    (dashboard,) = resources(template, "AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["DashboardBody"])
    for metric in (
        "Duration",
        "Errors",
        "Invocations",
        "ApproximateNumberOfMessagesVisible",
        "ApproximateAgeOfOldestMessage",
        "4XXError",
        "5XXError",
        "Latency",
    ):
        assert metric in body, metric
    for queue in stage_queues(template).values():
        assert queue in body


def test_every_stage_alarms_on_failed_attempts_poison_and_a_slow_p95(template: dict[str, Any]) -> None:
    """StageFailures and PoisonMessages were emitted but never alarmed on; a stage creeping towards its
    timeout was not watched either."""
    alarms = _alarms(template)
    for stage in STAGES:
        by_metric = {
            alarm["MetricName"]: alarm
            for alarm in alarms
            if {"Name": "stage", "Value": stage.name} in alarm.get("Dimensions", [])
        }
        assert by_metric["StageFailures"]["Threshold"] == Settings().alarm_stage_failures
        assert by_metric["PoisonMessages"]["Threshold"] == 1
        assert (
            by_metric["StageFailures"]["Namespace"] == by_metric["PoisonMessages"]["Namespace"] == "Harmonic"
        )
        owners = (f"Harmonic: Stage {stage.name}:", f"Harmonic: Stage events-{stage.name}:")
        slow = [
            alarm
            for alarm in alarms
            if alarm.get("MetricName") == "Duration"
            and alarm.get("ExtendedStatistic") == "p95"
            and alarm["AlarmDescription"].startswith(owners)
        ]
        assert len(slow) == 2  # its pipeline function and its events function
        assert {alarm["Threshold"] for alarm in slow} == {stage.timeout_s * 1000 * 0.8}  # 80 % (cdk.json)


def test_an_open_circuit_breaker_alarms_and_is_graphed_per_stage(template: dict[str, Any]) -> None:
    (alarm,) = [a for a in _alarms(template) if a.get("MetricName") == "BreakersOpen"]
    assert alarm["Namespace"] == "Harmonic"
    assert alarm["Statistic"] == "Maximum"
    assert alarm["Period"] == 60  # the sweeper reports every minute
    assert alarm["Threshold"] == 1
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["AlarmActions"]
    (dashboard,) = resources(template, "AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["DashboardBody"])
    for metric in (
        "BreakerOpen",
        "BreakersOpen",
        "DependencyFailures",
        "MessagesRequeued",
        "InvocationsStalled",
    ):
        assert metric in body, metric


def test_every_function_gets_the_breaker_settings_of_cdk_json(template: dict[str, Any]) -> None:
    settings = Settings.from_mapping(cdk_json_context())
    expected = {
        "BREAKER_THRESHOLD": str(settings.breaker_threshold),
        "BREAKER_WINDOW_S": str(settings.breaker_window_s),
        "BREAKER_COOLDOWN_S": str(settings.breaker_cooldown_s),
        "BREAKER_MAX_REQUEUES": str(settings.breaker_max_requeues),
    }
    for props in resources(template, "AWS::Lambda::Function").values():
        variables = props.get("Environment", {}).get("Variables", {})
        if "INVOCATIONS_TABLE" in variables:
            assert {k: variables.get(k) for k in expected} == expected
