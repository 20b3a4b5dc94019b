"""Overrides as text and as typed values: ``model.lr=0.01`` parsed by Hydra's override
grammar into a :class:`ParamOverride`, and a value rendered back into text the grammar reads
as the same value.

- The plain forms (``lr=0.01``, ``+seed=3``, ``~data.noise``) are typed here exactly as Hydra's
  parser types them (:func:`plain_override`), so that most runs never import Hydra: its parser
  costs more to import than a run's whole start. Everything else goes to Hydra's parser, with
  yanex's sweep functions added to it (see ``sweeps``).
- ``3`` is an int, ``1e-3`` a float, ``true`` a bool, ``null`` None, ``[1, 2]`` a list; a
  quoted value stays a string. A bare comma is Hydra's ambiguous value: refused with Hydra's
  three fixes, and a sweep only with ``-m`` (Hydra's ``--multirun``).
- :func:`render_value` and :func:`quoted` write values back (replay text, a recorded
  command line, a ``yanex.launch`` config as overrides).

Imports only ``sweeps`` of the config package; Hydra's parser is imported when a value needs it.
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from yanex.config import sweeps
from yanex.dotted import nodes
from yanex.errors import ParamError
from yanex.grammar import (
    MAX_DEPTH,
    QUOTE_HINT,
    check_plain,
    clip,
    grammar_error,
    number_error,
    plain_value,
    top_level_items,
)

if TYPE_CHECKING:
    from hydra.core.override_parser.overrides_parser import OverridesParser

ENV_PREFIX = "YANEX_PARAM_"

Op = Literal["set", "add", "force_add", "delete"]
_PREFIXES: dict[str, str] = {"set": "", "add": "+", "force_add": "++", "delete": "~"}


@dataclass(frozen=True)
class ParamOverride:
    """One override, typed: ``op`` on dotted ``key`` with ``value``; ``text`` as given."""

    op: Op
    key: str
    value: Any
    has_value: bool
    text: str
    source: str  # where it came from, for messages: "--param" or "YANEX_PARAM_x"
    sweep: sweeps.Sweep | None = None  # set when the value is a sweep (list(...), range(...))
    package: str | None = None  # `group@package=option` (config groups only)
    drawn: bool = False  # the value was drawn at random (shuffle([...])): replay the value

    @property
    def prefix(self) -> str:
        """How the override's operation is written: ``""``, ``+``, ``++`` or ``~``."""
        return _PREFIXES[self.op]

    @property
    def target(self) -> str:
        """The key, with its package when one is given (``optimizer@second``)."""
        return f"{self.key}@{self.package}" if self.package else self.key

    @property
    def shown(self) -> str:
        """How messages name this override: ``--param 'x=1'`` or ``YANEX_PARAM_x: 'x=1'``."""
        return _shown(self.text, self.source)

    def concrete(self, value: Any) -> str:
        """This override with ``value`` (one of a sweep's), written to replay as it stands."""
        return f"{self.prefix}{self.target}={render_value(value)}"

    @property
    def replay_text(self) -> str:
        """The text that gives this override's value again: as typed, unless it was drawn."""
        return self.concrete(self.value) if self.drawn else self.text


# --- the fast path: the plain forms of the grammar, typed without Hydra ----------------------
#
# Accepted, and nothing else: a key of letters, digits, ``_``, ``-``, ``$`` in dotted parts
# (``model.lr``, ``layers.0``), with ``+``, ``++`` or ``~`` before it; and a value that is one
# int (``3``, ``-1_000``), float (``1e-3``, ``.5``, ``inf``, ``nan``), bool (``true``, any
# case), ``null``, or a plain unquoted string (letters, digits and ``_ - / + . $ % * @ ? |``: a
# word, a path, ``model-v2.1``). The rules are the lexer's (``hydra/grammar/OverrideLexer.g4``):
# a value that is exactly one number, bool or null token is typed; any other run of those
# characters is the text as written.
#
# Everything else (quotes, brackets, braces, parentheses: lists, dicts, functions and sweeps;
# commas; interpolations; escapes and backslashes; whitespace; ``:`` and ``=`` in values;
# non-ASCII letters; an empty value; ``group/option`` and ``@package`` keys) is declined, and
# Hydra's parser handles it. The fast path never changes a result, only skips an import:
# tests/test_grammar.py checks every accepted form against Hydra's own parser.

