"""One staged member, run wherever an executor runs it: the worker-side entry point.

``run_member`` is the one code path of a staged run, in the runner's own process (the local
executor's threads) or on a Dask worker: it runs only a member that is staged and claimed by
its caller (the claim's token travels with the task), checks the code against what was
recorded at staging, runs it with the same launcher as a direct run (folder, output capture,
statuses), and gives back how it ended. The store travels with the task too (``home``), never
the worker's own YANEX_HOME.

Anything that goes wrong before the script starts ends that member alone, with the reason:
refused (it stays staged: the code changed), not run (it is gone, or not this caller's, or a
dependency of it has not ended), or failed (recorded: a dependency of it failed, its working
folder is gone, it could not be started).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO

from yanex import claims, dependencies, ending, record, store
from yanex.code.check import CodeCheck
from yanex.ending import Ending, NotRun
from yanex.errors import YanexError
from yanex.record import Status


def run_member(
    home: Path | str,
    experiment_id: str,
    token: str,
    *,
    code: CodeCheck,
    stdout: IO[bytes] | None = None,
    stderr: IO[bytes] | None = None,
    echo: Callable[[str], None] = lambda message: None,
    next_signal: Callable[[float], int | None] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Ending:
    """Run the staged member ``experiment_id`` of the store at ``home``, claimed with
    ``token``; its claim is given back at the end, however it ends.

    ``next_signal`` passes stop signals on (see ``supervise.run``); ``environ`` is the
    script's environment (default: this process's).
    """
    from yanex.launcher import Experiment, Launcher, RunRequest

    if not store.is_valid_id(experiment_id):  # a bad ID addresses nothing
        raise store.StoreError(f"{experiment_id!r} is not an experiment ID")
    folder = store.experiments_root(Path(home)) / experiment_id
    try:
        meta = record.read_metadata(folder)
    except (OSError, record.BadRecord) as exc:
        return gone(experiment_id, folder, None, f"it cannot be read: {exc}")
    name = meta.get("name") or Path(meta["script"]).name
    if meta["status"] != Status.STAGED or not claims.holds(folder, token):
        return Ending(
            experiment_id,
            meta["status"],
            dir=folder,
            name=name,
            error="it is not staged and claimed here",
            why=NotRun.ELSEWHERE,
        )
    try:
        # Its dependencies first: one that failed fails it (it never runs); one not ended yet
        # (staged, or running elsewhere) leaves it staged.
        blocked = dependencies.blocking(meta, Path(home))
        if blocked is not None:
            kind, reason = blocked
            if kind == dependencies.FAIL:
                return record_failed(folder, name, reason)
            return Ending(
                experiment_id, Status.STAGED, dir=folder, name=name, error=reason,
                why=NotRun.WAITING,
            )  # fmt: skip
        refusal = code(folder, meta)
        if refusal is not None:
            claims.release(folder)
            return Ending(
                experiment_id, Status.STAGED, dir=folder, name=name, error=refusal,
                why=NotRun.REFUSED,
            )  # fmt: skip
        cwd = Path(meta["cwd"])
        if not cwd.is_dir():
            return record_failed(folder, name, f"its working folder {cwd} is gone")
        request = RunRequest(
            script=Path(meta["script"]),
            script_args=list(meta["args"]),
            cwd=cwd,
            environ=dict(os.environ if environ is None else environ),
        )
        launcher = Launcher(stdout=stdout, stderr=stderr, echo=echo)
        experiment = Experiment(id=experiment_id, dir=folder, metadata=meta)
        return launcher.execute(
            experiment, request, request.script, next_signal=next_signal, record_environment=True
        )
    except (OSError, YanexError, record.BadRecord) as exc:
        reason = exc.format_message() if isinstance(exc, YanexError) else str(exc)
        if not folder.is_dir():
            return gone(experiment_id, folder, name, f"its folder is gone ({reason})")
        return record_failed(folder, name, f"it could not be started: {reason}")
    finally:
        claims.release(folder)


def gone(experiment_id: str, folder: Path, name: str | None, reason: str) -> Ending:
    """A member that was listed to run and can no longer be: deleted, emptied, unreadable."""
    return Ending(experiment_id, None, dir=folder, name=name, error=reason, why=NotRun.GONE)


def record_failed(folder: Path, name: str | None, reason: str) -> Ending:
    """Record a member that could not start (or whose run broke) as failed, when its folder
    can take it; its ending as recorded (someone else may have recorded it first)."""
    changes = {"status": Status.FAILED, "ended_at": store.now_iso(), "error": reason}
    try:
        meta = record.update(folder, changes, only_if=(Status.STAGED, Status.RUNNING))
        if meta is None:
            meta = record.read_metadata(folder)
    except (OSError, ValueError, record.BadRecord):
        return gone(folder.name, folder, name, reason)
    return ending.recorded(folder, meta)
