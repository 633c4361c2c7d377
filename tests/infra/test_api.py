"""The REST API: routes, IAM or API-key auth, validation, throttling, logs, and the API function's grants."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest

import infra.stack as stack_module
from harmonic_service.stages import API_HANDLER
from infra.api import ROUTES, Api
from infra.settings import Settings
from infra.stack import create_app
from tests.infra.conftest import (
    API_KEY_VARIANT,
    SKIP_BUNDLING,
    api_function,
    ref_id,
    resources,
    role_statements,
    stage_queues,
)


def _paths(template: dict[str, Any]) -> dict[str, str]:
    """{logical id of an ApiGateway::Resource: its full path}."""
    api_resources = resources(template, "AWS::ApiGateway::Resource")
    paths: dict[str, str] = {}

    def path_of(logical_id: str) -> str:
        if logical_id not in paths:
            props = api_resources[logical_id]
            parent = props["ParentId"]
            prefix = "" if "Fn::GetAtt" in parent else path_of(ref_id(parent))
            paths[logical_id] = f"{prefix}/{props['PathPart']}"
        return paths[logical_id]

    for logical_id in api_resources:
        path_of(logical_id)
    return paths


def _routes(template: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """{(path, method): properties} of the API's routes; the console's CORS preflights (OPTIONS, a mock
    integration without auth on every resource) are `_options`'s."""
    paths = _paths(template)
    return {
        (paths[ref_id(props["ResourceId"])], props["HttpMethod"]): props
        for props in resources(template, "AWS::ApiGateway::Method").values()
        if props["HttpMethod"] != "OPTIONS"
    }


def test_every_route_of_the_spec_is_served_by_the_api_function(template: dict[str, Any]) -> None:
    routes = _routes(template)
    assert set(routes) == {(f"/{path}", method) for path, method, _ in ROUTES}
    api_id, props = api_function(template)
    assert props["Handler"] == API_HANDLER
    for props in routes.values():
        integration = props["Integration"]
        assert integration["Type"] == "AWS_PROXY"
        assert api_id in str(integration["Uri"])


def test_iam_auth_on_every_route_by_default(template: dict[str, Any]) -> None:
    for route, props in _routes(template).items():
        assert props["AuthorizationType"] == "AWS_IAM", route
        assert not props.get("ApiKeyRequired"), route
    assert not resources(template, "AWS::ApiGateway::UsagePlan")
    assert not resources(template, "AWS::ApiGateway::ApiKey")


def test_api_key_auth_requires_a_key_under_a_throttled_usage_plan(synth) -> None:
    _, template = synth(**API_KEY_VARIANT)
    for route, props in _routes(template).items():
        assert props["AuthorizationType"] == "NONE", route
        assert props["ApiKeyRequired"] is True, route
    (plan,) = resources(template, "AWS::ApiGateway::UsagePlan").values()
    assert plan["Throttle"] == {"RateLimit": 10, "BurstLimit": 20}
    assert len(resources(template, "AWS::ApiGateway::ApiKey")) == 1
    (plan_key,) = resources(template, "AWS::ApiGateway::UsagePlanKey").values()
    assert plan_key["KeyType"] == "API_KEY"
    assert "ApiKeyId" in template["Outputs"]


def test_bodies_and_path_parameters_are_validated(template: dict[str, Any]) -> None:
    (validator_id, validator), *others = resources(template, "AWS::ApiGateway::RequestValidator").items()
    assert not others
    assert validator["ValidateRequestBody"] is True
    assert validator["ValidateRequestParameters"] is True
    models = resources(template, "AWS::ApiGateway::Model")
    for (path, method), props in _routes(template).items():
        assert ref_id(props["RequestValidatorId"]) == validator_id
        if "{id}" in path:
            assert props["RequestParameters"]["method.request.path.id"] is True
        if method == "POST" and path in ("/v1/invocations", "/v1/analyze", "/v1/patterns"):
            schema = models[ref_id(props["RequestModels"]["application/json"])]["Schema"]
            assert schema["type"] == "object"
            assert schema["properties"]["audio"] == {"type": "string"}


def test_stage_throttles_logs_and_traces(template: dict[str, Any]) -> None:
    settings = Settings()
    (stage,) = resources(template, "AWS::ApiGateway::Stage").values()
    (method_settings,) = stage["MethodSettings"]
    assert method_settings["HttpMethod"] == "*"
    assert method_settings["ResourcePath"] == "/*"
    assert method_settings["ThrottlingRateLimit"] == settings.api_throttle_rate
    assert method_settings["ThrottlingBurstLimit"] == settings.api_throttle_burst
    assert method_settings["LoggingLevel"] == "ERROR"
    assert method_settings["DataTraceEnabled"] is False
    assert stage["TracingEnabled"] is True
    access_log_group = str(stage["AccessLogSetting"]["DestinationArn"])
    assert any(logical_id in access_log_group for logical_id in resources(template, "AWS::Logs::LogGroup"))
    assert '"status": "$context.status"' in stage["AccessLogSetting"]["Format"]


