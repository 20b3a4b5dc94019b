"""Which experiments a reader means: filters, ``--where`` conditions, sorting, and naming one
experiment by ID, prefix or name. One implementation, compiled to SQL over the index, behind
``yanex list/compare/get/delete/archive``, ``yanex.results`` and the dashboard.

Conditions compare typed values: ``--where "params.model.lr<=0.01"`` types ``0.01`` with the
same grammar as ``--param``, and holds only for experiments whose ``model.lr`` is a number
``<= 0.01``. A key an experiment does not have, or a value of another type, never matches
(``!=`` included). Numbers compare as numbers (ints exactly, at any size), text as text;
booleans, null, lists and dicts only with ``==`` and ``!=``. A key no experiment has, in a
condition or a sort, is an error naming the keys it is close to.

Each condition is one range of an index (``e.id IN (SELECT id FROM params WHERE key = ? AND
kind = ? AND num < ?)``): at 100,000 experiments a filter costs what its matches do.

Which way is better for a result (:func:`better`) is decided here, once, for ``get_best``,
``compare``'s marks and the dashboard.
"""

from __future__ import annotations

import calendar
import difflib
import json
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any, NoReturn

from yanex import grammar, record, results_file, store
from yanex.dotted import leaves
from yanex.errors import QueryError
from yanex.gc_pause import gc_paused
from yanex.index import Index
from yanex.index_values import canonical_json, typed
from yanex.record import Status

OPERATORS = ("==", "!=", "<=", ">=", "<", ">")
IS_NUMBER = "is a number"  # a condition no --where writes: get_best's "a number, not NaN"
CONTAINS = "contains"  # a condition no --where writes: the dashboard's filter of a text column
_OPERATOR_RE = re.compile(r"[<>=!~]+")
_ORDERED_KINDS = ("number", "str")

# Metadata fields a condition or sort key may name: the index column, and how it compares.
FIELDS: dict[str, tuple[str, str]] = {
    "id": ("id", "text"),
    "name": ("name", "text"),
    "description": ("description", "text"),
    "status": ("status", "text"),
    "script": ("script", "text"),
    "project": ("project", "text"),
    "sweep": ("sweep", "text"),
    "sweep_index": ("sweep_index", "number"),
    "exit_code": ("exit_code", "number"),
    "duration": ("duration", "number"),
    "error": ("error", "text"),
    "commit": ("git_commit", "text"),
    "dirty": ("git_dirty", "bool"),
    "created": ("created", "time"),
    "started": ("started", "time"),
    "ended": ("ended", "time"),
}
_FIELD_ALIASES = {f"{name}_at": name for name in ("created", "started", "ended")}

MIN_PREFIX = 4


def _field(name: str) -> tuple[str, str] | None:
    name = _FIELD_ALIASES.get(name, name)
    return FIELDS.get(name)


def _key_help() -> str:
    return "Use params.<dotted key>, results.<name>, or one of: " + ", ".join(FIELDS) + "."


# --- times ---------------------------------------------------------------------------------

_AGO_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
# How much time an ISO date or time stands for, by how far it is written: a date is its day.
_SPANS = (
    (re.compile(r"^\d{4}-\d{2}-\d{2}$"), timedelta(days=1)),
    (re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}$"), timedelta(hours=1)),
    (re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}$"), timedelta(minutes=1)),
    (re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}$"), timedelta(seconds=1)),
)
_ZONE_RE = re.compile(r"(Z|[+-]\d{2}(:?\d{2})?)$")
# yanex 0.6's words for a time (it read them with dateparser): "1 hour ago", "3 months ago",
# "a week ago", "last month", "yesterday", "today", "now".
_WORDS_AGO_RE = re.compile(
    r"^\s*(?:(\d+(?:\.\d+)?|an?)\s+(?P<unit>[a-z]+?)s?\s+ago|last\s+(?P<last>[a-z]+))\s*$",
    re.IGNORECASE,
)
_UNIT_WORDS = {
    "sec": "s", "second": "s", "min": "m", "minute": "m", "hour": "h", "hr": "h",
    "day": "d", "week": "w", "month": "month", "year": "year",
}  # fmt: skip
_DAY_WORDS = {"today": 0, "yesterday": 1, "tomorrow": -1}


