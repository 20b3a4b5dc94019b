"""Child processes, the signals between them and yanex, and what is left of them at the end.

Every child yanex starts (a script) runs in a process group of its own:

- a stop signal reaches the child once, from yanex, however it was sent: Ctrl-C at a terminal,
  ``kill PID``, or a signal to yanex's whole group (``kill -INT -PGID``, ``timeout``, a job
  scheduler), which no longer reaches the child a second time directly;
- yanex can stop or kill everything the child started (subprocesses, multiprocessing workers,
  ``sh -c '... &'``) with one ``killpg``;
- a watcher (a tiny ``sh``, in a session of its own) kills the groups of the runs still going
  if yanex itself dies, even by SIGKILL.

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


def spawn(argv: Sequence[str], **popen_kwargs: Any) -> subprocess.Popen[bytes]:
    """Start ``argv`` (a list, never a shell string) in a process group of its own."""
    if sys.version_info >= (3, 11):
        popen_kwargs["process_group"] = 0
    else:  # no process_group before 3.11: a session of its own is a group of its own too
        popen_kwargs["start_new_session"] = True
    return subprocess.Popen(list(argv), **popen_kwargs)


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


def end_group(pgid: int, grace: float) -> None:
    """Stop what is left in the group: SIGTERM, then SIGKILL after ``grace`` seconds."""
    if not signal_group(pgid, signal.SIGTERM):
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not group_alive(pgid):
            return
        time.sleep(0.02)
    signal_group(pgid, signal.SIGKILL)


# The watcher: a shell started in a session of its own, one per yanex process. yanex tells it
# on its stdin which process groups to watch ("+PGID") and which have been ended ("-PGID"); when
# yanex exits or dies, its end of the pipe closes, and the shell kills the groups still listed.
_WATCH = """
groups=" "
while read -r line; do
  case "$line" in
    +*) groups="$groups${line#+} " ;;
    -*) g=${line#-}
        case "$groups" in *" $g "*) groups="${groups%% $g *} ${groups#* $g }" ;; esac ;;
  esac
done
for g in $groups; do kill -KILL -"$g" 2>/dev/null; done
"""


class Watcher:
    """Kills the process groups of runs whose yanex died before it could end them itself."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.proc: subprocess.Popen[bytes] | None = None

    def _send(self, line: str) -> None:
        with self.lock:
            if self.proc is None or self.proc.poll() is not None:
                try:
                    self.proc = subprocess.Popen(
                        ["/bin/sh", "-c", _WATCH],
                        stdin=subprocess.PIPE,
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                        start_new_session=True,
                    )
                except OSError:  # no /bin/sh: nothing guards the runs if yanex dies
                    return
            assert self.proc.stdin is not None
            with contextlib.suppress(OSError):
                self.proc.stdin.write(f"{line}\n".encode())
                self.proc.stdin.flush()

    def watch(self, pgid: int) -> None:
        self._send(f"+{pgid}")

    def unwatch(self, pgid: int) -> None:
        """The group was ended by yanex: not to be killed later."""
        self._send(f"-{pgid}")


WATCHER = Watcher()  # this process's: started with the first run, ends with the process
