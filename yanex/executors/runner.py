"""The staged runner: ``yanex run --staged [-j N] [--executor local|dask]``.

It takes the staged experiments of the current project (its git repository, else the current
folder), oldest first (a grid in its order), claims each before it starts (a lease: of two
runners only one gets it, and a dead runner's claims are taken over), and hands it to an
executor, at most as many at once as it has slots. Stop signals are passed on to what runs;
what has not started stays staged. At the end, a summary counts how each ended.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from yanex import claims, processes, record
from yanex.code.check import CodeCheck
from yanex.code.state import project_of
from yanex.ending import Ending, NotRun
from yanex.executors.base import Executor, Task, usable_cpus
from yanex.executors.member import gone
from yanex.record import Status
from yanex.terminal import safe_lines

# What the summary always counts: how each experiment ended, and refusals.
_COUNTED = (*Status.ENDED, NotRun.REFUSED)


def staged_experiments(
    project: Path, echo: Callable[[str], None]
) -> list[tuple[Path, dict[str, Any]]]:
    """The project's staged experiments (not archived), oldest first (a grid in its order).

    Reading the index brings it up to date, which also records as failed the runs left
    ``running`` by a launcher that died on this host; an interrupted staging is finished
    (or undone) first, so that a grid is run whole or not at all.
    """
    from yanex import query, staging, store, v06store
    from yanex.index import Index

    index = Index(echo=echo)
    try:
        index.sync()  # the long part (a cold index), before a staging may have to wait
        with staging.settled(store.yanex_home()):
            index.sync()
            filters = query.Filters(status=(Status.STAGED,), project=str(project))
            order = (query.Sort("created"), query.Sort("sweep_index"))
            found = []
            for rec in query.select(index, filters, sort=order):
                try:
                    meta = record.read_metadata(rec.dir)
                except (OSError, record.BadRecord):
                    continue  # gone or broken since it was indexed
                if v06store.MARKER in meta:  # read as it is, never run in place
                    echo(
                        f"yanex: {rec.id} was staged by yanex 0.6 and is left staged; "
                        f"`yanex migrate {rec.id}` makes it runnable here"
                    )
                    continue
                found.append((rec.dir, meta))
        return found
    finally:
        index.close()


class StagedRunner:
    """Claims staged members and runs them on an executor; the ending of every member it
    listed (``ends``), counted in the summary."""

    def __init__(self, executor: Executor, echo: Callable[[str], None]) -> None:
        self.executor = executor
        self.echo = echo
        self.counts: Counter[str] = Counter()
        self.stopped_by: signal.Signals | None = None
        self.ends: dict[str, Ending] = {}  # by experiment ID, in the order they ended

    def run(self, queue: list[tuple[Path, dict[str, Any]]]) -> int:
        """Run ``queue`` (each member after its dependencies: ``dependencies.Order``); the
        exit code: 128+N after stop signal N, else 1 when any failed, was refused, could not
        be run (gone) or waits on a dependency that did not run, or the executor gave up (a
        lost cluster), else 0."""
        from yanex.dependencies import Held, Order

        executor = self.executor
        home = queue[0][0].parent.parent if queue else None
        order = Order(queue, chained=executor.chains, home=home)
        claimed: dict[str, Task] = {}
        started = time.monotonic()
        renew_every = claims.renewal_seconds()
        next_renewal = time.monotonic() + renew_every
        with (
            processes.Signals() as signals,
            _Progress(len(queue), executor.slots > 1, self.echo) as progress,
        ):
            executor.wake = signals.wake
            while executor.busy() or (order.pending() and self._may_start()):
                while self._may_start() and executor.busy() < executor.slots:
                    ready = order.next()
                    if ready is None:
                        break
                    if isinstance(ready, Held):
                        order.ended(ready.folder.name)
                        self._ended(_waiting(ready.folder, ready.meta, ready.reason), progress)
                        continue
                    found = self._claim(ready.folder, ready.meta)
                    if isinstance(found, Task):
                        found.after = ready.after
                        claimed[found.id] = found
                        executor.submit(found)
                        order.started(found.id)
                    else:
                        order.ended(ready.folder.name, elsewhere=found.why == NotRun.ELSEWHERE)
                        self._ended(found, progress)
                progress.update(self.counts, executor.running())
                signum = signals.next(0.5)
                if processes.is_stop(signum):
                    assert signum is not None
                    for task in self._stop(signal.Signals(signum)):
                        claims.release(task.folder, task.claim)
                        claimed.pop(task.id, None)
                        self._ended(_not_started(task.folder, task.name), progress)
                elif signum is not None:
                    executor.signal(signum)  # a child ended (look), Ctrl-Z or fg
                    processes.suspend_self(signum)
                for task, end in executor.wait(0):
                    claimed.pop(task.id, None)
                    order.ended(task.id, elsewhere=end.why == NotRun.ELSEWHERE)
                    self._ended(end, progress, task)
                if time.monotonic() >= next_renewal:  # members waiting on a cluster keep theirs
                    for task in claimed.values():
                        task.claim = claims.renew(task.folder, task.claim) or task.claim
                    next_renewal = time.monotonic() + renew_every
                progress.update(self.counts, executor.running())
        executor.close()
        if executor.given_up is not None:
            self.echo(f"yanex: {executor.given_up}; what had not started stays staged")
        for folder, meta in order.left():  # never started: a stop (or a lost cluster) came first
            self._ended(_not_started(folder, _name(meta)), None)
        self._summary(time.monotonic() - started)
        if self.stopped_by is not None:
            return 128 + self.stopped_by
        failed = (Status.FAILED, NotRun.REFUSED, NotRun.GONE, NotRun.WAITING)
        return 1 if executor.given_up or any(self.counts[k] for k in failed) else 0

    def _may_start(self) -> bool:
        return self.stopped_by is None and self.executor.given_up is None

    def _claim(self, folder: Path, meta: dict[str, Any]) -> Task | Ending:
        """Take a member for this runner; else why it is not this runner's to run (another
        runner has it, or ran it) or cannot be run (gone)."""
        experiment_id, name = folder.name, _name(meta)
        try:
            claim = claims.take(folder)
        except claims.BadClaim as exc:
            return gone(experiment_id, folder, name, str(exc))
        except OSError as exc:  # its folder is gone (deleted meanwhile)
            return gone(experiment_id, folder, name, _claim_problem(exc))
        if claim is None:
            held = None
            with contextlib.suppress(claims.BadClaim):
                held = claims.read(folder)
            why = claims.describe(held) if held is not None else "another runner holds it"
            return Ending(
                experiment_id, Status.STAGED, dir=folder, name=name, error=why,
                why=NotRun.ELSEWHERE,
            )  # fmt: skip
        try:
            meta = record.read_metadata(folder)
        except (OSError, record.BadRecord) as exc:
            claims.release(folder, claim)
            return gone(experiment_id, folder, name, f"it cannot be read: {exc}")
        if meta["status"] != Status.STAGED:
            claims.release(folder, claim)
            return Ending(
                experiment_id, meta["status"], dir=folder, name=name,
                error=f"it is {meta['status']} already", why=NotRun.ELSEWHERE,
            )  # fmt: skip
        return Task(folder, _name(meta), claim)

    def _stop(self, sig: signal.Signals) -> list[Task]:
        """Stop starting members, and pass the signal on to those running."""
        if self.stopped_by is None:
            self.stopped_by = sig
            self.echo(f"yanex: {sig.name}: stopping the running experiments; the rest stay staged")
        return self.executor.cancel(sig)

    def _ended(self, end: Ending, progress: _Progress | None, task: Task | None = None) -> None:
        """Count one member's ending, and say it (what did not run, unless a stop kept it)."""
        assert end.id is not None
        name = end.name or (task.name if task is not None else end.id)
        self.ends[end.id] = end
        self.counts[end.why or end.status or NotRun.GONE] += 1
        if progress is None or end.why == NotRun.STOPPED:
            return
        if end.why == NotRun.REFUSED:
            progress.line(
                f"yanex: refused {end.id} ({name}): {end.error}; it stays staged "
                "(--ignore-dirty runs it anyway)"
            )
        elif end.why == NotRun.GONE:
            progress.line(f"yanex: {end.id} could not be run ({name}): {end.error}")
        elif end.why == NotRun.WAITING:
            progress.line(f"yanex: {end.id} was not run ({name}): {end.error}; it stays staged")
        elif end.why is not None:
            progress.line(f"yanex: {end.id} was not run here ({name}): {end.error}")
        else:
            took = f" in {end.duration:.1f}s" if end.duration is not None else ""
            reason = f": {end.reason}" if end.reason and end.status != Status.COMPLETED else ""
            progress.line(f"yanex: {end.id} {end.status}{took} ({name}){reason}")

    def _summary(self, elapsed: float) -> None:
        parts = [f"{self.counts[k]} {k}" for k in _COUNTED]
        if self.counts[NotRun.GONE]:
            parts.append(f"{self.counts[NotRun.GONE]} gone (deleted or unreadable)")
        held = sum(
            1 for end in self.ends.values()
            if end.why == NotRun.ELSEWHERE and end.status == Status.STAGED
        )  # fmt: skip
        if self.counts[NotRun.ELSEWHERE] - held:
            parts.append(f"{self.counts[NotRun.ELSEWHERE] - held} run by another runner")
        if held:
            parts.append(f"{held} held by another runner (still staged)")
        if self.counts[NotRun.WAITING]:
            parts.append(f"{self.counts[NotRun.WAITING]} waiting on a dependency")
        left = self.counts[NotRun.STOPPED]
        tail = f"; {left} still staged" if left else ""
        self.echo(f"yanex: staged run done in {elapsed:.1f}s: {', '.join(parts)}{tail}")


