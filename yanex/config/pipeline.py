"""The config pipeline: from "where does the config come from" to one resolved config per
member of the run's grid, in the order of its stages.

1. ``sources``: a rerun's recorded parameters; else a ``@hydra.main`` app's own tree; else
   ``--config`` files (merged in order; one whose defaults list names groups is a Hydra tree);
   else ``--config-dir``; else a ``conf/`` tree next to the script, then in the current
   folder; else ``config.yaml`` there; else nothing.
2. ``overrides``: ``YANEX_PARAM_*`` then ``--param`` values, typed by Hydra's override grammar.
3. ``compose``: a Hydra tree with Hydra's Compose API and rules, or a plain config merged by
   OmegaConf. With no config found, the lowest layer is all there is: ``key=value`` must name
   a key the script reads (``reads``), else it is refused.
4. ``sweeps``: the sweeps found in the composed config and the grid they span; each member's
   config resolved (``resolvers``): ``???`` stays missing, keys become the strings JSON holds.

This is the only module that calls the stages, and none of them calls it. Also here, as the
same stages in another order: what shell completion offers (:func:`completions`) and the
parameters ``YANEX_PARAM_*`` give a script run without yanex (:func:`env_params`). OmegaConf
and Hydra's parser are imported inside the stages that need them: a run with no config and no
parameters pays for neither.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from yanex.config import compose, overrides, reads, resolvers, sources, sweeps
from yanex.dotted import nodes
from yanex.errors import ParamError

# A fixed order for shuffle() sweeps (by default each grid draws its own seed, recorded).
SHUFFLE_SEED_ENV = "YANEX_SHUFFLE_SEED"


@dataclass
class ResolvedParams:
    """The merged parameters of a run, as a grid whose members are not made yet, and where
    they came from."""

    grid: sweeps.Grid
    source: sources.Source = field(default_factory=sources.Source)
    parsed: list[overrides.ParamOverride] = field(default_factory=list)  # in the order applied
    warnings: list[str] = field(default_factory=list)  # said on stderr, kept in metadata
    shuffle_seed: int | None = None  # the seed shuffle() drew from, when it was used
    compositions: list[list[str]] = field(default_factory=list)  # a tree's, the overrides each
    settings: sources.Settings = field(default_factory=sources.Settings)  # the `yanex:` section
    _read: set[Path] | None = None

    @property
    def config_roots(self) -> list[Path]:
        """Where the run's config files are: the plain files, and the tree's folder."""
        tree = [self.source.tree.resolve()] if self.source.tree is not None else []
        return [*(path.resolve() for path in self.source.files), *tree]

    def reads(self, path: Path) -> bool:
        """Does this run read ``path`` (a file under :attr:`config_roots`)? For a tree, Hydra
        is asked which files its defaults lists read (once, and only when asked)."""
        if self._read is None:
            self._read = {p.resolve() for p in self.source.files}
            self._read |= compose.files_read(self.source, self.compositions)
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


@dataclass(frozen=True)
class Replay:
    """A rerun of a ``@hydra.main`` app: the parameters it must run with (the recorded ones,
    exactly), and the overrides its config was composed with."""

    params: Mapping[str, Any]
    overrides: Sequence[str]
    choices: Mapping[str, Any]  # the option of each config group
    experiment: str  # the recorded run's ID, for messages


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
    replay: Replay | None = None,
) -> ResolvedParams:
    """The run's parameters: source -> overrides -> composition -> grid (see the module
    docstring). ``base`` is a rerun's recorded parameters; ``replay`` a rerun of an app (see
    :func:`_replayed`); ``multirun`` reads bare comma lists as sweeps."""
    source = sources.find_source(
        cwd=cwd,
        script=script,
        config_paths=config_paths,
        config_dir=config_dir,
        config_name=config_name,
        base=base,
        environ=environ,
    )
    env_texts = overrides.env_override_texts(environ)
    if not source.found and not env_texts and not param_texts:
        # Nothing to merge: skip OmegaConf and the parser.
        return ResolvedParams(
            grid=sweeps.Grid([sweeps.Base(None, [])], resolve=resolvers.to_container)
        )

    seed = _shuffle_seed(environ)
    warnings: list[str] = []
    settings = sources.Settings()
    with sweeps.drawing(seed) as drawn:
        composed = source.composed
        texts = [*env_texts, *(("--param", text) for text in param_texts)]
        parsed = [
            overrides.parse_override(text, source=name, groups=composed, multirun=multirun)
            for name, text in texts
        ]
        if replay is not None and source.app is not None:
            parsed = [*_replayed(source, replay, parsed, warnings), *parsed]
        if multirun and composed:
            parsed = [*_swept_by_the_config(source, parsed), *parsed]
        with resolvers.expanding() as placed:
            if composed:
                if source.tree is not None:
                    sources.check_config_tree(source.tree)
                compositions, group_sweeps, given = compose.compose_grid(source, parsed, placed)
                swept = dict(group_sweeps)
                bases = []
                for cfg, varied, info in compositions:
                    compose.mark_plain_sweeps(cfg, f"the config in {source.tree}", placed, warnings)
                    positions = {key: swept[key].values.index(v) for key, v in varied.items()}
                    found = sweeps.find_in(cfg)
                    bases.append(sweeps.Base(cfg, found, varied, {"hydra": info}, positions))
            else:
                if not source.found and script is not None:
                    reads.check_script_reads(sources.absolute(script, cwd), parsed)
                cfg, settings = compose.compose_plain(source, parsed, placed, warnings)
                bases, group_sweeps, given = [sweeps.Base(cfg, sweeps.find_in(cfg))], [], []
        shuffle_seed = seed if drawn() else None
    # As Hydra's sweeper: the sweeps vary in the order typed (a key's first place), the
    # last fastest; the config's own sweeps first.
    typed = list(dict.fromkeys(ov.target for ov in parsed if ov.sweep is not None))
    in_config = [path for path, _ in bases[0].sweeps if path not in typed] if bases else []
    grid = sweeps.Grid(
        bases,
        resolve=_resolver(bases, source),
        group_sweeps=group_sweeps,
        order=[*in_config, *typed],
    )
    grid.check_size()
    return ResolvedParams(
        grid=grid,
        source=source,
        parsed=parsed,
        warnings=warnings,
        shuffle_seed=shuffle_seed,
        compositions=given,
        settings=settings,
    )


def _swept_by_the_config(
    source: sources.Source, parsed: list[overrides.ParamOverride]
) -> list[overrides.ParamOverride]:
    """Under -m, the sweeps the tree's ``hydra.sweeper.params`` gives, before the command
    line's overrides (which replace one of the same key), as Hydra's basic sweeper does."""
    fixed = [ov.replay_text for ov in parsed if ov.sweep is None]
    return [
        overrides.parse_override(text, source="hydra.sweeper.params", groups=True, multirun=True)
        for text in compose.sweeper_params(source, fixed)
    ]


def _replayed(
    source: sources.Source,
    replay: Replay,
    parsed: list[overrides.ParamOverride],
    warnings: list[str],
) -> list[overrides.ParamOverride]:
    """A rerun of an app composes its tree (the worktree's, with ``--worktree``) with the
    overrides it recorded, and with the pins that make that give exactly the recorded
    parameters whatever the tree holds today (see ``compose.replay_pins``). A new override
    that picks another option of a config group composes the tree anew instead."""
    where = f"experiment {replay.experiment}"
    texts = [str(text) for text in replay.overrides]
    if not any(sources.is_group(source.tree, ov.key) for ov in parsed):
        pins = compose.replay_pins(source, texts, replay.params, replay.choices, where)
        if pins:
            shown = " ".join(pins[:5]) + (" ..." if len(pins) > 5 else "")
            warnings.append(
                f"the app's config composes other values today than {where} recorded: "
                f"they are given back as recorded ({shown})"
            )
        texts += pins
    try:
        return [
            overrides.parse_override(text, source=f"the record of {where}", groups=True)
            for text in texts
        ]
    except ParamError as exc:
        raise ParamError(
            f"{where} cannot be composed again: {exc.message}",
            hint="Rerun it with --worktree, or run the app anew.",
        ) from exc


def _resolver(bases: list[sweeps.Base], source: sources.Source) -> Any:
    """How each member's config is resolved: as :func:`resolvers.to_container` does, except
    that the values of a ``@hydra.main`` app that need the app's own resolvers keep their
    text, listed in the composition's record (``resolved_by_app``) for the app to resolve."""
    if source.app is None:
        return resolvers.to_container
    left: list[str] = []
    for base in bases:
        found = resolvers.left_to_app(base.cfg) if base.cfg is not None else []
        if found:
            base.extra["hydra"]["resolved_by_app"] = found
            left += found
    if not left:
        return resolvers.to_container
    unresolved = tuple(dict.fromkeys(left))
    return lambda cfg: resolvers.to_container(cfg, unresolved)


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

    source = sources.find_source(
        cwd=cwd,
        script=script,
        config_paths=config_paths,
        config_dir=config_dir,
        config_name=config_name,
    )
    options: dict[str, list[str]] = {}
    data: Any = {}
    if source.composed:
        options = {
            group: sources.options(source.tree, group) for group in sources.names(source.tree)
        }
        texts = []
        for text in given:
            with contextlib.suppress(ParamError):
                if overrides.parse_override(text, groups=True).sweep is None:
                    texts.append(text)
        for attempt in (texts, []):
            with contextlib.suppress(ParamError):
                cfg = compose.compose(source, attempt, ask_app=False)[0]
                data = OmegaConf.to_container(cfg, resolve=False)
                break
    elif source.files or source.base is not None:
        with resolvers.expanding() as placed:
            cfg, _ = compose.compose_plain(source, [], placed, [])
            data = OmegaConf.to_container(cfg, resolve=False)
    else:  # no config: the keys the script reads
        for key in sorted(reads.script_reads(sources.absolute(script, cwd)) or ()):
            node = data
            *parents, leaf = key.split(".")
            for part in parents:
                node = node.setdefault(part, {})
            if isinstance(node, dict):
                node.setdefault(leaf, None)
    keys = [
        f"{key}." if isinstance(value, dict) and value else f"{key}=" for key, value in nodes(data)
    ]
    return keys, options


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
    names = sorted(name for name in environ if name.startswith(overrides.ENV_PREFIX))
    while True:
        cfg = OmegaConf.create({})
        applied: list[tuple[str, str, str]] = []  # (variable, dotted key, override text)
        for name in names:
            if name in problems:
                continue
            try:
                ((_, text),) = overrides.env_override_texts({name: environ[name]})
                override = overrides.parse_override(text, source=name)
                value = override.value
                if override.sweep is not None or (
                    isinstance(value, str) and sweeps.is_resolver_sweep(value)
                ):
                    raise ParamError(f"{override.shown} is a sweep; {_SWEEPS_ARE_STAGED}")
                trial = deepcopy(cfg)
                # A sweep is refused above: nothing is placed in the config.
                compose.apply_overrides(trial, [override], resolvers.Placeholders())
            except ParamError as exc:
                problems[name] = f"{exc.message}. {exc.hint}" if exc.hint else exc.message
                continue
            cfg = trial
            applied.append((name, override.key, text))
        try:
            params = resolvers.to_container(cfg)
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
        with resolvers.resolving():  # as to_container resolves: a sweep is refused
            value = OmegaConf.select(cfg, key, throw_on_missing=True)
            if isinstance(value, Container):
                OmegaConf.to_container(value, resolve=True, throw_on_missing=True)
    except RecursionError:
        return "an interpolation refers to itself"
    except OmegaConfBaseException as exc:
        nested = sweeps.sweep_error(exc)  # a sweep inside a longer value
        return str(nested) if nested is not None else str(exc).splitlines()[0]
    return None
