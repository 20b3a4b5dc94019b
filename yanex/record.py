"""One experiment as data: its statuses, its metadata read and written in one place, and what
its folder holds (parameters, logged results, artifacts).

The launcher writes through this module and every reader (the index, ``yanex show``,
``yanex.results``) reads through it, so an experiment means the same thing everywhere.
Metadata changes are read-modify-write under a lock on the folder: the launcher recording an
ending and ``yanex update`` adding a tag at the same moment both keep their change.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import math
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from yanex import journal, store, v06store
from yanex.dotted import leaves
from yanex.errors import DependencyError, StoreError
from yanex.json_policy import NON_FINITE, decode_value
from yanex.regular_files import (
    BadRecord,
    fingerprint,
    first_of,
    open_regular,
    read_regular,
)


class Status:
    """The status names an experiment's ``metadata.json`` holds."""

    STAGED = "staged"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    ALL = (STAGED, RUNNING, COMPLETED, FAILED, CANCELLED)
    ENDED = (COMPLETED, FAILED, CANCELLED)
    LIVE = (STAGED, RUNNING)  # still expected to change on their own


_LOCK = ".lock"

# Types of the metadata fields readers rely on; a folder whose metadata breaks them is skipped.
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "name": (str, type(None)),
    "description": (str, type(None)),
    "script": (str,),
    "args": (list,),
    "cwd": (str,),
    "project": (str, type(None)),
    "created_at": (str,),
    "started_at": (str, type(None)),
    "ended_at": (str, type(None)),
    "duration": (int, float, type(None)),
    "exit_code": (int, type(None)),
    "error": (str, type(None)),
    "sweep": (str, type(None)),
    "sweep_index": (int, type(None)),
    "git": (dict, type(None)),
    "hydra": (dict, type(None)),
    "environment": (dict, type(None)),
    "dependencies": (dict, type(None)),
}


def validate(meta: Any, experiment_id: str) -> dict[str, Any]:
    """``meta`` if it is the metadata of experiment ``experiment_id``; else BadRecord says why."""
    if not isinstance(meta, dict):
        raise BadRecord(f"metadata.json holds a {type(meta).__name__}, not an object")
    if meta.get("id") != experiment_id:
        raise BadRecord(f"metadata.json names experiment {meta.get('id')!r}, not its folder's")
    if meta.get("status") not in Status.ALL:
        raise BadRecord(f"unknown status {meta.get('status')!r}")
    tags = meta.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise BadRecord("tags is not a list of strings")
    for key, types in _FIELD_TYPES.items():
        value = meta.get(key)
        if key in meta and (not isinstance(value, types) or isinstance(value, bool)):
            raise BadRecord(f"{key} is a {type(value).__name__}")
        if isinstance(value, int) and not fits_int64(value):
            raise BadRecord(f"{key} is out of range ({_short(value)})")
    for slot, upstream in (meta.get("dependencies") or {}).items():
        if not isinstance(upstream, str) or not store.is_valid_id(upstream):
            raise BadRecord(f"dependencies.{slot} is not an experiment ID ({_short(upstream)})")
    launcher = meta.get("launcher")
    if isinstance(launcher, dict):
        pid = launcher.get("pid")
        if pid is not None and (not isinstance(pid, int) or isinstance(pid, bool)):
            raise BadRecord(f"launcher.pid is a {type(pid).__name__}")
        if pid is not None and not 0 <= pid < 2**31:
            raise BadRecord(f"launcher.pid is out of range ({_short(pid)})")
    return meta


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def fits_int64(value: int) -> bool:
    """Does SQLite hold this int as an INTEGER (beyond, Python's sqlite3 refuses it)?"""
    return INT64_MIN <= value <= INT64_MAX


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 24 else f"{text[:10]}...{text[-6:]}, {len(text)} digits"


def read_metadata(folder: Path | str) -> dict[str, Any]:
    """The validated metadata of the experiment in ``folder``; BadRecord when unusable,
    FileNotFoundError when the folder holds none (yet)."""
    raw = read_regular(os.path.join(folder, store.METADATA))
    return parse_metadata(raw, folder)