def _name(meta: dict[str, Any]) -> str:
    return meta.get("name") or Path(meta["script"]).name


def _claim_problem(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return "its folder is gone"
    return f"it cannot be claimed: {exc.strerror or exc}"


def _not_started(folder: Path, name: str) -> Ending:
    """A member this runner did not start (a stop signal came first): as it is recorded now."""
    try:
        status = record.read_metadata(folder)["status"]
    except (OSError, record.BadRecord) as exc:
        return gone(folder.name, folder, name, f"it cannot be read: {exc}")
    if status != Status.STAGED:  # another runner took it meanwhile
        why = NotRun.ELSEWHERE
        return Ending(folder.name, status, dir=folder, name=name, error="run elsewhere", why=why)
    return Ending(folder.name, Status.STAGED, dir=folder, name=name, why=NotRun.STOPPED)


def _waiting(folder: Path, meta: dict[str, Any], reason: str) -> Ending:
    """A member held back: a dependency of it did not run; it stays staged."""
    return Ending(folder.name, Status.STAGED, dir=folder, name=_name(meta), error=reason,
                  why=NotRun.WAITING)  # fmt: skip


class _Progress:
    """One live line on a terminal (done / failed / running, elapsed) when runs go in parallel;
    elsewhere, a plain line per finished experiment."""

    def __init__(self, total: int, live: bool, echo: Callable[[str], None]) -> None:
        self.total = total
        self.echo = echo  # where a plain line goes (no terminal: the runner's own messages)
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
        text = safe_lines(text)  # it names experiments: user text
        if self.progress is not None:
            self.progress.console.print(text, markup=False, highlight=False)
        else:
            self.echo(text)


def make_executor(
    name: str,
    *,
    jobs: int,
    ignore_dirty: bool,
    echo: Callable[[str], None],
    scheduler: str | None = None,
    resources: dict[str, float] | None = None,
    retries: int = 0,
    cluster: str | None = None,
    cluster_options: dict[str, str] | None = None,
    stdout: IO[bytes] | None = None,
    stderr: IO[bytes] | None = None,
) -> Executor:
    """The executor ``name`` (``local`` or ``dask``), set up for one batch (``stdout`` and
    ``stderr``: where a local batch streams the scripts' output, if anywhere; ``cluster``:
    a cluster of batch jobs dask-jobqueue builds, slurm, pbs, ...)."""
    check = CodeCheck(ignore_dirty)
    if name == "dask":
        from yanex.executors.dask import DaskExecutor

        return DaskExecutor(
            check, scheduler=scheduler, jobs=jobs, resources=resources or {}, retries=retries,
            cluster=cluster, cluster_options=cluster_options, echo=echo,
        )  # fmt: skip
    from yanex.executors.local import LocalExecutor

    return LocalExecutor(jobs or usable_cpus(), check, echo, stdout, stderr)


def run_queue(
    queue: list[tuple[Path, dict[str, Any]]],
    *,
    jobs: int,
    ignore_dirty: bool,
    echo: Callable[[str], None],
    executor: str = "local",
    **options: Any,
) -> tuple[int, StagedRunner]:
    """Run exactly these staged members (``yanex run -m``, ``yanex.launch(jobs=...)``)."""
    if options.get("cluster"):  # batch jobs: submitted for the members there are, no more
        jobs = min(jobs, len(queue))
    runner = StagedRunner(
        make_executor(executor, jobs=jobs, ignore_dirty=ignore_dirty, echo=echo, **options), echo
    )
    return runner.run(queue), runner


def run_staged(
    *, jobs: int, ignore_dirty: bool, echo: Callable[[str], None], executor: str = "local",
    **options: Any,
) -> int:  # fmt: skip
    """``yanex run --staged``: run this project's staged experiments; the exit code. One at a
    time, the scripts' output streams to the terminal as in a direct run."""
    project = project_of(Path.cwd())
    if executor == "local" and jobs == 1:
        options.update(stdout=sys.stdout.buffer, stderr=sys.stderr.buffer)
    # A cluster of batch jobs is built for what is staged (no jobs for nothing); any other
    # executor first, so that a scheduler that cannot be reached is said at once.
    batch = bool(options.get("cluster"))

    def made_for(count: int) -> Executor:
        slots = min(jobs, count) if batch else jobs
        return make_executor(executor, jobs=slots, ignore_dirty=ignore_dirty, echo=echo, **options)

    made = None if batch else made_for(0)
    try:
        queue = staged_experiments(project, echo)
    except BaseException:
        if made is not None:
            made.close()
        raise
    if not queue:
        if made is not None:
            made.close()
        echo(f"yanex: nothing is staged for {project}")
        return 0
    if made is None:
        made = made_for(len(queue))
    echo(
        f"yanex: running {len(queue)} staged experiments of {project}, "
        f"{made.at_a_time()} ({made.name})"
    )
    try:
        return StagedRunner(made, echo).run(queue)
    except BaseException:
        made.close()  # (a cluster it built: its jobs cancelled, whatever happened)
        raise
