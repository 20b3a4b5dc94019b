"""Child processes, the signals between them and yanex, and what is left of them at the end.

Every child yanex starts (a script) runs in a process group of its own:

- a stop signal reaches the child once, from yanex, however it was sent: Ctrl-C at a terminal,
  ``kill PID``, or a signal to yanex's whole group (``kill -INT -PGID``, ``timeout``, a job
  scheduler), which no longer reaches the child a second time directly;
- yanex can stop or kill everything the child started (subprocesses, multiprocessing workers,
  ``sh -c '... &'``) with one ``killpg``;
- a watcher (a tiny ``sh``, in a session of its own) kills the groups of the runs still going
  if yanex itself dies, even by SIGKILL.

What leaves the group (a new session, a double-forked daemon) is found on Linux: yanex is the
child subreaper of its runs (``PR_SET_CHILD_SUBREAPER``), so what a run's processes leave
behind when they die becomes yanex's child instead of init's, and each run's processes carry
a marker in their environment (``YANEX_EXPERIMENT_ID=<id>``): at the end of a run, yanex ends
the orphans that carry its marker (and what they started); if yanex is killed, the watcher
ends every process that carries the marker of a run it watched. Elsewhere (macOS, or with
``YANEX_PORTABLE`` set) the process group is all there is.

yanex takes the stop signals (and SIGCHLD, to wake up when a child ends) while it waits
(:class:`Signals`), with handlers and a wake-up pipe: portable (no Linux-only call), and the
children inherit no blocked signal mask, so they are started without running Python code
between fork and exec (``preexec_fn`` is unsafe with threads, and slow).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from types import TracebackType
from typing import Any

# Signals a user sends to stop a run; each is passed on to the children.
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# Ctrl-Z and `fg`: passed on too, so a suspended yanex suspends its run.
_JOB_CONTROL = (signal.SIGTSTP, signal.SIGCONT)
WAITED = (*FORWARDED, *_JOB_CONTROL, signal.SIGCHLD)
# Set to take the portable path of Linux-only calls (tests do, on Linux).
PORTABLE_ENV = "YANEX_PORTABLE"
# The variable whose value marks a run's processes (``yanex`` sets it to the experiment's ID).
MARKER_NAME = "YANEX_EXPERIMENT_ID"


class Signals:
    """Take the stop signals (and SIGCHLD) for :meth:`next` while yanex waits for children.

    Used as a context manager. On leaving, stop signals not taken came after the work they
    were meant to stop was over: they are dropped, not delivered. A signal the process
    ignores stays ignored (a job started with ``nohup`` or in the background of a script).
    Outside the main thread (``yanex.launch`` from a thread of a program) signals stay the
    program's: :meth:`next` only waits, and wakes at :meth:`wake`.
    """

    def __init__(self) -> None:
        self.active = threading.current_thread() is threading.main_thread()
        self._woken = threading.Event()
        self._pending: deque[int] = deque()
        self._saved: dict[int, Any] = {}
        self._pipe: tuple[int, int] | None = None
        self._old_wakeup = -1

    def __enter__(self) -> Signals:
        if not self.active:
            return self
        read_fd, write_fd = os.pipe()
        os.set_blocking(read_fd, False)
        os.set_blocking(write_fd, False)
        self._pipe = (read_fd, write_fd)
        self._old_wakeup = signal.set_wakeup_fd(write_fd)
        for signum in WAITED:
            if signal.getsignal(signum) is not signal.SIG_IGN:
                self._saved[signum] = signal.signal(signum, self._handler)
        return self

    def _handler(self, signum: int, frame: Any) -> None:
        self._pending.append(signum)

    def wake(self) -> None:
        """Make a :meth:`next` that waits return now (safe from any thread): something the
        waiting loop should look at has happened (a run in a thread ended)."""
        if not self.active:
            self._woken.set()
        elif self._pipe is not None:
            with contextlib.suppress(OSError):
                os.write(self._pipe[1], b"\0")

    def next(self, timeout: float) -> int | None:
        """The next signal (its number), or None after ``timeout`` seconds."""
        timeout = max(0.0, timeout)
        if not self.active:
            self._woken.wait(timeout)
            self._woken.clear()
            return None
        if not self._pending:
            assert self._pipe is not None
            with contextlib.suppress(InterruptedError):
                select.select([self._pipe[0]], [], [], timeout)
            with contextlib.suppress(BlockingIOError):
                os.read(self._pipe[0], 512)  # handlers have run by now: they queued the signals
        return self._pending.popleft() if self._pending else None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self.active:
            return
        for signum, handler in self._saved.items():
            signal.signal(signum, handler)
        signal.set_wakeup_fd(self._old_wakeup)
        assert self._pipe is not None
        for fd in self._pipe:
            os.close(fd)
        self._pending.clear()


def is_stop(signum: int | None) -> bool:
    return signum in FORWARDED


def suspend_self(signum: int) -> None:
    """Stop yanex as Ctrl-Z would (after its children were passed the signal)."""
    if signum == signal.SIGTSTP:
        os.kill(os.getpid(), signal.SIGSTOP)


# Children this process started itself (scripts, the watcher), until they are waited for: the
# only children not to reap here, with those in yanex's own group (subprocesses run by
# libraries, which wait for their own).
_spawned: set[int] = set()
_PR_SET_CHILD_SUBREAPER = 36
_libc: Any = None
_runs = 0  # runs started by spawn and not yet ended (run_ended)
_runs_lock = threading.Lock()


def _prctl_libc() -> Any:
    """libc, where this process can be made a child subreaper (Linux, not YANEX_PORTABLE)."""
    global _libc
    if _libc is None:
        _libc = False
        if sys.platform.startswith("linux") and not os.environ.get(PORTABLE_ENV):
            import ctypes

            with contextlib.suppress(OSError, AttributeError):
                _libc = ctypes.CDLL(None, use_errno=True)
                _libc.prctl  # noqa: B018 (there is one)
    return _libc


def _tracks_orphans() -> bool:
    """Is this process the child subreaper of its runs (an orphan of a run is re-parented to
    yanex, not to init)? Only while runs live: a program that calls ``yanex.launch`` is
    left as it was in between."""
    return bool(_prctl_libc()) and _runs > 0


def _run_started() -> None:
    global _runs
    with _runs_lock:
        libc = _prctl_libc()
        if _runs == 0 and libc and libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
            global _libc
            _libc = False  # not allowed here: the process group is all there is
        _runs += 1


def run_ended() -> None:
    """A run started by :func:`spawn` is over, what it left ended and reaped."""
    global _runs
    with _runs_lock:
        _runs = max(0, _runs - 1)
        libc = _prctl_libc()
        if _runs == 0 and libc:
            libc.prctl(_PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


def spawn(argv: Sequence[str], **popen_kwargs: Any) -> subprocess.Popen[bytes]:
    """Start ``argv`` (a list, never a shell string) in a process group of its own, as a
    run: :func:`run_ended` is to be called once it and what it left are ended."""
    if sys.version_info >= (3, 11):
        popen_kwargs["process_group"] = 0
    else:  # no process_group before 3.11: a session of its own is a group of its own too
        popen_kwargs["start_new_session"] = True
    _run_started()
    try:
        proc = subprocess.Popen(list(argv), **popen_kwargs)
    except BaseException:
        run_ended()
        raise
    _spawned.add(proc.pid)
    return proc


def waited(pid: int) -> None:
    """A child started by :func:`spawn` was waited for: its pid is no longer ours."""
    _spawned.discard(pid)


def signal_group(pgid: int, signum: int) -> bool:
    """Send ``signum`` to the process group; False when nothing is left in it."""
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        return False
    except PermissionError:  # a member changed its user: it is not ours to signal
        return True
    return True


def group_alive(pgid: int) -> bool:
    return signal_group(pgid, 0)


def end_run(pgid: int, marker: str | None, grace: float) -> None:
    """Stop what is left of a run: its process group, and (Linux) the orphans that carry its
    ``marker`` (``NAME=value`` in their environment) with what they started. SIGTERM, then
    SIGKILL after ``grace`` seconds."""
    strays = _strays(marker)
    in_group = signal_group(pgid, signal.SIGTERM)
    for process in strays:
        with contextlib.suppress(Exception):
            process.terminate()
    if in_group or strays:
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            # What ended is a zombie, and still in the group, until its subreaper (yanex, or
            # init where yanex cannot be one) waits for it.
            reap_orphans()
            if not group_alive(pgid) and not any(_running(p) for p in strays):
                break
            time.sleep(0.02)
        signal_group(pgid, signal.SIGKILL)
        for process in [*strays, *_strays(marker)]:  # what they started while dying too
            with contextlib.suppress(Exception):
                process.kill()
    reap_orphans(wait=0.5 if strays else 0.0)


def _running(process: Any) -> bool:
    import psutil

    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _direct_children() -> set[int]:
    """This process's children (Linux: /proc/self/task/*/children, cheap); empty elsewhere."""
    found: set[int] = set()
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return found
    for task in tasks:
        path = f"/proc/self/task/{task}/children"
        with contextlib.suppress(OSError, ValueError), open(path, "rb") as f:
            found.update(int(pid) for pid in f.read().split())
    return found


