"""Which process is which: a pid with its host and start time, so that a pid the system has
since given to another process is never taken for the one that had it.

Claims (who runs a staged member) and the reaper (which ``running`` experiment lost its
launcher) both ask :meth:`ProcessId.is_gone`. The start time is psutil's ``create_time``; it is
compared with a tolerance, as it is derived from the wall clock's boot time, which a clock
step may move a little. A process of another host cannot be asked: a run's :class:`Heartbeat`
tells the other hosts that its launcher still runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yanex import store
from yanex.display import local_time

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


def _own_start_time() -> float | None:
    """When this process started, as psutil's ``create_time`` gives it (boot time plus the
    clock ticks of ``/proc/self/stat``), read without importing psutil: every run's start
    asks it, and psutil's import costs more than the reading. Elsewhere than Linux: psutil."""
    try:
        with open("/proc/self/stat", "rb") as f:
            stat = f.read()
        with open("/proc/stat", "rb") as f:
            boot = next(line for line in f if line.startswith(b"btime"))
        ticks = float(stat[stat.rfind(b")") + 2 :].split()[19])
        return round(ticks / os.sysconf("SC_CLK_TCK") + float(boot.split()[1]), 2)
    except (OSError, ValueError, IndexError, StopIteration):
        with contextlib.suppress(PermissionError):  # (never for this process)
            return _start_time(os.getpid())
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
            _current = (pid, cls(hostname(), pid, _own_start_time()))
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


# --- a heartbeat, for the hosts that cannot ask this one's processes -------------------------

HEARTBEAT_ENV = "YANEX_HEARTBEAT"
DEFAULT_HEARTBEAT = 30.0  # seconds between two renewals of a run's heartbeat
LOST_AFTER_BEATS = 4  # a heartbeat not renewed for this many of its intervals is lost
HEARTBEAT = ".heartbeat"  # in the experiment folder, while it runs


def heartbeat_interval() -> float:
    """How often this process renews the heartbeats of its runs (``YANEX_HEARTBEAT``)."""
    return store.env_number(HEARTBEAT_ENV, DEFAULT_HEARTBEAT, 0.1)


_beats_lock = threading.Lock()
_beating: dict[Path, int] = {}  # folder -> how many runs of this process beat there
_renewer: tuple[int, threading.Thread, threading.Event] | None = None  # (pid, thread, stop)


class Heartbeat:
    """A run's heartbeat (a context manager around the run): ``.heartbeat`` in its folder,
    written before the run is recorded ``running`` and renewed every :func:`heartbeat_interval`
    seconds by one thread of this process for all its runs, removed once the run has ended.

    Another host cannot ask whether this process still runs; it reads the heartbeat instead:
    one not renewed for :data:`LOST_AFTER_BEATS` intervals (by the reader's clock) means the
    launcher is lost (its machine died, or lost the store), and the run is recorded failed.
    The hosts' clocks must agree to well within that (NTP); a launcher suspended that long
    (Ctrl-Z) is taken for lost too, and its real ending, if it comes, is recorded over it.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def __enter__(self) -> Heartbeat:
        global _renewer
        every = heartbeat_interval()
        _beat(self.folder, every)
        with _beats_lock:
            _beating[self.folder] = _beating.get(self.folder, 0) + 1
            running = _renewer
            if running is None or running[0] != os.getpid() or not running[1].is_alive():
                stop = threading.Event()
                thread = threading.Thread(
                    target=_renew, args=(every, stop), name="yanex-heartbeat", daemon=True
                )
                _renewer = (os.getpid(), thread, stop)
                thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        global _renewer
        with _beats_lock:
            left = _beating.get(self.folder, 1) - 1
            if left > 0:
                _beating[self.folder] = left
                return
            _beating.pop(self.folder, None)
            if not _beating and _renewer is not None:
                _renewer[2].set()  # nothing runs: the thread ends
                _renewer = None
        with contextlib.suppress(OSError):
            os.unlink(self.folder / HEARTBEAT)

    @staticmethod
    def silence(folder: Path, launcher: ProcessId) -> str | None:
        """Why ``launcher``'s run in ``folder`` is lost, when its heartbeat stopped: its
        last renewal, and how long ago that was; None while it beats (or when it has no
        heartbeat: a run recorded by a yanex without them is never taken for lost)."""
        try:
            with open(folder / HEARTBEAT, "rb") as f:
                beat: Any = json.loads(f.read(4096))
            renewed, every = float(beat["renewed"]), float(beat["every"])
            if beat["host"] != launcher.host or beat["pid"] != launcher.pid:
                return None  # another attempt's (or a copy's): not this launcher's
        except (OSError, ValueError, KeyError, TypeError):
            return None
        silent = time.time() - renewed
        if silent <= LOST_AFTER_BEATS * every:
            return None
        at = local_time(renewed)
        return (
            f"no heartbeat from yanex (pid {launcher.pid} on {launcher.host}) since {at} "
            f"({silent:.0f} s; it renewed it every {every:g} s): its machine died or lost "
            "the store"
        )


def _beat(folder: Path, every: float) -> None:
    from yanex import store

    me = ProcessId.current()
    beat = {"host": me.host, "pid": me.pid, "renewed": time.time(), "every": every}
    with contextlib.suppress(OSError):  # the folder gone, a full disk: its ending says more
        store.write_json_atomic(folder / HEARTBEAT, beat, durable=False)


def _renew(every: float, stop: threading.Event) -> None:
    while not stop.wait(every):
        with _beats_lock:  # (a run that ends meanwhile leaves no heartbeat behind)
            for folder in list(_beating):
                _beat(folder, every)
