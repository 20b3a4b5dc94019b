"""Which experiments a reader means: filters, ``--where`` conditions, sorting, and naming one
experiment by ID, prefix or name. One implementation, compiled to SQL over the index, behind
``yanex list/compare/get/delete/archive``, ``yanex.results`` and the dashboard.

Conditions compare typed values: ``--where "params.model.lr<=0.01"`` types ``0.01`` with the
same grammar as ``--param``, and holds only for experiments whose ``model.lr`` is a number
``<= 0.01``. A key an experiment does not have, or a value of another type, never matches
(``!=`` included). Numbers compare as numbers, text as text; booleans, null, lists and dicts
only with ``==`` and ``!=``.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any, NoReturn

from yanex import record, store
from yanex.errors import YanexError
from yanex.index import Index, canonical_json, typed
from yanex.record import Status


class QueryError(YanexError):
    """A filter, condition, sort key or experiment name that cannot be used."""


OPERATORS = ("==", "!=", "<=", ">=", "<", ">")
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


# --- times ------------------------------------------------------------------------------------

_AGO_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_time(text: str, option: str = "--since") -> float:
    """``3d``, ``12h``, ``30m`` (that long ago) or an ISO date/time (local time unless it
    says its offset): seconds since the epoch."""
    match = _AGO_RE.match(text)
    if match:
        return time.time() - float(match.group(1)) * _SECONDS[match.group(2)]
    try:
        stamp = datetime.fromisoformat(text.strip())
    except ValueError:
        raise QueryError(
            f"{option} {text!r} is neither a date nor a duration",
            hint="Write an ISO date or time (2026-11-28, 2026-11-28T14:30) or a duration "
            "ago: 30m, 12h, 3d, 2w.",
        ) from None
    return stamp.timestamp()


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
        for prefix, table in (("params.", "params"), ("results.", "results")):
            if self.key.startswith(prefix):
                return self._leaf_sql(table, self.key[len(prefix) :], op)
        column, kind = _field(self.key) or ("", "")
        if kind == "time":
            return f"(e.{column} IS NOT NULL AND e.{column} {op} ?)", [self.value]
        if kind == "number":
            return f"(e.{column} IS NOT NULL AND e.{column} {op} ?)", [self.value]
        if self.value is None:
            return (f"e.{column} IS NULL", []) if op == "=" else (f"e.{column} IS NOT NULL", [])
        return f"(e.{column} IS NOT NULL AND e.{column} {op} ?)", [self.value]

    def _leaf_sql(self, table: str, key: str, op: str) -> tuple[str, list[Any]]:
        kind, num, text = typed(self.value)
        head = f"EXISTS (SELECT 1 FROM {table} x WHERE x.id = e.id AND x.key = ?"
        if kind == "null":
            test = "x.kind = 'null'" if op == "=" else "x.kind != 'null'"
            return f"{head} AND {test})", [key]
        if kind in ("number", "bool"):
            return f"{head} AND x.kind = ? AND x.num {op} ?)", [key, kind, num]
        return f"{head} AND x.kind = ? AND x.text {op} ?)", [key, kind, text]


def parse_where(text: str) -> Condition:
    """``params.model.lr<=0.01`` -> a :class:`Condition`; QueryError names what is wrong."""
    from yanex.config.overrides import parse_value

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
        value = parse_value(value_text, shown)
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
    column, kind = found
    if kind == "time":
        return Condition(column, op, parse_time(value_text, shown), text)
    value = parse_value(value_text, shown)
    if kind == "number" and not (record.is_number(value) or value is None):
        raise QueryError(f"{shown}: {key} is a number; compare it with a number")
    if kind == "text" and value is not None:
        value = str(value)
    if value is None and op not in ("==", "!="):
        raise QueryError(f"{shown}: {op} compares values, not null", hint="Use == null or != null.")
    return Condition(column, op, value, text)


# --- sorting ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sort:
    """``--sort KEY`` (``-KEY``: descending); experiments without the key come last."""

    key: str
    descending: bool = False

    def sql(self) -> tuple[str, list[Any]]:
        # SQLite puts NULL first when ascending and last when descending: only an ascending
        # order needs to send missing values to the end (and a plain descending one can be
        # read straight from an index: `yanex list` of 100,000 sorts nothing).
        for prefix, table in (("params.", "params"), ("results.", "results")):
            if self.key.startswith(prefix):
                leaf = self.key[len(prefix) :]
                sub = f"(SELECT {{}} FROM {table} x WHERE x.id = e.id AND x.key = ?)"
                num, text = sub.format("x.num"), sub.format("x.text")
                if self.descending:
                    return f"{num} DESC, {text} DESC", [leaf, leaf]
                return f"({num} IS NULL AND {text} IS NULL), {num}, {text}", [leaf] * 4
        column = f"e.{FIELDS[self.key][0]}" if self.key in FIELDS else SORT_ONLY[self.key]
        if self.descending:
            return f"{column} DESC", []
        return f"({column} IS NULL), {column}", []


# Keys a listing sorts by but a condition does not compare, and the SQL they sort by: tags
# by their text in any case, experiments without tags last.
SORT_ONLY = {"tags": "lower(NULLIF(e.tags, '[]'))"}


def parse_sort(text: str) -> Sort:
    descending = text.startswith("-")
    key = text[1:] if descending else text
    if key.startswith(("params.", "results.")) and key.split(".", 1)[1]:
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
    since: float | None = None
    until: float | None = None
    where: tuple[Condition, ...] = ()
    project: str | None = None
    archived: bool | None = False
    text: tuple[str, ...] = ()  # words, each in the ID, name, description or a tag

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
            add("EXISTS (SELECT 1 FROM tags t WHERE t.id = e.id AND t.tag = ?)", tag)
        if self.name is not None:
            add("e.name GLOB ?", self.name)
        if self.script is not None:
            if "/" in self.script:
                add("e.script GLOB ?", str(Path(self.script).absolute()))
            else:
                add("e.script GLOB ?", f"*/{self.script}")
        if self.sweep is not None:
            add("(e.sweep = ? OR e.sweep GLOB ?)", self.sweep, f"{_glob_escape(self.sweep)}*")
        if self.since is not None:
            add("e.created >= ?", self.since)
        if self.until is not None:
            add("e.created <= ?", self.until)
        for condition in self.where:
            clause, values = condition.sql()
            add(clause, *values)
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


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


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
    where: Sequence[str] | str = (),
    project: str | None = None,
    archived: bool | None = False,
    ids: Sequence[str] = (),
    text: str | None = None,
) -> Filters:
    """Filters from what a user typed (the CLI's options, ``yanex.results.find``'s keywords).

    ``text`` is a search: every word of it must appear (any case) in the ID, the name, the
    description or a tag.
    """
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
        since=parse_time(since, "--since") if since is not None else None,
        until=parse_time(until, "--until") if until is not None else None,
        where=tuple(parse_where(text) for text in where),
        project=project,
        archived=archived,
        text=tuple(dict.fromkeys((text or "").split())),
    )


# --- reading ----------------------------------------------------------------------------------

_COLUMNS = (
    "e.id, e.archived, e.status, e.name, e.description, e.tags, e.project, e.script, e.created, "
    "e.started, e.ended, e.duration, e.exit_code, e.error, e.sweep, e.sweep_index, e.params, "
    "e.last"
)  # record.Record's fields, in order


def _record(index: Index, row: tuple[Any, ...]) -> record.Record:
    """A record from a row of ``_COLUMNS`` (in the order of ``record.Record``'s fields)."""
    roots = index.record_roots
    return record.Record(*row, roots[row[1]])


def select(
    index: Index,
    filters: Filters,
    sort: Sequence[Sort] = (NEWEST_FIRST,),
    limit: int | None = None,
    offset: int = 0,
) -> list[record.Record]:
    """The experiments ``filters`` select, in ``sort`` order (newest first by default)."""
    where, params = filters.sql()
    order_parts = []
    for key in sort if NEWEST_FIRST in sort else (*sort, NEWEST_FIRST):
        clause, values = key.sql()
        order_parts.append(clause)
        params.extend(values)
    order_parts.append("e.sweep_index, e.id")  # ties: a grid in its order (as the index is)
    sql = f"SELECT {_COLUMNS} FROM experiments e WHERE {where} ORDER BY {', '.join(order_parts)}"
    if limit is not None:
        sql += f" LIMIT {int(limit)} OFFSET {int(offset)}"
    return [_record(index, row) for row in index.conn.execute(sql, params)]


def count(index: Index, filters: Filters) -> int:
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


def result_names(index: Index, filters: Filters) -> list[str]:
    """The names of the results the selected experiments logged, in first-seen order."""
    where, params = filters.sql()
    rows = index.conn.execute(
        "SELECT key FROM results WHERE id IN "
        f"(SELECT e.id FROM experiments e WHERE {where}) GROUP BY key ORDER BY min(rowid)",
        params,
    )
    return [row[0] for row in rows]


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
            self._refuse(ref, "is an ID prefix and a name", by_id, by_name)
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
            f"SELECT {_COLUMNS} FROM experiments e WHERE {where} AND e.name = ? "
            "ORDER BY e.archived, e.created DESC LIMIT ?",
            [*params, name, limit],
        ).fetchall()
        return [_record(self.index, row) for row in rows]

    @staticmethod
    def _refuse(
        ref: str, what: str, by_id: list[record.Record], by_name: list[record.Record]
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
            hint="Give the full ID of the one you mean (or rename one with `yanex update ID "
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


# Results whose smaller values are better; any other result: larger is better.
_LOWER_IS_BETTER = ("loss", "error", "err", "mse", "mae", "rmse", "nll", "perplexity", "ppl",
                    "wer", "cer", "time", "latency", "duration", "regret", "cost")  # fmt: skip


def lower_is_better(name: str) -> bool:
    words = name.lower().replace("-", "_").replace("/", "_").replace(".", "_").split("_")
    return any(word in _LOWER_IS_BETTER for word in words)


def best_rows(
    records: Sequence[record.Record],
    names: Sequence[str],
    minimize: Sequence[str] = (),
    maximize: Sequence[str] = (),
) -> dict[str, set[int]]:
    """For each result, the rows holding its best last value (``compare``'s marks): the
    smallest for names like loss or error (:func:`lower_is_better`), else the largest;
    ``minimize`` and ``maximize`` decide for the names they hold. Only numbers (not NaN)
    take part, and a result with fewer than two different values has no best."""
    best: dict[str, set[int]] = {}
    for name in names:
        values = [
            (i, rec.last[name])
            for i, rec in enumerate(records)
            if name in rec.last
            and record.is_number(rec.last[name])
            and not math.isnan(rec.last[name])
        ]
        if len(values) < 2 or len({v for _, v in values}) < 2:
            continue  # nothing to choose between
        lower = name in minimize or (name not in maximize and lower_is_better(name))
        target = (min if lower else max)(v for _, v in values)
        best[name] = {i for i, v in values if v == target}
    return best