def test_gateway_errors_use_the_api_error_shape(template: dict[str, Any]) -> None:
    responses = {
        props["ResponseType"]: props
        for props in resources(template, "AWS::ApiGateway::GatewayResponse").values()
    }
    expected = {"THROTTLED": ("429", "throttled"), "REQUEST_TOO_LARGE": ("413", "payload_too_large")}
    expected["BAD_REQUEST_BODY"] = ("400", "bad_request")
    for response_type, (status, code) in expected.items():
        props = responses[response_type]
        assert props["StatusCode"] == status
        body = props["ResponseTemplates"]["application/json"]
        assert f'"code": "{code}"' in body
        assert "$context.error.messageString" in body
    assert {"DEFAULT_4XX", "DEFAULT_5XX"} <= set(responses)


def test_the_gateway_routes_are_the_handlers_routes() -> None:
    """Every route the API handler serves (its OpenAPI document) is a route of API Gateway, and only those."""
    from infra import REPO_ROOT

    document = json.loads((REPO_ROOT / "docs" / "openapi.json").read_text())
    served = {
        (path.replace("{invocation_id}", "{id}").replace("{pattern_id}", "{id}"), method.upper())
        for path, methods in document["paths"].items()
        for method in methods
    }
    assert {(f"/{path}", method) for path, method, _ in ROUTES} == served


