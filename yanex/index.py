"""The SQLite index of the store: what reading commands query instead of opening every folder.

The experiment folders stay the truth; the index is a cache of them, built from them when it
is missing, unreadable or of an older schema, and brought up to date by every command that
reads it (:meth:`Index.sync`), never by scripts or workers.

A build writes a new file and puts it in place whole (a rename where there was no usable
index, SQLite's backup into the live file for ``reindex``): a reader never sees the index
vanish, and while one process builds, others wait for it and follow its progress.

This module owns the file and its connection: opening, building, locking, errors. Its
neighbours own the rest: ``index_sync`` bringing the rows up to date with the folders (and
filling a build), ``index_location`` where the file lives (in the store, or a local cache
folder when the store is on a network filesystem or read-only; ``YANEX_INDEX``),
``index_values`` how a value is held so that SQL compares it exactly, ``index_rows`` how a
folder becomes rows (in worker processes for a big build).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from yanex import store
from yanex.errors import StoreBusy, StoreError
from yanex.index_location import INDEX_ENV, is_network_filesystem, location
from yanex.index_sync import Sync
from yanex.index_values import exact_compare

SCHEMA_VERSION = 6
FILE_NAME = f"index-v{SCHEMA_VERSION}.sqlite3"
# How long a command waits for another process's lock on the index: any statement (a reader
# meets one while the last connection checkpoints as it closes, or a first one recovers the
# WAL: a moment, longer on a slow disk under load), and a write transaction (it says who holds
# it after LOCK_NOTICE, waiting in steps of _BUSY_MS). YANEX_INDEX_WAIT sets it, in seconds.
LOCK_WAIT = 10.0
LOCK_WAIT_ENV = "YANEX_INDEX_WAIT"
LOCK_NOTICE = 1.0
_BUSY_MS = 500
# Progress of a build is reported every this many folders.
PROGRESS_EVERY = 500
_log = logging.getLogger("yanex.index")

_TABLES = """
CREATE TABLE experiments (
    id TEXT PRIMARY KEY,
    archived INTEGER NOT NULL,
    project TEXT,
    name TEXT,
    description TEXT,
    status TEXT NOT NULL,
    script TEXT,
    tags TEXT NOT NULL,              -- JSON list
    created REAL,                    -- epoch seconds
    started REAL,
    ended REAL,
    duration REAL,
    exit_code INTEGER,
    error TEXT,
    sweep TEXT,
    sweep_index INTEGER,
    git_commit TEXT,                 -- the code it ran: git.commit and git.dirty of metadata
    git_dirty INTEGER,
    host TEXT,                       -- the launcher's host and pid, to find dead launchers
    pid INTEGER,
    params TEXT NOT NULL,            -- params.json, as JSON text
    last TEXT NOT NULL,              -- {result: its last logged value} (results_file.Summary)
    series TEXT NOT NULL,            -- {result leaf: [count, min, max, last step]}
    steps INTEGER NOT NULL,          -- lines of results.jsonl read
    origin TEXT,                     -- NULL: ours; '0.6': a folder of yanex 0.6, read as it is
    fp TEXT NOT NULL,                -- metadata.json's and results.jsonl's (mtime, size, inode)
    results_offset INTEGER NOT NULL, -- bytes of results.jsonl read into last and series
    results_check INTEGER            -- a CRC-32 of those bytes' ends: read on only while the same
);
CREATE TABLE tags (id TEXT NOT NULL, tag TEXT NOT NULL, PRIMARY KEY (id, tag)) WITHOUT ROWID;
-- Each experiment's dependencies (metadata.dependencies: {slot: upstream id}), in their order.
CREATE TABLE dependencies (id TEXT NOT NULL, slot TEXT NOT NULL, upstream TEXT NOT NULL,
                           position INTEGER NOT NULL, PRIMARY KEY (id, slot)) WITHOUT ROWID;
-- One row per parameter leaf and per result leaf (its last value). kind is number, bool, str,
-- null or json (lists, empty dicts); num holds numbers (ints as INTEGER, exact) and bools
-- (0/1); text holds strings, JSON, and ints beyond 64 bits (big_text: exact and sortable).
-- The column num has no type, so SQLite keeps each value as it is given.
CREATE TABLE params (id TEXT NOT NULL, key TEXT NOT NULL, kind TEXT NOT NULL, num, text TEXT,
                     PRIMARY KEY (id, key)) WITHOUT ROWID;
CREATE TABLE results (id TEXT NOT NULL, key TEXT NOT NULL, kind TEXT NOT NULL, num, text TEXT,
                      PRIMARY KEY (id, key)) WITHOUT ROWID;
