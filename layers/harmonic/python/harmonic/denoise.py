"""STUB."""

import numpy as np


def denoise(samples: np.ndarray, sr: int) -> np.ndarray:
    raise NotImplementedError


def estimate_snr_db(samples: np.ndarray, sr: int) -> float:
    raise NotImplementedError
