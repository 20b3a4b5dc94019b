"""OmegaConf's resolvers as yanex resolves a config: the sweeps (``${list:...}``, and the
placeholders overrides put in a config), Hydra's ``${now:}`` and ``${python_version:}``; and
one member's config resolved into the plain dict ``params.json`` holds.

The resolvers are in OmegaConf's global registry only while yanex resolves a config
(:func:`expanding`, :func:`resolving`), changed in one place under one lock: a program that
calls ``yanex.launch`` keeps its own ``${range:...}``. Nothing here outlives a resolution: the
sweeps a resolution places in its config are held by its own :class:`Placeholders`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from yanex.config import sweeps
from yanex.errors import ParamError

if TYPE_CHECKING:
    from omegaconf import DictConfig

# How Hydra writes a missing value.
MISSING = "???"


class Placeholders:
    """The sweeps one resolution put in its config, each standing there as ``${yanex.sweep:N}``
    until the grid is found: owned by that resolution and freed with it."""

    def __init__(self) -> None:
        self._sweeps: list[sweeps.Sweep] = []

    def place(self, sweep: sweeps.Sweep) -> str:
        """The interpolation that stands for ``sweep`` in the config until the grid is found."""
        self._sweeps.append(sweep)
        return f"${{{sweeps.PLACEHOLDER_RESOLVER}:{len(self._sweeps) - 1}}}"

    def __getitem__(self, index: int) -> sweeps.Sweep:
        return self._sweeps[index]


@contextlib.contextmanager
def expanding() -> Iterator[Placeholders]:
    """While a config is composed and its sweeps found: ``${list:...}``, ``${range:...}``,
    ``${linspace:...}``, ``${logspace:...}`` and the placeholders of the :class:`Placeholders`
    yielded resolve to :class:`Sweep` objects."""
    placed = Placeholders()
    ours = {name: _sweep_function(name) for name in sweeps.FUNCTIONS}
    ours[sweeps.PLACEHOLDER_RESOLVER] = lambda index: placed[int(index)]
    with _registered(ours):
        yield placed


@contextlib.contextmanager
def resolving() -> Iterator[None]:
    """While a member's config is resolved: every whole-value sweep has been replaced by its
    value, so a sweep resolved now is part of a longer value (``run-${list:a,b}``) and is
    refused, instead of becoming the text of a Sweep object."""
    ours = {name: _not_whole for name in (*sweeps.FUNCTIONS, sweeps.PLACEHOLDER_RESOLVER)}
    with _registered(ours):
        yield


def _sweep_function(name: str) -> Any:
    return lambda *args: sweeps.make(name, args)


def _not_whole(*args: Any) -> Any:
    raise sweeps.SweepValueError(f"{sweeps.NOT_WHOLE}, not part of a longer one")


# The one lock under which yanex changes OmegaConf's registry (reentrant: resolving may nest).
_LOCK = threading.RLock()


@contextlib.contextmanager
def _registered(ours: dict[str, Any]) -> Iterator[None]:
    """The one place yanex changes OmegaConf's global registry: ``ours`` and Hydra's own
    ``now`` and ``python_version`` (unless already there) are registered for the block, under
    one lock, so that two threads resolving at once take turns. Afterwards each name holds what
    it held before (a calling program's own ``range``, or nothing); a resolver that another
    thread registered meanwhile (Hydra registers ``now`` whenever it composes) is left to it."""
    from omegaconf import OmegaConf
    from omegaconf.basecontainer import BaseContainer

    # OmegaConf has no public way to read a resolver back, so its registry is read as is.
    registry = BaseContainer._resolvers
    with _LOCK:
        wanted = {name: (resolver, False) for name, resolver in ours.items()}
        wanted.update(
            (name, hydras) for name, hydras in _hydra_resolvers().items() if name not in registry
        )
        saved = {name: registry[name] for name in wanted if name in registry}
        mine = {}
        for name, (resolver, cached) in wanted.items():
            OmegaConf.register_new_resolver(name, resolver, replace=True, use_cache=cached)
            mine[name] = registry[name]
        try:
            yield
        finally:
            for name, resolver in mine.items():
                if registry.get(name) is not resolver:
                    continue  # registered again by another thread meanwhile: theirs now
                if name in saved:
                    registry[name] = saved[name]
                else:
                    del registry[name]


def to_container(cfg: DictConfig, unresolved: Sequence[str] = ()) -> dict[str, Any]:
    """Resolve interpolations into a plain dict that JSON and YAML both hold the same way:
    keys are strings (``1`` -> ``"1"``, ``true`` -> ``"true"``, as JSON writes them) and a
    missing value (``???``), or one interpolated from it, stays ``???``. The keys named in
    ``unresolved`` keep their text (see :func:`left_to_app`)."""
    from omegaconf.errors import OmegaConfBaseException

    try:
        with resolving():
            data = _resolve_keeping_missing(_as_text(cfg, unresolved))
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


def left_to_app(cfg: DictConfig) -> list[str]:
    """The keys of a ``@hydra.main`` app's config whose value needs a resolver that only the
    app has (one it registers when it is imported: ``${double:${a}}``), or a value that does.
    yanex records their text until the app runs; the app resolves them, and its callback
    records what they became."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException, UnsupportedInterpolationType

    left = []
    with resolving():
        for key, leaf in sweeps.leaves(OmegaConf.to_container(cfg, resolve=False)):
            if not (isinstance(leaf, str) and "${" in leaf):
                continue
            try:
                OmegaConf.select(cfg, key, throw_on_missing=False)
            except UnsupportedInterpolationType:
                left.append(key)
            except (OmegaConfBaseException, RecursionError):
                pass  # any other problem is said when the config is resolved
    return left


def _as_text(cfg: DictConfig, keys: Sequence[str]) -> DictConfig:
    """A copy of ``cfg`` whose values at ``keys`` are their text, escaped (``\\${...}``), so
    that resolving it gives the text as written."""
    if not keys:
        return cfg
    from omegaconf import OmegaConf

    text = OmegaConf.to_container(cfg, resolve=False)
    work = cfg.copy()
    for key in keys:
        node: Any = text
        for part in key.split("."):
            node = node[int(part)] if isinstance(node, list) else node.get(part)
        if isinstance(node, str):
            OmegaConf.update(work, key, node.replace("${", "\\${"), merge=False)
    return work


def _resolve_keeping_missing(cfg: DictConfig) -> Any:
    """``OmegaConf.to_container(resolve=True)``, where an interpolation of a missing value
    becomes missing too instead of an error (Hydra leaves both for the script to meet)."""
    from omegaconf import OmegaConf
    from omegaconf.errors import InterpolationToMissingValueError

    work = cfg
    while True:
        try:
            # an app's structured config may hold enums: recorded by name, as Hydra writes them
            return OmegaConf.to_container(
                work, resolve=True, throw_on_missing=False, enum_to_str=True
            )
        except InterpolationToMissingValueError as exc:
            if work is cfg:
                work = cfg.copy()
            OmegaConf.update(work, str(exc.full_key), MISSING, merge=False)


def _hydra_resolvers() -> dict[str, tuple[Any, bool]]:
    """The resolvers Hydra registers when it composes a tree (``now``, ``python_version``), as
    Hydra defines them (and whether OmegaConf caches their value), so that ``${now:%Y}`` means
    the same in a plain config as in a tree."""
    import sys
    from datetime import datetime

    version = sys.version_info
    versions = {
        "major": f"{version[0]}",
        "minor": f"{version[0]}.{version[1]}",
        "micro": f"{version[0]}.{version[1]}.{version[2]}",
    }
    return {
        "now": (lambda pattern: datetime.now().strftime(pattern), True),
        "python_version": (lambda level="minor": versions.get(level), False),
    }


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