_SEGMENT = r"(?:[A-Za-z_$][A-Za-z0-9_$-]*|0|[1-9](?:_?[0-9])*)"
# A one-part key must start with a letter, ``_`` or ``$`` (the lexer has no bare-number key).
_KEY = re.compile(rf"[A-Za-z_$][A-Za-z0-9_$-]*(?:\.{_SEGMENT})*")


def plain_override(text: str) -> tuple[str, str, Any, bool] | None:
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
    plain, typed = plain_value(raw)
    if not plain:
        return None
    return prefix, key, typed, True


# --- Hydra's parser -------------------------------------------------------------------------

_parser: OverridesParser | None = None


def _get_parser() -> OverridesParser:
    global _parser
    if _parser is None:
        from hydra.core.override_parser.overrides_parser import OverridesParser

        parser = OverridesParser.create()
        sweeps.install(parser)
        _parser = parser
    return _parser


def _shown(text: str, source: str) -> str:
    return f"{source} {text!r}" if source == "--param" else f"{source}: {text!r}"


def _grammar_error(exc: Exception, shown: str, hint: str | None = None) -> ParamError:
    """The parser's complaint as a ParamError: a bad sweep says why, anything else is a
    syntax error named by its first line."""
    if isinstance(exc.__cause__, sweeps.SweepValueError):
        return ParamError(f"{shown}: {exc.__cause__}")
    return grammar_error(exc, shown, hint=hint)


# A shuffle of a plain list is a value drawn at random: it is recorded as the value drawn.
_SHUFFLE_CALL = re.compile(r"\bshuffle\s*\(")