-- Folders without metadata yet (being created), and folders whose metadata is unusable.
CREATE TABLE pending (id TEXT NOT NULL, archived INTEGER NOT NULL, PRIMARY KEY (id, archived));
CREATE TABLE broken (id TEXT NOT NULL, archived INTEGER NOT NULL, fp TEXT NOT NULL,
                     reason TEXT NOT NULL, PRIMARY KEY (id, archived));
CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT);
"""
# Made after a build's rows are in (one sort each, instead of growing with every insert).
# Listings in their default order (newest first, a grid in its order) read straight from the
# first two; a condition on a parameter or result is one range of params_value/results_value.
# The queries every command makes (live runs, a name, 0.6 folders) say INDEXED BY: ANALYZE's
# statistics see a store where nearly every run is completed and advise a scan of them all.
_INDEXES = """
CREATE INDEX experiments_listing
    ON experiments (archived, project, created DESC, sweep_index, id);
CREATE INDEX experiments_created ON experiments (archived, created DESC, sweep_index, id);
CREATE INDEX experiments_status ON experiments (status);
CREATE INDEX experiments_name ON experiments (name);
CREATE INDEX experiments_sweep ON experiments (sweep);
CREATE INDEX experiments_origin ON experiments (origin);
CREATE INDEX tags_tag ON tags (tag, id);
CREATE INDEX dependencies_upstream ON dependencies (upstream, id);
CREATE INDEX params_value ON params (key, kind, num, text);
CREATE INDEX results_value ON results (key, kind, num, text);
"""


def _log_warning(message: str) -> None:
    _log.warning("%s", message)


def _log_progress(done: int, total: int, why: str) -> None:
    if done == 0:
        _log.info("indexing %s experiments (%s)", f"{total:,}", why)


# --- the index --------------------------------------------------------------------------------

Progress = Callable[[int, int, str], None]


class Index:
    """An open index of the store at ``home`` (``store.yanex_home()`` by default).

    ``echo`` receives the one-line notices (an unreadable folder skipped, a lock waited for):
    by default they go to the ``yanex.index`` logger, as library code never prints.
    ``progress(done, total, why)`` follows a build (and a wait for another's); by default the
    start is logged at INFO.
    """

    def __init__(
        self,
        home: Path | None = None,
        echo: Callable[[str], None] | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.home = home or store.yanex_home()
        self.echo = echo or _log_warning
        self.progress = progress or _log_progress
        self.path = location(FILE_NAME, self.home)
        self.lock_wait = store.env_number(LOCK_WAIT_ENV, LOCK_WAIT, 0.5)
        self._wait_ms = min(int(self.lock_wait * 1000), 2**31 - 1)  # SQLite's busy_timeout
        # Where an indexed experiment's folder is, by its archived flag (0, 1).
        self.record_roots = (store.experiments_root(self.home), store.archived_root(self.home))
        self._sync = Sync(self)
        self.conn = self._open()

    # -- opening, and building what cannot be used ----------------------------------------

    def _open(self) -> sqlite3.Connection:
        for _ in range(3):
            why = "there was none"
            if self.path.exists():
                try:
                    conn = self._connect(self.path)
                    version = conn.execute("PRAGMA user_version").fetchone()[0]
                    if version == SCHEMA_VERSION:
                        return conn
                    conn.close()
                    why = f"it has schema {version}, not {SCHEMA_VERSION}"
                except sqlite3.DatabaseError as exc:
                    if not _is_corruption(exc):
                        raise self._store_error(exc) from exc
                    why = f"it was unreadable: {exc}"
            self._build(why, replace=why != "there was none")
        raise StoreError(f"the index {self.path} could not be built", hint=self._hint())

    def _connect(self, path: Path, *, building: bool = False) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(path, timeout=self.lock_wait, isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout = {self._wait_ms}")
            if building:  # a new file, renamed in when whole: no journal on disk; one in
                # memory, so that a batch a folder spoils rolls back (OFF kept half of it)
                for pragma in ("journal_mode = MEMORY", "synchronous = OFF", "cache_size = -65536"):
                    conn.execute(f"PRAGMA {pragma}")
            else:
                conn.execute("PRAGMA synchronous = NORMAL")
                conn.execute("PRAGMA cache_size = -32768")
        except sqlite3.DatabaseError as exc:
            if _is_corruption(exc):
                raise
            raise self._store_error(exc) from exc
        conn.create_function("exact_compare", 4, exact_compare, deterministic=True)
        return conn

    def _build(self, why: str, *, replace: bool) -> None:
        """Build the whole index into a new file and put it in place; or, when another
        process is building it, wait for that one (following its progress)."""
        folder = self.path.parent
        try:
            store.make_private_dirs(folder)
            lock_fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise StoreError(
                f"cannot create the index folder {folder}: {exc.strerror or exc}",
                hint=self._hint(),
            ) from exc
        try:
            if not self._take_build_lock(lock_fd):
                return  # another process built it meanwhile: open that one
            if not replace and self.path.exists():
                return
            os.ftruncate(lock_fd, 0)
            os.pwrite(lock_fd, f"{os.getpid()} 0 0\n".encode(), 0)
            with store.replacing(self.path, durable=False) as tmp:  # readers: old or new
                self._fill(tmp, why, lock_fd)
                if replace:
                    for suffix in ("-wal", "-shm", "-journal"):
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(f"{self.path}{suffix}")
            self._remove_older_schemas()
        except OSError as exc:
            raise self._store_error(exc) from exc
        except sqlite3.DatabaseError as exc:
            raise self._store_error(exc) from exc
        finally:
            os.close(lock_fd)  # releases the lock

    def _remove_older_schemas(self) -> None:
        """Remove the index files an older yanex made beside this one (``index-v5.sqlite3``
        and its -wal, -shm and -journal; its .lock stays, an old process may hold it): after
        an upgrade nothing reads them, and at 100,000 experiments one is over 100 MB. A
        process that has one open keeps reading it."""
        if os.environ.get(INDEX_ENV) or not self.path.name.endswith(FILE_NAME):
            return  # YANEX_INDEX names a file of the user's: its folder is theirs
        prefix = self.path.name[: -len(FILE_NAME)] + "index-v"  # (a cache folder's: store-<key>-)
        ours = re.compile(re.escape(prefix) + r"([0-9]+)\.sqlite3(-wal|-shm|-journal)?")
        for old in self.path.parent.glob(f"{prefix}*.sqlite3*"):
            found = ours.fullmatch(old.name)  # exactly the names yanex gave (a .bak is kept)
            if found and int(found[1]) < SCHEMA_VERSION and found[1] == str(int(found[1])):
                with contextlib.suppress(OSError):
                    old.unlink()

    def _take_build_lock(self, lock_fd: int) -> bool:
        """Take the lock builds hold (True); or wait until another process's build is done,
        showing its progress (False)."""
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            pass
        shown = None
        while True:
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                pass
            fields = os.pread(lock_fd, 64, 0).split()
            if len(fields) == 3 and all(f.isdigit() for f in fields):
                pid, done, total = (int(f) for f in fields)
                why = f"pid {pid} is building it"
                if total and (done, total) != shown:
                    self.progress(done, total, why)
                    shown = (done, total)
            time.sleep(0.1)
        if shown is not None:
            self.progress(shown[1], shown[1], "")
        return False

    def _fill(self, tmp: Path, why: str, lock_fd: int) -> None:
        """Index every folder into the new file ``tmp``."""
        conn = self._connect(tmp, building=True)
        try:
            conn.executescript(_TABLES)
            self.conn = conn
            total = self._sync.fill(lambda done, total: self._built(done, total, why, lock_fd))
            conn.executescript(_INDEXES)
            conn.execute("ANALYZE")
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            network = is_network_filesystem(self.path.parent)
            conn.execute(f"PRAGMA journal_mode = {'DELETE' if network else 'WAL'}")
            if total:
                self.progress(total, total, why)
        finally:
            conn.close()
        os.chmod(tmp, 0o600)

    def _built(self, done: int, total: int, why: str, lock_fd: int) -> None:
        """A build's progress, shown at its start and every PROGRESS_EVERY folders, and
        written in the lock file for the processes waiting for it."""
        if done == 0:
            self.progress(0, total, why)
        elif done % PROGRESS_EVERY == 0 and done < total:
            self.progress(done, total, why)
            with contextlib.suppress(OSError):
                os.pwrite(lock_fd, f"{os.getpid()} {done} {total}\n".ljust(40).encode(), 0)

    def _hint(self) -> str:
        return (
            f"Check that the folder is writable and has space, or set {INDEX_ENV} to a file "
            "elsewhere (e.g. on a local disk)."
        )

    def _store_error(self, exc: BaseException) -> StoreError:
        text = str(exc)
        if isinstance(exc, OSError) and exc.strerror:
            text = exc.strerror
        lowered = text.lower()
        if "locked" in lowered or "busy" in lowered:
            return StoreBusy(
                f"the index {self.path} is locked by {self._holders()}",
                hint="Wait for it to finish (or stop it), or set "
                f"{INDEX_ENV} to a file of this command's own.",
            )
        if "full" in lowered or "no space" in lowered:
            return StoreError(
                f"the index {self.path} cannot be written: the disk is full",
                hint=f"Free some space, or set {INDEX_ENV} to a file on another disk.",
            )
        return StoreError(f"the index {self.path} cannot be used: {text}", hint=self._hint())

    def _holders(self) -> str:
        """The other processes that have the index open, named: who holds its lock."""
        import psutil

        targets = {str(self.path), f"{self.path}-wal", f"{self.path}-shm", f"{self.path}-journal"}
        found = []
        for proc in psutil.process_iter(["pid", "cmdline"]):
            if proc.pid == os.getpid():
                continue
            try:
                if any(f.path in targets for f in proc.open_files()):
                    command = " ".join(proc.info["cmdline"] or [])[:80]
                    found.append(f"pid {proc.pid} ({command})")
            except psutil.Error:
                continue
        return ", ".join(found[:5]) or "another process"

    def close(self) -> None:
        self.conn.close()

    # -- writing under the lock -------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction, taken at once (BEGIN IMMEDIATE) so that concurrent syncs
        queue; a lock held by another process is waited for ``lock_wait`` seconds, saying who
        holds it, then a StoreError names it."""
        conn = self.conn
        if conn.in_transaction:
            yield
            return
        started = time.monotonic()
        told = False
        conn.execute(f"PRAGMA busy_timeout = {_BUSY_MS}")  # in steps, to say who holds it
        try:
            while True:
                try:
                    conn.execute("BEGIN IMMEDIATE")
                    break
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) and "busy" not in str(exc):
                        raise
                    waited = time.monotonic() - started
                    if waited >= self.lock_wait:
                        raise self._store_error(exc) from exc
                    if not told and waited >= LOCK_NOTICE:
                        self.echo(
                            f"yanex: waiting for the index, which {self._holders()} is writing "
                            f"(at most {self.lock_wait:g} s)"
                        )
                        told = True
        finally:
            conn.execute(f"PRAGMA busy_timeout = {self._wait_ms}")
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # -- kept true to the folders (by index_sync) -------------------------------------------

    def roots(self) -> list[tuple[Path, bool]]:
        return [(self.record_roots[0], False), (self.record_roots[1], True)]

    def sync(self, verify: bool = True) -> None:
        """Bring the index up to date with the folders (see ``yanex.index_sync``); an index
        found corrupted is built again.

        ``verify=False`` skips re-checking finished experiments for edits by hand: for a
        command that reads the one experiment it shows (see :meth:`refresh_if_changed`).
        """
        try:
            self._sync.run(verify=verify)
        except sqlite3.DatabaseError as exc:
            if not _is_corruption(exc):
                raise self._store_error(exc) from exc
            # Corrupted while open: built again from the folders, in a new file.
            self.conn.close()
            self._build(f"it was unreadable: {exc}", replace=True)
            self.conn = self._open()
            self._sync.run(verify=verify)

    def reindex(self) -> int:
        """Build the whole index again from the folders, into a new file copied into the live
        one at once (readers go on with the old until then); the number of experiments.

        Not store.replacing: a rename would leave the processes that have the index open on
        the old file, sharing its ``-wal`` and ``-shm`` (named by path) with the new one,
        which corrupts it. SQLite's backup writes into the file they have open, under its
        lock. The new file is built beside it, under store's temp name.
        """
        tmp = store.temp_path(self.path)
        live = self.conn
        lock_fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            self._take_build_lock(lock_fd)
            self._fill(tmp, "yanex reindex", lock_fd)
            built = self._connect(tmp)
            try:
                built.backup(live)  # one step, under live's write lock: readers see old or new
            finally:
                built.close()
        except sqlite3.DatabaseError as exc:
            raise self._store_error(exc) from exc
        finally:
            self.conn = live
            os.close(lock_fd)
            store.remove_temp(tmp)
        self._sync.tell()
        return self.conn.execute("SELECT count(*) FROM experiments").fetchone()[0]

    def refresh(self, ids: list[str]) -> None:
        """Read these experiments again (after a command changed their folders)."""
        self._sync.refresh(ids)

    def refresh_if_changed(self, experiment_id: str) -> None:
        """Read one experiment again if its files changed since it was indexed (``show``)."""
        self._sync.refresh_if_changed(experiment_id)


def _is_corruption(exc: sqlite3.DatabaseError) -> bool:
    """Is this the file being no (usable) database, which a build from the folders mends?
    Locks, a full disk, permissions and constraint errors are not."""
    text = str(exc).lower()
    return "malformed" in text or "not a database" in text or "file is encrypted" in text
