"""cdk-nag acknowledgments, in one place so tests can check each one against a real finding.

cdk-nag 3 runs as a CDK validation plugin (``Validations.of(app).add_plugins(AwsSolutionsChecks(...))``) and
reads acknowledgments from ``Validations.of(construct).acknowledge(...)`` on the resource or any ancestor.
Each finding is acknowledged by its full id (e.g. ``AwsSolutions-IAM5[Resource::*]``) on the narrowest
construct that owns it, with the reason it is acceptable.
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from constructs import IConstruct


@dataclass(frozen=True)
class Acknowledged:
    path: str
    finding: str
    reason: str


# Every acknowledgment made in this process, in order (tests compare them with the findings).
ACKNOWLEDGED: list[Acknowledged] = []


def acknowledge(scope: IConstruct, finding: str, reason: str) -> None:
    """Acknowledge cdk-nag `finding` on `scope` and everything under it, for `reason`."""
    if not finding.startswith("AwsSolutions-") or len(reason.strip()) < 20:
        raise ValueError(
            f"acknowledge {finding!r}: give the full AwsSolutions finding id and a specific reason"
        )
    ACKNOWLEDGED.append(Acknowledged(scope.node.path, finding, reason))
    _apply(scope, finding, reason)


def _apply(scope: IConstruct, finding: str, reason: str) -> None:
    cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=finding, reason=reason))
