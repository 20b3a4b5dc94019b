"""The SQLite index of the store: what reading commands query instead of opening every folder.

The experiment folders stay the truth; the index is a cache of them, rebuilt from them when it
is missing, unreadable or of an older schema (with one line on stderr), and brought up to date
by every command that reads it (:meth:`Index.sync`), never by scripts or workers:

- folders added or removed (new runs, copies from another machine, ``rm -r`` by hand) change
  the modification time of ``experiments/`` (or ``archived/``), which is one ``stat`` to check;
  only then is the folder listed and compared with the index;
- experiments still expected to change (staged, running) have their ``metadata.json`` (and,
  while running, the growth of ``results.jsonl``) checked at every sync, and runs left
  ``running`` by a launcher that died on this host are recorded as failed;
- finished experiments edited by hand are found by re-checking the least recently checked
  :data:`VERIFY_BATCH` of them at every sync (all of them in a store that size or smaller;
  ``yanex reindex`` checks everything at once).

Where the index lives: in the store (``$YANEX_HOME/index-v1.sqlite3``) on a local disk; when the
store is on a network filesystem (NFS, Lustre, GPFS, ...), where SQLite's locking is unreliable,
in a local cache folder keyed by the store's path. ``YANEX_INDEX`` names the file explicitly.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from yanex import record, store
from yanex.errors import StoreError
from yanex.record import Status

SCHEMA_VERSION = 1
INDEX_ENV = "YANEX_INDEX"
# Finished experiments re-checked per sync for changes made by hand (about 20 ms on a local disk).
VERIFY_BATCH = 5000
# A folder whose modification time is this close to the last look may change again within the
# same timestamp tick (coarse on network filesystems): it is looked at again next time.
_RACY_SECONDS = 2.0
# Filesystems where SQLite's locks (and WAL's shared memory) cannot be trusted.
NETWORK_FILESYSTEMS = frozenset(
    {
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "smbfs",
        "lustre",
        "gpfs",
        "beegfs",
        "ceph",
        "fuse.ceph",
        "glusterfs",
        "fuse.glusterfs",
        "fuse.sshfs",
        "afs",
        "9p",
        "panfs",
        "wekafs",
    }
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS experiments (
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
    host TEXT,                       -- the launcher's host and pid, to find dead launchers
    pid INTEGER,
    params TEXT NOT NULL,            -- params.json, as JSON text
    last TEXT NOT NULL,              -- {result name: its last logged value}
    fp TEXT NOT NULL,                -- metadata.json's (mtime, size, inode) when read
    results_offset INTEGER NOT NULL  -- bytes of results.jsonl read into last
);
-- Listings in their default order (newest first, a grid in its order) read straight from these.
CREATE INDEX IF NOT EXISTS experiments_listing
    ON experiments (archived, project, created DESC, sweep_index, id);
CREATE INDEX IF NOT EXISTS experiments_created
    ON experiments (archived, created DESC, sweep_index, id);
CREATE INDEX IF NOT EXISTS experiments_status ON experiments (status);
CREATE INDEX IF NOT EXISTS experiments_name ON experiments (name);
CREATE INDEX IF NOT EXISTS experiments_sweep ON experiments (sweep);
CREATE TABLE IF NOT EXISTS tags (id TEXT NOT NULL, tag TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS tags_tag ON tags (tag, id);
CREATE INDEX IF NOT EXISTS tags_id ON tags (id);
-- One row per parameter leaf and per result (its last value): kind is number, bool, str,
-- null or json (lists, dicts); num holds numbers and bools (0/1), text strings and json.
CREATE TABLE IF NOT EXISTS params (id TEXT NOT NULL, key TEXT NOT NULL, kind TEXT NOT NULL,
                                   num REAL, text TEXT);
CREATE INDEX IF NOT EXISTS params_key ON params (key, num);
CREATE INDEX IF NOT EXISTS params_id ON params (id);
CREATE TABLE IF NOT EXISTS results (id TEXT NOT NULL, key TEXT NOT NULL, kind TEXT NOT NULL,
                                    num REAL, text TEXT);
CREATE INDEX IF NOT EXISTS results_key ON results (key, num);
CREATE INDEX IF NOT EXISTS results_id ON results (id);
-- Folders without metadata yet (being created), and folders whose metadata is unusable.
CREATE TABLE IF NOT EXISTS pending (id TEXT NOT NULL, archived INTEGER NOT NULL,
                                    PRIMARY KEY (id, archived));
CREATE TABLE IF NOT EXISTS broken (id TEXT NOT NULL, archived INTEGER NOT NULL, fp TEXT NOT NULL,
                                   reason TEXT NOT NULL, PRIMARY KEY (id, archived));
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT);
"""

