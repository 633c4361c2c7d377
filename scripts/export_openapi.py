"""Write docs/openapi.json from the API handler's routes and pydantic models (`make openapi`).

The document is generated from the code, never edited by hand; tests/unit/test_openapi.py fails when the
committed file and the code disagree. Powertools documents its own validation errors (422
``HTTPValidationError``, 500 ``ResponseValidationError``), which this API never returns: the handler maps
them to ``{"error": {"code", "message"}}`` (api_models.ErrorBody) with 400, so the document says that
instead (a 400 on every operation that takes a body, and ErrorBody as every operation's default response).
"""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "docs" / "openapi.json"
for path in (ROOT / "functions", ROOT / "layers" / "harmonic" / "python"):
    sys.path.insert(0, str(path))

DESCRIPTION = (
    "Send a short audio clip; a chain of harmonic steps ({stages}) runs; get structured results. "
    'Errors are {{"error": {{"code", "message"}}}}.'
)
SCHEMA_REF = "#/components/schemas/{model}"
# What Powertools adds to every operation and schema set, and this API never sends.
_POWERTOOLS_ERRORS = {
    "422": "HTTPValidationError",
    "500": "ResponseValidationError",
}
_POWERTOOLS_SCHEMAS = ("HTTPValidationError", "ValidationError", "ResponseValidationError")


def _error_response(description: str) -> dict[str, Any]:
    schema = {"$ref": SCHEMA_REF.format(model="ErrorBody")}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _as_served(responses: dict[str, Any]) -> None:
    """What the handler really sends that Powertools does not say: a 204 has no body (Powertools derives one
    from the route's return annotation), and a 201 or 202 carries a Location header."""
    if "204" in responses:
        responses["204"].pop("content", None)
    for status in ("201", "202"):
        if status in responses:
            responses[status]["headers"] = {
                "Location": {
                    "description": "the created resource, or the status document of the accepted work "
                    "(for an upload: the URL to PUT the clip to)",
                    "schema": {"type": "string"},
                }
            }


# How the deployed API authenticates (infra/api.py): AWS IAM (SigV4) by default, an API key with
# auth=api_key. Either way every operation requires one (API Gateway refuses a request without it, 403).
SECURITY_SCHEMES = {
    "sigv4": {
        "type": "apiKey",
        "name": "Authorization",
        "in": "header",
        "description": "AWS Signature Version 4 (the default, auth=iam), as API Gateway's IAM authorization",
        "x-amazon-apigateway-authtype": "awsSigv4",
    },
    "api_key": {
        "type": "apiKey",
        "name": "x-api-key",
        "in": "header",
        "description": "an API key of the deployment's usage plan (auth=api_key)",
    },
}
SECURITY = [{"sigv4": []}, {"api_key": []}]

# OpenAPI links: where the ids a response returns are used (clients, and Schemathesis's stateful phase,
# follow them). {source operation: (status, {link name: (target operation, parameter[, where in the
# response body, a JSON pointer; default: the field of the parameter's name])})}
LINKS: dict[tuple[str, str], tuple[str, dict[str, tuple[str, ...]]]] = {
    ("/v1/invocations", "post"): (
        "202",
        {
            "GetInvocation": ("/v1/invocations/{invocation_id}", "get", "invocation_id"),
            "GetInvocationEvents": ("/v1/invocations/{invocation_id}/events", "get", "invocation_id"),
            "ResumeInvocation": ("/v1/invocations/{invocation_id}/resume", "post", "invocation_id"),
        },
    ),
    ("/v1/patterns", "post"): (
        "201",
        {
            "GetPattern": ("/v1/patterns/{pattern_id}", "get", "pattern_id"),
            "GetPatternExample": ("/v1/patterns/{pattern_id}/example", "get", "pattern_id"),
            "RebuildPattern": ("/v1/patterns/{pattern_id}/rebuild", "post", "pattern_id"),
            "DeletePattern": ("/v1/patterns/{pattern_id}", "delete", "pattern_id"),
        },
    ),
    ("/v1/invocations", "get"): (
        "200",
        {
            "GetFirstListedInvocation": (
                "/v1/invocations/{invocation_id}",
                "get",
                "invocation_id",
                "invocations/0/invocation_id",
            ),
        },
    ),
}


def _with_links(document: dict[str, Any]) -> None:
    """Add LINKS to the success responses, naming the targets by operationId."""
    paths = document["paths"]
    for (path, method), (status, links) in LINKS.items():
        response = paths[path][method]["responses"][status]
        response["links"] = {}
        for name, (target, target_method, parameter, *pointer) in links.items():
            where = pointer[0] if pointer else parameter
            at = f" (at /{where})" if pointer else ""
            response["links"][name] = {
                "operationId": paths[target][target_method]["operationId"],
                "parameters": {parameter: f"$response.body#/{where}"},
                "description": f"the {parameter} this response returns{at}, in "
                f"{target_method.upper()} {target}",
            }


def _with_error_body(document: dict[str, Any]) -> dict[str, Any]:
    """Powertools' validation error responses replaced by the API's ErrorBody (see the module doc)."""
    from harmonic_service.api_models import ErrorBody

    for operations in document["paths"].values():
        for operation in operations.values():
            responses = operation["responses"]
            for status, schema_name in _POWERTOOLS_ERRORS.items():
                ref = json.dumps(responses.get(status, {}))
                if SCHEMA_REF.format(model=schema_name) in ref:
                    del responses[status]
            if "requestBody" in operation:
                responses["400"] = _error_response(
                    "bad_request (the body does not match its schema) or invalid_audio (not WAV, FLAC, "
                    "Ogg or MP3)"
                )
            responses["default"] = _error_response(
                "an error: 400, 403 forbidden or read_only, 404 not_found, 409 conflict, "
                "413 payload_too_large, 500 internal"
            )
            _as_served(responses)
    schemas = document["components"]["schemas"]
    for name in _POWERTOOLS_SCHEMAS:
        schemas.pop(name, None)
    left = [name for name in _POWERTOOLS_SCHEMAS if SCHEMA_REF.format(model=name) in json.dumps(document)]
    if left:  # a Powertools change added a use this function does not know about
        raise RuntimeError(f"the document still references {left}")
    error_schema = ErrorBody.model_json_schema(ref_template=SCHEMA_REF)
    schemas.update(error_schema.pop("$defs", {}))
    schemas["ErrorBody"] = error_schema
    return document


def generate() -> str:
    """The OpenAPI document as deterministic JSON text (sorted keys, indent 2, trailing newline)."""
    from harmonic_service.handlers.api import app
    from harmonic_service.stages import STAGE_NAMES

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    description = DESCRIPTION.format(stages=", ".join(STAGE_NAMES))
    schema = app.get_openapi_json_schema(title="Harmonic", version=version, description=description)
    document = _with_error_body(json.loads(schema))
    _with_links(document)
    document["components"]["securitySchemes"] = SECURITY_SCHEMES
    document["security"] = SECURITY
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def main() -> int:
    OUTPUT.write_text(generate())
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
