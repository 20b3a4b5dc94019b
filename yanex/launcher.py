"""The launcher: validate a run, write its experiment folder, run the script, record the end.

One run goes through three steps, each its own method so that dry runs, staging and other
executors can stop after any of them:

- ``prepare``: resolve parameters, snapshot git, check the script. Nothing is created; every
  problem a user can fix is raised as a ``YanexError``.
- ``create``: reserve the ID and write ``config.yaml``, ``params.json``, ``git.patch`` and
  ``metadata.json`` (status ``running``), each atomically. A failure removes the folder.
- ``execute``: run the script with ``sys.executable`` as a child process, tee its output to the
  terminal and to ``stdout.txt``/``stderr.txt``, forward signals, and record how it ended.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from yanex import (
    dependencies,
    ending,
    environment,
    processes,
    record,
    staging,
    store,
    supervise,
)
from yanex.code import state
from yanex.code.git import NotARepository
from yanex.code.secrets import find_secrets
from yanex.config import hydra_app, overrides, pipeline, sources, sweeps
from yanex.ending import Ending
from yanex.errors import ParamError, ScriptError
from yanex.identity import Heartbeat, ProcessId
from yanex.record import Status
from yanex.summary_keeper import SummaryKeeper

# How long a script may take to stop after a forwarded signal before it is killed.
DEFAULT_GRACE_PERIOD = 10.0
GRACE_PERIOD_ENV = "YANEX_GRACE_PERIOD"

_log = logging.getLogger("yanex.launcher")


@dataclass
class RunRequest:
    """Everything a user asked for one run, as given; nothing is validated yet."""

    script: Path
    script_args: list[str] = field(default_factory=list)
    config_paths: list[Path] = field(default_factory=list)  # merged in order
    config_dir: Path | None = None  # a Hydra conf/ tree (default: conf/ by the script, ./conf)
    config_name: str | None = None  # its primary config (default: config)
    params: list[str] = field(default_factory=list)
    multirun: bool = False  # Hydra's -m: a bare comma list is a sweep
    name: str | None = None
    description: str | None = None
    tags: list[str] = field(default_factory=list)
    ignore_dirty: bool = False
    stage: bool = False
    # -D/--depends-on as typed (``data=3f9a``, ``model=list(a, b)``), and how many overrides
    # were typed before each (Hydra's order of the sweeps; None: after them all).
    depends_on: list[str] = field(default_factory=list)
    depends_on_after: list[int] | None = None
    # -m without --stage: the grid is staged and run at once, so a dependency must be
    # completed already (a staged one would not run first).
    run_at_once: bool = False
    cwd: Path = field(default_factory=Path.cwd)
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    # A rerun: the recorded config to start from instead of a config file or tree, the
    # overrides that made it (recorded before the new ones), and what metadata carries over
    # (rerun_of, config_file, hydra, project).
    base_config: dict[str, Any] | None = None
    base_overrides: list[str] = field(default_factory=list)
    carried: dict[str, Any] = field(default_factory=dict)
    # A rerun of a @hydra.main app: the app composes its tree again, given back exactly the
    # recorded parameters (see pipeline.Replay).
    replay: pipeline.Replay | None = None


@dataclass
class Prepared:
    """A validated run: its parameters (one member, or a grid of them) and git state."""

    request: RunRequest
    script: Path
    resolved: pipeline.ResolvedParams
    git: state.GitSnapshot | None
    project: Path
    warnings: list[str] = field(default_factory=list)
    members: list[sweeps.Member] = field(default_factory=list)
    depends_on: list[dependencies.Resolved] = field(default_factory=list)

    @property
    def grid(self) -> sweeps.Grid:
        return self.resolved.grid

    @property
    def is_sweep(self) -> bool:
        return bool(self.grid.sweeps)

    def expand(self) -> list[sweeps.Member]:
        """Every member of the grid, each config resolved (a bad one raises ParamError)."""
        if not self.members:
            self.members = list(self.grid.members())
        return self.members

    def overrides_for(self, member: sweeps.Member) -> list[str]:
        """The overrides that give ``member`` its config, each sweep replaced by the member's
        own value (``lr=list(0.1, 0.01)`` -> ``lr=0.01``), so that they replay as they stand."""
        texts: list[str] = []
        placed = set()
        for ov in self.resolved.parsed:
            if ov.sweep is None:
                texts.append(ov.replay_text)
            elif ov.target in member.varied:  # else a later override replaced the sweep
                texts.append(ov.concrete(member.varied[ov.target]))
                placed.add(ov.target)
        # Sweeps written in the config itself.
        texts += [
            f"{path}={overrides.render_value(value)}"
            for path, value in member.varied.items()
            if path not in placed
        ]
        return texts

    def label(self, member: sweeps.Member) -> str:
        """``model=poly,optimizer.lr=0.01``: what tells this member from the others, in the
        text of its overrides (``null``, not ``None``; without ``+``/``++``, which say how a
        key was set, not what tells the member apart), and a swept dependency as its slot
        and ID (``data=3f9a2c1b``), all in the grid's order."""
        texts = {
            text.split("=", 1)[0].lstrip("+~"): text.lstrip("+")
            for text in self.overrides_for(member)
        }
        swept = member.extra.get(dependencies.FIELD, {})
        if not swept:
            return ",".join(texts[key] for key in member.varied if key in texts)
        rank = {path: i for i, path in enumerate(self.grid.order)}
        slots = {dep.path: dep.slot for dep in self.depends_on}
        parts = []
        for path in sorted([*member.varied, *swept], key=lambda path: rank.get(path, -1)):
            if path in swept:
                parts.append(f"{slots[path]}={swept[path]}")
            elif path in texts:
                parts.append(texts[path])
        return ",".join(parts)

    def dependencies_of(self, member: sweeps.Member) -> dict[str, str]:
        """``{slot: id}``: the experiments this member depends on, in the order given."""
        swept = member.extra.get(dependencies.FIELD, {})
        return {dep.slot: swept.get(dep.path, dep.ids[0]) for dep in self.depends_on}

    def numbered(self) -> list[tuple[sweeps.Member, tuple[str, int] | None]]:
        """Each member with its place in the sweep (a new sweep id, its index); None alone."""
        members = self.expand()
        if not self.is_sweep:
            return [(member, None) for member in members]
        sweep_id = os.urandom(4).hex()
        return [(member, (sweep_id, index)) for index, member in enumerate(members)]


