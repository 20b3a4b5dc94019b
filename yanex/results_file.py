"""An experiment's results file, ``results.jsonl`` (one line per ``log_results`` call), and
the summary kept beside a long one, ``.results-summary.json``: reading its lines, whole or a
chunk at a time or from the end, and what they come to (each result's last value, count,
smallest, largest and last step), serially, in parallel parts, or on from a kept summary.
Every way of reading gives the same answer: a line is a result by itself (see
:func:`parse_results`), and parts merge as one pass reads (see :class:`Summary`).

``record.Record``, the index, the dashboard and ``yanex.results`` read results here; the
launcher's ``summary_keeper`` writes the kept summary through here.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import math
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yanex import store, v06store
from yanex.dotted import leaves
from yanex.json_policy import NON_FINITE, decode_value
from yanex.regular_files import BadRecord, fingerprint, first_of, open_regular, read_regular


def v06_results(folder: Path | str) -> tuple[bytes, os.stat_result]:
    """The metrics of a folder of yanex 0.6 (it has no results.jsonl) as results.jsonl lines,
    and the stat of the file they come from; FileNotFoundError when it has none."""
    data, st, name = first_of(folder, v06store.METRICS_FILES)
    try:
        return v06store.results(data, name), st
    except ValueError as exc:
        raise BadRecord(f"a folder of yanex 0.6 whose {exc}") from exc


def parse_results(data: bytes) -> tuple[list[dict[str, Any]], int]:
    """The whole lines of ``results.jsonl`` bytes, and how many bytes they span.

    A line is the bytes up to a newline, and a result when it is one JSON object with an
    object ``results``; any other line (two objects, a part of one, not JSON) is skipped, by
    itself: however the file is cut into chunks, parts or a tail, the same lines count. A
    last line without its newline is being written (or was torn): it is left for later.
    Values stand as written (see :func:`yanex.json_policy.decode_value` for NaN and the
    infinities).
    """
    end = data.rfind(b"\n") + 1
    if not end:
        return [], 0
    text = data[: end - 1].decode("utf-8", "replace")
    lines = _one_parse(text)
    if lines is None:  # a line that is not one JSON value: each line parsed by itself
        lines = []
        for raw in text.split("\n"):
            with contextlib.suppress(ValueError, RecursionError):
                lines.append(json.loads(raw))
    return [
        line for line in lines if isinstance(line, dict) and isinstance(line.get("results"), dict)
    ], end


# Put between two lines for the one parse of many: a JSON string of one NUL character, which
# a line can only write as the escape \u0000 (a JSON string holds no raw control character).
_BETWEEN = ',"\\u0000",\n'
_NUL = "\0"


def _one_parse(lines: str) -> list[Any] | None:
    """The JSON value of each of the newline-separated ``lines`` in one parse, much faster
    than one per line; None unless each line is exactly one value.

    Joined by commas alone, a line of two values (``{..},{..}``) would count twice and a list
    cut by a newline once. Joined by ``_BETWEEN``, the parse is the lines' own only when it
    gives a value, a NUL string, a value and so on, one value per line: no line writes a NUL
    string (checked first), so each NUL between values is one ``_BETWEEN``, and a value that
    swallowed one (a list cut by a newline) leaves one missing. A newline inside a string is
    an error either way.
    """
    if "\\u0000" in lines:
        return None
    try:
        values = json.loads("[" + lines.replace("\n", _BETWEEN) + "]")
    except (ValueError, RecursionError):
        return None
    count = lines.count("\n") + 1
    if len(values) != 2 * count - 1 or values[1::2].count(_NUL) != count - 1:
        return None
    return values[::2]


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

    ``in_part``: the summary of a part of the file read by a process of its own, to be merged
    after the parts before it (:meth:`merge`). A nested result begun again in it (where the
    part had logged a plain value, None or an empty dict under its name) holds the key
    ``BEGUN_AGAIN``: it replaces what the parts before left, as reading in one pass does.
    """

    def __init__(
        self,
        last: dict[str, Any] | None = None,
        stats: dict[str, list[Any]] | None = None,
        lines: int = 0,
        *,
        in_part: bool = False,
    ) -> None:
        self.last: dict[str, Any] = last if last is not None else {}
        self.stats: dict[str, list[Any]] = stats if stats is not None else {}  # count, min,
        self.lines = lines  # max, last step
        self.in_part = in_part
        self.source: str | None = None  # the fingerprint of the results.jsonl read last
        self.check: int | None = None  # and the check of the bytes read (see scan_results)

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
                if sub.__class__ is not dict or not sub:  # none yet, a plain value or {}
                    begun_again = self.in_part and name in into
                    sub = into[name] = {BEGUN_AGAIN: True} if begun_again else {}
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
        """Add the summary of the lines that came after these (a part read elsewhere, whose
        summary is ``in_part``)."""
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


# The key of a nested result begun again in a part (see Summary): no JSON object has it, as
# JSON's keys are strings, and it never leaves the part's summary (merge takes it out).
BEGUN_AGAIN = 0


