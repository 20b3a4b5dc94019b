"""Hydra config groups: compose a ``conf/`` tree with Hydra's Compose API.

A project with a ``conf/`` folder (or ``--config-dir``) is composed as Hydra would: its
primary config's defaults list picks an option per group (``conf/model/small.yaml``), and
``--param`` / ``YANEX_PARAM_*`` overrides use Hydra's rules: ``model=large`` selects an
option, ``model.width=128`` changes a value (it must exist), ``+key=value`` adds one,
``~key`` removes one, ``group@package=option`` places a group. A sweep over a group composes
once per option; a sweep over a value is applied to each composition afterwards (Hydra's
``compose()`` refuses sweeps). Hydra is imported only here, when a conf folder is used.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from yanex import sweeps
from yanex.errors import ParamError

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from yanex.params import ParamOverride

DEFAULT_DIR = "conf"
DEFAULT_NAME = "config"

_PREFIX = {"set": "", "add": "+", "force_add": "++", "delete": "~"}
_PLAIN_WORD = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_\-./]*$")


def quote(text: str) -> str:
    """``text`` as a single-quoted string of Hydra's grammar (always read back as a string)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def render_option(value: Any) -> str:
    """An option name (or any string) as override text Hydra's grammar reads back as is."""
    if isinstance(value, str) and _PLAIN_WORD.match(value):
        return value
    return quote(str(value))


def _key(ov: ParamOverride) -> str:
    return f"{ov.key}@{ov.package}" if ov.package else ov.key


def default_tree(cwd: Path, config_name: str = DEFAULT_NAME) -> Path | None:
    """``cwd/conf`` when it holds the primary config: the tree used without --config-dir
    (a primary config that is not a file, such as a FIFO, is refused when the tree is read)."""
    tree = cwd / DEFAULT_DIR
    return tree if (tree / f"{config_name}.yaml").exists() else None


def is_group(config_dir: Path, key: str) -> bool:
    """Is ``key`` (``model`` or ``model/encoder``) a config group of this tree?"""
    return (config_dir / key.replace(".", "/")).is_dir()


def options(config_dir: Path, group: str) -> list[str]:
    folder = config_dir / group.replace(".", "/")
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def hydra_text(ov: ParamOverride) -> str:
    """The override as Hydra's ``compose()`` takes it: as typed, except that a bare-comma
    value (``title=Hello, world``, one string to yanex) is quoted so Hydra sees no sweep."""
    value_text = ov.text.split("=", 1)[1] if "=" in ov.text else None
    if isinstance(ov.value, str) and "," in ov.value and value_text == ov.value:
        return f"{_PREFIX[ov.op]}{_key(ov)}={render_option(ov.value)}"
    return ov.text