_EXPERIMENT_COLUMNS = (
    "id, archived, project, name, description, status, script, tags, created, started, ended, "
    "duration, exit_code, error, sweep, sweep_index, host, pid, params, last, fp, results_offset"
)


def _echo_err(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- where the index lives ----------------------------------------------------------------


def _mounts() -> list[tuple[str, str]]:
    """``(mount point, filesystem type)`` of this machine's mounts (Linux); [] elsewhere."""
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    mounts = []
    for line in lines:
        before, sep, after = line.partition(" - ")
        fields = before.split()
        if sep and len(fields) >= 5 and after.split():
            point = fields[4].replace("\\040", " ").replace("\\011", "\t").replace("\\134", "\\")
            mounts.append((point, after.split()[0]))
    return mounts


def filesystem_type(path: Path, mounts: list[tuple[str, str]] | None = None) -> str | None:
    """The type of the filesystem ``path`` is on (``ext4``, ``nfs4``, ...), None if unknown."""
    mounts = _mounts() if mounts is None else mounts
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    resolved = str(probe.resolve())
    best, kind = -1, None
    for point, fstype in mounts:
        inside = resolved == point or resolved.startswith(point.rstrip("/") + "/")
        if inside and len(point) > best:
            best, kind = len(point), fstype
    return kind


def is_network_filesystem(path: Path, mounts: list[tuple[str, str]] | None = None) -> bool:
    return filesystem_type(path, mounts) in NETWORK_FILESYSTEMS


def _local_cache_dirs() -> Iterator[Path]:
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        yield Path(xdg) / "yanex"
    yield Path.home() / ".cache" / "yanex"
    yield Path("/var/tmp") / f"yanex-{os.getuid()}"
    yield Path("/tmp") / f"yanex-{os.getuid()}"


def location(home: Path | None = None, mounts: list[tuple[str, str]] | None = None) -> Path:
    """The index file of the store at ``home``: ``$YANEX_INDEX``; else in the store when it is
    on a local disk; else in the first local cache folder, named after the store's path."""
    explicit = os.environ.get(INDEX_ENV)
    if explicit:
        return Path(explicit).expanduser().absolute()
    home = home or store.yanex_home()
    name = f"index-v{SCHEMA_VERSION}.sqlite3"
    if not is_network_filesystem(home, mounts):
        return home / name
    key = f"{zlib.crc32(os.fsencode(str(home.resolve()))):08x}"
    for folder in _local_cache_dirs():
        if not is_network_filesystem(folder, mounts):
            return folder / f"store-{key}-{name}"
    return home / name  # nowhere local: the store itself, with a rollback journal


# --- reading one folder into rows -----------------------------------------------------------


def _fingerprint(path: Path | str) -> str | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return f"{st.st_mtime_ns}:{st.st_size}:{st.st_ino}"


def epoch(stamp: Any) -> float | None:
    """An ISO 8601 time from metadata as seconds since the epoch (None when absent or bad)."""
    if not isinstance(stamp, str):
        return None
    try:
        return datetime.fromisoformat(stamp).timestamp()
    except ValueError:
        return None


def typed(value: Any) -> tuple[str, float | None, str | None]:
    """``(kind, num, text)``: how one value is stored for comparisons and sorting."""
    if isinstance(value, bool):
        return "bool", float(value), "true" if value else "false"
    if isinstance(value, (int, float)):
        number = float(value)
        return "number", None if number != number else number, repr(value)  # NaN: no order
    if isinstance(value, str):
        return "str", None, value
    if value is None:
        return "null", None, None
    return "json", None, canonical_json(value)


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def param_leaves(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Dotted keys of a parameter dict; lists (and empty dicts) are single values."""
    if isinstance(node, dict) and node:
        for key, value in node.items():
            yield from param_leaves(value, f"{prefix}.{key}" if prefix else str(key))
    elif prefix:
        yield prefix, node


class _Row:
    """One experiment as read from its folder, ready to be written into the index."""

    def __init__(self, folder: Path, archived: bool, fp: str, meta: dict[str, Any]) -> None:
        self.id = folder.name
        self.folder = folder
        self.archived = archived
        self.fp = fp
        self.meta = meta
        self.params = record.read_params(folder)
        self.last: dict[str, Any] = {}
        self.offset = _add_results(folder, 0, self.last)

    def values(self) -> tuple[Any, ...]:
        meta = self.meta
        launcher = meta.get("launcher") if isinstance(meta.get("launcher"), dict) else {}
        return (
            self.id,
            int(self.archived),
            meta.get("project"),
            meta.get("name"),
            meta.get("description"),
            meta["status"],
            meta.get("script"),
            json.dumps(meta.get("tags") or [], ensure_ascii=False),
            epoch(meta.get("created_at")),
            epoch(meta.get("started_at")),
            epoch(meta.get("ended_at")),
            meta.get("duration"),
            meta.get("exit_code"),
            meta.get("error"),
            meta.get("sweep"),
            meta.get("sweep_index"),
            launcher.get("hostname"),
            launcher.get("pid") if isinstance(launcher.get("pid"), int) else None,
            _json(self.params),
            _json(self.last),
            self.fp,
            self.offset,
        )


def _add_results(folder: Path, offset: int, last: dict[str, Any]) -> int:
    """Read into ``last`` the results ``results.jsonl`` holds past ``offset``; the new offset."""
    try:
        with open(os.path.join(folder, store.RESULTS), "rb") as f:
            if offset:
                f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return offset
    lines, used = record.parse_results(data)
    record.last_values(lines, into=last)
    return offset + used


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def read_row(folder: Path, archived: bool) -> _Row:
    """Read one experiment folder; FileNotFoundError (no metadata yet) or BadRecord."""
    fp = _fingerprint(folder / store.METADATA)  # before reading: a later change shows next time
    if fp is None:
        raise FileNotFoundError(folder / store.METADATA)
    return _Row(folder, archived, fp, record.read_metadata(folder))


# --- the index --------------------------------------------------------------------------------


class Index:
    """An open index of the store at ``home`` (``store.yanex_home()`` by default).

    ``echo`` receives the one-line notices (a rebuild, an unreadable folder).
    """

    def __init__(self, home: Path | None = None, echo: Callable[[str], None] = _echo_err) -> None:
        self.home = home or store.yanex_home()
        self.echo = echo
        self.path = location(self.home)
        self.hostname = os.uname().nodename
        # Where an indexed experiment's folder is, by its archived flag (0, 1).
        self.record_roots = (store.experiments_root(self.home), store.archived_root(self.home))
        self.conn = self._open()

    # -- opening, and rebuilding what cannot be used --------------------------------------

    def _open(self) -> sqlite3.Connection:
        existed = self.path.exists()
        reason = None if existed else "there was none"
        try:
            conn = self._connect()
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if existed and version != SCHEMA_VERSION:
                reason = f"it has schema {version}, not {SCHEMA_VERSION}"
                conn.close()
                self._remove()
                conn = self._connect()
        except sqlite3.DatabaseError as exc:
            if _is_io_problem(exc):
                raise self._store_error(exc) from exc
            reason = f"it was unreadable: {exc}"
            self._remove()
            try:
                conn = self._connect()
            except sqlite3.DatabaseError as again:
                raise self._store_error(again) from again
        if reason is not None:
            self._rebuild_notice = reason
        else:
            self._rebuild_notice = None
        return conn

    def _connect(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the index folder {self.path.parent}: {exc.strerror or exc}",
                hint=f"Check that it is writable, or set {INDEX_ENV} to a file elsewhere.",
            ) from exc
        conn = sqlite3.connect(self.path, timeout=120, isolation_level=None)
        os.chmod(self.path, 0o600)
        conn.execute("PRAGMA busy_timeout = 120000")
        network = is_network_filesystem(self.path.parent)
        conn.execute(f"PRAGMA journal_mode = {'DELETE' if network else 'WAL'}")
        conn.execute("PRAGMA synchronous = NORMAL")
        if conn.execute("PRAGMA user_version").fetchone()[0] == 0:
            # Idempotent: two processes creating the index at once both succeed.
            conn.executescript(
                f"BEGIN IMMEDIATE; {_SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
            )
        return conn

    def _remove(self) -> None:
        for suffix in ("", "-wal", "-shm", "-journal"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{self.path}{suffix}")

    def _store_error(self, exc: BaseException) -> StoreError:
        return StoreError(
            f"the index {self.path} cannot be used: {exc}",
            hint="Check the disk's free space and permissions; `yanex reindex` rebuilds it.",
        )

    def close(self) -> None:
        self.conn.close()

    # -- keeping it true -------------------------------------------------------------------

    def roots(self) -> list[tuple[Path, bool]]:
        return [(store.experiments_root(self.home), False), (store.archived_root(self.home), True)]

    def sync(self, verify: bool = True) -> None:
        """Bring the index up to date with the folders (see the module docstring).

        ``verify=False`` skips re-checking finished experiments for edits by hand: for a
        command that reads the one experiment it shows from its folder anyway.
        """
        try:
            self._sync(full=False, verify=verify)
        except sqlite3.DatabaseError as exc:
            if _is_io_problem(exc) or isinstance(exc, sqlite3.OperationalError):
                raise self._store_error(exc) from exc
            # Corrupted while open: start again from the folders.
            self.conn.close()
            self._remove()
            self.conn = self._connect()
            self._rebuild_notice = f"it was unreadable: {exc}"
            self._sync(full=False, verify=verify)

    def reindex(self) -> int:
        """Rebuild the whole index from the folders; the number of experiments indexed."""
        with _transaction(self.conn):
            for table in ("experiments", "tags", "params", "results", "pending", "broken", "state"):
                self.conn.execute(f"DELETE FROM {table}")
        self._rebuild_notice = None
        self._sync(full=True)
        return self.conn.execute("SELECT count(*) FROM experiments").fetchone()[0]

    def refresh(self, ids: list[str]) -> None:
        """Read these experiments again (after a command changed their folders)."""
        with _transaction(self.conn):
            for experiment_id in ids:
                self._reread(experiment_id)

    def _sync(self, *, full: bool, verify: bool = True) -> None:
        notice = self._rebuild_notice
        if notice is not None:
            self._rebuild_notice = None
            count = sum(_count_ids(root) for root, _ in self.roots())
            if count:
                self.echo(f"yanex: indexing {count:,} experiments ({notice})")
        changed_roots = [] if full else self._changed_roots()
        live = self._live_changes()
        edited = self._verify_batch(full or not verify)
        if full or changed_roots or live or edited or self._has_waiting():
            with _transaction(self.conn):
                roots = self.roots() if full else changed_roots
                for root, archived in roots:
                    self._scan_root(root, archived)
                for experiment_id, archived, results_only in live:
                    self._reread(experiment_id, archived, results_only=results_only)
                for experiment_id, archived in edited:
                    self._reread(experiment_id, archived)
                self._check_waiting()
        self._reap_dead_launchers()
        for experiment_id, reason in self.conn.execute("SELECT id, reason FROM broken"):
            self.echo(
                f"yanex: skipped experiment folder {experiment_id}: {reason} "
                "(fix or remove the folder)"
            )

    def _root_key(self, root: Path) -> tuple[str, bool]:
        """The folder's identity and modification time, and whether it is too recent to trust."""
        try:
            st = root.stat()
        except FileNotFoundError:
            return "missing", False
        racy = time.time() - st.st_mtime < _RACY_SECONDS
        return f"{st.st_mtime_ns}:{st.st_ino}:{st.st_nlink}", racy

    def _changed_roots(self) -> list[tuple[Path, bool]]:
        changed = []
        for root, archived in self.roots():
            key, _ = self._root_key(root)
            if self._state(f"root:{int(archived)}") != key:
                changed.append((root, archived))
        return changed

    def _scan_root(self, root: Path, archived: bool) -> None:
        """List one root and index the folders that came, drop those that went."""
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
        for experiment_id in sorted(names - known - waiting):
            self._reread(experiment_id, archived, fresh=True)
        # A root changed within the last tick is looked at again next time.
        self._set_state(f"root:{flag}", "racy" if racy else key)

    def _live_changes(self) -> list[tuple[str, bool, bool]]:
        """Staged and running experiments whose files changed: ``(id, archived, results
        only)``."""
        rows = self.conn.execute(
            "SELECT id, archived, status, fp, results_offset FROM experiments "
            "WHERE status IN (?, ?)",
            Status.LIVE,
        ).fetchall()
        changes = []
        for experiment_id, archived, status, fp, offset in rows:
            folder = self._folder(experiment_id, archived)
            if _fingerprint(folder / store.METADATA) != fp:
                changes.append((experiment_id, bool(archived), False))
            elif status == Status.RUNNING and _size(folder / store.RESULTS) != offset:
                changes.append((experiment_id, bool(archived), True))
        return changes

    def _reap_dead_launchers(self) -> None:
        """Record as failed the runs left ``running`` by a launcher that died on this host
        (its pid is free, or another process's now: see ``identity``); finish (or undo) a
        staging whose process was killed midway (see ``staging``)."""
        from yanex import staging

        staging.recover(self.home)
        rows = self.conn.execute(
            "SELECT id, archived, pid FROM experiments WHERE status = ? AND host = ?",
            (Status.RUNNING, self.hostname),
        ).fetchall()
        for experiment_id, archived, pid in rows:
            if pid is None:
                continue
            folder = self._folder(experiment_id, archived)
            reaped = False
            with contextlib.suppress(OSError, record.BadRecord):
                reaped = reap(folder, self.hostname)
            if not reaped:
                continue
            self.echo(
                f"yanex: experiment {experiment_id} was left running by a launcher "
                "that died; recorded as failed"
            )
            with _transaction(self.conn):
                self._reread(experiment_id, bool(archived))

    def _verify_batch(self, skip: bool) -> list[tuple[str, bool]]:
        """Finished experiments whose metadata changed since they were read, from the next
        VERIFY_BATCH in turn (a cursor over IDs that wraps around)."""
        if skip:
            return []
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
        roots = [f"{root}{os.sep}" for root, _ in self.roots()]  # [experiments/, archived/]
        tail = f"{os.sep}{store.METADATA}"
        changed = [
            (experiment_id, bool(archived))
            for experiment_id, archived, fp in rows
            if _fingerprint(f"{roots[archived]}{experiment_id}{tail}") != fp
        ]
        if rows:
            self._next_cursor = rows[-1][0]
        return changed

    def _has_waiting(self) -> bool:
        """Folders met without usable metadata are looked at again at every sync."""
        waiting = self.conn.execute(
            "SELECT (SELECT count(*) FROM pending) + (SELECT count(*) FROM broken)"
        ).fetchone()[0]
        return bool(waiting) or getattr(self, "_next_cursor", None) is not None

    def _check_waiting(self) -> None:
        pending = self.conn.execute("SELECT id, archived FROM pending").fetchall()
        for experiment_id, archived in pending:  # (re-read rows re-enter the table)
            self._reread(experiment_id, bool(archived))
        rows = self.conn.execute("SELECT id, archived, fp FROM broken").fetchall()
        for experiment_id, archived, fp in rows:
            if _fingerprint(self._folder(experiment_id, archived) / store.METADATA) != fp:
                self._reread(experiment_id, bool(archived))
        cursor = getattr(self, "_next_cursor", None)
        if cursor is not None:
            self._set_state("verify", cursor)
            self._next_cursor = None

    def _folder(self, experiment_id: str, archived: bool | int) -> Path:
        root = store.archived_root(self.home) if archived else store.experiments_root(self.home)
        return root / experiment_id

    def _reread(
        self,
        experiment_id: str,
        archived: bool | None = None,
        *,
        results_only: bool = False,
        fresh: bool = False,
    ) -> None:
        """Index one experiment again from its folder (wherever it is now)."""
        if archived is None:
            archived = not (store.experiments_root(self.home) / experiment_id).is_dir()
        folder = self._folder(experiment_id, archived)
        if results_only:
            row = self.conn.execute(
                "SELECT last, results_offset FROM experiments WHERE id = ?", (experiment_id,)
            ).fetchone()
            if row is not None:
                self._add_results(experiment_id, folder, *row)
                return
        if not fresh:
            self._forget_waiting(experiment_id, archived)
        try:
            row = read_row(folder, archived)
        except FileNotFoundError:
            self._delete(experiment_id, archived)
            if folder.is_dir():  # being created: its metadata comes later
                self.conn.execute(
                    "INSERT OR IGNORE INTO pending VALUES (?, ?)", (experiment_id, int(archived))
                )
            return
        except record.BadRecord as exc:
            if not fresh:
                self._delete(experiment_id, archived)
            fp = _fingerprint(folder / store.METADATA) or "-"
            self.conn.execute(
                "INSERT OR REPLACE INTO broken VALUES (?, ?, ?, ?)",
                (experiment_id, int(archived), fp, str(exc)),
            )
            return
        self._write(row, fresh)

    def _add_results(self, experiment_id: str, folder: Path, last_json: str, offset: int) -> None:
        """A running experiment's results, read on from where the last look stopped."""
        if _size(folder / store.RESULTS) < offset:  # rewritten: read it all again
            self._reread(experiment_id)
            return
        last = json.loads(last_json)
        offset = _add_results(folder, offset, last)
        self.conn.execute(
            "UPDATE experiments SET last = ?, results_offset = ? WHERE id = ?",
            (_json(last), offset, experiment_id),
        )
        self._write_results(experiment_id, last)

    def _write(self, row: _Row, fresh: bool = False) -> None:
        conn = self.conn
        if not fresh:
            self._delete(row.id, None)
        placeholders = ", ".join("?" * 22)
        conn.execute(
            f"INSERT INTO experiments ({_EXPERIMENT_COLUMNS}) VALUES ({placeholders})",
            row.values(),
        )
        conn.executemany(
            "INSERT INTO tags VALUES (?, ?)",
            [(row.id, tag) for tag in dict.fromkeys(row.meta.get("tags") or [])],
        )
        conn.executemany(
            "INSERT INTO params VALUES (?, ?, ?, ?, ?)",
            [(row.id, key, *typed(value)) for key, value in param_leaves(row.params)],
        )
        self._write_results(row.id, row.last, replace=False)

    def _write_results(
        self, experiment_id: str, last: dict[str, Any], replace: bool = True
    ) -> None:
        if replace:
            self.conn.execute("DELETE FROM results WHERE id = ?", (experiment_id,))
        self.conn.executemany(
            "INSERT INTO results VALUES (?, ?, ?, ?, ?)",
            [(experiment_id, name, *typed(record.decode_value(v))) for name, v in last.items()],
        )

    def _delete(self, experiment_id: str, archived: bool | None) -> None:
        conn = self.conn
        if archived is not None:
            found = conn.execute(
                "SELECT 1 FROM experiments WHERE id = ? AND archived = ?",
                (experiment_id, int(archived)),
            ).fetchone()
            if found is None:
                return
        for table in ("experiments", "tags", "params", "results"):
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


def reap(folder: Path, hostname: str) -> bool:
    """Record a ``running`` experiment as ``failed`` when its launcher no longer runs on this
    host (killed with SIGKILL, or the machine lost power; its pid free or reused by another
    process since): no run stays "running" forever. True when it was reaped."""
    from yanex.identity import ProcessId

    meta = record.read_metadata(folder)
    launcher = ProcessId.from_metadata(meta.get("launcher"))
    if meta.get("status") != Status.RUNNING or launcher is None or launcher.host != hostname:
        return False
    if not launcher.is_gone():
        return False
    reason = (
        f"launcher died: yanex (pid {launcher.pid} on {hostname}) stopped without recording "
        "how the run ended"
    )
    changes: dict[str, Any] = {"status": Status.FAILED, "ended_at": store.now_iso()}
    changes["error"] = reason
    warnings = store.read_warnings(folder)
    if warnings:
        changes["warnings"] = [*(meta.get("warnings") or []), *warnings]
    return record.update(folder, changes, only_if=(Status.RUNNING,)) is not None


@contextlib.contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """One write transaction, taken at once (BEGIN IMMEDIATE) so that concurrent syncs queue."""
    if conn.in_transaction:
        yield
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _is_io_problem(exc: sqlite3.DatabaseError) -> bool:
    text = str(exc).lower()
    return any(
        words in text
        for words in ("disk is full", "disk i/o", "unable to open", "readonly", "locked")
    )


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


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
