"""yanex 0.6's Python names, as thin layers over today's API.

Scripts and programs written for yanex 0.6 call these; each keeps 0.6's signature and
meaning, built on ``yanex.launch`` (runs), the script API (``yanex.api``) and the records
(``yanex.record``). Where today's yanex cannot mean the same, the docstring says what differs.
``import yanex`` does not load this module: ``yanex.<name>`` does, the first time.

- In a script: ``has_context``, ``get_status``, ``get_metadata``, ``get_artifacts_dir``,
  ``artifact_exists``, ``list_artifacts``, ``get_cli_args``, ``execute_bash_script``,
  ``completed``, ``fail``, ``cancel``, ``register_format``.
- The experiments this one depends on (``-D``): ``get_dependency``, ``get_dependencies``,
  ``assert_dependency``, ``get_graph``.
- An experiment in the calling process: ``create_experiment``, ``create_context``,
  ``ExperimentContext``.
- Several runs from Python: ``ExperimentSpec``, ``ExperimentResult``, ``run_multiple``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from yanex import api, record, results_file, store
from yanex.dependencies import Graph
from yanex.errors import ExperimentContextError, YanexError
from yanex.identity import Heartbeat, ProcessId

__all__ = [
    "ExperimentContext",
    "ExperimentResult",
    "ExperimentSpec",
    "artifact_exists",
    "assert_dependency",
    "cancel",
    "completed",
    "create_context",
    "create_experiment",
    "execute_bash_script",
    "fail",
    "get_artifacts_dir",
    "get_cli_args",
    "get_dependencies",
    "get_dependency",
    "get_graph",
    "get_metadata",
    "get_status",
    "has_context",
    "list_artifacts",
    "register_format",
    "run_multiple",
]

CLI_ARGS_ENV = "YANEX_CLI_ARGS"  # 0.6's way to hand a script the flags it was run with


# --- the experiment of this script ---------------------------------------------------------


def has_context() -> bool:
    """True when this process logs to an experiment (``not is_standalone()``)."""
    return not api.is_standalone()


def _metadata() -> dict[str, Any] | None:
    folder = api.experiment_dir()
    return None if folder is None else store.read_json(folder / store.METADATA)


def get_status() -> str | None:
    """The experiment's status (``running`` while its script runs), None when standalone."""
    meta = _metadata()
    return None if meta is None else meta.get("status")


def get_metadata() -> dict[str, Any]:
    """The experiment's ``metadata.json`` ({} when standalone). Its fields are today's
    (``script``, ``ended_at``, ``git.commit``, ...), not 0.6's (``script_path``,
    ``completed_at``, ``git.commit_hash``)."""
    return _metadata() or {}


def get_artifacts_dir() -> Path | None:
    """The experiment's ``artifacts/`` folder, None when standalone."""
    folder = api.experiment_dir()
    return None if folder is None else folder / store.ARTIFACTS


def artifact_exists(filename: str) -> bool:
    """Whether ``artifacts/filename`` exists (False when standalone: nothing is saved)."""
    target = api._artifact_path(filename)
    return target is not None and target.is_file()


def list_artifacts(transitive: bool = False) -> list[str] | dict[str, list[str]]:
    """The names of the experiment's artifacts, sorted (``plots/loss.png`` for one in a
    folder); with ``transitive=True``, ``{experiment_id: names}`` for this experiment and
    every one it depends on, directly or not. Empty when standalone."""
    folder = api.experiment_dir()
    names = [] if folder is None else [artifact.name for artifact in record.artifacts(folder)]
    if not transitive:
        return names
    if folder is None:
        return {}
    found = {dep.id: dep.list_artifacts() for dep in _upstream()}
    return {**found, folder.name: names}


