"""Parameter resolution, as one pipeline: where the config comes from, the overrides parsed
by Hydra's grammar, the config composed, and the grid of its members.

1. :func:`find_source`: a rerun's recorded parameters; else a ``@hydra.main`` app's own tree;
   else ``--config`` files (merged in order; one whose defaults list names groups is a Hydra
   tree); else ``--config-dir``; else a ``conf/`` tree next to the script, then in the current
   folder; else ``config.yaml`` there; else nothing.
2. :func:`parse_override` types ``YANEX_PARAM_*`` then ``--param`` values with Hydra's
   override parser: ``3`` int, ``1e-3`` float, ``true`` bool, ``null``, ``[1, 2]`` list, a
   quoted value stays a string. A bare comma is Hydra's ambiguous value: refused with
   Hydra's three fixes, and a sweep only with ``-m`` (Hydra's ``--multirun``).
3. The composition: a Hydra tree in ``groups`` (Hydra's Compose API and rules), a plain config
   here (OmegaConf merges; a new key is allowed, as the script's own defaults are the lowest
   layer, but one close to an existing key gets a "did you mean" warning). With no config
   found, the lowest layer is all there is: ``key=value`` must name a key the script reads
   (its ``get_param("key", ...)`` calls, read from its source), else it is refused.
4. ``sweeps`` finds the sweeps and makes the grid; each member's config is resolved here
   (:func:`to_container`): ``???`` stays missing, keys become the strings JSON holds.

OmegaConf and the parser are imported inside the functions that need them: a run with no
config and no parameters pays for neither.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import shlex
import stat
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from yanex import sweeps
from yanex.errors import ParamError

if TYPE_CHECKING:
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import DictConfig

    from yanex.hydra_app import HydraApp

ENV_PREFIX = "YANEX_PARAM_"
DEFAULT_CONFIG = "config.yaml"
DEFAULT_DIR = "conf"
# A fixed order for shuffle() sweeps (by default each grid draws its own seed, recorded).
SHUFFLE_SEED_ENV = "YANEX_SHUFFLE_SEED"
# How Hydra writes a missing value.
MISSING = "???"

# Limits that turn hostile configs into clear errors instead of a crash or a full memory:
# how deep parameters may nest, and how many values a config may expand to (YAML aliases
# can make a small file expand to billions).
MAX_DEPTH = 100
MAX_VALUES = 1_000_000
# The largest config file yanex reads, refused from its size before it is read. Real configs
# are kilobytes; YAML is parsed in pure Python, at about 30 s and 150 MB of memory per MB of
# file, so a 35 MB file would take many minutes and gigabytes to refuse.
MAX_CONFIG_BYTES = 2_000_000

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


@dataclass(frozen=True)
class Source:
    """Where a run's config comes from (the first step of the pipeline); all empty: none."""

    files: tuple[Path, ...] = ()  # plain YAML files, merged in order
    tree: Path | None = None  # a Hydra config folder
    name: str | None = None  # its primary config; None composes from groups alone
    base: dict[str, Any] | None = None  # a rerun's recorded parameters
    app: HydraApp | None = None  # a @hydra.main app: the tree is the app's own

    @property
    def composed(self) -> bool:
        """Is the config composed by Hydra (a tree, or a @hydra.main app without one)?"""
        return self.tree is not None or self.app is not None

    @property
    def found(self) -> bool:
        return bool(self.files) or self.composed or self.base is not None


@dataclass
class ResolvedParams:
    """The merged parameters of a run, as a grid whose members are not made yet, and where
    they came from."""

    grid: sweeps.Grid
    source: Source = field(default_factory=Source)
    parsed: list[ParamOverride] = field(default_factory=list)  # in the order applied
    warnings: list[str] = field(default_factory=list)  # said on stderr, kept in metadata
    shuffle_seed: int | None = None  # the seed shuffle() drew from, when it was used
    compositions: list[list[str]] = field(default_factory=list)  # a tree's, the overrides each
    _read: set[Path] | None = None

    @property
    def config_roots(self) -> list[Path]:
        """Where the run's config files are: the plain files, and the tree's folder."""
        tree = [self.source.tree.resolve()] if self.source.tree is not None else []
        return [*(path.resolve() for path in self.source.files), *tree]

    def reads(self, path: Path) -> bool:
        """Does this run read ``path`` (a file under :attr:`config_roots`)? For a tree, Hydra
        is asked which files its defaults lists read (once, and only when asked)."""
        from yanex import groups

        if self._read is None:
            self._read = {p.resolve() for p in self.source.files}
            self._read |= groups.files_read(self.source, self.compositions)
        return path.resolve() in self._read

    @property
    def config_dir(self) -> Path | None:
        return self.source.tree.resolve() if self.source.tree is not None else None

    @property
    def config_file(self) -> str | list[str] | None:
        """The --config file(s) as metadata records them: one path, or the list merged."""
        files = [str(path.resolve()) for path in self.source.files]
        if not files:
            return None
        return files[0] if len(files) == 1 else files