def parse_override(
    text: str, source: str = "--param", groups: bool = False, multirun: bool = False
) -> ParamOverride:
    """Parse ``KEY=VALUE``, ``+KEY=VALUE``, ``++KEY=VALUE``, ``~KEY`` or ``~KEY=VALUE``
    (and, with ``groups``, Hydra's ``group/sub=option`` and ``group@package=option``).

    ``multirun`` reads a bare comma list as a sweep, as Hydra's ``--multirun`` does; without
    it a bare comma is ambiguous and refused with Hydra's three fixes.

    The plain forms (``lr=0.01``, ``+seed=3``, ``~data.noise``) are typed by
    :func:`plain_override` without importing Hydra; everything else by Hydra's parser."""
    shown = _shown(text, source)
    if "=" not in text and not text.startswith("~"):
        raise ParamError(f"{shown} is neither KEY=VALUE nor ~KEY", hint="Example: --param lr=0.01")
    if "\x00" in text:
        raise ParamError(f"{shown} contains a NUL byte")
    try:
        plain = plain_override(text)
    except ValueError as exc:
        raise number_error(exc, shown) from exc
    if plain is not None:
        prefix, key, value, has_value = plain
        if key.count(".") >= MAX_DEPTH:
            raise ParamError(f"{clip(shown)}: the key nests more than {MAX_DEPTH} levels deep")
        op = next(op for op, spelled in _PREFIXES.items() if spelled == prefix)
        return ParamOverride(op, key, value, has_value, text, source)
    from hydra.core.override_parser.types import OverrideType, ValueType
    from hydra.errors import HydraException

    try:
        override = _get_parser().parse_override(text)
    except RecursionError as exc:
        raise ParamError(f"{clip(shown)} nests too deeply to be parsed") from exc
    except HydraException as exc:
        raise _grammar_error(exc, shown, hint=QUOTE_HINT) from exc
    except ValueError as exc:
        raise number_error(exc, shown) from exc

    key = override.key_or_group
    if not key:
        raise ParamError(f"{shown} has no key before '='")
    if key.count(".") >= MAX_DEPTH:
        raise ParamError(f"{clip(shown)}: the key nests more than {MAX_DEPTH} levels deep")
    if override.package is not None and not groups:
        raise ParamError(
            f"{shown}: 'group@package' overrides need a Hydra conf/ folder",
            hint="Use a dotted key instead: --param model.width=128",
        )
    if "/" in key and not groups:
        raise ParamError(
            f"{shown}: 'group/option' keys need a Hydra conf/ folder",
            hint="Use a dotted key instead: --param model.width=128",
        )

    op: Op = {
        OverrideType.CHANGE: "set",
        OverrideType.ADD: "add",
        OverrideType.FORCE_ADD: "force_add",
        OverrideType.DEL: "delete",
    }[override.type]
    kind = override.value_type
    value_text = text.split("=", 1)[1] if "=" in text else ""
    value: Any = None
    sweep: sweeps.Sweep | None = None
    drawn = False
    if kind is None or kind == ValueType.ELEMENT:
        value = override.value()
        check_plain(value, shown)
        drawn = bool(_SHUFFLE_CALL.search(value_text))
    elif op == "delete":
        raise ParamError(
            f"{shown}: a sweep cannot say what to remove",
            hint=f"~{key} removes the key; ~{key}=VALUE removes it only when it holds VALUE.",
        )
    elif kind == ValueType.INTERVAL_SWEEP:
        raise _interval_error(shown)
    elif kind == ValueType.GLOB_CHOICE_SWEEP:
        if not groups:
            raise ParamError(
                f"{shown}: glob() selects options of a config group (a Hydra conf/ folder); "
                "it is not a grid sweep over values",
                hint="Give the values: list(a, b).",
            )
        found = override.value()
        sweep = sweeps.Sweep(
            expr=value_text.strip(),
            values=(),
            glob=(tuple(found.include), tuple(found.exclude)),  # type: ignore[union-attr]
        )
    elif kind == ValueType.SIMPLE_CHOICE_SWEEP and not multirun and _top_level_comma(value_text):
        raise _ambiguous(text, value_text, source)
    else:
        sweep = _sweep_of(override.value(), value_text.strip(), shown)
    return ParamOverride(
        op=op,
        key=key,
        value=value,
        has_value=kind is not None,
        text=text,
        source=source,
        sweep=sweep,
        package=override.package,
        drawn=drawn,
    )


def _interval_error(shown: str) -> ParamError:
    return ParamError(
        f"{shown}: interval() is a continuous range for a sweeper that samples it "
        "(Hydra's Optuna or Nevergrad plugins), not a grid sweep",
        hint="Give a grid its values: linspace(0, 1, 5), range(0, 1, 0.25) or list(...).",
    )


def _sweep_of(found: Any, expr: str, shown: str) -> sweeps.Sweep:
    """A parsed sweep's values, in Hydra's meaning: a choice's as listed (quoted strings
    made plain), a range's counted and computed exactly, a shuffle drawn from the seed."""
    from hydra.core.override_parser.types import Override, RangeSweep

    if isinstance(found, RangeSweep):
        try:
            values = sweeps.sweep_range(found.start, found.stop, found.step)
        except sweeps.SweepValueError as exc:
            raise ParamError(f"{shown}: {exc}") from exc
    else:
        values = tuple(Override._convert_value(item) for item in found.list)
    if not values:
        raise ParamError(f"{shown}: {expr} has no values")
    for item in values:
        check_plain(item, shown)
    return sweeps.shuffle_sweep(sweeps.Sweep(expr=expr, values=values, shuffle=found.shuffle))


