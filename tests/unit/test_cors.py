"""CORS_ALLOW_ORIGIN: one origin or none, read with the other settings (config.py, cors.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harmonic_service.config import clear_caches, get_settings


@pytest.fixture
def clean(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    clear_caches()
    yield monkeypatch
    monkeypatch.delenv("CORS_ALLOW_ORIGIN", raising=False)
    clear_caches()


@pytest.mark.parametrize(
    "origin",
    ["https://console.example.com", "http://127.0.0.1:8000", "https://d111111abcdef8.cloudfront.net"],
)
def test_an_origin_is_taken_as_it_is(clean: pytest.MonkeyPatch, origin: str) -> None:
    clean.setenv("CORS_ALLOW_ORIGIN", f" {origin} ")
    assert get_settings().cors_allow_origin == origin


def test_unset_or_empty_means_no_cors(clean: pytest.MonkeyPatch) -> None:
    assert get_settings().cors_allow_origin == ""
    clean.setenv("CORS_ALLOW_ORIGIN", "")
    clear_caches()
    assert get_settings().cors_allow_origin == ""


@pytest.mark.parametrize(
    "value", ["*", "https://console.example.com/", "https://console.example.com/app", "console.example.com"]
)
def test_anything_but_one_origin_is_refused(clean: pytest.MonkeyPatch, value: str) -> None:
    """`*` would open the API to every site; a path or a trailing slash never equals a browser's Origin."""
    clean.setenv("CORS_ALLOW_ORIGIN", value)
    with pytest.raises(ValueError, match="CORS_ALLOW_ORIGIN must be one origin"):
        get_settings()
