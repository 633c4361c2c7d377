"""Where a request's clip comes from: inline (`audio`) or an earlier upload (`audio_key`), exactly one."""

from __future__ import annotations

from typing import Any

ONE_SOURCE = "give exactly one of audio (base64 WAV) or audio_key (from POST /v1/uploads)"


def check_one_source(audio: Any, audio_key: Any) -> None:
    """ValueError unless exactly one of `audio` and `audio_key` is given (not None)."""
    if (audio is None) == (audio_key is None):
        raise ValueError(ONE_SOURCE)
