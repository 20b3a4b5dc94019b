"""The one git runner: every git command of yanex runs through ``git`` (run to its end) or
``start`` (started now, collected with ``output``), in an environment of its own.

Whatever the user's environment and config say, a command is read-only, speaks English, takes
paths literally, never waits for a password, and works on the repository that holds the path
it is given (see ``_GIT_ENV``). The options that fix every byte of a patch are here too
(``PATCH_CONFIG``, ``PATCH_OPTIONS``): ``git.patch`` and ``yanex diff`` write the same shape;
and ``unquote``, a path as git quotes it in a patch, for those that read one back.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from yanex.errors import GitStateError

# Git's empty tree: what a repository without commits is compared against.
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"

# Read-only: `git status` must not take index.lock, or concurrent runs could collide in it.
# English messages: "not a git repository" is recognised in them. Paths are literal, never
# globs (a script named exp[1].py must not match exp1.py), whatever the user's GIT_*_PATHSPECS.
# Never a prompt for credentials: nothing here may wait for a user.
_GIT_ENV = {
    "GIT_OPTIONAL_LOCKS": "0",
    "LC_ALL": "C",
    "GIT_LITERAL_PATHSPECS": "1",
    "GIT_TERMINAL_PROMPT": "0",
}
# Variables that change what a diff prints (GIT_DIFF_OPTS even overrides -U on the command
# line), and those that point git at another repository than the one holding the path given
# (set inside a git hook, say): the repository is always the one that holds the path.
_DROPPED_ENV = (
    "GIT_DIFF_OPTS",
    "GIT_EXTERNAL_DIFF",
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_COMMON_DIR",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_PREFIX",
)
# Everything that shapes git.patch, so that its bytes are the same whatever the config:
# full hashes, a/ b/ prefixes, no colour, no external tool or textconv, 3 lines of context,
# a rename written as a deletion and a new file (no similarity threshold or rename limit), and
# binary files as binary patches. Config that plumbing still reads is overridden with -c.
PATCH_CONFIG = ("-c", "core.quotePath=true", "-c", "diff.suppressBlankEmpty=false")
PATCH_OPTIONS = (
    "--patch",
    "--binary",
    "--full-index",
    "--no-color",
    "--no-ext-diff",
    "--no-textconv",
    "--no-renames",
    "--unified=3",
    "--inter-hunk-context=0",
)


class NotARepository(Exception):
    """The script is not in a git repository (or git cannot be run); carries the reason."""


def _environ(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.endswith("_PATHSPECS") and key not in _DROPPED_ENV
    }
    return env | _GIT_ENV | dict(extra or {})


def start(cwd: Path, *args: str, env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start one git command; the caller collects it with ``output``. ``env``: variables
    of this command only (a temporary index)."""
    try:
        return subprocess.Popen(
            ["git", *args],
            cwd=cwd,
            env=_environ(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    except FileNotFoundError as exc:
        raise NotARepository("git cannot be run (no `git` found on PATH)") from exc


def git(
    cwd: Path, *args: str, env: Mapping[str, str] | None = None, input: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run one git command to its end, as every git command of yanex runs (see ``_GIT_ENV``);
    the caller reads its return code. NotARepository when git cannot be run."""
    try:
        return subprocess.run(
            ["git", *args],
            cwd=cwd,
            env=_environ(env),
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
        )
    except FileNotFoundError as exc:
        raise NotARepository("git cannot be run (no `git` found on PATH)") from exc


def output(proc: subprocess.Popen[bytes], ok: tuple[int, ...] = (0,)) -> str:
    return output_bytes(proc, ok).decode("utf-8", "replace")  # names for messages, never opened


def output_bytes(proc: subprocess.Popen[bytes], ok: tuple[int, ...] = (0,)) -> bytes:
    out, err = proc.communicate()
    if proc.returncode not in ok:
        message = err.decode(errors="replace").strip() or f"exit code {proc.returncode}"
        raise GitStateError(f"`git {' '.join(proc.args[1:])}` failed: {message}")
    return out


def collect(procs: Sequence[subprocess.Popen[bytes]]) -> None:
    """End what is still running of ``procs`` (after an error in another of them)."""
    for proc in procs:
        if proc.returncode is None:
            proc.kill()
            proc.communicate()


def rev_parse(proc: subprocess.Popen[bytes], path: Path) -> list[Path]:
    """The paths a ``git rev-parse`` printed, one a line; NotARepository outside one."""
    out, err = proc.communicate()
    if proc.returncode != 0:
        message = err.decode(errors="replace").strip()
        if "not a git repository" in message:
            raise NotARepository(f"{path} is not in a git repository")
        if "must be run in a work tree" in message:
            raise NotARepository(f"{path} is not in a git working tree")
        raise GitStateError(f"git cannot read the repository at {path}: {message}")
    return [Path(os.fsdecode(line)).resolve() for line in out.split(b"\n") if line]


_C_ESCAPES = {b"a": 7, b"b": 8, b"t": 9, b"n": 10, b"v": 11, b"f": 12, b"r": 13}


def unquote(name: bytes) -> bytes:
    """A path as a diff header writes it: in C quotes when it holds unusual bytes (``\\303``)."""
    if not (len(name) > 1 and name.startswith(b'"') and name.endswith(b'"')):
        return name

    def byte(escape: re.Match[bytes]) -> bytes:
        code = escape[1]
        return bytes([int(code, 8) if len(code) == 3 else _C_ESCAPES.get(code, code[0])])

    return re.sub(rb"\\([0-7]{3}|.)", byte, name[1:-1])
