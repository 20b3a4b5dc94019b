"""Child processes and the signals between them and yanex.

yanex takes SIGINT, SIGTERM, SIGHUP and SIGCHLD synchronously (``sigtimedwait``) while it
waits for children, so no signal is lost between a child's start and the wait. Children are
started with a clean signal mask and die with yanex (Linux parent-death signal), so a killed
launcher leaves no orphan behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

# Signals a user sends to stop a run; each is passed on to the children.
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
WAITED = frozenset({*FORWARDED, signal.SIGCHLD})

_SI_KERNEL = 0x80  # si_code of a signal the kernel sent, e.g. Ctrl-C from the terminal
_PR_SET_PDEATHSIG = 1


@contextlib.contextmanager
def signals_blocked(discard_on_exit: bool = False) -> Iterator[None]:
    """Hold the stop signals and SIGCHLD for ``next_signal``; restore the old mask after.

    With ``discard_on_exit``, stop signals still pending at the end (they came after the work
    they were meant to stop was over) are dropped instead of being delivered.
    """
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, WAITED)
    try:
        yield
    finally:
        if discard_on_exit:
            while next_signal(0) is not None:
                pass
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)


def next_signal(timeout: float) -> signal.struct_siginfo | None:
    """The next held signal, or None after ``timeout`` seconds (inside ``signals_blocked``)."""
    return signal.sigtimedwait(WAITED, max(0.0, timeout))


def is_stop_signal(info: signal.struct_siginfo | None) -> bool:
    return info is not None and info.si_signo != signal.SIGCHLD


def came_from_terminal(info: signal.struct_siginfo) -> bool:
    """Ctrl-C at a terminal: the kernel sent it to the whole foreground process group, so the
    children got it too and must not get it again."""
    return info.si_signo == signal.SIGINT and info.si_code == _SI_KERNEL


def _libc_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def _child_setup(parent_pid: int, prctl: Callable[..., int] | None) -> Callable[[], None]:
    """What the child runs between fork and exec: a clean signal mask, and death with yanex."""

    def setup() -> None:
        signal.pthread_sigmask(signal.SIG_SETMASK, ())
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
            if os.getppid() != parent_pid:  # yanex died before prctl took effect
                os._exit(1)

    return setup


def spawn(argv: Sequence[str], **popen_kwargs: Any) -> subprocess.Popen[bytes]:
    """Start ``argv`` (a list, never a shell string) as a child that dies with this process."""
    return subprocess.Popen(
        list(argv), preexec_fn=_child_setup(os.getpid(), _libc_prctl()), **popen_kwargs
    )


def wait_forwarding(
    proc: subprocess.Popen[bytes], grace: float
) -> tuple[int, signal.Signals | None]:
    """Wait for ``proc`` inside ``signals_blocked``, forwarding stop signals.

    Returns its exit code and the stop signal received (None if none). The first stop signal
    is forwarded (unless the child got it from the terminal itself) and starts the grace
    period; a second one, or the end of the grace period, kills the child.
    """
    received: signal.Signals | None = None
    kill_at: float | None = None
    while True:
        info = next_signal(1.0 if kill_at is None else kill_at - time.monotonic())
        if info is not None and is_stop_signal(info):
            if received is not None:
                proc.kill()
            else:
                received = signal.Signals(info.si_signo)
                kill_at = time.monotonic() + grace
                if not came_from_terminal(info):
                    proc.send_signal(received)
        returncode = proc.poll()
        if returncode is not None:
            return returncode, received
        if kill_at is not None and time.monotonic() >= kill_at:
            proc.kill()
            return proc.wait(), received
