"""DynamoDB attribute values to and from plain Python values: the one codec of every table adapter.

Numbers come back as int or float (never Decimal), and floats go in as they are (boto3's TypeSerializer
refuses them); NaN and infinities cannot be stored and are a ValueError.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def to_av(value: Any) -> dict[str, Any]:
    """The attribute value of `value` (None, bool, int, float, str, list/tuple, mapping)."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int):
        return {"N": str(value)}
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("DynamoDB numbers cannot be NaN or infinite")
        return {"N": repr(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, list | tuple):
        return {"L": [to_av(v) for v in value]}
    if isinstance(value, Mapping):
        return {"M": {str(k): to_av(v) for k, v in value.items()}}
    raise TypeError(f"cannot store {type(value).__name__} in DynamoDB")


def from_av(av: Mapping[str, Any]) -> Any:
    """The plain value of one attribute value."""
    (kind, value), *_ = av.items()
    if kind == "S":
        return value
    if kind == "N":
        return int(value) if value.lstrip("-").isdigit() else float(value)
    if kind == "BOOL":
        return bool(value)
    if kind == "NULL":
        return None
    if kind == "L":
        return [from_av(v) for v in value]
    if kind == "M":
        return {k: from_av(v) for k, v in value.items()}
    raise TypeError(f"unsupported DynamoDB type {kind}")


def to_item(values: Mapping[str, Any]) -> dict[str, Any]:
    """An item's attributes from a mapping of plain values."""
    return {str(k): to_av(v) for k, v in values.items()}


def from_item(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A mapping of plain values from an item's attributes."""
    return {k: from_av(v) for k, v in raw.items()}
