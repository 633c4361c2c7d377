"""STUB."""

import numpy as np


def resample(samples: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    raise NotImplementedError