def get_cli_args() -> dict[str, Any]:
    """The yanex flags this run was started with, in 0.6's shape: ``script``, ``config``,
    ``param``, ``name``, ``tag``, ``description``, ``depends_on``, ``stage``, ``staged``,
    ``parallel``, ... ({} when standalone).

    From what the launcher handed over (``YANEX_CLI_ARGS``) or recorded (``cli_args`` in the
    metadata, as 0.6 kept it), else rebuilt from the record: the config file, the overrides
    as given, the name, tags and description.
    """
    meta = _metadata()
    if meta is None:
        return {}
    # -D as 0.6 gave it: SLOT=ID, each resolved to the full ID this run depends on
    depends_on = [f"{slot}={eid}" for slot, eid in (meta.get("dependencies") or {}).items()]
    handed = os.environ.get(CLI_ARGS_ENV)
    if handed and not _in_process.get("dir"):
        with contextlib.suppress(ValueError):
            found = json.loads(handed)
            if isinstance(found, dict):
                return {**found, "depends_on": depends_on}
    if isinstance(meta.get("cli_args"), dict):
        return {**meta["cli_args"], "depends_on": depends_on}
    script = meta.get("script")
    cwd = meta.get("cwd")
    if script and cwd and Path(script).is_relative_to(cwd):
        script = os.path.relpath(script, cwd)
    return {
        "script": script,
        "config": [meta["config_file"]] if meta.get("config_file") else [],
        "clone_from": None,
        "param": list(meta.get("overrides") or []),
        "name": meta.get("name"),
        "tag": list(meta.get("tags") or []),
        "description": meta.get("description"),
        "depends_on": depends_on,
        "dry_run": False,
        "stage": False,
        "staged": False,
        "parallel": None,
        "project": None,
    }


def register_format(
    name: str,
    extensions: list[str],
    type_check: Callable[[Any], bool],
    saver: Callable[[Any, Path], None],
    loader: Callable[[Path], Any],
    required_package: str | None = None,
) -> None:
    """Add an artifact format: ``save_artifact`` uses it for an object ``type_check`` accepts
    with one of ``extensions`` (before the built-in formats), ``load_artifact`` for those
    extensions or ``format=name``. ``saver(obj, path)``, ``loader(path)``."""
    if any(fmt.name == name for fmt in api._FORMATS):
        raise ValueError(f"register_format: a format named {name!r} is already registered")
    if not extensions:
        raise ValueError("register_format: give at least one extension, such as ['.jsonl']")
    fmt = api._Format(name, list(extensions), type_check, saver, loader, required_package)
    api._FORMATS.insert(0, fmt)


# --- the experiments this one depends on ----------------------------------------------------


class Dependency:
    """An experiment this one depends on, read from its folder: what yanex 0.6's
    ``get_dependency`` gave (its results ``Experiment``), for a script's use: ``id``,
    ``name``, ``status``, ``script_path``, ``get_params()``, ``get_param(key)``,
    ``get_metric(name)``, ``load_artifact(name)``, ``list_artifacts()``, ... ``slot`` is the
    slot it fills (None for one reached through another).

    The results API's own experiment object (``yanex.results``) is richer; this reads one
    folder and nothing else (no index), so a script pays only for what it asks.
    """

    def __init__(self, experiment_id: str, folder: Path, slot: str | None = None) -> None:
        self.id = experiment_id
        self.slot = slot
        self.experiment_dir = folder
        self.artifacts_dir = folder / store.ARTIFACTS

    @property
    def dir(self) -> Path:
        return self.experiment_dir

    @functools.cached_property
    def metadata(self) -> dict[str, Any]:
        try:
            return record.read_metadata(self.experiment_dir)
        except (OSError, record.BadRecord):
            return {}

    @property
    def name(self) -> str | None:
        return self.metadata.get("name")

    @property
    def status(self) -> str | None:
        return self.metadata.get("status")

    @property
    def description(self) -> str | None:
        return self.metadata.get("description")

    @property
    def tags(self) -> list[str]:
        return list(self.metadata.get("tags") or [])

    @property
    def script_path(self) -> Path | None:
        script = self.metadata.get("script")
        return Path(script) if script else None

    @property
    def dependencies(self) -> dict[str, str]:
        """``{slot: id}`` of the experiments it depends on itself."""
        return dict(self.metadata.get("dependencies") or {})

    @property
    def dependency_ids(self) -> list[str]:
        return list(self.dependencies.values())

    @property
    def has_dependencies(self) -> bool:
        return bool(self.dependencies)

    def get_params(self) -> dict[str, Any]:
        """Its parameters (``params.json``)."""
        return record.read_params(self.experiment_dir)

    def get_param(self, key: str, default: Any = None) -> Any:
        """One parameter by its dotted key (``model.lr``), ``default`` when it has none."""
        node: Any = self.get_params()
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    def get_metric(self, name: str) -> Any:
        """A result it logged: its value when logged once, the values in order when logged
        at several steps, None when never (yanex 0.6's meaning)."""
        values = [
            line["results"][name]
            for line in results_file.read_results(self.experiment_dir)
            if isinstance(line.get("results"), dict) and name in line["results"]
        ]
        if not values:
            return None
        return values[0] if len(values) == 1 else values

    def list_artifacts(self) -> list[str]:
        return [artifact.name for artifact in record.artifacts(self.experiment_dir)]

    def artifact_exists(self, filename: str) -> bool:
        return store.path_inside(self.artifacts_dir, str(filename), "artifact name").is_file()

    def load_artifact(self, filename: str, loader: Any = None, format: str | None = None) -> Any:
        """Its artifact ``filename``, read as ``yanex.load_artifact`` reads one; None when it
        has none."""
        target = store.path_inside(self.artifacts_dir, str(filename), "artifact name")
        if not target.is_file():
            return None
        return (loader or api._loader_for(target, format))(target)

    def get_dependency(self, slot: str) -> Dependency | None:
        found = self.dependencies.get(slot)
        return None if found is None else _dependency(found, slot, self.experiment_dir)

    def get_dependencies(
        self, transitive: bool = False, include_self: bool = False
    ) -> dict[str, Dependency] | list[Dependency]:
        if not transitive:
            found = (_dependency(i, s, self.experiment_dir) for s, i in self.dependencies.items())
            return {dep.slot or "": dep for dep in found if dep is not None}
        return _upstream(self.id, self.experiment_dir, include_self)

    def __repr__(self) -> str:
        slot = f" slot={self.slot!r}" if self.slot else ""
        return f"<Dependency {self.id}{slot} {self.status} name={self.name!r}>"


