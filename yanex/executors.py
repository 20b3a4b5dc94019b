"""Where staged experiments run: ``yanex run --staged [-j N]``.

The runner takes the staged experiments of the current project (its git repository, else the
current folder), oldest first. For each it takes a claim (an exclusive file: of two runners
only one gets an experiment), checks that the code is still the code recorded at staging,
and starts a worker (``yanex _execute ID``) in the folder recorded at staging, at most N at a
time. Each worker is a normal launcher run, so an experiment run this way ends exactly as a
direct run does. Stop signals go to the workers; unstarted experiments stay staged.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yanex import gitstate, processes, record, store
from yanex.record import Status

# What the runner counts: how each experiment ended, and refusals.
_COUNTED = (*Status.ENDED, "refused")


def current_project(cwd: Path) -> Path:
    """The project a runner serves: the git repository it is run in, else the folder."""
    return gitstate.repo_root(cwd) or cwd.resolve()


def staged_experiments(
    project: Path, echo: Callable[[str], None]
) -> list[tuple[Path, dict[str, Any]]]:
    """The project's staged experiments (not archived), oldest first (a grid in its order).

    Reading the index brings it up to date, which also records as failed the runs left
    ``running`` by a launcher that died on this host.
    """
    from yanex import query
    from yanex.index import Index

    index = Index(echo=echo)
    try:
        index.sync()
        filters = query.Filters(status=(Status.STAGED,), project=str(project))
        order = (query.Sort("created"), query.Sort("sweep_index"))
        found = []
        for rec in query.select(index, filters, sort=order):
            try:
                found.append((rec.dir, record.read_metadata(rec.dir)))
            except (OSError, record.BadRecord):
                continue  # gone or broken since it was indexed
        return found
    finally:
        index.close()


def _short(commit: str | None) -> str:
    return commit[:12] if commit else "no commit"


def check_code(folder: Path, meta: dict[str, Any], ignore_dirty: bool) -> str | None:
    """Why this experiment may not run with the code there is now, or None when it may.

    The commit must be the one recorded at staging, and the uncommitted changes the ones in
    its git.patch (none, if it was staged clean). With ``ignore_dirty`` a difference is
    allowed, and the state it actually runs with is recorded (the staging state is kept as
    ``git_at_staging`` and ``git.staged.patch``).
    """
    recorded = meta.get("git")
    try:
        configs = [Path(path) for path in meta.get("config_files") or []]
        now = gitstate.snapshot(Path(meta["script"]), configs)
    except gitstate.NotARepository as exc:
        if recorded is None:
            return None  # staged outside git, still outside git: nothing to compare
        now = None
        differences = [str(exc)]
    else:
        differences = []
        if recorded is not None and now.commit != recorded.get("commit"):
            differences.append(
                f"the commit is {_short(now.commit)}, staged at {_short(recorded.get('commit'))}"
            )
        else:
            staged_patch = folder / store.GIT_PATCH
            before = staged_patch.read_bytes() if staged_patch.exists() else b""
            current = gitstate.patch(now) if now.dirty else b""
            if current != before:
                differences.append(
                    "the uncommitted changes differ from those recorded at staging"
                    if before
                    else "the working tree has uncommitted changes (it was clean at staging)"
                )
    if not differences:
        return None
    if not ignore_dirty:
        return "; ".join(differences)
    # Run anyway, and record what it really runs with.
    patch = folder / store.GIT_PATCH
    if patch.exists():
        os.replace(patch, folder / store.GIT_PATCH_AT_STAGING)
    if now is not None and now.dirty:
        store.write_bytes_atomic(patch, gitstate.patch(now))
    changes = {"git_at_staging": recorded, "git": now.to_metadata() if now is not None else None}
    meta.update(record.update(folder, changes) or {})
    return None


@dataclass
class _Running:
    proc: subprocess.Popen[bytes]
    folder: Path
    meta: dict[str, Any]
    started: float


class StagedRunner:
    """Runs claimed staged experiments N at a time and counts how each ended."""

    def __init__(self, jobs: int, ignore_dirty: bool, echo: Callable[[str], None]) -> None:
        self.jobs = jobs
        self.ignore_dirty = ignore_dirty
        self.echo = echo
        self.hostname = os.uname().nodename
        self.counts: Counter[str] = Counter()
        self.stopped_by: signal.Signals | None = None
        self.not_started = 0

    def run(self, queue: list[tuple[Path, dict[str, Any]]]) -> int:
        pending = deque(queue)
        running: list[_Running] = []
        started = time.monotonic()
        with processes.signals_blocked(), _Progress(len(queue), self.jobs > 1) as progress:
            while running or (pending and self.stopped_by is None):
                while pending and len(running) < self.jobs and self.stopped_by is None:
                    job = self._start(*pending.popleft())
                    if job is not None:
                        running.append(job)
                    progress.update(self.counts, len(running))
                info = processes.next_signal(0.5)
                if processes.is_stop_signal(info):
                    assert info is not None
                    self._stop(info, running)
                for job in [job for job in running if job.proc.poll() is not None]:
                    running.remove(job)
                    self._finished(job, progress)
                progress.update(self.counts, len(running))
        left = self.not_started + sum(1 for folder, _ in pending if self._still_staged(folder))
        self._summary(left, time.monotonic() - started)
        if self.stopped_by is not None:
            return 128 + self.stopped_by
        return 1 if self.counts["failed"] or self.counts["refused"] or self.not_started else 0

    def _start(self, folder: Path, meta: dict[str, Any]) -> _Running | None:
        if not store.claim(folder, self.hostname):
            return None  # another runner has it
        try:
            meta = record.read_metadata(folder)
            if meta.get("status") != Status.STAGED:
                store.release(folder)
                return None
            refusal = check_code(folder, meta, self.ignore_dirty)
        except BaseException:
            store.release(folder)
            raise
        if refusal is not None:
            store.release(folder)
            self.counts["refused"] += 1
            self.echo(
                f"yanex: refused {folder.name} ({meta.get('name') or Path(meta['script']).name}): "
                f"{refusal}; it stays staged (--ignore-dirty runs it anyway)"
            )
            return None
        stream = self.jobs == 1
        argv = [sys.executable, "-m", "yanex", "_execute", folder.name]
        proc = processes.spawn(
            [*argv, "--stream"] if stream else argv,
            cwd=meta["cwd"],
            stdin=None if stream else subprocess.DEVNULL,
            stdout=None if stream else subprocess.DEVNULL,
            stderr=None if stream else subprocess.DEVNULL,
        )
        return _Running(proc=proc, folder=folder, meta=meta, started=time.monotonic())

    def _stop(self, info: signal.struct_siginfo, running: list[_Running]) -> None:
        """Stop starting experiments; pass the signal on unless the workers got it already."""
        sig = signal.Signals(info.si_signo)
        if self.stopped_by is None:
            self.stopped_by = sig
            self.echo(f"yanex: {sig.name}: stopping the running experiments; the rest stay staged")
        if not processes.came_from_terminal(info):
            for job in running:
                job.proc.send_signal(sig)

    def _finished(self, job: _Running, progress: _Progress) -> None:
        try:
            meta = record.read_metadata(job.folder)
        except (OSError, record.BadRecord):
            meta = {}
        status = meta.get("status")
        if status not in Status.ENDED:
            # The worker ended before its run started (e.g. Ctrl-C during its start-up): the
            # experiment stays staged for a later runner.
            store.release(job.folder)
            self.not_started += 1
            progress.line(
                f"yanex: {job.folder.name} did not start (worker exit {job.proc.returncode}); "
                "it stays staged"
            )
            return
        self.counts[status] += 1
        name = meta.get("name") or Path(meta.get("script", "?")).name
        took = time.monotonic() - job.started
        progress.line(f"yanex: {job.folder.name} {status} in {took:.1f}s ({name})")

    def _still_staged(self, folder: Path) -> bool:
        try:
            return record.read_metadata(folder).get("status") == Status.STAGED
        except (OSError, record.BadRecord):
            return False

    def _summary(self, left: int, elapsed: float) -> None:
        parts = [f"{self.counts[k]} {k}" for k in _COUNTED]
        tail = f"; {left} still staged" if left else ""
        self.echo(f"yanex: staged run done in {elapsed:.1f}s: {', '.join(parts)}{tail}")


class _Progress:
    """One live line on a terminal (done / failed / running, elapsed) when runs go in parallel;
    elsewhere, a plain line per finished experiment."""

    def __init__(self, total: int, live: bool) -> None:
        self.total = total
        self.progress: Any = None
        if live and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self.progress = Progress(
                TextColumn("[bold]staged runs"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
            )
            self.task = self.progress.add_task("", total=total)

    def __enter__(self) -> _Progress:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def update(self, counts: Counter[str], running: int) -> None:
        if self.progress is None:
            return
        done = sum(counts[k] for k in _COUNTED)
        self.progress.update(
            self.task,
            completed=done,
            description=f"{counts['completed']} done, {counts['failed']} failed, {running} running",
        )

    def line(self, text: str) -> None:
        if self.progress is not None:
            self.progress.console.print(text, markup=False, highlight=False)
        else:
            print(text, file=sys.stderr, flush=True)


def run_staged(*, jobs: int, ignore_dirty: bool, echo: Callable[[str], None]) -> int:
    """``yanex run --staged``: run this project's staged experiments; the exit code."""
    project = current_project(Path.cwd())
    queue = staged_experiments(project, echo)
    if not queue:
        echo(f"yanex: nothing is staged for {project}")
        return 0
    workers = jobs or len(os.sched_getaffinity(0))
    echo(f"yanex: running {len(queue)} staged experiments of {project}, {workers} at a time")
    return StagedRunner(workers, ignore_dirty, echo).run(queue)
