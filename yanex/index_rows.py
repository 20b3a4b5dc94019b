"""One experiment folder read into the index's rows (the experiment, its tags, parameters,
results and dependencies), and a big build's worker processes, which read folders in chunks.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from yanex import record, regular_files, results_file, store, v06store
from yanex.dotted import leaves
from yanex.index_values import ENCODER, epoch, typed


def file_fingerprint(path: Path | str) -> str | None:
    try:
        return regular_files.fingerprint(os.stat(path))
    except OSError:
        return None


def folder_fingerprint(folder: str) -> str | None:
    """metadata.json's and results.jsonl's: a change to either is seen (None: no metadata)."""
    meta = file_fingerprint(f"{folder}{os.sep}{store.METADATA}")
    if meta is None:
        return None
    return f"{meta}|{file_fingerprint(f'{folder}{os.sep}{store.RESULTS}') or '-'}"


class Row:
    """One experiment as read from its folder, ready to be written into the index."""

    __slots__ = ("archived", "fp", "id", "meta", "offset", "params", "summary")

    def __init__(self, folder: str, archived: bool) -> None:
        """Read the folder: FileNotFoundError (no metadata yet) or BadRecord."""
        raw, st = regular_files.read_regular_stat(f"{folder}{os.sep}{store.METADATA}")
        self.meta = meta = record.parse_metadata(raw, folder)
        self.id = meta["id"]
        self.archived = archived
        self.params = record.read_params(folder)
        self.summary = results_file.Summary()
        self.offset = results_file.scan_results(folder, self.summary)
        # What was read, by the descriptors read from: a later change shows next time.
        self.fp = f"{regular_files.fingerprint(st)}|{self.summary.source or '-'}"

    def values(self) -> tuple[Any, ...]:
        meta = self.meta
        launcher = meta.get("launcher") if isinstance(meta.get("launcher"), dict) else {}
        pid = launcher.get("pid")
        git = meta.get("git") or {}
        commit, dirty = git.get("commit"), git.get("dirty")
        encode = ENCODER.encode
        return (
            self.id,
            int(self.archived),
            meta.get("project"),
            meta.get("name"),
            meta.get("description"),
            meta["status"],
            meta.get("script"),
            encode(meta.get("tags") or []),
            epoch(meta.get("created_at")),
            epoch(meta.get("started_at")),
            epoch(meta.get("ended_at")),
            meta.get("duration"),
            meta.get("exit_code"),
            meta.get("error"),
            meta.get("sweep"),
            meta.get("sweep_index"),
            commit if isinstance(commit, str) else None,
            int(dirty) if isinstance(dirty, bool) else None,
            launcher.get("hostname") if isinstance(launcher.get("hostname"), str) else None,
            pid if isinstance(pid, int) and not isinstance(pid, bool) else None,
            encode(self.params),
            encode(self.summary.last),
            encode(self.summary.stats),
            self.summary.lines,
            "0.6" if v06store.MARKER in meta else None,
            self.fp,
            self.offset,
            self.summary.check,
        )

    def rows(self) -> tuple[list[tuple[Any, ...]], ...]:
        """Its rows of the tags, params, results and dependencies tables."""
        experiment_id = self.id
        depends = self.meta.get("dependencies") or {}
        return (
            [(experiment_id, tag) for tag in dict.fromkeys(self.meta.get("tags") or [])],
            [(experiment_id, key, *typed(v)) for key, v in leaves(self.params)],
            [(experiment_id, key, *typed(v)) for key, v in leaves(self.summary.last)],
            [(experiment_id, slot, up, i) for i, (slot, up) in enumerate(depends.items())],
        )


def read_row(folder: Path | str, archived: bool) -> Row:
    """Read one experiment folder; FileNotFoundError (no metadata yet) or BadRecord."""
    return Row(str(folder), archived)


class ReadyRow:
    """A row's values, computed where the folder was read (a build's worker process)."""

    __slots__ = ("archived", "depends", "id", "params", "results", "tags", "vals")

    def __init__(self, row: Row) -> None:
        self.id, self.archived = row.id, row.archived
        self.vals = row.values()
        self.tags, self.params, self.results, self.depends = row.rows()

    def values(self) -> tuple[Any, ...]:
        return self.vals

    def rows(self) -> tuple[list[tuple[Any, ...]], ...]:
        return self.tags, self.params, self.results, self.depends


# A build reads folders in processes of their own (fork: nothing is imported again) from
# this many on, a chunk each, where that is safe: Linux, and no other thread running.
PARALLEL_FROM = 5000
_CHUNK = 250
_Read = ReadyRow | tuple[str, str, str, bool, str]


def read_folders(folders: list[tuple[str, str, bool]]) -> list[_Read]:
    """Each folder read: a ready row, ("pending", id, folder, archived, "") when it has no
    metadata yet, or ("broken", id, folder, archived, why)."""
    found: list[_Read] = []
    for experiment_id, folder, archived in folders:
        try:
            found.append(ReadyRow(read_row(folder, archived)))
        except FileNotFoundError:
            found.append(("pending", experiment_id, folder, archived, ""))
        except record.BadRecord as exc:
            found.append(("broken", experiment_id, folder, archived, str(exc)))
    return found


def read_all(folders: list[tuple[str, str, bool]]) -> Iterator[_Read]:
    import threading

    workers = min(os.cpu_count() or 1, 4)
    parallel = (
        len(folders) >= PARALLEL_FROM
        and workers > 1
        and sys.platform == "linux"
        and threading.active_count() == 1
    )
    if not parallel:
        for one in folders:
            yield from read_folders([one])
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    chunks = [folders[i : i + _CHUNK] for i in range(0, len(folders), _CHUNK)]
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        for found in pool.map(read_folders, chunks):
            yield from found
