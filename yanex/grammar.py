"""The plain forms of Hydra's override grammar, typed here exactly as Hydra's parser types them,
so that most runs never import Hydra (its parser costs more to import than a run's whole start).

Accepted, and nothing else: a key of letters, digits, ``_``, ``-``, ``$`` in dotted parts
(``model.lr``, ``layers.0``), with ``+``, ``++`` or ``~`` before it; and a value that is one
int (``3``, ``-1_000``), float (``1e-3``, ``.5``, ``inf``, ``nan``), bool (``true``, any case),
``null``, or a plain unquoted string (letters, digits and ``_ - / + . $ % * @ ? |``: a word, a
path, ``model-v2.1``). The rules are the lexer's (``hydra/grammar/OverrideLexer.g4``): a value
that is exactly one number, bool or null token is typed; any other run of those characters is
the text as written.

Everything else (quotes, brackets, braces, parentheses: lists, dicts, functions and sweeps;
commas; interpolations; escapes and backslashes; whitespace; ``:`` and ``=`` in values;
non-ASCII letters; an empty value; ``group/option`` and ``@package`` keys) is declined, and
Hydra's parser handles it as before. The fast path never changes a result, only skips an
import: tests/test_grammar.py checks every accepted form against Hydra's own parser.
"""

from __future__ import annotations

import re
from typing import Any

_SEGMENT = r"(?:[A-Za-z_$][A-Za-z0-9_$-]*|0|[1-9](?:_?[0-9])*)"
# A one-part key must start with a letter, ``_`` or ``$`` (the lexer has no bare-number key).
_KEY = re.compile(rf"[A-Za-z_$][A-Za-z0-9_$-]*(?:\.{_SEGMENT})*")

_INT_UNSIGNED = r"(?:0|[1-9](?:_?[0-9])*)"
_DIGITS = r"[0-9](?:_?[0-9])*"
_POINT_FLOAT = rf"(?:{_INT_UNSIGNED}\.|(?:{_INT_UNSIGNED})?\.{_DIGITS})"
_EXPONENT_FLOAT = rf"(?:(?:{_POINT_FLOAT}|{_INT_UNSIGNED})[eE][+-]?{_DIGITS})"
_INT = re.compile(rf"[+-]?{_INT_UNSIGNED}")
_FLOAT = re.compile(rf"[+-]?(?:{_EXPONENT_FLOAT}|{_POINT_FLOAT}|[Ii][Nn][Ff]|[Nn][Aa][Nn])")
_BOOLS = {"true": True, "false": False}
# Characters of IDs, numbers and the grammar's other unquoted characters, but no backslash
# (escapes), no whitespace, no ':' or '=' (separators inside values).
_PLAIN = re.compile(r"[A-Za-z0-9_\-/+.$%*@?|]+")


def value(text: str) -> tuple[bool, Any]:
    """``(True, value)`` when ``text`` is a plain value, typed as Hydra types it; else
    ``(False, None)``: Hydra's parser must read it."""
    if not _PLAIN.fullmatch(text):
        return False, None
    if _INT.fullmatch(text):
        return True, int(text)
    if _FLOAT.fullmatch(text):
        return True, float(text)
    lowered = text.lower()
    if lowered in _BOOLS:
        return True, _BOOLS[lowered]
    if lowered == "null":
        return True, None
    return True, text


def override(text: str) -> tuple[str, str, Any, bool] | None:
    """``(prefix, key, value, has_value)`` of a plain override (``+lr=0.1``, ``~layers.0``),
    or None when Hydra's parser must read it. ``prefix`` is "", "+", "++" or "~"."""
    prefix = "++" if text.startswith("++") else text[:1] if text[:1] in ("+", "~") else ""
    rest = text[len(prefix) :]
    key, sep, raw = rest.partition("=")
    if not _KEY.fullmatch(key):
        return None
    if not sep:
        return (prefix, key, None, False) if prefix == "~" else None
    raw = raw.lstrip(" \t")  # the grammar's '=' takes the whitespace after it
    plain, typed = value(raw)
    if not plain:
        return None
    return prefix, key, typed, True
