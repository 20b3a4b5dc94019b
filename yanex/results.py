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

import contextlib
import json
import os
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from yanex import query
from yanex.columns import reason
from yanex.dotted import leaves, lookup
from yanex.errors import YanexError
from yanex.gc_pause import gc_paused
from yanex.index import Index
from yanex.json_policy import decode_value
from yanex.record import Record, fits_int64
from yanex.results_file import iter_results

__all__ = [
    "Experiment",
    "Record",
    "compare",
    "experiment_exists",
    "find",
    "get",
    "get_best",
    "get_experiment",
    "get_experiment_count",
    "get_experiments",
    "get_graph",
    "get_latest",
    "get_metrics",
    "metric_rows",
    "metrics_dataframe",
    "reason",
    "to_dataframe",
]


def _project(all_projects: bool) -> str | None:
    if all_projects:
        return None
    from yanex.code.state import project_of

    return str(project_of(Path.cwd()))


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
    script_pattern: str | None = None,
    started_after: str | datetime | None = None,
    started_before: str | datetime | None = None,
    ended_after: str | datetime | None = None,
    ended_before: str | datetime | None = None,
) -> list[Experiment]:
    """The experiments the filters select, newest first unless ``sort`` says otherwise.

        ``ids`` are IDs, unique prefixes or names (looked up as ``yanex show`` does). The other
        filters mean what ``yanex list``'s options mean: ``where="results.loss<0.3"`` (or a list
        of conditions, all of which must hold), ``sort="results.accuracy"`` (a result alone: best
    first; ``-``/``+``: descending/ascending); ``until`` a date
        includes that day. ``progress(done, total, why)`` follows a build of the index.
    yanex 0.6's keywords: ``script_pattern`` (= ``script``), ``started_after``,
    ``started_before``, ``ended_after``, ``ended_before`` (a datetime, an ISO date or time,
    ``"1 week ago"``, ``"yesterday"``).
    """
    if script_pattern is not None:
        if script is not None:
            raise query.QueryError("give script or script_pattern, not both")
        script = script_pattern
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
            started_after=_when(started_after),
            started_before=_when(started_before),
            ended_after=_when(ended_after),
            ended_before=_when(ended_before),
        )
        order = tuple(query.parse_sort(key) for key in _as_tuple(sort)) or (query.NEWEST_FIRST,)
        found = query.select(index, filters, sort=order, limit=limit)
        with gc_paused():
            return [_experiment(rec) for rec in found]
    finally:
        index.close()


def _when(value: str | datetime | None) -> str | None:
    """A time filter's value as text (a naive datetime is local time)."""
    return value.isoformat() if isinstance(value, datetime) else value


def get(ref: str, *, all_projects: bool = False) -> Experiment:
    """One experiment by ID, unique ID prefix (4+ characters) or name (the newest with it)."""
    index = _synced_index()
    try:
        return _experiment(query.Lookup(index, _project(all_projects)).one(ref))
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
    with gc_paused():  # millions of small objects: see gc_pause
        return _dataframe(pandas, records)


def _dataframe(pandas: Any, records: Sequence[Record]) -> Any:
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
    roots = {root: str(root) for root in {rec.root for rec in records}}  # not a Path per row
    for name, texts in (
        ("script", [rec.script for rec in records]),
        ("project", [rec.project for rec in records]),
        ("folder", [f"{roots[rec.root]}{os.sep}{rec.id}" for rec in records]),
    ):
        columns[name] = pandas.array(texts, dtype="string")
    # Built column by column: a 100,000-row frame from row dicts costs several times more.
    spread: dict[str, list[Any]] = {}
    for prefix, rows in (("params", params), ("results", lasts)):
        _spread(rows, prefix, spread)
    columns.update((name, column(values)) for name, values in spread.items())
    return pandas.DataFrame(columns)


class _Missing:
    """A value a row does not have (None is JSON's null, a value)."""

    def __repr__(self) -> str:
        return "<missing>"


_MISSING = _Missing()


