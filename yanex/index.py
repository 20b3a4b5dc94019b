"""The SQLite index of the store: what reading commands query instead of opening every folder.

The experiment folders stay the truth; the index is a cache of them, built from them when it
is missing, unreadable or of an older schema, and brought up to date by every command that
reads it (:meth:`Index.sync`), never by scripts or workers:

- folders added or removed (new runs, copies from another machine, ``rm -r`` by hand) change
  the modification time of ``experiments/`` (or ``archived/``), which is one ``stat`` to check;
  only then is the folder listed and compared with the index;
- experiments changed by another machine's commands (or by another index's, on this one) are
  named in the store's change journal (``yanex.journal``), read on from where the last sync
  stopped: each is read again at the next sync;
- experiments still expected to change (staged, running) have their ``metadata.json`` (and,
  while running, the growth of ``results.jsonl``) checked at every sync, and runs left
  ``running`` by a launcher that died are recorded as failed (on this host, its process is
  gone; on another, its heartbeat stopped: see ``identity.Heartbeat``);
- finished experiments edited by hand are found by re-checking the least recently checked
  :data:`VERIFY_BATCH` of them at every sync (all of them in a store that size or smaller;
  ``yanex reindex`` checks everything at once);
- commands that change experiments (``yanex.manage``) tell the index the rows they changed.

A build writes a new file and puts it in place whole (a rename where there was no usable
index, SQLite's backup into the live file for ``reindex``): a reader never sees the index
vanish, and while one process builds, others wait for it and follow its progress.

Its neighbours own the rest: ``index_location`` where the file lives (in the store, or a local
cache folder when the store is on a network filesystem or read-only; ``YANEX_INDEX``),
``index_values`` how a value is held so that SQL compares it exactly, ``index_rows`` how a
folder becomes rows (in worker processes for a big build); reaping the runs whose launcher
died is the record's rule (``record.reap``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from yanex import journal, record, store, v06store
from yanex.errors import StoreBusy, StoreError
from yanex.index_location import INDEX_ENV, is_network_filesystem, location
from yanex.index_rows import ReadyRow, Row, file_fingerprint, folder_fingerprint, read_all, read_row
from yanex.index_values import exact_compare, to_json, typed
from yanex.record import Status, leaves, reap

SCHEMA_VERSION = 5
FILE_NAME = f"index-v{SCHEMA_VERSION}.sqlite3"
# Finished experiments re-checked per sync for changes made by hand (about 20 ms on a local disk).
VERIFY_BATCH = 5000
# A folder whose modification time is this close to the last look may change again within the
# same timestamp tick (coarse on network filesystems): it is looked at again next time.
_RACY_SECONDS = 2.0
# How long a command waits for another process's lock on the index: any statement (a reader
# meets one while the last connection checkpoints as it closes, or a first one recovers the
# WAL: a moment, longer on a slow disk under load), and a write transaction (it says who holds
# it after LOCK_NOTICE, waiting in steps of _BUSY_MS).
LOCK_WAIT = 10.0
LOCK_NOTICE = 1.0
_BUSY_MS = 500
_WAIT_MS = int(LOCK_WAIT * 1000)
# Progress of a build is reported every this many folders; rows are inserted this many at once.
PROGRESS_EVERY = 500
BATCH = 500
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
    last TEXT NOT NULL,              -- {result: its last logged value} (record.Summary)
    series TEXT NOT NULL,            -- {result leaf: [count, min, max, last step]}
    steps INTEGER NOT NULL,          -- lines of results.jsonl read
    origin TEXT,                     -- NULL: ours; '0.6': a folder of yanex 0.6, read as it is
    fp TEXT NOT NULL,                -- metadata.json's and results.jsonl's (mtime, size, inode)
    results_offset INTEGER NOT NULL  -- bytes of results.jsonl read into last and series
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

_EXPERIMENT_COLUMNS = (
    "id, archived, project, name, description, status, script, tags, created, started, ended, "
    "duration, exit_code, error, sweep, sweep_index, git_commit, git_dirty, host, pid, params, "
    "last, series, steps, origin, fp, results_offset"
)
_INSERT = f"INSERT INTO experiments ({_EXPERIMENT_COLUMNS}) VALUES ({', '.join('?' * 27)})"


def _log_warning(message: str) -> None:
    _log.warning("%s", message)


def _log_progress(done: int, total: int, why: str) -> None:
    if done == 0:
        _log.info("indexing %s experiments (%s)", f"{total:,}", why)


# --- the index --------------------------------------------------------------------------------

Progress = Callable[[int, int, str], None]
_TWICE = "its ID is in both experiments/ and archived/ (keep one of the two folders)"


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
        self.hostname = os.uname().nodename
        # Where an indexed experiment's folder is, by its archived flag (0, 1).
        self.record_roots = (store.experiments_root(self.home), store.archived_root(self.home))
        self._roots = [f"{root}{os.sep}" for root in self.record_roots]
        self._next_cursor: str | None = None
        self._building: tuple[int, int, str] | None = None  # (done, total, why) of a build
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
            conn = sqlite3.connect(path, timeout=LOCK_WAIT, isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout = {_WAIT_MS}")
            if building:
                for pragma in ("journal_mode = OFF", "synchronous = OFF", "cache_size = -65536"):
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
            tmp = folder / f".{self.path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
            try:
                self._fill(tmp, why, lock_fd)
                if replace:
                    for suffix in ("-wal", "-shm", "-journal"):
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(f"{self.path}{suffix}")
                os.replace(tmp, self.path)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
        except OSError as exc:
            raise self._store_error(exc) from exc
        except sqlite3.DatabaseError as exc:
            raise self._store_error(exc) from exc
        finally:
            os.close(lock_fd)  # releases the lock

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
            roots = self.roots()
            total = sum(_count_ids(root) for root, _ in roots)
            self._building = (0, total, why)
            self._lock_fd = lock_fd
            # What changes from here on is read from the journal at the next sync.
            self._set_state("journal", journal.end(self.home))
            if total:
                self.progress(0, total, why)
            conn.execute("BEGIN")
            for root, archived in roots:
                self._scan_root(root, archived, fresh=True)
            conn.execute("COMMIT")
            conn.executescript(_INDEXES)
            conn.execute("ANALYZE")
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            network = is_network_filesystem(self.path.parent)
            conn.execute(f"PRAGMA journal_mode = {'DELETE' if network else 'WAL'}")
            if total:
                self.progress(total, total, why)
        finally:
            self._building = None
            conn.close()
        os.chmod(tmp, 0o600)

    def _advance(self) -> None:
        if self._building is None:
            return
        done, total, why = self._building
        done += 1
        self._building = (done, total, why)
        if done % PROGRESS_EVERY == 0 and done < total:
            self.progress(done, total, why)
            with contextlib.suppress(OSError):
                os.pwrite(self._lock_fd, f"{os.getpid()} {done} {total}\n".ljust(40).encode(), 0)

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
    def _transaction(self) -> Iterator[None]:
        """One write transaction, taken at once (BEGIN IMMEDIATE) so that concurrent syncs
        queue; a lock held by another process is waited for LOCK_WAIT seconds, saying who
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
                    if waited >= LOCK_WAIT:
                        raise self._store_error(exc) from exc
                    if not told and waited >= LOCK_NOTICE:
                        self.echo(
                            f"yanex: waiting for the index, which {self._holders()} is writing "
                            f"(at most {LOCK_WAIT:.0f} s)"
                        )
                        told = True
        finally:
            conn.execute(f"PRAGMA busy_timeout = {_WAIT_MS}")
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # -- keeping it true -------------------------------------------------------------------

    def roots(self) -> list[tuple[Path, bool]]:
        return [(self.record_roots[0], False), (self.record_roots[1], True)]

    def sync(self, verify: bool = True) -> None:
        """Bring the index up to date with the folders (see the module docstring).

        ``verify=False`` skips re-checking finished experiments for edits by hand: for a
        command that reads the one experiment it shows (see :meth:`refresh_if_changed`).
        """
        try:
            self._sync(verify=verify)
        except sqlite3.DatabaseError as exc:
            if not _is_corruption(exc):
                raise self._store_error(exc) from exc
            # Corrupted while open: built again from the folders, in a new file.
            self.conn.close()
            self._build(f"it was unreadable: {exc}", replace=True)
            self.conn = self._open()
            self._sync(verify=verify)

    def reindex(self) -> int:
        """Build the whole index again from the folders, into a new file copied into the live
        one at once (readers go on with the old until then); the number of experiments."""
        folder = self.path.parent
        tmp = folder / f".{self.path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
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
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        self._tell_skipped()
        self._tell_v06()
        return self.conn.execute("SELECT count(*) FROM experiments").fetchone()[0]

    def refresh(self, ids: list[str]) -> None:
        """Read these experiments again (after a command changed their folders)."""
        with self._transaction():
            for experiment_id in ids:
                self._reread(experiment_id)

    def refresh_if_changed(self, experiment_id: str) -> None:
        """Read one experiment again if its files changed since it was indexed (``show``)."""
        row = self.conn.execute(
            "SELECT archived, fp, status FROM experiments WHERE id = ?", (experiment_id,)
        ).fetchone()
        if row is None:
            return
        archived, fp, status = row
        now = folder_fingerprint(self._dir(experiment_id, archived))
        if now == fp:
            return
        with self._transaction():
            # A running run's results only grew: read on from where the index stopped.
            grew = (
                status == Status.RUNNING and now and now.partition("|")[0] == fp.partition("|")[0]
            )
            self._reread(experiment_id, bool(archived), results_only=bool(grew))

    def _sync(self, *, verify: bool) -> None:
        from yanex import staging

        staging.recover(self.home)  # a grid a killed staging left: undone or shown, first
        noted, journal_at = self._journal_changes()
        # The journal cannot say what changed (replaced, cut, far ahead): check them all.
        changed_roots = self.roots() if noted is None else self._changed_roots()
        live = self._live_changes()
        edited = self._verify_batch(not verify, everything=noted is None)
        if changed_roots or live or edited or noted or self._has_waiting() or journal_at:
            with self._transaction():
                for root, archived in changed_roots:
                    self._scan_root(root, archived)
                for experiment_id, archived, results_only in live:
                    self._reread(experiment_id, archived, results_only=results_only)
                for experiment_id, archived in edited:
                    self._reread(experiment_id, archived)
                for experiment_id in noted or ():
                    self._reread_if_changed(experiment_id)
                if journal_at:
                    self._set_state("journal", journal_at)
                self._check_waiting()
        self._reap_dead_launchers()
        self._tell_skipped()
        self._tell_v06()

    def _journal_changes(self) -> tuple[list[str] | None, str | None]:
        """The experiments the store's change journal names since this index last read it
        (None: every experiment must be checked), and the journal's new position (None when
        it did not move)."""
        position = self._state("journal")
        if position is None:  # an index made before the journal: it starts from here
            return [], journal.end(self.home)
        noted, now = journal.read_since(self.home, position)
        return noted, (now if now != position else None)

    def _reread_if_changed(self, experiment_id: str) -> None:
        """Read one experiment again unless its files are as the index read them."""
        row = self.conn.execute(
            "SELECT archived, fp FROM experiments WHERE id = ?", (experiment_id,)
        ).fetchone()
        if row is not None and folder_fingerprint(self._dir(experiment_id, row[0])) == row[1]:
            return
        self._reread(experiment_id)

    def _tell_skipped(self) -> None:
        """One warning per folder left out, naming it and why."""
        for experiment_id, reason in self.conn.execute("SELECT id, reason FROM broken"):
            self.echo(
                f"yanex: skipped experiment folder {experiment_id}: {reason} "
                "(fix or remove the folder)"
            )

    def _tell_v06(self) -> None:
        """Say once (until their number changes) that folders of yanex 0.6 are here: read as
        they are, and what ``yanex migrate`` does."""
        found = self.conn.execute(
            "SELECT count(*) FROM experiments INDEXED BY experiments_origin "
            "WHERE origin IS NOT NULL AND archived = 0"
        ).fetchone()[0]
        root = self.record_roots[0]
        archived = v06store.archived_folders(root)
        told = f"{found}:{len(archived)}"
        if told == (self._state("v06") or "0:0"):
            return
        with self._transaction():
            self._set_state("v06", told)
        if not found and not archived:
            return
        many = "experiment" if found == 1 else "experiments"
        text = f"yanex: {found} {many} of yanex 0.6 found in {root}: read as they are"
        if archived:
            text += (
                f"; {len(archived)} archived by yanex 0.6 in {root / v06store.ARCHIVED} are not "
                "listed until migrated"
            )
        self.echo(f"{text}; `yanex migrate --dry-run` shows what migrating writes")

    def _root_key(self, root: Path) -> tuple[str, bool]:
        """The folder's identity and modification time, and whether it is too recent to trust."""
        try:
            st = root.stat()
        except FileNotFoundError:
            return "missing", False
        except OSError as exc:
            raise StoreError(
                f"cannot read the store folder {root}: {exc.strerror or exc}",
                hint="Check YANEX_HOME and the folder's permissions.",
            ) from exc
        racy = time.time() - st.st_mtime < _RACY_SECONDS
        return f"{st.st_mtime_ns}:{st.st_ino}:{st.st_nlink}", racy

    def _changed_roots(self) -> list[tuple[Path, bool]]:
        changed = []
        for root, archived in self.roots():
            key, _ = self._root_key(root)
            if self._state(f"root:{int(archived)}") != key:
                changed.append((root, archived))
        return changed

    def _scan_root(self, root: Path, archived: bool, *, fresh: bool = False) -> None:
        """List one root and index the folders that came, drop those that went. ``fresh``:
        the index holds none of them (a build)."""
        key, racy = self._root_key(root)
        names = {
            entry.name
            for entry in _scandir(root)
            if store.is_valid_id(entry.name) and entry.is_dir(follow_symlinks=False)
        }
        flag = int(archived)
        known = {
            row[0]
            for row in self.conn.execute("SELECT id FROM experiments WHERE archived = ?", (flag,))
        }
        waiting = {
            row[0]
            for table in ("pending", "broken")
            for row in self.conn.execute(f"SELECT id FROM {table} WHERE archived = ?", (flag,))
        }
        for experiment_id in known - names:
            self._delete(experiment_id, archived)
        for experiment_id in waiting - names:
            self._forget_waiting(experiment_id, archived)
        new = sorted(names - known - waiting)
        if not fresh:
            for experiment_id in new:
                self._reread(experiment_id, archived)
        else:
            self._add_new([(i, self._dir(i, archived), archived) for i in new])
        # A root changed within the last tick is looked at again next time.
        self._set_state(f"root:{flag}", "racy" if racy else key)

    def _live_changes(self) -> list[tuple[str, bool, bool]]:
        """Staged and running experiments whose files changed: ``(id, archived, results
        only)``."""
        rows = self.conn.execute(
            "SELECT id, archived, status, fp, results_offset FROM experiments "
            "INDEXED BY experiments_status WHERE status IN (?, ?)",
            Status.LIVE,
        ).fetchall()
        changes = []
        for experiment_id, archived, status, fp, offset in rows:
            folder = self._dir(experiment_id, archived)
            meta_fp = file_fingerprint(f"{folder}{os.sep}{store.METADATA}")
            if meta_fp is None or not fp.startswith(f"{meta_fp}|"):
                changes.append((experiment_id, bool(archived), False))
            elif status == Status.RUNNING and _size(f"{folder}{os.sep}{store.RESULTS}") != offset:
                changes.append((experiment_id, bool(archived), True))
        return changes

    def _reap_dead_launchers(self) -> None:
        """Record as failed the runs left ``running`` by a launcher that died: on this host,
        its pid is free (or another process's now: see ``identity``); on another host, its
        heartbeat stopped (the machine died, or lost the store)."""
        from yanex.identity import Heartbeat, ProcessId

        rows = self.conn.execute(
            "SELECT id, archived, host, pid FROM experiments INDEXED BY experiments_status "
            "WHERE status = ? AND pid NOT NULL",
            (Status.RUNNING,),
        ).fetchall()
        for experiment_id, archived, host, pid in rows:
            folder = self._folder(experiment_id, archived)
            if host != self.hostname and not Heartbeat.silence(folder, ProcessId(host, pid, None)):
                continue  # its heartbeat is renewed (one small read, not its metadata)
            reaped = None
            with contextlib.suppress(OSError, record.BadRecord):
                reaped = reap(folder, self.hostname)
            if reaped is None:
                continue
            self.echo(f"yanex: experiment {experiment_id} {reaped}; recorded as failed")
            with self._transaction():
                self._reread(experiment_id, bool(archived))

    def _verify_batch(self, skip: bool, everything: bool = False) -> list[tuple[str, bool]]:
        """Finished experiments whose metadata changed since they were read, from the next
        VERIFY_BATCH in turn (a cursor over IDs that wraps around); ``everything``: all."""
        if everything:
            rows = self.conn.execute("SELECT id, archived, fp FROM experiments").fetchall()
        elif skip:
            return []
        else:
            cursor = self._state("verify") or ""
            rows = self.conn.execute(
                "SELECT id, archived, fp FROM experiments WHERE id > ? ORDER BY id LIMIT ?",
                (cursor, VERIFY_BATCH),
            ).fetchall()
            if len(rows) < VERIFY_BATCH:
                rows += self.conn.execute(
                    "SELECT id, archived, fp FROM experiments WHERE id <= ? ORDER BY id LIMIT ?",
                    (cursor, VERIFY_BATCH - len(rows)),
                ).fetchall()
            if rows:
                self._next_cursor = rows[-1][0]
        # metadata.json only (one stat each): a finished run's results.jsonl edited by hand is
        # seen by `show` (refresh_if_changed) and by `reindex`.
        roots, tail = self._roots, f"{os.sep}{store.METADATA}"
        return [
            (experiment_id, bool(archived))
            for experiment_id, archived, fp in rows
            if file_fingerprint(f"{roots[archived]}{experiment_id}{tail}") != fp.partition("|")[0]
        ]

    def _has_waiting(self) -> bool:
        """Folders met without usable metadata are looked at again at every sync."""
        waiting = self.conn.execute(
            "SELECT (SELECT count(*) FROM pending) + (SELECT count(*) FROM broken)"
        ).fetchone()[0]
        return bool(waiting) or self._next_cursor is not None

    def _check_waiting(self) -> None:
        pending = self.conn.execute("SELECT id, archived FROM pending").fetchall()
        for experiment_id, archived in pending:  # (re-read rows re-enter the table)
            self._reread(experiment_id, bool(archived))
        rows = self.conn.execute("SELECT id, archived, fp FROM broken").fetchall()
        for experiment_id, archived, fp in rows:
            if (folder_fingerprint(self._dir(experiment_id, archived)) or "-") != fp:
                self._reread(experiment_id, bool(archived))
        if self._next_cursor is not None:
            self._set_state("verify", self._next_cursor)
            self._next_cursor = None

    def _dir(self, experiment_id: str, archived: bool | int) -> str:
        return f"{self._roots[int(archived)]}{experiment_id}"

    def _folder(self, experiment_id: str, archived: bool | int) -> Path:
        return self.record_roots[int(archived)] / experiment_id

    def _reread(
        self,
        experiment_id: str,
        archived: bool | None = None,
        *,
        results_only: bool = False,
    ) -> None:
        """Index one experiment again from its folder (wherever it is now)."""
        inferred = archived is None
        if archived is None:
            archived = not os.path.isdir(self._dir(experiment_id, False))
        folder = self._dir(experiment_id, archived)
        if results_only:
            row = self.conn.execute(
                "SELECT last, series, steps, results_offset, fp FROM experiments WHERE id = ?",
                (experiment_id,),
            ).fetchone()
            if row is not None and self._add_results(experiment_id, folder, *row):
                return
        self._forget_waiting(experiment_id, archived)
        try:
            row = read_row(folder, archived)
        except FileNotFoundError:
            self._delete(experiment_id, None if inferred else archived)
            if os.path.isdir(folder):  # being created: its metadata comes later
                self.conn.execute(
                    "INSERT OR IGNORE INTO pending VALUES (?, ?)", (experiment_id, int(archived))
                )
            return
        except record.BadRecord as exc:
            self._broken(experiment_id, archived, str(exc), fresh=False)
            return
        self._write(row)

    def _add_new(self, folders: list[tuple[str, str, bool]]) -> None:
        """Index folders the index holds nothing of (a build), read by processes of their
        own when there are many, and inserted a batch at a time."""
        batch: list[ReadyRow] = []
        for item in read_all(folders):
            if isinstance(item, ReadyRow):
                batch.append(item)
            elif item[0] == "pending":
                if os.path.isdir(item[2]):  # being created: its metadata comes later
                    self.conn.execute(
                        "INSERT OR IGNORE INTO pending VALUES (?, ?)", (item[1], int(item[3]))
                    )
            else:
                self._broken(item[1], item[3], item[4], fresh=True)
            if len(batch) >= BATCH:
                self._write_batch(batch)
                batch = []
            self._advance()
        if batch:
            self._write_batch(batch)

    def _broken(self, experiment_id: str, archived: bool, reason: str, fresh: bool) -> None:
        if not fresh:
            self._delete(experiment_id, archived)
        fp = folder_fingerprint(self._dir(experiment_id, archived)) or "-"
        self.conn.execute(
            "INSERT OR REPLACE INTO broken VALUES (?, ?, ?, ?)",
            (experiment_id, int(archived), fp, reason),
        )

    def _add_results(
        self,
        experiment_id: str,
        folder: str,
        last: str,
        series: str,
        steps: int,
        offset: int,
        fp: str,
    ) -> bool:
        """A running experiment's results, read on from where the last look stopped (False:
        the file was rewritten, read it all again)."""
        if _size(f"{folder}{os.sep}{store.RESULTS}") < offset:
            return False
        summary = record.Summary(json.loads(last), json.loads(series), steps)
        try:
            offset = record.scan_results(folder, summary, offset)
        except record.BadRecord:
            return False
        fp = f"{fp.partition('|')[0]}|{summary.source or '-'}"
        self.conn.execute(
            "UPDATE experiments SET last = ?, series = ?, steps = ?, results_offset = ?, fp = ? "
            "WHERE id = ?",
            (
                to_json(summary.last),
                to_json(summary.stats),
                summary.lines,
                offset,
                fp,
                experiment_id,
            ),
        )
        self.conn.execute("DELETE FROM results WHERE id = ?", (experiment_id,))
        self.conn.executemany(
            "INSERT INTO results VALUES (?, ?, ?, ?, ?)",
            [(experiment_id, key, *typed(v)) for key, v in leaves(summary.last)],
        )
        return True

    def _write(self, row: Row | ReadyRow, fresh: bool = False) -> None:
        """Insert one experiment's rows, all or none: a value SQLite cannot take (text that
        is not Unicode, a hand-made metadata.json's odd value) skips the folder, named."""
        conn = self.conn
        if not fresh:
            other = conn.execute(
                "SELECT archived FROM experiments WHERE id = ?", (row.id,)
            ).fetchone()
            if other and other[0] != row.archived and os.path.isdir(self._dir(row.id, other[0])):
                self._broken(row.id, row.archived, _TWICE, fresh=True)
                return
        conn.execute("SAVEPOINT one")
        try:
            if not fresh:
                self._delete(row.id, None)
            self._insert([row])
        except (sqlite3.InterfaceError, sqlite3.IntegrityError, OverflowError, ValueError) as exc:
            conn.execute("ROLLBACK TO one")
            conn.execute("RELEASE one")
            reason = f"it holds a value the index cannot take ({exc})"
            if isinstance(exc, UnicodeEncodeError):
                reason = "it holds text that is not valid Unicode"
            elif isinstance(exc, sqlite3.IntegrityError):
                reason = _TWICE
            self._broken(row.id, row.archived, reason, fresh)
            return
        conn.execute("RELEASE one")

    def _insert(self, rows: list[Row] | list[ReadyRow]) -> None:
        conn = self.conn
        conn.executemany(_INSERT, [row.values() for row in rows])
        tags: list[tuple[Any, ...]] = []
        params: list[tuple[Any, ...]] = []
        results: list[tuple[Any, ...]] = []
        depends: list[tuple[Any, ...]] = []
        for row in rows:
            more_tags, more_params, more_results, more_depends = row.rows()
            tags += more_tags
            params += more_params
            results += more_results
            depends += more_depends
        conn.executemany("INSERT INTO tags VALUES (?, ?)", tags)
        conn.executemany("INSERT INTO dependencies VALUES (?, ?, ?, ?)", depends)
        conn.executemany("INSERT INTO params VALUES (?, ?, ?, ?, ?)", params)
        conn.executemany("INSERT INTO results VALUES (?, ?, ?, ?, ?)", results)

    def _write_batch(self, rows: list[ReadyRow]) -> None:
        """A build's rows, many at once; a batch with a row SQLite refuses goes one by one."""
        conn = self.conn
        conn.execute("SAVEPOINT batch")
        try:
            self._insert(rows)
        except (sqlite3.InterfaceError, sqlite3.IntegrityError, OverflowError, ValueError):
            conn.execute("ROLLBACK TO batch")
            conn.execute("RELEASE batch")
            for row in rows:
                self._write(row, fresh=True)
            return
        conn.execute("RELEASE batch")

    def _delete(self, experiment_id: str, archived: bool | None) -> None:
        conn = self.conn
        if archived is not None:
            found = conn.execute(
                "SELECT 1 FROM experiments WHERE id = ? AND archived = ?",
                (experiment_id, int(archived)),
            ).fetchone()
            if found is None:
                return
        for table in ("experiments", "tags", "params", "results", "dependencies"):
            conn.execute(f"DELETE FROM {table} WHERE id = ?", (experiment_id,))

    def _forget_waiting(self, experiment_id: str, archived: bool) -> None:
        for table in ("pending", "broken"):
            self.conn.execute(
                f"DELETE FROM {table} WHERE id = ? AND archived = ?",
                (experiment_id, int(archived)),
            )

    def _state(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def _set_state(self, key: str, value: str) -> None:
        self.conn.execute("INSERT OR REPLACE INTO state VALUES (?, ?)", (key, value))


def _is_corruption(exc: sqlite3.DatabaseError) -> bool:
    """Is this the file being no (usable) database, which a build from the folders mends?
    Locks, a full disk, permissions and constraint errors are not."""
    text = str(exc).lower()
    return "malformed" in text or "not a database" in text or "file is encrypted" in text


def _scandir(root: Path) -> list[os.DirEntry[str]]:
    try:
        return list(os.scandir(root))
    except FileNotFoundError:
        return []
    except OSError as exc:  # not a folder, no permission: the store cannot be read
        raise StoreError(
            f"cannot read the store folder {root}: {exc.strerror or exc}",
            hint="Check YANEX_HOME and the folder's permissions.",
        ) from exc


def _count_ids(root: Path) -> int:
    return sum(1 for entry in _scandir(root) if store.is_valid_id(entry.name))


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0