def _words_span(text: str) -> tuple[float, float] | None:
    """The span of one of 0.6's time words, or None: ``today``/``yesterday`` are their whole
    day (local time), ``now`` and ``N <units> ago`` an instant (months and years by the
    calendar: ``1 month ago`` on March 31 is February 28)."""
    word = text.strip().lower()
    if word == "now":
        moment = time.time()
        return moment, math.nextafter(moment, math.inf)
    if word in _DAY_WORDS:
        day = datetime.now().replace(hour=0, minute=0, second=0, microsecond=0)
        start = day - timedelta(days=_DAY_WORDS[word])
        return start.timestamp(), (start + timedelta(days=1)).timestamp()
    match = _WORDS_AGO_RE.match(word)
    if match is None:
        return None
    unit = _UNIT_WORDS.get(match.group("unit") or match.group("last"))
    if unit is None:
        return None
    count_text = match.group(1)
    count = 1.0 if count_text in (None, "a", "an") else float(count_text)
    if unit in ("month", "year"):
        if count != int(count):
            return None
        now = datetime.now()
        months = now.year * 12 + now.month - 1 - int(count) * (12 if unit == "year" else 1)
        year, month = divmod(months, 12)
        last_day = calendar.monthrange(year, month + 1)[1]
        moment = now.replace(year=year, month=month + 1, day=min(now.day, last_day)).timestamp()
    else:
        moment = time.time() - count * _SECONDS[unit]
    return moment, math.nextafter(moment, math.inf)


def parse_time(text: str, option: str = "--since") -> float:
    """``3d``, ``12h``, ``30m``, ``"3 days ago"`` (that long ago), ``today``, ``yesterday`` or
    an ISO date/time (local time unless it says its offset): seconds since the epoch (the start
    of a date)."""
    return parse_span(text, option)[0]


def parse_span(text: str, option: str = "--since") -> tuple[float, float]:
    """The time ``text`` stands for, as ``[start, end)`` in seconds since the epoch: a date is
    the whole day (``--until 2026-12-03`` includes it), ``14:30`` the whole minute; a
    duration ago (``3d``) is an instant."""
    match = _AGO_RE.match(text)
    if match:
        moment = time.time() - float(match.group(1)) * _SECONDS[match.group(2)]
        return moment, math.nextafter(moment, math.inf)
    words = _words_span(text)
    if words is not None:
        return words
    try:
        stamp = datetime.fromisoformat(text.strip())
        start = stamp.timestamp()
    except (ValueError, OverflowError, OSError):
        raise QueryError(
            f"{option} {text!r} is neither a date nor a duration",
            hint="Write an ISO date or time (2026-11-28, 2026-11-28T14:30), a duration "
            'ago (30m, 12h, 3d, 2w, "3 days ago", "1 month ago"), today or yesterday.',
        ) from None
    written = text.strip()
    if len(written) > 10:  # an offset follows a time only
        written = _ZONE_RE.sub("", written)
    span = next((span for pattern, span in _SPANS if pattern.match(written)), None)
    if span is None:
        return start, math.nextafter(start, math.inf)
    try:
        return start, (stamp + span).timestamp()
    except OverflowError:
        return start, math.inf


# --- conditions -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    """One ``--where`` condition: ``key op value``, the value already typed."""

    key: str
    op: str
    value: Any
    text: str

    def sql(self) -> tuple[str, list[Any]]:
        """An SQL expression over the ``experiments e`` row, and its parameters."""
        op = "=" if self.op == "==" else self.op
        leaf = leaf_key(self.key)
        if leaf is not None:
            return self._leaf_sql(*leaf, op)
        column, kind = _field(self.key) or ("", "")
        if self.op == CONTAINS and kind == "text":
            return f"instr(e.{column}, ?) > 0", [str(self.value)]
        if self.value is None:  # any kind: exit_code==null, dirty==null (no git), ended==null
            return (f"e.{column} IS NULL", []) if op == "=" else (f"e.{column} IS NOT NULL", [])
        if kind == "time":
            return _span_sql(f"e.{column}", op, self.value)
        if kind in ("number", "bool"):
            return f"(e.{column} IS NOT NULL AND e.{column} {op} ?)", [self.value]
        return f"(e.{column} IS NOT NULL AND e.{column} {op} ?)", [self.value]

    def _leaf_sql(self, table: str, key: str, op: str) -> tuple[str, list[Any]]:
        kind, num, text = typed(self.value)
        head = f"e.id IN (SELECT id FROM {table} WHERE key = ?"
        if op == IS_NUMBER:
            return f"{head} AND kind = 'number' AND (num IS NOT NULL OR text IS NOT NULL))", [key]
        if kind == "null":
            test = "kind = 'null'" if op == "=" else "kind != 'null'"
            return f"{head} AND {test})", [key]
        if kind == "number" and (text is not None or (num is not None and abs(num) >= 2**63)):
            # Beyond 64 bits on the query's side: each value of the key compared exactly.
            wanted = json.dumps(self.value)
            return f"{head} AND kind = 'number' AND exact_compare(num, text, ?, ?))", [
                key,
                op,
                wanted,
            ]
        if kind in ("number", "bool"):
            # A stored int beyond 64 bits holds the float nearest it in num: at 2**63 or more
            # in size, it compares with anything smaller as exactly as the int would.
            return f"{head} AND kind = ? AND num {op} ?)", [key, kind, num]
        return f"{head} AND kind = ? AND num IS NULL AND text {op} ?)", [key, kind, text]


