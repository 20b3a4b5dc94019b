"""Experiments from Python: ``yanex.results.find/get/get_best``, and DataFrames of them.

The same filters as ``yanex list`` (through ``yanex.query``), the same records as
``yanex show`` (``yanex.record.Record``)::

    import yanex.results as yr

    best = yr.get_best("loss", tags=["baseline"])   # loss: smaller is better
    runs = yr.find(status="completed", where="params.model.lr<=0.01", sort="results.loss")
    df = yr.to_dataframe(runs)           # one row per experiment (pandas: yanex[analysis])
    steps = yr.metrics_dataframe(best)   # one row per logged step
    steps = yr.metrics_dataframe(runs)   # the steps of many, with the experiment's id

By default, like the CLI, the experiments of the current project (the git repository of the
working folder, else the folder); ``all_projects=True`` for every one. Bad filters raise
``yanex.YanexError``. yanex 0.6's names (``get_experiment``, ``get_experiments``,
``compare``, ``get_best(metric, maximize=True)``) are kept.

Values keep their types: DataFrames use pandas' nullable dtypes (``Int64``, ``Float64``,
``boolean``, ``string``), so an int column stays ints, exact, beside a run that lacks it
(``<NA>``), and a logged NaN stays NaN. Nothing here prints: building the index is logged
(``logging.getLogger("yanex")``) and can be followed with ``progress=``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from yanex import query
from yanex.columns import reason
from yanex.errors import YanexError
from yanex.index import Index
from yanex.record import Record, decode_value, fits_int64, iter_results, leaves

__all__ = [
    "Record",
    "compare",
    "find",
    "get",
    "get_best",
    "get_experiment",
    "get_experiments",
    "metric_rows",
    "metrics_dataframe",
    "reason",
    "to_dataframe",
]


def _project(all_projects: bool) -> str | None:
    if all_projects:
        return None
    from yanex.executors import current_project

    return str(current_project(Path.cwd()))


def _synced_index(progress: Callable[[int, int, str], None] | None = None) -> Index:
    index = Index(progress=progress)
    index.sync()
    return index


def _as_tuple(value: str | Sequence[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def find(
    *,
    ids: Sequence[str] = (),
    status: str | Sequence[str] | None = None,
    tags: str | Sequence[str] | None = None,
    name: str | None = None,
    script: str | None = None,
    sweep: str | None = None,
    since: str | None = None,
    until: str | None = None,
    where: str | Sequence[str | query.Condition] = (),
    sort: str | Sequence[str] | None = None,
    limit: int | None = None,
    archived: bool | None = False,
    all_projects: bool = False,
    progress: Callable[[int, int, str], None] | None = None,
) -> list[Record]:
    """The experiments the filters select, newest first unless ``sort`` says otherwise.

        ``ids`` are IDs, unique prefixes or names (looked up as ``yanex show`` does). The other
        filters mean what ``yanex list``'s options mean: ``where="results.loss<0.3"`` (or a list
        of conditions, all of which must hold), ``sort="results.accuracy"`` (a result alone: best
    first; ``-``/``+``: descending/ascending); ``until`` a date
        includes that day. ``progress(done, total, why)`` follows a build of the index.
    """
    index = _synced_index(progress)
    try:
        project = _project(all_projects)
        resolved: list[str] = []
        if ids:
            resolved = [rec.id for rec in query.Lookup(index, project).many(_as_tuple(ids))]
        filters = query.make_filters(
            status=_as_tuple(status),
            tags=_as_tuple(tags),
            name=name,
            script=script,
            sweep=sweep,
            since=since,
            until=until,
            where=where,
            project=None if ids else project,
            archived=None if ids and archived is False else archived,
            ids=resolved,
        )
        order = tuple(query.parse_sort(key) for key in _as_tuple(sort)) or (query.NEWEST_FIRST,)
        return query.select(index, filters, sort=order, limit=limit)
    finally:
        index.close()


def get(ref: str, *, all_projects: bool = False) -> Record:
    """One experiment by ID, unique ID prefix (4+ characters) or name (the newest with it)."""
    index = _synced_index()
    try:
        return query.Lookup(index, _project(all_projects)).one(ref)
    finally:
        index.close()


def get_best(
    metric: str,
    *,
    maximize: bool | None = None,
    minimize: bool | None = None,
    **filters: Any,
) -> Record | None:
    """The experiment whose last value of the result ``metric`` (``val.f1`` for a nested one)
    is best, among those ``filters`` select (as in :func:`find`); None if none logged a
    number for it (NaN and text take no part).

    Best is what ``maximize=True`` or ``minimize=True`` says (yanex 0.6's ``maximize=``
    included); else what the name says, by the rule ``yanex compare`` and the dashboard use
    (``query.better``: loss, error, time smaller; accuracy, f1, score larger); a name that
    says neither is a YanexError asking which.
    """
    if maximize is not None and minimize is not None and bool(maximize) == bool(minimize):
        raise query.QueryError(
            f"get_best({metric!r}): maximize={maximize} and minimize={minimize} disagree",
            hint="Give one of them.",
        )
    if maximize is not None:
        way = "max" if maximize else "min"
    elif minimize is not None:
        way = "min" if minimize else "max"
    else:
        way = query.better(metric)
    # Only experiments whose last value is a number (not NaN, not text) take part.
    is_number = query.Condition(f"results.{metric}", query.IS_NUMBER, None, metric)
    where = [*_as_tuple(filters.pop("where", ())), is_number]
    if way is None:
        find(where=where, limit=0, **filters)  # a result nobody logged is named first
        raise query.QueryError(
            f"get_best({metric!r}): the name does not say whether larger or smaller is better",
            hint=f"Say which: get_best({metric!r}, maximize=True) or minimize=True.",
        )
    order = f"{'-' if way == 'max' else '+'}results.{metric}"
    found = find(sort=order, where=where, limit=1, **filters)
    return found[0] if found else None


def _pandas() -> Any:
    try:
        import pandas
    except ImportError:
        raise YanexError(
            "DataFrames need pandas, which is not installed",
            hint='Install the extra: pip install "yanex[analysis]"',
        ) from None
    return pandas


def to_dataframe(records: Sequence[Record]) -> Any:
    """One row per experiment: id, name, status, tags, times, duration, sweep, where it came
    from (exit_code, error: the failure's reason in one line, commit, dirty, script, project,
    folder), then a ``params.<dotted key>`` column per parameter and a ``results.<dotted
    name>`` column per result (its last value). yanex's own columns have no dot, so none
    meets a parameter's or a result's. Columns have pandas' nullable dtypes (see
    :func:`column`). Needs pandas (``pip install "yanex[analysis]"``)."""
    pandas = _pandas()
    count = len(records)
    # The index's JSON of all records decoded in one call each: 100,000 small parses cost more.
    tags, params, lasts = (
        json.loads("[" + ",".join(texts) + "]")
        for texts in (
            [rec.tags_json for rec in records],
            [rec.params_json for rec in records],
            [rec.last_json for rec in records],
        )
    )
    columns: dict[str, Any] = {
        "id": pandas.array([rec.id for rec in records], dtype="string"),
        "name": pandas.array([rec.name for rec in records], dtype="string"),
        "status": pandas.array([rec.status for rec in records], dtype="string"),
        "tags": tags,
    }
    for when, seconds in (
        ("created", [rec.created_ts for rec in records]),
        ("started", [rec.started_ts for rec in records]),
        ("ended", [rec.ended_ts for rec in records]),
    ):
        stamps = pandas.to_datetime(
            pandas.array(seconds, dtype="Float64").to_numpy(float, na_value=float("nan")),
            unit="s",
            utc=True,
        ).round("us")  # as recorded: the index's float seconds are a few ns off
        columns[when] = stamps.tz_convert(_local_zone())
    columns["duration"] = column([rec.duration for rec in records])
    columns["sweep"] = pandas.array([rec.sweep for rec in records], dtype="string")
    columns["exit_code"] = column([rec.exit_code for rec in records])
    columns["error"] = pandas.array([reason(rec) for rec in records], dtype="string")
    columns["commit"] = pandas.array([rec.git_commit for rec in records], dtype="string")
    columns["dirty"] = column([rec.git_dirty for rec in records])
    for name, texts in (
        ("script", [rec.script for rec in records]),
        ("project", [rec.project for rec in records]),
        ("folder", [str(rec.dir) for rec in records]),
    ):
        columns[name] = pandas.array(texts, dtype="string")
    # Built column by column: a 100,000-row frame from row dicts costs several times more.
    spread: dict[str, list[Any]] = {}
    for prefix, rows in (("params", params), ("results", lasts)):
        for row, values in enumerate(rows):
            for leaf, value in leaves(values, prefix):
                found = spread.get(leaf)
                if found is None:
                    found = spread[leaf] = [_MISSING] * count
                found[row] = value
    columns.update((name, column(values)) for name, values in spread.items())
    return pandas.DataFrame(columns)


class _Missing:
    """A value a row does not have (None is JSON's null, a value)."""

    def __repr__(self) -> str:
        return "<missing>"


_MISSING = _Missing()


def column(values: list[Any]) -> Any:
    """A pandas array of ``values`` (``_MISSING`` where a row has none) that keeps their type:
    ``Int64`` for ints (``object`` beyond 64 bits, exact), ``Float64`` for floats (and ints
    small enough to be exact in one), ``boolean``, ``string``; anything else (lists, mixed
    types) ``object``. Missing and null are ``<NA>``; a NaN stays NaN."""
    import numpy
    import pandas

    present = [v for v in values if v is not _MISSING and v is not None]
    kinds = {_KINDS.get(cls, "other") for cls in {v.__class__ for v in present}}
    mask = numpy.array([v is _MISSING or v is None for v in values], dtype=bool)
    if kinds == {"int"} and all(fits_int64(v) for v in present):
        data = numpy.array([0 if m else v for v, m in zip(values, mask, strict=True)], "int64")
        return pandas.arrays.IntegerArray(data, mask)
    if (
        kinds
        and kinds <= {"int", "float"}
        and all(v.__class__ is float or abs(v) <= 2**53 for v in present)
    ):
        data = numpy.array([0.0 if m else v for v, m in zip(values, mask, strict=True)], float)
        return pandas.arrays.FloatingArray(data, mask)  # NaN kept apart from <NA>
    if kinds == {"bool"}:
        data = numpy.array([False if m else v for v, m in zip(values, mask, strict=True)], bool)
        return pandas.arrays.BooleanArray(data, mask)
    if kinds == {"str"}:
        return pandas.array([None if m else v for v, m in zip(values, mask, strict=True)], "string")
    found = numpy.empty(len(values), dtype=object)
    found[:] = [pandas.NA if m else v for v, m in zip(values, mask, strict=True)]
    return found


_KINDS = {bool: "bool", int: "int", float: "float", str: "str"}


def _local_zone() -> Any:
    from datetime import datetime

    return datetime.now().astimezone().tzinfo


def metric_rows(record: Record) -> list[dict[str, Any]]:
    """One dict per logged step of ``record``: ``step``, ``timestamp`` (the last of the
    step's lines), then ``results.<dotted name>``. Results logged at one step in several
    calls are one row (a name logged twice keeps its last value); lines without a step are
    rows of their own (without ``step``)."""
    rows: dict[Any, dict[str, Any]] = {}
    lines = (line for chunk in iter_results(record.dir) for line in chunk)
    for i, line in enumerate(lines):
        step = line.get("step")
        key = step if step.__class__ is int else ("line", i)
        row = rows.get(key)
        if row is None:
            row = rows[key] = {"step": step} if step.__class__ is int else {}
        if "timestamp" in line:
            row["timestamp"] = line["timestamp"]
        row.update((k, decode_value(v)) for k, v in leaves(line["results"], "results"))
    return list(rows.values())


def metrics_dataframe(records: Record | Sequence[Record]) -> Any:
    """One row per logged step (see :func:`metric_rows`): ``step`` (Int64), ``timestamp``,
    then a ``results.<dotted name>`` column per result, so no result name meets yanex's own
    columns. Given several experiments, one long table of all their steps, its first column
    ``id`` the experiment's (``df.groupby("id")``, or ``df.pivot`` for a column each)."""
    pandas = _pandas()
    many = not isinstance(records, Record)
    table: list[dict[str, Any]] = []
    for rec in records if many else [records]:  # type: ignore[union-attr]
        rows = metric_rows(rec)
        if many:
            rows = [{"id": rec.id, **row} for row in rows]
        table += rows
    names = list(dict.fromkeys(name for row in table for name in row))
    first = ["id", "step", "timestamp"] if many else ["step", "timestamp"]
    names = [*first, *(n for n in names if n not in first)]
    frame = {name: column([row.get(name, _MISSING) for row in table]) for name in names}
    if many:
        frame["id"] = pandas.array([row["id"] for row in table], dtype="string")
    return pandas.DataFrame(frame)


def compare(
    records: Sequence[Record] | None = None, *, all_params: bool = False, **filters: Any
) -> Any:
    """A DataFrame of ``records`` (or of what ``filters`` select), with only the parameters
    that differ between them (``all_params=True``: all) and every result's last value."""
    records = list(records) if records is not None else find(**filters)
    frame = to_dataframe(records)
    if all_params or len(records) < 2:
        return frame
    keep = [
        name
        for name in frame.columns
        if not name.startswith("params.")
        or frame[name].astype(str).nunique(dropna=False) > 1
        or frame[name].isna().any()
    ]
    return frame[keep]


# yanex 0.6's names, kept so that analysis code written for it runs unchanged.
get_experiment = get
get_experiments = find
