"""The committed OpenAPI document is the one the code generates, and it describes every route."""

from __future__ import annotations

import json
from typing import Any

import pytest

from scripts.export_openapi import OUTPUT, generate

ROUTES = {
    "/v1/health": {"get"},
    "/v1/invocations": {"post"},
    "/v1/invocations/{invocation_id}": {"get"},
    "/v1/invocations/{invocation_id}/resume": {"post"},
    "/v1/invocations/{invocation_id}/events": {"get"},
    "/v1/analyze": {"post"},
    "/v1/uploads": {"post"},
    "/v1/patterns": {"get", "post"},
    "/v1/patterns/{pattern_id}": {"get", "delete"},
}
# (path, method) → (request body model or None, success status, response model or None)
OPERATIONS = {
    ("/v1/health", "get"): (None, "200", "Health"),
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
}


def ref(model: str) -> str:
    return f'"#/components/schemas/{model}"'


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
    import jsonschema
    from pydantic import ValidationError

    from harmonic_service.api_models import InvocationRequest

    schema = {**document["components"]["schemas"]["InvocationRequest"], "components": document["components"]}
    valid = jsonschema.Draft202012Validator(schema).is_valid(body)
    try:
        InvocationRequest.model_validate(body)
        api_accepts = True
    except (ValidationError, ValueError):
        api_accepts = False
    assert valid == api_accepts == accepted


@pytest.mark.parametrize(
    ("value", "accepted"), [(5, True), (5.0, True), (5.5, False), (True, False), ("5", False)]
)
def test_upload_sizes_are_json_schema_integers(document: dict[str, Any], value: Any, accepted: bool) -> None:
    """1.0 is an integer to JSON Schema (and so to the document); the API takes it as one."""
    import jsonschema
    from pydantic import ValidationError

    from harmonic_service.api_models import UploadRequest

    schema = document["components"]["schemas"]["UploadRequest"]
    valid = jsonschema.Draft202012Validator(schema).is_valid({"content_length": value})
    try:
        UploadRequest.model_validate({"content_length": value})
        api_accepts = True
    except ValidationError:
        api_accepts = False
    assert valid == api_accepts == accepted
