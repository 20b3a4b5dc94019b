"""Values as the index holds them: each as a kind, a number and a text, so that SQL compares
and sorts them as Python would. An int is an SQLite INTEGER (compared exactly with floats);
one beyond 64 bits is kept exact as text that sorts as the numbers do, and compared exactly by
:func:`exact_compare`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from yanex.dotted import leaves
from yanex.record import fits_int64


def epoch(stamp: Any) -> float | None:
    """An ISO 8601 time from metadata as seconds since the epoch (None when absent or bad)."""
    if not isinstance(stamp, str):
        return None
    try:
        return datetime.fromisoformat(stamp).timestamp()
    except (ValueError, OverflowError, OSError):
        return None


def big_text(value: int) -> str:
    """An int beyond 64 bits as text that sorts as the numbers do: sign, length, digits
    (a negative one's length and digits complemented)."""
    digits = str(abs(value))
    if value >= 0:
        return f"1{len(digits):05d}{digits}"
    return f"0{99999 - len(digits):05d}{digits.translate(_COMPLEMENT)}"


_COMPLEMENT = str.maketrans("0123456789", "9876543210")


def big_value(text: str) -> int:
    """The int :func:`big_text` wrote."""
    if text[0] == "1":
        return int(text[6:])
    return -int(text[6:].translate(_COMPLEMENT))


def typed(value: Any) -> tuple[str, Any, str | None]:
    """``(kind, num, text)``: how one value is stored for comparisons and sorting."""
    cls = value.__class__
    if cls is bool:
        return "bool", int(value), None
    if cls is int:
        if fits_int64(value):
            return "number", value, None
        try:
            near = float(value)
        except OverflowError:
            near = math.inf if value > 0 else -math.inf  # copysign would convert it again
        return "number", near, big_text(value)
    if cls is float:
        return "number", None if value != value else value, None  # NaN: no order
    if cls is str:
        return "str", None, value
    if value is None:
        return "null", None, None
    return "json", None, canonical_json(value)


def exact_compare(num: Any, text: str | None, op: str, wanted: str) -> int:
    """SQL function: does a stored number compare with ``wanted`` (JSON text of a number) as
    ``op`` says, exactly? For the rare comparisons a 64-bit INTEGER or a float cannot decide:
    an int beyond 64 bits on either side."""
    value = big_value(text) if text is not None else num
    if value is None:
        return 0
    other = json.loads(wanted)
    return int(_OPS[op](value, other))


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def param_leaves(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Dotted keys of a parameter dict; lists (and empty dicts) are single values."""
    return leaves(node, prefix)


# Made once: json.dumps with any option builds a new encoder at every call.
ENCODER = json.JSONEncoder(ensure_ascii=False, default=str)


def to_json(value: Any) -> str:
    return ENCODER.encode(value)
