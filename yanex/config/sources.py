"""Where a run's config comes from, and reading it: a rerun's recorded parameters, a
``@hydra.main`` app's own tree, ``--config`` files, ``--config-dir``, a ``conf/`` tree next to the
script or in the current folder, ``config.yaml`` there; config files loaded within limits.

:func:`find_source` is the first stage of the pipeline: it finds the config as Hydra finds it
(paths relative to the folder ``yanex run`` starts in), the same whichever folder that is.
What a tree holds (its groups and their options) is read from its folders here, without
Hydra. Files are checked before they are read (:func:`check_config_file`): a FIFO or a device
is refused, and so is a file larger than ``MAX_CONFIG_BYTES``.
"""

from __future__ import annotations

import contextlib
import os
import stat
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from yanex import grammar
from yanex.config import hydra_app, sweeps
from yanex.errors import ParamError

if TYPE_CHECKING:
    from omegaconf import DictConfig

DEFAULT_CONFIG = "config.yaml"
DEFAULT_DIR = "conf"
# A tree's primary config when --config-name names none (Hydra's own default).
DEFAULT_NAME = "config"
# The largest config file yanex reads, refused from its size before it is read. Real configs
# are kilobytes; YAML is parsed in pure Python, at about 30 s and 150 MB of memory per MB of
# file, so a 35 MB file would take many minutes and gigabytes to refuse.
MAX_CONFIG_BYTES = 2_000_000


@dataclass(frozen=True)
class Source:
    """Where a run's config comes from (the first step of the pipeline); all empty: none."""

    files: tuple[Path, ...] = ()  # plain YAML files, merged in order
    tree: Path | None = None  # a Hydra config folder
    name: str | None = None  # its primary config; None composes from groups alone
    base: dict[str, Any] | None = None  # a rerun's recorded parameters
    app: hydra_app.HydraApp | None = None  # a @hydra.main app: the tree is the app's own
    # Where and with what environment an app runs (it composes there what yanex cannot).
    cwd: Path | None = None
    environ: Mapping[str, str] | None = None

    @property
    def composed(self) -> bool:
        """Is the config composed by Hydra (a tree, or a @hydra.main app without one)?"""
        return self.tree is not None or self.app is not None

    @property
    def found(self) -> bool:
        return bool(self.files) or self.composed or self.base is not None


# --- finding the config --------------------------------------------------------------------------


