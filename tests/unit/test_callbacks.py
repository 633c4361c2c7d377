"""The signature of completion notifications and the callback URLs a deployment accepts
(harmonic_service.logic.callbacks): a receiver must be able to tell Harmonic's deliveries from anyone
else's, and a caller must not aim the notifier at private addresses."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from harmonic_service.logic.callbacks import check_callback_url, signature, verify

SECRET = b"0123456789abcdef" * 4
BODY = b'{"invocation_id":"abc","status":"SUCCEEDED"}'


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET, b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert signature(SECRET, BODY, 1_700_000_000) == f"t=1700000000,v1={expected}"


def test_verify_accepts_a_fresh_delivery_and_refuses_tampering() -> None:
    header = signature(SECRET, BODY, 1_700_000_000)
    assert verify(SECRET, BODY, header, now=1_700_000_010)
    assert not verify(SECRET, BODY + b" ", header, now=1_700_000_010)
    assert not verify(b"x" * 64, BODY, header, now=1_700_000_010)
    forged_time = header.replace("t=1700000000", "t=1700000005")
    assert not verify(SECRET, BODY, forged_time, now=1_700_000_010)


def test_verify_refuses_a_replay_older_than_five_minutes() -> None:
    header = signature(SECRET, BODY, 1_700_000_000)
    assert verify(SECRET, BODY, header, now=1_700_000_000 + 299)
    assert not verify(SECRET, BODY, header, now=1_700_000_000 + 301)


@pytest.mark.parametrize("header", ["", "v1=abc", "t=notanumber,v1=abc", "t=1700000000"])
def test_verify_refuses_malformed_headers(header: str) -> None:
    assert not verify(SECRET, BODY, header, now=1_700_000_000)


@pytest.mark.parametrize(
    "url", ["https://hooks.example.com/harmonic", "https://8.8.8.8:8443/x?y=1", "https://[2606:4700::1111]/"]
)
def test_public_https_urls_are_accepted(url: str) -> None:
    assert check_callback_url(url, allow_http=False) == url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://hooks.example.com/", "must be an https URL"),
        ("ftp://hooks.example.com/", "must be an https URL"),
        ("https://127.0.0.1/", "non-public"),
        ("https://192.168.1.20/", "non-public"),
        ("https://[::1]/", "non-public"),
        ("https://203.0.113.9/", "non-public"),  # a documentation range: not globally routable
        ("https://LOCALHOST/", "localhost"),
        ("https://a:b@hooks.example.com/", "credentials"),
        ("https://hooks.example.com/" + "x" * 2100, "at most 2048"),
    ],
)
def test_urls_a_deployment_refuses(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_callback_url(url, allow_http=False)


def test_the_local_stack_allows_plain_http_to_loopback() -> None:
    assert check_callback_url("http://127.0.0.1:9000/done", allow_http=True) == "http://127.0.0.1:9000/done"
    with pytest.raises(ValueError, match="https or http"):
        check_callback_url("file:///etc/passwd", allow_http=True)
