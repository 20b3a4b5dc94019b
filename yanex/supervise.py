"""Running one script as a child process: its output teed, stop signals passed on once, a grace
period, and nothing it started left behind.

The launcher decides what a run is and records it; this module only runs the child. Its
stdout and stderr are copied, as bytes, to the experiment's log files and (when given) to the
terminal. The child runs in a process group of its own (see ``processes``): the first stop
signal is sent to the whole group, a second one (or the end of the grace period) kills it.
When the script has exited, what it left running gets SIGTERM, then SIGKILL after the grace
period, and the output is drained for at most ``DRAIN_TIMEOUT`` seconds in all.

A terminal stays usable: when yanex runs in the foreground of one, what is typed there is
passed to the script's stdin (the script's group is not the terminal's, so it could not read
the terminal itself).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

from yanex import ending, processes

# How many bytes of stderr are kept for the reason of a failure.
STDERR_TAIL_BYTES = 8192
# How long the output pipes may stay open, in all, after the script and what it left running
# ended (a process that left the group may hold them) before yanex stops waiting for them.
DRAIN_TIMEOUT = 5.0
_TICK = 0.5  # how often the wait loop looks at the clock when no signal comes
# The same stop signal again within this many seconds is a copy of the first (timeout(1) and
# job schedulers send it to yanex and to yanex's group, microseconds apart), not a second stop;
# a person's second Ctrl-C comes 0.1 s or more after the first, and kills.
SAME_STOP = 0.05


# How much the tee reads at once, and asks the pipe to hold (Linux: F_SETPIPE_SZ): large
# reads and writes keep its cost per byte, not per line.
_CHUNK = 1 << 20


# How long the tee waits for the rest of a line the script wrote in pieces (an unbuffered
# print() writes its text and its newline apart): whole lines keep runs that share a terminal
# (run_multiple, ``-j``) from cutting into each other's lines; a progress bar's ``\r``
# updates are held at most this long.
_LINE_WAIT = 0.05


def _read_lines(fd: int) -> bytes:
    """What the pipe holds, up to the end of a line when the rest comes within _LINE_WAIT."""
    chunk = os.read(fd, _CHUNK)
    deadline = time.monotonic() + _LINE_WAIT
    waiting = None
    while chunk and not chunk.endswith(b"\n") and len(chunk) < _CHUNK:
        left = deadline - time.monotonic()
        if waiting is None:
            waiting = select.poll()  # not select(): a descriptor past 1023 is fine
            waiting.register(fd, select.POLLIN)
        if left <= 0 or not waiting.poll(left * 1000):
            break
        more = os.read(fd, _CHUNK - len(chunk))
        if not more:  # the end of the output
            break
        chunk += more
    return chunk


def _widen(pipe: IO[bytes]) -> None:
    import fcntl

    if hasattr(fcntl, "F_SETPIPE_SZ"):
        with contextlib.suppress(OSError):  # capped by /proc/sys/fs/pipe-max-size
            fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, _CHUNK)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class _Tee(threading.Thread):
    """Copy one output pipe of the script, as bytes, to a log file and to the terminal."""

    def __init__(
        self, pipe: IO[bytes], log_path: Path, terminal: IO[bytes] | None, keep_tail: bool
    ):
        super().__init__(daemon=True, name=f"yanex-tee-{log_path.name}")
        _widen(pipe)
        self.pipe = pipe
        self.log_fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self.log_name = log_path.name
        self.terminal = terminal
        # A terminal (or any stream) with a file descriptor is written with os.write: no
        # buffer to copy into and flush at every chunk.
        self.terminal_fd = _fileno(terminal)
        if self.terminal_fd is not None and terminal is not None:
            with contextlib.suppress(OSError, ValueError):
                terminal.flush()  # what yanex wrote before goes first
        self.tail = bytearray() if keep_tail else None
        self.write_error: OSError | None = None

    def run(self) -> None:
        fd = self.pipe.fileno()
        try:
            while chunk := _read_lines(fd):
                self._write_log(chunk)
                self._write_terminal(chunk)
                if self.tail is not None:
                    self.tail += chunk[-STDERR_TAIL_BYTES:]
                    del self.tail[:-STDERR_TAIL_BYTES]
        finally:
            os.close(self.log_fd)

    def _write_log(self, chunk: bytes) -> None:
        if self.write_error is not None:
            return
        try:
            _write_all(self.log_fd, chunk)
        except OSError as exc:  # e.g. a full disk: keep the script's output flowing to the terminal
            self.write_error = exc

    def _write_terminal(self, chunk: bytes) -> None:
        if self.terminal is None:
            return
        try:
            if self.terminal_fd is not None:
                _write_all(self.terminal_fd, chunk)
            else:
                self.terminal.write(chunk)
                self.terminal.flush()
        except (OSError, ValueError):  # a closed pipe (`| head`) must not stop the run
            self.terminal = None


def _fileno(stream: IO[bytes] | None) -> int | None:
    if stream is None:
        return None
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):  # a notebook's stream, an in-memory buffer
        return None


def _in_terminal_foreground() -> bool:
    try:
        return os.isatty(0) and os.tcgetpgrp(0) == os.getpgrp()
    except OSError:
        return False


def _has_exited(pid: int) -> bool:
    """Has the child exited (without reaping it: its Popen still waits for it)?"""
    if not hasattr(os, "waitid"):
        return False
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


class _TerminalInput(threading.Thread):
    """Copy what is typed at the terminal to one script's stdin while yanex is in the
    foreground (a background process that read the terminal would be stopped), and only
    while that script runs: a line typed after it ended stays for the next script of a
    batch (read and not delivered, it is handed on), never lost."""

    _left = bytearray()  # read for a script that had ended: the next one's
    _left_lock = threading.Lock()

    def __init__(self, pipe: IO[bytes], pid: int) -> None:
        super().__init__(daemon=True, name="yanex-stdin")
        self.pipe = pipe
        self.pid = pid
        self._wake_r, self._wake_w = os.pipe()

    def run(self) -> None:
        fd = self.pipe.fileno()
        try:
            with self._left_lock:
                data, self._left[:] = bytes(self._left), b""
            if data:
                self._deliver(fd, data)
            while True:
                ready, _, _ = select.select([self._wake_r], [], [], 0)
                if ready:
                    break
                if not _in_terminal_foreground():
                    select.select([self._wake_r], [], [], 0.2)
                    continue
                ready, _, _ = select.select([0, self._wake_r], [], [], 0.2)
                if self._wake_r in ready or _has_exited(self.pid):
                    break  # what is typed now is for whatever reads the terminal next
                if not ready:
                    continue
                data = os.read(0, 65536)
                if not data:  # Ctrl-D
                    break
                self._deliver(fd, data)
        except OSError:  # the script closed its stdin, or ended
            pass
        finally:
            with contextlib.suppress(OSError):
                self.pipe.close()
            os.close(self._wake_r)

    def _deliver(self, fd: int, data: bytes) -> None:
        try:
            _write_all(fd, data)
        except OSError:
            with self._left_lock:
                self._left[:0] = data  # the script ended as it came: the next one gets it
            raise

    def stop(self) -> None:
        """The script ended: stop reading the terminal for it (waits a moment for that)."""
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"\0")
        self.join(1.0)
        with contextlib.suppress(OSError):
            os.close(self._wake_w)


class Child:
    """One script, running in a process group of its own, with its output teed."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        cwd: Path | str,
        env: Mapping[str, str],
        stdout_log: Path,
        stderr_log: Path,
        stdout: IO[bytes] | None,
        stderr: IO[bytes] | None,
        grace: float,
        stdin: int | None = None,
        marker: str | None = None,
    ) -> None:
        """``stdin``: what the script reads (default: what is typed at yanex's terminal when
        yanex runs in its foreground, else yanex's own stdin); ``marker``: an entry of ``env``
        (``NAME=value``) that only this run's processes carry (see ``processes``)."""
        typed = stdin is None and _in_terminal_foreground()
        self.proc = processes.spawn(
            argv,
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.PIPE if typed else stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.pgid = self.proc.pid
        self.grace = grace
        self.received_at = 0.0  # when (monotonic) the first stop signal came
        self.marker = marker
        self.typed: _TerminalInput | None = None
        self.received: signal.Signals | None = None
        self.kill_at: float | None = None
        processes.WATCHER.watch(self.pgid, marker)
        try:
            assert self.proc.stdout is not None and self.proc.stderr is not None
            self.out = _Tee(self.proc.stdout, stdout_log, stdout, keep_tail=False)
            self.err = _Tee(self.proc.stderr, stderr_log, stderr, keep_tail=True)
            self.out.start()
            self.err.start()
            if typed:
                assert self.proc.stdin is not None
                self.typed = _TerminalInput(self.proc.stdin, self.proc.pid)
                self.typed.start()
        except BaseException:  # its logs cannot be opened: it does not run unwatched
            self.abandon()
            raise

    def abandon(self) -> None:
        """Kill the script and what it started, without waiting for its output."""
        self.kill()
        self.proc.wait()
        processes.waited(self.proc.pid)
        if self.typed is not None:
            self.typed.stop()
        processes.end_run(self.pgid, self.marker, 0.0)
        processes.run_ended()
        processes.WATCHER.unwatch(self.pgid, self.marker)

    def forward(self, signum: int) -> None:
        """Pass a signal yanex received on to the script's group: the first stop signal starts
        the grace period, a second one kills the group."""
        if not processes.is_stop(signum):
            processes.signal_group(self.pgid, signum)  # Ctrl-Z and fg
            return
        now = time.monotonic()
        if self.received is None:
            self.received = signal.Signals(signum)
            self.received_at = now
            self.kill_at = now + self.grace
            processes.signal_group(self.pgid, signum)
        elif signum == self.received and now - self.received_at < SAME_STOP:
            return  # a copy of the first: timeout(1) signals yanex and its group at once
        else:
            self.kill()

    def kill(self) -> None:
        processes.signal_group(self.pgid, signal.SIGKILL)

    def poll(self) -> int | None:
        """The script's return code once it exited; kills its group when the grace is over."""
        returncode = self.proc.poll()
        if returncode is None and self.kill_at is not None and time.monotonic() >= self.kill_at:
            self.kill()
        return returncode

    def timeout(self) -> float:
        """How long the caller may wait for a signal before looking at this child again."""
        if self.kill_at is None:
            return _TICK
        return min(_TICK, max(0.0, self.kill_at - time.monotonic()))

    def finish(self, next_signal: Callable[[float], int | None] | None = None) -> ending.Ending:
        """After the script exited: end what it left running, drain its output (bounded),
        and say how it ended. A stop signal during the drain stops the waiting."""
        returncode = self.proc.wait()
        processes.waited(self.proc.pid)
        if self.typed is not None:
            self.typed.stop()
        grace = 0.0 if self.received is not None else self.grace
        processes.end_run(self.pgid, self.marker, grace)
        processes.run_ended()
        processes.WATCHER.unwatch(self.pgid, self.marker)
        deadline = time.monotonic() + DRAIN_TIMEOUT
        for tee in (self.out, self.err):
            while tee.is_alive() and time.monotonic() < deadline:
                tee.join(min(0.05, deadline - time.monotonic()))
                if next_signal is not None and processes.is_stop(next_signal(0)):
                    deadline = time.monotonic()  # asked to stop: the output is what it is
        problems = [
            f"{tee.log_name} is incomplete: {tee.write_error.strerror}"
            for tee in (self.out, self.err)
            if tee.write_error is not None
        ]
        return ending.of_exit(returncode, self.received, bytes(self.err.tail or b""), problems)


def run(
    argv: Sequence[str],
    *,
    cwd: Path | str,
    env: Mapping[str, str],
    stdout_log: Path,
    stderr_log: Path,
    stdout: IO[bytes] | None,
    stderr: IO[bytes] | None,
    grace: float,
    next_signal: Callable[[float], int | None],
    started: Callable[[], None] = lambda: None,
    marker: str | None = None,
) -> ending.Ending:
    """Run ``argv`` to its end, passing on the stop signals ``next_signal`` gives (it waits
    at most its argument's seconds for one: ``processes.Signals.next`` in the main thread, a
    queue the runner fills in a member's thread).

    ``started`` is called once the child runs; ``marker`` marks its processes (see
    ``Child``). OSError: the child could not be started. Any other exception (a bug) kills the
    child's group before it propagates.
    """
    child = Child(
        argv,
        cwd=cwd,
        env=env,
        stdout_log=stdout_log,
        stderr_log=stderr_log,
        stdout=stdout,
        stderr=stderr,
        grace=grace,
        marker=marker,
    )
    try:
        started()
        while child.poll() is None:
            signum = next_signal(child.timeout())
            if signum == signal.SIGCHLD:
                _reap_now_and_then()  # what the run left re-parented to yanex, ended since
            elif signum is not None:
                child.forward(signum)
                processes.suspend_self(signum)
        return child.finish(next_signal)
    except BaseException:
        child.abandon()
        raise


_last_reap = 0.0


def _reap_now_and_then() -> None:
    """Reap ended orphans at most once a second (many children ending at once cost one)."""
    global _last_reap
    if time.monotonic() - _last_reap >= 1.0:
        _last_reap = time.monotonic()
        processes.reap_orphans()
