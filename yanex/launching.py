"""``yanex.launch``: runs started from Python, over the launcher and the executors.

A thin layer: ``cfg`` becomes ``--param`` texts, the launcher prepares the run as ``yanex run``
would, and the grid is staged (``stage=True``), run through the executors as ``yanex run -m``
runs it (``jobs``, ``executor``), or run member after member here.

That last loop is the launcher's own direct run, once per member, not a staged batch: each
member is created ``running`` by this process when its turn comes, so nothing else can take
it and no claim is needed, a notebook's ``sys.stdout`` gets the output, and a member never
started leaves nothing behind. Between members it asks the one code check the executors ask
(``code.check.CodeCheck``), against the code the sweep started with.

(The module is not named ``launch``: importing a submodule binds its name on the package,
which would hide the function ``yanex.launch``.)
"""

from __future__ import annotations

import os
import re
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from yanex import dependencies as _depends  # launch() has a parameter of that name
from yanex.code.check import CodeCheck
from yanex.code.state import Recorded
from yanex.config import overrides, sources
from yanex.ending import Ending
from yanex.errors import CodeChangedError, ParamError
from yanex.launcher import Launcher, Prepared, RunRequest
from yanex.record import Status

__all__ = ["Result", "launch"]

# One experiment started by :func:`launch`: how it ended (or ``staged``), where it is, its
# name, how long it ran, why it failed, and the lines it logged (``results``).
Result = Ending


def _override_texts(cfg: Mapping[str, Any], config_dir: Path | None) -> list[str]:
    """``{"model": "large", "opt": {"lr": 0.1}}`` -> ``["model=large", "++opt.lr=0.1"]``:
    a config group's key selects an option; other keys are set, or added when missing.
    Strings stay as given, except one that is a whole sweep call (``"list(0.1, 0.01)"``).
    A key the override grammar cannot name (``1``, ``"a b"``) is set with its parent."""
    texts = []
    for key, value in _launch_leaves(dict(cfg)):
        if isinstance(value, str) and overrides.is_sweep_text(value):
            shown = value
        else:
            shown = overrides.render_value(value)
        if config_dir is not None and isinstance(value, str) and sources.is_group(config_dir, key):
            texts.append(f"{key}={shown}")
        else:
            texts.append(f"++{key}={shown}")
    return texts


_KEY_PART = re.compile(r"^(?:[A-Za-z_$][A-Za-z0-9_$\-]*|0|[1-9][0-9]*)\Z")


def _launch_leaves(node: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """``(dotted.key, value)`` for every leaf the override grammar can name; a mapping whose
    keys it cannot name is one value of its parent (``{"layers": {0.5: 1}}``)."""
    found: list[tuple[str, Any]] = []
    for key, value in node.items():
        if not (isinstance(key, str) and _KEY_PART.match(key)) or (not prefix and key.isdigit()):
            if not prefix:
                raise ParamError(
                    f"launch: the top-level key {key!r} cannot be named on a command line",
                    hint="Top-level keys start with a letter or '_'; nest others in one: "
                    "{'layers': {0: ...}}.",
                )
            return [(prefix, dict(node))]
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, Mapping) and value:
            found.extend(_launch_leaves(value, path))
        else:
            found.append((path, value))
    return found