def _merge_last(into: dict[str, Any], later: dict[str, Any]) -> None:
    """The last values of the lines after ``into``'s added to it: a nested result's leaves
    to those it had, unless it was begun again in those lines (then it replaces them)."""
    for name, value in later.items():
        if name.__class__ is not str:  # BEGUN_AGAIN
            continue
        if (
            value.__class__ is dict
            and value
            and BEGUN_AGAIN not in value
            and into.get(name).__class__ is dict
        ):
            _merge_last(into[name], value)
        else:
            into[name] = _unmarked(value)


def _unmarked(value: Any) -> Any:
    """``value`` (a part's, nested) without the BEGUN_AGAIN keys in it."""
    if value.__class__ is dict:
        value.pop(BEGUN_AGAIN, None)
        for sub in value.values():
            _unmarked(sub)
    return value


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


def scan_results(
    folder: Path | str, summary: Summary, offset: int = 0, check: int | None = None
) -> int:
    """Add to ``summary`` the whole lines ``results.jsonl`` holds past ``offset``; the offset
    after the last whole line. BadRecord when it is not a file.

    ``check`` is ``summary.check`` of the read that stopped at ``offset``: when the bytes
    before ``offset`` are no longer those (a script reopened the file with "w" and wrote past
    that point), ``summary`` is emptied and the file read from its start. ``summary.check``
    is then set for the next read.
    """
    summary.source = summary.check = None
    try:
        fd, st = open_regular(os.path.join(folder, store.RESULTS))
    except FileNotFoundError:
        try:
            data, st = v06_results(folder)
        except FileNotFoundError:
            return offset
        summary.source = fingerprint(st)
        read = data.__getitem__
        if offset and check is not None and _covered_check(read, offset) != check:
            summary.last, summary.stats, summary.lines, offset = {}, {}, 0, 0
        summary.add(parse_results(data[offset:])[0])
        summary.check = _covered_check(read, len(data))
        return len(data)
    summary.source = fingerprint(st)
    read = functools.partial(_pread, fd)
    try:
        if offset and check is not None and _covered_check(read, offset) != check:
            summary.last, summary.stats, summary.lines, offset = {}, {}, 0, 0
        saved = _saved_summary(folder, fd, st, offset)
        if saved is not None:  # it covers more of the file than ``summary``: start from it
            kept, offset = saved
            summary.last, summary.stats, summary.lines = kept.last, kept.stats, kept.lines
        parts = _parts(fd, offset, st.st_size)
        scanned = _scan_parallel(fd, parts, summary) if len(parts) > 1 else None
        if scanned is not None:
            offset = scanned
        else:
            for data in _whole_lines(fd, offset, st.st_size):
                summary.add(parse_results(data)[0])
                offset += len(data)
        summary.check = _covered_check(read, offset)
        return offset
    finally:
        os.close(fd)


# A reader that reads on from where it stopped (the index, at every look at a running run)
# first checks that the bytes it read are still there: their first and last CHECK_BYTES, by
# a CRC-32 kept with what it read. Two small reads, whatever the size of the file.
CHECK_BYTES = 64 * 1024


def _covered_check(read: Callable[[slice], bytes], offset: int) -> int:
    """The CRC-32 of the first and the last CHECK_BYTES of the first ``offset`` bytes (all of
    them when fewer); ``read`` gives the bytes of a slice of the file."""
    import zlib

    head = read(slice(0, min(offset, CHECK_BYTES)))
    tail = read(slice(max(CHECK_BYTES, offset - CHECK_BYTES), offset))
    return zlib.crc32(tail, zlib.crc32(head))


def _pread(fd: int, part: slice) -> bytes:
    """The bytes of ``part`` of the file open as ``fd`` (fewer when it is shorter now)."""
    if part.stop <= part.start:
        return b""
    try:
        return os.pread(fd, part.stop - part.start, part.start)
    except OSError as exc:
        raise BadRecord(f"{store.RESULTS} cannot be read: {exc.strerror or exc}") from exc


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


def _scan_parallel(fd: int, parts: list[tuple[int, int]], summary: Summary) -> int | None:
    """``parts`` summarized by processes of their own, merged into ``summary``; the offset
    after them. None, ``summary`` untouched, when a part cannot come back (a result nested
    past what pickle can send, a worker killed): the caller reads the file in one pass."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("fork")  # the descriptor is shared, nothing imported
    try:
        with ProcessPoolExecutor(max_workers=len(parts), mp_context=context) as pool:
            found = list(pool.map(_summarize_part, [(fd, a, b) for a, b in parts]))
    except Exception:  # (BrokenProcessPool, RecursionError while pickling, ...)
        return None
    end = parts[0][0]
    for part, used in found:
        summary.merge(part)
        end += used
    return end


def _summarize_part(job: tuple[int, int, int]) -> tuple[Summary, int]:
    fd, start, stop = job
    part, used = Summary(in_part=True), 0
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