def _home_of(folder: Path) -> Path:
    return folder.parent.parent  # <home>/experiments/<id> (or archived/<id>)


def _dependency(experiment_id: str, slot: str | None, near: Path) -> Dependency | None:
    """The experiment ``experiment_id`` of the store ``near`` is in, or None when gone."""
    folder = record.folder_by_id(experiment_id, _home_of(near))
    return None if folder is None else Dependency(experiment_id, folder, slot)


def _upstream(
    experiment_id: str | None = None, folder: Path | None = None, include_self: bool = False
) -> list[Dependency]:
    """Every experiment one depends on, directly or not, upstream first (this script's
    experiment by default); itself last with ``include_self``."""
    if folder is None:
        folder = api.experiment_dir()
        if folder is None:
            return []
        experiment_id = folder.name
    assert experiment_id is not None
    ids = record.upstream(experiment_id, _home_of(folder))
    found = [_dependency(i, None, folder) for i in ids]
    if include_self:
        found.append(Dependency(experiment_id, folder))
    return [dep for dep in found if dep is not None]


def get_dependency(slot: str) -> Dependency | None:
    """The experiment in dependency slot ``slot`` (``-D data=ID``: ``"data"``; ``-D ID``:
    ``"dep1"``), None when it has none or standalone."""
    meta = _metadata()
    if meta is None:
        return None
    found = (meta.get("dependencies") or {}).get(slot)
    folder = api.experiment_dir()
    assert folder is not None
    return None if found is None else _dependency(found, slot, folder)


def get_dependencies(
    transitive: bool = False, include_self: bool = False
) -> dict[str, Dependency] | list[Dependency]:
    """The experiments this one depends on: ``{slot: experiment}``; with ``transitive``, a
    list of every one it depends on directly or not, upstream first (and itself last, with
    ``include_self``). Empty when standalone."""
    meta = _metadata()
    if meta is None:
        return [] if transitive else {}
    if transitive:
        return _upstream(include_self=include_self)
    folder = api.experiment_dir()
    assert folder is not None
    found = {
        slot: _dependency(eid, slot, folder)
        for slot, eid in (meta.get("dependencies") or {}).items()
    }
    return {slot: dep for slot, dep in found.items() if dep is not None}


