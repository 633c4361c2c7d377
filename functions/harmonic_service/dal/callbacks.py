"""Completion notifications' AWS side and their HTTP POST: the signing secret from Secrets Manager, and one
signed delivery to a callback URL (logic/callbacks.py says what is signed and how).
"""

from __future__ import annotations

import functools
import json
import time
import urllib.error
import urllib.request
from typing import Any

from harmonic_service import config
from harmonic_service.dal import clients
from harmonic_service.logic.callbacks import DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, signature

# The secret is fetched once per this many seconds per function instance (a rotation reaches every
# instance within it).
SECRET_MAX_AGE_S = 300
DELIVERY_TIMEOUT_S = 5.0
USER_AGENT = "Harmonic-Notifications/1"


class CallbackFailed(Exception):
    """The receiver did not answer 2xx in time (a transient error: the delivery is retried, then DLQ'd)."""


@functools.cache
def _provider() -> Any:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    return SecretsProvider(boto3_client=clients.secretsmanager())


def signing_secret() -> bytes:
    """The deployment's HMAC secret (CALLBACK_SECRET_ID), cached for SECRET_MAX_AGE_S."""
    arn = config.get_settings().callback_secret_id
    if not arn:
        raise RuntimeError("CALLBACK_SECRET_ID is not set: completion notifications are not deployed here")
    value = _provider().get(arn, max_age=SECRET_MAX_AGE_S)
    return value.encode() if isinstance(value, str) else bytes(value)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer, not a delivery: never follow one (it could lead anywhere)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def deliver(url: str, document: dict[str, Any], *, event_type: str, delivery_id: str) -> int:
    """POST `document` as JSON to `url`, signed; the receiver's status. CallbackFailed unless it is 2xx."""
    body = json.dumps(document, separators=(",", ":")).encode()
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            SIGNATURE_HEADER: signature(signing_secret(), body, int(time.time())),
            EVENT_HEADER: event_type,
            DELIVERY_HEADER: delivery_id,
        },
    )
    try:
        with _opener.open(request, timeout=DELIVERY_TIMEOUT_S) as response:
            status = response.status
    except urllib.error.HTTPError as error:
        raise CallbackFailed(f"the callback answered {error.code}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise CallbackFailed(f"the callback could not be reached: {reason}") from None
    if not 200 <= status < 300:
        raise CallbackFailed(f"the callback answered {status}")
    return status


def clear() -> None:
    """Forget the secret provider (tests start a fresh mock per case)."""
    _provider.cache_clear()


config.on_clear(clear)
