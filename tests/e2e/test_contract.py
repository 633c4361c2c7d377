"""The API against its own OpenAPI document: Schemathesis, with every check and every phase (examples,
coverage, fuzzing, and stateful through the document's links from the POSTs to the operations that use
their ids), against a local stack that requires an API key, as a stack deployed with ``auth=api_key``.

The document is docs/openapi.json with its ``security`` narrowed to the API key: the committed document lists
SigV4 and the API key as alternatives, one per deployment setting, and this stack runs the API-key one. The
allowances (tests/e2e/schemathesis.toml, with their reasons) are what no schema can express: a 400 to a clip
whose bytes are not audio, or to a next_token the API did not issue; and a 413 to an upload size over the
limit. Schemathesis's seed is fixed, so a failure reproduces.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree

import pytest

from local import ROOT
from local.spawn import StackDidNotStart, StackProcess, start_stack_process

API_KEY = "schemathesis-key"
CONFIG = Path(__file__).with_name("schemathesis.toml")
SCHEMATHESIS = Path(sys.executable).with_name("st")
SEED = 20261130
EXAMPLES_PER_OPERATION = 30


@pytest.fixture(scope="module")
def keyed_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    log_path = tmp_path_factory.mktemp("keyed-stack") / "stack.log"
    try:
        stack = start_stack_process(log_path, api_keys=(API_KEY,))
    except StackDidNotStart as error:
        pytest.fail(f"{error}:\n{error.log_tail}")
    with stack:
        yield stack


@pytest.mark.parametrize(("key", "status"), [(None, 403), ("another-key", 403), (API_KEY, 200)])
def test_a_stack_with_keys_refuses_requests_without_one(
    keyed_stack: StackProcess, key: str | None, status: int
) -> None:
    headers = {"X-Api-Key": key} if key else {}
    request = urllib.request.Request(f"{keyed_stack.base_url}/v1/patterns", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            answer, body = response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        answer, body = error.code, json.loads(error.read())
    assert answer == status
    if status == 403:
        assert body["error"]["code"] == "forbidden"
    else:
        assert "patterns" in body


def _document_for_api_key(directory: Path) -> Path:
    document = json.loads((ROOT / "docs" / "openapi.json").read_text())
    assert {"sigv4", "api_key"} <= set(document["components"]["securitySchemes"])
    document["security"] = [{"api_key": []}]
    path = directory / "openapi.json"
    path.write_text(json.dumps(document))
    return path


def test_schemathesis_finds_nothing(keyed_stack: StackProcess, tmp_path: Path) -> None:
    command = [
        str(SCHEMATHESIS),
        "--config-file",
        str(CONFIG),
        "run",
        str(_document_for_api_key(tmp_path)),
        "--url",
        keyed_stack.base_url,
        "--header",
        f"x-api-key: {API_KEY}",
        "--checks",
        "all",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        str(EXAMPLES_PER_OPERATION),
        "--seed",
        str(SEED),
        "--continue-on-failure",
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path / "reports"),
    ]
    environment = {**_env(), "NO_COLOR": "1"}
    run = subprocess.run(  # in tmp_path: Schemathesis keeps its cache in the working directory
        command, capture_output=True, text=True, timeout=600, env=environment, cwd=tmp_path
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    (report,) = (tmp_path / "reports").glob("junit-*.xml")
    suite = ElementTree.parse(report).getroot()
    tested = {case.get("name") for case in suite.iter("testcase")}
    operations = {
        f"{method.upper()} {path}"
        for path, methods in json.loads((ROOT / "docs" / "openapi.json").read_text())["paths"].items()
        for method in methods
    }
    assert tested == operations | {"Stateful tests"}, tested ^ (operations | {"Stateful tests"})
    assert (suite.get("failures"), suite.get("errors"), suite.get("skipped")) == ("0", "0", "0")
    summary = run.stdout[run.stdout.rfind("SUMMARY") :]
    print(summary)  # shown by pytest -rP: the figures a closing note or a CI log reads
    for phase in ("Examples", "Coverage", "Fuzzing", "Stateful"):  # every phase ran and passed
        assert f"✅ {phase}" in summary, summary


def _env() -> dict[str, str]:
    """This process's environment without AWS or moto settings (the stack's own apply)."""
    return {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "MOTO_"))}
