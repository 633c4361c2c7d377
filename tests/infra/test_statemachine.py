"""The state machine: the ASL of statemachines/ against the stage table, and the CDK resource around it."""

from __future__ import annotations

import json
from graphlib import TopologicalSorter
from typing import Any

import pytest

from harmonic_service.stages import STAGE_NAMES, STAGES, TASK_HANDLER, parallel_groups
from infra.statemachine import ASL_PATH, RECORD_FAILURE_KEY, asl_placeholders, substitution_key
from tests.infra.conftest import (
    STATEMACHINE_VARIANT,
    X86_VARIANT,
    api_function,
    ref_id,
    resources,
    role_statements,
)

LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
RETRIED_LAMBDA_ERRORS = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
}
PERMANENT_ERRORS = {"PermanentStageError", "PoisonMessage", "UnknownInvocation", "StaleMessage"}


@pytest.fixture(scope="module")
def asl() -> dict[str, Any]:
    return json.loads(ASL_PATH.read_text())


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _flat(asl: dict[str, Any]) -> dict[str, tuple[dict[str, Any], str | None]]:
    """Every state by name, top level and inside Parallel branches, with its Parallel state (or None)."""
    found: dict[str, tuple[dict[str, Any], str | None]] = {}

    def visit(states: dict[str, Any], parallel: str | None) -> None:
        for name, state in states.items():
            assert name not in found, f"state name {name} is used twice"
            found[name] = (state, parallel)
            for branch in state.get("Branches", []):
                visit(branch["States"], name)

    visit(asl["States"], None)
    return found


def _tasks(asl: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: state for name, (state, _) in _flat(asl).items() if state["Type"] == "Task"}


def _stage_of(task: dict[str, Any]) -> str | None:
    """The stage whose function a task invokes (None for the failure path)."""
    function = task["Parameters"]["FunctionName"]
    return next((name for name in STAGE_NAMES if function == "${" + substitution_key(name) + "}"), None)


def _successors(state: dict[str, Any]) -> list[str]:
    """Where a state goes when nothing fails (Next, Choices and Default; not Catch)."""
    following = [choice["Next"] for choice in state.get("Choices", [])]
    following += [state[key] for key in ("Next", "Default") if key in state]
    return following


def _entered(asl: dict[str, Any], name: str) -> list[str]:
    """The states a state leads to on success, a Parallel's branches (and a branch end its Parallel's
    Next) included."""
    flat = _flat(asl)
    state, parallel = flat[name]
    following = [branch["StartAt"] for branch in state.get("Branches", [])]
    following += _successors(state)
    if state.get("End") and parallel is not None:
        following += _successors(flat[parallel][0])
    return following


# --- the ASL --------------------------------------------------------------------------------------------


def test_committed_asl_is_the_one_generated_from_the_stage_table() -> None:
    from infra import asl as generator

    assert ASL_PATH.read_text() == generator.render(), "statemachines/ is out of date: run `make asl`"
    assert generator.main(["--check"]) == 0


def test_asl_is_jsonpath_and_every_state_is_reachable(asl: dict[str, Any]) -> None:
    assert asl.get("QueryLanguage", "JSONPath") == "JSONPath"
    flat = _flat(asl)
    seen, todo = set(), [asl["StartAt"]]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        state = flat[name][0]
        todo += _entered(asl, name) + [catch["Next"] for catch in state.get("Catch", [])]
    assert seen == set(flat)
    terminal = {name for name, (state, _) in flat.items() if not _entered(asl, name)}
    assert {flat[name][0]["Type"] for name in terminal} == {"Succeed", "Fail"}


def test_task_states_and_their_order_are_the_stages(asl: dict[str, Any]) -> None:
    """One Task per stage; the success paths visit them in the table's dependency order, the stages of a
    parallel group (stages.parallel_groups) together, in a Parallel state."""
    tasks = _tasks(asl)
    by_stage = {_stage_of(task): name for name, task in tasks.items() if _stage_of(task)}
    assert set(by_stage) == set(STAGE_NAMES)
    stage_of_state = {name: stage for stage, name in by_stage.items()}
    graph: dict[str, set[str]] = {stage: set() for stage in STAGE_NAMES}
    for stage, state_name in by_stage.items():
        todo, seen = list(_entered(asl, state_name)), set()
        while todo:
            following = todo.pop()
            if following in seen:
                continue
            seen.add(following)
            if following in stage_of_state:
                graph[stage_of_state[following]].add(stage)
            elif _flat(asl)[following][0]["Type"] in ("Choice", "Parallel"):
                todo += _entered(asl, following)
    sorter = TopologicalSorter(graph)
    sorter.prepare()
    generations = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready(), key=STAGE_NAMES.index)
        generations.append(tuple(ready))
        sorter.done(*ready)
    assert generations == [("ingest",), ("denoise",), ("normalize",), ("features", "match"), ("respond",)]
    assert tuple(generations) == parallel_groups()
    (parallel,) = [name for name, (state, _) in _flat(asl).items() if state["Type"] == "Parallel"]
    assert {_flat(asl)[by_stage[s]][1] for s in ("features", "match")} == {parallel}