class _TextSink:
    """Bytes from the script to a text stream (a notebook's stdout has no ``.buffer``)."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def write(self, data: bytes) -> None:
        self.stream.write(data.decode("utf-8", "replace"))

    def flush(self) -> None:
        self.stream.flush()


def _sink(stream: Any) -> Any:
    return getattr(stream, "buffer", None) or _TextSink(stream)


def launch(
    cfg: Mapping[str, Any] | Any,
    script: str | os.PathLike[str],
    *,
    name: str | None = None,
    description: str | None = None,
    tags: Sequence[str] = (),
    stage: bool = False,
    ignore_dirty: bool = False,
    args: Sequence[str] = (),
    cwd: str | os.PathLike[str] | None = None,
    jobs: int | None = None,
    executor: str | None = None,
    scheduler: str | None = None,
    resources: Mapping[str, float] | None = None,
    retries: int = 0,
    dependencies: Mapping[str, str | Sequence[str]] | None = None,
) -> Result | list[Result]:
    """Run ``script`` as a tracked experiment with the parameters ``cfg`` (a dict or an
    OmegaConf config), as ``yanex run`` would with ``cfg`` given as ``--param`` values.

    The project's config (a ``conf/`` tree or ``config.yaml`` in ``cwd``) is the base and
    ``cfg`` is merged over it; a config group's key (``{"model": "large"}``) selects an
    option. Sweep values (``"lr": "list(0.1, 0.01)"``) make a grid: each member runs in turn
    (or is staged) and a list of results, in grid order, is returned. With ``jobs`` (N at
    once; 0: one per CPU) or ``executor="dask"`` (``scheduler``: its address; default a local
    cluster), the grid runs through the same executors as ``yanex run --staged``. Ctrl-C
    cancels what is running and reaches the caller as KeyboardInterrupt. Bad input raises
    ``YanexError``.

    ``dependencies``: ``{slot: ID}`` as ``-D slot=ID`` (an ID, a unique prefix or a name); a
    list of them sweeps the slot, one experiment each.
    """
    folder = Path(cwd) if cwd is not None else Path.cwd()
    if type(cfg).__module__.startswith("omegaconf"):  # a DictConfig (itself a Mapping)
        from omegaconf import OmegaConf

        cfg = OmegaConf.to_container(cfg, resolve=False)
    if not isinstance(cfg, Mapping):
        raise TypeError(f"launch: cfg must be a dict or an OmegaConf config, not {type(cfg)}")

    config_dir = sources.find_source(cwd=folder, script=Path(script)).tree
    request = RunRequest(
        script=Path(script),
        script_args=list(args),
        params=_override_texts(cfg, config_dir),
        name=name,
        description=description,
        tags=list(tags),
        ignore_dirty=ignore_dirty,
        stage=stage,
        depends_on=[_depends.spell(slot, refs) for slot, refs in (dependencies or {}).items()],
        cwd=folder,
        environ={k: v for k, v in os.environ.items() if not k.startswith(overrides.ENV_PREFIX)},
    )
    launcher = Launcher(stdout=_sink(sys.stdout), stderr=_sink(sys.stderr), echo=_print_err)
    prepared = launcher.prepare(request, run_grid=True)
    for warning in prepared.warnings:
        _print_err(f"warning: {warning}")
    if prepared.request.stage:  # stage=True, or the config's yanex.stage
        staged = launcher.stage(prepared)
        found = [Ending(e.id, Status.STAGED, None, e.dir, e.metadata["name"]) for e in staged]
        return found if prepared.is_sweep else found[0]
    if jobs is not None or executor is not None:
        found = _run_on_executor(
            launcher,
            prepared,
            jobs=jobs if jobs is not None else (1 if (executor or "local") == "local" else 0),
            executor=executor or "local",
            cluster=(
                {"scheduler": scheduler, "resources": dict(resources or {}), "retries": retries}
                if executor == "dask"
                else {}
            ),
        )
        return found if prepared.is_sweep else found[0]
    outcomes: list[Result] = []
    baseline, check = _code_at_start(prepared), CodeCheck(ignore_dirty)
    for member, sweep in prepared.numbered():
        if outcomes:  # the code may have been edited while the earlier members ran
            _check_code(prepared, check, baseline, outcomes)
        experiment = launcher.create(prepared, member, sweep=sweep, durable=False)
        outcome = launcher.execute(experiment, prepared.request, prepared.script)
        outcomes.append(outcome)
        if outcome.stopped_by is not None:
            # Ctrl-C (or a stop signal) stops the whole sweep: the caller gets it once the
            # running member is recorded (KeyboardInterrupt, for Ctrl-C).
            signal.raise_signal(outcome.stopped_by)
    return outcomes if prepared.is_sweep else outcomes[0]


def _run_on_executor(
    launcher: Launcher, prepared: Prepared, *, jobs: int, executor: str, cluster: dict[str, Any]
) -> list[Result]:
    """Stage the grid and run exactly those members through an executor, as ``yanex run
    --staged`` does; the results in grid order (members not run stay ``staged``)."""
    from yanex.executors import run_queue

    staged = launcher.stage(prepared)
    queue = [(experiment.dir, experiment.metadata) for experiment in staged]
    streams = {"stdout": _sink(sys.stdout), "stderr": _sink(sys.stderr)} if jobs == 1 else {}
    if executor != "local":
        streams = {}
    _, runner = run_queue(
        queue,
        jobs=jobs,
        ignore_dirty=prepared.request.ignore_dirty,
        echo=_print_err,
        executor=executor,
        **cluster,
        **streams,
    )
    results = []
    for experiment in staged:  # each as the batch told it (not run: why, in ``why``)
        end = runner.ends.get(experiment.id)
        if end is None:
            name = experiment.metadata.get("name")
            end = Ending(experiment.id, Status.STAGED, None, experiment.dir, name)
        results.append(end)
    if runner.stopped_by is not None:
        signal.raise_signal(runner.stopped_by)  # KeyboardInterrupt, for Ctrl-C
    return results


def _code_at_start(prepared: Prepared) -> Recorded | None:
    return Recorded.of(prepared.git) if prepared.git is not None else None


def _check_code(
    prepared: Prepared,
    check: CodeCheck,
    baseline: Recorded | None,
    done: list[Result],
) -> None:
    """Before each further member: the same code as the sweep started with, through the one
    code check ``run --staged`` uses; with ``ignore_dirty`` the member records what it runs."""
    if baseline is None:
        return
    resolved = prepared.resolved
    change, now = check.compare(
        baseline, prepared.script, resolved.config_roots, resolved.reads, "when the sweep started"
    )
    if now is None:
        change = "the script is no longer in a git repository"
    if change is None:
        return
    if not prepared.request.ignore_dirty:
        raise CodeChangedError(
            f"the code changed while the sweep ran: {change}; {len(done)} of "
            f"{len(prepared.expand())} members ran, the rest did not",
            hint="Keep the code as it is while a sweep runs, or pass ignore_dirty=True to run "
            "each member with the code there is (each records its own).",
            results=done,
        )
    prepared.git = now  # recorded as what this member ran with


def _print_err(message: str) -> None:
    from yanex.terminal import safe_lines

    print(safe_lines(message), file=sys.stderr, flush=True)
