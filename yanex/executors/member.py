"""One staged member, run wherever an executor runs it: the worker-side entry point.

``run_member`` is the one code path of a staged run, in the runner's own process (the local
executor's threads) or on a Dask worker: it runs only a member that is staged and claimed by
its caller (the claim's token travels with the task), checks the code against what was
recorded at staging, runs it with the same launcher as a direct run (folder, output capture,
statuses), and gives back how it ended. The store travels with the task too (``home``), never
the worker's own YANEX_HOME.

Anything that goes wrong before the script starts ends that member alone, with the reason:
refused (it stays staged: the code changed), not run (it is gone, or not this caller's), or
failed (recorded: its working folder is gone, it could not be started).
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

from yanex import claims, ending, gitstate, record, store
from yanex.ending import Ending, NotRun
from yanex.errors import YanexError
from yanex.record import Status


class CodeCheck:
    """Is the code there is now the code a member was staged with? Asked once per distinct
    recorded state (commit, patch) and script, and the answer kept for ``ttl`` seconds: a
    batch of 1,000 members of one grid reads git once a second, not 1,000 times.

    With ``ignore_dirty`` a difference is allowed, and the member records the state it really
    runs with (the staging state is kept as ``git_at_staging`` and ``git.staged.patch``).
    """

    def __init__(self, ignore_dirty: bool, ttl: float = 1.0) -> None:
        self.ignore_dirty = ignore_dirty
        self.ttl = ttl
        self._lock = threading.Lock()
        self._snapshots: dict[tuple[str, ...], tuple[float, gitstate.GitSnapshot | str]] = {}
        self._answers: dict[tuple[str, ...], tuple[float, str | None]] = {}

    def _snapshot(self, script: str, configs: tuple[str, ...]) -> gitstate.GitSnapshot | str:
        """The repository's state now (or why there is none), for ``ttl`` seconds.

        ``configs``: the untracked config files the member read at staging (their content is
        in its git.patch), so that they count as the tree's changes now too."""
        key = (script, *configs)
        found = self._snapshots.get(key)
        if found is not None and time.monotonic() - found[0] < self.ttl:
            return found[1]
        try:
            now: gitstate.GitSnapshot | str = gitstate.snapshot(
                Path(script), [Path(path) for path in configs]
            )
        except gitstate.NotARepository as exc:
            now = str(exc)
        self._snapshots[key] = (time.monotonic(), now)
        return now

    def __call__(self, folder: Path, meta: dict[str, Any]) -> str | None:
        """Why this member may not run with the code there is now, or None when it may."""
        recorded = meta.get("git")
        staged = folder / store.GIT_PATCH
        before = staged.read_bytes() if staged.exists() else b""
        commit = recorded.get("commit") if recorded else None
        configs = tuple(meta.get("config_files") or ())
        key = (meta["script"], str(commit), hashlib.sha256(before).hexdigest(), *configs)
        with self._lock:
            now = self._snapshot(meta["script"], configs)
            answer = self._answers.get(key)
            if answer is None or time.monotonic() - answer[0] >= self.ttl:
                if isinstance(now, str):
                    difference = None if recorded is None else now
                else:
                    commit = commit if recorded is not None else now.commit
                    difference = gitstate.changes_since(commit, before, now, "at staging")
                answer = (time.monotonic(), difference)
                self._answers[key] = answer
        difference = answer[1]
        if difference is None:
            return None
        if not self.ignore_dirty:
            return difference
        self._record_real_state(folder, recorded, None if isinstance(now, str) else now)
        return None

    @staticmethod
    def _record_real_state(
        folder: Path, recorded: dict[str, Any] | None, now: gitstate.GitSnapshot | None
    ) -> None:
        patch = folder / store.GIT_PATCH
        if patch.exists():
            os.replace(patch, folder / store.GIT_PATCH_AT_STAGING)
        if now is not None and now.dirty:
            store.write_bytes_atomic(patch, gitstate.patch(now))
        real = now.to_metadata() if now is not None else None
        record.update(folder, {"git_at_staging": recorded, "git": real})


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
