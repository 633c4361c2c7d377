"""STUB."""

import numpy as np


def integrated_loudness(samples: np.ndarray, sr: int) -> float:
    raise NotImplementedError


def normalize_loudness(
    samples: np.ndarray, sr: int, target_lufs: float = -23.0, peak_dbfs: float = -1.0
) -> np.ndarray:
    raise NotImplementedError
