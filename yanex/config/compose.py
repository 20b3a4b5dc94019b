"""Composing a run's config from its source and overrides: a plain config merged by OmegaConf,
or a Hydra tree composed with Hydra's Compose API (read back from a cache while its files are
unchanged).

A plain config: the files merged in order (or a rerun's parameters, or nothing), then the
overrides applied as Hydra applies them, except that ``key=value`` also adds a key (the
script's own defaults are the lowest layer; one close to an existing key gets a "did you mean"
warning). A sweep's values wait in the config as a placeholder (see ``resolvers``).

A tree (a ``conf/`` folder, ``--config-dir``, or a ``@hydra.main`` app's own ``config_path``) is
composed as Hydra would: its primary config's defaults list picks an option per group
(``conf/model/small.yaml``); with no primary config the tree composes from groups alone
(``+db=postgresql``). Overrides follow Hydra's rules: ``model=large`` selects an option,
``model.width=128`` changes a value (it must exist; a close key is suggested), ``+key=value``
adds one, ``~key`` removes one, ``group@package=option`` places a group. A sweep over a group
composes once per option; a sweep over a value is applied to each composition afterwards
(Hydra's ``compose()`` refuses sweeps). Hydra is imported only here, when a tree is composed
and the cache does not hold it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from yanex.config import hydra_app, resolvers, sources, sweeps
from yanex.config.overrides import (
    ParamOverride,
    close_key,
    config_sweep,
    dotted_keys,
    suggest,
)
from yanex.errors import ParamError

if TYPE_CHECKING:
    from omegaconf import DictConfig

Composition = tuple["DictConfig", dict[str, Any], dict[str, Any]]
# The modules whose code makes what the composition cache keeps.
_OURS = (__file__, sources.__file__)


# --- a plain config ---------------------------------------------------------------------------


def compose_plain(
    source: sources.Source,
    overrides: list[ParamOverride],
    placed: resolvers.Placeholders,
    warnings: list[str],
) -> tuple[DictConfig, sources.Settings]:
    """The config files merged in order (or a rerun's parameters, or nothing), with the
    overrides applied and their sweeps in place (held by ``placed``); and the run's settings
    from the files' ``yanex:`` sections."""
    from omegaconf import OmegaConf

    sections = []
    if source.files:
        configs = []
        for path in source.files:
            cfg, section = sources.load_config_file(path)
            mark_plain_sweeps(cfg, f"config file {path}", placed, warnings)
            configs.append(cfg)
            sections.append((path, section))
        cfg = configs[0] if len(configs) == 1 else OmegaConf.merge(*configs)  # type: ignore[assignment]
    else:
        cfg = OmegaConf.create(source.base or {})
    settings = sources.settings(sections, warnings)
    apply_overrides(cfg, overrides, placed, warnings)
    return cfg, settings


def apply_overrides(
    cfg: DictConfig,
    overrides: list[ParamOverride],
    placed: resolvers.Placeholders,
    warnings: list[str] | None = None,
) -> None:
    """Apply overrides in order, as Hydra does for a plain config, except that ``key=`` also
    adds a key (the script's own defaults are the lowest layer). A sweep is put in as a
    placeholder held by ``placed``. A new key close to one the config has gets a warning in
    ``warnings``."""
    from omegaconf import DictConfig, ListConfig, OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    missing = object()
    known = dotted_keys(OmegaConf.to_container(cfg, resolve=False)) if warnings is not None else []
    for ov in overrides:
        shown = ov.shown
        try:
            current = OmegaConf.select(cfg, ov.key, default=missing, throw_on_missing=False)
            if ov.op == "delete":
                if current is missing:
                    raise ParamError(
                        f"{shown}: there is no '{ov.key}' to remove{suggest(ov.key, known)}"
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
                close = suggest(ov.key, known)
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
                value: Any = placed.place(dataclasses.replace(ov.sweep, under=under))
            else:
                value = ov.value
            OmegaConf.update(cfg, ov.key, value, merge=ov.sweep is None, force_add=True)
        except (OmegaConfBaseException, ValueError, TypeError) as exc:
            raise ParamError(f"{shown} cannot be applied: {str(exc).splitlines()[0]}") from exc


def mark_plain_sweeps(
    cfg: DictConfig, where: str, placed: resolvers.Placeholders, warnings: list[str]
) -> None:
    """Turn the config strings written unquoted as one sweep call (``choice(a, b)``,
    ``linspace(0.001, 0.1, 5)``) into sweeps, placed in ``placed``; every other string
    marked as unquoted when it was read (see ``sources.unquoted``) is the text as written.
    One in yanex 0.6's sweep form (``a,b,c``) gets a warning: it is one string."""
    from omegaconf import OmegaConf

    for key, leaf in sweeps.leaves(OmegaConf.to_container(cfg, resolve=False)):
        text = sources.unquoted(leaf)
        if text is None:
            continue
        sweep = config_sweep(text, key, where) if sweeps.is_call(text) else None
        OmegaConf.update(cfg, key, text if sweep is None else placed.place(sweep), merge=False)
        if sweep is None and sweeps.is_comma_list(text):
            warning = (
                f"{where}: '{key}: {text}' is one string, not a sweep (yanex 0.6 swept a "
                f"comma list): for a sweep write {key}: list({text}); quote it "
                f"({key}: '{text}') to keep the string without this warning"
            )
            if warning not in warnings:
                warnings.append(warning)


# --- a Hydra tree -----------------------------------------------------------------------------


@contextlib.contextmanager
def _initialized(source: sources.Source) -> Iterator[None]:
    """Hydra initialized as the app (or a plain tree) would be: its config folder, or none,
    and its version_base (an app's legacy warnings are the app's to give, not yanex's)."""
    from hydra import initialize, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.singleton import Singleton
    from hydra.version import VersionBase

    version_base = source.app.version_base if source.app is not None else "1.3"
    # Inside a running Hydra app (yanex.launch called from a @hydra.main function) Hydra's
    # singletons are the app's: its GlobalHydra, HydraConfig and version base. Compose with
    # fresh ones and give the app back its own, untouched.
    apps = Singleton._instances
    own = (GlobalHydra, HydraConfig, VersionBase)
    Singleton._instances = {cls: obj for cls, obj in apps.items() if cls not in own}
    try:
        with warnings.catch_warnings(), _app_importable(source.app):
            warnings.simplefilter("ignore")
            if source.tree is not None:
                tree = str(source.tree.resolve())
                context = initialize_config_dir(tree, version_base=version_base)
            else:
                context = initialize(config_path=None, version_base=version_base)
            with context:
                yield
    finally:
        Singleton._instances = apps


@contextlib.contextmanager
def _app_importable(app: hydra_app.HydraApp | None) -> Iterator[None]:
    """An app's own folder first on ``sys.path``, as Python puts it when the app runs: its
    ``hydra.searchpath`` may name packages next to it (``pkg://additional_conf``). What was
    imported from there while composing is forgotten again: it is the app's, not yanex's."""
    import sys

    if app is None:
        yield
        return
    import importlib

    folder = str(app.script.parent)
    before = set(sys.modules)
    sys.path.insert(0, folder)
    importlib.invalidate_caches()
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(folder)
        inside = folder + os.sep
        for name in set(sys.modules) - before:
            where = getattr(sys.modules[name], "__file__", None) or ""
            paths = getattr(getattr(sys.modules[name], "__path__", None), "__iter__", None)
            places = [where, *(paths() if paths else [])]
            if any(str(place).startswith(inside) for place in places):
                del sys.modules[name]


def compose(
    source: sources.Source, texts: list[str], *, ask_app: bool = True
) -> tuple[DictConfig, dict[str, Any]]:
    """One Hydra composition: the config (without its ``hydra`` node, not in struct mode),
    and what metadata records of it (the chosen option of each group, the overrides).
    A config only the app has is composed by the app, unless ``ask_app`` is false (shell
    completion never starts the app).

    A composition of a tree whose files are as they were is read from the cache Hydra's
    last composition of it left (see :class:`CompositionCache`): no Hydra import."""
    cache = CompositionCache.of(source, texts)
    if cache is not None:
        found = cache.read()
        if found is not None:
            return found
    from hydra import compose as hydra_compose
    from hydra.errors import HydraException, MissingConfigException
    from omegaconf import OmegaConf, open_dict
    from omegaconf.errors import OmegaConfBaseException

    try:
        with _initialized(source), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with sources.marking_tree_reads():
                cfg = hydra_compose(source.name, overrides=texts, return_hydra_config=True)
    except MissingConfigException as exc:
        if source.app is None or not ask_app:
            raise ParamError(_missing_message(exc, source)) from exc
        # A config the app itself stores in Hydra's ConfigStore: the app composes it.
        return _composed_by_app(source, texts, _missing_message(exc, source))
    except (HydraException, OmegaConfBaseException, ValueError, TypeError) as exc:
        # Hydra refuses some overrides with a plain ValueError (`db=null` for a group).
        raise _composition_error(exc, source, texts) from exc
    # Only the tree's own files (and Hydra's and yanex's built-in configs) made it: a
    # search path of other folders or packages is not fingerprinted, so it is not cached.
    providers = {str(s.provider) for s in cfg.hydra.runtime.config_sources}
    cacheable = providers <= {"hydra", "main", "schema"} and not cfg.hydra.searchpath
    described = describe(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    OmegaConf.set_struct(cfg, False)
    info = _info(source, described)
    if cache is not None and cacheable:
        cache.write(OmegaConf.to_container(cfg, resolve=False), info)
    return cfg, info


def describe(cfg: DictConfig) -> dict[str, Any]:
    """What yanex records of a Hydra composition, from its ``hydra`` node: the option chosen
    in each group, the overrides as typed, and the output folders the user chose."""
    from omegaconf import OmegaConf

    choices = {
        group: option
        for group, option in OmegaConf.to_container(cfg.hydra.runtime.choices).items()
        if not group.startswith("hydra/")
    }
    task = OmegaConf.to_container(cfg.hydra.overrides.task, resolve=False)  # texts, as typed
    return {"choices": choices, "overrides": task, **_output_dirs(cfg.hydra)}


def _info(source: sources.Source, described: dict[str, Any]) -> dict[str, Any]:
    info = {
        "config_dir": str(source.tree.resolve()) if source.tree is not None else None,
        "config_name": source.name,
        **described,
    }
    if source.app is not None:
        info["app"] = source.app.to_metadata()
    return info


# How long an app may take to compose its config in its own process (its imports included).
APP_COMPOSE_TIMEOUT = 300.0


def _composed_by_app(
    source: sources.Source, texts: list[str], missing: str
) -> tuple[DictConfig, dict[str, Any]]:
    """A composition that names configs the app stores in Hydra's ConfigStore when it is
    imported (a structured config's schema), which yanex's process does not have: the app
    composes it, in a process of its own run as the app runs (its folder, environment and
    command line), and stops before its task: ``yanex.hydra_callback.Composer`` hands the
    composition back. Not cached: the app's code made it. ``missing`` is said when the app
    cannot compose it either (a misspelt option)."""
    import json
    import subprocess
    import sys
    import tempfile

    from omegaconf import OmegaConf

    app = source.app
    assert app is not None
    args = [sys.executable, str(app.script), *texts, hydra_app.COMPOSER_OVERRIDE]
    if source.tree is not None and source.tree.resolve() != app.config_dir:
        args += ["--config-path", str(source.tree.resolve())]
    if source.name is not None and source.name != app.config_name:
        args += ["--config-name", source.name]
    environ = dict(source.environ if source.environ is not None else os.environ)
    with tempfile.TemporaryDirectory(prefix="yanex-compose-") as folder:
        report = Path(folder, "composed.json")
        environ[hydra_app.COMPOSE_TO_ENV] = str(report)
        try:
            done = subprocess.run(
                args,
                cwd=source.cwd,
                env=environ,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=APP_COMPOSE_TIMEOUT,
            )
        except subprocess.TimeoutExpired as exc:
            raise ParamError(
                f"{app.script.name} did not compose its config within "
                f"{APP_COMPOSE_TIMEOUT:g} s (it stores configs in Hydra's ConfigStore, so yanex "
                "asks the app itself)"
            ) from exc
        except OSError as exc:
            raise ParamError(f"{app.script.name} cannot be started: {exc}") from exc
        try:
            data = json.loads(report.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = None
    if not isinstance(data, dict) or not isinstance(data.get("config"), str):
        said = _hydras_error(done.stderr.decode("utf-8", "replace"))
        if "Could not find" in said or "Could not load" in said or not said:
            raise ParamError(missing)
        raise ParamError(f"{app.script.name} cannot compose its config: {said}")
    cfg = OmegaConf.create(data.pop("config"))
    OmegaConf.set_struct(cfg, False)
    return cfg, _info(source, data)  # type: ignore[return-value]


def _hydras_error(stderr: str) -> str:
    """The message Hydra printed when an app failed, in one line: the lines before Hydra's
    "Set the environment variable HYDRA_FULL_ERROR" back to the app's own output or Python's
    warnings, without the config search path and the keys' types."""
    lines = stderr.splitlines()
    end = next(
        (i for i, line in enumerate(lines) if line.startswith("Set the environment variable")),
        len(lines),
    )
    said: list[str] = []
    for line in reversed(lines[:end]):
        if "Warning" in line or line.startswith(("  @hydra.main", "See https://")):
            break
        if not line[:1].isspace():  # indented: the keys' types, a list of options
            said.insert(0, line.strip())
    if "Config search path:" in said:
        said = said[: said.index("Config search path:")]
    kept = [line for line in said if line and not line.startswith(("full_key:", "object_"))]
    return " ".join(line for line in kept if not line.startswith("reference_type"))


def _output_dirs(hydra: Any) -> dict[str, str]:
    """Hydra's output folders the user chose (in the config or on the command line), as
    written: ``run_dir`` (``hydra.run.dir``), ``sweep_dir`` (``hydra.sweep.dir`` and
    ``subdir``, for a grid's members); none when they are Hydra's defaults (yanex then puts
    the app's output in the experiment folder)."""
    import yaml
    from hydra import __file__ as hydra_init
    from omegaconf import OmegaConf

    defaults_file = Path(hydra_init).parent / "conf" / "hydra" / "output" / "default.yaml"
    defaults = yaml.safe_load(defaults_file.read_text(encoding="utf-8"))
    given = OmegaConf.to_container(hydra, resolve=False)
    found = {}
    if given["run"]["dir"] != defaults["run"]["dir"]:
        found["run_dir"] = str(given["run"]["dir"])
    if given["sweep"] != defaults["sweep"]:
        found["sweep_dir"] = f"{given['sweep']['dir']}/{given['sweep']['subdir']}"
    return found


@dataclasses.dataclass(frozen=True)
class CompositionCache:
    """Hydra's composition of a tree with some overrides, kept in ``$YANEX_HOME/cache`` and
    read back while nothing it came from changed: the same tree (each YAML file's path, size,
    mtime and inode), config name, version base and overrides, the same Hydra, OmegaConf,
    Python and yanex code that made it (this module, and ``sources``, which marks the strings
    read). Importing Hydra costs more than the rest of a run's start; most
    runs compose what the last one composed. The config is stored unresolved
    (interpolations, ``${now:}``, ``${oc.env:}`` in values are resolved per run, as always)
    with ``marshal``, behind a checksum: exact for plain data, int keys included.

    Not cached, composed by Hydra each time: a tree with a symlinked folder or more than
    ``MAX_FILES`` entries, an interpolation in a defaults list (``- model: ${oc.env:M}``), a
    process that registered configs of its own in Hydra's ConfigStore, a search path beyond
    the tree, and anything Hydra refuses."""

    path: Path

    MAX_ENTRIES = 512
    MAX_FILES = 2_000

    @classmethod
    def of(cls, source: sources.Source, texts: list[str]) -> CompositionCache | None:
        """The cache entry for this composition; None when it cannot be fingerprinted."""
        import hashlib
        import importlib.util
        import marshal
        import sys

        from yanex import store

        if source.tree is None or _own_structured_configs():
            return None
        tree = source.tree.resolve()
        try:
            files = _yaml_files(tree, cls.MAX_FILES)
            if files is None:
                return None
            libraries = []
            for name in ("hydra", "omegaconf"):
                spec = importlib.util.find_spec(name)
                if spec is None or spec.origin is None:
                    return None
                st = os.stat(spec.origin)
                libraries.append((spec.origin, st.st_size, st.st_mtime_ns))
            ours = []
            for path in _OURS:
                st = os.stat(path)
                ours.append((path, st.st_size, st.st_mtime_ns))
        except (OSError, ImportError, ValueError):
            return None
        version_base = source.app.version_base if source.app is not None else "1.3"
        key = (
            4,  # the entry's format
            sys.version,
            tuple(ours),
            tuple(libraries),
            str(tree),
            source.name,
            version_base,
            tuple(texts),
            tuple(files),
        )
        digest = hashlib.sha256(marshal.dumps(key)).hexdigest()[:32]
        return cls(store.yanex_home() / "cache" / "compositions" / f"{digest}.marshal")

    def read(self) -> tuple[DictConfig, dict[str, Any]] | None:
        import hashlib
        import marshal

        try:
            data = self.path.read_bytes()
        except OSError:
            return None  # none yet: Hydra composes
        checksum, payload = data[:32], data[32:]
        if hashlib.sha256(payload).digest() != checksum:
            return None  # damaged: marshal is not made for bad input, so it never sees it
        try:
            entry = marshal.loads(payload)
        except (ValueError, EOFError, TypeError):
            return None
        if not _is_entry(entry):
            return None  # of another shape (made by hand, or by other code): compose again
        config, info = entry
        from omegaconf import OmegaConf
        from omegaconf.errors import OmegaConfBaseException

        try:
            cfg = OmegaConf.create(config)
        except (OmegaConfBaseException, ValueError, TypeError):
            return None
        OmegaConf.set_struct(cfg, False)
        return cfg, info

    def write(self, config: Any, info: dict[str, Any]) -> None:
        """Keep it for the next run; a cache that cannot be written is no error."""
        import hashlib
        import marshal

        from yanex import store

        try:
            payload = marshal.dumps((config, info))
        except ValueError:
            return  # something marshal cannot hold: compose again next time
        data = hashlib.sha256(payload).digest() + payload
        with contextlib.suppress(OSError):
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            store.write_bytes_atomic(self.path, data, durable=False)
            entries = list(self.path.parent.iterdir())
            if len(entries) > self.MAX_ENTRIES:  # the oldest half goes
                entries.sort(key=lambda entry: entry.stat().st_mtime_ns)
                for entry in entries[: len(entries) // 2]:
                    entry.unlink(missing_ok=True)


def _yaml_files(tree: Path, limit: int) -> list[tuple[str, int, int, int]] | None:
    """Each YAML file of a tree (the only files Hydra reads there): its path, size, mtime and
    inode, sorted. None when the tree cannot be fingerprinted so: a symlinked folder (its files
    may change elsewhere), more than ``limit`` entries (a project's whole folder, data and
    all), or a defaults list with an interpolation (its choice depends on more than files)."""

    found = []
    seen = 0
    folders = [str(tree)]
    while folders:
        folder = folders.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                seen += 1
                if seen > limit:
                    return None
                if entry.is_dir(follow_symlinks=False):
                    if entry.name != ".git":
                        folders.append(entry.path)
                elif entry.is_symlink() and entry.is_dir():
                    return None
                elif entry.name.endswith((".yaml", ".yml")):
                    st = entry.stat()
                    if _interpolated_defaults(entry.path):
                        return None
                    rel = os.path.relpath(entry.path, tree)
                    found.append((rel, st.st_size, st.st_mtime_ns, st.st_ino))
    return sorted(found)


def _interpolated_defaults(path: str) -> bool:
    """Does this config's defaults list hold an interpolation (``- db: ${oc.env:DB}``)? The
    file is read as YAML (the ``defaults`` key however it is spelled, block or flow style,
    aliases and escapes included); one that cannot be read is not cached either (Hydra says
    what is wrong with it). A file without ``$`` or ``\\`` cannot spell ``${``: not parsed."""
    import yaml

    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    if "$" not in text and "\\" not in text:
        return False
    try:
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (yaml.YAMLError, RecursionError, ValueError):
        return True
    if not isinstance(data, dict) or "defaults" not in data:
        return False
    stack = [data["defaults"]]
    while stack:
        node = stack.pop()
        if isinstance(node, str) and "${" in node:
            return True
        if isinstance(node, dict):
            stack.extend(node)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


_NAMED = ("config_dir", "config_name")
_OUTPUTS = ("run_dir", "sweep_dir")


def _is_entry(entry: Any) -> bool:
    """Is a cache entry what :meth:`CompositionCache.write` writes: ``(config, info)``, the
    config a mapping of plain data, ``info`` the composition's record (its choices and
    overrides)? Anything else is composed again."""
    if not (isinstance(entry, tuple) and len(entry) == 2):
        return False
    config, info = entry
    if not (isinstance(config, dict) and _plain(config) and isinstance(info, dict)):
        return False
    choices, overrides = info.get("choices"), info.get("overrides")
    return (
        set(info) <= {"config_dir", "config_name", "choices", "overrides", "app", *_OUTPUTS}
        and all(isinstance(info.get(key, ""), str) for key in _OUTPUTS)
        and all(isinstance(info.get(key), (str, type(None))) for key in _NAMED)
        and isinstance(choices, dict)
        and all(isinstance(k, str) for k in choices)
        and _plain(choices)
        and isinstance(overrides, list)
        and all(isinstance(text, str) for text in overrides)
        and isinstance(info.get("app", {}), dict)
        and _plain(info.get("app", {}))
    )


def _plain(node: Any) -> bool:
    """Plain data only (what a composition holds): mappings, lists, strings, numbers, bools
    and None; keys strings, ints, floats or bools. Checked without recursion."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if not all(isinstance(k, (str, int, float, bool)) for k in item):
                return False
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif not (item is None or isinstance(item, (str, int, float, bool))):
            return False
    return True


def _own_structured_configs() -> bool:
    """Has this process stored configs in Hydra's ConfigStore (a program calling
    yanex.launch)? Then a composition may read them, and they are not files to fingerprint."""
    import sys

    if "hydra.core.config_store" not in sys.modules:
        return False  # Hydra not imported: nothing can have been stored
    from hydra.core.config_store import ConfigStore

    own = {"hydra", "_dummy_empty_config_.yaml"}  # what Hydra stores itself
    return any(name not in own for name in ConfigStore.instance().repo)


def files_read(source: sources.Source, compositions: list[list[str]]) -> set[Path]:
    """The files of the tree these compositions read (their defaults lists, resolved by
    Hydra). It costs about as much as composing again, so it is asked only when git finds
    files in the tree that it does not track."""
    if source.tree is None:
        return set()
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from hydra.types import RunMode

    tree = source.tree.resolve()
    found: set[Path] = set()
    try:
        with _initialized(source), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            loader = GlobalHydra.instance().config_loader()
            for texts in compositions:
                defaults = loader.compute_defaults_list(source.name, texts, RunMode.RUN).defaults
                found.update(
                    tree / f"{item.config_path}.yaml" for item in defaults if item.config_path
                )
    except HydraException:
        # Configs only the app has (ConfigStore): every file of the tree counts as read.
        found = {path.resolve() for path in tree.rglob("*.y*ml")}
    return found


def _missing_message(exc: Exception, source: sources.Source) -> str:
    text = str(exc)
    match = re.search(r"Could not find '([^']+)'", text)
    if match and "/" in match.group(1):
        group, _, option = match.group(1).rpartition("/")
        available = sources.options(source.tree, group)
        import difflib

        close = difflib.get_close_matches(option, available, n=1, cutoff=0.6)
        suggestion = f"did you mean {close[0]}? " if close else ""
        return (
            f"config group '{group}' has no option '{option}'; {suggestion}"
            f"available: {', '.join(available) or 'none'}"
        )
    if source.tree is not None and not (source.tree / f"{source.name}.yaml").exists():
        return f"no primary config '{source.name}.yaml' in {source.tree} (see --config-name)"
    return text.splitlines()[0]


_NO_KEY = re.compile(r"Could not (?:override|delete from config)[^']*'([^']+)'")


def _composition_error(exc: Exception, source: sources.Source, texts: list[str]) -> ParamError:
    """Hydra's refusal in one paragraph; a key the config lacks gets "did you mean" when a
    close key exists (found in the config composed without that override)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    lines = [
        line for line in lines if not line.startswith(("See https://", "full_key:", "object_"))
    ]
    message = f"the config in {source.tree} cannot be composed: {' '.join(lines)}"
    match = _NO_KEY.search(str(exc))
    if match:
        key = match.group(1)
        others = [text for text in texts if _text_key(text) != key]
        with contextlib.suppress(ParamError):
            cfg, _ = compose(source, others)
            message += did_you_mean(key, cfg)
    return ParamError(message)


def _text_key(text: str) -> str:
    return text.split("=", 1)[0].lstrip("+~").split("@", 1)[0]


def did_you_mean(key: str, cfg: DictConfig) -> str:
    """``" (did you mean model.lr?)"`` when ``cfg`` has a key close to ``key``."""
    from omegaconf import OmegaConf

    close = close_key(key, dotted_keys(OmegaConf.to_container(cfg, resolve=False)))
    return f" (did you mean {close}?)" if close else ""


def sweeper_params(source: sources.Source, texts: list[str]) -> list[str]:
    """The sweeps ``hydra.sweeper.params`` of the tree gives a multirun (Hydra's tutorial
    5_basic_sweep: ``db: glob(*)``, ``db.timeout: 5,10``), as Hydra's basic sweeper reads
    them: ``key=value`` each, before the command line's overrides. Composed as Hydra composes
    for ``--multirun`` (a group left ``???`` is allowed), with the overrides that are not
    sweeps. A tree whose files never mention a sweeper has none: Hydra is not asked."""
    if source.tree is None or not (
        any("sweeper" in text for text in texts) or _mentions(source.tree, "sweeper")
    ):
        return []
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from hydra.types import RunMode
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        with _initialized(source), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            loader = GlobalHydra.instance().config_loader()
            cfg = loader.load_configuration(source.name, texts, RunMode.MULTIRUN)
    except (HydraException, OmegaConfBaseException, ValueError, TypeError) as exc:
        raise _composition_error(exc, source, texts) from exc
    sweeper = OmegaConf.select(cfg, "hydra.runtime.choices", default={}).get("hydra/sweeper")
    params = OmegaConf.to_container(cfg.hydra.sweeper, resolve=False).get("params") or {}
    if sweeper not in (None, "basic"):
        raise ParamError(
            f"the config in {source.tree} chooses Hydra's {sweeper} sweeper (hydra/sweeper); "
            "yanex -m runs grids as Hydra's basic sweeper makes them",
            hint="Run the app under Hydra for that sweeper (python app.py -m), or choose the "
            "basic sweeper: hydra/sweeper=basic.",
        )
    return [f"{key}={value}" for key, value in params.items()]


def _mentions(tree: Path, word: str) -> bool:
    """Does any YAML file of the tree hold ``word``? (A quick look, before asking Hydra.)"""
    for path in sorted(tree.rglob("*.y*ml")):
        with contextlib.suppress(OSError):
            if path.is_file() and word in path.read_text(encoding="utf-8", errors="replace"):
                return True
    return False


def replay_pins(
    source: sources.Source,
    texts: list[str],
    recorded: Mapping[str, Any],
    choices: Mapping[str, Any],
    where: str,
) -> list[str]:
    """The overrides that make the tree, composed with ``texts`` (the overrides a recorded run
    of an app was composed with), give exactly ``recorded`` (the parameters it recorded) and
    its group ``choices``: ``group=option`` for each option the tree's defaults no longer
    pick; then ``++key=value`` for each value that differs still (the tree changed since, or
    the value came from the clock, the environment or the app's own resolver), ``~key`` for
    each key the tree gained. The result is checked by composing again with them; a config
    that cannot be made so is refused, with why (``where`` names the recorded run)."""
    from yanex.config.overrides import render_value

    cfg, now = _replay_composition(source, texts, where)
    pins = [
        f"{'+' if group not in now else ''}{group}={render_value(option)}"
        for group, option in choices.items()
        if group not in now or now[group] != option
    ]
    pins += [f"~{group}" for group in now if group not in choices]
    if pins:
        cfg, _ = _replay_composition(source, [*texts, *pins], where)
    pins += _pins(recorded, _resolved_as_recorded(cfg, where))
    if pins:
        again, _ = _replay_composition(source, [*texts, *pins], where)
        left = hydra_app.differences(dict(recorded), _resolved_as_recorded(again, where))
        if left:
            raise ParamError(
                f"{where} cannot be composed again from {source.tree or 'the app'}: its values at "
                f"{', '.join(left[:5])} cannot be given back",
                hint=_REPLAY_HINT,
            )
    return pins


_REPLAY_HINT = (
    "Rerun it with --worktree (the app composes the tree it ran with), or run the app anew."
)


def _replay_composition(
    source: sources.Source, texts: list[str], where: str
) -> tuple[DictConfig, dict[str, Any]]:
    """The composition and its group choices."""
    try:
        cfg, info = compose(source, texts)
    except ParamError as exc:
        raise ParamError(
            f"{where} cannot be composed again from {source.tree or 'the app'}: {exc.message}",
            hint=_REPLAY_HINT,
        ) from exc
    mark_plain_sweeps(cfg, f"the config in {source.tree}", resolvers.Placeholders(), [])
    return cfg, info["choices"]


def _resolved_as_recorded(cfg: DictConfig, where: str) -> dict[str, Any]:
    """The composition resolved as its record holds it; an app's own resolvers' values as
    text (they differ from the recorded ones, so they are given back)."""
    try:
        return resolvers.to_container(cfg, resolvers.left_to_app(cfg))
    except ParamError as exc:
        raise ParamError(
            f"{where} cannot be composed again: {exc.message}", hint=_REPLAY_HINT
        ) from exc


def _pins(recorded: Any, now: Any, prefix: str = "") -> list[str]:
    """``++key=value`` and ``~key`` overrides that turn ``now`` into ``recorded``."""
    from yanex.config.overrides import render_value

    found = []
    for key in [*recorded, *(k for k in now if k not in recorded)]:
        path = f"{prefix}.{key}" if prefix else str(key)
        if key not in recorded:
            found.append(f"~{path}")
        elif key in now and isinstance(recorded[key], dict) and isinstance(now[key], dict):
            found += _pins(recorded[key], now[key], path)
        elif key not in now or hydra_app.differences(recorded[key], now[key]):
            found.append(f"++{path}={render_value(_literal(recorded[key]))}")
    return found


def _literal(value: Any) -> Any:
    """A recorded value given back as itself: ``${`` in its text escaped (``\\${``), so
    that it is not read as an interpolation."""
    if isinstance(value, str):
        return value.replace("${", "\\${")
    if isinstance(value, dict):
        return {key: _literal(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_literal(item) for item in value]
    return value


def compose_grid(
    source: sources.Source, overrides: list[ParamOverride], placed: resolvers.Placeholders
) -> tuple[list[Composition], list[tuple[str, sweeps.Sweep]], list[list[str]]]:
    """Compose the tree once per combination of swept groups, value sweeps put in each.

    Returns ``(cfg, varied groups, hydra info)`` per composition, the group sweeps, and the
    overrides each composition was given (to find, when needed, the files it read).
    """
    # The last override of a key wins; what compose() cannot take is applied after it.
    last: dict[str, ParamOverride] = {}
    for ov in overrides:
        last.pop(ov.target, None)
        last[ov.target] = ov
    fixed: list[str] = []
    group_sweeps: list[tuple[ParamOverride, sweeps.Sweep]] = []
    value_sweeps: list[ParamOverride] = []
    for ov in last.values():
        if ov.sweep is None:
            fixed.append(ov.replay_text)
        elif sources.is_group(source.tree, ov.key):
            sweep = ov.sweep
            if sweep.glob is not None:
                sweep = sweeps.globbed(sweep, ov.key, sources.options(source.tree, ov.key))
            group_sweeps.append((ov, sweep))
        elif ov.sweep.glob is not None:
            raise ParamError(
                f"{ov.shown}: glob() selects options of a config group, and '{ov.key}' is not "
                f"a group of {source.tree}",
                hint=f"A group is a folder of the tree; sweep a value with {ov.key}=list(a, b).",
            )
        else:
            value_sweeps.append(ov)

    compositions: list[Composition] = []
    given: list[list[str]] = []
    for choice in _group_choices(group_sweeps):
        texts = fixed + [ov.concrete(value) for ov, value in choice]
        cfg, info = compose(source, texts)
        given.append(texts)
        _apply_value_sweeps(cfg, value_sweeps, source, placed)
        info["overrides"] += [f"{ov.prefix}{ov.target}={ov.sweep.expr}" for ov in value_sweeps]  # type: ignore[union-attr]
        compositions.append((cfg, {ov.target: value for ov, value in choice}, info))
    return compositions, [(ov.target, sweep) for ov, sweep in group_sweeps], given


def _group_choices(
    group_sweeps: list[tuple[ParamOverride, sweeps.Sweep]],
) -> Iterator[list[tuple[ParamOverride, Any]]]:
    """Every combination of swept group options, the last group varying fastest."""
    if not group_sweeps:
        yield []
        return
    import numpy

    shape = tuple(len(sweep.values) for _, sweep in group_sweeps)
    for index in numpy.ndindex(*shape):
        yield [(ov, sweep.values[i]) for (ov, sweep), i in zip(group_sweeps, index, strict=True)]


def _apply_value_sweeps(
    cfg: DictConfig,
    value_sweeps: list[ParamOverride],
    source: sources.Source,
    placed: resolvers.Placeholders,
) -> None:
    """Put each value sweep in the composed config, with Hydra's rule that a plain
    ``key=...`` changes an existing key (``+key=...`` adds one)."""
    from omegaconf import DictConfig, OmegaConf

    missing = object()
    for ov in value_sweeps:
        assert ov.sweep is not None
        current = OmegaConf.select(cfg, ov.key, default=missing)
        if ov.op == "set" and current is missing:
            raise ParamError(
                f"{ov.shown}: there is no '{ov.key}' in the config composed from "
                f"{source.tree}{did_you_mean(ov.key, cfg)}",
                hint=f"To add it, write +{ov.text.lstrip('+')}",
            )
        if ov.op == "add" and current is not missing:
            raise ParamError(f"{ov.shown}: '{ov.key}' is already set; use {ov.text.lstrip('+')}")
        under = None
        if isinstance(current, DictConfig) and any(isinstance(v, dict) for v in ov.sweep.values):
            under = OmegaConf.to_container(current, resolve=False)
        text = placed.place(dataclasses.replace(ov.sweep, under=under))
        OmegaConf.update(cfg, ov.key, text, merge=False, force_add=True)
