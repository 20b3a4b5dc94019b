"""Bringing the SQLite index up to date with the experiment folders, which stay the truth.

Every command that reads the index brings it up to date first (:meth:`Index.sync`), never a
script or a worker:

- folders added or removed (new runs, copies from another machine, ``rm -r`` by hand) change
  the modification time of ``experiments/`` (or ``archived/``), which is one ``stat`` to check;
  only then is the folder listed and compared with the index;
- experiments changed by another machine's commands (or by another index's, on this one) are
  named in the store's change journal (``yanex.journal``), read on from where the last sync
  stopped: each is read again at the next sync;
- experiments still expected to change (staged, running) have their ``metadata.json`` (and,
  while running, the growth of ``results.jsonl``) checked at every sync, and runs left
  ``running`` by a launcher that died are recorded as failed, by the record's rule
  (``record.reap``: on this host, its process is gone; on another, its heartbeat stopped:
  see ``identity.Heartbeat``);
- finished experiments edited by hand are found by re-checking the least recently checked
  :func:`verify_batch` of them at every sync (all of them in a store that size or smaller;
  ``yanex reindex`` checks everything at once);
- commands that change experiments (``yanex.manage``) tell the index the rows they changed.

The index (``yanex.index``) owns the file, its connection and its lock; this module owns its
rows, filling a new file too (:meth:`Sync.fill`), and the ``state`` table that says where the
last sync stopped.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

from yanex import journal, record, results_file, store, v06store
from yanex.dotted import leaves
from yanex.errors import StoreError
from yanex.index_rows import ReadyRow, Row, file_fingerprint, folder_fingerprint, read_all, read_row
from yanex.index_values import to_json, typed
from yanex.record import Status, reap

# Finished experiments re-checked per sync for changes made by hand (about 20 ms on a local disk;
# a stat each, so a slow network filesystem may want fewer: YANEX_VERIFY_BATCH).
VERIFY_BATCH = 5000
VERIFY_BATCH_ENV = "YANEX_VERIFY_BATCH"


def verify_batch() -> int:
    """How many finished experiments a sync re-checks (``YANEX_VERIFY_BATCH``, at least 1)."""
    return store.env_number(VERIFY_BATCH_ENV, VERIFY_BATCH, 1)


# A folder whose modification time is this close to the last look may change again within the
# same timestamp tick (coarse on network filesystems): it is looked at again next time.
_RACY_SECONDS = 2.0
# A build's rows are inserted this many at once.
BATCH = 500

_EXPERIMENT_COLUMNS = (
    "id, archived, project, name, description, status, script, tags, created, started, ended, "
    "duration, exit_code, error, sweep, sweep_index, git_commit, git_dirty, host, pid, params, "
    "last, series, steps, origin, fp, results_offset, results_check"
)
_INSERT = f"INSERT INTO experiments ({_EXPERIMENT_COLUMNS}) VALUES ({', '.join('?' * 28)})"
_TWICE = "its ID is in both experiments/ and archived/ (keep one of the two folders)"


class OpenIndex(Protocol):
    """What a sync needs of an open index (``yanex.index.Index``, which imports this module):
    its connection of the moment (a build points it at the new file), its store and notices,
    and its write transaction, taken under its lock."""

    conn: sqlite3.Connection
    home: Path
    echo: Callable[[str], None]
    record_roots: tuple[Path, Path]

    def roots(self) -> list[tuple[Path, bool]]: ...

    def transaction(self) -> AbstractContextManager[None]: ...


class Sync:
    """The rows of one open index, kept true to the folders."""

    def __init__(self, index: OpenIndex) -> None:
        self.index = index
        self.hostname = os.uname().nodename
        self._roots = [f"{root}{os.sep}" for root in index.record_roots]
        self._next_cursor: str | None = None

    @property
    def conn(self) -> sqlite3.Connection:
        return self.index.conn

    def run(self, *, verify: bool) -> None:
        """Bring the rows up to date with the folders (see the module docstring)."""
        from yanex import staging

        staging.recover(self.index.home)  # a grid a killed staging left: undone or shown, first
        noted, journal_at = self._journal_changes()
        # The journal cannot say what changed (replaced, cut, far ahead): check them all.
        changed_roots = self.index.roots() if noted is None else self._changed_roots()
        live = self._live_changes()
        edited = self._verify_batch(not verify, everything=noted is None)
        if changed_roots or live or edited or noted or self._has_waiting() or journal_at:
            with self.index.transaction():
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
        self.tell()

    def fill(self, progress: Callable[[int, int], None]) -> int:
        """Index every folder into the new, empty file of a build; ``progress(done, total)``
        is told at the start (when there are folders) and after each folder. The number of
        folders counted at the start."""
        roots = self.index.roots()
        total = sum(_count_ids(root) for root, _ in roots)
        # What changes from here on is read from the journal at the next sync.
        self._set_state("journal", journal.end(self.index.home))
        if total:
            progress(0, total)
        done = 0

        def advance() -> None:
            nonlocal done
            done += 1
            progress(done, total)

        self.conn.execute("BEGIN")
        for root, archived in roots:
            self._scan_root(root, archived, advance=advance)
        self.conn.execute("COMMIT")
        return total

    def refresh(self, ids: list[str]) -> None:
        with self.index.transaction():
            for experiment_id in ids:
                self._reread(experiment_id)

    def refresh_if_changed(self, experiment_id: str) -> None:
        row = self.conn.execute(
            "SELECT archived, fp, status FROM experiments WHERE id = ?", (experiment_id,)
        ).fetchone()
        if row is None:
            return
        archived, fp, status = row
        now = folder_fingerprint(self._dir(experiment_id, archived))
        if now == fp:
            return
        with self.index.transaction():
            # A running run's results only grew: read on from where the index stopped.
            grew = (
                status == Status.RUNNING and now and now.partition("|")[0] == fp.partition("|")[0]
            )
            self._reread(experiment_id, bool(archived), results_only=bool(grew))

    def tell(self) -> None:
        """Say what every reader says after a sync: the folders left out, 0.6's folders."""
        self._tell_skipped()
        self._tell_v06()

    def _journal_changes(self) -> tuple[list[str] | None, str | None]:
        """The experiments the store's change journal names since this index last read it
        (None: every experiment must be checked), and the journal's new position (None when
        it did not move)."""
        position = self._state("journal")
        if position is None:  # an index made before the journal: it starts from here
            return [], journal.end(self.index.home)
        noted, now = journal.read_since(self.index.home, position)
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
            self.index.echo(
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
        root = self.index.record_roots[0]
        archived = v06store.archived_folders(root)
        told = f"{found}:{len(archived)}"
        if told == (self._state("v06") or "0:0"):
            return
        with self.index.transaction():
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
        self.index.echo(f"{text}; `yanex migrate --dry-run` shows what migrating writes")

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
        for root, archived in self.index.roots():
            key, _ = self._root_key(root)
            if self._state(f"root:{int(archived)}") != key:
                changed.append((root, archived))
        return changed

    def _scan_root(
        self, root: Path, archived: bool, *, advance: Callable[[], None] | None = None
    ) -> None:
        """List one root and index the folders that came, drop those that went. ``advance``:
        the index holds none of them (a build), told of each folder read."""
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
        if advance is None:
            for experiment_id in new:
                self._reread(experiment_id, archived)
        else:
            self._add_new([(i, self._dir(i, archived), archived) for i in new], advance)
        # A root changed within the last tick is looked at again next time.
        self._set_state(f"root:{flag}", "racy" if racy else key)

    def _live_changes(self) -> list[tuple[str, bool, bool]]:
        """Staged and running experiments whose files changed: ``(id, archived, results
        only)``."""
        rows = self.conn.execute(
            "SELECT id, archived, status, fp FROM experiments "
            "INDEXED BY experiments_status WHERE status IN (?, ?)",
            Status.LIVE,
        ).fetchall()
        changes = []
        for experiment_id, archived, status, fp in rows:
            folder = self._dir(experiment_id, archived)
            meta_fp = file_fingerprint(f"{folder}{os.sep}{store.METADATA}")
            if meta_fp is None or not fp.startswith(f"{meta_fp}|"):
                changes.append((experiment_id, bool(archived), False))
            elif status == Status.RUNNING:
                # Grown, or rewritten (at the same size too): its file is not the one read.
                now = file_fingerprint(f"{folder}{os.sep}{store.RESULTS}") or "-"
                if now != fp.partition("|")[2]:
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
            self.index.echo(f"yanex: experiment {experiment_id} {reaped}; recorded as failed")
            with self.index.transaction():
                self._reread(experiment_id, bool(archived))

    def _verify_batch(self, skip: bool, everything: bool = False) -> list[tuple[str, bool]]:
        """Finished experiments whose metadata changed since they were read, from the next
        verify_batch() in turn (a cursor over IDs that wraps around); ``everything``: all."""
        if everything:
            rows = self.conn.execute("SELECT id, archived, fp FROM experiments").fetchall()
        elif skip:
            return []
        else:
            cursor = self._state("verify") or ""
            batch = verify_batch()
            rows = self.conn.execute(
                "SELECT id, archived, fp FROM experiments WHERE id > ? ORDER BY id LIMIT ?",
                (cursor, batch),
            ).fetchall()
            if len(rows) < batch:
                rows += self.conn.execute(
                    "SELECT id, archived, fp FROM experiments WHERE id <= ? ORDER BY id LIMIT ?",
                    (cursor, batch - len(rows)),
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
        return self.index.record_roots[int(archived)] / experiment_id

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
                "SELECT last, series, steps, results_offset, results_check, fp FROM experiments "
                "WHERE id = ?",
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

    def _add_new(self, folders: list[tuple[str, str, bool]], advance: Callable[[], None]) -> None:
        """Index folders the index holds nothing of (a build), read by processes of their
        own when there are many, and inserted a batch at a time; ``advance`` after each."""
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
            advance()
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
        check: int | None,
        fp: str,
    ) -> bool:
        """A running experiment's results, read on from where the last look stopped, or from
        the start when the bytes read then were rewritten since (False: the file shrank or
        cannot be read, read the whole folder again)."""
        if _size(f"{folder}{os.sep}{store.RESULTS}") < offset:
            return False
        summary = results_file.Summary(json.loads(last), json.loads(series), steps)
        try:
            offset = results_file.scan_results(folder, summary, offset, check)
        except record.BadRecord:
            return False
        fp = f"{fp.partition('|')[0]}|{summary.source or '-'}"
        self.conn.execute(
            "UPDATE experiments SET last = ?, series = ?, steps = ?, results_offset = ?, "
            "results_check = ?, fp = ? WHERE id = ?",
            (
                to_json(summary.last),
                to_json(summary.stats),
                summary.lines,
                offset,
                summary.check,
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
