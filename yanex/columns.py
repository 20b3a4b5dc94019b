"""Which columns a listing of experiments shows, and what each holds: ``yanex list``, the
dashboard's table and its sweep view take the same column keys, which are the keys ``--where``
and ``--sort`` take (``params.<dotted key>``, ``results.<dotted name>``, or a field such as
``status``, ``duration``, ``error``), so a column shown can always be sorted and filtered by.

By default a listing shows what tells its rows apart: for a sweep (``--sweep ID``, or rows that
are all one sweep's members) the parameters its members differ in, and the last value of each
result the rows logged. Values are returned as they are; each front end formats its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from yanex import query
from yanex.dotted import leaves
from yanex.ending import Ending
from yanex.index import Index
from yanex.index_values import param_leaves
from yanex.record import Record, Status

# Fields a column can show, with their titles, in the order a picker lists them.
FIELDS = {
    "id": "ID",
    "name": "Name",
    "status": "Status",
    "tags": "Tags",
    "started": "Started",
    "duration": "Duration",
    "created": "Created",
    "ended": "Ended",
    "project": "Project",
    "script": "Script",
    "sweep": "Sweep",
    "exit_code": "Exit code",
    "error": "Reason",
    "commit": "Commit",
    "dirty": "Dirty",
    "description": "Description",
}
ALIASES = {"reason": "error", "created_at": "created", "started_at": "started", "ended_at": "ended"}
BASE = ("id", "name", "status", "tags", "started", "duration")  # what every listing starts with
NUMERIC = frozenset(("duration", "exit_code"))
TIMES = frozenset(("created", "started", "ended"))
MAX_SWEEP_MEMBERS = 10_000  # read to find what a sweep's members differ in


@dataclass(frozen=True)
class Column:
    """One column: ``key`` as ``--sort`` and ``--where`` take it."""

    key: str

    @property
    def kind(self) -> str:
        """``params``, ``results`` or ``field``."""
        leaf = query.leaf_key(self.key)
        return leaf[0] if leaf else "field"

    @property
    def leaf(self) -> str:
        """The dotted key without its ``params.``/``results.`` (a field: its name)."""
        leaf = query.leaf_key(self.key)
        return leaf[1] if leaf else self.key

    @property
    def title(self) -> str:
        return FIELDS.get(self.key, self.leaf)

    @property
    def numeric(self) -> bool:
        return self.kind != "field" or self.key in NUMERIC

    def value(self, rec: Record) -> Any:
        """The cell's value (None when the experiment has none): a parameter or a result's
        last value as logged, a field as the record holds it (times as seconds since the
        epoch, ``error`` as the reason in one line, ``tags`` a list)."""
        if self.kind == "params":
            return flat_params(rec).get(self.leaf)
        if self.kind == "results":
            return flat_last(rec).get(self.leaf)
        return field_value(rec, self.key)


def field_value(rec: Record, key: str) -> Any:
    if key == "error":
        return reason(rec)
    if key == "commit":
        return rec.git_commit
    if key == "dirty":
        return rec.git_dirty
    if key in TIMES:
        return getattr(rec, f"{key}_ts")
    return getattr(rec, key)


def reason(rec: Record) -> str | None:
    """Why it failed or was cancelled, in one line: how it ended and the exception's last
    line (``exited with code 1: ValueError: bad lr``), as the run's summary says it."""
    if not rec.error:
        return None
    return Ending(rec.id, rec.status, error=rec.error).reason


def flat_params(rec: Record) -> dict[str, Any]:
    return dict(param_leaves(rec.params))


def flat_last(rec: Record) -> dict[str, Any]:
    return dict(leaves(rec.last))


def parse(texts: Iterable[str]) -> list[Column]:
    """Column keys as written (comma-separated, repeatable), each once; QueryError names an
    unknown one."""
    found: list[Column] = []
    for text in texts:
        for part in text.split(","):
            key = ALIASES.get(part.strip(), part.strip())
            if not key:
                continue
            leaf = query.leaf_key(key)
            if leaf is None and key not in FIELDS:
                raise query.QueryError(
                    f"unknown column {key!r}",
                    hint="A column is params.<dotted key>, results.<dotted name>, or one of: "
                    + ", ".join(FIELDS)
                    + ".",
                )
            if Column(key) not in found:
                found.append(Column(key))
    return found


def check(index: Index, columns: Sequence[Column], option: str = "--columns") -> None:
    """Refuse a parameter or result no experiment has (a typo would show an empty column),
    naming the keys close to it."""
    for col in columns:
        query.check_key(index, col.key, f"{option} {col.key!r}")


def result_names(records: Sequence[Record]) -> list[str]:
    """The results the records logged, by their dotted names (``val.f1``)."""
    return list(dict.fromkeys(name for rec in records for name in flat_last(rec)))


def varying_params(records: Sequence[Record]) -> list[str]:
    """The parameters whose value is not the same in all ``records`` (a key some lack
    included), in first-seen order; none for fewer than two."""
    if len(records) < 2:
        return []
    return query.differing_keys([flat_params(rec) for rec in records])


def one_sweep(records: Sequence[Record]) -> str | None:
    """The sweep all ``records`` are members of, if they are all of one."""
    sweeps = {rec.sweep for rec in records}
    return next(iter(sweeps)) if len(sweeps) == 1 and None not in sweeps else None


def swept_params(index: Index, sweep: str) -> list[str]:
    """The parameters a sweep's members differ in (all its members, archived ones included):
    what the sweep varied, group options by the values they bring."""
    same_sweep = query.Condition("sweep", "==", sweep, f"sweep=={sweep}")
    filters = query.Filters(where=(same_sweep,), archived=None)
    members = query.select(index, filters, (query.Sort("sweep_index"),), MAX_SWEEP_MEMBERS)
    return varying_params(members)


def failures_only(statuses: Sequence[str]) -> bool:
    """Does a status filter select only runs that end with a reason (failed, cancelled)?"""
    return bool(statuses) and set(statuses) <= {Status.FAILED, Status.CANCELLED}


def defaults(
    records: Sequence[Record],
    *,
    params: Sequence[str] = (),
    all_projects: bool = False,
    reasons: bool = False,
    max_params: int | None = None,
    max_results: int | None = None,
) -> list[Column]:
    """What a listing shows unless told: ID, name, status, tags, started, duration (and the
    project, across projects), then ``params`` (the parameters that tell the rows apart),
    the last value of each result the rows logged, and the reason a run failed when asked."""
    keys = [*BASE, *(["project"] if all_projects else [])]
    keys += [f"params.{key}" for key in list(params)[:max_params]]
    keys += [f"results.{name}" for name in result_names(records)[:max_results]]
    if reasons:
        keys.append("error")
    return [Column(key) for key in keys]
