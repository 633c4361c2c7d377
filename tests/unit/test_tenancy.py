"""Who is calling (the API key's id, the IAM principal with a role's sessions as the role, or anonymous) and
what a caller sees and may change (its own; a publisher's read-only)."""

from __future__ import annotations

import pytest

from harmonic_service.tenancy import ANONYMOUS, Viewer, caller_of, principal_of


@pytest.mark.parametrize(
    ("identity", "caller"),
    [
        ({"apiKeyId": "k1a2b3", "userArn": None}, "apikey:k1a2b3"),
        (
            {"userArn": "arn:aws:sts::123456789012:assumed-role/Analyst/alice@example.com"},
            "arn:aws:iam::123456789012:role/Analyst",
        ),
        ({"userArn": "arn:aws:iam::123456789012:user/bob"}, "arn:aws:iam::123456789012:user/bob"),
        (
            {"userArn": "arn:aws-cn:sts::123456789012:assumed-role/Ops/i-0abc"},
            "arn:aws-cn:iam::123456789012:role/Ops",
        ),
        ({"sourceIp": "127.0.0.1"}, ANONYMOUS),
    ],
)
def test_the_caller_is_what_api_gateway_authenticated(identity: dict, caller: str) -> None:
    assert caller_of({"identity": identity}) == caller


def test_no_request_context_is_the_anonymous_caller() -> None:
    assert caller_of(None) == ANONYMOUS
    assert caller_of({}) == ANONYMOUS
    assert ANONYMOUS == "anonymous"


def test_a_role_arn_or_user_arn_is_kept_as_it_is() -> None:
    assert principal_of("arn:aws:iam::123456789012:role/Analyst") == "arn:aws:iam::123456789012:role/Analyst"


def test_a_caller_sees_its_own_and_the_publishers_and_changes_only_its_own() -> None:
    viewer = Viewer.of("apikey:bob", publishers=["apikey:publisher"])
    assert viewer.sees("apikey:bob")
    assert viewer.sees("apikey:publisher")
    assert not viewer.sees("apikey:alice")
    assert viewer.may_change("apikey:bob")
    assert not viewer.may_change("apikey:publisher")
    assert viewer.shared("apikey:publisher")
    assert not viewer.shared("apikey:bob")
    assert not viewer.shared("apikey:alice")  # not shared: not even seen


def test_things_from_before_owners_were_kept_are_the_anonymous_callers() -> None:
    assert Viewer.of(ANONYMOUS).sees(None)
    assert Viewer.of(ANONYMOUS).may_change(None)
    assert not Viewer.of("apikey:bob").sees(None)