def _orphans() -> set[int]:
    """Children that yanex did not start: the orphans of runs (re-parented to yanex, their
    subreaper). Subprocesses of libraries stay in yanex's own group and are left alone."""
    if not _tracks_orphans():
        return set()
    own = os.getpgrp()
    found = set()
    for pid in _direct_children() - _spawned - WATCHER.pids():
        with contextlib.suppress(OSError):
            if os.getpgid(pid) != own:
                found.add(pid)
    return found


def _strays(marker: str | None) -> list[Any]:
    """The run's processes that left its group: orphans that carry ``marker`` in their
    environment, and everything they started (psutil processes)."""
    if marker is None:
        return []
    orphans = _orphans()
    if not orphans:
        return []
    import psutil

    name, _, value = marker.partition("=")
    found = []
    for pid in orphans:
        try:
            orphan = psutil.Process(pid)
            if orphan.environ().get(name) == value:
                found += [orphan, *orphan.children(recursive=True)]
        except psutil.Error:
            continue  # ended meanwhile, or a zombie (reaped below)
    return found


def reap_orphans(wait: float = 0.0) -> None:
    """Wait for the orphans of runs that ended (zombies until their subreaper, yanex, waits
    for them), for up to ``wait`` seconds for those still dying."""
    deadline = time.monotonic() + wait
    while True:
        left = False
        for pid in _orphans():
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                continue
            left = left or done == 0
        if not left or time.monotonic() >= deadline:
            return
        time.sleep(0.01)