def _spread(rows: list[dict[str, Any]], prefix: str, into: dict[str, list[Any]]) -> None:
    """Each row's leaves into a column per dotted name (``_MISSING`` where a row has none).
    A row's top-level values are taken as they are unless a nested dict is walked (with
    :func:`yanex.dotted.leaves`): 100,000 rows of the same keys make each column once."""
    count = len(rows)
    columns: dict[str, list[Any]] = {}  # a top-level key: its column

    def of(name: str) -> list[Any]:
        found = into.get(name)
        if found is None:
            found = into[name] = [_MISSING] * count
        return found

    for row, node in enumerate(rows):
        for key, value in node.items():
            if value and value.__class__ is dict:
                for leaf, inner in leaves(value, f"{prefix}.{key}"):
                    of(leaf)[row] = inner
                continue
            found = columns.get(key)
            if found is None:
                found = columns[key] = of(f"{prefix}.{key}")
            found[row] = value


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
    records: Sequence[Record] | None = None,
    *,
    all_params: bool = False,
    params: str | Sequence[str] = "auto",
    metrics: str | Sequence[str] = "all",
    meta: str | Sequence[str] = "all",
    **filters: Any,
) -> Any:
    """A DataFrame of ``records`` (or of what ``filters`` select): the parameters that differ
    between them and every result's last value.

    yanex 0.6's column choices: ``params`` and ``metrics`` are ``"auto"`` (those that
    differ), ``"all"``, ``"none"`` or a list of keys (globs: ``"*.lr"``); ``meta`` is
    ``"all"``, ``"none"`` or a list of yanex's own columns (``id`` always stays). Columns keep
    today's names (``params.lr``, ``results.acc``), not 0.6's (``param:lr``)."""
    if all_params:
        params = "all"
    records = list(records) if records is not None else find(**filters)
    frame = to_dataframe(records)
    names = list(frame.columns)
    fixed = [n for n in names if not n.startswith(("params.", "results."))]
    chosen = ["id"] if "id" in names else []
    chosen += [n for n in _chosen("meta", meta, fixed, frame) if n != "id"]
    for keyword, spec, prefix in (("params", params, "params."), ("metrics", metrics, "results.")):
        found = [n for n in names if n.startswith(prefix)]
        chosen += _chosen(keyword, spec, found, frame, prefix)
    return frame[chosen]


_META_ALIASES = {"started_at": "started", "completed_at": "ended", "created_at": "created"}


def _chosen(
    keyword: str, spec: str | Sequence[str], found: list[str], frame: Any, prefix: str = ""
) -> list[str]:
    """compare's ``params=``/``metrics=``/``meta=``: which of the columns ``found`` (a key
    named without its ``prefix``: ``lr`` for ``params.lr``; globs allowed)."""
    import fnmatch

    if spec == "all":
        return found
    if spec == "none":
        return []
    if spec == "auto":
        if len(frame) < 2:
            return found
        return [
            name
            for name in found
            if frame[name].astype(str).nunique(dropna=False) > 1 or frame[name].isna().any()
        ]
    if isinstance(spec, str):
        raise query.QueryError(
            f"compare({keyword}={spec!r}): give 'auto', 'all', 'none' or a list of names"
        )
    chosen: list[str] = []
    for key in spec:
        key = _META_ALIASES.get(key, key) if not prefix else key
        pattern = key if key.startswith(prefix) else prefix + key
        matches = [name for name in found if fnmatch.fnmatchcase(name, pattern)]
        if not matches:
            raise query.QueryError(
                f"compare({keyword}=[{key!r}]): none of these experiments has it",
                hint="They have: " + ", ".join(found[:12]) + (", ..." if len(found) > 12 else ""),
            )
        chosen += [name for name in matches if name not in chosen]
    return chosen


# yanex 0.6's names, kept so that analysis code written for it runs unchanged.
get_experiment = get
get_experiments = find


# --- yanex 0.6's results API ------------------------------------------------------------------


