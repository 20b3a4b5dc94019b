"""Which process is which: a pid with its host and start time, so that a pid the system has
since given to another process is never taken for the one that had it.

Claims (who runs a staged member) and the reaper (which ``running`` experiment lost its
launcher) both ask :meth:`ProcessId.is_gone`. The start time is psutil's ``create_time``; it is
compared with a tolerance, as it is derived from the wall clock's boot time, which a clock
step may move a little.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any

# Start times closer than this are the same process's (a reused pid starts later than that).
_SAME_START = 1.0

_current: tuple[int, ProcessId] | None = None


def _start_time(pid: int) -> float | None:
    """When process ``pid`` started (seconds since the epoch); None when there is no such
    process, or only its zombie. PermissionError: it cannot be asked (another user's)."""
    import psutil

    try:
        process = psutil.Process(pid)
        with process.oneshot():
            if process.status() == psutil.STATUS_ZOMBIE:
                return None
            return round(process.create_time(), 2)
    except psutil.AccessDenied as exc:
        raise PermissionError(str(exc)) from exc
    except (psutil.Error, ValueError, OverflowError):
        return None


def hostname() -> str:
    return os.uname().nodename


@dataclass(frozen=True)
class ProcessId:
    """One process: its host, pid and start time (None where it could not be read)."""

    host: str
    pid: int
    started: float | None

    @classmethod
    def current(cls) -> ProcessId:
        """This process (made once per process; a fork makes its own)."""
        global _current
        pid = os.getpid()
        if _current is None or _current[0] != pid:
            started = None
            with contextlib.suppress(PermissionError):  # (never for this process)
                started = _start_time(pid)
            _current = (pid, cls(hostname(), pid, started))
        return _current[1]

    def is_here(self) -> bool:
        return self.host == hostname()

    def is_gone(self) -> bool:
        """On this host: the process no longer runs (its pid is free, or another process's
        now). Always False for another host's process: only a lease can tell."""
        if not self.is_here():
            return False
        if self.pid <= 0:
            return True
        try:
            now = _start_time(self.pid)
        except PermissionError:
            return False  # it runs, as another user: not ours to call gone
        if now is None:
            return True
        return self.started is not None and abs(now - self.started) > _SAME_START

    def to_metadata(self) -> dict[str, Any]:
        """As an experiment's ``launcher`` records it."""
        return {"pid": self.pid, "hostname": self.host, "started": self.started}

    @classmethod
    def from_metadata(cls, data: Any) -> ProcessId | None:
        """From an experiment's ``launcher`` (None when it names no process)."""
        if not isinstance(data, dict):
            return None
        pid, host, started = data.get("pid"), data.get("hostname"), data.get("started")
        if not isinstance(pid, int) or isinstance(pid, bool) or not isinstance(host, str):
            return None
        if not isinstance(started, (int, float)) or isinstance(started, bool):
            started = None  # recorded by an older yanex: the pid alone tells
        return cls(host, pid, None if started is None else float(started))