def _compose(config_dir: Path, config_name: str, texts: list[str]) -> tuple[DictConfig, dict]:
    """One Hydra composition: the config (without its ``hydra`` node, not in struct mode) and
    what metadata records of it (the chosen option of each group, the overrides)."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException, MissingConfigException
    from omegaconf import OmegaConf, open_dict
    from omegaconf.errors import OmegaConfBaseException

    try:
        with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
            cfg = compose(config_name, overrides=texts, return_hydra_config=True)
    except MissingConfigException as exc:
        raise ParamError(_missing_message(exc, config_dir, config_name)) from exc
    except (HydraException, OmegaConfBaseException) as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        lines = [line for line in lines if not line.startswith("See https://")]
        raise ParamError(
            f"the config in {config_dir} cannot be composed: {' '.join(lines)}"
        ) from exc
    choices = {
        group: option
        for group, option in OmegaConf.to_container(cfg.hydra.runtime.choices).items()
        if not group.startswith("hydra/")
    }
    task = list(cfg.hydra.overrides.task)
    with open_dict(cfg):
        del cfg["hydra"]
    OmegaConf.set_struct(cfg, False)
    info = {
        "config_dir": str(config_dir),
        "config_name": config_name,
        "choices": choices,
        "overrides": task,
    }
    return cfg, info


def _missing_message(exc: Exception, config_dir: Path, config_name: str) -> str:
    text = str(exc)
    match = re.search(r"Could not find '([^']+)'", text)
    if match and "/" in match.group(1):
        group, _, option = match.group(1).rpartition("/")
        available = ", ".join(options(config_dir, group)) or "none"
        return f"config group '{group}' has no option '{option}'; available: {available}"
    if not (config_dir / f"{config_name}.yaml").exists():
        return f"no primary config '{config_name}.yaml' in {config_dir} (see --config-name)"
    return text.splitlines()[0]


def compose_grid(
    config_dir: Path, config_name: str, overrides: list[ParamOverride]
) -> tuple[list[tuple[DictConfig, dict[str, Any], dict[str, Any]]], list[tuple[str, Any]]]:
    """Compose the tree once per combination of swept groups, value sweeps put in each.

    Returns ``(cfg, varied groups, hydra info)`` per composition, and the group sweeps.
    """
    # The last override of a key wins; what compose() cannot take is applied after it.
    last: dict[str, ParamOverride] = {}
    for ov in overrides:
        last.pop(_key(ov), None)
        last[_key(ov)] = ov
    fixed: list[str] = []
    group_sweeps: list[tuple[str, ParamOverride]] = []
    value_sweeps: list[ParamOverride] = []
    for key, ov in last.items():
        if ov.sweep is None:
            fixed.append(hydra_text(ov))
        elif is_group(config_dir, ov.key):
            group_sweeps.append((key, ov))
        else:
            value_sweeps.append(ov)

    compositions = []
    for choice in _group_choices(group_sweeps):
        texts = fixed + [f"{_PREFIX[ov.op]}{key}={render_option(v)}" for (key, ov), v in choice]
        cfg, info = _compose(config_dir, config_name, texts)
        _apply_value_sweeps(cfg, value_sweeps)
        info["overrides"] += [f"{_PREFIX[ov.op]}{_key(ov)}={ov.sweep.expr}" for ov in value_sweeps]  # type: ignore[union-attr]
        compositions.append((cfg, {key: value for (key, _), value in choice}, info))
    return compositions, [(key, ov.sweep) for key, ov in group_sweeps]


def _group_choices(
    group_sweeps: list[tuple[str, ParamOverride]],
) -> Iterator[list[tuple[tuple[str, ParamOverride], Any]]]:
    """Every combination of swept group options, the last group varying fastest."""
    if not group_sweeps:
        yield []
        return
    import numpy

    shape = tuple(len(ov.sweep.values) for _, ov in group_sweeps)  # type: ignore[union-attr]
    for index in numpy.ndindex(*shape):
        yield [
            (item, item[1].sweep.values[i])  # type: ignore[union-attr]
            for item, i in zip(group_sweeps, index, strict=True)
        ]


def _apply_value_sweeps(cfg: DictConfig, value_sweeps: list[ParamOverride]) -> None:
    """Put each value sweep in the composed config, with Hydra's rule that a plain
    ``key=...`` changes an existing key (``+key=...`` adds one)."""
    from omegaconf import OmegaConf

    missing = object()
    for ov in value_sweeps:
        assert ov.sweep is not None
        exists = OmegaConf.select(cfg, ov.key, default=missing) is not missing
        if ov.op == "set" and not exists:
            raise ParamError(
                f"{ov.shown}: there is no '{ov.key}' in the composed config",
                hint=f"To add it, write +{ov.text.lstrip('+')}",
            )
        if ov.op == "add" and exists:
            raise ParamError(f"{ov.shown}: '{ov.key}' is already set; use {ov.text.lstrip('+')}")
        OmegaConf.update(cfg, ov.key, sweeps.placeholder(ov.sweep), merge=False, force_add=True)
