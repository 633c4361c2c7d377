"""Shared fixtures: test data paths and small signal generators used across tiers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).parent / "data"
SPEECH_FILES = sorted((DATA / "speech").glob("*.wav"))


def read_wav_reference(path: Path) -> tuple[np.ndarray, int]:
    """Read a WAV with scipy (an independent decoder) as float64 in [-1, 1], channel-last."""
    from scipy.io import wavfile

    sr, data = wavfile.read(path)
    if data.dtype == np.int16:
        data = data.astype(np.float64) / 32768.0
    elif data.dtype == np.int32:
        data = data.astype(np.float64) / 2147483648.0
    elif data.dtype == np.uint8:
        data = (data.astype(np.float64) - 128.0) / 128.0
    else:
        data = data.astype(np.float64)
    return data, sr


@pytest.fixture(scope="session")
def speech_clips() -> list[tuple[np.ndarray, int]]:
    """The committed espeak-ng sentences (16 kHz mono), float64."""
    return [read_wav_reference(p) for p in SPEECH_FILES]


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