def _span_sql(column: str, op: str, span: tuple[float, float]) -> tuple[str, list[Any]]:
    """A time compared with a span (a date is its whole day): ``<= D`` is before its end."""
    start, end = span
    if op == "=":
        return f"({column} >= ? AND {column} < ?)", [start, end]
    if op == "!=":
        return f"({column} < ? OR {column} >= ?)", [start, end]
    bound, sql_op = {"<": (start, "<"), "<=": (end, "<"), ">": (end, ">="), ">=": (start, ">=")}[op]
    return f"({column} IS NOT NULL AND {column} {sql_op} ?)", [bound]


def leaf_key(key: str) -> tuple[str, str] | None:
    """``params.model.lr`` -> ``("params", "model.lr")``; None for a metadata field."""
    for prefix in ("params.", "results."):
        if key.startswith(prefix) and len(key) > len(prefix):
            return prefix[:-1], key[len(prefix) :]
    return None


def parse_where(text: str) -> Condition:
    """``params.model.lr<=0.01`` -> a :class:`Condition`; QueryError names what is wrong."""
    shown = f"--where {text!r}"
    match = _OPERATOR_RE.search(text)
    if match is None:
        raise QueryError(
            f"{shown} has no comparison",
            hint="Write KEY OP VALUE with OP one of "
            + " ".join(OPERATORS)
            + ', e.g. --where "results.loss<0.3".',
        )
    op = match.group()
    if op == "=":
        raise QueryError(f"{shown}: '=' is not a comparison", hint="Write == to test equality.")
    if op not in OPERATORS:
        raise QueryError(
            f"{shown}: unknown operator {op!r}", hint="Compare with one of " + " ".join(OPERATORS)
        )
    key = text[: match.start()].strip()
    value_text = text[match.end() :]
    if not key:
        raise QueryError(f"{shown} has no key before {op}", hint=_key_help())
    if key.startswith(("params.", "results.")):
        if not key.split(".", 1)[1]:
            raise QueryError(f"{shown} names no parameter or result after the dot")
        value = _value(value_text, shown)
        kind = typed(value)[0]
        if op not in ("==", "!=") and kind not in _ORDERED_KINDS:
            raise QueryError(
                f"{shown}: {op} compares numbers or text, not {kind} values",
                hint="Use == or != for true/false, null, lists and dicts.",
            )
        return Condition(key, op, value, text)
    found = _field(key)
    if found is None:
        raise QueryError(f"{shown}: unknown key {key!r}", hint=_key_help())
    name, kind = _FIELD_ALIASES.get(key, key), found[1]
    if value_text.strip().lower() == "null" and kind in ("time", "bool", "number"):
        if op not in ("==", "!="):
            raise QueryError(
                f"{shown}: {op} compares values, not null", hint="Use == null or != null."
            )
        return Condition(name, op, None, text)  # not ended, no git, no exit code...
    if kind == "time":
        return Condition(name, op, parse_span(value_text.strip().strip("'\""), shown), text)
    value = _value(value_text, shown)
    if kind == "number" and not (results_file.is_number(value) or value is None):
        raise QueryError(f"{shown}: {key} is a number; compare it with a number")
    if kind == "bool" and not (isinstance(value, bool) and op in ("==", "!=")):
        raise QueryError(
            f"{shown}: {key} is true or false (null: unknown)",
            hint=f"Write {key}==true, {key}==false or {key}==null.",
        )
    if kind == "text" and value is not None:
        value = str(value)
    if value is None and op not in ("==", "!="):
        raise QueryError(f"{shown}: {op} compares values, not null", hint="Use == null or != null.")
    return Condition(name, op, value, text)


# A quoted string without escapes or interpolations: Hydra's grammar reads it as its text,
# and loading Hydra's parser for it would cost more than the query (tests/test_readers.py
# checks this against Hydra).
_PLAIN_QUOTED_RE = re.compile(r"""^\s*(?:'([^'\\$]*)'|"([^"\\$]*)")\s*$""")


def _value(text: str, shown: str) -> Any:
    """A condition's value, typed as ``--param`` types it."""
    quoted = _PLAIN_QUOTED_RE.match(text)
    if quoted:
        return quoted.group(1) if quoted.group(1) is not None else quoted.group(2)
    return grammar.parse_value(text, shown)