def test_api_function_grants(template: dict[str, Any]) -> None:
    _, props = api_function(template)
    assert props["Timeout"] <= 29  # API Gateway's integration timeout
    role = ref_id(props["Role"])
    statements = role_statements(template, role)
    granted: dict[str, set[str]] = {}
    for statement in statements:
        actions = set(statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]])
        for resource in (
            statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        ):
            if isinstance(resource, dict) and "Fn::Join" in resource:
                key = resource["Fn::Join"][1][1]
            elif resource == "*":
                key = "*"
            else:
                key = ref_id(resource)
            granted.setdefault(key, set()).update(actions)
    assert granted["*"] == {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
    assert granted["/invocations/*"] == {"s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"}
    assert granted["/uploads/*"] == {"s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"}
    assert granted["/patterns/*"] == {
        "s3:GetObject",
        "s3:PutObject",
        "s3:AbortMultipartUpload",
        "s3:DeleteObject",
    }
    tables = resources(template, "AWS::DynamoDB::Table")
    for table, props in tables.items():
        if (
            props["KeySchema"][-1]["AttributeName"] == "event_key"
        ):  # the audit log: read only (GET .../events)
            assert "dynamodb:Query" in granted[table]
            assert not granted[table] & {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}
        else:
            assert {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:GetItem"} <= granted[table]
    for queue in stage_queues(template).values():
        assert "sqs:SendMessage" in granted[queue]


def test_throttled_responses_tell_the_client_when_to_retry(template: dict[str, Any]) -> None:
    responses = {
        props["ResponseType"]: props
        for props in resources(template, "AWS::ApiGateway::GatewayResponse").values()
    }
    for response_type in ("THROTTLED", "QUOTA_EXCEEDED"):
        assert responses[response_type]["StatusCode"] == "429"
        assert responses[response_type]["ResponseParameters"]["gatewayresponse.header.Retry-After"] == "'1'"
    # no Retry-After on the others; the console's origin may read them (CORS, test_console)
    assert "gatewayresponse.header.Retry-After" not in responses["BAD_REQUEST_BODY"].get(
        "ResponseParameters", {}
    )


def test_the_deployed_url_carries_the_version_once(template: dict[str, Any]) -> None:
    """The stage name and the routes must not both say v1: the URL was .../v1/v1/health."""
    ((stage_id, stage),) = resources(template, "AWS::ApiGateway::Stage").items()
    assert stage["StageName"] != "v1"
    top_level = {
        props["PathPart"]
        for props in resources(template, "AWS::ApiGateway::Resource").values()
        if "Fn::GetAtt" in props["ParentId"] and props["ParentId"]["Fn::GetAtt"][1] == "RootResourceId"
    }
    assert top_level == {"v1"}
    url = json.dumps(template["Outputs"]["ApiUrl"]["Value"])
    # https://<api>.execute-api.<region>.<suffix>/<stage>/
    assert url.endswith(f'"/", {{"Ref": "{stage_id}"}}, "/"]]}}')
    assert "/v1/" not in url


# --- CORS for a console served from another origin -------------------------------------------------------

CONSOLE_ORIGIN = "https://console.example.com"


def _with_console_origin(origin: Any) -> Any:
    """The Api construct given a console's origin (None: none), whatever infra/stack.py passes it."""

    def build(*args: Any, **kwargs: Any) -> Api:
        kwargs["cors_origin"] = origin(args[0]) if callable(origin) else origin
        return Api(*args, **kwargs)

    return build


def _synth_with_console(origin: Any, outdir: Path) -> dict[str, Any]:
    """The default stack (cdk-nag included: a finding fails the synth) with the API construct given `origin`
    (a string, or a function of the stack that makes a token)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(stack_module, "Api", _with_console_origin(origin))
        app, stack = create_app(SKIP_BUNDLING, outdir=str(outdir), with_cdk_json=True)
        return app.synth().get_stack_by_name(stack.stack_name).template


@pytest.fixture(scope="module")
def console_template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _synth_with_console(CONSOLE_ORIGIN, tmp_path_factory.mktemp("cors"))


def _options(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{resource path ("" for the root): its OPTIONS method's properties}."""
    paths = _paths(template)
    return {
        ("" if "Fn::GetAtt" in props["ResourceId"] else paths[ref_id(props["ResourceId"])]): props
        for props in resources(template, "AWS::ApiGateway::Method").values()
        if props["HttpMethod"] == "OPTIONS"
    }


def _allow_origin_values(template: dict[str, Any]) -> list[Any]:
    """Every Access-Control-Allow-Origin an integration or gateway response of the template sets (a method
    response only declares the header: true), and the API function's CORS_ALLOW_ORIGIN."""
    found: list[Any] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                named = key.endswith("Access-Control-Allow-Origin") or key == "CORS_ALLOW_ORIGIN"
                if named and inner is not True:
                    found.append(inner)
                walk(inner)
        elif isinstance(value, list):
            for inner in value:
                walk(inner)

    walk(template["Resources"])
    return found


def test_without_an_origin_there_is_no_cors_at_all(tmp_path: Path) -> None:
    template = _synth_with_console(None, tmp_path)
    assert _options(template) == {}
    assert _allow_origin_values(template) == []


def test_a_console_origin_gets_preflights_on_every_resource_and_nothing_else(
    console_template: dict[str, Any],
) -> None:
    options = _options(console_template)
    assert set(options) == {"", *_paths(console_template).values()}  # the root and every resource
    quoted = f"'{CONSOLE_ORIGIN}'"
    for path, props in options.items():
        # a browser sends its preflight without credentials: no IAM signature, no API key
        assert (props["AuthorizationType"], props["ApiKeyRequired"]) == ("NONE", False), path
        assert props["Integration"]["Type"] == "MOCK"
        (response,) = props["Integration"]["IntegrationResponses"]
        headers = {k.rsplit(".", 1)[-1]: v for k, v in response["ResponseParameters"].items()}
        assert headers["Access-Control-Allow-Origin"] == quoted, path
        assert set(headers["Access-Control-Allow-Methods"].strip("'").split(",")) == {"GET", "POST", "DELETE"}
        allowed = set(headers["Access-Control-Allow-Headers"].strip("'").split(","))
        assert {"Content-Type", "X-Api-Key", "Idempotency-Key", "X-Correlation-Id"} <= allowed
        exposed = set(headers["Access-Control-Expose-Headers"].strip("'").split(","))
        assert exposed == {"Location", "Retry-After", "X-Correlation-Id"}
        assert headers["Access-Control-Max-Age"] == "'600'"
        assert "Access-Control-Allow-Credentials" not in headers
    # the routes themselves keep their authentication
    for props in resources(console_template, "AWS::ApiGateway::Method").values():
        if props["HttpMethod"] != "OPTIONS":
            assert props["AuthorizationType"] == "AWS_IAM", props["HttpMethod"]
    # API Gateway's own errors (403, 429, 413, 4xx, 5xx) are readable by the console
    for props in resources(console_template, "AWS::ApiGateway::GatewayResponse").values():
        parameters = props["ResponseParameters"]
        allow_origin = parameters["gatewayresponse.header.Access-Control-Allow-Origin"]
        assert allow_origin == quoted, props["ResponseType"]
    # the function answers with CORS headers for that origin, and no other function is told of it
    _, api = api_function(console_template)
    assert api["Environment"]["Variables"]["CORS_ALLOW_ORIGIN"] == CONSOLE_ORIGIN
    others = [
        props
        for props in resources(console_template, "AWS::Lambda::Function").values()
        if props is not api and "CORS_ALLOW_ORIGIN" in props.get("Environment", {}).get("Variables", {})
    ]
    assert others == []
    # that origin only: never "*"
    assert set(map(json.dumps, _allow_origin_values(console_template))) == {
        json.dumps(quoted),
        json.dumps(CONSOLE_ORIGIN),
    }
    assert "'*'" not in json.dumps(console_template)


def test_the_origin_may_be_a_token(tmp_path: Path) -> None:
    """As the stack will pass it: "https://" + a CloudFront distribution's domain name (here a parameter)."""

    def domain(stack: Any) -> str:
        parameter = cdk.CfnParameter(stack, "ConsoleDomain", default="d1.cloudfront.net")
        return "https://" + parameter.value_as_string

    template = _synth_with_console(domain, tmp_path)
    values = _allow_origin_values(template)
    assert values
    for value in values:
        assert {"Ref": "ConsoleDomain"} in value["Fn::Join"][1], value
        assert "*" not in json.dumps(value)
    assert "'*'" not in json.dumps(template)
