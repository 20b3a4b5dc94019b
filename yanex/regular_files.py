"""Reading a file of an experiment folder, which may not be a file: a FIFO, a device or a
socket put in its place is refused (BadRecord), never read from.

Below ``record`` and ``results_file``, which read every folder file through here.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


class BadRecord(Exception):
    """An experiment folder whose metadata cannot be used; the message says why."""


_KINDS = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a device"),
    (stat.S_ISBLK, "a device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a folder"),
)


def _not_a_file(path: Path | str, mode: int) -> BadRecord:
    kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    return BadRecord(f"{os.path.basename(path)} is {kind}, not a file")


def open_regular(path: Path | str) -> tuple[int, os.stat_result]:
    """A read-only descriptor of ``path``, a regular file (or a link to one), and its stat.

    A FIFO, device or socket put in an experiment folder is never read from: a FIFO would
    block the reader for ever, a device never end. It is opened without blocking (which a
    FIFO with no writer allows at once) and refused (BadRecord) by what ``fstat`` says.
    FileNotFoundError when there is nothing; BadRecord for any other reason it cannot be read.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise BadRecord(f"{os.path.basename(path)} cannot be read: {exc.strerror or exc}") from exc
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise _not_a_file(path, st.st_mode)
    return fd, st


def read_regular(path: Path | str) -> bytes:
    """The bytes of a regular file (see :func:`open_regular`)."""
    return read_regular_stat(path)[0]


def read_regular_stat(path: Path | str) -> tuple[bytes, os.stat_result]:
    """The bytes of a regular file and its stat, from one descriptor (see
    :func:`open_regular`)."""
    fd, st = open_regular(path)
    try:
        chunks = []
        while True:
            chunk = os.read(fd, max(st.st_size + 1, 65536))
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks), st
    except OSError as exc:
        raise BadRecord(f"{os.path.basename(path)} cannot be read: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)


def fingerprint(st: os.stat_result) -> str:
    """What changes when a file is written or replaced: its mtime, size and inode."""
    return f"{st.st_mtime_ns}:{st.st_size}:{st.st_ino}"


def first_of(folder: Path | str, names: tuple[str, ...]) -> tuple[bytes, os.stat_result, str]:
    """The first of the files ``names`` the folder holds (yanex 0.6's, newest name first): its
    bytes, stat and name (FileNotFoundError when it holds none)."""
    for name in names:
        try:
            return (*read_regular_stat(os.path.join(folder, name)), name)
        except FileNotFoundError:
            continue
    raise FileNotFoundError(names[0])
