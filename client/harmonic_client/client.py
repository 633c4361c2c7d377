"""A small Python client for Harmonic's HTTP API (local stack or deployed).

``Client(endpoint).invoke("clip.wav", wait=True)`` sends a clip and waits for its result. Requests to an
IAM-authorized deployment are signed with SigV4 from the standard AWS credential chain (botocore);
API-key deployments send ``x-api-key``. Clips larger than the inline limit go through ``/v1/uploads``
(a presigned S3 PUT) automatically. 429 and 5xx responses are retried with exponential backoff and jitter
(honouring ``Retry-After``); other 4xx raise :class:`ApiError` with the server's message.

Retries never create twice: every submission and pattern registration carries an ``Idempotency-Key`` (a
uuid4 unless you give one), so a retried POST gets the first response; a call that creates something without
one is not retried after a 5xx or a timeout (its first attempt may have worked). ``wait`` polls with backoff,
0.25 s growing to 2 s, and never sooner than the ``Retry-After`` of a running invocation's status document.
"""

from __future__ import annotations

import base64
import json
import os
import random
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from harmonic_client.listener import CallbackListener

DEFAULT_ENDPOINT = "http://127.0.0.1:8765"
# Inline audio rides base64 in JSON (4/3 larger); above this the client uploads it first.
INLINE_LIMIT_BYTES = 3 * 1024 * 1024
TERMINAL = ("SUCCEEDED", "FAILED")
# wait(): the first poll interval, its growth per poll and its ceiling
POLL_FIRST_S, POLL_GROWTH, POLL_MAX_S = 0.25, 1.5, 2.0
# POSTs that create nothing a retry could duplicate: the synchronous analysis (it stores nothing), an upload
# URL (an unused one expires)
_RETRY_SAFE_POSTS = ("/v1/analyze", "/v1/uploads")


