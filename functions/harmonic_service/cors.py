"""Cross-origin requests (CORS) from a web console served from another origin than the API.

Off unless a deployment names the console's origin: ``CORS_ALLOW_ORIGIN`` for the API function (config.py),
set by infra/api.py's ``cors_origin``, which also has API Gateway answer the browsers' preflight ``OPTIONS``
and put the origin on its own error responses. One origin, never ``*``, and no credentials: the console
authenticates with a header (an API key or SigV4), not cookies. The headers below are the ones both the
function (Powertools' ``CORSConfig``) and API Gateway's preflight allow and expose. Light: no AWS SDK.
"""

from __future__ import annotations

import re

CORRELATION_HEADER = "X-Correlation-Id"
# What a console's requests may carry: JSON bodies, an API key or a SigV4 signature, the idempotency key of
# a creation, its own correlation id.
ALLOW_HEADERS = (
    "Content-Type",
    "X-Api-Key",
    "Idempotency-Key",
    CORRELATION_HEADER,
    "Authorization",
    "X-Amz-Date",
    "X-Amz-Security-Token",
)
# What its scripts may read of a response: where a creation went, when to poll again, the request's id.
EXPOSE_HEADERS = ("Location", "Retry-After", CORRELATION_HEADER)
# How long a browser may reuse a preflight's answer.
MAX_AGE_S = 600

# An origin as browsers send it: scheme://host[:port], nothing after it.
_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(?::\d{1,5})?$")


def check_origin(value: str) -> str:
    """`value` when it is one origin (``https://console.example.com``, ``http://127.0.0.1:8000``); ValueError
    otherwise (``*``, a path or a trailing slash, which no browser's Origin header would ever equal)."""
    if not _ORIGIN.match(value):
        raise ValueError(
            f"CORS_ALLOW_ORIGIN must be one origin, scheme://host[:port] without a path, got {value!r}"
        )
    return value
