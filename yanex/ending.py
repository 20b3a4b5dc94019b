"""How a run ended: one type from the child process to a batch's summary and ``yanex.launch``.

The supervisor makes an :class:`Ending` when the script exits (status, exit code, reason, what
yanex exits with, the stop signal that ended it); the launcher records it and adds where the
run is and how long it took; a batch counts the endings of its members; ``yanex.launch`` returns
them as its ``Result``. Statuses are those of ``record.Status``. A member listed to run that
did not run this time keeps its recorded status (``staged``, or None when it is gone), and
:class:`NotRun` says why.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from yanex.record import Status


class NotRun:
    """Why a member a batch listed did not run this time (``Ending.why``)."""

    REFUSED = "refused"  # its code differs from what was staged: it stays staged
    STOPPED = "stopped"  # a stop signal came before it started: it stays staged
    ELSEWHERE = "elsewhere"  # another runner holds it, or ran it
    GONE = "gone"  # deleted, emptied or unreadable since it was listed: it cannot be run
    WAITING = "waiting"  # a dependency of it did not run (or runs elsewhere): it stays staged


@dataclass
class Ending:
    """How one run ended, or why it did not run (``why``); ``yanex.launch``'s ``Result``."""

    id: str | None
    status: str | None  # a record.Status; staged when it did not run; None when it is gone
    exit_code: int | None = None  # the script's (negative: killed by that signal)
    dir: Path | None = None
    name: str | None = None
    duration: float | None = None  # seconds
    error: str | None = None  # why it failed or was cancelled, or why it did not run
    cli_exit_code: int = 0  # what yanex exits with for this run alone
    stopped_by: signal.Signals | None = None  # the stop signal that cancelled it
    why: str | None = None  # a NotRun reason; None when it ran
    warnings: list[str] = field(default_factory=list)  # what could not be logged during the run

    @property
    def results(self) -> list[dict[str, Any]]:
        """The lines the script logged with ``log_results``, oldest first (a line still being
        written is left out)."""
        from yanex import results_file

        return results_file.read_results(self.dir) if self.dir is not None else []

    @property
    def reason(self) -> str | None:
        """The error in one line: how it ended and the exception's last line
        (``exited with code 1: ValueError: bad data``)."""
        if not self.error:
            return None
        lines = [line.strip() for line in self.error.splitlines() if line.strip()]
        head = lines[0].rstrip(":")
        return f"{head}: {lines[-1]}" if len(lines) > 1 else head


def of_exit(
    returncode: int,
    received: signal.Signals | None,
    stderr_tail: bytes,
    warnings: list[str] | None = None,
) -> Ending:
    """The ending of a script that exited with ``returncode`` after yanex received the stop
    signal ``received`` (None if none), its stderr ending with ``stderr_tail``."""
    warnings = list(warnings or [])
    if received is not None:
        return Ending(
            None,
            Status.CANCELLED,
            returncode,
            error=f"cancelled by {received.name}",
            cli_exit_code=128 + received,
            stopped_by=received,
            warnings=warnings,
        )
    if returncode == 0:
        return Ending(None, Status.COMPLETED, 0, warnings=warnings)
    return Ending(
        None,
        Status.FAILED,
        returncode,
        error=failure_reason(returncode, stderr_tail),
        cli_exit_code=returncode if returncode > 0 else 128 - returncode,
        warnings=warnings,
    )


# What a script asks its ending to be when its exit code cannot say it (yanex 0.6's
# ``cancel(message)`` under ``yanex run``): ``{"status": "cancelled", "reason": ...}`` in
# this file of the experiment's folder, written just before the script exits non-zero.
SCRIPT_ENDING = "ending.json"


def asked_by_script(folder: Path, end: Ending) -> Ending:
    """``end``, or ``cancelled`` with the script's reason when the script asked for that
    (``yanex.cancel()``) and then exited with an error (a signal-ended or completed run is
    what happened)."""
    import json

    if end.status != Status.FAILED or end.exit_code is None or end.exit_code <= 0:
        return end
    try:
        asked = json.loads((folder / SCRIPT_ENDING).read_bytes())
    except (OSError, ValueError):
        return end
    if not isinstance(asked, dict) or asked.get("status") != Status.CANCELLED:
        return end
    reason = str(asked.get("reason") or "")
    return Ending(
        end.id,
        Status.CANCELLED,
        end.exit_code,
        error=f"cancelled by the script: {reason}" if reason else "cancelled by the script",
        cli_exit_code=end.cli_exit_code,
        warnings=end.warnings,
    )


def failed(reason: str) -> Ending:
    """A run that ended before (or without) its script's exit: it could not be started."""
    return Ending(None, Status.FAILED, error=reason, cli_exit_code=1)


# Lines a framework adds after the script's own error, which say nothing about it.
_BOILERPLATE = ("Set the environment variable HYDRA_FULL_ERROR=1 for a complete stack trace.",)


def failure_reason(returncode: int, stderr_tail: bytes, lines: int = 10) -> str:
    """Why a script failed: how it ended, and the last lines of its stderr (Hydra's advice to
    set HYDRA_FULL_ERROR left out, so that the last line is the app's own error)."""
    if returncode < 0:
        try:
            head = f"killed by signal {signal.Signals(-returncode).name}"
        except ValueError:
            head = f"killed by signal {-returncode}"
    else:
        head = f"exited with code {returncode}"
    text = stderr_tail.decode("utf-8", "replace")
    kept = [line for line in text.splitlines() if line.strip() and line.strip() not in _BOILERPLATE]
    if not kept:
        return head
    return head + ":\n" + "\n".join(kept[-lines:])


def recorded(folder: Path, meta: dict[str, Any]) -> Ending:
    """The ending an experiment's metadata records: what every reader sees of it (a run
    recorded by someone else, a reaper or another runner, is told as they recorded it)."""
    status, code = meta.get("status"), meta.get("exit_code")
    if status == Status.COMPLETED or status not in Status.ENDED:
        cli_code = 0
    elif isinstance(code, int) and code != 0:
        cli_code = code if code > 0 else 128 - code
    else:
        cli_code = 1
    return Ending(
        folder.name,
        status,
        code,
        folder,
        meta.get("name"),
        meta.get("duration"),
        meta.get("error"),
        cli_exit_code=cli_code,
    )