# --- the grammar: Hydra's override parser -------------------------------------------------

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


def _clip(text: str, limit: int = 120) -> str:
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
            raise ParamError(f"{_clip(shown)} expands to more than {MAX_VALUES:,} values")
        if depth > MAX_DEPTH:
            raise ParamError(f"{_clip(shown)} nests more than {MAX_DEPTH} levels deep")
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
            stack.extend((k, depth + 1) for k in node)
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
        elif not (node is None or isinstance(node, (str, int, float, bool))):
            if hasattr(node, "list") or hasattr(node, "start"):  # a sweep inside a value
                raise ParamError(f"{_clip(shown)}: {sweeps.NOT_WHOLE}")
            raise ParamError(f"{_clip(shown)}: {type(node).__name__} values are not supported")


def _number_error(exc: ValueError, shown: str) -> ParamError:
    """A number longer than Python converts (4,300 digits); any other ValueError is a bug."""
    if "digits" not in str(exc):
        raise exc
    return ParamError(
        f"{_clip(shown)}: the number has more digits than Python reads from text (4,300)",
        hint="Quote it to keep it as a string: key='123...'.",
    )


def _grammar_error(exc: Exception, shown: str, hint: str | None = None) -> ParamError:
    """The parser's complaint as a ParamError: a bad sweep says why, anything else is a
    syntax error named by its first line."""
    if isinstance(exc.__cause__, sweeps.SweepValueError):
        return ParamError(f"{shown}: {exc.__cause__}")
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return ParamError(f"{shown} cannot be parsed: {reason}", hint=hint)


