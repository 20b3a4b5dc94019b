"""The store's change journal: which experiments changed, for every index that reads the store.

Machines that share a store (over NFS, say) each keep an index of their own, and cannot see
each other's edits cheaply: a tag added on one machine changes one ``metadata.json`` among
100,000, and directory times are cached by network filesystems. So every write to an
experiment's record (metadata written or changed, a grid shown, a folder archived, unarchived
or deleted) appends the experiment's ID to ``$YANEX_HOME/changes.log``, and each index reads
the journal on from where it stopped at its last look, re-reading the experiments named
there. An edit, a new run or an ending made on one machine is then seen by the next command
on any other.

- Writers append whole lines under the file's lock (``O_APPEND``, ``store.append_locked``);
  readers never write it. A line is an ID and a newline (9 bytes): a million changes are
  9 MB, and a reader reads only what came since its last look. (On NFS mounted ``nolock``,
  two machines' appends may mix: a line that is no ID is skipped, and that change is found
  by the periodic re-check instead.)
- A journal that cannot be written (a read-only store, a full disk) never stops the change
  itself: other indexes then find it by their periodic re-check of finished experiments.
- A reader's position is the file's identity (inode) and an offset: a journal removed,
  replaced or cut shorter is noticed, and the reader re-checks every experiment instead.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path

from yanex import store

JOURNAL = "changes.log"  # in YANEX_HOME
# Read at most this much of the journal per look (about 900,000 changes): a reader that far
# behind re-checks every experiment instead.
MAX_READ = 8 * 1024 * 1024


def path(home: Path) -> Path:
    return home / JOURNAL


def note(home: Path, ids: Iterable[str]) -> None:
    """Append these experiments' IDs: they changed. Best effort (see the module docstring)."""
    data = "".join(f"{experiment_id}\n" for experiment_id in ids).encode("ascii")
    if not data:
        return
    with contextlib.suppress(OSError):
        fd = os.open(path(home), os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            store.append_locked(fd, data)
        finally:
            os.close(fd)


def note_folder(folder: Path) -> None:
    """Append the ID of the experiment in ``folder`` (``<home>/experiments/<id>`` or
    ``<home>/archived/<id>``); a folder outside a store is not noted."""
    home = folder.parent.parent
    roots = (store.experiments_root(home), store.archived_root(home))
    if folder.parent in roots and store.is_valid_id(folder.name):
        note(home, [folder.name])


def end(home: Path) -> str:
    """The position just past the journal's last line now (where a new index starts)."""
    try:
        st = os.stat(path(home))
    except OSError:
        return "0:0"  # no journal yet: it starts empty
    return f"{st.st_ino}:{st.st_size}"


def read_since(home: Path, position: str) -> tuple[list[str] | None, str]:
    """The experiments noted since ``position``, each once, and the new position.

    None instead of the list when the changes since ``position`` cannot be known (the
    journal was replaced, cut, or is too far ahead): the caller re-checks every experiment.
    """
    inode, _, offset_text = position.partition(":")
    try:
        fd = os.open(path(home), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return ([] if position == "0:0" else None), "0:0"
    except OSError:
        return [], position  # unreadable now: looked at again next time
    try:
        st = os.fstat(fd)
        offset = int(offset_text) if offset_text.isdigit() else -1
        if inode == "0" and offset == 0:  # there was none: read it from its start
            inode = str(st.st_ino)
        if str(st.st_ino) != inode or not 0 <= offset <= st.st_size:
            return None, f"{st.st_ino}:{st.st_size}"
        if st.st_size - offset > MAX_READ:
            return None, f"{st.st_ino}:{st.st_size}"
        data = os.pread(fd, st.st_size - offset, offset)
    except OSError:
        return [], position
    finally:
        os.close(fd)
    whole = data[: data.rfind(b"\n") + 1]  # a line being written is read next time
    names = whole.decode("ascii", "replace").split()
    ids = list(dict.fromkeys(name for name in names if store.is_valid_id(name)))
    return ids, f"{inode}:{offset + len(whole)}"