def assert_dependency(script_name: str, slot: str | None = None) -> None:
    """End the experiment as failed unless it depends on a run of ``script_name`` (a file
    name, ``prepare_data.py``), in ``slot`` when given; says why on stdout first, as 0.6
    did. Nothing is checked when standalone."""
    if _metadata() is None:
        return
    deps = get_dependencies()
    assert isinstance(deps, dict)

    def script_of(dep: Dependency) -> str:
        return dep.script_path.name if dep.script_path else "[unknown]"

    if not deps:
        print(f"Error: No dependency from '{script_name}' found")
        print("This experiment has no dependencies.")
        fail(f"Missing required dependency: {script_name}")
        return
    if slot is not None:
        dep = deps.get(slot)
        if dep is None:
            print(f"Error: No dependency in slot '{slot}'")
            print(f"Available slots: {', '.join(deps)}")
            fail(f"Missing required dependency slot: {slot}")
            return
        if script_of(dep) == script_name:
            return
        print(f"Error: Dependency in slot '{slot}' is not from '{script_name}'")
        print(f"Slot '{slot}' is from: {script_of(dep)}")
        fail(f"Slot '{slot}' not from required script: {script_name}")
        return
    if any(script_of(dep) == script_name for dep in deps.values()):
        return
    print(f"Error: No dependency from '{script_name}' found")
    print(f"Current dependencies: {', '.join(f'{s}={script_of(d)}' for s, d in deps.items())}")
    fail(f"Missing required dependency: {script_name}")


def get_graph(*, weakly_connected: bool = False) -> Graph:
    """The experiments this one depends on and those that depend on it (directly or not),
    with itself; ``weakly_connected``: the whole connected pipeline, its siblings' branches
    too. Who depends on an experiment is read from the store's index."""
    from yanex import dependencies
    from yanex.index import Index

    folder = api.experiment_dir()
    if folder is None:
        raise ExperimentContextError(
            "get_graph() needs an experiment, and this script runs standalone",
            hint="Run it with `yanex run`.",
        )
    index = Index(_home_of(folder))
    try:
        index.sync()
        found = dependencies.lineage(index, [folder.name], connected=weakly_connected)
    finally:
        index.close()
    nodes = [_dependency(eid, None, folder) for eid in found.ids]
    return Graph([dep for dep in nodes if dep is not None], found.edges)


# --- running a shell command from the script ------------------------------------------------


def _param_env(params: Mapping[str, Any]) -> dict[str, str]:
    """0.6's ``YANEX_PARAM_<key>`` for each top-level parameter: lists and dicts as JSON,
    other values as ``str()`` gives them (``True``, ``0.01``)."""
    return {
        f"YANEX_PARAM_{key}": json.dumps(value) if isinstance(value, (dict, list)) else str(value)
        for key, value in params.items()
    }


def _pump(pipe: Any, lines: list[str], echo: Any) -> None:
    for line in iter(pipe.readline, ""):
        lines.append(line.rstrip("\n"))
        if echo is not None:
            with contextlib.suppress(OSError, ValueError):
                echo.write(line)
                echo.flush()
    pipe.close()


def execute_bash_script(
    command: str,
    timeout: float | None = None,
    raise_on_error: bool = False,
    stream_output: bool = True,
    working_dir: Path | None = None,
    artifact_prefix: str = "script",
) -> dict[str, Any]:
    """Run a shell command and return ``exit_code``, ``stdout``, ``stderr``,
    ``execution_time``, ``command`` and ``working_directory``.

    In an experiment it runs in the experiment's folder (unless ``working_dir``), sees
    ``YANEX_EXPERIMENT_ID`` and ``YANEX_PARAM_<key>`` for each top-level parameter, and what
    it printed is saved as the artifacts ``<artifact_prefix>_stdout.txt`` and ``_stderr.txt``.
    ``stream_output`` prints its output as it comes. On ``timeout`` the command and what it
    started are stopped and ``subprocess.TimeoutExpired`` is raised; ``raise_on_error``
    raises ``subprocess.CalledProcessError`` for a non-zero exit code.
    """
    from yanex import processes

    folder = api.experiment_dir()
    cwd = Path(working_dir) if working_dir is not None else (folder or Path.cwd())
    env = dict(os.environ)
    if folder is not None:
        env.update(_param_env(api.get_params()))
        env.update(
            {
                "YANEX_EXPERIMENT_ID": folder.name,
                api.ENV_EXPERIMENT_DIR: str(folder),
                "YANEX_HOME": str(folder.parent.parent),
            }
        )
    started = time.monotonic()
    proc = processes.spawn(
        ["/bin/sh", "-c", command],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
    )
    out: list[str] = []
    err: list[str] = []
    pumps = [
        threading.Thread(
            target=_pump, args=(proc.stdout, out, sys.stdout if stream_output else None)
        ),
        threading.Thread(
            target=_pump, args=(proc.stderr, err, sys.stderr if stream_output else None)
        ),
    ]
    for pump in pumps:
        pump.start()
    try:
        exit_code = proc.wait(timeout=timeout)
    except BaseException:  # the timeout, or Ctrl-C in the script: nothing is left running
        processes.signal_group(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5.0)  # reaped: a zombie would keep the group alive
        processes.end_run(proc.pid, None, grace=5.0)  # what the command started, if still there
        proc.wait()
        raise
    finally:
        for pump in pumps:
            pump.join()
    elapsed = time.monotonic() - started
    stdout, stderr = "\n".join(out), "\n".join(err)
    if folder is not None:
        if stdout:
            api.save_artifact(stdout, f"{artifact_prefix}_stdout.txt")
        if stderr:
            api.save_artifact(stderr, f"{artifact_prefix}_stderr.txt")
    if raise_on_error and exit_code != 0:
        raise subprocess.CalledProcessError(exit_code, command, stdout, stderr)
    return {
        "exit_code": exit_code,
        "stdout": stdout,
        "stderr": stderr,
        "execution_time": elapsed,
        "command": command,
        "working_directory": str(cwd),
    }