class Experiment(Record):
    """One experiment, with yanex 0.6's methods besides today's (a :class:`Record`):
    ``get_params``, ``get_param``, ``get_metric``, ``get_metrics``, ``started_at``,
    ``completed_at``, ``script_path``, ``experiment_dir``, ``artifacts_dir``,
    ``list_artifacts``, ``artifact_exists``, ``load_artifact``, ``to_dict``, and the changes
    ``set_name``, ``set_description``, ``add_tags``, ``remove_tags``.

    ``Experiment("3f9a")`` looks one up (ID, prefix or name, in every project), as 0.6's
    did; every function of this module returns them. ``duration`` stays today's seconds
    (0.6 gave a timedelta: ``timedelta(seconds=exp.duration)``).
    """

    def __init__(self, experiment_id: str, *fields: Any) -> None:
        if fields:  # built from an index row, as a Record is
            Record.__init__(self, experiment_id, *fields)
            return
        self.__dict__.update(get(experiment_id, all_projects=True).__dict__)

    # -- 0.6's names of what a Record has

    @property
    def started_at(self) -> datetime | None:
        return self.started

    @property
    def completed_at(self) -> datetime | None:
        return self.ended

    @property
    def script_path(self) -> Path | None:
        return Path(self.script) if self.script else None

    @property
    def experiment_dir(self) -> Path:
        return self.dir

    @property
    def artifacts_dir(self) -> Path:
        return self.dir / "artifacts"

    @property
    def dependencies(self) -> dict[str, str]:
        """The experiments this one depends on, by slot (``{}`` when none)."""
        found = self.metadata.get("dependencies")
        return dict(found) if isinstance(found, dict) else {}

    @property
    def dependency_ids(self) -> list[str]:
        return list(self.dependencies.values())

    @property
    def has_dependencies(self) -> bool:
        return bool(self.dependencies)

    def get_params(self, include_deps: bool = False, transitive: bool = True) -> dict[str, Any]:
        """A copy of the parameters the experiment ran with; ``include_deps``: merged over
        those of the experiments it depends on (``transitive=False``: only the direct ones),
        upstream first, its own winning, as 0.6 merged them."""
        own = json.loads(self.params_json)
        if not include_deps:
            return own
        found = self.get_dependencies(transitive=transitive)
        merged: dict[str, Any] = {}
        for dep in found.values() if isinstance(found, dict) else found:
            merged = _merged(merged, dep.get_params())
        return _merged(merged, own)

    def get_dependency(self, slot: str) -> Experiment | None:
        """The experiment in dependency slot ``slot`` (``-D data=ID``: ``"data"``), None
        when it has none there (or it was deleted)."""
        found = self.dependencies.get(slot)
        return None if found is None else _by_ids([found]).get(found)

    def get_dependencies(
        self, transitive: bool = False, include_self: bool = False
    ) -> dict[str, Experiment] | list[Experiment]:
        """The experiments it depends on: ``{slot: experiment}``; with ``transitive``, every
        one it depends on directly or not, upstream first (itself last with
        ``include_self``). A deleted one is left out."""
        if not transitive:
            found = _by_ids(list(self.dependencies.values()))
            return {s: found[i] for s, i in self.dependencies.items() if i in found}
        from yanex import dependencies

        with contextlib.closing(_synced_index()) as index:
            ids = dependencies.lineage(index, [self.id], down=False).ids
        ids = [i for i in ids if i != self.id] + ([self.id] if include_self else [])
        found = _by_ids(ids)
        return [found[i] for i in ids if i in found]

    def get_param(self, key: str, default: Any = None, include_deps: bool = False) -> Any:
        """One parameter by its dotted key (``model.lr``; ``layers.0`` indexes a list)."""
        return lookup(self.get_params(include_deps=include_deps), key, default)

    def _steps(self) -> list[dict[str, Any]]:
        """The logged results as 0.6 kept them: one dict per step (``step``, ``timestamp``,
        then each result; results logged at one step in several calls merged, the later
        value winning), in the order logged."""
        rows: dict[Any, dict[str, Any]] = {}
        for i, line in enumerate(self.results):
            step = line.get("step")
            key = step if step.__class__ is int else ("line", i)
            row = rows.setdefault(key, {"step": step})
            row["timestamp"] = line.get("timestamp")
            for name, value in (line.get("results") or {}).items():
                row[name] = decode_value(value)
        return list(rows.values())

    def get_metrics(self, step: int | None = None, as_dataframe: bool = True) -> Any:
        """Every logged step (``step=N``: that one) as a DataFrame indexed by step, or with
        ``as_dataframe=False`` as a list of dicts (one dict for ``step=N``)."""
        rows = self._steps()
        if step is not None:
            rows = [row for row in rows if row.get("step") == step][:1]
        if not as_dataframe:
            return (dict(rows[0]) if rows else {}) if step is not None else rows
        pandas = _pandas()
        if not rows:
            return pandas.DataFrame()
        return pandas.DataFrame(rows).set_index("step")

    def get_metric(self, name: str) -> Any:
        """A result's value at each step it was logged: the value when logged once, a list
        when logged more often, None when never (``val.f1`` reads into a logged dict)."""
        values = []
        for row in self._steps():
            if name in row and name not in ("step", "timestamp"):
                values.append(row[name])
            elif "." in name:
                node: Any = row
                for part in name.split("."):
                    node = node.get(part, _MISSING) if isinstance(node, dict) else _MISSING
                if node is not _MISSING:
                    values.append(node)
        if not values:
            return None
        return values[0] if len(values) == 1 else values

    def list_artifacts(self) -> list[str]:
        """The artifacts' names, sorted (``plots/loss.png`` for one in a folder)."""
        return sorted(artifact.name for artifact in self.artifacts)

    def artifact_exists(self, filename: str) -> bool:
        return self._artifact(filename).is_file()

    def load_artifact(self, filename: str, loader: Any = None, format: str | None = None) -> Any:
        """An artifact read by its extension as ``yanex.load_artifact`` reads it (``loader(
        path)`` for any other format); None when it does not exist."""
        from yanex import api

        path = self._artifact(filename)
        if not path.is_file():
            return None
        return (loader or api._loader_for(path, format))(path)

    def _artifact(self, filename: str) -> Path:
        from yanex import store

        return store.path_inside(self.dir / store.ARTIFACTS, str(filename), "artifact name")

    def get_script_runs(self) -> list[dict[str, Any]]:
        """0.6's record of ``execute_bash_script`` calls: not kept (their output is in the
        artifacts ``<prefix>_stdout.txt``/``_stderr.txt``)."""
        return []

    def to_dict(self) -> dict[str, Any]:
        """Everything about the experiment as plain data, with 0.6's keys."""
        return {
            "id": self.id,
            "name": self.name,
            "project": self.project,
            "description": self.description,
            "status": self.status,
            "tags": self.tags,
            "started_at": self.started.isoformat() if self.started else None,
            "completed_at": self.ended.isoformat() if self.ended else None,
            "duration_seconds": self.duration,
            "script_path": self.script,
            "archived": self.archived,
            "params": self.get_params(),
            "metrics": self.get_metrics(as_dataframe=False),
            "artifacts": self.list_artifacts(),
            "script_runs": [],
            "dependency_ids": self.dependency_ids,
            "has_dependencies": self.has_dependencies,
        }

    def refresh(self) -> None:
        """Read the experiment again (its record is a snapshot of when it was found)."""
        self.__dict__.update(get(self.id, all_projects=True).__dict__)
        for name in ("tags", "params", "last", "series", "metadata"):
            self.__dict__.pop(name, None)

    def _update(self, **changes: Any) -> None:
        from yanex import manage

        manage.update(self, **changes)
        self.refresh()

    def set_name(self, name: str) -> None:
        self._update(name=name)

    def set_description(self, description: str) -> None:
        self._update(description=description)

    def add_tags(self, tags: Sequence[str]) -> None:
        self._update(add_tags=list(tags))

    def remove_tags(self, tags: Sequence[str]) -> None:
        self._update(remove_tags=list(tags))

    def set_status(self, status: str) -> None:
        raise YanexError(
            "set_status: a status records how a run ended and is never set by hand",
            hint="Tag it instead: exp.add_tags([...]).",
        )

    def __repr__(self) -> str:
        return f"Experiment(id={self.id!r}, name={self.name!r}, status={self.status!r})"


