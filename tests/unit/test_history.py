"""The history's page tokens (logic/history.py): opaque, the caller's own, and refused when malformed."""

from __future__ import annotations

import base64
import json

import pytest

from harmonic_service.logic.history import page_start, page_token

OWNER = "apikey:alice"
CREATED = "2026-11-30T08:38:58.123Z"
INVOCATION = "3f6d2c1e-8a4b-4c5d-9e0f-123456789abc"


def _raw(payload: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def test_a_token_gives_back_where_the_page_ended_for_its_owner_only() -> None:
    token = page_token(OWNER, CREATED, INVOCATION)
    assert page_start(token, OWNER) == (CREATED, INVOCATION)
    assert OWNER not in base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()  # not named
    with pytest.raises(ValueError, match="another caller"):
        page_start(token, "apikey:bob")


@pytest.mark.parametrize(
    "token",
    [
        "",
        "%%%",
        "bm90IGpzb24",  # "not json"
        _raw([1, 2]),
        _raw({"v": 1}),
        _raw({"v": 2, "o": "x", "c": CREATED, "i": INVOCATION}),
        _raw({"v": 1, "o": "x", "c": CREATED, "i": INVOCATION, "extra": 1}),
    ],
)
def test_malformed_tokens_are_refused(token: str) -> None:
    with pytest.raises(ValueError, match="not a token of this API"):
        page_start(token, OWNER)


def test_a_token_edited_into_something_malformed_is_refused() -> None:
    good = json.loads(base64.urlsafe_b64decode(page_token(OWNER, CREATED, INVOCATION) + "=="))
    for edit in ({"c": "2026-11-30"}, {"c": 5}, {"i": "../../x"}, {"i": INVOCATION.upper()}):
        with pytest.raises(ValueError, match="not a token of this API"):
            page_start(_raw({**good, **edit}), OWNER)