_QUOTE_HINT = "Quote a value with special characters: --param \"key='a value: with = signs'\"."
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
    :mod:`yanex.grammar` without importing Hydra; everything else by Hydra's parser."""
    shown = _shown(text, source)
    if "=" not in text and not text.startswith("~"):
        raise ParamError(f"{shown} is neither KEY=VALUE nor ~KEY", hint="Example: --param lr=0.01")
    if "\x00" in text:
        raise ParamError(f"{shown} contains a NUL byte")
    from yanex import grammar

    try:
        plain = grammar.override(text)
    except ValueError as exc:
        raise _number_error(exc, shown) from exc
    if plain is not None:
        prefix, key, value, has_value = plain
        if key.count(".") >= MAX_DEPTH:
            raise ParamError(f"{_clip(shown)}: the key nests more than {MAX_DEPTH} levels deep")
        op = next(op for op, spelled in _PREFIXES.items() if spelled == prefix)
        return ParamOverride(op, key, value, has_value, text, source)
    from hydra.core.override_parser.types import OverrideType, ValueType
    from hydra.errors import HydraException

    try:
        override = _get_parser().parse_override(text)
    except RecursionError as exc:
        raise ParamError(f"{_clip(shown)} nests too deeply to be parsed") from exc
    except HydraException as exc:
        raise _grammar_error(exc, shown, hint=_QUOTE_HINT) from exc
    except ValueError as exc:
        raise _number_error(exc, shown) from exc

    key = override.key_or_group
    if not key:
        raise ParamError(f"{shown} has no key before '='")
    if key.count(".") >= MAX_DEPTH:
        raise ParamError(f"{_clip(shown)}: the key nests more than {MAX_DEPTH} levels deep")
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
        raise ParamError(
            f"{shown}: interval() is a continuous range for a sweeper that samples it "
            "(Hydra's Optuna or Nevergrad plugins), not a grid sweep",
            hint="Give a grid its values: linspace(0, 1, 5), range(0, 1, 0.25) or list(...).",
        )
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
    depth, quote, i = 0, "", 0
    while i < len(text):
        char = text[i]
        if char == "\\":
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
            return True
        i += 1
    return False


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
        ("a string", f"{key_text}={_quoted(value)}"),
        ("a list", f"{key_text}=[{value}]"),
        ("a sweep", f"{key_text}=list({value})"),
    ]
    lines = [f"  {what + ':':<10} {_spelled(fix, source)}" for what, fix in fixes]
    return ParamError(
        f"{_shown(text, source)} is ambiguous: a bare comma could make a string, a list or a sweep",
        hint="Write it as\n"
        + "\n".join(lines)
        + "\n(a sweep runs with -m, or is staged with --stage; -m also reads a bare comma list "
        "as a sweep, as Hydra's --multirun does)",
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
    raise ParamError(f"{type(value).__name__} values cannot be parameters: {_clip(repr(value))}")


# Text the grammar reads back as this very string when unquoted; words it types otherwise.
_PLAIN_TEXT = re.compile(r"^[A-Za-z_/][A-Za-z0-9_\-./]*$")
_KEYWORDS = {"true", "false", "null", "nan", "inf"}


def _render_text(text: str) -> str:
    if _PLAIN_TEXT.match(text) and text.lower() not in _KEYWORDS:
        return text
    return _quoted(text)


def _quoted(text: str) -> str:
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


def parse_sweep_text(text: str, shown: str) -> sweeps.Sweep:
    """A sweep written as plain text in a config (``linspace(0.001, 0.1, 5)``), by the grammar."""
    from hydra.core.override_parser.types import ChoiceSweep, RangeSweep
    from hydra.errors import HydraException

    try:
        parsed = _get_parser().parse_rule(text.strip(), "value")
    except HydraException as exc:
        raise _grammar_error(exc, shown) from exc
    if not isinstance(parsed, (ChoiceSweep, RangeSweep)):
        raise ParamError(f"{shown} is not a sweep with values")
    return _sweep_of(parsed, text.strip(), shown)


def parse_value(text: str, shown: str) -> Any:
    """One bare value typed by the override grammar, as ``--param`` types it: ``0.01`` float,
    ``true`` bool, ``null``, ``'a, b'`` string, ``[1, 2]`` list. Sweeps are not values here."""
    if not text.strip():
        return ""
    from yanex import grammar

    try:
        plain, typed = grammar.value(text.strip())
    except ValueError as exc:
        raise _number_error(exc, shown) from exc
    if plain:  # a number, bool, null or plain word: no need of Hydra's parser
        return typed
    from hydra.core.override_parser.types import Override
    from hydra.errors import HydraException

    try:
        value = _get_parser().parse_rule(text.strip(), "value")
    except RecursionError as exc:
        raise ParamError(f"{_clip(shown)} nests too deeply to be parsed") from exc
    except HydraException as exc:
        raise _grammar_error(exc, shown, hint=_QUOTE_HINT) from exc
    except ValueError as exc:
        raise _number_error(exc, shown) from exc
    if hasattr(value, "list") or hasattr(value, "start"):  # a sweep: list(...), a bare comma
        raise ParamError(
            f"{shown}: a value here is one value, not several",
            hint="Quote text that holds a comma: 'a, b'.",
        )
    value = Override._convert_value(value)  # quoted strings become plain ones
    check_plain(value, shown)
    return value


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


def parse_env(environ: Mapping[str, str]) -> list[ParamOverride]:
    return [parse_override(text, source=name) for name, text in env_override_texts(environ)]


# --- 1. where the config comes from ----------------------------------------------------------


def find_source(
    *,
    cwd: Path,
    script: Path | None = None,
    config_paths: Sequence[Path] = (),
    config_dir: Path | None = None,
    config_name: str | None = None,
    base: Mapping[str, Any] | None = None,
) -> Source:
    """Where the config comes from, found as Hydra finds it (paths are absolute or relative
    to ``cwd``): the same config whichever folder ``yanex run`` is started from."""
    from yanex import groups, hydra_app

    if base is not None:
        return Source(base=dict(base))
    config_paths = [_absolute(path, cwd) for path in config_paths]
    config_dir = _absolute(config_dir, cwd) if config_dir is not None else None
    script = _absolute(script, cwd) if script is not None else None
    app = hydra_app.find(script) if script is not None else None
    if app is not None:
        hydra_app.require_known(app, config_dir, config_name)
        if config_paths:
            raise ParamError(
                f"{script.name} is a @hydra.main app, which composes its own config; "  # type: ignore[union-attr]
                "--config does not apply to it",
                hint="Choose another of its configs with --config-dir DIR / --config-name NAME.",
            )
        tree = config_dir or app.config_dir
        name = config_name if config_name is not None else app.config_name
        if tree is not None and not tree.is_dir():
            raise ParamError(
                f"the config folder of {app.script.name} is not found: {tree}",
                hint="Its @hydra.main config_path is relative to the script's folder.",
            )
        return Source(tree=tree, name=name, app=app)
    if config_paths:
        if config_dir is not None or config_name is not None:
            raise ParamError(
                "--config names YAML files; it cannot be combined with --config-dir or "
                "--config-name"
            )
        primaries = [path for path in config_paths if is_primary_config(path)]
        if primaries and len(config_paths) > 1:
            raise ParamError(
                f"{primaries[0]} has a defaults list, so Hydra composes it; it cannot be "
                "merged with another --config",
                hint=f"Give it alone: --config {primaries[0]}, with --param overrides.",
            )
        if primaries:
            return Source(tree=primaries[0].parent, name=primaries[0].stem)
        return Source(files=tuple(config_paths))
    if config_dir is not None:
        if not config_dir.is_dir():
            raise ParamError(f"config folder not found: {config_dir}")
        return Source(tree=config_dir, name=groups.primary_name(config_dir, config_name))
    folders = list(dict.fromkeys([*([script.parent] if script else []), cwd]))
    for folder in folders:
        tree = folder / DEFAULT_DIR
        if groups.is_tree(tree, config_name):
            return Source(tree=tree, name=groups.primary_name(tree, config_name))
    if config_name is not None:
        where = " or ".join(str(folder / DEFAULT_DIR) for folder in folders)
        raise ParamError(
            f"no {config_name}.yaml in {where}",
            hint="--config-name names the primary config of a conf/ folder (or of --config-dir).",
        )
    for folder in folders:
        if (folder / DEFAULT_CONFIG).exists():  # a FIFO there is refused when it is read
            return Source(files=(folder / DEFAULT_CONFIG,))
    return Source()


def is_primary_config(path: Path) -> bool:
    """Does this YAML file have a Hydra defaults list (``- model: small``, ``- _self_``)
    naming something of its folder, so that it is composed, not loaded flat?"""
    import yaml

    check_config_file(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError, OSError):
        return False  # loading it as a plain file says what is wrong with it
    defaults = data.get("defaults") if isinstance(data, dict) else None
    if not isinstance(defaults, list) or not defaults:
        return False
    folder = path.parent
    for item in defaults:
        if item == "_self_":
            return True
        if isinstance(item, str):
            name = item.split("@", 1)[0].lstrip("/")
        elif isinstance(item, dict) and len(item) == 1:
            name = str(next(iter(item))).split("@", 1)[0].split()[-1].lstrip("/")
        else:
            return False
        if (folder / name).is_dir() or (folder / f"{name}.yaml").exists():
            return True
    return False


def _absolute(path: Path, cwd: Path) -> Path:
    return path if path.is_absolute() else cwd / path


# --- 2. config files -------------------------------------------------------------------------


_FILE_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
)


