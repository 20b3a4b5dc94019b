"""Experiments from Python: ``yanex.results.find/get/get_best``, and DataFrames of them.

The same filters as ``yanex list`` (through ``yanex.query``), the same records as
``yanex show`` (``yanex.record.Record``)::

    import yanex.results as yr

    best = yr.get_best("loss", tags=["baseline"])
    runs = yr.find(status="completed", where="params.model.lr<=0.01", sort="results.loss")
    df = yr.to_dataframe(runs)           # one row per experiment (pandas: yanex[analysis])
    steps = yr.metrics_dataframe(best)   # one row per logged step

By default, like the CLI, the experiments of the current project (the git repository of the
working folder, else the folder); ``all_projects=True`` for every one. Bad filters raise
``yanex.YanexError``. yanex 0.6's names (``get_experiment``, ``get_experiments``,
``compare``) are kept.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from yanex import query
from yanex.errors import YanexError
from yanex.index import Index, param_leaves
from yanex.record import Record, decode_value

__all__ = [
    "Record",
    "compare",
    "find",
    "get",
    "get_best",
    "get_experiment",
    "get_experiments",
    "metrics_dataframe",
    "to_dataframe",
]


def _project(all_projects: bool) -> str | None:
    if all_projects:
        return None
    from yanex.executors import current_project

    return str(current_project(Path.cwd()))


def _synced_index() -> Index:
    index = Index()
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
    where: str | Sequence[str] = (),
    sort: str | Sequence[str] | None = None,
    limit: int | None = None,
    archived: bool | None = False,
    all_projects: bool = False,
) -> list[Record]:
    """The experiments the filters select, newest first unless ``sort`` says otherwise.

    ``ids`` are IDs, unique prefixes or names (looked up as ``yanex show`` does). The other
    filters mean what ``yanex list``'s options mean: ``where="results.loss<0.3"`` (or a list
    of conditions, all of which must hold), ``sort="-results.accuracy"``.
    """
    index = _synced_index()
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


def get_best(metric: str, minimize: bool = True, **filters: Any) -> Record | None:
    """The experiment with the smallest (``minimize=False``: largest) last value of the result
    ``metric``, among those ``filters`` select (as in :func:`find`); None if none logged it."""
    order = f"{'' if minimize else '-'}results.{metric}"
    # Only experiments whose last value is a number (not text, not NaN) take part.
    where = [*_as_tuple(filters.pop("where", ())), f"results.{metric}>=-1e308"]
    found = find(sort=order, limit=1, where=where, **filters)
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
    """One row per experiment: id, name, status, tags, times, duration, sweep, then a
    ``params.<dotted key>`` column per parameter and a ``results.<name>`` column per result
    (its last value). Needs pandas (``pip install "yanex[analysis]"``)."""
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
        "id": [rec.id for rec in records],
        "name": [rec.name for rec in records],
        "status": [rec.status for rec in records],
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
        )
        columns[when] = stamps.tz_convert(_local_zone())
    columns["duration"] = [rec.duration for rec in records]
    columns["sweep"] = [rec.sweep for rec in records]
    # Built column by column: a 100,000-row frame from row dicts costs several times more.
    spread: dict[str, list[Any]] = {}

    def put(name: str, row: int, value: Any) -> None:
        column = spread.get(name)
        if column is None:
            column = spread[name] = [None] * count
        column[row] = value

    for row, values in enumerate(params):
        for key, value in values.items():
            if isinstance(value, dict) and value:  # nested: dotted keys, as --param writes them
                for leaf, item in param_leaves(value, f"params.{key}"):
                    put(leaf, row, item)
            else:
                put(f"params.{key}", row, value)
    for row, values in enumerate(lasts):
        for key, value in values.items():
            put(f"results.{key}", row, decode_value(value) if value.__class__ is str else value)
    return pandas.DataFrame({**columns, **spread})


def _local_zone() -> Any:
    from datetime import datetime

    return datetime.now().astimezone().tzinfo


def metrics_dataframe(record: Record) -> Any:
    """One row per logged line of ``record``: step, timestamp, and a column per result."""
    pandas = _pandas()
    rows = [
        {"step": line.get("step"), "timestamp": line.get("timestamp"), **line["results"]}
        for line in record.results
    ]
    return pandas.DataFrame(rows, columns=None if rows else ["step", "timestamp"])


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
        column
        for column in frame.columns
        if not column.startswith("params.")
        or frame[column].astype(str).nunique(dropna=False) > 1
        or frame[column].isna().any()
    ]
    return frame[keep]


# yanex 0.6's names, kept so that analysis code written for it runs unchanged.
get_experiment = get
get_experiments = find
