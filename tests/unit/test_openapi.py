"""The committed OpenAPI document is the one the code generates, and it describes every route."""

from __future__ import annotations

import json
from typing import Any

import pytest

from scripts.export_openapi import OUTPUT, generate

ROUTES = {
    "/v1/health": {"get"},
    "/v1/invocations": {"get", "post"},
    "/v1/invocations/{invocation_id}": {"get"},
    "/v1/invocations/{invocation_id}/resume": {"post"},
    "/v1/invocations/{invocation_id}/events": {"get"},
    "/v1/analyze": {"post"},
    "/v1/uploads": {"post"},
    "/v1/patterns": {"get", "post"},
    "/v1/patterns/{pattern_id}": {"get", "delete"},
    "/v1/patterns/{pattern_id}/example": {"get"},
    "/v1/patterns/{pattern_id}/rebuild": {"post"},
}
# (path, method) → (request body model or None, success status, response model or None)
OPERATIONS = {
    ("/v1/health", "get"): (None, "200", "Health"),
    ("/v1/invocations", "get"): (None, "200", "InvocationList"),
    ("/v1/invocations", "post"): ("InvocationRequest", "202", "InvocationAccepted"),
    ("/v1/invocations/{invocation_id}", "get"): (None, "200", "InvocationStatusBody"),
    ("/v1/invocations/{invocation_id}/resume", "post"): (None, "202", "ResumeAccepted"),
    ("/v1/invocations/{invocation_id}/events", "get"): (None, "200", "InvocationEvents"),
    ("/v1/analyze", "post"): ("AnalyzeRequest", "200", None),
    ("/v1/uploads", "post"): ("UploadRequest", "201", "UploadCreated"),
    ("/v1/patterns", "post"): ("PatternRequest", "201", "PatternBody"),
    ("/v1/patterns", "get"): (None, "200", "PatternList"),
    ("/v1/patterns/{pattern_id}", "get"): (None, "200", "PatternBody"),
    ("/v1/patterns/{pattern_id}", "delete"): (None, "204", None),
    ("/v1/patterns/{pattern_id}/example", "get"): (None, "200", "PatternExample"),
    ("/v1/patterns/{pattern_id}/rebuild", "post"): (None, "200", "PatternBody"),
}


def ref(model: str) -> str:
    return f'"#/components/schemas/{model}"'


def document_and_model_agree(document: dict[str, Any], model_name: str, body: Any) -> tuple[bool, bool]:
    """Whether the document's schema for `model_name` allows `body`, and whether the API's model does."""
    import jsonschema
    from pydantic import ValidationError

    from harmonic_service import api_models

    schema = {**document["components"]["schemas"][model_name], "components": document["components"]}
    valid = jsonschema.Draft202012Validator(schema).is_valid(body)
    try:
        getattr(api_models, model_name).model_validate(body)
        api_accepts = True
    except (ValidationError, ValueError):
        api_accepts = False
    return valid, api_accepts


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return json.loads(OUTPUT.read_text())


def test_committed_document_matches_the_code() -> None:
    assert OUTPUT.read_text() == generate(), "docs/openapi.json is stale: run `make openapi`"


def test_generation_is_deterministic() -> None:
    text = generate()
    assert text == generate()
    assert text.endswith("}\n")
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"


def test_document_is_valid_openapi(document: dict[str, Any]) -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(document)
    assert document["info"]["title"] == "Harmonic"
    assert document["info"]["version"]


def test_every_route_and_its_methods_are_documented(document: dict[str, Any]) -> None:
    assert {path: set(methods) for path, methods in document["paths"].items()} == ROUTES
    assert {(path, method) for path, methods in ROUTES.items() for method in methods} == set(OPERATIONS)


