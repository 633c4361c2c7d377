"""RIFF/WAVE decoding (and encoding) with strict validation. STUB: to be implemented."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harmonic.errors import InvalidAudio


@dataclass(frozen=True)
class WavLimits:
    """Bounds a decoded clip must respect; exceeding one is InvalidAudio."""

    max_duration_s: float = 600.0
    min_sample_rate: int = 1000
    max_sample_rate: int = 192_000
    max_channels: int = 64


@dataclass(frozen=True)
class Clip:
    """Decoded audio: float32 mono samples in [-1, 1]."""

    samples: np.ndarray
    sample_rate: int
    channels: int

    @property
    def duration_s(self) -> float:
        return self.samples.shape[0] / self.sample_rate


def decode_wav(data: bytes, limits: WavLimits | None = None) -> Clip:
    raise InvalidAudio("not implemented")


def encode_wav(samples: np.ndarray, sample_rate: int) -> bytes:
    raise NotImplementedError