def find_source(
    *,
    cwd: Path,
    script: Path | None = None,
    config_paths: Sequence[Path] = (),
    config_dir: Path | None = None,
    config_name: str | None = None,
    base: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Source:
    """Where the config comes from, found as Hydra finds it (paths are absolute or relative
    to ``cwd``): the same config whichever folder ``yanex run`` is started from. An app is
    run in ``cwd`` with ``environ`` (None: this process's)."""
    if base is not None:
        return Source(base=dict(base))
    config_paths = [absolute(path, cwd) for path in config_paths]
    config_dir = absolute(config_dir, cwd) if config_dir is not None else None
    script = absolute(script, cwd) if script is not None else None
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
        return Source(tree=tree, name=name, app=app, cwd=cwd, environ=environ)
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
        return Source(tree=config_dir, name=primary_name(config_dir, config_name))
    folders = list(dict.fromkeys([*([script.parent] if script else []), cwd]))
    for folder in folders:
        tree = folder / DEFAULT_DIR
        if is_tree(tree, config_name):
            return Source(tree=tree, name=primary_name(tree, config_name))
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


def absolute(path: Path, cwd: Path) -> Path:
    """``path`` as given on a command line run in ``cwd``."""
    return path if path.is_absolute() else cwd / path


# --- what a tree holds ---------------------------------------------------------------------------


def is_tree(folder: Path, config_name: str | None = None) -> bool:
    """Is ``folder`` a Hydra config tree: its primary config, or (none named) config groups?"""
    if not folder.is_dir():
        return False
    if (folder / f"{config_name or DEFAULT_NAME}.yaml").exists():
        return True
    return config_name is None and any(
        child.is_dir() and any(child.glob("*.yaml")) for child in folder.iterdir()
    )


def primary_name(folder: Path, config_name: str | None) -> str | None:
    """The tree's primary config: the one named, else ``config`` when it exists, else none
    (the tree composes from groups alone, as Hydra's ``config_name=None``)."""
    if config_name is not None:
        return config_name
    return DEFAULT_NAME if (folder / f"{DEFAULT_NAME}.yaml").exists() else None


def is_group(config_dir: Path | None, key: str) -> bool:
    """Is ``key`` (``model`` or ``model/encoder``) a config group of this tree?"""
    return config_dir is not None and (config_dir / key.replace(".", "/")).is_dir()


def options(config_dir: Path | None, group: str) -> list[str]:
    """The options of a config group, sorted as Hydra lists them."""
    if config_dir is None:
        return []
    folder = config_dir / group.replace(".", "/")
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def names(config_dir: Path | None) -> list[str]:
    """Every config group of a tree (``model``, ``model/encoder``): folders holding options."""
    if config_dir is None or not config_dir.is_dir():
        return []
    found = []
    for folder in sorted(config_dir.rglob("*")):
        if folder.is_dir() and any(folder.glob("*.yaml")):
            found.append(folder.relative_to(config_dir).as_posix())
    return [group for group in found if not group.startswith("hydra")]


# --- config files --------------------------------------------------------------------------------


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


def load_config_file(path: Path) -> tuple[DictConfig, dict[str, Any]]:
    """Load a YAML config file whose top level is a mapping (an empty file is ``{}``): its
    parameters, and its ``yanex:`` section (the run's own settings, see :class:`Settings`),
    which is not a parameter."""
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
    section = data.pop(SETTINGS_KEY, None)
    if section is None:
        section = {}
    elif not isinstance(section, dict):
        raise ParamError(
            f"config file {path}: its '{SETTINGS_KEY}:' section holds the run's settings "
            f"(name, description, tag, ...), not a {type(section).__name__}",
            hint=f"Write it as a mapping: {SETTINGS_KEY}: {{name: baseline, tag: [dev]}}.",
        )
    grammar.check_plain(data, f"config file {path}")
    try:
        cfg = OmegaConf.create(data)
    except (OmegaConfBaseException, ValueError, TypeError) as exc:
        raise ParamError(f"config file {path} cannot be loaded: {exc}".splitlines()[0]) from exc
    assert isinstance(cfg, DictConfig)
    return cfg, section


# --- the `yanex:` section: the run's own settings -------------------------------------------

SETTINGS_KEY = "yanex"


@dataclass(frozen=True)
class Settings:
    """What the ``yanex:`` sections of a run's config files say about the run itself, as
    yanex 0.6 read them (the files merged in order, the last file wins): defaults of the
    command line's ``--name``, ``--description``, ``--tag``, ``--dry-run`` and ``--stage``.
    The command line wins: a name given there replaces the file's, and tags given there
    replace the file's (0.6's rule). None of it is a parameter of the script."""

    name: str | None = None
    description: str | None = None
    tags: tuple[str, ...] | None = None
    dry_run: bool = False
    stage: bool = False


_SETTING_TYPES: dict[str, tuple[type, ...]] = {
    "name": (str,),
    "description": (str,),
    "tag": (str, list),
    "tags": (str, list),
    "dry_run": (bool,),
    "stage": (bool,),
}


def settings(sections: Sequence[tuple[Path, dict[str, Any]]], warnings: list[str]) -> Settings:
    """The run's :class:`Settings` from the ``yanex:`` section of each config file (in the
    order merged). A key yanex does not read (0.6's ``project`` among them) gets a warning in
    ``warnings``; a value of the wrong type is refused."""
    merged: dict[str, Any] = {}
    for path, section in sections:
        given = {str(key): _plain_text(value) for key, value in section.items()}
        if "tag" in given and "tags" in given:
            raise ParamError(
                f"config file {path}: its '{SETTINGS_KEY}:' section gives both tag and tags",
                hint="Give the run's tags once: tag: [a, b].",
            )
        for key, value in given.items():
            where = f"config file {path}: {SETTINGS_KEY}.{key}"
            if key not in _SETTING_TYPES:
                why = (
                    "yanex 0.6's project name; a run's project here is its git repository"
                    if key == "project"
                    else "not a setting yanex reads (name, description, tag, dry_run, stage)"
                )
                warnings.append(f"{where} is ignored: {why}")
                continue
            if key in ("tag", "tags") and isinstance(value, str):
                value = [value]
            if not isinstance(value, _SETTING_TYPES[key]) or (
                isinstance(value, list) and not all(isinstance(tag, str) for tag in value)
            ):
                kinds = " or ".join(
                    {"str": "text", "list": "a list of text", "bool": "true or false"}[k.__name__]
                    for k in _SETTING_TYPES[key]
                )
                raise ParamError(f"{where} must be {kinds}, not {value!r}")
            if key in ("tag", "tags"):
                merged.pop("tag", None)
                merged.pop("tags", None)
                key = "tags"
                value = tuple(value)
                if any(not tag.strip() for tag in value):
                    raise ParamError(f"{where}: a tag cannot be empty")
            merged[key] = value
    return Settings(**merged)


def _plain_text(value: Any) -> Any:
    """A value of the section without the loader's unquoted-string mark (see below)."""
    if isinstance(value, list):
        return [_plain_text(item) for item in value]
    text = unquoted(value)
    return value if text is None else text


def _yaml_loader() -> Any:
    """OmegaConf's YAML loader (1e-3 is a float, duplicate keys are errors), which also
    refuses two keys that Python takes for one (``1`` and ``true``, ``1`` and ``1.0``): one
    would be lost without a word; and marks unquoted strings (see :func:`unquoted`)."""
    import yaml

    try:
        from omegaconf._utils import get_yaml_loader  # private, stable across omegaconf 2.x

        base = get_yaml_loader()
    except ImportError:  # pragma: no cover - a future omegaconf without it
        base = yaml.SafeLoader

    class Loader(_marking(base, tree=False)):  # type: ignore[misc]
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


# --- unquoted strings: what may be a sweep ---------------------------------------------------
#
# A config string is a sweep only when it is written unquoted: ``lr: choice(0.1, 0.01)`` is a
# sweep, ``title: 'choice(a, b)'`` the string. YAML's quotes are gone once a file is loaded, so
# the unquoted strings that may be a sweep (one call of a grammar function) or are in yanex
# 0.6's comma form are marked as the file is read, whoever reads it: yanex for a config file,
# Hydra (through OmegaConf.load) while yanex composes a tree. The composition takes the mark
# off again (``compose.mark_plain_sweeps``); a value a quoted string or an override gave never
# has it. No YAML text holds the mark: a plain scalar cannot hold a NUL.

_UNQUOTED = "\x00yanex:unquoted\x00"
_STR_TAG = "tag:yaml.org,2002:str"


def unquoted(value: Any) -> str | None:
    """The text of a string that was unquoted in its YAML file and may be a sweep; else None."""
    if isinstance(value, str) and value.startswith(_UNQUOTED):
        return value[len(_UNQUOTED) :]
    return None


def _marking(base: Any, tree: bool) -> Any:
    """A YAML loader that marks unquoted strings that may be sweeps; in a Hydra tree, not in
    a defaults list (Hydra reads its options as names) nor in the ``hydra`` node (Hydra's own
    settings, dropped from the config)."""

    class Marking(base):  # type: ignore[misc, valid-type]
        def construct_document(self, node: Any) -> Any:
            _mark_unquoted(node, skip=_HYDRAS_OWN if tree else ())
            return super().construct_document(node)

    return Marking


_HYDRAS_OWN = ("defaults", "hydra")


def _mark_unquoted(root: Any, skip: tuple[str, ...]) -> None:
    import yaml

    seen: set[int] = set()  # an aliased node is marked once
    stack = [(root, True)]
    while stack:
        node, top = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if top and getattr(key, "value", None) in skip:
                    continue
                stack.append((value, False))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, False) for item in node.value)
        elif (
            node.style is None
            and node.tag == _STR_TAG
            and (sweeps.is_call(node.value) or sweeps.is_comma_list(node.value))
        ):
            node.value = _UNQUOTED + node.value


