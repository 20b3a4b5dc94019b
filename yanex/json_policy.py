"""yanex's one JSON policy: what it writes for others to read, and what it prints, is JSON
any reader takes (jq, JavaScript, a strict parser).

- ``results.jsonl``, the JSON yanex prints (``--format json``) and the dashboard's data are
  strict JSON. NaN and the infinities, which strict JSON has no words for, are written as
  the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` (:func:`encode_value`), and every
  reader turns those strings back into floats (:func:`decode_value`): a result logged as NaN
  is NaN again in ``yanex.results``, and ``"NaN"`` is never shown as text.
- The records yanex writes and reads back itself (``metadata.json``, ``params.json``) keep
  json's defaults, so a NaN parameter reaches ``get_param`` as the float it was.
- yanex 0.6's metrics are brought over by the same rule (``v06store``).

The ground floor: it imports nothing of yanex, so the store, the script API and 0.6's reader
can all use it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

NON_FINITE: dict[str, float] = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def decode_value(value: Any) -> Any:
    """A stored value as Python sees it: the strings that stand for NaN and the infinities
    become floats again, nested values too (``json`` already reads a bare ``NaN`` written
    by older versions)."""
    cls = value.__class__
    if cls is str:
        return NON_FINITE.get(value, value)
    if cls is list:
        return [decode_value(item) for item in value]
    if cls is dict:
        return {key: decode_value(item) for key, item in value.items()}
    return value


def non_finite(number: float) -> str | None:
    """The string a NaN or an infinity is written as; None for a finite number."""
    if number != number:
        return "NaN"
    if number == math.inf:
        return "Infinity"
    if number == -math.inf:
        return "-Infinity"
    return None


def encode_value(node: Any, default: Callable[[Any], Any] | None = None) -> Any:
    """``node`` with every NaN and infinity made its string (:func:`non_finite`): nested
    values and float keys too. ``default`` makes other objects plain first (numpy values for
    ``log_results``); one it refuses (TypeError) is left for the JSON encoder to refuse.
    ValueError for a value that holds itself."""
    return _encode(node, default, set())


def _encode(node: Any, default: Callable[[Any], Any] | None, holders: set[int]) -> Any:
    if isinstance(node, float):
        return non_finite(node) or node
    if isinstance(node, (str, int)) or node is None:
        return node
    if id(node) in holders:
        raise ValueError("a value holds itself (a circular reference)")
    holders.add(id(node))
    try:
        if isinstance(node, dict):
            return {
                (_encode(key, default, holders) if isinstance(key, float) else key): _encode(
                    value, default, holders
                )
                for key, value in node.items()
            }
        if isinstance(node, (list, tuple)):
            return [_encode(item, default, holders) for item in node]
        if default is None:
            return node
        try:
            plain = default(node)
        except TypeError:
            return node  # the encoder refuses it, with this error
        return _encode(plain, default, holders)
    finally:
        holders.discard(id(node))
