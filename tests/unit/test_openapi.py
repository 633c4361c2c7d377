"""The committed OpenAPI document is the one the code generates, and it describes every route."""

from __future__ import annotations

import json

from scripts.export_openapi import OUTPUT, generate

ROUTES = {
    "/v1/health": {"get"},
    "/v1/invocations": {"post"},
    "/v1/invocations/{invocation_id}": {"get"},
    "/v1/invocations/{invocation_id}/resume": {"post"},
    "/v1/analyze": {"post"},
    "/v1/uploads": {"post"},
    "/v1/patterns": {"get", "post"},
    "/v1/patterns/{pattern_id}": {"get", "delete"},
}


def test_committed_document_matches_the_code() -> None:
    assert OUTPUT.read_text() == generate(), "docs/openapi.json is stale: run `make openapi`"


def test_every_route_and_its_models_are_documented() -> None:
    document = json.loads(OUTPUT.read_text())
    assert {path: set(methods) for path, methods in document["paths"].items()} == ROUTES
    schemas = document["components"]["schemas"]
    for model in (
        "InvocationRequest",
        "AnalyzeRequest",
        "PatternRequest",
        "InvocationStatusBody",
        "UploadCreated",
    ):
        assert model in schemas, model
    submit = document["paths"]["/v1/invocations"]["post"]
    body_ref = json.dumps(submit["requestBody"])
    assert "InvocationRequest" in body_ref
    assert "202" in submit["responses"]
    assert any(parameter["name"].lower() == "idempotency-key" for parameter in submit["parameters"])