# --- sorting ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sort:
    """``--sort KEY`` (``-KEY``: descending); experiments without the key come last."""

    key: str
    descending: bool = False

    def sql(self, alias: str) -> tuple[str, str, list[Any]]:
        """``(join, order, join parameters)``: a parameter or result is joined once by its
        key (one lookup per row), and sorted numbers first, then text, then missing."""
        way = " DESC" if self.descending else ""
        leaf = leaf_key(self.key)
        if leaf is not None:
            table, key = leaf
            join = f"LEFT JOIN {table} {alias} ON {alias}.id = e.id AND {alias}.key = ?"
            order = f"{alias}.id IS NULL, {alias}.num IS NULL, {alias}.num{way}, {alias}.text{way}"
            return join, order, [key]
        column = f"e.{FIELDS[self.key][0]}" if self.key in FIELDS else SORT_ONLY[self.key]
        # SQLite puts NULL last when descending: a plain descending order reads straight from
        # an index (`yanex list` of 100,000 sorts nothing); ascending sends missing ones last.
        if self.descending:
            return "", f"{column} DESC", []
        return "", f"({column} IS NULL), {column}", []


# Keys a listing sorts by but a condition does not compare, and the SQL they sort by: tags
# by their text in any case, experiments without tags last.
SORT_ONLY = {"tags": "lower(NULLIF(e.tags, '[]'))"}


def parse_sort(text: str) -> Sort:
    """``KEY`` ascending, ``-KEY`` descending, ``+KEY`` ascending; a result alone sorts best
    first, as :func:`better` says (``results.val_acc``: largest first; a name that says
    neither: ascending)."""
    sign = text[:1] if text[:1] in "+-" else ""
    key = text[len(sign) :]
    descending = sign == "-"
    leaf = leaf_key(key)
    if leaf is not None:
        if not sign and leaf[0] == "results":
            descending = better(leaf[1]) == "max"
        return Sort(key, descending)
    if key in SORT_ONLY:
        return Sort(key, descending)
    found = _field(key)
    if found is None:
        raise QueryError(f"--sort {text!r}: unknown key {key!r}", hint=_key_help())
    return Sort(_FIELD_ALIASES.get(key, key), descending)


NEWEST_FIRST = Sort("created", descending=True)


# --- filters ----------------------------------------------------------------------------------


@dataclass
class Filters:
    """What a command's filter options ask for; empty fields do not filter.

    ``project`` None means every project; ``archived`` False leaves archived experiments out,
    True shows only them, None shows both.
    """

    ids: tuple[str, ...] = ()
    status: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    name: str | None = None
    script: str | None = None
    sweep: str | None = None
    since: float | None = None  # created at or after
    until: float | None = None  # created before (the end of the day --until names)
    where: tuple[Condition, ...] = ()
    project: str | None = None
    archived: bool | None = False
    text: tuple[str, ...] = ()  # words, each in the ID, name, description or a tag
    depends_on: tuple[str, ...] = ()  # full IDs: experiments that depend on each (-D)

    def narrows(self) -> bool:
        """Does anything beyond the project and archive state select experiments?"""
        return bool(
            self.ids
            or self.status
            or self.tags
            or self.name
            or self.script
            or self.sweep
            or self.since is not None
            or self.until is not None
            or self.where
            or self.text
            or self.depends_on
        )

    def sql(self) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []

        def add(clause: str, *values: Any) -> None:
            clauses.append(clause)
            params.extend(values)

        if self.ids:
            add(f"e.id IN ({', '.join('?' * len(self.ids))})", *self.ids)
        if self.project is not None:
            add("e.project = ?", self.project)
        if self.archived is not None:
            add("e.archived = ?", int(self.archived))
        if self.status:
            add(f"e.status IN ({', '.join('?' * len(self.status))})", *self.status)
        for tag in self.tags:
            add("e.id IN (SELECT id FROM tags WHERE tag = ?)", tag)
        if self.name is not None:
            add("e.name GLOB ?", self.name)
        if self.script is not None:
            if "/" in self.script:
                add("e.script GLOB ?", str(Path(self.script).absolute()))
            elif "." not in self.script:  # `--script train`: train.py too (as in yanex 0.6)
                add(
                    "(e.script GLOB ? OR e.script GLOB ?)",
                    f"*/{self.script}",
                    f"*/{self.script}.py",
                )
            else:
                add("e.script GLOB ?", f"*/{self.script}")
        if self.sweep is not None:
            # the sweep's id or a prefix of it: one range of the sweep index (named, as
            # ANALYZE sees a store where most runs have no sweep and advises a scan)
            add(
                "e.id IN (SELECT id FROM experiments INDEXED BY experiments_sweep "
                "WHERE sweep >= ? AND sweep < ?)",
                self.sweep,
                self.sweep + "\U0010ffff",
            )
        if self.since is not None:
            add("e.created >= ?", self.since)
        if self.until is not None:
            add("e.created < ?", self.until)
        for condition in self.where:
            clause, values = condition.sql()
            add(clause, *values)
        for upstream in self.depends_on:
            add("e.id IN (SELECT id FROM dependencies WHERE upstream = ?)", upstream)
        for word in self.text:
            like = f"%{_like_escape(word)}%"
            add(
                "(e.id LIKE ? ESCAPE '\\' OR e.name LIKE ? ESCAPE '\\' "
                "OR e.description LIKE ? ESCAPE '\\' OR EXISTS (SELECT 1 FROM tags t "
                "WHERE t.id = e.id AND t.tag LIKE ? ESCAPE '\\'))",
                like,
                like,
                like,
                like,
            )
        return (" AND ".join(clauses) or "1"), params