@dataclass
class Experiment:
    """An experiment folder written by ``create``, with its metadata as last written."""

    id: str
    dir: Path
    metadata: dict[str, Any]

    def update(
        self, changes: Mapping[str, Any], only_if: tuple[str, ...] = (), durable: bool = True
    ) -> bool:
        """Record ``changes`` in metadata.json (under its lock); False when ``only_if``
        statuses did not hold."""
        meta = record.update(self.dir, changes, only_if=only_if, durable=durable)
        if meta is None:
            return False
        self.metadata = meta
        return True

    @classmethod
    def load(cls, experiment_id: str) -> Experiment:
        folder = store.experiment_dir(experiment_id)
        try:
            meta = record.read_metadata(folder)
        except record.BadRecord as exc:
            raise store.StoreError(f"experiment {experiment_id} cannot be read: {exc}") from exc
        return cls(id=experiment_id, dir=folder, metadata=meta)


def _sweep_order(prepared: Prepared) -> list[str]:
    """Every sweep of the grid from the slowest to the fastest varying, the swept
    dependencies among the overrides as they were typed (Hydra's rule: a key's first place;
    the config's own sweeps first)."""
    request = prepared.request
    parsed = prepared.resolved.parsed
    env = len(parsed) - len(request.params)  # YANEX_PARAM_* come first
    first: dict[str, tuple[float, int]] = {}
    for i, override in enumerate(parsed):
        if override.sweep is not None:
            first.setdefault(override.target, (i, 0))
    after = request.depends_on_after
    for typed, dep in enumerate(prepared.depends_on):
        if dep.sweep is not None:
            before = after[typed] if after is not None else len(request.params)
            first[dep.path] = (env + before - 0.5, typed)
    in_config = [path for path in prepared.grid.order if path not in first]
    return [*in_config, *sorted(first, key=lambda path: first[path])]


def _apply_settings(request: RunRequest, settings: sources.Settings) -> None:
    """A config file's ``yanex:`` section gives what the command line left out (name,
    description, tags, --stage); tags given on the command line replace the file's."""
    if request.name is None:
        request.name = settings.name
    if request.description is None:
        request.description = settings.description
    if not request.tags and settings.tags:
        request.tags = list(settings.tags)
    request.stage = request.stage or settings.stage


