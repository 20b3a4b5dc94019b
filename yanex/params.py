"""Parameter resolution: config file < ``YANEX_PARAM_*`` < ``--param``, merged by OmegaConf.

Values given as text (``--param`` and the environment) are typed by one grammar, Hydra's
override parser: ``3`` int, ``1e-3`` float, ``true`` bool, ``null``, ``[1, 2]`` list, a quoted
value stays a string. A bare comma never makes a sweep here (``title=Hello, world`` is one
string). A script's own defaults (``yanex.get_param(key, default)``) stay in its code.

OmegaConf and the parser are imported inside the functions that need them: a run with no
config and no parameters pays for neither.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from yanex import sweeps
from yanex.errors import ParamError

if TYPE_CHECKING:
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import DictConfig

ENV_PREFIX = "YANEX_PARAM_"
DEFAULT_CONFIG = "config.yaml"

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

    @property
    def prefix(self) -> str:
        """How the override's operation is written: ``""``, ``+``, ``++`` or ``~``."""
        return {"set": "", "add": "+", "force_add": "++", "delete": "~"}[self.op]

    @property
    def target(self) -> str:
        """The key, with its package when one is given (``optimizer@second``)."""
        return f"{self.key}@{self.package}" if self.package else self.key

    @property
    def shown(self) -> str:
        """How messages name this override: ``--param 'x=1'`` or ``YANEX_PARAM_x: 'x=1'``."""
        return _shown(self.text, self.source)


@dataclass
class ResolvedParams:
    """The merged parameters of a run, as a grid whose members are not made yet, and where
    they came from (a config file, or a Hydra conf/ folder)."""

    grid: sweeps.Grid
    config_file: Path | None = None
    config_dir: Path | None = None
    parsed: list[ParamOverride] = field(default_factory=list)  # in the order applied


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
            what = getattr(node, "list", None)
            if what is not None:  # a ChoiceSweep inside a list, dict or another sweep
                raise ParamError(f"{_clip(shown)}: {sweeps.NOT_WHOLE}")
            raise ParamError(f"{_clip(shown)}: {type(node).__name__} values are not supported")


def _grammar_error(exc: Exception, shown: str, hint: str | None = None) -> ParamError:
    """The parser's complaint as a ParamError: a bad sweep says why, anything else is a
    syntax error named by its first line."""
    if isinstance(exc.__cause__, sweeps.SweepValueError):
        return ParamError(f"{shown}: {exc.__cause__}")
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return ParamError(f"{shown} cannot be parsed: {reason}", hint=hint)


_QUOTE_HINT = "Quote a value with special characters: --param \"key='a value: with = signs'\"."


def parse_override(text: str, source: str = "--param", groups: bool = False) -> ParamOverride:
    """Parse ``KEY=VALUE``, ``+KEY=VALUE``, ``++KEY=VALUE``, ``~KEY`` or ``~KEY=VALUE``
    (and, with ``groups``, Hydra's ``group/sub=option`` and ``group@package=option``)."""
    from hydra.core.override_parser.types import OverrideType, ValueType
    from hydra.errors import HydraException

    shown = _shown(text, source)
    if "=" not in text and not text.startswith("~"):
        raise ParamError(f"{shown} is neither KEY=VALUE nor ~KEY", hint="Example: --param lr=0.01")
    if "\x00" in text:
        raise ParamError(f"{shown} contains a NUL byte")
    try:
        override = _get_parser().parse_override(text)
    except RecursionError as exc:
        raise ParamError(f"{_clip(shown)} nests too deeply to be parsed") from exc
    except HydraException as exc:
        raise _grammar_error(exc, shown, hint=_QUOTE_HINT) from exc

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
    has_value = override.value_type is not None
    value: Any = None
    sweep: sweeps.Sweep | None = None
    if override.value_type == ValueType.SIMPLE_CHOICE_SWEEP:
        # A bare comma is text, never a sweep: keep the value exactly as typed.
        value = text.split("=", 1)[1]
    elif override.value_type in (None, ValueType.ELEMENT):
        value = override.value()
        check_plain(value, shown)
    elif override.value_type == ValueType.CHOICE_SWEEP and op != "delete":
        expr = text.split("=", 1)[1].strip()
        sweep = sweeps.Sweep(expr=expr, values=tuple(override.value().list))
        if not sweep.values:
            raise ParamError(f"{shown}: {expr} has no values")
        for item in sweep.values:
            check_plain(item, shown)
    else:
        raise ParamError(f"{shown}: this kind of value cannot be used here")
    return ParamOverride(
        op=op,
        key=key,
        value=value,
        has_value=has_value,
        text=text,
        source=source,
        sweep=sweep,
        package=override.package,
    )


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
    try:
        from omegaconf._utils import get_yaml_loader  # private, stable across omegaconf 2.x

        return get_yaml_loader()
    except ImportError:  # pragma: no cover - a future omegaconf without it
        import yaml

        return yaml.SafeLoader


