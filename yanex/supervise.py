"""Running one script as a child process: its output teed, stop signals forwarded, a grace
period, and how it ended.

The launcher decides what a run is and records it; this module only runs the child:
stdout and stderr are copied, as bytes, to the experiment's log files and (when given) to the
terminal; a stop signal sent to yanex reaches the script once; a script still running after
the grace period (or at a second signal) is killed.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from yanex import processes

# How many bytes of stderr are kept for the reason of a failure.
STDERR_TAIL_BYTES = 8192
# How long the output pipes may stay open after the script exited (a background process it
# started may hold them) before yanex stops waiting for them.
DRAIN_TIMEOUT = 5.0


@dataclass
class ChildEnd:
    """How the child ended: its return code (negative: killed by that signal), the stop
    signal yanex received (None if none), the tail of its stderr, and log write problems."""

    returncode: int
    received: signal.Signals | None
    stderr_tail: bytes
    log_problems: list[str] = field(default_factory=list)


class _Tee(threading.Thread):
    """Copy one output pipe of the script, as bytes, to a log file and to the terminal."""

    def __init__(
        self, pipe: IO[bytes], log_path: Path, terminal: IO[bytes] | None, keep_tail: bool
    ):
        super().__init__(daemon=True, name=f"yanex-tee-{log_path.name}")
        self.pipe = pipe
        self.log_fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self.log_name = log_path.name
        self.terminal = terminal
        self.tail = bytearray() if keep_tail else None
        self.write_error: OSError | None = None

    def run(self) -> None:
        fd = self.pipe.fileno()
        try:
            while chunk := os.read(fd, 65536):
                self._write_log(chunk)
                self._write_terminal(chunk)
                if self.tail is not None:
                    self.tail += chunk
                    del self.tail[:-STDERR_TAIL_BYTES]
        finally:
            os.close(self.log_fd)

    def _write_log(self, chunk: bytes) -> None:
        if self.write_error is not None:
            return
        try:
            view = memoryview(chunk)
            while view:
                view = view[os.write(self.log_fd, view) :]
        except OSError as exc:  # e.g. a full disk: keep the script's output flowing to the terminal
            self.write_error = exc

    def _write_terminal(self, chunk: bytes) -> None:
        if self.terminal is None:
            return
        try:
            self.terminal.write(chunk)
            self.terminal.flush()
        except (OSError, ValueError):  # a closed pipe (`| head`) must not stop the run
            self.terminal = None


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
    started: Callable[[], None] = lambda: None,
) -> ChildEnd:
    """Run ``argv`` to its end, inside ``processes.signals_blocked()``.

    ``started`` is called once the child runs. OSError: the child could not be started. Any
    other exception (a bug) kills the child before it propagates.
    """
    import subprocess

    proc = processes.spawn(
        argv, cwd=cwd, env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        out = _Tee(proc.stdout, stdout_log, stdout, keep_tail=False)
        err = _Tee(proc.stderr, stderr_log, stderr, keep_tail=True)
        out.start()
        err.start()
        started()
        returncode, received = processes.wait_forwarding(proc, grace)
        out.join(DRAIN_TIMEOUT)
        err.join(DRAIN_TIMEOUT)
    except BaseException:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        raise
    problems = [
        f"{tee.log_name} is incomplete: {tee.write_error.strerror}"
        for tee in (out, err)
        if tee.write_error is not None
    ]
    return ChildEnd(returncode, received, bytes(err.tail or b""), problems)


def failure_reason(returncode: int, stderr_tail: bytes, lines: int = 10) -> str:
    """Why a script failed: how it ended, and the last lines of its stderr."""
    if returncode < 0:
        try:
            head = f"killed by signal {signal.Signals(-returncode).name}"
        except ValueError:
            head = f"killed by signal {-returncode}"
    else:
        head = f"exited with code {returncode}"
    text = stderr_tail.decode("utf-8", "replace")
    kept = [line for line in text.splitlines() if line.strip()]
    if not kept:
        return head
    return head + ":\n" + "\n".join(kept[-lines:])
