"""Staging a grid all or none: members written out of sight, shown together, and what an
interrupted staging left behind undone (or completed) by the next command.

A folder without ``metadata.json`` is no experiment to any reader, so each member's metadata
is first written as :data:`PENDING` beside its other files. A journal in
``$YANEX_HOME/staging/`` lists the members as their folders are made (``<token>.writing``,
with the staging process's identity). Once every file and folder is on the disk (each
fsynced: no machine-wide sync), the journal is renamed ``<token>.committed`` (the one atomic
step that decides), then each member's pending metadata is renamed ``metadata.json``, and
the journal is removed.

Stop signals (SIGINT, SIGTERM, SIGHUP) before the commit remove every member written; after
it, they wait until the grid is whole. A SIGKILL (or a power loss) leaves either a
``writing`` journal, whose members nobody sees and which :func:`recover` removes once its
process is gone, or a ``committed`` one, whose members :func:`recover` shows. The runner and
the index call :func:`recover` when they read the store; the runner lists what is staged
under a shared lock that a staging holds exclusively while it shows its grid, so it never
sees a partial grid.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any

from yanex import journal, processes, store
from yanex.identity import ProcessId

PENDING = ".staged-metadata.json"  # a member's metadata until its grid is whole
JOURNALS = "staging"  # in YANEX_HOME
_WRITING, _COMMITTED = ".writing", ".committed"
_LOCK = ".lock"
# A journal of another host whose staging wrote nothing for this long is abandoned.
_ABANDONED_SECONDS = 300.0
_SYNC_THREADS = 8  # fsyncs in flight at once: the disk batches them into fewer commits


class Stopped(KeyboardInterrupt):
    """A stop signal came while the grid was being written: nothing of it is kept."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _fsync_path(path: Path | str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(folder: Path) -> None:
    """Every file written in a member's folder (its subfolders too), then the folders."""
    for entry in os.scandir(folder):
        if entry.is_dir(follow_symlinks=False):
            _fsync_tree(Path(entry.path))
        elif entry.is_file(follow_symlinks=False):
            _fsync_path(entry.path)
    _fsync_path(folder)


