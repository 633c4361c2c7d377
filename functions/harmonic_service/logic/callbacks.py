"""Completion notifications: which callback URLs a request may name, and how a delivery is signed.

A request's ``callback_url`` gets the invocation's status document POSTed to it when the invocation ends
(handlers/notify.py). The receiver checks that Harmonic sent it with the deployment's HMAC secret:

    X-Harmonic-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>

the scheme of Stripe's and Slack's webhooks: the timestamp is signed with the body, so a captured delivery
cannot be replayed later than the receiver's tolerance (:data:`SIGNATURE_TOLERANCE_S`), and comparison is in
constant time. ``X-Harmonic-Delivery`` names the invocation's end (``<invocation id>:<status>``): the same
for every retry of a delivery, so that a receiver can drop the repeats of at-least-once delivery.

No AWS here: the secret comes from dal/callbacks.py.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import time
from urllib.parse import urlsplit

SIGNATURE_HEADER = "X-Harmonic-Signature"
DELIVERY_HEADER = "X-Harmonic-Delivery"
EVENT_HEADER = "X-Harmonic-Event"
SIGNATURE_TOLERANCE_S = 300
MAX_URL_LENGTH = 2048


def check_callback_url(url: str, *, allow_http: bool) -> str:
    """`url` if a delivery may go there, else ValueError naming ``callback_url`` and what is wrong.

    HTTPS to a named host or a public address; plain http and private, loopback or link-local addresses
    only with `allow_http` (the local stack, whose receivers are on 127.0.0.1). A literal private address
    would let a caller make the notifier reach inside its VPC or the instance metadata service.
    """
    if len(url) > MAX_URL_LENGTH:
        raise ValueError(f"callback_url is {len(url)} characters; at most {MAX_URL_LENGTH}")
    parts = urlsplit(url)
    schemes = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in schemes:
        raise ValueError(f"callback_url must be an {' or '.join(schemes)} URL, got scheme {parts.scheme!r}")
    if not parts.hostname:
        raise ValueError("callback_url has no host")
    if parts.username or parts.password:
        raise ValueError("callback_url must not carry credentials (user:password@)")
    try:
        address = ipaddress.ip_address(parts.hostname)
    except ValueError:
        address = None
    if address is not None and not allow_http and not address.is_global:
        raise ValueError(f"callback_url points at a non-public address ({address})")
    if not allow_http and parts.hostname.lower() in ("localhost", "localhost.localdomain"):
        raise ValueError("callback_url points at localhost")
    return url


def signature(secret: bytes, body: bytes, timestamp: int) -> str:
    """The ``X-Harmonic-Signature`` value of `body` sent at `timestamp` (unix seconds)."""
    mac = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(
    secret: bytes,
    body: bytes,
    header: str,
    *,
    tolerance_s: int = SIGNATURE_TOLERANCE_S,
    now: float | None = None,
) -> bool:
    """Whether `header` (an ``X-Harmonic-Signature`` value) signs `body` with `secret`, sent no more than
    `tolerance_s` from `now` (default: the clock)."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance_s:
        return False
    expected = signature(secret, body, timestamp)
    return hmac.compare_digest(expected, f"t={timestamp},v1={fields.get('v1', '')}")