def test_optional_stages_are_behind_choices_or_decide_their_own_skip(asl: dict[str, Any]) -> None:
    tasks = _tasks(asl)
    by_stage = {_stage_of(task): name for name, task in tasks.items() if _stage_of(task)}
    flat = _flat(asl)
    for spec in STAGES:
        task = tasks[by_stage[spec.name]]
        payload = task["Parameters"].get("Payload", {})
        if not spec.optional:
            continue
        if flat[by_stage[spec.name]][1] is not None:  # a parallel branch: the task decides its own skip
            assert payload == {**payload, "stage": spec.name, "own_skip": True, "plan": False}
            continue
        pointing = [
            name
            for name, (state, _) in flat.items()
            if by_stage[spec.name] in _successors(state) and name != asl["StartAt"]
        ]
        (before,) = pointing
        choice = flat[before][0]
        assert choice["Type"] == "Choice"
        assert {c["Variable"] for c in choice["Choices"]} == {"$.stage"}
        assert {c["StringEquals"]: c["Next"] for c in choice["Choices"]}[spec.name] == by_stage[spec.name]
    # The start dispatches on the envelope's stage, so that a resume starts at its stage (a group's stage at
    # its Parallel state).
    start = asl["States"][asl["StartAt"]]
    assert start["Type"] == "Choice"
    dispatched = {c["StringEquals"]: c["Next"] for c in start["Choices"]}
    expected = {stage: flat[name][1] or name for stage, name in by_stage.items()}
    assert dispatched == expected
    assert {c["Variable"] for c in start["Choices"]} == {"$.stage"}


def test_every_task_invokes_lambda_with_small_json_retry_and_catch(asl: dict[str, Any]) -> None:
    flat = _flat(asl)
    for name, task in _tasks(asl).items():
        assert task["Resource"] == LAMBDA_INVOKE, name
        assert task["Parameters"]["FunctionName"].startswith("${"), name
        assert task["OutputPath"] == "$.Payload", name
        stage = _stage_of(task)
        if stage:
            payload = task["Parameters"].get("Payload", {})
            # the envelope as it is, or (a group's stage, or the one after a group) wrapped with its stage
            assert task["Parameters"].get("Payload.$") == "$" or payload["envelope.$"] == "$", name
            if "Payload.$" not in task["Parameters"]:
                assert payload["stage"] == stage
        retried = {error for retrier in task["Retry"] for error in retrier["ErrorEquals"]}
        assert RETRIED_LAMBDA_ERRORS | {"TransientStageError"} <= retried, name
        assert not retried & (PERMANENT_ERRORS | {"States.ALL"}), name
        for retrier in task["Retry"]:
            assert retrier["BackoffRate"] > 1, name
            assert retrier["JitterStrategy"] == "FULL", name
            assert retrier["MaxDelaySeconds"] >= retrier["IntervalSeconds"], name
        (catch,) = task["Catch"]
        assert catch["ErrorEquals"] == ["States.ALL"], name
        failure_path = flat[catch["Next"]][0]
        if stage:
            assert catch["ResultPath"] == "$.error", name  # keeps the envelope
            assert failure_path["Type"] == "Task"
            assert _stage_of(failure_path) is None
            assert flat[failure_path["Next"]][0]["Type"] == "Fail"
            if flat[name][1] is not None:  # a branch records its own stage's failure
                assert failure_path["Parameters"]["Payload"]["stage"] == stage
        else:
            assert failure_path["Type"] == "Fail", name
    for state, _ in flat.values():
        if state["Type"] == "Parallel":
            # its failures were recorded by the failing branch: no second record (which, after a client
            # resumed the invocation, would fail the resumed run)
            catch = {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "GroupFailed"}
            assert state["Catch"] == [catch]
            group_failed = flat["GroupFailed"][0]
            assert group_failed == {**group_failed, "Type": "Fail", "ErrorPath": "$.error.Error"}
            assert state["ResultPath"] is None  # the group passes its input envelope on