# The watcher: a shell started in a session of its own, one per yanex process. yanex tells it
# on its stdin which runs to watch ("+PGID MARKER") and which have been ended ("-PGID MARKER");
# when yanex exits or dies, its end of the pipe closes, and the shell kills the groups still
# listed and (Linux) every process whose environment carries one of their markers (found by
# grep in /proc, a few times over, for what they start while being killed).
_WATCH = """
groups=" "
markers=""
while read -r sign group marker; do
  case "$sign" in
    +) groups="$groups$group "; [ "$marker" = - ] || markers="$markers $marker" ;;
    -) case "$groups" in *" $group "*) groups="${groups%% $group *} ${groups#* $group }" ;; esac
       kept=""
       for m in $markers; do [ "$m" = "$marker" ] || kept="$kept $m"; done
       markers="$kept" ;;
  esac
done
for g in $groups; do kill -KILL -"$g" 2>/dev/null; done
[ -n "$markers" ] && [ -d /proc/self ] || exit 0
patterns=""
for m in $markers; do patterns="$patterns -e $m"; done
for round in 1 2 3; do
  found=""
  for f in $(grep -lzxF $patterns /proc/[0-9]*/environ 2>/dev/null); do
    pid=${f#/proc/}; found="$found ${pid%/environ}"
  done
  [ -n "$found" ] || break
  kill -KILL $found 2>/dev/null
done
"""


class Watcher:
    """Kills what is left of runs whose yanex died before it could end them itself."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.proc: subprocess.Popen[bytes] | None = None

    def _send(self, line: str) -> None:
        with self.lock:
            if self.proc is None or self.proc.poll() is not None:
                # Not itself one of the runs' processes: no marker in its environment.
                env = {k: v for k, v in os.environ.items() if k != MARKER_NAME}
                try:
                    self.proc = subprocess.Popen(
                        ["/bin/sh", "-c", _WATCH],
                        stdin=subprocess.PIPE,
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                        start_new_session=True,
                        env=env,
                    )
                except OSError:  # no /bin/sh: nothing guards the runs if yanex dies
                    return
            assert self.proc.stdin is not None
            with contextlib.suppress(OSError):
                self.proc.stdin.write(f"{line}\n".encode())
                self.proc.stdin.flush()

    def pids(self) -> set[int]:
        proc = self.proc
        return {proc.pid} if proc is not None else set()

    def watch(self, pgid: int, marker: str | None = None) -> None:
        """Kill the group (and what carries ``marker``, NAME=value) if yanex dies."""
        self._send(f"+ {pgid} {_safe_marker(marker)}")

    def unwatch(self, pgid: int, marker: str | None = None) -> None:
        """The run was ended by yanex: not to be killed later."""
        self._send(f"- {pgid} {_safe_marker(marker)}")


def _safe_marker(marker: str | None) -> str:
    """A marker the watcher's shell can hold in a word: NAME=value of letters, digits, _ ."""
    if marker and all(c.isalnum() or c in "_=.-" for c in marker) and marker[0].isalpha():
        return marker
    return "-"


WATCHER = Watcher()  # this process's: started with the first run, ends with the process