class Batch:
    """One grid being staged (a context manager): ``add`` each member's folder as it is made,
    ``write_metadata`` last, then ``commit``. Leaving it without a commit removes them all."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.root = store.experiments_root(home)
        self.journals = home / JOURNALS
        self.token = os.urandom(8).hex()
        self.journal = self.journals / f"{self.token}{_WRITING}"
        self.folders: list[Path] = []
        self.syncing: list[Future[None]] = []
        self.pool: ThreadPoolExecutor | None = None
        self.signals = processes.Signals()
        self._fd = -1

    def __enter__(self) -> Batch:
        owner = ProcessId.current().to_metadata()
        try:
            store.make_private_dirs(self.journals)
            store.make_private_dirs(self.root)
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND
            self._fd = os.open(self.journal, flags, 0o600)
            os.write(self._fd, (json.dumps(owner) + "\n").encode())
        except OSError as exc:
            if self._fd >= 0:
                os.close(self._fd)
                with contextlib.suppress(OSError):
                    self.journal.unlink()
            raise store.StoreError(
                f"cannot stage in {self.home}: {exc.strerror or exc}",
                hint="Check that the disk has space and YANEX_HOME is writable; nothing was "
                "staged.",
            ) from exc
        self.pool = ThreadPoolExecutor(_SYNC_THREADS, thread_name_prefix="yanex-fsync")
        self.signals.__enter__()
        return self

    def check(self) -> None:
        """Raise Stopped if a stop signal came (Ctrl-Z still suspends, as anywhere)."""
        while (signum := self.signals.next(0)) is not None:
            if processes.is_stop(signum):
                raise Stopped(signum)
            processes.suspend_self(signum)

    def new_folder(self) -> tuple[str, Path]:
        """Reserve a member's ID by making its folder (0700), listed in the journal first:
        whenever this process is killed, every folder it made is found again."""
        try:
            for _ in range(100):
                experiment_id = os.urandom(store.ID_LENGTH // 2).hex()
                os.write(self._fd, f"{experiment_id}\n".encode())
                folder = self.root / experiment_id
                try:
                    folder.mkdir(mode=0o700)
                except FileExistsError:  # another experiment's: never to be removed
                    os.write(self._fd, f"-{experiment_id}\n".encode())
                    continue
                self.folders.append(folder)
                return experiment_id, folder
        except OSError as exc:
            raise store.StoreError(
                f"cannot create an experiment folder in {self.root}: {exc.strerror or exc}",
                hint="Check that the disk has space and YANEX_HOME is writable.",
            ) from exc
        raise store.StoreError(f"no free experiment ID found in {self.root}")

    def write_metadata(self, folder: Path, text: str) -> None:
        """A member's metadata, written last, out of sight until the commit; its folder is
        then sent to the disk while the next member is made."""
        store.write_new(folder / PENDING, text.encode("utf-8"))
        assert self.pool is not None
        self.syncing.append(self.pool.submit(_fsync_tree, folder))

    def commit(self) -> None:
        """Wait for the disk, then show every member: from here on, all of them are kept."""
        assert self.pool is not None
        for future in self.syncing:
            future.result()  # an error (EIO, a full disk) undoes the staging
        _fsync_path(self.root)  # the members' folders themselves
        os.fsync(self._fd)
        _fsync_path(self.journals)
        os.close(self._fd)
        self._fd = -1
        committed = self.journals / f"{self.token}{_COMMITTED}"
        with _lock(self.home, fcntl.LOCK_EX):  # no runner lists the store meanwhile
            os.rename(self.journal, committed)  # the decision: from here, roll forward
            self.journal = committed
            _fsync_path(self.journals)
            _show(self.folders, self.pool)
            with contextlib.suppress(OSError):
                committed.unlink()
        journal.note(self.home, [folder.name for folder in self.folders])

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        late: int | None = None
        try:
            if self._fd >= 0:
                os.close(self._fd)
            if self.journal.name.endswith(_WRITING):  # not committed: undo it all
                for future in self.syncing:
                    future.cancel()
                if self.pool is not None:
                    self.pool.shutdown(wait=True)
                for folder in self.folders:
                    store.remove_experiment_dir(folder)
                with contextlib.suppress(OSError):
                    self.journal.unlink()
            elif self.pool is not None:
                self.pool.shutdown(wait=True)
            # A stop signal that came while the grid was being shown: it is whole now, and
            # the signal does what it would have done.
            while (signum := self.signals.next(0)) is not None:
                if processes.is_stop(signum):
                    late = signum
                else:
                    processes.suspend_self(signum)
        finally:
            self.signals.__exit__(None, None, None)
        signum = exc.signum if isinstance(exc, Stopped) else late
        if signum is not None:
            signal.raise_signal(signum)  # SIGINT: KeyboardInterrupt; SIGTERM: the end


def _show(folders: list[Path], pool: ThreadPoolExecutor) -> None:
    """Rename each member's pending metadata to ``metadata.json`` (already done: skipped),
    and wait until the renames are on the disk."""
    shown = []
    for folder in folders:
        try:
            os.rename(folder / PENDING, folder / store.METADATA)
        except FileNotFoundError:
            continue  # shown already (by a recovery), or removed since
        shown.append(folder)
    for future in [pool.submit(_fsync_path, folder) for folder in shown]:
        with contextlib.suppress(OSError):
            future.result()


def _read_journal(path: Path) -> tuple[ProcessId | None, list[str]]:
    """Who wrote a journal, and the members it lists (a line being written is left out)."""
    lines = path.read_bytes().split(b"\n")
    owner: Any = None
    with contextlib.suppress(ValueError):
        owner = json.loads(lines[0])
    names = [line.decode("ascii", "replace") for line in lines[1:-1]]
    taken = {name[1:] for name in names if name.startswith("-")}  # another's, by chance
    ids = [name for name in names if store.is_valid_id(name) and name not in taken]
    return ProcessId.from_metadata(owner), ids


@contextlib.contextmanager
def _lock(home: Path, how: int) -> Iterator[None]:
    """The store's staging lock: a staging shows its grid holding it exclusively; a runner
    lists the staged members holding it shared. Without it (a read-only store): nothing."""
    journals = home / JOURNALS
    fd = -1
    with contextlib.suppress(OSError):
        store.make_private_dirs(journals)
        fd = os.open(journals / _LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if fd >= 0:
            fcntl.flock(fd, how)
        yield
    finally:
        if fd >= 0:
            os.close(fd)


@contextlib.contextmanager
def settled(home: Path) -> Iterator[None]:
    """While the caller lists staged members: every interrupted staging finished or undone,
    and no grid being shown meanwhile (it waits), so that a grid is listed whole or not at
    all."""
    with _lock(home, fcntl.LOCK_SH):
        recover(home)
        yield


def recover(home: Path) -> None:
    """Finish what interrupted stagings left: a committed grid is shown whole; a grid not
    committed whose process is gone is removed. Best effort (a read-only store keeps it)."""
    journals = home / JOURNALS
    try:
        names = os.listdir(journals)
    except OSError:
        return
    for name in names:
        path = journals / name
        if name == _LOCK:
            continue
        with contextlib.suppress(OSError):
            if name.endswith(_COMMITTED):
                _, ids = _read_journal(path)
                root = store.experiments_root(home)
                with ThreadPoolExecutor(_SYNC_THREADS) as pool:
                    _show([root / i for i in ids], pool)
                path.unlink()
                journal.note(home, ids)
            elif name.endswith(_WRITING) and _abandoned(path):
                _, ids = _read_journal(path)
                root = store.experiments_root(home)
                for experiment_id in ids:
                    if not (root / experiment_id / store.METADATA).exists():
                        store.remove_experiment_dir(root / experiment_id)
                path.unlink()


def _abandoned(path: Path) -> bool:
    """Is the process that was writing this journal gone (this host), or silent for long
    (another host's)?"""
    owner, _ = _read_journal(path)
    if owner is not None and owner.is_here():
        return owner.is_gone()
    return time.time() - path.stat().st_mtime > _ABANDONED_SECONDS