# --- ending an experiment from inside -------------------------------------------------------


class _Ending(BaseException):
    """completed()/fail()/cancel() inside ``create_experiment``: leaves the ``with`` block
    (a BaseException, so that an ``except Exception`` in the block does not swallow it)."""

    def __init__(self, status: str, message: str | None) -> None:
        super().__init__(message or status)
        self.status = status
        self.message = message


_in_process: dict[str, Any] = {}  # the experiment a ``with create_experiment(...)`` runs


def _end_here(status: str, message: str | None) -> None:
    if _in_process.get("dir") is not None:
        raise _Ending(status, message)
    if api.is_standalone():
        raise ExperimentContextError(
            f"{'completed' if status == record.Status.COMPLETED else status}() needs an "
            "experiment, and this script runs standalone",
            hint="Run it with `yanex run`, or inside `with yanex.create_experiment(...)`.",
        )
    # Under `yanex run` the launcher records how the script ended: by its exit code, and
    # for a cancel by what the script leaves in its folder (see ending.asked_by_script).
    if status == record.Status.CANCELLED:
        from yanex import ending

        folder = api.experiment_dir()
        assert folder is not None
        asked = {"status": status, "reason": message, "pid": os.getpid()}
        with contextlib.suppress(OSError):  # the run then ends failed, the reason on stderr
            store.write_bytes_atomic(folder / ending.SCRIPT_ENDING, json.dumps(asked).encode())
    if message:
        print(f"yanex: {status}: {message}", file=sys.stderr, flush=True)
    sys.exit(0 if status == record.Status.COMPLETED else 1)


def completed() -> None:
    """End the experiment now as ``completed``."""
    _end_here(record.Status.COMPLETED, None)


def fail(message: str) -> None:
    """End the experiment now as ``failed``, with ``message`` as the reason."""
    _end_here(record.Status.FAILED, message)


def cancel(message: str) -> None:
    """End the experiment now as ``cancelled`` with ``message`` as the reason.

    Under ``yanex run`` the script exits 1 and the run is recorded ``cancelled`` ("cancelled
    by the script: <message>"); in ``create_experiment`` too.
    """
    _end_here(record.Status.CANCELLED, message)


# --- an experiment inside the calling process ------------------------------------------------


