"""The executor seam: where claimed staged members run (submit, wait, cancel).

The runner (``runner.py``) decides which members run and counts how they end; an executor
only runs what it is given, each member through ``member.run_member``, the one code path. The
local executor runs members in threads of the runner's own process; the Dask executor sends
them to a cluster.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from yanex import processes
from yanex.claims import Claim
from yanex.ending import Ending


def usable_cpus() -> int:
    """The CPUs this process may run on (all of the machine's where that cannot be asked)."""
    if hasattr(os, "sched_getaffinity") and not os.environ.get(processes.PORTABLE_ENV):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@dataclass
class Task:
    """One claimed member to run: where it is, the claim that lets it run, and the members of
    the batch it depends on that were handed over before it (``after``: an executor that
    chains tasks starts it once they ended)."""

    folder: Path
    name: str
    claim: Claim
    after: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.folder.name

    @property
    def home(self) -> Path:
        return self.folder.parent.parent


class Executor(ABC):
    """Runs claimed members; ``wake`` is called whenever one ends (the runner then calls
    :meth:`wait`)."""

    slots: int  # how many members it runs at once
    name: str
    # Whether it makes a member's task wait on its dependencies' tasks (Dask); else the
    # runner hands a member over only once its dependencies have ended.
    chains: bool = False
    given_up: str | None = None  # why it can run nothing more (its cluster was lost)

    def __init__(self) -> None:
        self.wake: Callable[[], None] = lambda: None

    def at_a_time(self) -> str:
        """How many members it runs at once, in words."""
        return f"{self.slots} at a time"

    def running(self) -> int:
        """How many members run now (submitted ones may wait on a cluster)."""
        return self.busy()

    @abstractmethod
    def submit(self, task: Task) -> None:
        """Start (or queue) one member."""

    @abstractmethod
    def wait(self, timeout: float) -> list[tuple[Task, Ending]]:
        """The members that ended since the last call (waiting up to ``timeout`` for one)."""

    @abstractmethod
    def cancel(self, signum: int) -> list[Task]:
        """Pass a stop signal on to the running members; the tasks that had not started yet
        are taken back (their claims are the runner's to give back)."""

    @abstractmethod
    def signal(self, signum: int) -> None:
        """Pass another signal on (SIGCHLD: a child ended, look; Ctrl-Z, fg)."""

    @abstractmethod
    def busy(self) -> int:
        """How many members are submitted and not yet ended."""

    @abstractmethod
    def close(self) -> None:
        """Give back what the executor holds (threads, a cluster it started)."""
