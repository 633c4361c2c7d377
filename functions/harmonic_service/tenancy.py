"""Who is calling, and what they may see: invocations and patterns belong to the caller that created them.

The caller is what API Gateway authenticated (its ``requestContext.identity``):

- with ``auth: api_key``, the API key's id: ``apikey:<apiKeyId>``;
- with ``auth: iam``, the IAM principal: a role's sessions (``arn:aws:sts::<account>:assumed-role/<role>/
  <session>``) count as the role (``arn:aws:iam::<account>:role/<role>``), so that every Lambda, task or
  person acting as one role shares what it created; an IAM user is its user ARN;
- with neither (the local stack without a key), :data:`ANONYMOUS`.

Another caller's invocation or pattern does not exist for the caller (404, never 403: ids do not leak). A
deployment may name *publishers* (cdk.json ``shared_pattern_owners``): their patterns are visible to and
matched for everyone, and read-only for everyone else (changing one is a 403: the caller can see it).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

ANONYMOUS = "anonymous"
_ASSUMED_ROLE = re.compile(
    r"^arn:(?P<partition>[\w-]+):sts::(?P<account>\d{12}):assumed-role/(?P<role>[^/]+)/.+$"
)


def caller_of(request_context: Mapping[str, Any] | None) -> str:
    """The owner id of the caller of an API Gateway (REST, proxy) request, from its request context."""
    identity = (request_context or {}).get("identity") or {}
    api_key_id = identity.get("apiKeyId")
    if api_key_id:
        return f"apikey:{api_key_id}"
    principal = identity.get("userArn") or ""
    if principal:
        return principal_of(principal)
    return ANONYMOUS


def owner_digest(owner: str) -> str:
    """A short digest of an owner id (16 hex digits of its SHA-256): names a caller's things (its uploads'
    folder, its history's page tokens) without naming the caller."""
    return hashlib.sha256(owner.encode()).hexdigest()[:16]


def principal_of(arn: str) -> str:
    """An IAM principal ARN with an assumed role's session reduced to the role."""
    match = _ASSUMED_ROLE.match(arn)
    if match is None:
        return arn
    return f"arn:{match['partition']}:iam::{match['account']}:role/{match['role']}"


@dataclass(frozen=True)
class Viewer:
    """A caller and the deployment's publishers: what it may see and what it may change."""

    owner: str = ANONYMOUS
    publishers: frozenset[str] = frozenset()

    @classmethod
    def of(cls, owner: str, publishers: Iterable[str] = ()) -> Viewer:
        return cls(owner=owner, publishers=frozenset(publishers))

    def sees(self, owner: str | None) -> bool:
        """Whether something owned by `owner` exists for this caller (its own, or a publisher's)."""
        owner = owner or ANONYMOUS
        return owner == self.owner or owner in self.publishers

    def may_change(self, owner: str | None) -> bool:
        """Whether this caller may change or delete something owned by `owner`: only its own."""
        return (owner or ANONYMOUS) == self.owner

    def shared(self, owner: str | None) -> bool:
        """Whether something owned by `owner` is a publisher's that this caller sees without owning it."""
        return self.sees(owner) and not self.may_change(owner)
