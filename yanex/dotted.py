"""Dotted keys of nested values (``model.lr``, ``layers.0``): walking down one, and listing
them all, the same way for the script API, the readers and the CLI.

Standard library only and nothing imported at module level: the script API uses it.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing itself costs more to import than this module
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any


def lookup(node: Any, key: str, default: Any = None) -> Any:
    """The value at dotted ``key`` (``model.lr``; ``layers.0`` and ``layers.-1`` index a
    list), else ``default``."""
    for part in key.split("."):
        if _is_mapping(node) and part in node:
            node = node[part]
        elif isinstance(node, list) and (index := list_index(part, len(node))) is not None:
            node = node[index]
        else:
            return default
    return node


def list_index(part: str, length: int) -> int | None:
    """``part`` as an index of a list of ``length`` items ("0", "-1"), else None."""
    digits = part[1:] if part.startswith("-") else part
    if not (digits.isascii() and digits.isdigit()):
        return None  # "--1", "+1", "\u00b2": not an index, so not a key
    index = int(part)
    return index if -length <= index < length else None


def leaves(node: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """The dotted keys of a nested dict and their values (``model.lr``), in order; lists and
    empty dicts are single values. Without recursion: any depth JSON holds is walked. A list,
    not a generator: the index's build and ``to_dataframe`` walk millions of them, and a
    generator's resumption costs more than the walk."""
    if not (isinstance(node, dict) and node):
        return [(prefix, node)] if prefix else []
    found: list[tuple[str, Any]] = []
    append = found.append
    stack = [(prefix, iter(node.items()))]
    while stack:
        base, items = stack[-1]
        for key, value in items:
            name = f"{base}.{key}" if base else str(key)
            if value and isinstance(value, dict):
                stack.append((name, iter(value.items())))
                break
            append((name, value))
        else:
            stack.pop()
    return found


def nodes(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every dotted key of a nested dict with its value, a dict's own key before its keys
    (``model``, ``model.lr``): what an override may name."""
    if isinstance(node, dict):
        for key, value in node.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            yield path, value
            yield from nodes(value, path)


def _is_mapping(obj: object) -> bool:
    """``isinstance(obj, Mapping)``, with collections.abc imported only for a non-dict."""
    if isinstance(obj, dict):
        return True
    from collections.abc import Mapping

    return isinstance(obj, Mapping)