class _TreeReads:
    """While yanex composes a tree in a thread, OmegaConf's YAML loader (which Hydra reads
    each file of the tree with) is the marking one, in that thread only: OmegaConf has no
    public way to give Hydra a loader, so ``omegaconf._utils.get_yaml_loader`` is replaced
    while any thread composes, by one that asks which thread calls it."""

    lock = threading.Lock()
    users = 0
    original: Any = None
    composing = threading.local()

    @classmethod
    def loader(cls) -> Any:
        base = cls.original()
        return _marking(base, tree=True) if getattr(cls.composing, "depth", 0) else base


@contextlib.contextmanager
def marking_tree_reads() -> Iterator[None]:
    """Hydra's reading of a tree, in this thread, marks unquoted strings (see above)."""
    from omegaconf import _utils

    with _TreeReads.lock:
        if _TreeReads.users == 0:
            _TreeReads.original = _utils.get_yaml_loader
            _utils.get_yaml_loader = _TreeReads.loader
        _TreeReads.users += 1
    composing = _TreeReads.composing
    composing.depth = getattr(composing, "depth", 0) + 1
    try:
        yield
    finally:
        composing.depth -= 1
        with _TreeReads.lock:
            _TreeReads.users -= 1
            if _TreeReads.users == 0:
                _utils.get_yaml_loader = _TreeReads.original