def _top_level_comma(text: str) -> bool:
    """Does ``text`` hold a comma outside brackets, quotes and calls (Hydra's ``a,b``)?"""
    return len(top_level_items(text)) > 1


def _spelled(text: str, source: str) -> str:
    """An override as the user would type it again, from where it came."""
    if source.startswith(ENV_PREFIX):
        value = text.split("=", 1)[1]
        return f"{source}={_shell(value)}"
    return f"--param {_shell(text)}"


def _shell(text: str) -> str:
    if not any(char in text for char in '"$`\\!'):
        return f'"{text}"'
    return shlex.quote(text)


def _ambiguous(text: str, value_text: str, source: str) -> ParamError:
    """Hydra's "Ambiguous value" with its three fixes, spelled for yanex."""
    key_text = text.split("=", 1)[0]
    value = value_text.strip()
    fixes = [
        ("a string", f"{key_text}={quoted(value)}"),
        ("a list", f"{key_text}=[{value}]"),
        ("a sweep", f"{key_text}=list({value})"),
    ]
    lines = [f"  {what + ':':<10} {_spelled(fix, source)}" for what, fix in fixes]
    return ParamError(
        f"{_shown(text, source)} is ambiguous: a bare comma could make a string, a list or a sweep",
        hint="Write it as\n"
        + "\n".join(lines)
        + "\n(a sweep runs with -m, or is staged with --stage; -m also reads a bare comma list "
        "as a sweep, as Hydra's --multirun does and yanex 0.6 did without it)",
    )


def render_value(value: Any) -> str:
    """A Python value as override text that Hydra's grammar reads back as the same value and
    type: ``null``, ``true``, ``0.1``, ``adam``, ``'two words'``, ``[1, 'a b']``, ``{a: 1}``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _render_text(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(render_value(item) for item in value) + "]"
    if isinstance(value, Mapping):
        items = (f"{_render_key(k)}: {render_value(v)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    raise ParamError(f"{type(value).__name__} values cannot be parameters: {clip(repr(value))}")


# Text the grammar reads back as this very string when unquoted; words it types otherwise.
_PLAIN_TEXT = re.compile(r"[A-Za-z_/][A-Za-z0-9_\-./]*\Z")
_KEYWORDS = {"true", "false", "null", "nan", "inf"}


def _render_text(text: str) -> str:
    if _PLAIN_TEXT.match(text) and text.lower() not in _KEYWORDS:
        return text
    return quoted(text)


def quoted(text: str) -> str:
    """``text`` single-quoted as Hydra's grammar reads it back (Hydra's own escaping: a
    backslash is itself except before a quote)."""
    from hydra.core.override_parser.types import Quote, QuotedString

    return QuotedString(text=text, quote=Quote.single).with_quotes()


def _render_key(key: Any) -> str:
    """A dict key as the grammar reads it: unquoted, special characters escaped. Keys are
    typed there (``1`` is an int key): a string key that would read as another type, or a
    character keys cannot hold, is refused rather than changed."""
    if key is None or isinstance(key, (bool, int, float)):
        return render_value(key)
    from hydra._internal.grammar.utils import escape_special_characters
    from hydra.errors import HydraException

    text = escape_special_characters(str(key))
    try:
        read = _get_parser().parse_rule(text, "dictKey")
    except HydraException:
        read = None
    if read != key or not isinstance(read, str):
        raise ParamError(
            f"the key {key!r} cannot be written in override syntax (the grammar would read "
            f"{'it as ' + repr(read) if read is not None else 'no key'})"
        )
    return text


def config_sweep(text: str, key: str, where: str) -> sweeps.Sweep | None:
    """The sweep an unquoted config string holds: one call of a grammar function that the
    grammar reads as a sweep (``choice(a, b)``, ``int(range(3))``, ``sort(range(5))``), typed as
    Hydra types it. None for a call that is no sweep (``int(3.7)``, ``sort([3, 1])``): a config
    value is not override text, so it stays the string as written, as Hydra leaves it. A call
    the grammar cannot read is refused: yanex cannot tell a sweep from a string, and asks."""
    from hydra.core.override_parser.types import ChoiceSweep, Glob, IntervalSweep, RangeSweep

    shown = f"{where}: '{key}: {text}'"
    found = _read_call(
        text, shown, hint=f"To keep it as a string, quote it: {key}: {_yaml_quoted(text)}"
    )
    if isinstance(found, IntervalSweep):
        raise _interval_error(shown)
    if isinstance(found, Glob):
        raise ParamError(
            f"{shown}: glob() selects options of a config group, which a config value cannot "
            "select",
            hint=f"Sweep a group's options with an override: GROUP={text.strip()}",
        )
    if isinstance(found, (ChoiceSweep, RangeSweep)):
        return _sweep_of(found, text.strip(), shown)
    return None


def is_sweep_text(text: str) -> bool:
    """Is a ``yanex.launch`` string (a config value) a sweep: one sweep resolver call
    (``${list:1,2}``), or one call of a grammar function that the grammar reads as a sweep
    (``choice(a, b)``, ``glob(*)``)? Such a string is given on as override text; any other
    stays the string as given. A call the grammar cannot read is refused."""
    from hydra.core.override_parser.types import Glob, Sweep

    if sweeps.is_resolver_sweep(text):
        return True
    if not sweeps.is_call(text):
        return False
    with sweeps.drawing(0):  # reading shuffle([...]) draws; nothing of it is kept
        found = _read_call(
            text,
            f"the string {text!r}",
            hint="A string that is one call of a sweep function is a sweep: write one the "
            "grammar reads, e.g. list(1, 2) or choice(a, b).",
        )
    return isinstance(found, (Sweep, Glob))


def _read_call(text: str, shown: str, hint: str) -> Any:
    """Hydra's reading of one function call as a value: a sweep, a glob or a plain value."""
    from hydra.errors import HydraException

    try:
        return _get_parser().parse_rule(text.strip(), "value")
    except RecursionError as exc:
        raise ParamError(f"{clip(shown)} nests too deeply to be parsed") from exc
    except HydraException as exc:
        raise _grammar_error(exc, shown, hint=hint) from exc
    except ValueError as exc:
        raise number_error(exc, shown) from exc


