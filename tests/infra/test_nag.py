"""cdk-nag (AWS Solutions rules) on every synth: every finding fixed or acknowledged, no acknowledgment idle.

cdk-nag 3 is a CDK validation plugin: its findings fail `app.synth()` (and `cdk synth`) instead of becoming
construct annotations, and acknowledgments are `Validations.of(construct).acknowledge(...)` (infra/nag.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cdk_nag import AwsSolutionsChecks

from infra import nag
from infra.stack import create_app
from tests.infra.conftest import SKIP_BUNDLING


def _covers(acknowledged: nag.Acknowledged, rule: str, path: str) -> bool:
    return acknowledged.finding == rule and (
        path == acknowledged.path or path.startswith(acknowledged.path + "/")
    )


@pytest.mark.parametrize("auth", ["iam", "api_key"])
def test_every_finding_is_acknowledged_and_every_acknowledgment_matches_a_finding(
    auth: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Build the stack with the acknowledgments recorded but not applied, so the rules report everything.
    monkeypatch.setattr(nag, "_apply", lambda scope, finding, reason: None)
    first = len(nag.ACKNOWLEDGED)
    app, stack = create_app({"auth": auth, **SKIP_BUNDLING}, outdir=str(tmp_path), with_cdk_json=True)
    acknowledged = nag.ACKNOWLEDGED[first:]
    result = AwsSolutionsChecks(verbose=True).validate_scope(stack)
    findings = {(v.rule_name, r.construct_path) for v in result.violations for r in v.violating_resources}
    assert findings, "the rules found nothing at all: they did not run"

    unacknowledged = sorted(f for f in findings if not any(_covers(a, *f) for a in acknowledged))
    assert not unacknowledged, "fix these or acknowledge them in infra/: " + "\n".join(
        map(str, unacknowledged)
    )
    idle = [a for a in acknowledged if not any(_covers(a, *f) for f in findings)]
    assert not idle, f"acknowledgments without a finding (remove them): {idle}"
    # One reason per kind of finding, specific to it.
    reasons = {a.finding: a.reason for a in acknowledged}
    assert len(set(reasons.values())) == len(reasons)

    # The plugin that create_app registers (and app.py uses) fails the synth on unacknowledged findings.
    with pytest.raises(RuntimeError, match=r"ValidationFailed: .*\(AwsSolutions\)"):
        app.synth()


def test_an_acknowledgment_needs_a_full_finding_id_and_a_reason() -> None:
    with pytest.raises(ValueError, match="specific reason"):
        nag.acknowledge(None, "AwsSolutions-S1", "ok")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="full AwsSolutions finding id"):
        nag.acknowledge(None, "S1", "a reason that is long enough to pass")  # type: ignore[arg-type]
