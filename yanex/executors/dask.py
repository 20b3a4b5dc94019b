"""The Dask executor: staged members run on a Dask cluster (``pip install "yanex[dask]"``).

Each member is one Dask task that runs ``member.run_member`` on a worker, against the store
that the client and the workers share (a shared filesystem, as on clusters): the store's path
and the member's claim travel with the task. ``dask-jobqueue`` gives the same scheduler on
Slurm, PBS, SGE or LSF. Tasks are submitted impure (never merged) and carry the resources the
user asked for (``gpu=1``: only workers that advertise GPUs take it, and each member gets its
own share of its worker's devices: the worker's ``CUDA_VISIBLE_DEVICES`` split among its GPU
slots). A member records the worker that ran it (``dask``: its address and name).

What can be lost, and how each member's ending stays true:

- A worker that dies mid-run: Dask runs the task again elsewhere, and the task finds its
  member still ``running`` under its own claim. It is then run again if ``--retries`` allows
  (the lost attempt's output is kept apart in ``attempts/N/`` and listed in
  ``earlier_attempts``), else recorded ``failed`` with the reason.
- Every worker gone (none for :func:`lost_after` seconds, after there were some): the members
  that ran are recorded ``failed``; those that had not started stay staged.
- The scheduler lost: the client sees it at once and ends; a worker that cannot reach it for
  :func:`lost_after` seconds stops the member it runs (recorded ``failed``: cut off), and the
  client waits for that (bounded), then records what no worker did. Members that had not
  started stay staged.

Ctrl-C on the client sets an event the tasks watch: running members get the signal, members not
started are given back (they stay staged).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from yanex import claims, ending, record, store
from yanex.code.check import CodeCheck
from yanex.ending import Ending, NotRun
from yanex.errors import DaskError
from yanex.executors.base import Executor, Task, usable_cpus
from yanex.executors.member import record_failed, run_member
from yanex.record import Status

# Seconds to reach a scheduler (and hear it answer as one) before saying it cannot be reached.
CONNECT_TIMEOUT = 3.5
# Seconds a batch system's submit command (sbatch, qsub, ...) may take to answer.
SUBMIT_TIMEOUT = 120.0
LOST_AFTER_ENV = "YANEX_DASK_LOST_AFTER"
DEFAULT_LOST_AFTER = 30.0  # seconds without a scheduler, or without any worker
_POLL = 0.02  # how often a task looks at its script
_LINK_POLL = 0.5  # how often a task asks the scheduler whether the client wants it stopped
_ATTEMPT_FILES = (
    store.STDOUT,
    store.STDERR,
    store.RESULTS,
    store.RESULTS_SUMMARY,
    store.WARNINGS,
    store.ARTIFACTS,
)


def lost_after() -> float:
    """How long a scheduler (or every worker) may be gone before its members are given up."""
    return store.env_number(LOST_AFTER_ENV, DEFAULT_LOST_AFTER, 1.0)


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise DaskError(
            "--executor dask needs dask.distributed, which is not installed",
            hint='Install the extra: pip install "yanex[dask]"',
        ) from None
    return distributed


def _connect(distributed: Any, scheduler: str) -> Any:
    """A client of the scheduler at ``scheduler``, within CONNECT_TIMEOUT whatever answers
    there (a server of another protocol, one that never answers, an address that is none)."""
    found: dict[str, Any] = {}

    def connect() -> None:
        try:
            found["client"] = distributed.Client(
                scheduler, timeout=CONNECT_TIMEOUT, set_as_default=False
            )
        except BaseException as exc:  # MemoryError: a length read from another protocol
            found["error"] = exc

    thread = threading.Thread(target=connect, name="yanex-dask-connect", daemon=True)
    thread.start()
    thread.join(CONNECT_TIMEOUT + 0.5)
    if "client" in found:
        return found["client"]
    error = found.get("error")
    if error is None:
        why = f"nothing answered as a Dask scheduler within {CONNECT_TIMEOUT:g} s"
    elif isinstance(error, (ValueError, TypeError)):
        why = f"it is not a scheduler address ({error})"
    elif isinstance(error, (OSError, TimeoutError)):
        why = str(error) or type(error).__name__
    else:  # what answered speaks another protocol
        why = f"what answers there is not a Dask scheduler ({type(error).__name__})"
    raise DaskError(
        f"cannot reach the Dask scheduler at {scheduler}: {why}",
        hint="Start one (`dask scheduler`, then `dask worker ADDRESS`) or check the address "
        "(tcp://HOST:PORT); nothing was run, everything stays staged.",
    )


class DaskExecutor(Executor):
    """Members as tasks of a Dask cluster: the scheduler at ``scheduler``; or a cluster of
    batch jobs built for this batch by dask-jobqueue (``cluster``: slurm, pbs, ...; see
    :class:`BatchJobs`); or a local cluster of processes started for this batch (``jobs``
    workers, one member each at a time)."""

    name = "dask"
    chains = True  # a member's task waits on its dependencies' tasks (their futures)

    def __init__(
        self,
        code: CodeCheck,
        *,
        scheduler: str | None,
        jobs: int,
        resources: dict[str, float],
        retries: int,
        cluster: str | None = None,
        cluster_options: dict[str, str] | None = None,
        echo: Callable[[str], None] = lambda message: None,
    ) -> None:
        super().__init__()
        distributed = _distributed()
        self.code = code
        self.resources = resources
        self.retries = retries
        self.cluster: Any = None
        self.batch: BatchJobs | None = None
        # distributed logs every broken connection with its traceback: the summary says it.
        self._quieted = _quiet_distributed()
        try:
            if scheduler:
                self.client = _connect(distributed, scheduler)
                self.address = scheduler
            elif cluster:
                self.batch = BatchJobs(cluster, cluster_options or {}, jobs, echo)
                self.cluster = self.batch.cluster
                self.client = distributed.Client(self.cluster, set_as_default=False)
                self.address = self.batch.describe()
            else:
                self.cluster = distributed.LocalCluster(
                    n_workers=jobs or usable_cpus(),
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                )
                self.client = distributed.Client(self.cluster, set_as_default=False)
                self.address = "a local cluster"
        except BaseException:
            if self.batch is not None:
                self.batch.close()
            _loud_again(self._quieted)
            raise
        self.slots = jobs if jobs > 0 else 1_000_000  # 0: submit all, the scheduler queues
        self.token = os.urandom(6).hex()
        self.cancel_name = f"yanex-cancel-{self.token}"
        self.cancel_event = distributed.Event(self.cancel_name, client=self.client)
        self.lock = threading.Lock()
        self.futures: dict[Any, Task] = {}
        self.by_id: dict[str, Any] = {}  # each running member's future, for those that follow
        self.erred: set[str] = set()  # members whose task failed (Dask fails those after them)
        self.started: set[str] = set()  # members whose task a worker has begun
        self.lost_after = lost_after()
        self.had_workers = False
        self.no_workers_since: float | None = None
        self.lost: tuple[str, float] | None = None  # why the cluster was given up, and when
        self.client.subscribe_topic(self._topic, self._event)

    @property
    def _topic(self) -> str:
        return f"yanex-{self.token}"

    def _event(self, event: Any) -> None:
        """A worker began a member's task (the client's event thread)."""
        _, message = event
        if isinstance(message, dict) and message.get("started"):
            with self.lock:
                self.started.add(message["started"])
        self.wake()

    def at_a_time(self) -> str:
        if self.slots < 1_000_000:
            return f"at most {self.slots} at a time on {self.address}"
        return f"as many at a time as the workers of {self.address} take"

    def submit(self, task: Task) -> None:
        # Its dependencies' tasks: Dask starts this one once they ended (their results).
        upstream = [self.by_id[up] for up in task.after if up in self.by_id]
        future = self.client.submit(
            run_task,
            str(task.home),
            task.id,
            task.claim.token,
            self.code.ignore_dirty,
            self.retries,
            self.cancel_name,
            self.resources,
            self._topic,
            self.lost_after,
            upstream,
            pure=False,
            key=f"yanex-{task.id}-{os.urandom(4).hex()}",
            resources=self.resources or None,
        )
        with self.lock:
            self.futures[future] = task
            self.by_id[task.id] = future
        future.add_done_callback(lambda _: self.wake())

    def wait(self, timeout: float) -> list[tuple[Task, Ending]]:
        if self.lost is None:
            self._look_at_the_cluster()
        if self.lost is not None:
            self.given_up = self.lost[0]
            return self._give_up()
        ended = []
        with self.lock:
            done = [(f, t) for f, t in self.futures.items() if f.done()]
            for future, task in done:
                del self.futures[future]
                self.started.discard(task.id)
                # A finished member's record says how it ended: a task handed over later
                # needs no future of it.
                if self.by_id.get(task.id) is future:
                    del self.by_id[task.id]
                if future.status == "error":
                    self.erred.add(task.id)
        for future, task in done:
            try:
                end = future.result()
            except Exception as exc:  # the task could not be run: its worker died for good
                why = f"{type(exc).__name__}: {exc}"
                failed = [up for up in task.after if up in self.erred or self._erred(up)]
                if failed:  # its dependency's task failed, so Dask did not start this one
                    claims.release(task.folder, task.claim)
                    end = Ending(
                        task.id, Status.STAGED, dir=task.folder, name=task.name,
                        error=f"its dependency {failed[0]} did not end: its Dask task failed "
                        f"({why})", why=NotRun.WAITING,
                    )  # fmt: skip
                else:
                    end = _lost(task, f"its Dask task failed: {why}")
            ended.append((task, end))
        return ended

    def _erred(self, experiment_id: str) -> bool:
        future = self.by_id.get(experiment_id)
        return future is not None and future.status == "error"

    def _look_at_the_cluster(self) -> None:
        """Is the scheduler still there, and has it any worker? Sets ``lost`` when not. A
        cluster of batch jobs has its lost jobs replaced instead, while members remain."""
        now = time.monotonic()
        if self.client.status != "running":
            self.lost = (f"its Dask scheduler at {self.address} was lost", now)
            return
        try:
            info = self.client.scheduler_info(n_workers=-1).get("workers") or {}
        except Exception:  # (being reconnected: the status says so next time)
            return
        workers = len(info)
        if self.batch is not None:
            if self.futures:
                try:
                    self.batch.replace_lost({w.get("name") for w in info.values()})
                except DaskError as exc:
                    self.lost = (exc.message, now)
                    with contextlib.suppress(Exception):
                        self.client.cancel(list(self.futures))
            return
        if workers:
            self.had_workers, self.no_workers_since = True, None
        elif self.had_workers and self.futures:
            if self.no_workers_since is None:
                self.no_workers_since = now
            elif now - self.no_workers_since > self.lost_after:
                gone = f"{now - self.no_workers_since:.0f} s"
                self.lost = (f"every Dask worker of {self.address} died (none for {gone})", now)
                with contextlib.suppress(Exception):
                    self.client.cancel(list(self.futures))

    def _give_up(self) -> list[tuple[Task, Ending]]:
        """The cluster is lost: each member as its record tells, once no worker can still
        end it (a worker cut off from its scheduler stops its member within lost_after)."""
        assert self.lost is not None
        reason, since = self.lost
        scheduler_lost = "scheduler" in reason
        waited = time.monotonic() - since
        ended = []
        with self.lock:
            tasks = list(self.futures.items())
        for future, task in tasks:
            try:
                meta = record.read_metadata(task.folder)
            except (OSError, record.BadRecord) as exc:
                end = Ending(task.id, None, dir=task.folder, name=task.name, why=NotRun.GONE,
                             error=f"it cannot be read: {exc}")  # fmt: skip
            else:
                if meta["status"] in Status.ENDED:  # as its worker (or a reaper) recorded it
                    claims.release(task.folder, task.claim)
                    end = ending.recorded(task.folder, meta)
                elif meta["status"] == Status.RUNNING and scheduler_lost:
                    if waited < self.lost_after + 10:  # its worker stops it meanwhile
                        continue
                    end = _lost(task, f"cut off: {reason} while it ran")
                elif meta["status"] == Status.RUNNING:
                    end = _lost(task, f"{reason} while it ran")
                else:
                    end = _lost(task, f"never started: {reason}")
            with self.lock:
                self.futures.pop(future, None)
            ended.append((task, end))
        return ended

    def cancel(self, signum: int) -> list[Task]:
        with contextlib.suppress(Exception):  # a lost scheduler has no event to set
            self.cancel_event.set()  # running members get SIGINT; the others are given back
        return []

    def signal(self, signum: int) -> None:
        pass  # nothing of the members runs in this process

    def busy(self) -> int:
        with self.lock:
            return len(self.futures)

    def running(self) -> int:
        with self.lock:
            return len(self.started & {task.id for task in self.futures.values()})

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close(timeout=CONNECT_TIMEOUT)
        if self.batch is not None:
            self.batch.close()  # its jobs cancelled
        elif self.cluster is not None:
            with contextlib.suppress(Exception):
                self.cluster.close()
        _loud_again(self._quieted)


# dask-jobqueue's clusters, by the name of their section of its configuration.
JOBQUEUE_CLUSTERS = {
    "slurm": "SLURMCluster",
    "pbs": "PBSCluster",
    "sge": "SGECluster",
    "lsf": "LSFCluster",
    "htcondor": "HTCondorCluster",
    "moab": "MoabCluster",
    "oar": "OARCluster",
}


# A Slurm job whose worker has not joined is asked after with one squeue for all of them,
# STATUS_EVERY seconds after its submission and every STATUS_EVERY seconds since
# (YANEX_BATCH_POLL): one that ended (its job script failed at once, its node failed at boot,
# it was cancelled while queued, requeued and held) is replaced as a preempted one is;
# UNJOINED_LIMIT in a row (no worker joining between them) are not replaced again.
STATUS_EVERY = 30.0
STATUS_EVERY_ENV = "YANEX_BATCH_POLL"
UNJOINED_LIMIT = 3
SLURM_ENDED = frozenset((
    "BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL", "OUT_OF_MEMORY",
    "PREEMPTED", "REQUEUE_HOLD", "SPECIAL_EXIT", "TIMEOUT",
))  # fmt: skip


def slurm_ended(job_ids: list[str]) -> dict[str, str]:
    """The Slurm jobs of ``job_ids`` that ended, with their final state (``FAILED``; ``gone``:
    no longer known; ``REQUEUE_HOLD``: requeued and held, which runs no more by itself); the
    others are queued or run, or squeue gave no clear answer."""
    try:
        done = subprocess.run(
            ["squeue", "-h", "-a", "-o", "%i %T %r", "-j", ",".join(job_ids)],
            capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return {}
    if done.returncode != 0:
        if "invalid job id" not in done.stderr.lower():
            return {}
        if len(job_ids) == 1:
            return {job_ids[0]: "gone"}
        ended: dict[str, str] = {}  # one of them Slurm forgot: each on its own
        for job_id in job_ids:
            ended.update(slurm_ended([job_id]))
        return ended
    states: dict[str, tuple[str, str]] = {}
    for line in done.stdout.splitlines():
        words = line.split(None, 2)
        if len(words) >= 2:
            states[words[0]] = (words[1], words[2] if len(words) > 2 else "")
    ended = {}
    for job_id in job_ids:
        state, reason = states.get(job_id, ("gone", ""))
        if state == "PENDING" and "requeued held" in reason.lower():
            state = "REQUEUE_HOLD"
        if state == "gone" or state in SLURM_ENDED:
            ended[job_id] = state
    return ended


class BatchJobs:
    """A Dask cluster of batch jobs (Slurm, PBS, SGE, LSF, ...), built by dask-jobqueue for
    one batch of members, and closed (its jobs cancelled) when the batch ends.

    Everything about the jobs comes from Dask's own configuration
    (``~/.config/dask/jobqueue.yaml``, ``DASK_JOBQUEUE__SLURM__...``), ``options`` (from
    ``--cluster-option KEY=VALUE``, values read as Dask reads its environment variables)
    taking precedence. It is scaled to run ``slots`` members at once: one member per worker
    thread, so ``ceil(slots / threads per job)`` jobs. A job whose workers all left (its job
    preempted, killed, out of walltime) is replaced by a new one once Dask's own grace for a
    lost worker (``distributed.deploy.lost-worker-timeout``) has passed, while members remain.
    A Slurm job that ends before its worker joins is replaced too (see ``STATUS_EVERY``);
    ``UNJOINED_LIMIT`` such jobs in a row end the batch: its job script cannot start a worker.
    """

    def __init__(
        self, kind: str, options: dict[str, str], slots: int, echo: Callable[[str], None]
    ) -> None:
        try:
            import dask
            import dask_jobqueue
        except ImportError:
            raise DaskError(
                f"--cluster {kind} needs dask-jobqueue, which is not installed",
                hint='Install the extra: pip install "yanex[dask]"',
            ) from None
        from dask.config import interpret_value
        from dask.utils import parse_timedelta

        if kind not in JOBQUEUE_CLUSTERS:
            raise DaskError(
                f"--cluster {kind}: dask-jobqueue has no such cluster",
                hint=f"Use one of {', '.join(JOBQUEUE_CLUSTERS)}.",
            )
        self.kind = kind
        self.echo = echo
        known = dask.config.get(f"jobqueue.{kind}", {}) or {}
        kwargs: dict[str, Any] = {}
        for key, text in options.items():
            spelled = key.replace("_", "-")
            if spelled not in known:
                raise DaskError(
                    f"--cluster-option {key}: dask-jobqueue's {kind} cluster has no such option",
                    hint=_close_options(spelled, sorted(known)),
                )
            kwargs[spelled.replace("-", "_")] = interpret_value(text)
        try:
            self.cluster = getattr(dask_jobqueue, JOBQUEUE_CLUSTERS[kind])(**kwargs)
        except (ValueError, TypeError, KeyError) as exc:
            raise DaskError(
                f"cannot build the {kind} cluster: {_one_line(exc)}",
                hint=f"Set its options in ~/.config/dask/jobqueue.yaml (jobqueue: {kind}: ...), "
                "or give them with --cluster-option KEY=VALUE; nothing was run.",
            ) from None
        self.grace = parse_timedelta(dask.config.get("distributed.deploy.lost-worker-timeout"))
        self.seen: set[str] = set()  # jobs whose workers have joined
        self.missing: dict[str, float] = {}  # jobs whose workers all left: since when
        self.asked: dict[str, float] = {}  # jobs never joined: submitted, or last asked after
        self.unjoined = 0  # jobs in a row that ended before their workers joined
        self.ended = slurm_ended if kind == "slurm" else None
        self.poll = store.env_number(STATUS_EVERY_ENV, STATUS_EVERY, 1.0)
        try:
            job = self.cluster._dummy_job  # the jobs' shape (what cluster.job_script() shows)
            self.threads = max(1, job.worker_processes * job.worker_process_threads)
            self.jobs = max(1, math.ceil(slots / self.threads))
            self.cluster.scale(jobs=self.jobs)
            self._submitted()
        except BaseException:
            self.close()
            raise

    def describe(self) -> str:
        return (
            f"a {self.kind} cluster of {self.jobs} job{'s' if self.jobs > 1 else ''} "
            f"({self.threads} at a time each; scheduler {self.cluster.scheduler_address})"
        )

    def _submitted(self) -> None:
        """Wait until the jobs the cluster wants are submitted (not started: a batch queue
        may hold them); a submission the batch system refused is a DaskError."""
        import asyncio

        cluster = self.cluster

        async def settled() -> None:
            # cluster.scale() submits in the background: wait until every job it wants
            # exists, then ask each that failed once more, in the open (its error raised).
            deadline = time.monotonic() + SUBMIT_TIMEOUT
            while set(cluster.worker_spec) - set(cluster.workers):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no answer within {SUBMIT_TIMEOUT:g} s")
                await asyncio.sleep(0.05)
            for job in list(cluster.workers.values()):
                if job.status.name == "created":  # its submission failed
                    await job

        _drop_failed_submissions(cluster.loop.asyncio_loop)
        try:
            cluster.sync(settled)
        except Exception as exc:  # sbatch (or qsub ...) failed: what it said
            raise DaskError(
                f"the {self.kind} job could not be submitted: {_submission_problem(exc)}",
                hint="Check the batch system's options (queue, account, walltime) in "
                "~/.config/dask/jobqueue.yaml or --cluster-option; what had not started "
                "stays staged.",
            ) from None

    def _names(self, job: str) -> set[str]:
        spec = self.cluster.worker_spec.get(job) or {}
        return {f"{job}{suffix}" for suffix in spec.get("group", ())} or {job}

    def replace_lost(self, workers: set[str]) -> None:
        """Replace the jobs whose workers all left the scheduler (``workers``: the names of
        those it has) for longer than the grace, and the jobs that ended before theirs
        joined. ``UNJOINED_LIMIT`` of those in a row (no worker joining between them) are not
        replaced: the batch goes on with the jobs left, or, with none left, ends (DaskError)."""
        now = time.monotonic()
        left: list[str] = []
        waiting: list[str] = []  # jobs whose workers have not joined yet
        for job in list(self.cluster.worker_spec):
            if self._names(job) & workers:
                if job not in self.seen:
                    self.unjoined = 0  # a job's worker joined: the job script works
                self.seen.add(job)
                self.missing.pop(job, None)
                self.asked.pop(job, None)
            elif job in self.seen:
                if now - self.missing.setdefault(job, now) > self.grace:
                    left.append(job)
            else:
                waiting.append(job)
        unjoined = self._ended_unjoined(waiting, now)  # job: its state, as Slurm says
        self.unjoined += len(unjoined)
        if self.unjoined >= UNJOINED_LIMIT and unjoined:
            others = [job for job in self.cluster.worker_spec if job not in unjoined]
            advice = (
                f"{self.unjoined} {self.kind} jobs in a row ended before their Dask worker "
                f"joined (the last: {', '.join(unjoined.values())}): their job script cannot "
                "start a worker; see a job's output (--cluster-option log_directory=DIR keeps "
                "it) and its script (dask-jobqueue's cluster.job_script())"
            )
            if not others:
                raise DaskError(advice)
            with contextlib.suppress(Exception):
                self.cluster.sync(self.cluster.scale_down, list(unjoined))
            for job in unjoined:
                self.asked.pop(job, None)
            self.jobs = len(others)
            self.cluster.scale(jobs=self.jobs)
            self.echo(f"yanex: {advice}; going on with the {_jobs(self.kind, others)} left")
            unjoined = {}
        lost = left + list(unjoined)
        if not lost:
            return
        with contextlib.suppress(Exception):  # (a job already gone cannot be cancelled)
            self.cluster.sync(self.cluster.scale_down, lost)  # specs dropped, jobs cancelled
        for job in lost:
            self.seen.discard(job)
            self.missing.pop(job, None)
            self.asked[job] = now  # its replacement (of the same name): asked after later
        why = []
        if left:
            why.append(f"{_jobs(self.kind, left)} lost its workers (preempted, killed or out of "
                       "time)")  # fmt: skip
        if unjoined:
            why.append(f"{_jobs(self.kind, list(unjoined.values()))} ended before its worker "
                       "joined")  # fmt: skip
        what = "; ".join(why)
        self.cluster.scale(jobs=self.jobs)
        try:
            self._submitted()
        except DaskError as exc:  # go on with the jobs left, if any
            self.jobs -= len(lost)
            self.cluster.scale(jobs=self.jobs)
            if self.jobs <= 0:
                raise
            self.echo(f"yanex: {what}, and not replaced: {exc.message}")
            return
        self.echo(f"yanex: {what}; submitted {'new ones' if len(lost) > 1 else 'a new one'}")

    def _ended_unjoined(self, jobs: list[str], now: float) -> dict[str, str]:
        """Of ``jobs`` (whose workers never joined), those the batch system says ended, with
        their state: each asked after ``poll`` seconds after its submission and every
        ``poll`` seconds since, all in one call."""
        if self.ended is None:
            return {}
        due: dict[str, str] = {}  # job id: job
        for job in jobs:
            if now - self.asked.setdefault(job, now) < self.poll:
                continue
            job_id = getattr(self.cluster.workers.get(job), "job_id", None)
            if job_id:  # (none yet: not submitted)
                due[str(job_id)] = job
                self.asked[job] = now
        if not due:
            return {}
        ended = self.ended(list(due))
        return {
            due[job_id]: f"{due[job_id]}: job {job_id} {state}" for job_id, state in ended.items()
        }

    def close(self) -> None:
        """Cancel every job of the cluster and stop its scheduler."""
        with contextlib.suppress(Exception):
            self.cluster.close()


def _jobs(kind: str, names: list[str]) -> str:
    """``1 slurm job (SLURMCluster-0)``, ``2 slurm jobs (...)``."""
    return f"{len(names)} {kind} job{'s' if len(names) > 1 else ''} ({', '.join(names)})"


def _drop_failed_submissions(loop: Any) -> None:
    """A submission that failed is reported once, as yanex's error: the copies of its error
    that dask's own tasks never retrieved are dropped instead of printed with a traceback
    when they are collected (every other error of the loop goes on as before)."""
    previous = loop.get_exception_handler()
    if getattr(previous, "yanex", False):
        return

    def handler(loop: Any, context: dict[str, Any]) -> None:
        error = context.get("exception")
        if isinstance(error, RuntimeError) and "Command exited with non-zero" in str(error):
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    handler.yanex = True  # type: ignore[attr-defined]
    loop.set_exception_handler(handler)


def _close_options(key: str, known: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(key, known, n=3)
    if close:
        return f"Did you mean {', '.join(close)}? Its options: {', '.join(known)}."
    return f"Its options: {', '.join(known)}."


def _submission_problem(exc: BaseException) -> str:
    """What the batch system's submit command said, from dask-jobqueue's error ("Command
    exited with non-zero exit code. Exit code: N Command: ... stdout: ... stderr: ...")."""
    text = str(exc)
    found = re.search(r"Exit code: (\d+)\s+Command:\s+(\S+).*?stdout:(.*?)stderr:(.*)", text, re.S)
    if found is None:
        return _one_line(exc)
    code, command, out, err = found.groups()
    said = " ".join((err.strip() or out.strip() or "nothing").split())
    return f"{Path(command).name} exited with code {code}: {said[:400]}"


def _one_line(exc: BaseException) -> str:
    """An exception's message on one line (a batch command's output can be long)."""
    text = " ".join(str(exc).split())
    return text if len(text) <= 400 else f"{text[:400]}..."


def _quiet_distributed() -> list[tuple[logging.Logger, int]]:
    """Silence distributed's and tornado's loggers while a batch runs (restored after)."""
    names = {"distributed", "distributed.client", "tornado", "tornado.application"}
    names.update(
        name
        for name in logging.root.manager.loggerDict
        if name.startswith(("distributed.", "tornado."))
    )
    saved = []
    for name in sorted(names):
        logger = logging.getLogger(name)
        saved.append((logger, logger.level))
        logger.setLevel(logging.CRITICAL + 1)
    return saved


def _loud_again(saved: list[tuple[logging.Logger, int]]) -> None:
    for logger, level in saved:
        logger.setLevel(level)


def _lost(task: Task, reason: str) -> Ending:
    """A member whose task ended without telling how: recorded failed if it was running; as
    recorded when someone else recorded it first (a reaper); still staged if it never ran."""
    try:
        meta = record.read_metadata(task.folder)
    except (OSError, record.BadRecord):
        meta = None
    if meta is not None and meta["status"] == Status.STAGED:
        claims.release(task.folder, task.claim)  # it never started: it stays staged
        return Ending(
            task.id, Status.STAGED, dir=task.folder, name=task.name, error=reason,
            why=NotRun.STOPPED,
        )  # fmt: skip
    end = record_failed(task.folder, task.name, reason)
    claims.release(task.folder, task.claim)
    return end


# --- on the worker ------------------------------------------------------------------------------

_gpu_lock = threading.Lock()
_gpu_slots_in_use: set[int] = set()


def _worker_devices(slots: int) -> list[str]:
    """The devices this worker may use (its own CUDA_VISIBLE_DEVICES, else 0..slots-1)."""
    seen = os.environ.get("CUDA_VISIBLE_DEVICES")
    if seen is not None and seen.strip():
        return [device.strip() for device in seen.split(",") if device.strip()]
    return [str(i) for i in range(slots)]


def _slot_devices(slot: int, slots: int, devices: list[str]) -> list[str]:
    """The devices of one GPU slot of ``slots``: the worker's devices split evenly among its
    slots (two slots of four devices: two each; four slots of two devices: two slots each)."""
    count = len(devices)
    first = slot * count // slots
    last = max((slot + 1) * count // slots, first + 1)
    return devices[first:last]


def _gpus(resources: dict[str, float]) -> tuple[list[str], Callable[[], None]]:
    """This worker's devices for one member (its CUDA_VISIBLE_DEVICES), and how to give them
    back: the worker advertises its GPU slots (``--resources gpu=N``)."""
    wanted = next((int(v) for k, v in resources.items() if k.lower() == "gpu"), 0)
    if wanted <= 0:
        return [], lambda: None
    from distributed import get_worker

    total_resources = get_worker().state.total_resources
    slots = int(next((v for k, v in total_resources.items() if k.lower() == "gpu"), 0))
    devices = _worker_devices(slots)
    with _gpu_lock:
        taken = [i for i in range(slots) if i not in _gpu_slots_in_use][:wanted]
        _gpu_slots_in_use.update(taken)
    chosen = list(dict.fromkeys(d for slot in taken for d in _slot_devices(slot, slots, devices)))

    def give_back() -> None:
        with _gpu_lock:
            _gpu_slots_in_use.difference_update(taken)

    return chosen, give_back


class _SchedulerLink(threading.Thread):
    """Asks the scheduler, every half second, whether the client wants the members stopped,
    and notes when it last answered: a scheduler silent for ``lost_after`` seconds is lost."""

    def __init__(self, cancel_name: str, lost_after: float) -> None:
        from distributed import get_client

        super().__init__(daemon=True, name="yanex-dask-link")
        self.client = get_client()  # the worker's (found from the task's own thread only)
        self.cancel_name = cancel_name
        self.lost_after = lost_after
        self.answered = threading.Event()
        self.cancelled = False
        self.last_answer = time.monotonic()
        self.done = threading.Event()

    def run(self) -> None:
        from distributed import Event

        while not self.done.is_set():
            try:
                event = Event(self.cancel_name, client=self.client)
                self.cancelled = event.is_set() or self.cancelled
                self.last_answer = time.monotonic()
                self.answered.set()
            except Exception:  # the scheduler is not there (now): asked again
                pass
            self.done.wait(_LINK_POLL)

    @property
    def lost(self) -> bool:
        return time.monotonic() - self.last_answer > self.lost_after


def run_task(
    home: str,
    experiment_id: str,
    token: str,
    ignore_dirty: bool,
    retries: int,
    cancel_name: str,
    resources: dict[str, float],
    topic: str = "",
    lost_after: float = DEFAULT_LOST_AFTER,
    upstream: Sequence[Ending] = (),
) -> Ending:
    """One member, on a Dask worker (the task the client submits). ``upstream``: how its
    dependencies in the batch ended (Dask runs this task after theirs); whether it may run is
    read from their records (``member.run_member``)."""
    from distributed import get_worker

    folder = store.experiment_dir(experiment_id, Path(home))
    link = _SchedulerLink(cancel_name, lost_after)
    link.start()
    try:
        if not link.answered.wait(CONNECT_TIMEOUT + 1) or link.cancelled:
            claims.release(folder, _claim_of(folder, token))
            why = "cancelled" if link.cancelled else "its Dask scheduler did not answer"
            return Ending(
                experiment_id, Status.STAGED, dir=folder, why=NotRun.STOPPED,
                error=f"{why} before it started",
            )  # fmt: skip
        again = _after_a_lost_worker(folder, token, retries)
        if again is not None:
            return again
        worker = get_worker()
        with contextlib.suppress(OSError, ValueError, record.BadRecord):
            seat = {"worker": worker.address, "worker_name": str(worker.name)}
            record.update(folder, {"dask": seat}, only_if=(Status.STAGED,), durable=False)
        with contextlib.suppress(Exception):
            worker.log_event(topic, {"started": experiment_id})
        return _run(home, experiment_id, token, ignore_dirty, resources, link)
    finally:
        link.done.set()


def _run(
    home: str,
    experiment_id: str,
    token: str,
    ignore_dirty: bool,
    resources: dict[str, float],
    link: _SchedulerLink,
) -> Ending:
    devices, give_back = _gpus(resources)
    environ = dict(os.environ)
    if devices:
        environ["CUDA_VISIBLE_DEVICES"] = ",".join(devices)
    sent: list[int] = []

    def next_signal(timeout: float) -> int | None:
        """SIGINT once the client asks to stop; SIGTERM once the scheduler is lost."""
        time.sleep(min(timeout, _POLL))
        if sent:
            return None
        if link.cancelled:
            sent.append(signal.SIGINT)
        elif link.lost:
            sent.append(signal.SIGTERM)
        return sent[0] if sent else None

    try:
        end = run_member(
            home,
            experiment_id,
            token,
            code=CodeCheck(ignore_dirty),
            next_signal=next_signal,
            environ=environ,
        )
    finally:
        give_back()
    if sent == [signal.SIGTERM] and end.status == Status.CANCELLED and end.dir is not None:
        seconds = f"{link.lost_after:g} s"
        cut = f"cut off: its Dask scheduler was lost while it ran (no answer for {seconds})"
        changes = {"status": Status.FAILED, "error": cut}
        with contextlib.suppress(OSError, ValueError):
            meta = record.update(end.dir, changes, only_if=(Status.CANCELLED,))
            if meta is not None:
                return ending.recorded(end.dir, meta)
    return end


def _claim_of(folder: Path, token: str) -> claims.Claim | None:
    """This task's claim, to give back (None: not this task's any more)."""
    with contextlib.suppress(claims.BadClaim):
        held = claims.read(folder)
        if held is not None and held.token == token:
            return held
    return None


def _after_a_lost_worker(folder: Path, token: str, retries: int) -> Ending | None:
    """The task runs again after its worker died: the member is still ``running`` under this
    task's claim (run again, as staged, while retries last, else recorded failed), or it
    ended already (as recorded: a reaper may have recorded it). None: a first attempt."""
    try:
        meta = record.read_metadata(folder)
    except (OSError, record.BadRecord):
        return None
    if meta["status"] == Status.STAGED or not claims.holds(folder, token):
        return None
    if meta["status"] in Status.ENDED:
        claims.release(folder)
        return ending.recorded(folder, meta)
    attempts = int(meta.get("attempts") or 1)
    launcher = meta.get("launcher") or {}
    lost = f"its Dask worker died (pid {launcher.get('pid')} on {launcher.get('hostname')})"
    if attempts <= retries:
        kept = _keep_attempt(folder, attempts)
        changes = {"status": Status.STAGED, "attempts": attempts + 1}
        changes["retried_after"] = [*(meta.get("retried_after") or []), lost]
        earlier = {
            "attempt": attempts,
            "folder": kept,
            "started_at": meta.get("started_at"),
            "launcher": meta.get("launcher"),
            "dask": meta.get("dask"),
            "error": lost,
        }
        changes["earlier_attempts"] = [*(meta.get("earlier_attempts") or []), earlier]
        record.update(folder, changes, only_if=(Status.RUNNING,))
        return None
    changes = {"status": Status.FAILED, "ended_at": store.now_iso(), "error": lost}
    record.update(folder, changes, only_if=(Status.RUNNING,))
    claims.release(folder)
    return ending.recorded(folder, record.read_metadata(folder))


def _keep_attempt(folder: Path, attempt: int) -> str:
    """Move what a lost attempt wrote (output, results, artifacts) to ``attempts/N/``: the
    member's record holds its last attempt only."""
    kept = Path("attempts") / str(attempt)
    target = folder / kept
    target.mkdir(parents=True, exist_ok=True, mode=0o700)
    for name in _ATTEMPT_FILES:
        with contextlib.suppress(FileNotFoundError):
            os.replace(folder / name, target / name)
    store.release_room(folder)
    return str(kept)