@pytest.mark.parametrize(("path", "method"), sorted(OPERATIONS))
def test_operations_reference_the_pydantic_models(document: dict[str, Any], path: str, method: str) -> None:
    request_model, status, response_model = OPERATIONS[(path, method)]
    operation = document["paths"][path][method]
    schemas = document["components"]["schemas"]
    if request_model is None:
        assert "requestBody" not in operation
    else:
        assert request_model in schemas
        assert ref(request_model) in json.dumps(operation["requestBody"]["content"]["application/json"])
        assert ref("ErrorBody") in json.dumps(operation["responses"]["400"])
    assert status in operation["responses"]
    if response_model is not None:
        assert response_model in schemas
        assert ref(response_model) in json.dumps(operation["responses"][status])
    assert ref("ErrorBody") in json.dumps(operation["responses"]["default"])


def test_errors_are_documented_as_the_api_sends_them(document: dict[str, Any]) -> None:
    """400 {"error": {"code", "message"}}, not Powertools' 422 (the handler maps validation errors)."""
    text = json.dumps(document)
    assert "HTTPValidationError" not in text
    assert "ResponseValidationError" not in text
    for operations in document["paths"].values():
        for operation in operations.values():
            assert "422" not in operation["responses"]
    error = document["components"]["schemas"]["ErrorBody"]
    assert error["required"] == ["error"]
    detail = document["components"]["schemas"]["ErrorDetail"]
    assert set(detail["required"]) == {"code", "message"}