def check_config_file(path: Path) -> None:
    """Refuse what is not a config file before opening it: reading a FIFO can block forever,
    a device never ends, and parsing a huge file takes minutes and gigabytes."""
    try:
        info = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        raise ParamError(
            f"config file not found: {path}", hint="Give an existing file to --config."
        ) from None
    except OSError as exc:
        raise ParamError(f"config file {path} cannot be read: {exc.strerror}") from exc
    if not stat.S_ISREG(info.st_mode):
        kind = next((name for test, name in _FILE_KINDS if test(info.st_mode)), "a special file")
        raise ParamError(f"config file {path} is {kind}, not a file")
    if info.st_size > MAX_CONFIG_BYTES:
        raise ParamError(
            f"config file {path} is {info.st_size / 1e6:.1f} MB ({info.st_size:,} bytes); "
            f"a config file may be at most {MAX_CONFIG_BYTES / 1e6:g} MB",
            hint="Keep data out of the config: save it in a file and give its path as a value.",
        )


def check_config_tree(config_dir: Path) -> None:
    """Check every YAML file of a Hydra tree as :func:`check_config_file` does, before Hydra
    reads any of them (folders linked into the tree are not followed)."""
    for folder, _, names in os.walk(config_dir):
        for name in sorted(names):
            path = Path(folder, name)
            if name.endswith((".yaml", ".yml")) and path.exists():  # a broken link is no config
                check_config_file(path)


def load_config_file(path: Path) -> DictConfig:
    """Load a YAML config file whose top level is a mapping (an empty file is ``{}``)."""
    import yaml
    from omegaconf import DictConfig, OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    check_config_file(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ParamError(f"config file {path} is not UTF-8 text") from exc
    except OSError as exc:
        raise ParamError(f"config file {path} cannot be read: {exc.strerror}") from exc
    if "\x00" in text:
        raise ParamError(f"config file {path} contains a NUL byte; it is not a YAML file")
    try:
        # OmegaConf's own YAML loader (1e-3 is a float, duplicate keys are errors), then a
        # check of the top level: OmegaConf.create("text") would make it a key.
        data = yaml.load(text, Loader=_yaml_loader())
    except RecursionError as exc:
        raise ParamError(f"config file {path} nests too deeply to be read") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ParamError(f"config file {path} is not valid YAML{where}: {problem}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ParamError(
            f"config file {path} must hold a mapping of names to values at its top level, "
            f"not a {type(data).__name__}"
        )
    check_plain(data, f"config file {path}")
    try:
        cfg = OmegaConf.create(data)
    except (OmegaConfBaseException, ValueError, TypeError) as exc:
        raise ParamError(f"config file {path} cannot be loaded: {exc}".splitlines()[0]) from exc
    assert isinstance(cfg, DictConfig)
    return cfg


def _yaml_loader() -> Any:
    """OmegaConf's YAML loader (1e-3 is a float, duplicate keys are errors), which also
    refuses two keys that Python takes for one (``1`` and ``true``, ``1`` and ``1.0``): one
    would be lost without a word."""
    import yaml

    try:
        from omegaconf._utils import get_yaml_loader  # private, stable across omegaconf 2.x

        base = get_yaml_loader()
    except ImportError:  # pragma: no cover - a future omegaconf without it
        base = yaml.SafeLoader

    class Loader(base):  # type: ignore[misc, valid-type]
        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            mapping = super().construct_mapping(node, deep=deep)
            seen: dict[Any, str] = {}
            for key_node, _ in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    continue
                key = self.construct_object(key_node)
                text = seen.setdefault(key, key_node.value)
                if text != key_node.value:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping",
                        node.start_mark,
                        f"the keys {text} and {key_node.value} are one key to Python",
                        key_node.start_mark,
                    )
            return mapping

    return Loader