def parse_metadata(raw: bytes, folder: Path | str) -> dict[str, Any]:
    """The validated metadata in the bytes of the metadata.json of ``folder`` (a folder of
    yanex 0.6's read as ours: see ``v06store``); BadRecord when unusable."""
    try:
        meta = json.loads(raw)
    except ValueError as exc:
        raise BadRecord(f"metadata.json is not valid JSON ({exc})") from exc
    except RecursionError:
        raise BadRecord("metadata.json is nested too deeply") from None
    if meta.__class__ is dict and v06store.is_v06(meta):
        meta = _from_v06(meta, folder)
    return validate(meta, os.path.basename(folder))


def _from_v06(meta: dict[str, Any], folder: Path | str) -> dict[str, Any]:
    """yanex 0.6's metadata (with its folder's dependencies.json) read as ours."""
    try:
        depends = read_regular(os.path.join(folder, v06store.DEPENDENCIES))
    except FileNotFoundError:
        depends = None
    try:
        return v06store.metadata(meta, depends)
    except ValueError as exc:
        raise BadRecord(f"a folder of yanex 0.6 whose {exc}") from exc


def v06_results(folder: Path | str) -> tuple[bytes, os.stat_result]:
    """The metrics of a folder of yanex 0.6 (it has no results.jsonl) as results.jsonl lines,
    and the stat of the file they come from; FileNotFoundError when it has none."""
    data, st, name = first_of(folder, v06store.METRICS_FILES)
    try:
        return v06store.results(data, name), st
    except ValueError as exc:
        raise BadRecord(f"a folder of yanex 0.6 whose {exc}") from exc


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[None]:
    """Hold the folder's metadata lock: one read-modify-write of metadata.json at a time."""
    fd = os.open(folder / _LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def write_metadata(folder: Path, meta: Mapping[str, Any], durable: bool = True) -> None:
    """Write the whole metadata atomically (a new experiment; changes go through ``update``)."""
    text = store.record_json(dict(meta))
    store.write_bytes_atomic(folder / store.METADATA, text.encode("utf-8"), durable)
    journal.note_folder(folder)  # other machines' indexes read it from the journal


def update(
    folder: Path,
    changes: Mapping[str, Any] | Callable[[dict[str, Any]], Mapping[str, Any]],
    *,
    only_if: tuple[str, ...] = (),
    durable: bool = True,
) -> dict[str, Any] | None:
    """Apply ``changes`` to the metadata on disk, under the folder's lock; the new metadata.

    ``changes`` may be a function of the current metadata (to add a tag to those there).
    With ``only_if``, the change is made only while the status is one of those (None is
    returned otherwise): a run recorded as ended is never reopened by a late writer.
    ``durable=False`` skips waiting for the disk (see ``store.write_bytes_atomic``).
    """
    if not (folder / _LOCK).exists():  # never locked: it may be 0.6's, which gets no lock file
        _refuse_v06(folder, store.read_json(folder / store.METADATA))
    with locked(folder):
        meta = store.read_json(folder / store.METADATA)
        _refuse_v06(folder, meta)
        if only_if and meta.get("status") not in only_if:
            return None
        meta.update(changes(meta) if callable(changes) else changes)
        store.write_bytes_atomic(folder / store.METADATA, store.record_json(meta).encode(), durable)
    journal.note_folder(folder)  # other machines' indexes read it from the journal
    return meta


def _refuse_v06(folder: Path, meta: Any) -> None:
    """A folder of yanex 0.6 is read as it is, never changed (``yanex migrate`` makes it ours)."""
    if isinstance(meta, dict) and v06store.is_v06(meta):
        raise StoreError(
            f"experiment {folder.name} is a folder of yanex 0.6: it is read as it is, "
            "never changed",
            hint=f"`yanex migrate {folder.name}` makes it an experiment of this yanex "
            "(`--dry-run` first lists what that writes).",
        )


# --- results --------------------------------------------------------------------------------


def parse_results(data: bytes) -> tuple[list[dict[str, Any]], int]:
    """The whole lines of ``results.jsonl`` bytes, and how many bytes they span.

    A last line without its newline is being written (or was torn): it is left for later.
    Lines that are not a result object are skipped. Values stand as written (see
    :func:`yanex.json_policy.decode_value` for NaN and the infinities).
    """
    end = data.rfind(b"\n") + 1
    if not end:
        return [], 0
    text = data[:end].decode("utf-8", "replace")
    try:  # one parse for the whole file: the common case, and much faster than line by line
        lines = json.loads("[" + text.rstrip().replace("\n", ",") + "]")
    except (ValueError, RecursionError):
        lines = []
        for raw in text.splitlines():
            with contextlib.suppress(ValueError, RecursionError):
                lines.append(json.loads(raw))
    return [
        line for line in lines if isinstance(line, dict) and isinstance(line.get("results"), dict)
    ], end


def last_values(lines: list[dict[str, Any]], into: dict[str, Any] | None = None) -> dict[str, Any]:
    """The last value each result name was logged with (added to ``into`` when given)."""
    last = into if into is not None else {}
    for line in lines:
        last.update(line["results"])
    return last


def read_results(folder: Path) -> list[dict[str, Any]]:
    """Every whole line the script logged, oldest first: ``{"step", "timestamp", "results"}``,
    NaN and the infinities as floats."""
    try:
        data = read_regular(folder / store.RESULTS)
    except FileNotFoundError:
        try:
            data = v06_results(folder)[0]
        except FileNotFoundError:
            return []
    lines = parse_results(data)[0]
    for line in lines:
        line["results"] = {k: decode_value(v) for k, v in line["results"].items()}
    return lines


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass
class Series:
    """What ``yanex list`` and ``show`` say of one logged result: its last value, the smallest
    and largest (numbers only, NaN left out), how many steps logged it, and the last step."""

    last: Any = None
    min: float | None = None
    max: float | None = None
    count: int = 0
    last_step: int | None = None

    def add(self, value: Any, step: Any) -> None:
        value = decode_value(value)
        self.last = value
        self.count += 1
        if isinstance(step, int):
            self.last_step = step
        if is_number(value) and not math.isnan(value):
            self.min = value if self.min is None else min(self.min, value)
            self.max = value if self.max is None else max(self.max, value)

    def to_json(self) -> dict[str, Any]:
        return {
            "last": self.last,
            "min": self.min,
            "max": self.max,
            "count": self.count,
            "last_step": self.last_step,
        }


def summarize(
    lines: list[dict[str, Any]], into: dict[str, Series] | None = None
) -> dict[str, Series]:
    """Each result name with its :class:`Series`, adding ``lines`` to ``into`` when given."""
    series = into if into is not None else {}
    for line in lines:
        for name, value in line["results"].items():
            series.setdefault(name, Series()).add(value, line.get("step"))
    return series


class Summary:
    """What the results of a run come to, read once from ``results.jsonl`` (and on from where
    the last read stopped while it grows): each result's last value (dicts merged, so a nested
    result's leaves each keep their last value), and per dotted leaf how many lines logged it,
    its smallest and largest number (NaN left out) and the last step that logged it.

    The index keeps it, so ``yanex show`` and the dashboard say these exact numbers of a run
    of a million steps without reading its file again.
    """

    def __init__(
        self,
        last: dict[str, Any] | None = None,
        stats: dict[str, list[Any]] | None = None,
        lines: int = 0,
    ) -> None:
        self.last: dict[str, Any] = last if last is not None else {}
        self.stats: dict[str, list[Any]] = stats if stats is not None else {}  # count, min,
        self.lines = lines  # max, last step
        self.source: str | None = None  # the fingerprint of the results.jsonl read last

    def add(self, lines: list[dict[str, Any]]) -> None:
        merge, last = self._merge, self.last
        for line in lines:
            step = line.get("step")
            try:
                merge(last, line["results"], "", step if step.__class__ is int else None)
            except RecursionError:
                continue  # nested deeper than Python walks: hostile, left out
            self.lines += 1

    def _merge(self, into: dict[str, Any], results: dict[str, Any], prefix: str, step: Any) -> None:
        # Called for every logged line of every run the index reads: kept tight.
        stats = self.stats
        for name, value in results.items():
            cls = value.__class__
            if cls is dict and value:
                sub = into.get(name)
                if sub.__class__ is not dict:
                    sub = into[name] = {}
                self._merge(sub, value, f"{prefix}{name}.", step)
                continue
            if cls is str:
                value = NON_FINITE.get(value, value)
                cls = value.__class__
            into[name] = value
            key = prefix + name if prefix else name
            stat = stats.get(key)
            if stat is None:
                stat = stats[key] = [0, None, None, None]
            stat[0] += 1
            if step is not None:
                stat[3] = step
            if (cls is float and value == value) or cls is int:
                low = stat[1]
                if low is None:
                    stat[1] = stat[2] = value
                elif value < low:
                    stat[1] = value
                elif value > stat[2]:
                    stat[2] = value

    def merge(self, later: Summary) -> None:
        """Add the summary of the lines that came after these (a part read elsewhere)."""
        _merge_last(self.last, later.last)
        for key, (count, low, high, step) in later.stats.items():
            stat = self.stats.get(key)
            if stat is None:
                self.stats[key] = [count, low, high, step]
                continue
            stat[0] += count
            if low is not None and (stat[1] is None or low < stat[1]):
                stat[1] = low
            if high is not None and (stat[2] is None or high > stat[2]):
                stat[2] = high
            if step is not None:
                stat[3] = step
        self.lines += later.lines

    def series(self) -> dict[str, Series]:
        """Each leaf of the last values with its :class:`Series`."""
        found = {}
        for leaf, value in leaves(self.last):
            count, low, high, step = self.stats.get(leaf) or (0, None, None, None)
            found[leaf] = Series(value, low, high, count, step)
        return found


def _merge_last(into: dict[str, Any], later: dict[str, Any]) -> None:
    for name, value in later.items():
        if value.__class__ is dict and value and into.get(name).__class__ is dict:
            _merge_last(into[name], value)
        else:
            into[name] = value


RESULTS_CHUNK = 4 * 1024 * 1024  # bytes of results.jsonl parsed at a time (memory stays flat)


def iter_results(folder: Path | str, offset: int = 0) -> Iterator[list[dict[str, Any]]]:
    """The whole lines ``results.jsonl`` holds past ``offset``, a chunk of them at a time (as
    :func:`parse_results` has them): a file of any size in a few MB of memory. BadRecord when
    it is not a file. :func:`scan_results` says where the lines ended."""
    for data in iter_result_bytes(folder, offset):
        yield parse_results(data)[0]


def iter_result_bytes(folder: Path | str, offset: int = 0) -> Iterator[bytes]:
    """The bytes of ``results.jsonl`` past ``offset``, a chunk of whole lines at a time."""
    try:
        fd, st = open_regular(os.path.join(folder, store.RESULTS))
    except FileNotFoundError:
        with contextlib.suppress(FileNotFoundError):
            data = v06_results(folder)[0][offset:]
            if data:
                yield data
        return
    try:
        yield from _whole_lines(fd, offset, st.st_size)
    finally:
        os.close(fd)


def _whole_lines(fd: int, start: int, stop: int) -> Iterator[bytes]:
    """Chunks of the whole lines between ``start`` and ``stop`` (a line begins at start)."""
    pos, rest = start, b""
    while pos < stop:
        try:
            data = os.pread(fd, min(RESULTS_CHUNK, stop - pos), pos)
        except OSError as exc:
            raise BadRecord(f"{store.RESULTS} cannot be read: {exc.strerror or exc}") from exc
        if not data:
            break
        pos += len(data)
        if rest:
            data = rest + data
        end = data.rfind(b"\n") + 1
        rest = data[end:]
        if end:
            yield data[:end]


# From this size on, what is left to read of one results.jsonl is summarized in parts by
# processes of their own (fork, on Linux, with no other thread running), then merged.
PARALLEL_BYTES = 32 * 1024 * 1024


def scan_results(folder: Path | str, summary: Summary, offset: int = 0) -> int:
    """Add to ``summary`` the whole lines ``results.jsonl`` holds past ``offset``; the offset
    after the last whole line. BadRecord when it is not a file."""
    summary.source = None
    try:
        fd, st = open_regular(os.path.join(folder, store.RESULTS))
    except FileNotFoundError:
        try:
            data, st = v06_results(folder)
        except FileNotFoundError:
            return offset
        summary.source = fingerprint(st)
        summary.add(parse_results(data[offset:])[0])
        return len(data)
    summary.source = fingerprint(st)
    try:
        saved = _saved_summary(folder, fd, st, offset)
        if saved is not None:  # it covers more of the file than ``summary``: start from it
            kept, offset = saved
            summary.last, summary.stats, summary.lines = kept.last, kept.stats, kept.lines
        parts = _parts(fd, offset, st.st_size)
        if len(parts) > 1:
            return _scan_parallel(fd, parts, summary)
        for data in _whole_lines(fd, offset, st.st_size):
            summary.add(parse_results(data)[0])
            offset += len(data)
        return offset
    finally:
        os.close(fd)


def _parts(fd: int, start: int, stop: int) -> list[tuple[int, int]]:
    """``[start, stop)`` cut at line ends into one part per worker, when it is big enough and
    workers are safe; else the whole."""
    import multiprocessing
    import threading

    workers = min(os.cpu_count() or 1, 4)
    if (
        stop - start < PARALLEL_BYTES
        or workers < 2
        or not sys.platform.startswith("linux")
        or threading.active_count() > 1
        or multiprocessing.parent_process() is not None  # a worker already
    ):
        return [(start, stop)]
    cuts = [start]
    for i in range(1, workers):
        at = start + (stop - start) * i // workers
        window = os.pread(fd, 1 << 20, at)
        newline = window.find(b"\n")
        if newline >= 0 and at + newline + 1 > cuts[-1]:
            cuts.append(at + newline + 1)
    cuts.append(stop)
    return list(itertools.pairwise(cuts))


def _scan_parallel(fd: int, parts: list[tuple[int, int]], summary: Summary) -> int:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("fork")  # the descriptor is shared, nothing imported
    with ProcessPoolExecutor(max_workers=len(parts), mp_context=context) as pool:
        found = list(pool.map(_summarize_part, [(fd, a, b) for a, b in parts]))
    end = parts[0][0]
    for part, used in found:
        summary.merge(part)
        end += used
    return end


def _summarize_part(job: tuple[int, int, int]) -> tuple[Summary, int]:
    fd, start, stop = job
    part, used = Summary(), 0
    for data in _whole_lines(fd, start, stop):
        part.add(parse_results(data)[0])
        used += len(data)
    return part, used


# --- the summary file: a long results.jsonl summarized while it grows -------------------------

# From this many bytes on, the launcher keeps the summary of results.jsonl beside it while the
# run writes it (see yanex.summary_keeper), and a reader starts from there: the first `show`
# of a run of a million steps parses the last few MB, not 120.
SUMMARY_FILE_BYTES = 8 * 1024 * 1024


def summarize_more(
    folder: Path | str, summary: Summary, offset: int, crc: int, inode: int
) -> tuple[int, int] | None:
    """Add to ``summary`` the whole lines of results.jsonl past ``offset``; the new offset,
    and ``crc`` (zlib.crc32) carried on over the very bytes parsed. None when results.jsonl
    is no longer the file of ``inode`` (replaced: start again)."""
    import zlib

    fd, st = open_regular(os.path.join(folder, store.RESULTS))
    try:
        if st.st_ino != inode or st.st_size < offset:
            return None
        for data in _whole_lines(fd, offset, st.st_size):
            summary.add(parse_results(data)[0])
            crc = zlib.crc32(data, crc)
            offset += len(data)
        return offset, crc
    finally:
        os.close(fd)


def save_summary(
    folder: Path | str, summary: Summary, offset: int, crc: int, st: os.stat_result
) -> None:
    """Write ``.results-summary.json``: ``summary`` is of the first ``offset`` bytes of
    results.jsonl (the file ``st`` describes), whose CRC-32 is ``crc``. A reader uses it
    only for those very bytes: a replaced or rewritten file makes it stale, never wrong. A
    cache, written without fsync (one lost with a crash is read again from the file)."""
    saved = {
        "version": 1,
        "device": st.st_dev,
        "inode": st.st_ino,
        "offset": offset,
        "crc32": crc,
        "lines": summary.lines,
        "last": summary.last,
        "stats": summary.stats,
        "summary_crc32": _summary_crc(summary.lines, summary.last, summary.stats),
    }
    text = json.dumps(saved, ensure_ascii=False, separators=(",", ":"))
    store.write_bytes_atomic(Path(folder) / store.RESULTS_SUMMARY, text.encode(), durable=False)


def _summary_crc(lines: int, last: dict[str, Any], stats: dict[str, Any]) -> int:
    """The CRC-32 of the summary itself: an edit by hand is seen (the file is read instead)."""
    import zlib

    text = json.dumps([lines, last, stats], ensure_ascii=False, separators=(",", ":"))
    return zlib.crc32(text.encode("utf-8", "surrogatepass"))


def _crc32(fd: int, stop: int) -> int:
    import zlib

    crc, pos = 0, 0
    while pos < stop:
        data = os.pread(fd, min(RESULTS_CHUNK, stop - pos), pos)
        if not data:
            break
        crc = zlib.crc32(data, crc)
        pos += len(data)
    return crc


def _saved_summary(
    folder: Path | str, fd: int, st: os.stat_result, offset: int
) -> tuple[Summary, int] | None:
    """The summary file's summary and offset, when it is of this very file's bytes (their
    CRC-32, a tenth of a second for 120 MB) and covers more of it than ``offset`` by at least
    SUMMARY_FILE_BYTES (below that, parsing is as quick)."""
    if st.st_size - offset < SUMMARY_FILE_BYTES:
        return None
    try:
        saved = json.loads(read_regular(os.path.join(folder, store.RESULTS_SUMMARY)))
        at, last, stats, lines = saved["offset"], saved["last"], saved["stats"], saved["lines"]
        if not (
            saved["version"] == 1
            and saved["device"] == st.st_dev
            and saved["inode"] == st.st_ino
            and at.__class__ is int
            and offset + SUMMARY_FILE_BYTES <= at <= st.st_size
            and last.__class__ is dict
            and stats.__class__ is dict
            and lines.__class__ is int
            and all(_is_stat(stat) for stat in stats.values())
            and _summary_crc(lines, last, stats) == saved["summary_crc32"]
            and _crc32(fd, at) == saved["crc32"]
        ):
            return None
    except (FileNotFoundError, BadRecord, OSError, ValueError, KeyError, TypeError, RecursionError):
        return None  # none, or not one this yanex wrote: the file is read instead
    return Summary(last, stats, lines), at


def _is_stat(stat: Any) -> bool:
    """``[count, smallest, largest, last step]`` as Summary keeps it."""
    if stat.__class__ is not list or len(stat) != 4:
        return False
    count, low, high, step = stat
    return (
        count.__class__ is int
        and all(v is None or v.__class__ in (int, float) for v in (low, high))
        and (step is None or step.__class__ is int)
    )


def tail_results(folder: Path | str, count: int = 10) -> list[dict[str, Any]]:
    """The last ``count`` whole lines of ``results.jsonl`` (as :func:`read_results` has them),
    read from its end: a file of a million lines costs what one of ten does."""
    try:
        fd, st = open_regular(os.path.join(folder, store.RESULTS))
    except FileNotFoundError:
        try:
            data = v06_results(folder)[0]
        except FileNotFoundError:
            return []
        return _decoded(parse_results(data)[0][-count:])
    try:
        pos = st.st_size
        data, block = b"", 64 * 1024
        while pos > 0 and data.count(b"\n") <= count + 1:
            start = max(0, pos - block)
            os.lseek(fd, start, os.SEEK_SET)
            data = os.read(fd, pos - start) + data
            pos, block = start, block * 2
    finally:
        os.close(fd)
    data = data[: data.rfind(b"\n") + 1]  # a last line being written is left out
    if pos > 0:
        data = data[data.find(b"\n") + 1 :]  # begin at a whole line
    return _decoded(parse_results(data)[0][-count:])


def _decoded(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for line in lines:
        line["results"] = {k: decode_value(v) for k, v in line["results"].items()}
    return lines


# --- artifacts ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Artifact:
    """A file the script saved: its name inside ``artifacts/``, size in bytes, and path."""

    name: str
    size: int
    path: Path


def artifacts(folder: Path) -> list[Artifact]:
    """The experiment's artifacts, by name; yanex's temp files and folders (being written, or
    left by a crash: see store.is_temp_name) are left out."""
    root = folder / store.ARTIFACTS
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(name for name in dirnames if not store.is_temp_name(name))
        for filename in sorted(filenames):
            if store.is_temp_name(filename):
                continue
            path = Path(dirpath) / filename
            with contextlib.suppress(OSError):
                found.append(Artifact(path.relative_to(root).as_posix(), path.stat().st_size, path))
    return found


def params_json(config: Mapping[str, Any]) -> str:
    """The resolved parameters as ``params.json`` holds them (what ``get_param`` reads)."""
    return json.dumps(config, indent=2, ensure_ascii=False) + "\n"


def config_yaml(config: Mapping[str, Any]) -> str:
    """The resolved parameters as ``config.yaml`` holds them (block style, keys in order)."""
    if not config:
        return "{}\n"
    import yaml

    # libyaml's emitter is 4x faster, and writes what PyYAML's own does when every string is
    # printable ASCII and the keys short (checked on 50,000 random configs); beyond that they
    # differ (libyaml escapes an emoji, wraps escaped text elsewhere): PyYAML's text is kept.
    plain = _printable_ascii(config)
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper) if plain else yaml.SafeDumper
    return yaml.dump(
        dict(config), Dumper=dumper, sort_keys=False, allow_unicode=True, default_flow_style=False
    )


def _printable_ascii(node: Any) -> bool:
    """Is every string of a plain config printable ASCII, and every key such a string of 1 to
    64 characters (PyYAML writes an empty key, or one near 128 characters written, as a complex
    key; libyaml does not)?"""
    if isinstance(node, str):
        return node.isascii() and node.isprintable()
    if isinstance(node, dict):
        return all(
            isinstance(k, str) and 0 < len(k) <= 64 and _printable_ascii(k) and _printable_ascii(v)
            for k, v in node.items()
        )
    if isinstance(node, list):
        return all(_printable_ascii(v) for v in node)
    return True


def read_params(folder: Path | str) -> dict[str, Any]:
    """The run's resolved parameters (``params.json``; in a folder of yanex 0.6, its
    ``params.yaml``); {} when missing or not JSON; BadRecord when it is not a file (a FIFO, a
    device), or 0.6's parameters cannot be read."""
    try:
        params = json.loads(read_regular(os.path.join(folder, store.PARAMS)))
    except FileNotFoundError:
        return v06_params(folder)
    except (ValueError, RecursionError):
        return {}
    return params if isinstance(params, dict) else {}


def v06_params(folder: Path | str) -> dict[str, Any]:
    """The parameters of a folder of yanex 0.6 (it has no params.json); {} when it has none."""
    try:
        data, _, name = first_of(folder, v06store.PARAMS_FILES)
    except FileNotFoundError:
        return {}
    try:
        return v06store.params(data, name)
    except ValueError as exc:
        raise BadRecord(f"a folder of yanex 0.6 whose {exc}") from exc


# --- the reader's view ----------------------------------------------------------------------


def _datetime(stamp: float | None) -> datetime | None:
    return None if stamp is None else datetime.fromtimestamp(stamp).astimezone()


@dataclass(repr=False)
class Record:
    """One experiment as readers see it: what the index holds, the folder read on demand.

    ``params`` is the resolved config, ``last`` each result's last logged value and
    ``series`` each result's summary (all from the index); ``metadata``, ``results`` (every
    logged line) and ``artifacts`` read the folder. ``created``, ``started`` and ``ended``
    are timezone-aware datetimes (``*_ts``: the same as seconds since the epoch).

    The index's text is decoded when an attribute is first used: ``yanex.results.find()`` of
    100,000 experiments builds its records without parsing what nobody reads.
    """

    id: str
    archived: bool
    status: str
    name: str | None
    description: str | None
    tags_json: str
    project: str | None
    script: str | None
    created_ts: float | None
    started_ts: float | None
    ended_ts: float | None
    duration: float | None
    exit_code: int | None
    error: str | None
    sweep: str | None
    sweep_index: int | None
    params_json: str
    last_json: str
    series_json: str  # per result leaf: [count, min, max, last step]
    steps: int  # the lines of results.jsonl indexed
    root: Path  # the store folder it is in (experiments/ or archived/)
    git_commit: str | None = None  # the commit it ran (metadata's git.commit)
    git_dirty: bool | None = None  # with uncommitted changes (None: not in a git repository)

    @cached_property
    def dir(self) -> Path:
        return self.root / self.id

    @cached_property
    def tags(self) -> list[str]:
        return json.loads(self.tags_json)

    @cached_property
    def params(self) -> dict[str, Any]:
        return json.loads(self.params_json)

    @cached_property
    def last(self) -> dict[str, Any]:
        """Each result's last logged value (a nested result's leaves each their last)."""
        return json.loads(self.last_json)

    @property
    def created(self) -> datetime | None:
        return _datetime(self.created_ts)

    @property
    def started(self) -> datetime | None:
        return _datetime(self.started_ts)

    @property
    def ended(self) -> datetime | None:
        return _datetime(self.ended_ts)

    @cached_property
    def series(self) -> dict[str, Series]:
        """Each result leaf (``val.f1``) with its last value, min, max, number of steps and
        last step: exact, kept in the index (``results.jsonl`` is not read again)."""
        return Summary(self.last, json.loads(self.series_json), self.steps).series()

    def tail(self, count: int = 10) -> list[dict[str, Any]]:
        """The last ``count`` lines the script logged (read from the end of the file)."""
        return tail_results(self.dir, count)

    @cached_property
    def metadata(self) -> dict[str, Any]:
        """The whole ``metadata.json`` ({} if the folder is gone or unreadable)."""
        try:
            return read_metadata(self.dir)
        except (OSError, BadRecord):
            return {}

    @property
    def results(self) -> list[dict[str, Any]]:
        """Every line the script logged: ``{"step", "timestamp", "results"}``, oldest first
        (the whole file in memory: :meth:`tail` and :attr:`series` read less)."""
        return read_results(self.dir)

    @property
    def artifacts(self) -> list[Artifact]:
        return artifacts(self.dir)

    def output_file(self, name: str) -> Path:
        """Where its ``stdout.txt``, ``stderr.txt`` or ``git.patch`` is: in its folder; in a
        folder of yanex 0.6 (read as it is), where 0.6 kept it (``artifacts/``)."""
        if v06store.MARKER in self.metadata:
            kept = v06store.output_file(self.dir, name)
            if kept is not None:
                return kept
        return self.dir / name

    def __repr__(self) -> str:
        return f"<Record {self.id} {self.status} name={self.name!r}>"


# --- a run whose launcher is gone ---------------------------------------------------------


# --- what an experiment depends on ------------------------------------------------------------

DEPENDENCIES = "dependencies"  # in metadata.json: {slot: full id} (``-D``)


def depends_on(meta: Mapping[str, Any]) -> dict[str, str]:
    """The dependencies a metadata records, ``{slot: id}`` ({} for none)."""
    found = meta.get(DEPENDENCIES)
    return dict(found) if isinstance(found, dict) else {}


def folder_by_id(experiment_id: str, home: Path | None = None) -> Path | None:
    """Where experiment ``experiment_id`` is (``experiments/`` or ``archived/``), or None."""
    if not store.is_valid_id(experiment_id):
        return None
    for root in (store.experiments_root(home), store.archived_root(home)):
        if (root / experiment_id / store.METADATA).is_file():
            return root / experiment_id
    return None


def read_by_id(experiment_id: str, home: Path | None = None) -> dict[str, Any] | None:
    """An experiment's metadata, found in the store (None: gone or unreadable)."""
    folder = folder_by_id(experiment_id, home)
    if folder is None:
        return None
    try:
        return read_metadata(folder)
    except (OSError, BadRecord):
        return None


def upstream(experiment_id: str, home: Path | None = None) -> list[str]:
    """Every experiment ``experiment_id`` depends on, directly or not, upstream first (a
    topological order), read from the folders. A cycle (metadata edited by hand) raises
    DependencyError."""
    import graphlib

    graph: dict[str, list[str]] = {}
    todo = [experiment_id]
    while todo:
        current = todo.pop(0)
        if current in graph:
            continue
        meta = read_by_id(current, home)
        ups = list(depends_on(meta).values()) if meta is not None else []
        graph[current] = ups
        todo.extend(ups)
    try:
        order = list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        raise DependencyError(
            f"the dependencies of {experiment_id} form a cycle: {' -> '.join(exc.args[1])}"
        ) from None
    return [found for found in order if found != experiment_id]


def reap(folder: Path, hostname: str) -> str | None:
    """Record a ``running`` experiment as ``failed`` when its launcher is gone, so that no run
    stays "running" forever: on this host, its process no longer runs (killed with SIGKILL;
    its pid free or reused since); on another host, its heartbeat was not renewed in time (the
    machine died or lost the store: see ``identity.Heartbeat``). What happened, when it was
    reaped; None otherwise."""
    from yanex import identity

    meta = read_metadata(folder)
    launcher = identity.ProcessId.from_metadata(meta.get("launcher"))
    if meta.get("status") != Status.RUNNING or launcher is None:
        return None
    if launcher.host == hostname:
        if not launcher.is_gone():
            return None
        what = "was left running by a launcher that died"
        reason = (
            f"launcher died: yanex (pid {launcher.pid} on {hostname}) stopped without "
            "recording how the run ended"
        )
    else:
        silent = identity.Heartbeat.silence(folder, launcher)
        if silent is None:
            return None
        what = f"lost its launcher on {launcher.host}"
        reason = f"launcher lost: {silent}"
    changes: dict[str, Any] = {"status": Status.FAILED, "ended_at": store.now_iso()}
    changes["error"] = reason
    warnings = store.read_warnings(folder)
    if warnings:
        changes["warnings"] = [*(meta.get("warnings") or []), *warnings]
    if update(folder, changes, only_if=(Status.RUNNING,)) is None:
        return None
    with contextlib.suppress(OSError):  # the dead launcher's, if it left one
        (folder / identity.HEARTBEAT).unlink()
    return what