def test_transient_retries_match_the_pipelines_delivery_count(asl: dict[str, Any]) -> None:
    for name, task in _tasks(asl).items():
        (transient,) = [r for r in task["Retry"] if "TransientStageError" in r["ErrorEquals"]]
        stage = _stage_of(task)
        if stage:
            spec = next(s for s in STAGES if s.name == stage)
            assert transient["MaxAttempts"] == spec.max_receive_count - 1, name


def test_failure_path_records_the_error_and_fails_with_it(asl: dict[str, Any]) -> None:
    record = asl["States"]["RecordFailure"]
    assert record["Parameters"]["FunctionName"] == "${" + RECORD_FAILURE_KEY + "}"
    payload = record["Parameters"]["Payload"]
    assert payload == {
        "invocation_id.$": "$.invocation_id",
        "correlation_id.$": "$.correlation_id",
        "stage.$": "$.stage",
        "failure.$": "$.error",
    }
    failed = asl["States"][record["Next"]]
    assert failed == {**failed, "Type": "Fail", "ErrorPath": "$.code", "CausePath": "$.message"}


def test_placeholders_are_the_task_functions() -> None:
    expected = {substitution_key(name) for name in STAGE_NAMES} | {RECORD_FAILURE_KEY}
    assert asl_placeholders(ASL_PATH.read_text()) == expected


# --- the CDK resource -----------------------------------------------------------------------------------