# --- 3. composing a plain config --------------------------------------------------------------


def _compose_plain(
    source: Source, overrides: list[ParamOverride], warnings: list[str]
) -> DictConfig:
    """The config files merged in order (or a rerun's parameters, or nothing), with the
    overrides applied and their sweeps in place."""
    from omegaconf import OmegaConf

    if source.files:
        configs = []
        for path in source.files:
            cfg = load_config_file(path)
            mark_plain_sweeps(cfg, f"config file {path}")
            configs.append(cfg)
        cfg = configs[0] if len(configs) == 1 else OmegaConf.merge(*configs)  # type: ignore[assignment]
    else:
        cfg = OmegaConf.create(source.base or {})
    apply_overrides(cfg, overrides, warnings)
    return cfg


def apply_overrides(
    cfg: DictConfig, overrides: list[ParamOverride], warnings: list[str] | None = None
) -> None:
    """Apply overrides in order, as Hydra does for a plain config, except that ``key=`` also
    adds a key (the script's own defaults are the lowest layer). A new key close to one the
    config has gets a warning in ``warnings``."""
    from omegaconf import DictConfig, ListConfig, OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from yanex import groups

    missing = object()
    known = (
        groups.dotted_keys(OmegaConf.to_container(cfg, resolve=False))
        if warnings is not None
        else []
    )
    for ov in overrides:
        shown = ov.shown
        try:
            current = OmegaConf.select(cfg, ov.key, default=missing, throw_on_missing=False)
            if ov.op == "delete":
                if current is missing:
                    raise ParamError(
                        f"{shown}: there is no '{ov.key}' to remove{_suggest(ov.key, known)}"
                    )
                if ov.has_value and current != ov.value:
                    raise ParamError(f"{shown}: '{ov.key}' is {current!r}, not {ov.value!r}")
                parent_key, _, leaf = ov.key.rpartition(".")
                parent = OmegaConf.select(cfg, parent_key) if parent_key else cfg
                del parent[int(leaf) if isinstance(parent, ListConfig) else leaf]
                continue
            if ov.op == "add" and current is not missing:
                raise ParamError(
                    f"{shown}: '{ov.key}' is already set ({current!r})",
                    hint=f"Use {ov.key}=... to change it, or ++{ov.key}=... to set it either way.",
                )
            if ov.op == "set" and current is missing:
                close = _suggest(ov.key, known)
                if close and warnings is not None:
                    warnings.append(
                        f"{shown} adds '{ov.key}', which the config does not have{close}"
                    )
            if ov.sweep is not None:
                under = None
                if isinstance(current, DictConfig) and any(
                    isinstance(v, dict) for v in ov.sweep.values
                ):
                    under = OmegaConf.to_container(current, resolve=False)
                value: Any = sweeps.placeholder(replace(ov.sweep, under=under))
            else:
                value = ov.value
            OmegaConf.update(cfg, ov.key, value, merge=ov.sweep is None, force_add=True)
        except (OmegaConfBaseException, ValueError, TypeError) as exc:
            raise ParamError(f"{shown} cannot be applied: {str(exc).splitlines()[0]}") from exc


def _suggest(key: str, known: list[str]) -> str:
    from yanex import groups

    close = groups.close_key(key, known)
    return f"; did you mean {close}?" if close else ""


