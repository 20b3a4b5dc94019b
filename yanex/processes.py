"""Child processes, the signals between them and yanex, and what is left of them at the end.

Every child yanex starts (a script, a staged run's worker) runs in a process group of its own:

- a stop signal reaches the child once, from yanex, however it was sent: Ctrl-C at a terminal,
  ``kill PID``, or a signal to yanex's whole group (``kill -INT -PGID``, ``timeout``, a job
  scheduler), which no longer reaches the child a second time directly;
- yanex can stop or kill everything the child started (subprocesses, multiprocessing workers,
  ``sh -c '... &'``) with one ``killpg``;
- a watcher (a tiny ``sh``, in a session of its own) kills the group if yanex itself dies,
  even by SIGKILL; the child also dies with yanex (Linux parent-death signal).

yanex takes the stop signals (and SIGCHLD, to wake up when a child ends) synchronously while
it waits (:class:`Signals`): with ``sigtimedwait`` where the system has it (Linux), else with
handlers and a wake-up pipe (macOS), a path that ``YANEX_PORTABLE_SIGNALS=1`` forces for tests.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

# Signals a user sends to stop a run; each is passed on to the children.
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# Ctrl-Z and `fg`: passed on too, so a suspended yanex suspends its run.
_JOB_CONTROL = (signal.SIGTSTP, signal.SIGCONT)
WAITED = frozenset({*FORWARDED, *_JOB_CONTROL, signal.SIGCHLD})
PORTABLE_ENV = "YANEX_PORTABLE_SIGNALS"

_PR_SET_PDEATHSIG = 1


def _native() -> bool:
    return hasattr(signal, "sigtimedwait") and not os.environ.get(PORTABLE_ENV)


class Signals:
    """Hold the stop signals (and SIGCHLD) for :meth:`next` while yanex waits for children.

    Used in the main thread, as a context manager. On leaving, stop signals still pending
    came after the work they were meant to stop was over: they are dropped, not delivered.
    """

    def __init__(self) -> None:
        self.native = _native()
        self._pending: deque[int] = deque()
        self._saved: dict[int, Any] = {}
        self._pipe: tuple[int, int] | None = None
        self._old_wakeup = -1

    def __enter__(self) -> Signals:
        if self.native:
            self._old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, WAITED)
            return self
        read_fd, write_fd = os.pipe()
        os.set_blocking(read_fd, False)
        os.set_blocking(write_fd, False)
        self._pipe = (read_fd, write_fd)
        self._old_wakeup = signal.set_wakeup_fd(write_fd)
        for signum in WAITED:
            self._saved[signum] = signal.signal(signum, self._handler)
        return self

    def _handler(self, signum: int, frame: Any) -> None:
        self._pending.append(signum)

    def next(self, timeout: float) -> int | None:
        """The next signal (its number), or None after ``timeout`` seconds."""
        timeout = max(0.0, timeout)
        if self.native:
            info = signal.sigtimedwait(WAITED, timeout)
            return None if info is None else info.si_signo
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
        if self.native:
            while self.next(0) is not None:
                pass
            signal.pthread_sigmask(signal.SIG_SETMASK, self._old_mask)
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


def _libc_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def _child_setup(parent_pid: int, prctl: Callable[..., int] | None) -> Callable[[], None]:
    """What the child runs between fork and exec: a clean signal mask, a process group of its
    own, and death with yanex."""

    def setup() -> None:
        signal.pthread_sigmask(signal.SIG_SETMASK, ())
        os.setpgid(0, 0)
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
            if os.getppid() != parent_pid:  # yanex died before prctl took effect
                os._exit(1)

    return setup


def spawn(argv: Sequence[str], **popen_kwargs: Any) -> subprocess.Popen[bytes]:
    """Start ``argv`` (a list, never a shell string) in a process group of its own, as a child
    that dies with this process."""
    return subprocess.Popen(
        list(argv), preexec_fn=_child_setup(os.getpid(), _libc_prctl()), **popen_kwargs
    )


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


# The watcher: started in a session of its own, it waits for a line on its stdin. yanex writes
# "done" when it has ended the group itself; if yanex dies instead, the pipe closes with no
# line and the watcher kills the group.
_WATCH = 'read r; [ "$r" = done ] || kill -KILL -"$1" 2>/dev/null'


class Watcher:
    """Kills a child's process group if yanex dies before it could end the group itself."""

    def __init__(self, pgid: int) -> None:
        self.proc: subprocess.Popen[bytes] | None
        try:
            self.proc = subprocess.Popen(
                ["/bin/sh", "-c", _WATCH, "yanex-watch", str(pgid)],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError:  # no /bin/sh: the parent-death signal still takes the child itself
            self.proc = None

    def release(self) -> None:
        """The group was ended by yanex: let the watcher go without killing anything."""
        proc = self.proc
        if proc is None or proc.stdin is None:
            return
        with contextlib.suppress(OSError):
            proc.stdin.write(b"done\n")
            proc.stdin.close()
        proc.wait()  # it reads one line and exits