def _like_escape(text: str) -> str:
    return re.sub(r"([%_\\])", r"\\\1", text)


def make_filters(
    *,
    status: Sequence[str] = (),
    tags: Sequence[str] = (),
    name: str | None = None,
    script: str | None = None,
    sweep: str | None = None,
    since: str | None = None,
    until: str | None = None,
    where: Sequence[str | Condition] | str = (),
    project: str | None = None,
    archived: bool | None = False,
    ids: Sequence[str] = (),
    text: str | None = None,
    started_after: str | None = None,
    started_before: str | None = None,
    ended_after: str | None = None,
    ended_before: str | None = None,
) -> Filters:
    """Filters from what a user typed (the CLI's options, ``yanex.results.find``'s keywords).

    ``text`` is a search: every word of it must appear (any case) in the ID, the name, the
    description or a tag. ``started_after`` and the like (yanex 0.6's time filters) hold for
    a start or end at or after / before the time given (a date: its start).
    """
    times = [
        Condition(field, op, parse_span(when, option), f"{option} {when}")
        for field, op, option, when in (
            ("started", ">=", "--started-after", started_after),
            ("started", "<", "--started-before", started_before),
            ("ended", ">=", "--ended-after", ended_after),
            ("ended", "<", "--ended-before", ended_before),
        )
        if when is not None
    ]
    for value in status:
        if value not in Status.ALL:
            raise QueryError(
                f"unknown status {value!r}", hint="Statuses: " + ", ".join(Status.ALL) + "."
            )
    if isinstance(where, str):
        where = (where,)
    if sweep is not None and len(sweep) < MIN_PREFIX:
        raise QueryError(f"--sweep {sweep!r} is too short: give at least {MIN_PREFIX} characters")
    return Filters(
        ids=tuple(ids),
        status=tuple(dict.fromkeys(status)),
        tags=tuple(dict.fromkeys(tags)),
        name=name,
        script=script,
        sweep=sweep,
        since=parse_span(since, "--since")[0] if since is not None else None,
        until=parse_span(until, "--until")[1] if until is not None else None,
        where=tuple(parse_where(w) if isinstance(w, str) else w for w in where) + tuple(times),
        project=project,
        archived=archived,
        text=tuple(dict.fromkeys((text or "").split())),
    )


# --- reading ----------------------------------------------------------------------------------

_COLUMNS = (
    "e.id, e.archived, e.status, e.name, e.description, e.tags, e.project, e.script, e.created, "
    "e.started, e.ended, e.duration, e.exit_code, e.error, e.sweep, e.sweep_index, e.params, "
    "e.last, e.series, e.steps, e.git_commit, e.git_dirty"
)  # record.Record's fields, in order (its root between e.steps and e.git_commit)


def _record(index: Index, row: tuple[Any, ...]) -> record.Record:
    """A record from a row of ``_COLUMNS`` (in the order of ``record.Record``'s fields)."""
    *fields, commit, dirty = row
    return record.Record(
        *fields, index.record_roots[row[1]], commit, None if dirty is None else bool(dirty)
    )


def select(
    index: Index,
    filters: Filters,
    sort: Sequence[Sort] = (NEWEST_FIRST,),
    limit: int | None = None,
    offset: int = 0,
) -> list[record.Record]:
    """The experiments ``filters`` select, in ``sort`` order (newest first by default).
    QueryError when a condition or sort names a key no experiment has."""
    check_keys(index, filters, sort)
    where, params = filters.sql()
    joins, order_parts, join_params = [], [], []
    for i, key in enumerate(sort if NEWEST_FIRST in sort else (*sort, NEWEST_FIRST)):
        join, order, values = key.sql(f"s{i}")
        if join:
            joins.append(join)
        order_parts.append(order)
        join_params.extend(values)
    order_parts.append("e.sweep_index, e.id")  # ties: a grid in its order (as the index is)
    sql = (
        f"SELECT {_COLUMNS} FROM experiments e {' '.join(joins)} WHERE {where} "
        f"ORDER BY {', '.join(order_parts)}"
    )
    if limit is not None:
        sql += f" LIMIT {int(limit)} OFFSET {int(offset)}"
    with gc_paused():  # 100,000 records and their fields: see gc_pause
        return [_record(index, row) for row in index.conn.execute(sql, [*join_params, *params])]