def _merged(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """``top`` over ``base``, nested dicts merged key by key (yanex 0.6's deep merge)."""
    merged = dict(base)
    for key, value in top.items():
        below = merged.get(key)
        both = isinstance(below, dict) and isinstance(value, dict)
        merged[key] = _merged(below, value) if both else value
    return merged


def _by_ids(ids: Sequence[str]) -> dict[str, Experiment]:
    """The experiments with these full IDs (any project, archived too), by ID."""
    if not ids:
        return {}
    with contextlib.closing(_synced_index()) as index:
        filters = query.Filters(ids=tuple(ids), archived=None)
        return {rec.id: _experiment(rec) for rec in query.select(index, filters)}


def get_graph(experiment_id: str, *, weakly_connected: bool = False) -> Any:
    """The experiments ``experiment_id`` depends on and those that depend on it, directly or
    not, with itself (``weakly_connected``: the whole connected pipeline, its siblings'
    branches too), as yanex 0.6's ``ExperimentGraph``: ``experiments`` upstream first,
    ``edges`` as ``(upstream, dependent, slot)``, ``roots``, ``leaves``, ``get(id)``,
    ``filter(script_pattern=...)``, ``load_artifact(name)``."""
    from yanex import dependencies

    start = get(experiment_id, all_projects=True)
    with contextlib.closing(_synced_index()) as index:
        found = dependencies.lineage(index, [start.id], connected=weakly_connected)
    by_id = _by_ids(found.ids)
    return dependencies.Graph([by_id[i] for i in found.ids if i in by_id], found.edges)


def _experiment(rec: Record) -> Experiment:
    """``rec`` with 0.6's methods (the same fields, nothing read again)."""
    found = object.__new__(Experiment)
    found.__dict__ = rec.__dict__
    return found


def get_latest(**filters: Any) -> Experiment | None:
    """The newest experiment ``filters`` select (as in :func:`find`), or None."""
    found = find(limit=1, **filters)
    return found[0] if found else None


def get_experiment_count(**filters: Any) -> int:
    """How many experiments ``filters`` select."""
    return len(find(**filters))


def experiment_exists(experiment_id: str, include_archived: bool = True) -> bool:
    """Whether an experiment has this ID, prefix or name (in any project)."""
    try:
        found = get(experiment_id, all_projects=True)
    except query.QueryError:
        return False
    return include_archived or not found.archived


def get_metrics(
    *,
    metrics: str | Sequence[str] | None = None,
    params: str | Sequence[str] = "auto",
    meta: Sequence[str] | None = None,
    include_dep_params: bool = False,
    as_dataframe: bool = True,
    include_params: str | Sequence[str] | None = None,
    **filters: Any,
) -> Any:
    """Every logged value of the experiments ``filters`` select, one row each (long form, for
    plotting): ``experiment_id``, ``step``, ``metric_name``, ``value``, then the ``meta``
    fields asked for and the parameters: ``params="auto"`` those that differ, ``"all"``,
    ``"none"`` or a list of dotted keys (``include_params=``: yanex 0.6.0's name).
    ``metrics`` keeps only these results. ``as_dataframe=False``: ``{id: [step dicts]}``."""
    if include_params is not None:
        params = include_params
    if include_dep_params:
        raise YanexError(
            "get_metrics(include_dep_params=True): the parameters of dependencies are not read yet"
        )
    wanted = [metrics] if isinstance(metrics, str) else None if metrics is None else list(metrics)
    experiments = find(**filters)
    if not as_dataframe:
        return {exp.id: exp.get_metrics(as_dataframe=False) for exp in experiments}
    flat = [dict(leaves(exp.params)) for exp in experiments]
    if params == "auto":
        keys = sorted(query.differing_keys(flat))
    elif params == "all":
        keys = list(dict.fromkeys(key for row in flat for key in row))
    elif params == "none":
        keys = []
    elif isinstance(params, str):
        raise query.QueryError(
            f"get_metrics(params={params!r}): give 'auto', 'all', 'none' or a list of keys"
        )
    else:
        keys = list(params)
    rows: list[dict[str, Any]] = []
    for exp, values in zip(experiments, flat, strict=True):
        shown = {name: _meta_value(exp, name) for name in meta or ()}
        for step in exp._steps():
            for name, value in step.items():
                if name in ("step", "timestamp") or (wanted is not None and name not in wanted):
                    continue
                row = {"experiment_id": exp.id, "step": step["step"], "metric_name": name}
                row["value"] = value
                row.update(shown)
                row.update((key, values.get(key)) for key in keys)
                rows.append(row)
    pandas = _pandas()
    columns = ["experiment_id", "step", "metric_name", "value", *(meta or ()), *keys]
    frame = pandas.DataFrame(rows, columns=columns)
    if not frame.empty:
        frame["value"] = pandas.to_numeric(frame["value"], errors="coerce")
    return frame


def _meta_value(exp: Experiment, name: str) -> Any:
    """A metadata field by 0.6's name (``started_at``, ``script_path``) or today's."""
    name = {**_META_ALIASES, "script_path": "script"}.get(name, name)
    if name in ("id", "name", "status", "description", "tags", "project", "archived",
                "duration", "script", "created", "started", "ended", "sweep"):  # fmt: skip
        return getattr(exp, name)
    node: Any = exp.metadata
    for part in name.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node
