"""cfn-lint on the synthesized templates: no errors and no warnings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cfnlint.api import lint

from tests.infra.conftest import API_KEY_VARIANT


def _lint(template: dict[str, Any]) -> list[str]:
    # The rules and severities of the `cfn-lint` command line (errors and warnings; informational ones too).
    matches = lint(json.dumps(template), regions=["us-east-1"])
    return [f"{m.rule.id} {m.message} ({'/'.join(map(str, m.path))})" for m in matches]


def test_default_template_is_clean(cli_assembly: Path) -> None:
    (template_file,) = cli_assembly.glob("*.template.json")
    problems = _lint(json.loads(template_file.read_text()))
    assert problems == []


def test_api_key_variant_is_clean(synth) -> None:
    _, template = synth(**API_KEY_VARIANT)
    assert _lint(template) == []


def test_the_linter_does_report_a_broken_template() -> None:
    broken = {
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {"VisibilityTimeout": "soon"}}}
    }
    assert any(problem.startswith("E") for problem in _lint(broken))
