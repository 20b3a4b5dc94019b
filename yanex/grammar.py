"""One value in Hydra's override grammar, typed as ``--param`` types it: ``0.01`` a float,
``true`` a bool, ``null`` None, ``'a, b'`` a string, ``[1, 2]`` a list.

Plain values (numbers, words, bools, null) are typed here exactly as Hydra's parser types
them, so that most values never import Hydra: its parser costs more to import than a run's
whole start (tests/test_grammar.py checks every accepted form against Hydra's own parser).
Everything else goes to Hydra's parser. Values deeper or larger than the limits are refused.

The config's overrides (``config.overrides``, which add keys and sweeps) and the readers'
``--where`` values (``query``) type values through this module; it imports neither.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from yanex.errors import ParamError

if TYPE_CHECKING:
    from hydra.core.override_parser.overrides_parser import OverridesParser

# Limits that turn hostile configs into clear errors instead of a crash or a full memory:
# how deep parameters may nest, and how many values a config may expand to (YAML aliases
# can make a small file expand to billions).
MAX_DEPTH = 100
MAX_VALUES = 1_000_000

# yanex's sweep functions: in the override grammar beside Hydra's (see ``config.sweeps``).
FUNCTIONS = ("list", "range", "linspace", "logspace")
NOT_WHOLE = "a sweep must be the whole value"

# The fast path reads what is certainly plain; anything it is unsure of (quotes, brackets,
# commas; interpolations; escapes and backslashes; whitespace; ``:`` and ``=`` in values;
# non-ASCII letters; an empty value) is declined, and Hydra's parser handles it. The fast path
# never changes a result, only skips an import.
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
# A call of one of yanex's own sweep functions (Hydra's parser here knows only Hydra's).
_YANEX_SWEEP = re.compile(rf"^\s*(?:{'|'.join(n for n in FUNCTIONS if n != 'range')})\s*\(")

QUOTE_HINT = "Quote a value with special characters: --param \"key='a value: with = signs'\"."


def plain_value(text: str) -> tuple[bool, Any]:
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


def clip(text: str, limit: int = 120) -> str:
    """User text cut to a length an error message can quote."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_plain(value: Any, shown: str) -> None:
    """Refuse values that are not plain data: a sweep nested inside a value, or a config
    deeper or larger than the limits (checked without recursion, aliases counted each time)."""
    stack = [(value, 0)]
    seen = 0
    while stack:
        node, depth = stack.pop()
        seen += 1
        if seen > MAX_VALUES:
            raise ParamError(f"{clip(shown)} expands to more than {MAX_VALUES:,} values")
        if depth > MAX_DEPTH:
            raise ParamError(f"{clip(shown)} nests more than {MAX_DEPTH} levels deep")
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
            stack.extend((k, depth + 1) for k in node)
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
        elif not (node is None or isinstance(node, (str, int, float, bool))):
            if hasattr(node, "list") or hasattr(node, "start"):  # a sweep inside a value
                raise ParamError(f"{clip(shown)}: {NOT_WHOLE}")
            raise ParamError(f"{clip(shown)}: {type(node).__name__} values are not supported")


def number_error(exc: ValueError, shown: str) -> ParamError:
    """A number longer than Python converts (4,300 digits); any other ValueError is a bug."""
    if "digits" not in str(exc):
        raise exc
    return ParamError(
        f"{clip(shown)}: the number has more digits than Python reads from text (4,300)",
        hint="Quote it to keep it as a string: key='123...'.",
    )


def grammar_error(exc: Exception, shown: str, hint: str | None = None) -> ParamError:
    """The parser's complaint as a ParamError, named by its first line."""
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return ParamError(f"{shown} cannot be parsed: {reason}", hint=hint)


_parser: OverridesParser | None = None


def _hydra_parser() -> OverridesParser:
    global _parser
    if _parser is None:
        from hydra.core.override_parser.overrides_parser import OverridesParser

        _parser = OverridesParser.create()
    return _parser


def parse_value(text: str, shown: str) -> Any:
    """One bare value typed by the override grammar, as ``--param`` types it: ``0.01`` float,
    ``true`` bool, ``null``, ``'a, b'`` string, ``[1, 2]`` list. Sweeps are not values here."""
    if not text.strip():
        return ""
    try:
        plain, typed = plain_value(text.strip())
    except ValueError as exc:
        raise number_error(exc, shown) from exc
    if plain:  # a number, bool, null or plain word: no need of Hydra's parser
        return typed
    if _YANEX_SWEEP.match(text):
        raise _not_one_value(shown)
    from hydra.core.override_parser.types import Override
    from hydra.errors import HydraException

    try:
        value = _hydra_parser().parse_rule(text.strip(), "value")
    except RecursionError as exc:
        raise ParamError(f"{clip(shown)} nests too deeply to be parsed") from exc
    except HydraException as exc:
        raise grammar_error(exc, shown, hint=QUOTE_HINT) from exc
    except ValueError as exc:
        raise number_error(exc, shown) from exc
    if hasattr(value, "list") or hasattr(value, "start"):  # a sweep: choice(...), a bare comma
        raise _not_one_value(shown)
    value = Override._convert_value(value)  # quoted strings become plain ones
    check_plain(value, shown)
    return value


def _not_one_value(shown: str) -> ParamError:
    return ParamError(
        f"{shown}: a value here is one value, not several",
        hint="Quote text that holds a comma: 'a, b'.",
    )


def top_level_items(text: str) -> list[str]:
    """``text`` split on its commas outside quotes, brackets and calls (Hydra's ``a,b``: a
    sweep; ``list(a, b)``, ``'a,b'`` and ``[a, b]`` are one item); a backslash keeps the
    character after it."""
    items: list[str] = []
    current: list[str] = []
    quote, depth, i = "", 0, 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            current.append(text[i : i + 2])
            i += 2
            continue
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            items.append("".join(current))
            current = []
            i += 1
            continue
        current.append(char)
        i += 1
    items.append("".join(current))
    return items