def check_script_reads(script: Path, overrides: list[ParamOverride]) -> None:
    """With no config found, the script's own defaults are the whole config: ``key=value``
    must name a key the script reads (``+key=value`` adds one anyway). A script that reads
    all its parameters (``get_params()``) or computes a key takes any key."""
    reads = script_reads(script)
    if reads is None:
        return
    nodes = {key.rsplit(".", i)[0] for key in reads for i in range(1, key.count(".") + 1)}
    for ov in overrides:
        if ov.op != "set" or ov.key in reads or any(ov.key.startswith(f"{k}.") for k in reads):
            continue
        values = ov.sweep.values if ov.sweep is not None else (ov.value,)
        if ov.key in nodes and all(isinstance(value, dict) for value in values):
            continue
        if ov.key in nodes:
            example = next(key for key in sorted(reads) if key.startswith(f"{ov.key}."))
            raise ParamError(
                f"{ov.shown}: {script.name} reads {example}, so '{ov.key}' holds parameters, "
                "not one value, and no config was found to choose it from",
                hint=_NO_CONFIG_HINT,
            )
        raise ParamError(
            f"{ov.shown}: no config was found, and {script.name} does not read "
            f"'{ov.key}'{_suggest(ov.key, sorted(reads))}",
            hint=f"To add it anyway, write +{ov.text}. {_NO_CONFIG_HINT}",
        )


_NO_CONFIG_HINT = (
    "yanex looks for a conf/ folder, then config.yaml, next to the script and in the current "
    "folder; run from the project's folder, or give --config-dir DIR or --config FILE."
)
_GET_PARAM = ("get_param", "get_params")


def script_reads(script: Path) -> set[str] | None:
    """The keys a script reads with ``get_param("key", ...)`` (its own defaults, read from
    its source), or None when it may read any key: ``get_params()``, a computed key, or no
    such call at all (it may read them in a module of its own)."""
    import ast

    try:
        tree = ast.parse(script.read_bytes(), filename=str(script))
    except (OSError, SyntaxError, ValueError):
        return None
    keys: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name not in _GET_PARAM:
            continue
        first = node.args[0] if node.args else None
        if name == "get_params" or not (
            isinstance(first, ast.Constant) and isinstance(first.value, str)
        ):
            return None
        keys.add(first.value)
    return keys or None


def mark_plain_sweeps(cfg: DictConfig, where: str) -> None:
    """Turn config strings like ``linspace(0.001, 0.1, 5)`` into sweeps."""
    from omegaconf import OmegaConf

    for key, leaf in sweeps.leaves(OmegaConf.to_container(cfg, resolve=False)):
        if isinstance(leaf, str) and sweeps.is_plain_sweep(leaf):
            sweep = parse_sweep_text(leaf, f"{where}: '{key}: {leaf}'")
            OmegaConf.update(cfg, key, sweeps.placeholder(sweep), merge=False)


# --- 4. one member's parameters ---------------------------------------------------------------


def to_container(cfg: DictConfig) -> dict[str, Any]:
    """Resolve interpolations into a plain dict that JSON and YAML both hold the same way:
    keys are strings (``1`` -> ``"1"``, ``true`` -> ``"true"``, as JSON writes them) and a
    missing value (``???``), or one interpolated from it, stays ``???``."""
    from omegaconf.errors import OmegaConfBaseException

    try:
        with sweeps.resolvers(expand=False), _hydra_resolvers():
            data = _resolve_keeping_missing(cfg)
    except RecursionError as exc:
        raise ParamError(
            "parameters cannot be resolved: an interpolation refers to itself"
        ) from exc
    except OmegaConfBaseException as exc:
        nested = sweeps.sweep_error(exc)  # a sweep inside a longer value
        if nested is not None:
            where = f"'{exc.full_key}': " if exc.full_key else ""
            raise ParamError(
                f"{where}{nested}",
                hint="Sweep a value of its own and interpolate it into the longer one: "
                "tag: ${list:a,b} and name: run-${tag}.",
            ) from exc
        raise ParamError(f"parameters cannot be resolved: {str(exc).splitlines()[0]}") from exc
    return _string_keys(data, "")  # type: ignore[return-value]


def _resolve_keeping_missing(cfg: DictConfig) -> Any:
    """``OmegaConf.to_container(resolve=True)``, where an interpolation of a missing value
    becomes missing too instead of an error (Hydra leaves both for the script to meet)."""
    from omegaconf import OmegaConf
    from omegaconf.errors import InterpolationToMissingValueError

    work = cfg
    while True:
        try:
            return OmegaConf.to_container(work, resolve=True, throw_on_missing=False)
        except InterpolationToMissingValueError as exc:
            if work is cfg:
                work = cfg.copy()
            OmegaConf.update(work, str(exc.full_key), MISSING, merge=False)