def _grace_period(environ: Mapping[str, str]) -> float:
    return store.env_number(GRACE_PERIOD_ENV, DEFAULT_GRACE_PERIOD, 0.0, environ)


def _hydra_yaml(config: Mapping[str, Any]) -> str:
    from omegaconf import OmegaConf

    return OmegaConf.to_yaml(OmegaConf.create(dict(config))) if config else "{}\n"


def _yaml_list(items: list[str]) -> str:
    import yaml

    return yaml.safe_dump(list(items), default_flow_style=False, allow_unicode=True)


class Launcher:
    """Runs one experiment: ``prepare`` (validate), ``create`` (write the folder), ``execute``.

    ``stdout``/``stderr`` receive the script's output as it comes (None: the files only);
    ``echo`` receives yanex's own short messages (warnings, the experiment ID).
    """

    def __init__(
        self,
        *,
        stdout: IO[bytes] | None = None,
        stderr: IO[bytes] | None = None,
        echo: Callable[[str], None] = lambda message: None,
    ) -> None:
        self.stdout = stdout
        self.stderr = stderr
        self.echo = echo

    def launch(self, prepared: Prepared) -> Ending:
        """Create and execute a prepared run of one experiment.

        Its folder is not waited onto the disk before the script starts: a run that a power
        loss interrupts is lost either way, and its ending is written durably.
        """
        experiment = self.create(prepared, prepared.expand()[0], durable=False)
        return self.execute(experiment, prepared.request, prepared.script)

    def prepare(self, request: RunRequest, *, run_grid: bool = False) -> Prepared:
        """Validate everything a run needs; create nothing.

        A sweep is refused unless the request stages it, or ``run_grid`` says its members
        will be run one after another (as ``yanex.launch`` does).
        """
        script = request.script if request.script.is_absolute() else request.cwd / request.script
        if not script.is_file():
            raise ScriptError(
                f"script not found: {request.script}", hint="Give the path of a Python file."
            )
        resolved = pipeline.resolve(
            cwd=request.cwd,
            script=script,
            config_paths=request.config_paths,
            config_dir=request.config_dir,
            config_name=request.config_name,
            param_texts=list(request.params),
            environ=request.environ,
            base=request.base_config,
            multirun=request.multirun,
            replay=request.replay,
        )
        _apply_settings(request, resolved.settings)
        grid = resolved.grid
        specs = dependencies.parse(request.depends_on, multirun=request.multirun)
        swept = [spec for spec in specs if spec.sweep is not None]
        if (grid.sweeps or swept) and not (request.stage or run_grid or resolved.settings.dry_run):
            varied = ", ".join(
                [f"{path}={sweep.expr}" for path, sweep in grid.sweeps]
                + [f"{spec.path}={spec.sweep}" for spec in swept]
            )
            size = grid.size * math.prod(len(spec.refs) for spec in swept)
            raise ParamError(
                f"the sweeps ({varied}) make a grid of {size:,} experiments, "
                "which run with -m or are staged with --stage",
                hint="Add -m to run them now (-j N at a time; yanex 0.6 ran them without it), "
                "or --stage to run them later with `yanex run --staged`.",
            )
        warnings: list[str] = list(resolved.warnings)
        if request.name and not request.name.strip("0123456789abcdefABCDEF"):
            from yanex.query import name_warning  # a name that may be taken for an ID

            warnings += [w for w in [name_warning(request.name)] if w]
        try:
            git = state.snapshot(script, resolved.config_roots, resolved.reads)
        except NotARepository as exc:
            git = None
            warnings.append(f"{exc}; the code of this run is not recorded (git: null)")
        else:
            if not request.ignore_dirty:
                state.require_clean(git)
        prepared = Prepared(
            request=request,
            script=script.resolve(),
            resolved=resolved,
            git=git,
            project=Path(request.carried["project"])
            if "project" in request.carried
            else git.root
            if git is not None
            else request.cwd.resolve(),
            warnings=warnings,
        )
        if specs:
            self._depend(prepared, specs)
        if not grid.sweeps:
            prepared.expand()  # one member: resolve it now, so a bad config fails here
        return prepared

    def _depend(self, prepared: Prepared, specs: list[dependencies.Spec]) -> None:
        """Find the experiments ``-D`` names and check they may be depended on; a swept slot
        makes the grid a product with it, in Hydra's order of the sweeps (as typed)."""
        request = prepared.request
        cwd = request.cwd
        found = dependencies.resolve(
            specs,
            scope=lambda: str(state.project_of(cwd)),
            project=str(prepared.project),
            staging=request.stage and not request.run_at_once,
            echo=self.echo,
        )
        prepared.depends_on = found
        swept = [(dep.path, sweeps.Sweep(dep.sweep, dep.ids)) for dep in found if dep.sweep]
        grid = prepared.grid
        grid.cross(swept, dependencies.FIELD, _sweep_order(prepared))
        grid.check_size()

    def stage(self, prepared: Prepared) -> list[Experiment]:
        """Write every member of the grid as a ``staged`` experiment: all or none, whatever
        stops it (see ``staging``).

        What members share is made once (the patch, the environment); each member's files
        are sent to the disk while the next is made, and none is shown before all are there.
        """
        numbered = prepared.numbered()
        patch = self._patch(prepared.git) if prepared.git and prepared.git.dirty else None
        home = store.yanex_home()
        env_snapshot = environment.snapshot(home / "cache")
        staging.recover(home)  # what an interrupted staging left, before this one
        created: list[Experiment] = []
        with staging.Batch(home) as batch:
            for member, sweep in numbered:
                batch.check()
                created.append(
                    self.create(
                        prepared,
                        member,
                        Status.STAGED,
                        sweep=sweep,
                        patch=patch,
                        env_snapshot=env_snapshot,
                        durable=False,
                        batch=batch,
                    )
                )
            batch.commit()
        return created

    def _patch(self, git: state.GitSnapshot) -> bytes:
        """The uncommitted changes for git.patch, with a warning for what looks like a secret."""
        patch = state.patch(git)
        for path, line, what in find_secrets(patch):
            self.echo(
                f"warning: {path}:{line} may hold {what}; the uncommitted change is saved in "
                "the experiment's git.patch"
            )
        return patch

    def create(
        self,
        prepared: Prepared,
        member: sweeps.Member,
        status: str = Status.RUNNING,
        *,
        sweep: tuple[str, int] | None = None,
        patch: bytes | None = None,
        env_snapshot: dict[str, Any] | None = None,
        durable: bool = True,
        batch: staging.Batch | None = None,
    ) -> Experiment:
        """Reserve an ID and write the experiment folder; on any failure, remove it again.

        ``sweep`` is the grid's id and this member's index; ``patch`` the uncommitted changes
        and ``env_snapshot`` the environment (made once per grid; None: made here).
        ``durable=False`` leaves waiting for the disk to the caller; ``batch``: a grid being
        staged, which shows the experiment only once the whole grid is written.
        """
        request = prepared.request
        if batch is not None:
            experiment_id, folder = batch.new_folder()
        else:
            experiment_id, folder = store.create_experiment_dir()
        try:
            config = member.config
            text = record.config_yaml(config).encode()
            params_text = record.params_json(config)
            if durable:
                store.write_bytes_atomic(folder / store.CONFIG, text)
                store.write_bytes_atomic(folder / store.PARAMS, params_text.encode())
            else:  # staging: the folder is new, and metadata.json comes last
                store.write_new(folder / store.CONFIG, text)
                store.write_new(folder / store.PARAMS, params_text.encode())
            overrides = [*request.base_overrides, *prepared.overrides_for(member)]
            hydra = member.extra.get("hydra") or request.carried.get("hydra")
            if hydra is not None:  # what Hydra tooling reads in a run folder
                hydra = {**hydra, "overrides": overrides}
                (folder / ".hydra").mkdir(mode=0o700)
                # As Hydra writes it: the composition unresolved (a rerun's: as recorded).
                source = member.source if member.source is not None else config
                for name, text in (("config.yaml", _hydra_yaml(source)),
                                   ("overrides.yaml", _yaml_list(overrides))):  # fmt: skip
                    store.write_bytes_atomic(folder / ".hydra" / name, text.encode(), durable)
            git = prepared.git
            if git is not None and git.dirty:
                if patch is None:
                    patch = self._patch(git)
                store.write_bytes_atomic(folder / store.GIT_PATCH, patch, durable)
            now = store.now_iso()
            if env_snapshot is None:
                env_snapshot = environment.snapshot(store.yanex_home() / "cache")
            name = request.name
            label = prepared.label(member) if prepared.is_sweep else ""
            if label:  # what tells the member apart (a swept dependency too)
                name = f"{name}-{label}" if name else label
            metadata: dict[str, Any] = {
                "id": experiment_id,
                "name": name,
                "description": request.description,
                "tags": list(dict.fromkeys(request.tags)),
                "status": status,
                "script": str(prepared.script),
                "args": list(request.script_args),
                "cwd": str(request.cwd.resolve()),
                "config_file": prepared.resolved.config_file,
                # config_dir, config_name, choices, overrides
                "hydra": hydra,
                # concrete: a grid member's own values, so that they replay as they stand
                "overrides": overrides,
                "project": str(prepared.project),
                "sweep": sweep[0] if sweep else None,
                "sweep_index": sweep[1] if sweep else None,
                "sweep_values": member.varied or None,
                "created_at": now,
                "started_at": None,
                "ended_at": None,
                "duration": None,
                "exit_code": None,
                "error": None,
                "git": git.to_metadata() if git is not None else None,
                "environment": env_snapshot,
                # who runs it: a later reader can tell a dead launcher from a running one
                "launcher": ProcessId.current().to_metadata(),
            }
            depends = prepared.dependencies_of(member)
            if depends:  # {slot: id}: what it depends on (-D)
                metadata[dependencies.FIELD] = depends
            metadata.update(request.carried)
            metadata["hydra"] = hydra
            if git is not None and git.configs_untracked:  # in git.patch, as the script is
                metadata["config_files"] = [str(git.root / p) for p in git.configs_untracked]
            if prepared.resolved.shuffle_seed is not None:  # shuffle()'s order, repeatable
                metadata["shuffle_seed"] = prepared.resolved.shuffle_seed
            if prepared.resolved.warnings:
                metadata["warnings"] = list(prepared.resolved.warnings)
            if batch is not None:
                batch.write_metadata(folder, store.record_json(metadata))
            else:
                record.write_metadata(folder, metadata, durable)
            experiment = Experiment(id=experiment_id, dir=folder, metadata=metadata)
        except BaseException as exc:
            store.remove_experiment_dir(folder)
            if isinstance(exc, OSError):
                raise store.StoreError(
                    f"cannot write experiment {experiment_id} in {folder.parent}: "
                    f"{exc.strerror or exc}",
                    hint="Check the disk's free space and that YANEX_HOME is writable; "
                    "nothing was kept.",
                ) from exc
            raise
        return experiment

    def execute(
        self,
        experiment: Experiment,
        request: RunRequest,
        script: Path,
        *,
        next_signal: Callable[[float], int | None] | None = None,
        record_environment: bool = False,
    ) -> Ending:
        """Run the script as a child process and record how it ended; every ending is recorded.

        Signals: Ctrl-C at a terminal reaches the script directly (it shares yanex's process
        group), so yanex does not send it again; a SIGINT, SIGTERM or SIGHUP sent to yanex
        alone is forwarded. Either way the run is ``cancelled``; a script still alive after the
        grace period (or at a second signal) is killed.
        """
        started = time.monotonic()
        # The ending is recorded before the signals are let through again: a stop signal
        # that comes after the script ended (during the drain, or a second copy) is about a
        # run that is over, and is dropped instead of killing yanex before it records.
        with contextlib.ExitStack() as stack:
            if next_signal is None:  # the main thread: take the stop signals here
                next_signal = stack.enter_context(processes.Signals()).next
            # Beating before it is recorded running: other hosts know it runs (identity).
            stack.enter_context(Heartbeat(experiment.dir))
            # A long results.jsonl summarized as it grows, and once more after the ending is
            # recorded: a first reader parses only the rest.
            stack.enter_context(SummaryKeeper(experiment.dir))
            try:
                return self._run_and_record(
                    experiment, request, script, started, next_signal, record_environment
                )
            except BaseException:
                # A bug in yanex itself: record it, never leave the run "running".
                with contextlib.suppress(Exception):
                    _finish(
                        experiment, ending.failed("yanex failed while running the script"), started
                    )
                raise

    def _run_and_record(
        self,
        experiment: Experiment,
        request: RunRequest,
        script: Path,
        started: float,
        next_signal: Callable[[float], int | None],
        record_environment: bool,
    ) -> Ending:
        changes: dict[str, Any] = {
            "status": Status.RUNNING,
            "started_at": store.now_iso(),
            # this process runs it: a reader can tell a dead launcher from a live one
            "launcher": ProcessId.current().to_metadata(),
        }
        if record_environment:  # run elsewhere than it was staged: what it really runs with
            changes["environment"] = environment.snapshot(_home(experiment) / "cache")
        # Not waited onto the disk: a power loss before the end leaves it as it was before it
        # started, and its ending is written durably.
        experiment.update(changes, durable=False)
        store.reserve_room(experiment.dir)
        try:
            end = supervise.run(
                # a @hydra.main app gets the run's overrides as Hydra command-line overrides
                [sys.executable, str(script), *hydra_app.argv(experiment), *request.script_args],
                cwd=request.cwd,
                env=_child_env(experiment, request.environ),
                stdout_log=experiment.dir / store.STDOUT,
                stderr_log=experiment.dir / store.STDERR,
                stdout=self.stdout,
                stderr=self.stderr,
                grace=_grace_period(request.environ),
                next_signal=next_signal,
                marker=f"{processes.MARKER_NAME}={experiment.id}",
                started=lambda: self.echo(
                    f"yanex: experiment {experiment.id} running {script.name} "
                    f"(folder {experiment.dir})"
                ),
            )
        except OSError as exc:
            return _finish(
                experiment, ending.failed(f"the script could not be started: {exc}"), started
            )

        end = ending.asked_by_script(experiment.dir, end)  # yanex.cancel() under yanex run
        for problem in end.warnings:  # e.g. a full disk: say so, keep the run
            self.echo(f"warning: experiment {experiment.id}: {problem}")
        # a @hydra.main app composed its own config: is it the one recorded?
        for problem in hydra_app.check_config(experiment):
            self.echo(f"warning: experiment {experiment.id}: {problem}")
        return _finish(experiment, end, started)