def apply_overrides(cfg: DictConfig, overrides: list[ParamOverride]) -> None:
    """Apply overrides in order, as Hydra does for a plain config (``key=`` also adds)."""
    from omegaconf import ListConfig, OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    missing = object()
    for ov in overrides:
        shown = ov.shown
        try:
            current = OmegaConf.select(cfg, ov.key, default=missing, throw_on_missing=False)
            if ov.op == "delete":
                if current is missing:
                    raise ParamError(f"{shown}: there is no '{ov.key}' to remove")
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
            value = sweeps.placeholder(ov.sweep) if ov.sweep is not None else ov.value
            OmegaConf.update(cfg, ov.key, value, merge=ov.sweep is None, force_add=True)
        except (OmegaConfBaseException, ValueError, TypeError) as exc:
            raise ParamError(f"{shown} cannot be applied: {str(exc).splitlines()[0]}") from exc


def to_container(cfg: DictConfig) -> dict[str, Any]:
    """Resolve interpolations into a plain dict that JSON and YAML can both hold."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        with sweeps.resolvers(expand=False):  # sweeps are values by now; one left is refused
            return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)  # type: ignore[return-value]
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


def resolve(
    *,
    cwd: Path,
    config_path: Path | None,
    param_texts: list[str],
    environ: Mapping[str, str],
    config_dir: Path | None = None,
    config_name: str | None = None,
    base: Mapping[str, Any] | None = None,
) -> ResolvedParams:
    """Merge the config, environment and ``--param`` into the run's grid of parameters.

    The config is ``base`` when given (a rerun's recorded parameters); else ``config_path``;
    else a Hydra tree (``config_dir``, or ``./conf`` when it exists) composed from
    ``config_name`` (default ``config``); else ``./config.yaml`` when present.
    """
    from yanex import groups

    if base is not None:
        return _resolve_plain(None, dict(base), param_texts, environ)

    name = config_name or groups.DEFAULT_NAME
    if config_path is None and config_dir is None:
        config_dir = groups.default_tree(cwd, name)  # a Hydra tree: conf/ with its primary config
    if config_path is not None and (config_dir is not None or config_name is not None):
        raise ParamError(
            "--config names one YAML file; it cannot be combined with --config-dir or --config-name"
        )
    if config_dir is not None:
        return _resolve_groups(config_dir, name, param_texts, environ)
    if config_name is not None:
        raise ParamError(
            f"no {groups.DEFAULT_DIR}/{config_name}.yaml in {cwd}",
            hint="--config-name names the primary config of a conf/ folder (or --config-dir).",
        )
    if config_path is None and (cwd / DEFAULT_CONFIG).exists():  # a FIFO there is refused
        config_path = cwd / DEFAULT_CONFIG
    return _resolve_plain(config_path, None, param_texts, environ)


def _resolve_plain(
    config_path: Path | None,
    base: dict[str, Any] | None,
    param_texts: list[str],
    environ: Mapping[str, str],
) -> ResolvedParams:
    """A plain config (a file, a rerun's recorded parameters, or nothing) and the overrides."""
    env_texts = env_override_texts(environ)
    if config_path is None and base is None and not env_texts and not param_texts:
        # Nothing to merge: skip OmegaConf and the parser.
        return ResolvedParams(grid=sweeps.Grid([sweeps.Base(None, [])], resolve=to_container))

    from omegaconf import OmegaConf

    overrides = [parse_override(text, source=name) for name, text in env_texts]
    overrides += [parse_override(text) for text in param_texts]
    if config_path is not None:
        cfg = load_config_file(config_path)
        mark_plain_sweeps(cfg, f"config file {config_path}")
    else:
        cfg = OmegaConf.create(base or {})
    with sweeps.resolvers():
        apply_overrides(cfg, overrides)
        grid = sweeps.Grid([sweeps.Base(cfg, sweeps.find_in(cfg))], resolve=to_container)
    grid.check_size()
    return ResolvedParams(
        grid=grid,
        config_file=config_path.resolve() if config_path is not None else None,
        parsed=overrides,
    )


def _resolve_groups(
    config_dir: Path, config_name: str, param_texts: list[str], environ: Mapping[str, str]
) -> ResolvedParams:
    from yanex import groups

    if not config_dir.is_dir():
        raise ParamError(f"config folder not found: {config_dir}")
    check_config_tree(config_dir)
    overrides = [parse_override(t, source=n, groups=True) for n, t in env_override_texts(environ)]
    overrides += [parse_override(text, groups=True) for text in param_texts]
    bases = []
    with sweeps.resolvers():
        compositions, group_sweeps = groups.compose_grid(
            config_dir.resolve(), config_name, overrides
        )
        for cfg, varied, info in compositions:
            mark_plain_sweeps(cfg, f"the config in {config_dir}")
            bases.append(sweeps.Base(cfg, sweeps.find_in(cfg), varied, {"hydra": info}))
    grid = sweeps.Grid(bases, resolve=to_container, group_sweeps=group_sweeps)
    grid.check_size()
    return ResolvedParams(
        grid=grid,
        config_dir=config_dir.resolve(),
        parsed=overrides,
    )


def parse_sweep_text(text: str, shown: str) -> sweeps.Sweep:
    """A sweep written as plain text in a config (``linspace(0.001, 0.1, 5)``), by the grammar."""
    from hydra.core.override_parser.types import ChoiceSweep
    from hydra.errors import HydraException

    try:
        parsed = _get_parser().parse_rule(text.strip(), "value")
    except HydraException as exc:
        raise _grammar_error(exc, shown) from exc
    if not isinstance(parsed, ChoiceSweep) or not parsed.list:
        raise ParamError(f"{shown} is not a sweep with values")
    return sweeps.Sweep(expr=text.strip(), values=tuple(parsed.list))


def parse_value(text: str, shown: str) -> Any:
    """One bare value typed by the override grammar, as ``--param`` types it: ``0.01`` float,
    ``true`` bool, ``null``, ``'a, b'`` string, ``[1, 2]`` list. Sweeps are not values here."""
    from hydra.core.override_parser.types import Override
    from hydra.errors import HydraException

    if not text.strip():
        return ""
    try:
        value = _get_parser().parse_rule(text.strip(), "value")
    except RecursionError as exc:
        raise ParamError(f"{_clip(shown)} nests too deeply to be parsed") from exc
    except HydraException as exc:
        raise _grammar_error(exc, shown, hint=_QUOTE_HINT) from exc
    if hasattr(value, "list"):  # a ChoiceSweep: list(...), or a bare comma
        raise ParamError(
            f"{shown}: a value here is one value, not several",
            hint="Quote text that holds a comma: 'a, b'.",
        )
    value = Override._convert_value(value)  # quoted strings become plain ones
    check_plain(value, shown)
    return value


def mark_plain_sweeps(cfg: DictConfig, where: str) -> None:
    """Turn config strings like ``linspace(0.001, 0.1, 5)`` into sweeps."""
    from omegaconf import OmegaConf

    for key, leaf in sweeps.leaves(OmegaConf.to_container(cfg, resolve=False)):
        if isinstance(leaf, str) and sweeps.is_plain_sweep(leaf):
            sweep = parse_sweep_text(leaf, f"{where}: '{key}: {leaf}'")
            OmegaConf.update(cfg, key, sweeps.placeholder(sweep), merge=False)


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
