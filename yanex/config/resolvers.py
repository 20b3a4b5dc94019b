"""OmegaConf's resolvers as yanex resolves a config: the sweeps (``${list:...}``, and the
placeholders overrides put in a config), Hydra's ``${now:}`` and ``${python_version:}``; and
one member's config resolved into the plain dict ``params.json`` holds.

The resolvers are in OmegaConf's global registry only while yanex resolves a config
(:func:`resolvers`): a program that calls ``yanex.launch`` keeps its own ``${range:...}``.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from yanex.config import sweeps
from yanex.errors import ParamError

if TYPE_CHECKING:
    from omegaconf import DictConfig

# How Hydra writes a missing value.
MISSING = "???"

# Sweeps given on the command line or as plain text wait here; the config holds a
# ``${yanex.sweep:N}`` interpolation in their place until the grid is expanded.
_pending: list[sweeps.Sweep] = []


def placeholder(sweep: sweeps.Sweep) -> str:
    """An interpolation that stands for ``sweep`` in a config until the grid is expanded."""
    _pending.append(sweep)
    return f"${{{sweeps.PLACEHOLDER_RESOLVER}:{len(_pending) - 1}}}"


# yanex's resolvers are in OmegaConf's global registry only while yanex resolves a config. A
# lock (reentrant: resolving may nest) keeps two threads from restoring each other's state.
_registry_lock = threading.RLock()


def _not_whole(*args: Any) -> Any:
    raise sweeps.SweepValueError(f"{sweeps.NOT_WHOLE}, not part of a longer one")


@contextlib.contextmanager
def resolvers(expand: bool = True) -> Iterator[None]:
    """Make ``${list:...}``, ``${range:...}``, ``${linspace:...}``, ``${logspace:...}`` (and the
    placeholders) resolve to :class:`Sweep` objects for the duration, then put back exactly
    what was registered under those names before: a calling program's own ``range``
    resolver, or nothing.

    Without ``expand`` they raise instead: a member's config has every whole-value sweep
    replaced by its value, so a sweep resolved then is part of a longer value
    (``run-${list:a,b}``), which would otherwise become the text of a Sweep object.
    """
    from omegaconf import OmegaConf
    from omegaconf.basecontainer import BaseContainer

    # OmegaConf has no public way to read a resolver back, so its registry is saved as is.
    registry = BaseContainer._resolvers
    names = (*sweeps.FUNCTIONS, sweeps.PLACEHOLDER_RESOLVER)
    with _registry_lock:
        saved = {name: registry[name] for name in names if name in registry}
        try:
            for name in sweeps.FUNCTIONS:
                resolver = (
                    (lambda *args, _name=name: sweeps.make(_name, args)) if expand else _not_whole
                )
                OmegaConf.register_new_resolver(name, resolver, replace=True, use_cache=False)
            pending = (lambda index: _pending[int(index)]) if expand else _not_whole
            OmegaConf.register_new_resolver(
                sweeps.PLACEHOLDER_RESOLVER, pending, replace=True, use_cache=False
            )
            yield
        finally:
            for name in names:
                registry.pop(name, None)
            registry.update(saved)


def to_container(cfg: DictConfig) -> dict[str, Any]:
    """Resolve interpolations into a plain dict that JSON and YAML both hold the same way:
    keys are strings (``1`` -> ``"1"``, ``true`` -> ``"true"``, as JSON writes them) and a
    missing value (``???``), or one interpolated from it, stays ``???``."""
    from omegaconf.errors import OmegaConfBaseException

    try:
        with resolvers(expand=False), _hydra_resolvers():
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