def _yaml_quoted(text: str) -> str:
    """``text`` as a single-quoted YAML string (a quote inside is doubled)."""
    return "'" + text.replace("'", "''") + "'"


def env_override_texts(environ: Mapping[str, str]) -> list[tuple[str, str]]:
    """``YANEX_PARAM_model__lr=0.1`` -> ``("YANEX_PARAM_model__lr", "model.lr=0.1")``, by name."""
    texts = []
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX):
            continue
        key = name[len(ENV_PREFIX) :].replace("__", ".")
        if not key:
            raise ParamError(
                f"environment variable {name} names no parameter",
                hint="Write YANEX_PARAM_<key>=<value>, e.g. YANEX_PARAM_model__lr=0.01",
            )
        texts.append((name, f"{key}={environ[name]}"))
    return texts


# --- the keys overrides name ----------------------------------------------------------------


def dotted_keys(node: Any) -> list[str]:
    """Every key of a plain config, dotted (``model``, ``model.lr``): what overrides name."""
    return [path for path, _ in nodes(node)]


def close_key(key: str, known: list[str]) -> str | None:
    """The known key a typo most likely meant (``model.lrr`` -> ``model.lr``), if any."""
    import difflib

    close = difflib.get_close_matches(key, [k for k in known if k != key], n=1, cutoff=0.8)
    return close[0] if close else None


def suggest(key: str, known: list[str]) -> str:
    """``"; did you mean model.lr?"`` when a known key is close to ``key``, else ``""``."""
    close = close_key(key, known)
    return f"; did you mean {close}?" if close else ""