@contextlib.contextmanager
def _hydra_resolvers() -> Iterator[None]:
    """The resolvers Hydra registers when it composes a tree (``now``, ``python_version``),
    for a plain config too, so that ``${now:%Y}`` means the same with and without a tree:
    Hydra's own definitions, registered while yanex resolves unless already there."""
    import sys
    from datetime import datetime

    from omegaconf import OmegaConf
    from omegaconf.basecontainer import BaseContainer

    version = sys.version_info
    versions = {
        "major": f"{version[0]}",
        "minor": f"{version[0]}.{version[1]}",
        "micro": f"{version[0]}.{version[1]}.{version[2]}",
    }
    hydras = {
        "now": (lambda pattern: datetime.now().strftime(pattern), True),
        "python_version": (lambda level="minor": versions.get(level), False),
    }
    registry = BaseContainer._resolvers
    added = [name for name in hydras if name not in registry]
    for name in added:
        resolver, cached = hydras[name]
        OmegaConf.register_new_resolver(name, resolver, use_cache=cached)
    try:
        yield
    finally:
        for name in added:
            registry.pop(name, None)


def _string_keys(node: Any, where: str) -> Any:
    """Every key as the string JSON makes of it, so that params.json, get_param and
    config.yaml hold the same keys; two keys that become one string are refused."""
    if isinstance(node, list):
        return [_string_keys(item, where) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        text = key if isinstance(key, str) else _json_key(key)
        path = f"{where}.{text}" if where else text
        if text in out:
            raise ParamError(
                f"the config has two keys '{path}' ({key!r} and {text!r}): params.json "
                "holds keys as strings, so they would be one"
            )
        out[text] = _string_keys(value, path)
    return out


def _json_key(key: Any) -> str:
    import json

    if key is None or isinstance(key, (bool, int, float)):
        return json.dumps(key)
    return str(key)


# --- the pipeline -----------------------------------------------------------------------------


def resolve(
    *,
    cwd: Path,
    param_texts: Sequence[str],
    environ: Mapping[str, str],
    script: Path | None = None,
    config_paths: Sequence[Path] = (),
    config_dir: Path | None = None,
    config_name: str | None = None,
    base: Mapping[str, Any] | None = None,
    multirun: bool = False,
) -> ResolvedParams:
    """The run's parameters: source -> overrides -> composition -> grid (see the module
    docstring). ``base`` is a rerun's recorded parameters; ``multirun`` reads bare comma
    lists as sweeps."""
    from yanex import groups

    source = find_source(
        cwd=cwd,
        script=script,
        config_paths=config_paths,
        config_dir=config_dir,
        config_name=config_name,
        base=base,
    )
    env_texts = env_override_texts(environ)
    if not source.found and not env_texts and not param_texts:
        # Nothing to merge: skip OmegaConf and the parser.
        return ResolvedParams(grid=sweeps.Grid([sweeps.Base(None, [])], resolve=to_container))

    seed = _shuffle_seed(environ)
    warnings: list[str] = []
    with sweeps.drawing(seed) as drawn:
        composed = source.composed
        texts = [*env_texts, *(("--param", text) for text in param_texts)]
        overrides = [
            parse_override(text, source=name, groups=composed, multirun=multirun)
            for name, text in texts
        ]
        with sweeps.resolvers():
            if composed:
                if source.tree is not None:
                    check_config_tree(source.tree)
                compositions, group_sweeps, given = groups.compose_grid(source, overrides)
                swept = dict(group_sweeps)
                bases = []
                for cfg, varied, info in compositions:
                    mark_plain_sweeps(cfg, f"the config in {source.tree}")
                    positions = {key: swept[key].values.index(v) for key, v in varied.items()}
                    found = sweeps.find_in(cfg)
                    bases.append(sweeps.Base(cfg, found, varied, {"hydra": info}, positions))
            else:
                if not source.found and script is not None:
                    check_script_reads(_absolute(script, cwd), overrides)
                cfg = _compose_plain(source, overrides, warnings)
                bases, group_sweeps, given = [sweeps.Base(cfg, sweeps.find_in(cfg))], [], []
        shuffle_seed = seed if drawn() else None
    # As Hydra's sweeper: the sweeps vary in the order typed (a key's first place), the
    # last fastest; the config's own sweeps first.
    typed = list(dict.fromkeys(ov.target for ov in overrides if ov.sweep is not None))
    in_config = [path for path, _ in bases[0].sweeps if path not in typed] if bases else []
    grid = sweeps.Grid(
        bases, resolve=to_container, group_sweeps=group_sweeps, order=[*in_config, *typed]
    )
    grid.check_size()
    return ResolvedParams(
        grid=grid,
        source=source,
        parsed=overrides,
        warnings=warnings,
        shuffle_seed=shuffle_seed,
        compositions=given,
    )


def completions(
    *,
    cwd: Path,
    script: Path,
    config_paths: Sequence[Path] = (),
    config_dir: Path | None = None,
    config_name: str | None = None,
    given: Sequence[str] = (),
) -> tuple[list[str], dict[str, list[str]]]:
    """What an override can name, from the config ``yanex run`` would compose with the
    overrides ``given`` so far (for shell completion): every key, as ``lr=`` or ``model.``
    (a key holding others), and each config group's options."""
    from omegaconf import OmegaConf

    from yanex import groups

    source = find_source(
        cwd=cwd,
        script=script,
        config_paths=config_paths,
        config_dir=config_dir,
        config_name=config_name,
    )
    options: dict[str, list[str]] = {}
    data: Any = {}
    if source.composed:
        options = {group: groups.options(source.tree, group) for group in groups.names(source.tree)}
        texts = []
        for text in given:
            with contextlib.suppress(ParamError):
                if parse_override(text, groups=True).sweep is None:
                    texts.append(text)
        for attempt in (texts, []):
            with contextlib.suppress(ParamError):
                data = OmegaConf.to_container(groups.compose(source, attempt)[0], resolve=False)
                break
    elif source.files or source.base is not None:
        with sweeps.resolvers():
            data = OmegaConf.to_container(_compose_plain(source, [], []), resolve=False)
    else:  # no config: the keys the script reads
        for key in sorted(script_reads(_absolute(script, cwd)) or ()):
            node = data
            *parents, leaf = key.split(".")
            for part in parents:
                node = node.setdefault(part, {})
            if isinstance(node, dict):
                node.setdefault(leaf, None)
    keys = [
        f"{key}." if isinstance(value, dict) and value else f"{key}=" for key, value in _walk(data)
    ]
    return keys, options


def _walk(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            yield path, value
            yield from _walk(value, path)


def _shuffle_seed(environ: Mapping[str, str]) -> int:
    raw = environ.get(SHUFFLE_SEED_ENV, "").strip()
    if not raw:
        return int.from_bytes(os.urandom(4), "big")
    try:
        return int(raw)
    except ValueError:
        raise ParamError(
            f"{SHUFFLE_SEED_ENV}={raw!r} is not a whole number",
            hint=f"Give the seed a grid recorded as shuffle_seed: {SHUFFLE_SEED_ENV}=1234",
        ) from None


def env_params(environ: Mapping[str, str] = os.environ) -> tuple[dict[str, Any], list[str]]:
    """The parameters ``YANEX_PARAM_*`` give a standalone run, typed by the same grammar as
    under ``yanex run``, and what is wrong with the variables left out.

    ``yanex run`` refuses a malformed variable; a plain ``python script.py`` goes on without
    it, so one stray variable does not break every ``get_param``.
    """
    from copy import deepcopy

    from omegaconf import OmegaConf

    problems: dict[str, str] = {}  # variable name -> why it is left out
    names = sorted(name for name in environ if name.startswith(ENV_PREFIX))
    while True:
        cfg = OmegaConf.create({})
        applied: list[tuple[str, str, str]] = []  # (variable, dotted key, override text)
        for name in names:
            if name in problems:
                continue
            try:
                ((_, text),) = env_override_texts({name: environ[name]})
                override = parse_override(text, source=name)
                value = override.value
                if override.sweep is not None or (
                    isinstance(value, str) and sweeps.is_resolver_sweep(value)
                ):
                    raise ParamError(f"{override.shown} is a sweep; {_SWEEPS_ARE_STAGED}")
                trial = deepcopy(cfg)
                apply_overrides(trial, [override])
            except ParamError as exc:
                problems[name] = f"{exc.message}. {exc.hint}" if exc.hint else exc.message
                continue
            cfg = trial
            applied.append((name, override.key, text))
        try:
            params = to_container(cfg)
            break
        except ParamError:
            # An interpolation that cannot be resolved: leave out each variable whose value
            # does not resolve, and build again without them.
            unresolved = {
                name: f"{text!r} cannot be resolved: {why}"
                for name, key, text in applied
                if (why := _unresolved(cfg, key))
            }
            if not unresolved:
                raise
            problems.update(unresolved)
    texts = [
        f"yanex: ignoring {name}: {problems[name].removeprefix(f'{name}: ')}"
        for name in names
        if name in problems
    ]
    return params, texts


_SWEEPS_ARE_STAGED = "sweeps run only under `yanex run --stage`"


def _unresolved(cfg: Any, key: str) -> str | None:
    """Why the value at ``key`` cannot be resolved, or None when it can."""
    from omegaconf import Container, OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        with sweeps.resolvers(expand=False):  # as to_container resolves: a sweep is refused
            value = OmegaConf.select(cfg, key, throw_on_missing=True)
            if isinstance(value, Container):
                OmegaConf.to_container(value, resolve=True, throw_on_missing=True)
    except RecursionError:
        return "an interpolation refers to itself"
    except OmegaConfBaseException as exc:
        nested = sweeps.sweep_error(exc)  # a sweep inside a longer value
        return str(nested) if nested is not None else str(exc).splitlines()[0]
    return None
