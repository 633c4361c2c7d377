"""Completion notifications against moto: a request's callback_url gets the status document when the
invocation ends, in every mode, signed with the deployment's secret; a receiver that keeps failing leaves
the delivery in the notify DLQ and the invocation as it was. The receiver is a real HTTP server on
127.0.0.1 (moto does not intercept urllib)."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from harmonic_service import service
from harmonic_service.api_models import status_document
from harmonic_service.config import clear_caches
from harmonic_service.events import NOTIFY
from harmonic_service.logic.callbacks import verify
from tests.conftest import SPEECH_FILES
from tests.integration.conftest import AwsStack


@dataclass
class Receiver:
    """An HTTP server that keeps every POST and answers `status`."""

    status: int = 204
    posts: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.posts]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    kept = Receiver()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            kept.posts.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(kept.status)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    kept.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/harmonic?team=audio"
    try:
        yield kept
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def local_callbacks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Plain-http receivers on 127.0.0.1 are allowed (as in the local stack), the rest as deployed."""
    monkeypatch.setenv("CALLBACK_ALLOW_HTTP", "true")
    clear_caches()


def _secret(aws: AwsStack) -> bytes:
    client = aws.resources.clients["secretsmanager"]
    return client.get_secret_value(SecretId=aws.resources.callback_secret_id)["SecretString"].encode()


def _submit(audio: bytes, mode: str, callback_url: str | None) -> str:
    accepted = service.submit_invocation(
        audio, None, mode, None, None, "notify-test", callback_url=callback_url
    )
    return accepted["invocation_id"]


CLIP = SPEECH_FILES[-1].read_bytes()


@pytest.mark.parametrize("mode", ["pipeline", "events"])
def test_the_end_of_an_invocation_is_posted_signed_to_its_callback(
    aws: AwsStack, receiver: Receiver, local_callbacks: None, mode: str
) -> None:
    invocation_id = _submit(CLIP, mode, receiver.url)
    report = aws.drain()

    assert report.deliveries["notify"] == 1
    assert len(receiver.posts) == 1
    headers, body = receiver.posts[0]
    document = json.loads(body)
    assert document == status_document(service.get_invocation(invocation_id))
    assert document["status"] == "SUCCEEDED"
    assert document["result"]["features"]["voiced_fraction"] > 0.1
    assert headers["content-type"] == "application/json"
    assert headers["x-harmonic-event"] == "InvocationCompleted"
    assert headers["x-harmonic-delivery"] == f"{invocation_id}:SUCCEEDED"
    assert verify(_secret(aws), body, headers["x-harmonic-signature"])
    assert not verify(b"another deployment's secret", body, headers["x-harmonic-signature"])


def test_a_state_machine_invocation_notifies_too(
    sfn_aws: AwsStack, receiver: Receiver, local_callbacks: None
) -> None:
    invocation_id = _submit(CLIP, "statemachine", receiver.url)
    assert sfn_aws.wait_for_execution(invocation_id)["status"] == "SUCCEEDED"
    sfn_aws.drain()
    assert [(b["invocation_id"], b["status"]) for b in receiver.bodies()] == [(invocation_id, "SUCCEEDED")]


def test_a_failed_invocation_is_notified_with_its_error(
    aws: AwsStack, receiver: Receiver, local_callbacks: None
) -> None:
    not_audio = b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 40  # a WAV header over nothing decodable
    invocation_id = _submit(not_audio, "pipeline", receiver.url)
    aws.drain()
    (document,) = receiver.bodies()
    assert document["invocation_id"] == invocation_id
    assert document["status"] == "FAILED"
    assert document["error"]["code"] == "invalid_audio"
    assert receiver.posts[0][0]["x-harmonic-event"] == "InvocationFailed"


def test_no_callback_url_means_no_notification(
    aws: AwsStack, receiver: Receiver, local_callbacks: None
) -> None:
    _submit(CLIP, "events", None)
    report = aws.drain()
    assert report.deliveries["notify"] == 0  # the rule matches only notify: true
    assert receiver.posts == []


def test_a_receiver_that_keeps_failing_leaves_the_delivery_in_the_dlq(
    aws: AwsStack, receiver: Receiver, local_callbacks: None
) -> None:
    receiver.status = 503
    invocation_id = _submit(CLIP, "pipeline", receiver.url)
    report = aws.drain()

    assert len(receiver.posts) == NOTIFY.max_receive_count  # every attempt, then no more
    assert report.deliveries["notify"] == NOTIFY.max_receive_count
    _, _, dlq_url = aws.resources.subscriber_queues[NOTIFY.name]
    assert aws.queue_depth(dlq_url) == 1
    assert service.get_invocation(invocation_id)["status"] == "SUCCEEDED"  # the invocation is not affected


@pytest.mark.parametrize(
    ("callback_url", "why"),
    [
        ("http://hooks.example.com/x", "https"),
        ("https://10.1.2.3/x", "non-public"),
        ("https://169.254.169.254/latest/meta-data", "non-public"),
        ("https://localhost:8443/x", "localhost"),
        ("https://user:pw@hooks.example.com/x", "credentials"),
        ("https:///no-host", "no host"),
    ],
)
def test_callback_urls_that_a_deployment_refuses(aws: AwsStack, callback_url: str, why: str) -> None:
    with pytest.raises(service.BadRequest) as refused:
        _submit(CLIP, "pipeline", callback_url)
    assert "callback_url" in str(refused.value)
    assert why in str(refused.value)


def test_callbacks_need_the_bus(aws: AwsStack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCHESTRATION", "pipeline")
    monkeypatch.setenv("EVENT_BUS_NAME", "")
    clear_caches()
    with pytest.raises(service.BadRequest) as refused:
        _submit(CLIP, "pipeline", "https://hooks.example.com/x")
    assert "orchestration that includes events" in str(refused.value)