def test_request_models_refuse_unknown_fields(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    for model in ("InvocationRequest", "AnalyzeRequest", "UploadRequest", "PatternRequest"):
        assert schemas[model]["additionalProperties"] is False, model
    assert set(schemas["InvocationRequest"]["properties"]) == {
        "audio",
        "audio_key",
        "mode",
        "steps",
        "options",
        "callback_url",
    }
    assert "X-Harmonic-Signature" in schemas["InvocationRequest"]["properties"]["callback_url"]["description"]


def test_submit_documents_the_idempotency_key(document: dict[str, Any]) -> None:
    submit = document["paths"]["/v1/invocations"]["post"]
    assert any(parameter["name"].lower() == "idempotency-key" for parameter in submit["parameters"])


@pytest.mark.parametrize(
    ("body", "accepted"),
    [
        ({}, False),
        ({"audio": "UklGRg=="}, True),
        ({"audio_key": "uploads/k.wav"}, True),
        ({"audio": "UklGRg==", "audio_key": None}, True),
        ({"audio": None, "audio_key": "uploads/k.wav"}, True),
        ({"audio": None, "audio_key": None}, False),
        ({"audio": "UklGRg==", "audio_key": "uploads/k.wav"}, False),
    ],
)
def test_the_document_states_the_exactly_one_source_rule_the_api_applies(
    document: dict[str, Any], body: dict[str, Any], accepted: bool
) -> None:
    """The schema must not allow what the API refuses (a Schemathesis finding: `{}` was valid)."""
    valid, api_accepts = document_and_model_agree(document, "InvocationRequest", body)
    assert valid == api_accepts == accepted


@pytest.mark.parametrize(
    ("value", "accepted"), [(5, True), (5.0, True), (5.5, False), (True, False), ("5", False)]
)
def test_upload_sizes_are_json_schema_integers(document: dict[str, Any], value: Any, accepted: bool) -> None:
    """1.0 is an integer to JSON Schema (and so to the document); the API takes it as one."""
    valid, api_accepts = document_and_model_agree(document, "UploadRequest", {"content_length": value})
    assert valid == api_accepts == accepted


@pytest.mark.parametrize(
    ("audio", "accepted"),
    [
        ("UklGRg==", True),
        ("UklGRgAA", True),
        ("", False),  # no clip
        ("UklGRg", False),  # unpadded
        ("UklG Rg==", False),  # whitespace
        ("UklGRg-_", False),  # the URL-safe alphabet
    ],
)
def test_the_document_states_the_base64_rule_the_api_applies(
    document: dict[str, Any], audio: str, accepted: bool
) -> None:
    valid, api_accepts = document_and_model_agree(document, "AnalyzeRequest", {"audio": audio})
    assert valid == api_accepts == accepted


def test_the_example_clip_is_audio_the_service_decodes(document: dict[str, Any]) -> None:
    """The document's example request succeeds (a reader's first try, and Schemathesis's examples phase)."""
    import base64

    from harmonic import decode_audio

    (example,) = document["components"]["schemas"]["InvocationRequest"]["properties"]["audio"]["examples"]
    clip = decode_audio(base64.b64decode(example, validate=True))
    assert clip.sample_rate == 8000
    assert clip.samples.size == 2000  # 0.25 s


def test_every_operation_requires_sigv4_or_an_api_key(document: dict[str, Any]) -> None:
    """As deployed (infra/api.py): IAM by default, an API key with auth=api_key; never anonymous."""
    schemes = document["components"]["securitySchemes"]
    assert (schemes["sigv4"]["in"], schemes["sigv4"]["name"]) == ("header", "Authorization")
    assert schemes["sigv4"]["x-amazon-apigateway-authtype"] == "awsSigv4"
    assert (schemes["api_key"]["in"], schemes["api_key"]["name"]) == ("header", "x-api-key")
    assert document["security"] == [{"sigv4": []}, {"api_key": []}]
    overriding = [
        f"{method} {path}"
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
        if "security" in operation
    ]
    assert overriding == []


def test_the_posts_link_to_the_operations_that_use_their_ids(document: dict[str, Any]) -> None:
    operation_ids = {
        operation["operationId"]: (path, method)
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    }
    followed = set()
    for source, status, field in (
        (("/v1/invocations", "post"), "202", "invocation_id"),
        (("/v1/patterns", "post"), "201", "pattern_id"),
    ):
        response = document["paths"][source[0]][source[1]]["responses"][status]
        returned = document["components"]["schemas"][
            response["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
        ]
        assert field in returned["required"]
        for link in response["links"].values():
            assert link["parameters"] == {field: f"$response.body#/{field}"}
            target_path, target_method = operation_ids[link["operationId"]]
            assert "{" + field + "}" in target_path
            followed.add((target_path, target_method))
    assert followed == {
        ("/v1/invocations/{invocation_id}", "get"),
        ("/v1/invocations/{invocation_id}/events", "get"),
        ("/v1/invocations/{invocation_id}/resume", "post"),
        ("/v1/patterns/{pattern_id}", "get"),
        ("/v1/patterns/{pattern_id}/example", "get"),
        ("/v1/patterns/{pattern_id}/rebuild", "post"),
        ("/v1/patterns/{pattern_id}", "delete"),
    }


def test_the_history_links_its_first_invocation_to_its_status_document(document: dict[str, Any]) -> None:
    """OpenAPI links may point into arrays (a JSON pointer): the list's first item's id opens its status."""
    listing = document["paths"]["/v1/invocations"]["get"]
    (link,) = listing["responses"]["200"]["links"].values()
    status = document["paths"]["/v1/invocations/{invocation_id}"]["get"]
    assert link["operationId"] == status["operationId"]
    assert link["parameters"] == {"invocation_id": "$response.body#/invocations/0/invocation_id"}
    item = document["components"]["schemas"]["InvocationSummary"]
    assert "invocation_id" in item["required"]


def test_the_history_pages_with_a_bounded_limit_and_an_opaque_token(document: dict[str, Any]) -> None:
    parameters = {p["name"]: p for p in document["paths"]["/v1/invocations"]["get"]["parameters"]}
    assert set(parameters) == {"limit", "next_token"}
    assert not any(p["required"] for p in parameters.values())
    limit = parameters["limit"]["schema"]
    assert (limit["type"], limit["minimum"], limit["maximum"], limit["default"]) == ("integer", 1, 100, 20)
    listed = document["components"]["schemas"]["InvocationList"]
    assert set(listed["required"]) == {"invocations", "count", "next_token"}
    summary = document["components"]["schemas"]["InvocationSummary"]
    assert set(summary["required"]) == {
        "invocation_id",
        "status",
        "mode",
        "created_at",
        "finished_at",
        "status_url",
    }


def test_the_upload_size_maximum_is_the_default_limit(document: dict[str, Any]) -> None:
    size = document["components"]["schemas"]["UploadRequest"]["properties"]["content_length"]
    integer = next(branch for branch in size["anyOf"] if branch.get("type") == "integer")
    assert integer["maximum"] == 100 * 1024 * 1024  # cdk.json's max_upload_bytes by default
