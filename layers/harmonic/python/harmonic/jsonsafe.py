"""JSON-safe values: what analysis results may hold (plain JSON types, no NaN or infinities).

Silence has a loudness of -inf LUFS and an unvoiced clip no f0: both become None, which JSON (and DynamoDB)
can hold. Floats are rounded to 4 decimals: summaries describe a clip, they do not carry its signal.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

DECIMALS = 4


def json_safe(value: Any) -> Any:
    """`value` with numpy scalars/arrays turned into Python types, floats rounded and NaN/±inf into None.

    Mappings (keys become strings), lists, tuples and arrays are converted element by element; anything else
    is returned as it is.
    """
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return [json_safe(v) for v in value.tolist()]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        number = float(value)
        return round(number, DECIMALS) if math.isfinite(number) else None
    return value