def _state_machine(template: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    ((logical_id, props),) = resources(template, "AWS::StepFunctions::StateMachine").items()
    return logical_id, props


def _task_functions(template: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    """{stage name or "": (logical id, properties)} of the functions running TASK_HANDLER."""
    return {
        props["Environment"]["Variables"].get("STAGE_NAME", ""): (logical_id, props)
        for logical_id, props in resources(template, "AWS::Lambda::Function").items()
        if props["Handler"] == TASK_HANDLER
    }


def test_state_machine_resource(template: dict[str, Any]) -> None:
    _, props = _state_machine(template)
    assert props["StateMachineType"] == "STANDARD"
    assert props["DefinitionString"] == ASL_PATH.read_text()  # inline, as committed
    assert props["TracingConfiguration"] == {"Enabled": True}
    logging = props["LoggingConfiguration"]
    assert logging["Level"] == "ALL"
    assert logging["IncludeExecutionData"] is False
    (destination,) = logging["Destinations"]
    log_group = resources(template, "AWS::Logs::LogGroup")[
        ref_id(destination["CloudWatchLogsLogGroup"]["LogGroupArn"])
    ]
    assert log_group["LogGroupName"].startswith("/aws/vendedlogs/states/")
    assert log_group["RetentionInDays"] == 30


def test_substitutions_are_the_task_functions_arns(template: dict[str, Any]) -> None:
    _, props = _state_machine(template)
    functions = _task_functions(template)
    assert set(functions) == {*STAGE_NAMES, ""}
    expected = {substitution_key(stage): functions[stage][0] for stage in STAGE_NAMES}
    expected[RECORD_FAILURE_KEY] = functions[""][0]
    substitutions = props["DefinitionSubstitutions"]
    assert {key: value["Fn::GetAtt"] for key, value in substitutions.items()} == {
        key: [logical_id, "Arn"] for key, logical_id in expected.items()
    }
    for spec in STAGES:
        _, function = functions[spec.name]
        assert function["MemorySize"] == spec.memory_mb
        assert function["Timeout"] == spec.timeout_s
        assert function["TracingConfig"] == {"Mode": "Active"}


def test_role_may_invoke_exactly_its_task_functions(template: dict[str, Any]) -> None:
    _, props = _state_machine(template)
    role = ref_id(props["RoleArn"])
    statements = role_statements(template, role)
    (invoke,) = [s for s in statements if "lambda:InvokeFunction" in json.dumps(s["Action"])]
    assert invoke["Action"] == "lambda:InvokeFunction"
    assert {ref_id(r) for r in invoke["Resource"]} == {i for i, _ in _task_functions(template).values()}
    for statement in statements:
        if statement is invoke:
            continue
        assert statement["Resource"] == "*"
        assert all(action.startswith(("logs:", "xray:")) for action in statement["Action"])
    (role_props,) = [
        r["Properties"]
        for i, r in template["Resources"].items()
        if i == role and r["Type"] == "AWS::IAM::Role"
    ]
    assert "ManagedPolicyArns" not in role_props


def test_task_functions_hold_no_queue_permission(template: dict[str, Any]) -> None:
    for stage, (_, props) in _task_functions(template).items():
        role = ref_id(props["Role"])
        actions = {
            action
            for policy in resources(template, "AWS::IAM::Policy").values()
            if role in {ref_id(r) for r in policy["Roles"]}
            for statement in policy["PolicyDocument"]["Statement"]
            for action in (
                [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
            )
        }
        assert not any(action.startswith(("sqs:", "states:")) for action in actions), stage
        assert "dynamodb:UpdateItem" in actions


def test_api_function_may_start_executions_of_this_state_machine_only(template: dict[str, Any]) -> None:
    state_machine_id, _ = _state_machine(template)
    _, props = api_function(template)
    assert props["Environment"]["Variables"]["STATE_MACHINE_ARN"] == {"Ref": state_machine_id}
    assert props["Environment"]["Variables"]["ORCHESTRATION"] == "pipeline,statemachine,events"
    role = ref_id(props["Role"])
    states_statements = [
        statement
        for policy in resources(template, "AWS::IAM::Policy").values()
        if role in {ref_id(r) for r in policy["Roles"]}
        for statement in policy["PolicyDocument"]["Statement"]
        if "states:" in json.dumps(statement["Action"])
    ]
    assert states_statements == [
        {"Action": "states:StartExecution", "Effect": "Allow", "Resource": {"Ref": state_machine_id}}
    ]


def test_failed_executions_alarm_notifies_the_topic(template: dict[str, Any]) -> None:
    state_machine_id, _ = _state_machine(template)
    (topic,) = resources(template, "AWS::SNS::Topic")
    alarms = [
        alarm
        for alarm in resources(template, "AWS::CloudWatch::Alarm").values()
        if state_machine_id in json.dumps(alarm.get("Metrics", []))
    ]
    metric_names = [
        {m["MetricStat"]["Metric"]["MetricName"] for m in alarm["Metrics"] if "MetricStat" in m}
        for alarm in alarms
    ]
    assert sorted(map(sorted, metric_names)) == [
        ["ExecutionsAborted", "ExecutionsTimedOut"],
        ["ExecutionsFailed", "ExecutionsStarted"],
    ]
    for alarm in alarms:
        assert [ref_id(action) for action in alarm["AlarmActions"]] == [topic]
    (dashboard,) = resources(template, "AWS::CloudWatch::Dashboard").values()
    assert "ExecutionsFailed" in json.dumps(dashboard["DashboardBody"])


def test_express_type_and_statemachine_only_deployment(synth) -> None:
    stack, template = synth(**STATEMACHINE_VARIANT)
    assert stack.deployed_modes == ("statemachine",)
    _, props = _state_machine(template)
    assert props["StateMachineType"] == "EXPRESS"
    (queue,) = resources(template, "AWS::SQS::Queue")  # no stage queue: only the sweeper's rules' DLQ
    assert queue.startswith("SweeperRuleDeadLetterQueue")
    assert not resources(template, "AWS::Lambda::EventSourceMapping")
    functions = resources(template, "AWS::Lambda::Function")
    assert len(functions) == len(STAGES) + 3  # the stage tasks, the failure path, the API, the sweeper
    _, api = api_function(template)
    assert api["Environment"]["Variables"]["ORCHESTRATION"] == "statemachine"
    assert api["Environment"]["Variables"]["STAGE_QUEUE_URLS"] == "{}"


def test_pipeline_only_deployment_has_no_state_machine(synth) -> None:
    _, template = synth(**X86_VARIANT)
    assert not resources(template, "AWS::StepFunctions::StateMachine")
    assert all(
        props["Handler"] != TASK_HANDLER for props in resources(template, "AWS::Lambda::Function").values()
    )
    _, api = api_function(template)
    assert api["Environment"]["Variables"]["STATE_MACHINE_ARN"] == ""
    assert api["Environment"]["Variables"]["ORCHESTRATION"] == "pipeline"