class ApiError(Exception):
    """A request the API refused (4xx) or could not serve (5xx after retries)."""

    def __init__(self, status: int, code: str, message: str, body: Any = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.body = body


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: Any


class Client:
    """Harmonic's API. ``auth``: ``"none"`` (local), ``"iam"`` (SigV4) or ``"api_key"``; by default IAM for
    ``*.amazonaws.com`` endpoints, an API key when one is given, otherwise none."""

    def __init__(
        self,
        endpoint: str | None = None,
        *,
        api_key: str | None = None,
        auth: str | None = None,
        region: str | None = None,
        profile: str | None = None,
        timeout_s: float = 60.0,
        max_retries: int = 5,
        inline_limit_bytes: int = INLINE_LIMIT_BYTES,
    ) -> None:
        self.endpoint = (endpoint or os.environ.get("HARMONIC_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")
        self.api_key = api_key or os.environ.get("HARMONIC_API_KEY")
        host = urlsplit(self.endpoint).hostname or ""
        self.auth = auth or (
            "api_key" if self.api_key else "iam" if host.endswith("amazonaws.com") else "none"
        )
        self.region = (
            region or _region_of(host) or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        )
        self.profile = profile  # the AWS profile that signs requests (auth=iam); None: the default chain
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.inline_limit_bytes = inline_limit_bytes
        self.sleep: Callable[[float], None] = time.sleep

    # --- routes ------------------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        return self.request("GET", "/v1/health").body

    def analyze(
        self, audio: str | Path | bytes, *, steps: list[str] | None = None, options: dict | None = None
    ) -> dict:
        """The whole chain synchronously (``POST /v1/analyze``) → the result."""
        return self.request("POST", "/v1/analyze", self._audio_body(audio, steps, options)).body

    def submit(
        self,
        audio: str | Path | bytes,
        *,
        mode: str | None = None,
        steps: list[str] | None = None,
        options: dict | None = None,
        idempotency_key: str | None = None,
        correlation_id: str | None = None,
        callback_url: str | None = None,
    ) -> dict[str, Any]:
        """``POST /v1/invocations`` → ``{"invocation_id", "status": "ACCEPTED", ...}``.

        ``correlation_id`` (``X-Correlation-Id``) tags every log line of the invocation, in every stage.
        ``callback_url``: where the service POSTs the status document when the invocation ends.
        ``idempotency_key``: default a fresh uuid4, so that a retry of this call never submits twice.
        """
        body = self._audio_body(audio, steps, options)
        if mode:
            body["mode"] = mode
        if callback_url:
            body["callback_url"] = callback_url
        headers = {"Idempotency-Key": idempotency_key or str(uuid.uuid4())}
        if correlation_id:
            headers["X-Correlation-Id"] = correlation_id
        return self.request("POST", "/v1/invocations", body, headers=headers).body

    def get_pattern(self, pattern_id: str) -> dict[str, Any]:
        return self.request("GET", f"/v1/patterns/{pattern_id}").body

    def status(self, invocation_id: str) -> dict[str, Any]:
        return self.request("GET", f"/v1/invocations/{invocation_id}").body

    def history(self, *, limit: int | None = None, next_token: str | None = None) -> dict[str, Any]:
        """One page of the caller's recent invocations, newest first (``GET /v1/invocations``):
        ``{"invocations": [...], "count", "next_token"}``; pass ``next_token`` back for the next page."""
        query = {
            key: str(value)
            for key, value in (("limit", limit), ("next_token", next_token))
            if value is not None
        }
        suffix = f"?{urlencode(query)}" if query else ""
        return self.request("GET", f"/v1/invocations{suffix}").body

    def resume(self, invocation_id: str) -> dict[str, Any]:
        return self.request("POST", f"/v1/invocations/{invocation_id}/resume").body

    def wait(
        self,
        invocation_id: str,
        *,
        timeout_s: float = 300.0,
        poll_s: float | None = None,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Poll until the invocation is SUCCEEDED or FAILED; ``on_progress`` sees each change of status.

        By default the polls back off from 0.25 s to 2 s (×1.5 each) and wait at least the ``Retry-After``
        the service sends with a running invocation; ``poll_s`` polls at that fixed interval instead
        (benchmarks that measure latency)."""
        deadline = time.monotonic() + timeout_s
        last: Any = None
        interval = POLL_FIRST_S
        while True:
            response = self.request("GET", f"/v1/invocations/{invocation_id}")
            current = response.body
            signature = (
                current.get("status"),
                [(s.get("name"), s.get("status")) for s in current.get("stages", [])],
            )
            if on_progress and signature != last:
                on_progress(current)
            last = signature
            if current.get("status") in TERMINAL:
                return current
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"invocation {invocation_id} still {current.get('status')} after {timeout_s} s"
                )
            if poll_s is not None:
                self.sleep(poll_s)
                continue
            retry_after = _seconds(_header(response.headers, "Retry-After")) or 0.0
            self.sleep(max(interval, retry_after))
            interval = min(POLL_MAX_S, interval * POLL_GROWTH)

    def wait_notified(
        self,
        invocation_id: str,
        listener: CallbackListener,
        *,
        timeout_s: float = 300.0,
        check_every_s: float = 5.0,
    ) -> dict[str, Any]:
        """Wait for the invocation's completion notification at `listener`; every `check_every_s` without
        one, ask for the status once (a notification can be late or lost: the status is the truth)."""
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            notified = listener.wait_for(invocation_id, timeout_s=max(0.0, min(check_every_s, left)))
            if notified is not None and notified.get("status") in TERMINAL:
                return notified
            current = self.status(invocation_id)
            if current.get("status") in TERMINAL:
                return current
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"invocation {invocation_id} still {current.get('status')} after {timeout_s} s"
                )

    def invoke(
        self,
        audio: str | Path | bytes,
        *,
        mode: str | None = None,
        wait: bool = False,
        listen: bool = False,
        poll_s: float | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Submit, and with ``wait`` return the final status (with ``result`` or ``error``).

        With ``listen`` too, wait for the completion notification at a :class:`CallbackListener` on this
        machine instead of polling (the service must be able to reach it: the local stack can). ``poll_s``
        as in :meth:`wait`."""
        on_progress = kwargs.pop("on_progress", None)
        if wait and listen:
            with CallbackListener() as listener:
                accepted = self.submit(audio, mode=mode, callback_url=listener.url, **kwargs)
                final = self.wait_notified(accepted["invocation_id"], listener)
            if on_progress:
                on_progress(final)
            return final
        accepted = self.submit(audio, mode=mode, **kwargs)
        if not wait:
            return accepted
        return self.wait(accepted["invocation_id"], on_progress=on_progress, poll_s=poll_s)

    def result(self, invocation_id: str) -> dict[str, Any] | None:
        """A SUCCEEDED invocation's result, fetched from ``result_url`` when too large to inline."""
        current = self.status(invocation_id)
        if "result" in current:
            return current["result"]
        if current.get("result_url"):
            with urllib.request.urlopen(current["result_url"], timeout=self.timeout_s) as response:
                return json.loads(response.read())
        return None

    def create_upload(self, content_length: int | None = None) -> dict[str, Any]:
        body = {"content_length": content_length} if content_length is not None else {}
        return self.request("POST", "/v1/uploads", body).body

    def upload(self, data: bytes) -> str:
        """PUT `data` to a presigned upload URL; → the ``audio_key`` to submit."""
        upload = self.create_upload(len(data))
        request = urllib.request.Request(upload["upload_url"], data=data, method="PUT")
        request.add_header("Content-Type", "audio/wav")
        try:
            with urllib.request.urlopen(request, timeout=max(self.timeout_s, len(data) / 1e6)) as response:
                response.read()
        except urllib.error.HTTPError as error:
            raise ApiError(error.code, "upload_failed", error.read().decode(errors="replace")[:500]) from None
        return upload["audio_key"]

    def add_pattern(
        self,
        name: str,
        audio: str | Path | bytes | None = None,
        kind: str | None = None,
        *,
        text: str | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """``POST /v1/patterns`` → the registered pattern. ``idempotency_key``: default a fresh uuid4.

        ``kind``: ``template`` (the default with a clip alone), ``fingerprint``, or ``keyword`` (the default
        with ``text``: the keyword by its spelling; with a clip as well, by both).
        """
        if kind is None:
            kind = "keyword" if text is not None else "template"
        if audio is None and text is None:
            raise ValueError("give the example clip, the keyword's text, or both")
        body = self._audio_body(audio, None, None) if audio is not None else {}
        body.update(name=name, kind=kind)
        if text is not None:
            body["text"] = text
        headers = {"Idempotency-Key": idempotency_key or str(uuid.uuid4())}
        return self.request("POST", "/v1/patterns", body, headers=headers).body

    def list_patterns(self) -> list[dict[str, Any]]:
        body = self.request("GET", "/v1/patterns").body
        return body.get("patterns", body) if isinstance(body, dict) else body

    def pattern_example(self, pattern_id: str) -> dict[str, Any]:
        """Where to fetch the example a pattern was registered from: ``{"url" (presigned, expires),
        "content_type", "expires_in"}``."""
        return self.request("GET", f"/v1/patterns/{pattern_id}/example").body

    def rebuild_pattern(self, pattern_id: str) -> dict[str, Any]:
        """Have the service compute a pattern again from what was registered (its example, a keyword's
        text) with its current code, under the same id: a pattern stored by an earlier version gets the
        current format (a template's speech embeddings). The pattern, with ``rebuilt_at``; ApiError 409
        ``no_example`` when nothing to compute it from was kept."""
        return self.request("POST", f"/v1/patterns/{pattern_id}/rebuild").body

    def remove_pattern(self, pattern_id: str) -> None:
        self.request("DELETE", f"/v1/patterns/{pattern_id}")

    # --- plumbing ----------------------------------------------------------------------------------------

    def _audio_body(
        self, audio: str | Path | bytes, steps: list[str] | None, options: dict | None
    ) -> dict[str, Any]:
        data = audio if isinstance(audio, bytes) else Path(audio).read_bytes()
        body: dict[str, Any]
        if len(data) > self.inline_limit_bytes:
            body = {"audio_key": self.upload(data)}
        else:
            body = {"audio": base64.b64encode(data).decode("ascii")}
        if steps is not None:
            body["steps"] = steps
        if options:
            body["options"] = options
        return body

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> Response:
        """One API call with retries on 429/5xx and connection errors; raises ApiError on a final error."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        all_headers = {"Accept": "application/json", **(headers or {})}
        if data is not None:
            all_headers.setdefault("Content-Type", "application/json")
        url = self.endpoint + path
        safe = _retry_safe(method, path, all_headers)
        for attempt in range(self.max_retries + 1):
            signed = self._authorize(method, url, all_headers, data)
            request = urllib.request.Request(url, data=data, method=method, headers=signed)
            retry_after: float | None = None
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    return Response(response.status, dict(response.headers), _json(response.read()))
            except urllib.error.HTTPError as error:
                payload = _json(error.read())
                # 429: refused before any work, always safe to retry; 5xx: maybe done, retried if safe
                retry = error.code == 429 or (error.code >= 500 and safe)
                if not retry or attempt == self.max_retries:
                    detail = payload.get("error", {}) if isinstance(payload, dict) else {}
                    message = detail.get("message") or (payload if isinstance(payload, str) else error.reason)
                    raise ApiError(
                        error.code, detail.get("code", "http_error"), str(message), payload
                    ) from None
                retry_after = _seconds(error.headers.get("Retry-After"))
            except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
                if attempt == self.max_retries or not safe:
                    raise ApiError(0, "unreachable", f"cannot reach {self.endpoint}: {error}") from None
            backoff = min(20.0, 0.2 * 2**attempt) * random.uniform(0.5, 1.0)
            self.sleep(max(backoff, retry_after or 0.0))
        raise AssertionError("unreachable")

    def _authorize(
        self, method: str, url: str, headers: dict[str, str], data: bytes | None
    ) -> dict[str, str]:
        if self.auth == "api_key":
            return {**headers, "x-api-key": self.api_key or ""}
        if self.auth != "iam":
            return headers
        import botocore.session
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.exceptions import BotoCoreError

        try:
            credentials = botocore.session.Session(profile=self.profile).get_credentials()
        except BotoCoreError as error:  # e.g. ProfileNotFound, a broken config file
            raise ApiError(0, "no_credentials", str(error)) from None
        if credentials is None:
            raise ApiError(0, "no_credentials", "IAM endpoint but no AWS credentials found (aws configure?)")
        aws_request = AWSRequest(method=method, url=url, data=data or b"", headers=dict(headers))
        SigV4Auth(credentials.get_frozen_credentials(), "execute-api", self.region or "us-east-1").add_auth(
            aws_request
        )
        return dict(aws_request.headers.items())


def _json(raw: bytes) -> Any:
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


def _retry_safe(method: str, path: str, headers: dict[str, str]) -> bool:
    """Whether repeating the call after a 5xx or a timeout cannot create something twice."""
    if method.upper() not in ("POST", "PATCH"):
        return True
    return path.rstrip("/") in _RETRY_SAFE_POSTS or "Idempotency-Key" in headers


def _header(headers: dict[str, str], name: str) -> str | None:
    """A response header, whatever its case."""
    lowered = name.lower()
    return next((value for key, value in headers.items() if key.lower() == lowered), None)


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _region_of(host: str) -> str | None:
    """``abc.execute-api.eu-west-1.amazonaws.com`` → ``eu-west-1``."""
    parts = host.split(".")
    if len(parts) >= 4 and parts[-2] == "amazonaws" and parts[1] == "execute-api":
        return parts[2]
    return None