class ExperimentContext:
    """A tracked experiment run by the calling process: entering marks it ``running`` and
    makes the script API log to it; leaving records how the block ended (``completed``;
    ``failed`` with the exception; ``cancelled`` for Ctrl-C; or what ``completed()``,
    ``fail()``, ``cancel()`` said)."""

    def __init__(self, experiment_id: str, folder: Path | None = None) -> None:
        self.experiment_id = experiment_id
        self.dir = folder if folder is not None else store.experiments_root() / experiment_id
        self._started = 0.0
        self._previous: Any = None
        self._claim: Any = None
        self._heartbeat: Heartbeat | None = None
        self._entered = False

    def _take(self) -> None:
        """Take the staged experiment for this process: claimed (no `yanex run --staged`
        runner starts it) and ``running`` under this process's pid, so that if the process
        dies before the block ends, the next reader of the store records it failed."""
        from yanex import claims

        if self._claim is not None:
            return
        self._claim = claims.take(self.dir)
        if self._claim is None:
            raise ExperimentContextError(
                f"experiment {self.experiment_id} is being started by a `yanex run --staged` "
                "runner",
                hint="Create a new experiment with yanex.create_experiment(...).",
            )
        changed = record.update(
            self.dir,
            {
                "status": record.Status.RUNNING,
                # this process, by pid and start time: a reused pid is not taken for it
                "launcher": ProcessId.current().to_metadata(),
            },
            only_if=(record.Status.STAGED,),
            durable=False,
        )
        if changed is None:
            claims.release(self.dir, self._claim)
            self._claim = None
            status = store.read_json(self.dir / store.METADATA).get("status")
            raise ExperimentContextError(
                f"experiment {self.experiment_id} is {status}: only a staged experiment can "
                "be run in this process",
                hint="Create a new experiment with yanex.create_experiment(...).",
            )

    def __enter__(self) -> ExperimentContext:
        if _in_process.get("dir") is not None or not api.is_standalone():
            raise ExperimentContextError(
                "an experiment is already tracked in this process; experiments created "
                "in-process cannot be nested",
                hint="Leave the first `with` block before entering another.",
            )
        if self._entered:
            raise ExperimentContextError(
                f"experiment {self.experiment_id} has run already: a block runs once",
                hint="Create a new experiment with yanex.create_experiment(...).",
            )
        self._take()
        # Beating while it runs: another host sharing the store can tell it from a lost one.
        self._heartbeat = Heartbeat(self.dir)
        self._heartbeat.__enter__()
        self._entered = True
        record.update(self.dir, {"started_at": store.now_iso()}, durable=False)
        store.reserve_room(self.dir)
        self._started = time.monotonic()
        self._previous = api._track(self.dir)
        _in_process["dir"] = self.dir
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        from yanex import claims

        if exc is None:
            status, error, code = record.Status.COMPLETED, None, 0
        elif isinstance(exc, _Ending):
            status, error = exc.status, exc.message
            code = 0 if status == record.Status.COMPLETED else None
        elif isinstance(exc, KeyboardInterrupt):
            status, error, code = record.Status.CANCELLED, "cancelled by SIGINT (Ctrl-C)", None
        else:
            status, error, code = record.Status.FAILED, f"{type(exc).__name__}: {exc}", 1
        try:
            self._record_ending(status, error, code)
        finally:
            _in_process.pop("dir", None)
            api._untrack(self._previous)
            if self._heartbeat is not None:
                self._heartbeat.__exit__(None, None, None)
            claims.release(self.dir, self._claim)
            store.release_room(self.dir)
        print(f"yanex: experiment {self.experiment_id} {status}", file=sys.stderr, flush=True)
        return isinstance(exc, _Ending)  # completed()/fail()/cancel() end the block quietly

    def _record_ending(self, status: str, error: str | None, code: int | None) -> None:
        changes: dict[str, Any] = {
            "status": status,
            "ended_at": store.now_iso(),
            "duration": round(time.monotonic() - self._started, 3),
            "exit_code": code,
            "error": error,
        }

        def with_warnings(meta: dict[str, Any]) -> dict[str, Any]:
            found = store.read_warnings(self.dir)  # what the script API could not write
            if found:
                return {**changes, "warnings": [*meta.get("warnings", []), *found]}
            return changes

        try:
            record.update(self.dir, with_warnings, only_if=(record.Status.RUNNING,))
        except OSError:
            store.release_room(self.dir)  # the room kept for this moment (a full disk)
            record.update(self.dir, with_warnings, only_if=(record.Status.RUNNING,))


def _sweeps_in(config: Mapping[str, Any], prefix: str = "") -> list[str]:
    from yanex.config import overrides

    found = []
    for key, value in config.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            found.extend(_sweeps_in(value, path))
        elif isinstance(value, str) and overrides.is_sweep_text(value):
            found.append(f"{path}={value}")
    return found