def count(index: Index, filters: Filters) -> int:
    check_keys(index, filters)
    where, params = filters.sql()
    return index.conn.execute(
        f"SELECT count(*) FROM experiments e WHERE {where}", params
    ).fetchone()[0]


def group_count(index: Index, filters: Filters, field: str) -> list[tuple[Any, int]]:
    """How many of the selected experiments have each value of ``field`` (a key of
    :data:`FIELDS`: ``status``, ``sweep``, ...), the value whose first experiment was created
    first coming first."""
    column = FIELDS[field][0]
    where, params = filters.sql()
    rows = index.conn.execute(
        f"SELECT e.{column}, count(*) FROM experiments e WHERE {where} "
        f"GROUP BY e.{column} ORDER BY min(e.created), e.{column}",
        params,
    )
    return [(value, number) for value, number in rows]


def check_keys(index: Index, filters: Filters, sort: Sequence[Sort] = ()) -> None:
    """Refuse a condition or sort over a parameter or result no experiment has (a typo would
    otherwise select nothing, or sort by nothing, silently), naming the keys close to it."""
    named = [(c.key, c.text, "--where") for c in filters.where]
    named += [(s.key, s.key, "--sort") for s in sort]
    for key, shown, option in named:
        check_key(index, key, f"{option} {shown!r}")


def check_key(index: Index, key: str, shown: str) -> None:
    """Refuse a ``params.``/``results.`` key no experiment has (``shown`` names where it was
    written), naming the keys close to it; any other key passes."""
    leaf = leaf_key(key)
    if leaf is None:
        return
    table, name = leaf
    found = index.conn.execute(f"SELECT 1 FROM {table} WHERE key = ? LIMIT 1", (name,))
    if found.fetchone() is None:
        what = "a result" if table == "results" else "a parameter"
        raise QueryError(
            f"{shown}: no experiment has {what} {name!r}", hint=_close_keys(index, table, name)
        )


def known_keys(index: Index, table: str, limit: int = 100_000) -> list[str]:
    """The distinct keys of ``params`` or ``results`` in the store, sorted (one seek of the
    (key, ...) index per key: as fast at 100,000 experiments)."""
    return [
        row[0]
        for row in index.conn.execute(
            f"WITH RECURSIVE k(key) AS (SELECT min(key) FROM {table} UNION ALL "
            f"SELECT (SELECT min(key) FROM {table} WHERE key > k.key) FROM k "
            f"WHERE k.key IS NOT NULL) SELECT key FROM k WHERE key IS NOT NULL LIMIT {int(limit)}"
        )
    ]


def _close_keys(index: Index, table: str, name: str) -> str:
    """Keys of the store close to a mistyped one (or under it, for a dict)."""
    keys = known_keys(index, table)
    if not keys:
        return f"No experiment has logged any {'result' if table == 'results' else 'parameter'}."
    under = [key for key in keys if key.startswith(f"{name}.")][:5]
    close = under or difflib.get_close_matches(name, keys, n=5, cutoff=0.6)
    if close:
        return "Did you mean " + ", ".join(f"{table}.{key}" for key in close) + "?"
    shown = ", ".join(f"{table}.{key}" for key in keys[:8])
    return f"Known {table}: {shown}" + (", ..." if len(keys) > 8 else "") + "."


# --- naming experiments -----------------------------------------------------------------------


def name_warning(name: str | None) -> str | None:
    """Why a new name may be taken for an ID (an existing experiment's ID, or a hex string of
    4 to 8 characters that can become the prefix of one), or None."""
    if not name or not re.fullmatch(rf"[0-9a-fA-F]{{{MIN_PREFIX},{store.ID_LENGTH}}}", name):
        return None
    if len(name) == store.ID_LENGTH and any(
        (root / name.lower()).is_dir() for root in (store.experiments_root(), store.archived_root())
    ):
        return (
            f"the name {name!r} is the ID of experiment {name.lower()}: changing commands "
            "refuse it as ambiguous until one of them is renamed"
        )
    return (
        f"the name {name!r} looks like an experiment ID (prefix): where it is also one, "
        "changing commands refuse it as ambiguous"
    )