def _home(experiment: Experiment) -> Path:
    """The store an experiment is in (``<home>/experiments/<id>``): the store travels with the
    experiment, whatever this process's YANEX_HOME (a Dask worker's may differ)."""
    return experiment.dir.parent.parent


def _child_env(experiment: Experiment, environ: Mapping[str, str]) -> dict[str, str]:
    """The user's environment plus the ``YANEX_*`` variables the script API reads."""
    env = dict(environ)
    env.update(
        {
            "YANEX_EXPERIMENT_ID": experiment.id,
            "YANEX_EXPERIMENT_DIR": str(experiment.dir),
            "YANEX_HOME": str(_home(experiment)),
            "PYTHONUNBUFFERED": "1",  # so output is streamed, not held in the script's buffers
        }
    )
    return env


def _finish(experiment: Experiment, end: Ending, started: float) -> Ending:
    """Record ``end`` in the experiment's metadata (whatever the disk's state); the ending,
    with where the run is and how long it took."""
    end = dataclasses.replace(
        end,
        id=experiment.id,
        dir=experiment.dir,
        name=experiment.metadata.get("name"),
        duration=round(time.monotonic() - started, 3),
    )
    changes: dict[str, Any] = {
        "status": end.status,
        "ended_at": store.now_iso(),
        "duration": end.duration,
        "exit_code": end.exit_code,
        "error": end.error,
    }
    store.remove_temps(experiment.dir / "artifacts")  # an artifact's save killed midway
    # What the script itself could not write (reported in warnings.jsonl), and the logs.
    warnings = [*store.read_warnings(experiment.dir), *end.warnings]
    if warnings:
        changes["warnings"] = [*experiment.metadata.get("warnings", []), *warnings]
    try:
        try:
            experiment.update(changes)
        except OSError:
            store.release_room(experiment.dir)  # the room kept for this moment (a full disk)
            experiment.update(changes)
    except OSError as exc:
        # Still not writable (not a full disk): the metadata keeps its last whole state
        # ("running"), which the next store reader records as failed once this process ends.
        # Logged, not printed: with no logging set up, Python writes it to stderr as is.
        _log.error(
            "yanex: error: cannot record that experiment %s %s: %s",
            experiment.id,
            end.status,
            exc.strerror or exc,
        )
    finally:
        store.release_room(experiment.dir)
    return end