def create_experiment(
    script_path: Path,
    name: str | None = None,
    config: dict[str, Any] | None = None,
    tags: list[str] | None = None,
    description: str | None = None,
    *,
    ignore_dirty: bool = False,
) -> ExperimentContext:
    """A new experiment that the calling process runs: ``with yanex.create_experiment(...):``
    logs, parameters and artifacts of the block go to it, and its ending is recorded when the
    block ends.

    It is recorded as ``yanex.launch`` records a run of ``script_path`` with ``config`` (the
    project's config below it, git state, environment), so a dirty tree is refused unless
    ``ignore_dirty=True``. Refused inside a script that ``yanex run`` already tracks.
    """
    from yanex.launching import launch

    if not api.is_standalone():
        raise ExperimentContextError(
            "create_experiment() is for programs run with plain python; this script is "
            "already tracked by `yanex run`",
            hint="Run it with `python script.py`, or drop create_experiment() and log to the "
            "experiment `yanex run` made.",
        )
    swept = _sweeps_in(config or {})
    if swept:
        raise ExperimentContextError(
            f"create_experiment() runs one experiment, and the config holds sweeps: "
            f"{', '.join(swept)}",
            hint="Give one value each, or run the grid with yanex.launch(...).",
        )
    staged = launch(
        config or {},
        script_path,
        name=name,
        description=description,
        tags=tags or (),
        stage=True,
        ignore_dirty=ignore_dirty,
    )
    assert not isinstance(staged, list)
    context = ExperimentContext(staged.id, staged.dir)
    context._take()  # at once: no runner may start it, and a process that dies fails it
    return context


def create_context(experiment_id: str) -> ExperimentContext:
    """Run a staged experiment (by ID, unique prefix or name) in this process."""
    from yanex import results

    found = results.get(experiment_id, all_projects=True)
    return ExperimentContext(found.id, found.dir)


# --- several runs from Python ----------------------------------------------------------------


@dataclass
class ExperimentSpec:
    """One experiment for :func:`run_multiple`: the script, its ``config`` (merged over the
    project's config, as ``yanex.launch`` takes it), name, tags, description, and the
    arguments its ``sys.argv`` gets. ``cli_args`` reach the script's ``get_cli_args()``;
    ``dependencies`` (``{slot: ID}``, as ``-D slot=ID``) must be completed experiments."""

    script_path: Path | None = None
    script_args: list[str] = field(default_factory=list)
    function: Callable[..., Any] | None = None
    config: dict[str, Any] = field(default_factory=dict)
    name: str | None = None
    tags: list[str] = field(default_factory=list)
    description: str | None = None
    dependencies: dict[str, str] = field(default_factory=dict)
    cli_args: dict[str, Any] = field(default_factory=dict)
    project: str | None = None
    ignore_dirty: bool = False

    def validate(self) -> None:
        """Refuse what cannot run: exactly one of ``script_path`` and ``function`` (only
        scripts are run), and what this yanex does not have yet."""
        if (self.script_path is None) == (self.function is None):
            raise ValueError(
                "Must specify exactly one of script_path or function. "
                "Currently only script_path (subprocess) is supported."
            )
        if self.function is not None:
            raise NotImplementedError(
                "Inline function execution not yet supported. "
                "Use script_path for subprocess execution."
            )
        if self.project is not None:
            raise ValueError(
                "project: an experiment's project is the git repository (else the folder) it "
                "runs in; run the script from that project instead"
            )


@dataclass
class ExperimentResult:
    """How one experiment of :func:`run_multiple` ended: its ID (``"unknown"`` when it could
    not be created), status, error message, duration in seconds, and name."""

    experiment_id: str
    status: str
    error_message: str | None = None
    duration: float | None = None
    name: str | None = None


def _launch_kwargs(spec: ExperimentSpec) -> dict[str, Any]:
    return {
        "cfg": dict(spec.config),
        "script": os.fspath(spec.script_path),
        "name": spec.name,
        "description": spec.description,
        "tags": list(spec.tags),
        "args": [str(arg) for arg in spec.script_args],
        "ignore_dirty": spec.ignore_dirty,
        "dependencies": dict(spec.dependencies),
    }


def _launch_one(kwargs: dict[str, Any], cli_args: dict[str, Any], name: str | None) -> list[Any]:
    """Run one spec with ``yanex.launch``: a list of ExperimentResult fields (several when
    its config holds a sweep). A refusal is one failed result, as 0.6 gave it."""
    from yanex.launching import launch

    saved = os.environ.get(CLI_ARGS_ENV)
    if cli_args:
        os.environ[CLI_ARGS_ENV] = json.dumps(cli_args)  # the script's environment
    try:
        found = launch(kwargs.pop("cfg"), kwargs.pop("script"), **kwargs)
    except YanexError as exc:
        return [["unknown", record.Status.FAILED, exc.format_message(), None, name]]
    finally:
        if cli_args:
            if saved is None:
                os.environ.pop(CLI_ARGS_ENV, None)
            else:
                os.environ[CLI_ARGS_ENV] = saved
    runs = found if isinstance(found, list) else [found]
    return [[run.id, run.status, run.error, run.duration, run.name] for run in runs]