@dataclass
class Lookup:
    """How commands find experiments by a reference: an ID or a unique prefix of one (4+ hex
    characters, anywhere in the store), or an exact name (in the project, when one is given).

    A reference is never silently read as one of two things: one that is an ID prefix and a
    name is refused with the candidates listed, everywhere. A name several experiments share
    is refused the same way when ``strict`` (the commands that change what they find: delete,
    archive, unarchive, update, rerun); a reading command (show, get) takes the newest of them.
    """

    index: Index
    scope: str | Callable[[], str | None] | None  # the project, or how to find it when needed
    strict: bool = False

    @cached_property
    def project(self) -> str | None:
        """Names are looked up in this project (found only when a name is looked up)."""
        return self.scope() if callable(self.scope) else self.scope

    def one(self, ref: str) -> record.Record:
        ref = ref.strip()
        is_hex = re.fullmatch(r"[0-9a-fA-F]+", ref) is not None
        by_id: list[record.Record] = []
        if is_hex and MIN_PREFIX <= len(ref) <= store.ID_LENGTH:
            by_id = self._by_prefix(ref.lower())
        by_name = self.named(ref)
        found = {rec.id: rec for rec in [*by_id, *by_name]}
        if by_id and by_name and len(found) > 1:
            hint = None
            if any(rec.id == ref.lower() for rec in by_id):  # a full ID, taken as a name too
                named = next(rec for rec in by_name if rec.id != ref.lower())
                hint = (
                    f"{named.id} is named {ref!r}: rename it (`yanex update {named.id} --name "
                    f"NEW`), then {ref.lower()} is found by its ID."
                )
            self._refuse(ref, "is an ID prefix and a name", by_id, by_name, hint)
        if len(by_name) > 1 and self.strict:
            self._refuse(ref, f"is the name of {len(by_name)} experiments", [], by_name)
        if by_name:
            return by_name[0]  # the newest
        if len(by_id) > 1:
            many = "more than 10" if len(by_id) > 10 else str(len(by_id))
            self._refuse(ref, f"is the prefix of {many} experiments", by_id, [])
        if by_id:
            return by_id[0]
        if is_hex and len(ref) < MIN_PREFIX:
            raise QueryError(
                f"{ref!r} is too short to name an experiment",
                hint=f"Give at least {MIN_PREFIX} characters of its ID, or its name.",
            )
        where = "" if self.project is None else f" in project {self.project}"
        raise QueryError(
            f"no experiment has the ID, ID prefix or name {ref!r}{where}",
            hint="`yanex list` shows them (-A: all projects, --archived: archived ones).",
        )

    def many(self, refs: Sequence[str]) -> list[record.Record]:
        """Each named experiment once, in the order given."""
        found: dict[str, record.Record] = {}
        for ref in refs:
            rec = self.one(ref)
            found.setdefault(rec.id, rec)
        return list(found.values())

    def exact(self, experiment_id: str) -> record.Record:
        """The experiment with this full ID (a page's address): never a name or a prefix."""
        found = [rec for rec in self._by_prefix(experiment_id) if rec.id == experiment_id]
        if not found:
            raise QueryError(f"no experiment has the ID {experiment_id!r}")
        return found[0]

    def named(self, name: str, limit: int = 11) -> list[record.Record]:
        """The experiments with exactly this name (in the project), newest first (archived
        ones after the others)."""
        filters = Filters(project=self.project, archived=None)
        where, params = filters.sql()
        rows = self.index.conn.execute(
            f"SELECT {_COLUMNS} FROM experiments e INDEXED BY experiments_name "
            f"WHERE {where} AND e.name = ? "
            "ORDER BY e.archived, e.created DESC LIMIT ?",
            [*params, name, limit],
        ).fetchall()
        return [_record(self.index, row) for row in rows]

    @staticmethod
    def _refuse(
        ref: str,
        what: str,
        by_id: list[record.Record],
        by_name: list[record.Record],
        hint: str | None = None,
    ) -> NoReturn:
        rows = [(rec, "ID") for rec in by_id] + [
            (rec, "name") for rec in by_name if rec.id not in {r.id for r in by_id}
        ]
        shown = "\n".join(
            f"  {rec.id}  {rec.status:<9}  {rec.name or ''}  (by its {how})"
            for rec, how in rows[:10]
        )
        more = "\n  ..." if len(by_id) > 10 or len(by_name) > 10 else ""
        raise QueryError(
            f"{ref!r} {what}; it could mean:\n{shown}{more}",
            hint=hint
            or "Give the full ID of the one you mean (or rename one with `yanex update ID "
            "--name NEW`).",
        )

    def _by_prefix(self, prefix: str) -> list[record.Record]:
        # IDs are lowercase hex: every ID with this prefix sorts between it and prefix + "g".
        rows = self.index.conn.execute(
            f"SELECT {_COLUMNS} FROM experiments e WHERE e.id >= ? AND e.id < ? "
            "ORDER BY e.id LIMIT 11",
            (prefix, prefix + "g"),
        ).fetchall()
        return [_record(self.index, row) for row in rows]


