"""The Dask executor: staged members run on a Dask cluster (``pip install "yanex[dask]"``).

Each member is one Dask task that runs ``member.run_member`` on a worker, against the store
that the client and the workers share (a shared filesystem, as on clusters): the store's path
and the member's claim travel with the task. ``dask-jobqueue`` gives the same scheduler on
Slurm, PBS, SGE or LSF. Tasks are submitted impure (never merged) and carry the resources the
user asked for (``gpu=1``: only workers that advertise GPUs take it, and each member gets its
own ``CUDA_VISIBLE_DEVICES`` there).

A worker that dies mid-run: Dask runs the task again elsewhere, and the task finds its member
still ``running`` under its own claim. It is then run again if ``--retries`` allows (recorded
in ``attempts``), else recorded ``failed`` with the reason. Ctrl-C on the client sets an event
the tasks watch: running members get the signal, members not started are given back (they stay
staged).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from yanex import claims, ending, record, store
from yanex.ending import Ending, NotRun
from yanex.errors import YanexError
from yanex.executors.base import Executor, Task
from yanex.executors.member import CodeCheck, record_failed, run_member
from yanex.executors.runner import usable_cpus
from yanex.record import Status

CONNECT_TIMEOUT = 5.0  # seconds to reach a scheduler before saying it cannot be reached
_POLL = 0.02  # how often a task looks at its script; the cancel event every _CANCEL_POLL
_CANCEL_POLL = 0.5


class DaskError(YanexError):
    """The Dask executor cannot be used as asked (no extra, no scheduler)."""


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise DaskError(
            "--executor dask needs dask.distributed, which is not installed",
            hint='Install the extra: pip install "yanex[dask]"',
        ) from None
    return distributed


class DaskExecutor(Executor):
    """Members as tasks of a Dask cluster: the scheduler at ``scheduler``, or a local cluster
    of processes started for this batch (``jobs`` workers, one member each at a time)."""

    name = "dask"

    def __init__(
        self,
        code: CodeCheck,
        *,
        scheduler: str | None,
        jobs: int,
        resources: dict[str, float],
        retries: int,
    ) -> None:
        super().__init__()
        distributed = _distributed()
        self.code = code
        self.resources = resources
        self.retries = retries
        self.cluster: Any = None
        try:
            if scheduler:
                self.client = distributed.Client(
                    scheduler, timeout=CONNECT_TIMEOUT, set_as_default=False
                )
            else:
                self.cluster = distributed.LocalCluster(
                    n_workers=jobs or usable_cpus(),
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                )
                self.client = distributed.Client(self.cluster, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise DaskError(
                f"cannot reach the Dask scheduler at {scheduler}: {exc}",
                hint="Start one (`dask scheduler`, then `dask worker ADDRESS`) or check the "
                "address; nothing was run, everything stays staged.",
            ) from exc
        self.slots = jobs if jobs > 0 else 1_000_000  # 0: submit all, the scheduler queues
        self.cancel_name = f"yanex-cancel-{os.urandom(6).hex()}"
        self.cancel_event = distributed.Event(self.cancel_name, client=self.client)
        self.lock = threading.Lock()
        self.futures: dict[Any, Task] = {}

    def submit(self, task: Task) -> None:
        future = self.client.submit(
            run_task,
            str(task.home),
            task.id,
            task.claim.token,
            self.code.ignore_dirty,
            self.retries,
            self.cancel_name,
            self.resources,
            pure=False,
            key=f"yanex-{task.id}-{os.urandom(4).hex()}",
            resources=self.resources or None,
        )
        with self.lock:
            self.futures[future] = task
        future.add_done_callback(lambda _: self.wake())

    def wait(self, timeout: float) -> list[tuple[Task, Ending]]:
        ended = []
        with self.lock:
            done = [(f, t) for f, t in self.futures.items() if f.done()]
            for future, _ in done:
                del self.futures[future]
        for future, task in done:
            try:
                end = future.result()
            except Exception as exc:  # the task could not be run: its worker died for good
                end = _lost(task, f"its Dask task failed: {type(exc).__name__}: {exc}")
            ended.append((task, end))
        return ended

    def cancel(self, signum: int) -> list[Task]:
        self.cancel_event.set()  # running members get SIGINT; the others are given back
        return []

    def signal(self, signum: int) -> None:
        pass  # nothing of the members runs in this process

    def busy(self) -> int:
        with self.lock:
            return len(self.futures)

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


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
_gpus_in_use: set[int] = set()


def _gpus(resources: dict[str, float]) -> tuple[list[int], Callable[[], None]]:
    """Devices of this worker for one member (its own CUDA_VISIBLE_DEVICES), and how to give
    them back: the worker advertises how many it has (``--resources gpu=N``)."""
    wanted = next((int(v) for k, v in resources.items() if k.lower() == "gpu"), 0)
    if wanted <= 0:
        return [], lambda: None
    from distributed import get_worker

    total_resources = get_worker().state.total_resources
    total = int(next((v for k, v in total_resources.items() if k.lower() == "gpu"), 0))
    with _gpu_lock:
        free = [i for i in range(total) if i not in _gpus_in_use][:wanted]
        _gpus_in_use.update(free)

    def give_back() -> None:
        with _gpu_lock:
            _gpus_in_use.difference_update(free)

    return free, give_back


def run_task(
    home: str,
    experiment_id: str,
    token: str,
    ignore_dirty: bool,
    retries: int,
    cancel_name: str,
    resources: dict[str, float],
) -> Ending:
    """One member, on a Dask worker (the task the client submits)."""
    from distributed import Event

    cancel = Event(cancel_name)
    folder = store.experiment_dir(experiment_id, Path(home))
    if cancel.is_set():
        claims.release(folder)
        return Ending(
            experiment_id, Status.STAGED, dir=folder, why=NotRun.STOPPED,
            error="cancelled before it started",
        )  # fmt: skip
    again = _after_a_lost_worker(folder, token, retries)
    if again is not None:
        return again
    devices, give_back = _gpus(resources)
    environ = dict(os.environ)
    if devices:
        environ["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, devices))
    asked = {"at": 0.0, "sent": False}

    def next_signal(timeout: float) -> int | None:
        """SIGINT once the client asks to stop (looked at every half second)."""
        time.sleep(min(timeout, _POLL))
        now = time.monotonic()
        if asked["sent"] or now - asked["at"] < _CANCEL_POLL:
            return None
        asked["at"] = now
        if cancel.is_set():
            asked["sent"] = True
            import signal

            return signal.SIGINT
        return None

    try:
        return run_member(
            home,
            experiment_id,
            token,
            code=CodeCheck(ignore_dirty),
            next_signal=next_signal,
            environ=environ,
        )
    finally:
        give_back()


def _after_a_lost_worker(folder: Path, token: str, retries: int) -> Ending | None:
    """The task runs again after its worker died mid-run: the member is still ``running``
    under this task's claim. Run it again (as staged) while retries last, else record it
    failed. None: nothing of the kind (a first attempt)."""
    try:
        meta = record.read_metadata(folder)
    except (OSError, record.BadRecord):
        return None
    if meta["status"] != Status.RUNNING or not claims.holds(folder, token):
        return None
    attempts = int(meta.get("attempts") or 1)
    launcher = meta.get("launcher") or {}
    lost = f"its Dask worker died (pid {launcher.get('pid')} on {launcher.get('hostname')})"
    if attempts <= retries:
        changes = {"status": Status.STAGED, "attempts": attempts + 1}
        changes["retried_after"] = [*(meta.get("retried_after") or []), lost]
        record.update(folder, changes, only_if=(Status.RUNNING,))
        return None
    changes = {"status": Status.FAILED, "ended_at": store.now_iso(), "error": lost}
    record.update(folder, changes, only_if=(Status.RUNNING,))
    claims.release(folder)
    return ending.recorded(folder, record.read_metadata(folder))