def run_multiple(
    experiments: list[ExperimentSpec],
    parallel: int | None = None,
    verbose: bool = False,
) -> list[ExperimentResult]:
    """Run the experiments, one after another (``parallel=None``) or ``parallel`` at once
    (0: one per CPU); their results in the order given.

    Each runs as ``yanex.launch`` runs it (the same folder, git rules and statuses as
    ``yanex run``); one that cannot be created is a ``failed`` result with the reason, and
    the others still run. Ctrl-C cancels the running ones (recorded ``cancelled``), starts no
    more, and reaches the caller as KeyboardInterrupt. ``verbose`` is accepted for 0.6's
    sake: the scripts' output is always shown.
    """
    if not experiments:
        raise ValueError("experiments list cannot be empty")
    for i, spec in enumerate(experiments):
        try:
            spec.validate()
        except Exception as exc:
            raise ValueError(f"Invalid ExperimentSpec at index {i}: {exc}") from exc
    if parallel is not None and parallel < 0:
        raise ValueError("parallel must be None (one after another), 0 (one per CPU) or N > 0")
    if parallel is None:
        fields = [
            _launch_one(_launch_kwargs(spec), spec.cli_args, spec.name) for spec in experiments
        ]
    else:
        workers = parallel or os.cpu_count() or 1
        fields = _run_in_workers(experiments, workers)
    return [ExperimentResult(*row) for rows in fields for row in rows]


# Each parallel run is a worker process of its own, running yanex.launch in its main thread:
# it takes Ctrl-C as `yanex run` does (the script is told, the run recorded cancelled).
_WORKER = "from yanex.v06 import _worker; _worker()"
_RESULT_FD_ENV = "YANEX_V06_RESULT_FD"


def _worker() -> None:
    """A worker of :func:`run_multiple`: one spec from stdin (pickled), its results as JSON
    on the file descriptor the parent gave."""
    import pickle

    kwargs, cli_args, name = pickle.loads(sys.stdin.buffer.read())
    fd = int(os.environ.pop(_RESULT_FD_ENV))
    try:
        rows = _launch_one(kwargs, cli_args, name)
    except KeyboardInterrupt:  # recorded cancelled by the launcher; the caller re-raises
        rows = [["unknown", record.Status.CANCELLED, "cancelled by SIGINT", None, name]]
    with contextlib.suppress(OSError), os.fdopen(fd, "w") as out:
        json.dump(rows, out)


def _run_worker(spec: ExperimentSpec, live: dict[int, subprocess.Popen[bytes]]) -> list[Any]:
    import pickle

    from yanex import processes

    read_fd, write_fd = os.pipe()
    env = {**os.environ, _RESULT_FD_ENV: str(write_fd)}
    try:
        proc = processes.spawn(
            [sys.executable, "-c", _WORKER], stdin=subprocess.PIPE, env=env, pass_fds=(write_fd,)
        )
    finally:
        os.close(write_fd)
    live[proc.pid] = proc
    try:
        assert proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.write(pickle.dumps((_launch_kwargs(spec), spec.cli_args, spec.name)))
            proc.stdin.close()
        with os.fdopen(read_fd, "r") as results:
            text = results.read()
        proc.wait()
    finally:
        live.pop(proc.pid, None)
    try:
        return json.loads(text)
    except ValueError:
        reason = f"the worker running it ended with exit code {proc.returncode}"
        return [["unknown", record.Status.FAILED, reason, None, spec.name]]


def _run_in_workers(experiments: Sequence[ExperimentSpec], workers: int) -> list[list[Any]]:
    from concurrent.futures import ThreadPoolExecutor, wait

    live: dict[int, subprocess.Popen[bytes]] = {}
    pool = ThreadPoolExecutor(max_workers=workers)
    futures = [pool.submit(_run_worker, spec, live) for spec in experiments]
    try:
        wait(futures)
    except KeyboardInterrupt:
        for future in futures:
            future.cancel()  # those not started never start
        for proc in list(live.values()):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGINT)  # once: the launcher in it stops its run
        wait([future for future in futures if not future.cancelled()])
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return [future.result() for future in futures]
