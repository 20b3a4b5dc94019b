"""One staged member, run wherever an executor runs it: the worker-side entry point.

``run_member`` is the one code path of a staged run, in the runner's own process (the local
executor's threads) or on a Dask worker: it runs only a member that is staged and claimed by
its caller (the claim's token travels with the task), checks the code against what was
recorded at staging, runs it with the same launcher as a direct run (folder, output capture,
statuses), and gives back how it ended. The store travels with the task too (``home``), never
the worker's own YANEX_HOME.

Anything that goes wrong before the script starts ends that member alone, with the reason:
refused (it stays staged: the code changed), skipped (it is gone, or not this caller's), or
failed (recorded: its working folder is gone, its metadata cannot be written).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from yanex import claims, record, store
from yanex.code import CodeCheck
from yanex.errors import YanexError
from yanex.record import Status

# What a member can come to besides the statuses of a run.
REFUSED = "refused"  # the code differs from what was staged: it stays staged
SKIPPED = "skipped"  # not this caller's to run (gone, not staged, claimed by another)


@dataclass
class MemberEnd:
    """How one member came out: a run's status, or refused/skipped, and why."""

    id: str
    status: str
    name: str | None = None
    exit_code: int | None = None
    duration: float | None = None
    error: str | None = None
    cli_exit_code: int = 0
    stopped_by: int | None = None


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
) -> MemberEnd:
    """Run the staged member ``experiment_id`` of the store at ``home``, claimed with
    ``token``; its claim is given back at the end, however it ends.

    ``next_signal`` passes stop signals on (see ``supervise.run``); ``environ`` is the
    script's environment (default: this process's).
    """
    from yanex.launcher import Experiment, Launcher, RunRequest

    folder = store.experiment_dir(experiment_id, Path(home))  # a bad ID addresses nothing
    try:
        meta = record.read_metadata(folder)
    except (OSError, record.BadRecord) as exc:
        return MemberEnd(experiment_id, SKIPPED, error=f"it cannot be read: {exc}")
    name = meta.get("name") or Path(meta["script"]).name
    if meta["status"] != Status.STAGED or not claims.holds(folder, token):
        return MemberEnd(experiment_id, SKIPPED, name, error="it is not staged and claimed here")
    try:
        refusal = code(folder, meta)
        if refusal is not None:
            claims.release(folder)
            return MemberEnd(experiment_id, REFUSED, name, error=refusal)
        cwd = Path(meta["cwd"])
        if not cwd.is_dir():
            return _failed_to_start(folder, meta, f"its working folder {cwd} is gone")
        request = RunRequest(
            script=Path(meta["script"]),
            script_args=list(meta["args"]),
            cwd=cwd,
            environ=dict(os.environ if environ is None else environ),
        )
        launcher = Launcher(stdout=stdout, stderr=stderr, echo=echo)
        experiment = Experiment(id=experiment_id, dir=folder, metadata=meta)
        outcome = launcher.execute(
            experiment, request, request.script, next_signal=next_signal, record_environment=True
        )
    except (OSError, YanexError, record.BadRecord) as exc:
        reason = exc.format_message() if isinstance(exc, YanexError) else str(exc)
        if not folder.is_dir():
            return MemberEnd(experiment_id, SKIPPED, name, error=f"its folder is gone ({reason})")
        return _failed_to_start(folder, meta, f"it could not be started: {reason}")
    finally:
        claims.release(folder)
    return MemberEnd(
        experiment_id,
        outcome.status,
        name,
        outcome.exit_code,
        experiment.metadata.get("duration"),
        outcome.error,
        outcome.cli_exit_code,
        outcome.stopped_by,
    )


def _failed_to_start(folder: Path, meta: dict[str, Any], reason: str) -> MemberEnd:
    """Record a member that could not start as failed, when its folder can take it."""
    name = meta.get("name") or Path(meta["script"]).name
    changes = {"status": Status.FAILED, "ended_at": store.now_iso(), "error": reason}
    try:
        record.update(folder, changes, only_if=(Status.STAGED, Status.RUNNING))
    except (OSError, ValueError):
        return MemberEnd(folder.name, SKIPPED, name, error=reason)
    return MemberEnd(folder.name, Status.FAILED, name, error=reason, cli_exit_code=1)