# --- comparing --------------------------------------------------------------------------------


def canonical(value: Any) -> str:
    """How values are compared across experiments (``compare``'s differing parameters)."""
    return canonical_json(value)


def differing_keys(flat: Sequence[Mapping[str, Any]]) -> list[str]:
    """The keys of these (flattened) parameter sets whose value is not the same in all of
    them, in first-seen order; a key one of them lacks differs."""
    keys = list(dict.fromkeys(key for params in flat for key in params))
    return [k for k in keys if len({canonical(p[k]) if k in p else None for p in flat}) > 1]


# Which way is better for a result, told by the words of its name (val_loss, top1Accuracy).
_LOWER_IS_BETTER = frozenset(("loss", "error", "err", "mse", "mae", "rmse", "nll", "perplexity",
                              "ppl", "wer", "cer", "time", "latency", "duration", "regret",
                              "cost", "distance", "fid"))  # fmt: skip
_HIGHER_IS_BETTER = frozenset(("acc", "accuracy", "f1", "precision", "recall", "auc", "auroc",
                               "map", "iou", "miou", "dice", "bleu", "rouge", "score", "reward",
                               "return", "r2", "psnr", "ssim", "throughput",
                               "fps", "success", "ndcg", "mrr", "likelihood", "elbo", "kappa",
                               "correct"))  # fmt: skip
# A word that turns the rest around: scikit-learn's scorers are "greater is better", so an
# error is given negated (neg_mean_squared_error, neg_log_loss); neg_log_likelihood is an NLL.
_NEGATED = frozenset(("neg", "negative", "negated"))
_WORD_RE = re.compile(r"[A-Z]?[a-z]+[0-9]*|[A-Z]+[0-9]*(?![a-z])|[0-9]+")


def better(name: str) -> str | None:
    """``"min"`` when smaller values of the result ``name`` are better (its name has a word
    like loss, error, mse, time), ``"max"`` when larger are (accuracy, f1, reward, score),
    None when its name says neither or both (``top1_error``): then whoever asks which is best
    must be told (``maximize=``, ``--maximize``). The one rule for ``get_best``, ``compare``
    and the dashboard. Words split at ``_``, ``/``, ``.``, ``-`` and case changes
    (``trainError``); ``top1_error`` is an error, ``top1_acc`` an accuracy; ``neg`` turns
    the rest around (scikit-learn's ``neg_mean_squared_error`` is larger-is-better)."""
    words = {word.lower() for word in _WORD_RE.findall(name)}
    lower, higher = bool(words & _LOWER_IS_BETTER), bool(words & _HIGHER_IS_BETTER)
    if lower == higher:
        return None
    if words & _NEGATED:  # neg_mean_squared_error: larger is better
        lower = not lower
    return "min" if lower else "max"


def lower_is_better(name: str) -> bool | None:
    """True, False, or None when the name does not say (see :func:`better`)."""
    way = better(name)
    return None if way is None else way == "min"


def direction(name: str, minimize: Sequence[str] = (), maximize: Sequence[str] = ()) -> str | None:
    """``"min"``/``"max"`` for ``name``: what ``minimize``/``maximize`` say, else
    :func:`better`."""
    if name in minimize:
        return "min"
    if name in maximize:
        return "max"
    return better(name)


def best_rows(
    records: Sequence[record.Record],
    names: Sequence[str],
    minimize: Sequence[str] = (),
    maximize: Sequence[str] = (),
) -> dict[str, set[int]]:
    """For each result, the rows holding its best last value (``compare``'s marks): the
    smallest or largest as :func:`direction` says; a result whose direction is unknown has no
    best. Only numbers (not NaN) take part, and a result with fewer than two different values
    has no best."""
    best: dict[str, set[int]] = {}
    flat = [dict(leaves(rec.last)) for rec in records]  # val.f1 of a nested result
    for name in names:
        way = direction(name, minimize, maximize)
        if way is None:
            continue
        values = [
            (i, last[name])
            for i, last in enumerate(flat)
            if name in last and results_file.is_number(last[name]) and not math.isnan(last[name])
        ]
        if len(values) < 2 or len({v for _, v in values}) < 2:
            continue  # nothing to choose between
        target = (min if way == "min" else max)(v for _, v in values)
        best[name] = {i for i, v in values if v == target}
    return best
