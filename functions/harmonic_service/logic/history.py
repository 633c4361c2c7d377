"""A caller's invocation history in pages (GET /v1/invocations): the page size and the opaque next_token.

A token says where the next page starts (the creation time and id of the last invocation listed) and whose
history it pages (a digest of the owner): base64url of a small JSON object. It is opaque to clients, and one
the API did not issue to this caller (garbled, edited into something malformed, or another caller's) is
refused. It is not signed: one edited into another well-formed position still pages only the caller's own
history (the owner always comes from the request, never from the token).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid

from harmonic_service.tenancy import owner_digest

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_TOKEN_CHARS = 512
_TOKEN_VERSION = 1
_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")  # timestamps.now()


def page_token(owner: str, created_at: str, invocation_id: str) -> str:
    """The next_token of a page of `owner`'s history whose last invocation is (`created_at`,
    `invocation_id`)."""
    payload = {"v": _TOKEN_VERSION, "o": owner_digest(owner), "c": created_at, "i": invocation_id}
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def page_start(token: str, owner: str) -> tuple[str, str]:
    """``(created_at, invocation_id)`` after which the page `token` asks for starts; ValueError when `token`
    is not one `page_token` made for `owner`."""
    try:
        padded = token + "=" * (-len(token) % 4)
        payload = json.loads(base64.b64decode(padded, altchars=b"-_", validate=True))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise ValueError("not a token of this API") from None
    if (
        not isinstance(payload, dict)
        or payload.keys() != {"v", "o", "c", "i"}
        or payload["v"] != _TOKEN_VERSION
    ):
        raise ValueError("not a token of this API")
    created_at, invocation_id = payload["c"], payload["i"]
    if payload["o"] != owner_digest(owner):
        raise ValueError("a token of another caller")
    if not (isinstance(created_at, str) and _TIMESTAMP.match(created_at) and _is_uuid(invocation_id)):
        raise ValueError("not a token of this API")
    return created_at, invocation_id


def _is_uuid(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False
