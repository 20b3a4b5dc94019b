"""What the dashboard's pages show, as data: the table's query and page, one experiment's
files, logs and curves, and comparisons. HTTP and HTML live in ``yanex.ui.app``.

Everything here reads through the same code as the CLI: selections through ``yanex.query``,
experiments through ``yanex.record``; nothing here opens the index's tables itself.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import stat
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from yanex import columns, query, record, results_file, store
from yanex.code import diff
from yanex.columns import Column
from yanex.dotted import leaves
from yanex.index import Index
from yanex.index_values import epoch, param_leaves
from yanex.json_policy import decode_value
from yanex.record import Record, Status
from yanex.terminal import safe

PAGE_SIZES = (20, 50, 100, 200)
DEFAULT_PAGE_SIZE = 50
MAX_RESULT_COLUMNS = 30
MAX_PARAM_COLUMNS = 12  # shown by default; the picker offers every one
MAX_PICKER_KEYS = 500  # parameters (and results) the column picker lists
FILTER_PREFIX = "f."  # a column's filter in the address: f.params.lr=<0.1
MAX_SWEEP_RUNS = 5000  # drawn by the sweep view
MAX_SWEEP_PARAMS = 30  # axes of its parallel coordinates
MAX_EXACT_DOUBLE = 2**53  # ints past it reach the sweep view as digits too (JS rounds them)
TAIL_BYTES = 64 * 1024  # of stdout and stderr shown, and sent per live update
MAX_POINTS = 5000  # per curve; longer ones are thinned evenly (the last point is kept)
MAX_FILES = 1000  # listed per experiment folder
IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".bmp": "image/bmp",
    ".svg": "image/svg+xml",
}
TEXT_SUFFIXES = frozenset((".txt", ".log", ".out", ".err", ".json", ".jsonl", ".yaml", ".yml",
                           ".csv", ".tsv", ".patch", ".diff", ".md", ".rst", ".py", ".toml",
                           ".ini", ".cfg", ".sh"))  # fmt: skip


# --- the table ----------------------------------------------------------------------------


def words(values: Iterable[str]) -> tuple[str, ...]:
    """Values of a repeated field, each possibly a comma-separated list; blanks dropped."""
    found = [part.strip() for value in values for part in value.split(",")]
    return tuple(dict.fromkeys(part for part in found if part))


def _one(params: Mapping[str, Sequence[str]], key: str) -> str | None:
    values = [v.strip() for v in params.get(key, ()) if v.strip()]
    return values[-1] if values else None


@dataclass(frozen=True)
class TableQuery:
    """What the table's address asks for: ``yanex list``'s filters, a search, a sort and a
    page. :meth:`url` writes it back, changed, for links."""

    status: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    name: str | None = None
    script: str | None = None
    sweep: str | None = None
    since: str | None = None
    until: str | None = None
    where: tuple[str, ...] = ()
    text: str | None = None
    sort: str | None = None
    page: int = 1
    per: int = DEFAULT_PAGE_SIZE
    archived: bool = False
    all_projects: bool = False
    columns: tuple[str, ...] = ()  # chosen in the picker; empty: the default ones
    column_filters: tuple[tuple[str, str], ...] = ()  # (column key, what its filter says)

    @classmethod
    def parse(cls, params: Mapping[str, Sequence[str]], all_by_default: bool) -> TableQuery:
        scope = _one(params, "scope")
        where = [line.strip() for v in params.get("where", ()) for line in v.splitlines()]
        column_filters = {
            key[len(FILTER_PREFIX) :]: value
            for key in params
            if key.startswith(FILTER_PREFIX) and (value := _one(params, key))
        }
        return cls(
            status=words(params.get("status", ())),
            tags=words(params.get("tag", ())),
            name=_one(params, "name"),
            script=_one(params, "script"),
            sweep=_one(params, "sweep"),
            since=_one(params, "since"),
            until=_one(params, "until"),
            where=tuple(line for line in where if line),
            text=_one(params, "q"),
            sort=_one(params, "sort"),
            page=_positive(_one(params, "page"), 1),
            per=min(_positive(_one(params, "per"), DEFAULT_PAGE_SIZE), max(PAGE_SIZES)),
            archived=_one(params, "archived") in ("1", "on", "true"),
            all_projects=all_by_default if scope is None else scope == "all",
            columns=words(params.get("col", ())),
            column_filters=tuple(sorted(column_filters.items())),
        )

    def filters(self, project: str | None) -> query.Filters:
        """The shared filters (``yanex list``'s) and the columns' own; QueryError when one
        cannot be used."""
        status, tags = list(self.status), list(self.tags)
        where: list[str | query.Condition] = list(self.where)
        for key, text in self.column_filters:
            column_filter(key, text, status, tags, where)
        return query.make_filters(
            status=status,
            tags=tags,
            name=self.name,
            script=self.script,
            sweep=self.sweep,
            since=self.since,
            until=self.until,
            where=where,
            project=None if self.all_projects else project,
            archived=self.archived,
            text=self.text,
        )

    def chosen_columns(self) -> list[Column]:
        """The columns the address asks for (the ID always first); QueryError names an
        unknown one."""
        chosen = columns.parse(self.columns)
        return [Column("id"), *(col for col in chosen if col.key != "id")] if chosen else []

    def sorts(self) -> tuple[query.Sort, ...]:
        return (query.parse_sort(self.sort),) if self.sort else (query.NEWEST_FIRST,)

    def pairs(self) -> list[tuple[str, str]]:
        pairs: list[tuple[str, str]] = [("status", s) for s in self.status]
        pairs += [("tag", t) for t in self.tags]
        for key, value in (
            ("name", self.name),
            ("script", self.script),
            ("sweep", self.sweep),
            ("since", self.since),
            ("until", self.until),
            ("q", self.text),
            ("sort", self.sort),
        ):
            if value:
                pairs.append((key, value))
        pairs += [("where", w) for w in self.where]
        if self.columns:
            pairs.append(("col", ",".join(self.columns)))
        pairs += [(f"{FILTER_PREFIX}{key}", text) for key, text in self.column_filters]
        if self.archived:
            pairs.append(("archived", "1"))
        pairs.append(("scope", "all" if self.all_projects else "project"))
        if self.per != DEFAULT_PAGE_SIZE:
            pairs.append(("per", str(self.per)))
        if self.page != 1:
            pairs.append(("page", str(self.page)))
        return pairs

    def url(self, path: str = "/", **changes: Any) -> str:
        """This query at ``path``, with ``changes`` (a new filter or sort starts at page 1)."""
        if changes and "page" not in changes:
            changes["page"] = 1
        return f"{path}?{urlencode(dataclasses.replace(self, **changes).pairs())}"

    def sort_url(self, key: str) -> str:
        """Sort by ``key``; again: the other way. Times start newest first, results best
        first (``query.parse_sort``: a result alone sorts best first)."""
        current = self._current()
        if current is not None and current.key == key:
            return self.url(sort=f"{'+' if current.descending else '-'}{key}")
        if key.startswith("results."):
            return self.url(sort=key)
        newest = ("created", "started", "ended", "duration")
        return self.url(sort=f"-{key}" if key in newest else key)

    def filter_of(self, key: str) -> str:
        """What the filter of the column ``key`` says ("" for none)."""
        return dict(self.column_filters).get(key, "")

    def arrow(self, key: str) -> str:
        current = self._current()
        if current is None or current.key != key:
            return ""
        return "▼" if current.descending else "▲"

    def _current(self) -> query.Sort | None:
        try:
            return query.parse_sort(self.sort or "-created")
        except query.QueryError:
            return None


def column_filter(
    key: str, text: str, status: list[str], tags: list[str], where: list[str | query.Condition]
) -> None:
    """A column's filter as the table's filters: ``<0.3``, ``>=2026-01-01``, ``!=adam`` (an
    operator first) compare as ``--where`` does; a bare value is ``==`` for a parameter, a
    result, a number or a time (a date is its day), one of the statuses or tags (``failed,
    cancelled``), yes, no or null for Dirty (:func:`_dirty_filter`), and what a text field
    contains (name, reason, script, ...)."""
    key = columns.ALIASES.get(key, key)
    columns.parse([key])  # an unknown column is named
    text = text.strip()
    starts = next((op for op in query.OPERATORS if text.startswith(op)), None)
    if key == "status":
        status.extend(words([text]))
    elif key == "tags":
        tags.extend(words([text]))
    elif key == "dirty":
        where.append(_dirty_filter(text))
    elif starts is not None:
        where.append(query.parse_where(f"{key}{text}"))
    elif key.startswith(("params.", "results.")) or key in columns.NUMERIC | columns.TIMES:
        where.append(query.parse_where(f"{key}=={text}"))
    else:
        where.append(query.Condition(key, query.CONTAINS, text, f"{key} contains {text!r}"))


# The table shows a run's dirty state as yes or no (blank: no git): its filter takes those
# words beside the values ``--where dirty==...`` takes (true, false, null).
_DIRTY_WORDS = {"yes": "true", "no": "false"}


def _dirty_filter(text: str) -> query.Condition:
    """The Dirty column's filter: yes/true, no/false or null (no git), ``!=`` first to negate
    one, as ``--where dirty==null`` selects; anything else is a QueryError, never "clean"."""
    op = "!=" if text.startswith("!=") else "=="
    word = text[2:].strip() if text.startswith(("==", "!=")) else text
    try:
        return query.parse_where(f"dirty{op}{_DIRTY_WORDS.get(word.lower(), word)}")
    except query.QueryError:
        raise query.QueryError(
            f"the Dirty filter {text!r} is not yes, no or null",
            hint="Filter it by yes (or true: uncommitted changes), no (or false: clean) or "
            "null (no git: blank in the table); !=null: the runs with git.",
        ) from None


def _positive(text: str | None, default: int) -> int:
    try:
        number = int(text) if text is not None else default
    except ValueError:
        return default
    return number if number >= 1 else default


@dataclass
class TablePage:
    """One page of the table, and what the filter bar shows around it."""

    rows: list[Record]
    total: int
    columns: list[Column]
    hidden_names: int  # result names past MAX_RESULT_COLUMNS (default columns)
    status_counts: dict[str, int]
    page: int
    pages: int
    first: int  # 1-based position of the first row shown
    explicit: bool = False  # the columns were chosen (else: the default ones)
    picker: dict[str, list[str]] = field(default_factory=dict)  # what the picker offers

    @property
    def last(self) -> int:
        return self.first + len(self.rows) - 1

    @property
    def live(self) -> bool:
        return any(rec.status in Status.LIVE for rec in self.rows)


def table_page(index: Index, q: TableQuery, project: str | None) -> TablePage:
    """The rows of one page, read from the index (paged there, never all of them)."""
    filters = q.filters(project)
    total = query.count(index, filters)
    pages = max(1, math.ceil(total / q.per))
    page = min(q.page, pages)
    rows = query.select(index, filters, q.sorts(), limit=q.per, offset=(page - 1) * q.per)
    chosen = q.chosen_columns()
    columns.check(index, chosen, "the column")
    # By default the results the rows shown logged, as `yanex list` has them (all of the
    # selection's would cost a pass over the results of every selected experiment).
    names = columns.result_names(rows)
    shown = chosen or table_defaults(index, q, rows)
    without_status = dataclasses.replace(filters, status=())
    counts = {str(s): n for s, n in query.group_count(index, without_status, "status")}
    return TablePage(
        rows=rows,
        total=total,
        columns=shown,
        hidden_names=0 if chosen else max(0, len(names) - MAX_RESULT_COLUMNS),
        status_counts=counts,
        page=page,
        pages=pages,
        first=(page - 1) * q.per + 1,
        explicit=bool(chosen),
    )


def table_defaults(index: Index, q: TableQuery, rows: Sequence[Record]) -> list[Column]:
    """The table's columns unless chosen: ``yanex list``'s, with the parameters that tell the
    rows apart (a sweep's: what it varies; else those that vary among the rows shown) and
    the reason a run failed when one shown did."""
    sweep = columns.one_sweep(rows)
    params = columns.swept_params(index, sweep) if sweep else columns.varying_params(rows)
    return columns.defaults(
        rows,
        params=params,
        all_projects=q.all_projects,
        reasons=any(rec.error for rec in rows),
        max_params=MAX_PARAM_COLUMNS,
        max_results=MAX_RESULT_COLUMNS,
    )


def picker(index: Index) -> dict[str, list[str]]:
    """What the column picker offers: every field, and the store's parameters and results."""
    return {
        "field": list(columns.FIELDS),
        "params": [f"params.{k}" for k in query.known_keys(index, "params", MAX_PICKER_KEYS)],
        "results": [f"results.{k}" for k in query.known_keys(index, "results", MAX_PICKER_KEYS)],
    }


def table_csv(index: Index, q: TableQuery, project: str | None, shown: Sequence[Column]) -> str:
    """Every row the table's filters select (not one page), in its order, with ``shown``
    columns: values exact, times in ISO 8601."""
    from yanex import display

    filters = q.filters(project)
    lines = [[col.key for col in shown]]
    batch, offset = 2000, 0
    while True:
        rows = query.select(index, filters, q.sorts(), limit=batch, offset=offset)
        lines += [[display.csv_cell(col.key, col.value(rec)) for col in shown] for rec in rows]
        offset += batch
        if len(rows) < batch:
            return csv_text(lines)


def csv_text(lines: Iterable[Sequence[Any]]) -> str:
    import csv
    import io

    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(lines)
    return buffer.getvalue()


# --- the staged queue -----------------------------------------------------------------------


@dataclass
class SweepQueue:
    """A sweep's staged members (or the staged experiments outside any sweep)."""

    sweep: str | None
    staged: int
    members: list[tuple[Record, dict[str, Any], bool]]  # the first few: metadata, claimed
    progress: dict[str, int]  # the whole sweep's experiments by status


QUEUE_SHOWN = 50  # members listed per sweep


def staged_queue(index: Index, project: str | None) -> list[SweepQueue]:
    """What ``yanex run --staged`` would run, per sweep, in the order it would run it."""
    filters = query.Filters(status=(Status.STAGED,), project=project)
    order = (query.Sort("created"), query.Sort("sweep_index"))
    queues = []
    for sweep, staged in query.group_count(index, filters, "sweep"):
        same_sweep = query.Condition("sweep", "==", sweep, f"sweep=={sweep}")
        members = query.select(
            index, dataclasses.replace(filters, where=(same_sweep,)), order, limit=QUEUE_SHOWN
        )
        progress: dict[str, int] = {}
        if sweep is not None:  # the whole sweep: its finished and running members too
            everyone = query.Filters(where=(same_sweep,), project=project, archived=None)
            progress = {str(s): n for s, n in query.group_count(index, everyone, "status")}
        queues.append(
            SweepQueue(
                sweep=sweep,
                staged=staged,
                members=[(rec, rec.metadata, (rec.dir / store.CLAIM).exists()) for rec in members],
                progress=progress,
            )
        )
    return queues


# --- one experiment ------------------------------------------------------------------------


@dataclass(frozen=True)
class FileEntry:
    name: str  # relative to the experiment folder, with /
    size: int
    image: bool
    text: bool


def file_entry(name: str, size: int) -> FileEntry:
    suffix = os.path.splitext(name)[1].lower()
    return FileEntry(name, size, suffix in IMAGE_TYPES, suffix in TEXT_SUFFIXES or "." not in name)


def folder_files(folder: Path) -> list[FileEntry]:
    """Every regular file of the folder: symlinks, yanex's temp files and folders (see
    store.is_temp_name) and its own bookkeeping (the dotfiles beside metadata.json: lock,
    heartbeat, reserve, results summary) left out."""
    found: list[FileEntry] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(name for name in dirnames if not store.is_temp_name(name))
        top = dirpath == str(folder)
        for filename in sorted(filenames):
            if (top and filename.startswith(".")) or store.is_temp_name(filename):
                continue
            path = os.path.join(dirpath, filename)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                name = os.path.relpath(path, folder).replace(os.sep, "/")
                found.append(file_entry(name, st.st_size))
            if len(found) >= MAX_FILES:
                return found
    return found


def terminal_lines(data: bytes) -> list[str]:
    """Output bytes as a terminal leaves them: each line as its last carriage return left it
    (progress bars), tabs expanded, control characters escaped (``\\x1b``)."""
    text = data.decode("utf-8", "replace")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [safe(line.rstrip("\r").rsplit("\r", 1)[-1].expandtabs(8)) for line in lines]


@dataclass
class Tail:
    lines: list[str]
    offset: int  # the byte after the last whole line read
    cut: bool  # earlier output was left out


def read_tail(path: Path, offset: int | None = None, limit: int = TAIL_BYTES) -> Tail:
    """The whole lines of a log: the last ``limit`` bytes, or those after ``offset`` (at most
    ``limit``; a line longer than that is sent in pieces)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO put there never blocks us
    except OSError:
        return Tail([], offset or 0, False)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return Tail([], offset or 0, False)
        size = st.st_size
        start = max(0, size - limit) if offset is None else min(offset, size)
        if offset is not None and offset > size:  # rewritten: start again
            start = max(0, size - limit)
        os.lseek(fd, start, os.SEEK_SET)
        data = os.read(fd, min(limit, size - start))
    finally:
        os.close(fd)
    cut = offset is None and start > 0
    if cut:  # begin at a whole line
        newline = data.find(b"\n")
        data = data[newline + 1 :] if newline >= 0 else data
        start = size - len(data)
    end = data.rfind(b"\n") + 1
    if end == 0 and len(data) >= limit:
        end = len(data)  # one long line: send what there is
    return Tail(terminal_lines(data[:end]), start + end, cut)


@dataclass
class Experiment:
    """Everything the experiment page shows."""

    rec: Record
    meta: dict[str, Any]
    series: dict[str, results_file.Series]
    steps: int
    files: list[FileEntry]
    artifacts: list[FileEntry]
    stdout: Tail
    stderr: Tail
    stderr_last: list[str]  # the last lines of stderr, for a failure's reason
    patches: list[FileEntry]
    packages: list[tuple[str, str]]
    hydra: dict[str, Any] = field(default_factory=dict)

    @property
    def live(self) -> bool:
        return self.rec.status in Status.LIVE

    @property
    def config_yaml(self) -> str:
        return record.config_yaml(self.rec.params)


def experiment(rec: Record) -> Experiment:
    """Read the experiment's folder for its page (metadata, files, logs). Its results'
    summary comes from the index: a run of a million steps is not read again."""
    meta = rec.metadata
    files = folder_files(rec.dir)
    stderr = read_tail(rec.output_file(store.STDERR))
    env = meta.get("environment") if isinstance(meta.get("environment"), dict) else {}
    packages = env.get("packages") if isinstance(env.get("packages"), dict) else {}
    return Experiment(
        rec=rec,
        meta=meta,
        series=rec.series,
        steps=rec.steps,
        files=files,
        artifacts=[f for f in files if f.name.startswith(store.ARTIFACTS + "/")],
        stdout=read_tail(rec.output_file(store.STDOUT)),
        stderr=stderr,
        stderr_last=[line for line in stderr.lines if line.strip()][-10:],
        patches=[f for f in files if f.name in (store.GIT_PATCH, store.GIT_PATCH_AT_STAGING)],
        packages=sorted((str(k), str(v)) for k, v in packages.items()),
        hydra=meta.get("hydra") if isinstance(meta.get("hydra"), dict) else {},
    )


def patch_lines(text: str) -> list[tuple[str, str]]:
    """A diff's lines with how to show each: ``add``, ``del``, ``hunk``, ``file`` or ``""``."""
    shown = []
    for line in text.splitlines():
        kind = ""
        if line.startswith(("+++", "---", "diff ", "index ")):
            kind = "file"
        elif line.startswith("+"):
            kind = "add"
        elif line.startswith("-"):
            kind = "del"
        elif line.startswith("@@"):
            kind = "hunk"
        shown.append((kind, safe(line.expandtabs(8))))
    return shown


# --- curves ---------------------------------------------------------------------------------


def label(rec: Record) -> str:
    return f"{rec.id} {safe(rec.name)}" if rec.name else rec.id


def curves(records: Sequence[Record]) -> dict[str, Any]:
    """Each numeric result of these experiments against its step, one trace per experiment:
    ``{"results": [{"name", "lower_is_better", "traces": [{"id", "label", "n", "status",
    "start", "x", "y", "t"}]}], "live": bool}``. ``n`` is the experiment's place among
    ``records`` (its colour in every chart), ``t`` each point's time (seconds since the
    epoch, null when the line has none), ``start`` when the run started. A value that is not
    a finite number is a gap (null). Each curve holds at most MAX_POINTS points, taken
    evenly (the last kept), and reading one costs memory for those only."""
    by_name: dict[str, list[dict[str, Any]]] = {}
    for n, rec in enumerate(records):
        try:
            traced = _traces(rec)
        except record.BadRecord:
            continue  # results.jsonl is not a file (the index names the folder)
        start = rec.started_ts if rec.started_ts is not None else rec.created_ts
        for name, (xs, ys, ts) in traced.items():
            by_name.setdefault(name, []).append(
                {
                    "id": rec.id,
                    "label": label(rec),
                    "n": n,
                    "status": rec.status,
                    "start": start,
                    "x": xs,
                    "y": ys,
                    "t": ts,
                }
            )
    return {
        "results": [
            {"name": safe(name), "lower_is_better": query.lower_is_better(name), "traces": traces}
            for name, traces in by_name.items()
        ],
        "live": any(rec.status in Status.LIVE for rec in records),
    }


Points = tuple[list[Any], list[Any], list[Any]]  # steps, values, times


def _traces(rec: Record) -> dict[str, Points]:
    """``{leaf: (steps, values, times)}`` of one experiment's numeric results, each thinned to about
    MAX_POINTS (its last point kept), from the counts the index holds (``rec.series``).

    A line is parsed only when it holds a point to draw: results logged at most steps take
    every n-th line (a slice of the file's lines), the others are told by their name's bytes
    in a line. A million-line file costs a pass over its bytes and a few thousand parses, in
    a few MB of memory.
    """
    counts = {
        name: s.count
        for name, s in rec.series.items()
        if s.min is not None or (results_file.is_number(s.last) and s.count)
    }
    if not counts:
        return {}
    lines = max(rec.steps, 1)
    dense = [name for name, count in counts.items() if count * 2 >= lines]
    sparse = {name: count for name, count in counts.items() if name not in dense}
    stride = max(1, math.ceil(lines / MAX_POINTS))
    needles = {name: json.dumps(name.rsplit(".", 1)[-1]).encode() for name in counts}
    strides = {name: max(1, math.ceil(count / MAX_POINTS)) for name, count in sparse.items()}
    seen = dict.fromkeys(sparse, 0)
    points: dict[str, Points] = {name: ([], [], []) for name in counts}
    held: dict[str, tuple[int, bytes]] = {}  # a sparse curve's last line not drawn yet
    base = 0
    tail: list[bytes] = []
    for data in results_file.iter_result_bytes(rec.dir):
        raws = data.split(b"\n")[:-1]
        if dense:
            first = -base % stride
            for offset, raw in enumerate(raws[first::stride]):
                _add_points(points, dense, base + first + offset * stride, raw)
        for index, raw in enumerate(raws, base) if sparse else ():
            for name in sparse:
                if needles[name] in raw:
                    if seen[name] % strides[name] == 0:
                        _add_points(points, [name], index, raw)
                        held.pop(name, None)
                    else:
                        held[name] = (index, raw)
                    seen[name] += 1
        base += len(raws)
        tail = raws[-1000:] or tail
    for name, (at, raw) in held.items():
        _add_points(points, [name], at, raw)
    _add_last(points, dense, needles, tail, base)
    return {name: xy for name, xy in points.items() if xy[0]}


def _add_last(
    points: dict[str, Points],
    names: list[str],
    needles: dict[str, bytes],
    tail: list[bytes],
    count: int,
) -> None:
    """Each curve's last logged point, from the last lines, when the stride left it out."""
    for back, raw in enumerate(reversed(tail)):
        index = count - 1 - back
        due = [n for n in names if needles[n] in raw]
        for name in due:
            xs, ys, ts = points[name]
            drawn = len(xs)
            _add_points(points, [name], index, raw)
            if drawn and len(xs) > drawn and (xs[-1], ys[-1]) == (xs[-2], ys[-2]):
                xs.pop()  # the stride had taken this line already
                ys.pop()
                ts.pop()
        names = [n for n in names if n not in due]
        if not names:
            return


def _add_points(points: dict[str, Points], names: list[str], index: int, raw: bytes) -> None:
    """Each of ``names`` from one raw line of results.jsonl, at its step (else its index) and
    its time; a value that is not a finite number is a gap (None). The line counts as
    ``results_file.parse_results`` counts it (its bytes read as UTF-8 with replacement)."""
    try:
        line = json.loads(raw.decode("utf-8", "replace"))
    except (ValueError, RecursionError):
        return
    if not (isinstance(line, dict) and isinstance(line.get("results"), dict)):
        return
    values = dict(leaves(line["results"]))
    step = line.get("step")
    x = step if isinstance(step, int) and not isinstance(step, bool) else index
    t = epoch(line.get("timestamp"))
    for name in names:
        value = decode_value(values.get(name))
        if results_file.is_number(value):
            xs, ys, ts = points[name]
            xs.append(x)
            ys.append(value if math.isfinite(value) else None)
            ts.append(t)


# --- compare --------------------------------------------------------------------------------


@dataclass
class Comparison:
    records: list[Record]
    differing: list[str]
    same: list[str]
    params: list[dict[str, Any]]  # flattened, one per record
    names: list[str]
    best: dict[str, set[int]]
    codes: list[str]  # each run's code in one cell: different code never looks alike


def comparison(records: list[Record]) -> Comparison:
    """What ``yanex compare`` shows, for the page: the same differing keys and best marks."""
    flat = [dict(param_leaves(rec.params)) for rec in records]
    keys = list(dict.fromkeys(k for params in flat for k in params))
    differing = query.differing_keys(flat) if len(records) > 1 else []
    names = list(dict.fromkeys(name for rec in records for name in rec.last))
    return Comparison(
        records=records,
        differing=differing,
        same=[k for k in keys if k not in differing],
        params=flat,
        names=names,
        best=query.best_rows(records, names),
        codes=[diff.label(diff.recorded_in(r.dir, r.metadata.get("git"))) for r in records],
    )


def compare_csv(c: Comparison) -> str:
    """The comparison as ``yanex compare --format csv`` writes it (the code always)."""
    from yanex import display

    lines: list[list[str]] = [
        [
            "id",
            "name",
            "status",
            "code",
            *(f"params.{k}" for k in c.differing),
            *(f"results.{n}" for n in c.names),
        ]
    ]
    for rec, params, label_ in zip(c.records, c.params, c.codes, strict=True):
        last = columns.flat_last(rec)
        lines.append(
            [rec.id, safe(rec.name or ""), rec.status, safe(label_)]
            + [display.full_value(params.get(k)) for k in c.differing]
            + [display.full_value(last.get(n)) for n in c.names]
        )
    return csv_text(lines)


def curves_csv(records: Sequence[Record], result: str | None = None) -> str:
    """Every logged step of these experiments, whole (not thinned as drawn): one row per
    experiment and step, ``id, name, step, timestamp`` and a ``results.<name>`` column per
    result (or only ``result``)."""
    from yanex import display
    from yanex.results import metric_rows

    rows: list[tuple[Record, dict[str, Any]]] = []
    for rec in records:
        try:
            rows += [(rec, row) for row in metric_rows(rec)]
        except record.BadRecord:
            continue
    names = list(dict.fromkeys(k for _, row in rows for k in row if k.startswith("results.")))
    if result is not None:
        names = [n for n in names if n == f"results.{result}"]
        rows = [(rec, row) for rec, row in rows if any(n in row for n in names)]
    lines: list[list[str]] = [["id", "name", "step", "timestamp", *names]]
    for rec, row in rows:
        lines.append(
            [
                rec.id,
                safe(rec.name or ""),
                display.full_value(row.get("step")),
                safe(str(row.get("timestamp") or "")),
            ]
            + [display.full_value(row.get(n)) for n in names]
        )
    return csv_text(lines)


# --- the sweep view -------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """A value as the sweep view's JSON holds it: numbers (finite), text, true/false, or null;
    lists and dicts as their JSON text."""
    value = decode_value(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return query.canonical(value)


def _column(values: list[Any]) -> dict[str, Any]:
    """A column of the sweep view's JSON: its values and, when an int among them is one a
    double cannot hold (past 2**53, where JavaScript rounds 2**60 + 1 to 2**60, or past the
    doubles' range), ``exact``: its digits (null for the others), the nearest double in
    ``values`` for the page to scale by."""
    exact = [str(v) if _inexact(v) else None for v in values]
    if not any(exact):
        return {"values": values}
    nearest = [_nearest(v) if e else v for v, e in zip(values, exact, strict=True)]
    return {"values": nearest, "exact": exact}


def _inexact(value: Any) -> bool:
    return value.__class__ is int and abs(value) > MAX_EXACT_DOUBLE


def _nearest(value: int) -> float:
    try:
        return float(value)
    except OverflowError:  # past the doubles' range: the largest, on its side
        return sys.float_info.max if value > 0 else -sys.float_info.max


def sweep_data(index: Index, q: TableQuery, project: str | None) -> dict[str, Any]:
    """What the sweep view draws, for the selection of the table's filters (a sweep, a tag,
    any): each run, the parameters that vary among them and every numeric result, a column
    of values each, in the runs' order (at most MAX_SWEEP_RUNS runs; ints exact:
    :func:`_column`)."""
    filters = q.filters(project)
    total = query.count(index, filters)
    order = q.sorts() if q.sort else (query.Sort("created"), query.Sort("sweep_index"))
    runs = query.select(index, filters, order, limit=MAX_SWEEP_RUNS)
    flat = [columns.flat_params(rec) for rec in runs]
    lasts = [columns.flat_last(rec) for rec in runs]
    varying = columns.varying_params(runs)[:MAX_SWEEP_PARAMS]
    names = list(dict.fromkeys(n for last in lasts for n in last))
    results = []
    for name in names:
        values = [_plain(last.get(name)) for last in lasts]
        if any(results_file.is_number(v) for v in values):
            results.append(
                {
                    "key": f"results.{name}",
                    "title": safe(name),
                    "better": query.better(name),
                    **_column([v if results_file.is_number(v) else None for v in values]),
                }
            )
    return {
        "total": total,
        "runs": [
            {
                "id": rec.id,
                "name": safe(rec.name or ""),
                "label": label(rec),
                "status": rec.status,
                "reason": safe(columns.reason(rec) or ""),
            }
            for rec in runs
        ],
        "params": [
            {
                "key": f"params.{key}",
                "title": safe(key),
                **_column([_plain(params.get(key)) for params in flat]),
            }
            for key in varying
        ],
        "results": results,
    }
