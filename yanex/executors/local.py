"""The local executor: members run in threads of the runner's own process, each script still
a child process of its own. No second yanex interpreter per member: a batch of small
experiments costs little more than the scripts themselves.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from typing import IO

from yanex.code.check import CodeCheck
from yanex.ending import Ending
from yanex.executors.base import Executor, Task
from yanex.executors.member import record_failed, run_member


class LocalExecutor(Executor):
    """``jobs`` members at once, in this process. Given ``stdout``/``stderr`` (one job at a
    time, at a terminal), the scripts' output streams there as in a direct run; else it goes
    to each experiment's files only."""

    name = "local"

    def __init__(
        self,
        jobs: int,
        code: CodeCheck,
        echo: Callable[[str], None] = lambda message: None,
        stdout: IO[bytes] | None = None,
        stderr: IO[bytes] | None = None,
    ) -> None:
        super().__init__()
        self.slots = jobs
        self.code = code
        self.echo = echo
        self.stdout = stdout
        self.stderr = stderr
        self.pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="yanex-member")
        self.lock = threading.Lock()
        self.members: dict[Future[Ending], tuple[Task, queue.SimpleQueue[int]]] = {}

    def submit(self, task: Task) -> None:
        signals: queue.SimpleQueue[int] = queue.SimpleQueue()
        stream = self.stdout is not None

        def next_signal(timeout: float) -> int | None:
            try:
                return signals.get(timeout=timeout) if timeout > 0 else signals.get_nowait()
            except queue.Empty:
                return None

        future = self.pool.submit(
            run_member,
            task.home,
            task.id,
            task.claim.token,
            code=self.code,
            stdout=self.stdout,
            stderr=self.stderr,
            echo=self.echo if stream else lambda message: None,
            next_signal=next_signal,
        )
        with self.lock:
            self.members[future] = (task, signals)
        future.add_done_callback(lambda _: self.wake())

    def wait(self, timeout: float) -> list[tuple[Task, Ending]]:
        with self.lock:
            futures = list(self.members)
        if not futures:
            return []
        done, _ = wait_futures(futures, timeout=timeout, return_when="FIRST_COMPLETED")
        ended = []
        for future in done:
            with self.lock:
                task, _ = self.members.pop(future)
            try:
                ended.append((task, future.result()))
            except Exception as exc:  # a bug in yanex: this member alone fails, with the reason
                reason = f"yanex failed while running it: {type(exc).__name__}: {exc}"
                ended.append((task, record_failed(task.folder, task.name, reason)))
        return ended

    def _tell_all(self, signum: int) -> None:
        with self.lock:
            queues = [signals for _, signals in self.members.values()]
        for signals in queues:
            signals.put(signum)

    def cancel(self, signum: int) -> list[Task]:
        self._tell_all(signum)
        return []  # nothing waits here unstarted: the runner submits only what has a slot

    def signal(self, signum: int) -> None:
        self._tell_all(signum)

    def busy(self) -> int:
        with self.lock:
            return len(self.members)

    def close(self) -> None:
        self.pool.shutdown(wait=True)
