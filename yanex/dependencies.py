"""Which experiments a run depends on, and the order a batch runs them in.

A run names its dependencies with ``-D/--depends-on`` (yanex 0.6's meaning): ``-D ID`` fills
the slot ``dep1`` (``dep2``, ... by the position of the flag), ``-D SLOT=ID`` a named slot, and
``-D "SLOT=list(ID1, ID2)"`` (or, with ``-m``, ``-D SLOT=ID1,ID2``) sweeps a slot: one
experiment each, a grid with the other sweeps. An ID may be a unique prefix or a name; it is
recorded in full, as ``dependencies: {slot: id}`` in the dependent's metadata. A dependency
must be ``completed``, or ``staged`` when the dependent is staged too: ``yanex run --staged``
then runs the upstream first (:class:`Order`), and a member whose dependency failed ends
``failed`` with that reason, without running (:func:`blocking`).

Reading the graph: from the folders (a script's own dependencies and those above them,
:func:`upstream`, :func:`blocking`: a run reads its own upstream without the index) or from the
index's ``dependencies`` table (who depends on an experiment, :func:`dependents`; both ways,
:func:`links`; a whole lineage, :func:`lineage`).
"""

from __future__ import annotations

import graphlib
import heapq
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from yanex import record
from yanex.errors import DependencyError
from yanex.grammar import top_level_items
from yanex.record import Status

if TYPE_CHECKING:
    from yanex.index import Index

FIELD = record.DEPENDENCIES
OPTION = "-D"
_SLOT = re.compile(r"^[A-Za-z_][\w\-]*\Z")
_SWEEP_CALL = re.compile(r"^\s*(list|choice)\s*\((.*)\)\s*$", re.DOTALL)
# Sweep functions that make sense for values, not for a list of experiments.
_VALUE_SWEEPS = re.compile(
    r"^\s*(range|interval|glob|shuffle|sort|linspace|logspace|tag|int|float|str|bool)\s*\(.*\)\s*$",
    re.DOTALL,
)


# --- what -D says -------------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """One ``-D`` as typed: its slot and the experiments it names (several: a sweep)."""

    slot: str
    refs: tuple[str, ...]
    sweep: str | None  # the sweep as written (``list(a, b)``); None: one experiment
    text: str

    @property
    def path(self) -> str:
        """How the slot is named among the grid's sweeps (``-D data``)."""
        return f"{OPTION} {self.slot}"


def parse(texts: Sequence[str], multirun: bool = False) -> list[Spec]:
    """Each ``-D`` text read: ``ID``, ``SLOT=ID``, ``SLOT=list(ID1, ID2)`` and, with
    ``multirun``, ``SLOT=ID1,ID2``. A slot named twice, a bare comma without ``multirun``, or
    an empty reference is refused.

    IDs and names stay text as typed (``00123456`` and ``12e45678`` are IDs, which the override
    grammar would read as numbers): the list is split here, on commas outside quotes.
    """
    specs: list[Spec] = []
    seen: dict[str, int] = {}
    for position, text in enumerate(texts, 1):
        slot, value = _split(text, position)
        if slot in seen:
            raise DependencyError(
                f"{OPTION} {text!r}: the slot {slot!r} is named twice ({OPTION} number "
                f"{seen[slot]} and {position})",
                hint=f"Give each dependency a slot of its own ({OPTION} {slot}2=ID), or sweep "
                f'one slot over several experiments: {OPTION} "{slot}=list(ID1, ID2)".',
            )
        seen[slot] = position
        specs.append(_spec(text, slot, value, multirun))
    return specs


def spell(slot: str, refs: str | Sequence[str]) -> str:
    """The ``-D`` text for a slot and its experiment(s): ``data=3f9a2c1b``, ``model=list(a,
    b)``; a reference that needs them in quotes (``'a,b'``)."""
    if isinstance(refs, str):
        return f"{slot}={_quote(refs)}"
    return f"{slot}=list({', '.join(_quote(ref) for ref in refs)})"


def _quote(ref: str) -> str:
    if re.fullmatch(r"[\w.\-]+", ref):
        return ref
    return "'" + ref.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _split(text: str, position: int) -> tuple[str, str]:
    """``SLOT=VALUE`` -> (slot, value); a value alone fills ``dep<position>``."""
    stripped = text.strip()
    if stripped.startswith(("'", '"')) or _SWEEP_CALL.match(stripped) or "=" not in stripped:
        return f"dep{position}", stripped
    slot, _, value = stripped.partition("=")
    slot = slot.strip()
    if not _SLOT.match(slot):
        raise DependencyError(
            f"{OPTION} {text!r}: {slot!r} is not a slot name",
            hint=f"A slot is a word (data, model, dep1): {OPTION} data=ID. Quote a name that "
            f"holds '=': {OPTION} \"data='a=b'\".",
        )
    return slot, value.strip()


def _spec(text: str, slot: str, value: str, multirun: bool) -> Spec:
    call = _SWEEP_CALL.match(value)
    if call:
        refs = tuple(_unquote(item, text) for item in _items(call.group(2)))
        if not refs:
            raise DependencyError(f"{OPTION} {text!r}: {value} names no experiment")
        return Spec(slot, refs, value, text)
    if _VALUE_SWEEPS.match(value):
        raise DependencyError(
            f"{OPTION} {text!r}: a dependency sweep lists experiments; {value} makes values",
            hint=f'List them: {OPTION} "{slot}=list(ID1, ID2)".',
        )
    items = _items(value)
    if len(items) > 1:
        if not multirun:
            listed = ", ".join(item.strip() for item in items)
            raise DependencyError(
                f"{OPTION} {text!r} is ambiguous: a bare comma could make a sweep or be part "
                "of one name",
                hint="Write it as\n"
                f'  a sweep:    {OPTION} "{slot}=list({listed})"\n'
                f"  one name:   {OPTION} \"{slot}='{value}'\"\n"
                "(a sweep runs with -m, or is staged with --stage; -m also reads a bare comma "
                "list as a sweep, as yanex 0.6 read it)",
            )
        refs = tuple(_unquote(item, text) for item in items)
        return Spec(slot, refs, f"list({', '.join(refs)})", text)
    return Spec(slot, (_unquote(value, text),), None, text)


def _items(text: str) -> list[str]:
    """``text`` split on its commas outside quotes and brackets ([] for none)."""
    return top_level_items(text) if text.strip() else []


def _unquote(item: str, text: str) -> str:
    ref = item.strip()
    if len(ref) >= 2 and ref[0] == ref[-1] and ref[0] in "'\"":
        ref = re.sub(r"\\(.)", r"\1", ref[1:-1])
    if not ref:
        raise DependencyError(
            f"{OPTION} {text!r} names an empty experiment",
            hint=f"Give an ID, an ID prefix (4+ characters) or a name: {OPTION} data=3f9a.",
        )
    return ref


# --- finding them -------------------------------------------------------------------------


@dataclass(frozen=True)
class Resolved:
    """One slot with the experiments it names, as full IDs (several: a sweep)."""

    slot: str
    ids: tuple[str, ...]
    sweep: str | None
    names: dict[str, str | None] = field(default_factory=dict)  # id -> name, for messages

    @property
    def path(self) -> str:
        return f"{OPTION} {self.slot}"


def resolve(
    specs: Sequence[Spec],
    *,
    scope: Callable[[], str | None],
    project: str,
    staging: bool,
    echo: Callable[[str], None] | None = None,
) -> list[Resolved]:
    """Find each experiment ``specs`` name (through the index: an ID, a unique prefix of one,
    or a name in ``scope``'s project, never silently one of two) and check it may be depended
    on: ``completed``, or, when the dependent is ``staging``, ``staged`` in the same
    ``project`` (so that ``yanex run --staged`` there runs it first). A graph above them that
    has a cycle is refused too."""
    from yanex import query
    from yanex.index import Index

    index = Index(echo=echo)
    try:
        index.sync()
        lookup = query.Lookup(index, scope, strict=True)
        found: list[Resolved] = []
        for spec in specs:
            ids, names = [], {}
            for ref in spec.refs:
                try:
                    rec = lookup.one(ref)
                except query.QueryError as exc:
                    raise DependencyError(
                        f"{OPTION} {spec.slot}={ref}: {exc.message}", hint=exc.hint
                    ) from None
                _check_status(spec.slot, rec, staging, project)
                if rec.id in ids:
                    raise DependencyError(
                        f"{OPTION} {spec.text!r} names experiment {rec.id} twice",
                        hint="Name each experiment of a sweep once.",
                    )
                ids.append(rec.id)
                names[rec.id] = rec.name
            found.append(Resolved(spec.slot, tuple(ids), spec.sweep, names))
        cycle = _cycle(index, [i for r in found for i in r.ids])
        if cycle:
            raise DependencyError(
                "the experiments named by -D depend on each other in a cycle: "
                + " -> ".join(cycle),
                hint="A cycle can only come from metadata.json edited by hand: fix the "
                "'dependencies' of those experiments, or depend on others.",
            )
        return found
    finally:
        index.close()


def _check_status(slot: str, rec: record.Record, staging: bool, project: str) -> None:
    named = f"{OPTION} {slot}={rec.id}" + (f" ({rec.name})" if rec.name else "")
    if rec.status == Status.COMPLETED:
        return
    if rec.status == Status.STAGED and staging:
        if rec.archived:
            raise DependencyError(
                f"{named} is staged and archived: `yanex run --staged` would never run it",
                hint=f"Unarchive it first: yanex unarchive {rec.id}.",
            )
        if rec.project != project:
            raise DependencyError(
                f"{named} is staged in another project ({rec.project}): `yanex run --staged` "
                "here would not run it",
                hint="Run it there first, or stage this experiment in that project.",
            )
        return
    if rec.status == Status.STAGED:
        hint = "Stage this one too (--stage): `yanex run --staged` then runs the dependency first."
    elif rec.status == Status.RUNNING:
        hint = "Wait for it to end, then run this one."
    else:
        hint = (
            "Depend on a completed run (yanex list --status completed), or run it again: "
            f"yanex rerun {rec.id}."
        )
    raise DependencyError(
        f"{named} is {rec.status}: a dependency must be completed (or staged, when this run is "
        "staged with --stage)",
        hint=hint,
    )


def _cycle(index: Index, start: Iterable[str]) -> list[str] | None:
    """A cycle in the graph above ``start`` (the index's edges), or None."""
    graph: dict[str, list[str]] = {}
    todo = list(start)
    while todo:
        experiment_id = todo.pop()
        if experiment_id in graph:
            continue
        ups = [row[0] for row in index.conn.execute(
            "SELECT upstream FROM dependencies WHERE id = ? ORDER BY position", (experiment_id,)
        )]  # fmt: skip
        graph[experiment_id] = ups
        todo.extend(ups)
    try:
        list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        return list(exc.args[1])
    return None


def describe(slot: str, experiment_id: str, meta: Mapping[str, Any] | None) -> str:
    """``data=3f9a2c1b (prep)``: a dependency as messages name it."""
    name = (meta or {}).get("name")
    return f"{slot}={experiment_id}" + (f" ({name})" if name else "")


FAIL, WAIT = "fail", "wait"


def blocking(meta: Mapping[str, Any], home: Path | None = None) -> tuple[str, str] | None:
    """Why a staged member cannot run now, or None when every dependency is completed:
    ``(FAIL, reason)`` when one failed, was cancelled or is gone (it never will run);
    ``(WAIT, reason)`` when one is still staged or running (it may later)."""
    waiting = None
    for slot, experiment_id in record.depends_on(meta).items():
        found = record.read_by_id(experiment_id, home)
        status = found.get("status") if found is not None else None
        shown = describe(slot, experiment_id, found)
        if found is None:
            return FAIL, f"its dependency {shown} is gone (deleted, or unreadable)"
        if status == Status.FAILED:
            return FAIL, f"its dependency {shown} failed"
        if status == Status.CANCELLED:
            return FAIL, f"its dependency {shown} was cancelled"
        if status != Status.COMPLETED and waiting is None:
            waiting = f"its dependency {shown} is {status}, not completed"
    return (WAIT, waiting) if waiting else None


# --- the order a batch runs in ----------------------------------------------------------------


@dataclass
class Ready:
    """A member that may start now; ``after``: members of the batch it must follow (an
    executor that chains tasks starts it after them; the local one never gets any)."""

    folder: Path
    meta: dict[str, Any]
    after: list[str]


@dataclass
class Held:
    """A member that cannot start in this batch, and why (it stays staged)."""

    folder: Path
    meta: dict[str, Any]
    reason: str


_PENDING, _TAKEN, _ENDED, _ELSEWHERE = "pending", "taken", "ended", "elsewhere"
POLL_SECONDS = 0.5  # how often a member waiting on an experiment outside the batch looks again


class Order:
    """The members of a batch in the order they may start: each after its dependencies.

    Upstream first (a topological order of the batch, otherwise its own order). A member waits
    while a dependency in the batch has not ended (``chained``: has not been started, for an
    executor that makes its task wait on its upstream's), or while one outside the batch is
    running (another runner's: looked at every :data:`POLL_SECONDS`). Whether it then runs or
    fails is :func:`blocking`'s to say, where it runs. Members in a cycle are held.
    """

    def __init__(
        self,
        queue: Sequence[tuple[Path, dict[str, Any]]],
        *,
        chained: bool = False,
        home: Path | None = None,
    ) -> None:
        self.chained = chained
        self.home = home
        self.items = {folder.name: (folder, meta) for folder, meta in queue}
        self.state = dict.fromkeys(self.items, _PENDING)
        self.parked: dict[str, list[str]] = {}  # a member of the batch -> those waiting on it
        self.polling: list[str] = []  # waiting on a running experiment outside the batch
        self.next_poll = 0.0
        ranked, held = self._ranked(queue)
        self.rank = {experiment_id: i for i, experiment_id in enumerate(ranked)}
        self.heap = [(i, experiment_id) for i, experiment_id in enumerate(ranked)]
        self.held = held

    def _ranked(self, queue: Sequence[tuple[Path, dict[str, Any]]]) -> tuple[list[str], list[str]]:
        """The batch upstream first (ties: the queue's order); the members of cycles."""
        ids = [folder.name for folder, _ in queue]
        ups = {
            i: [u for u in record.depends_on(self.items[i][1]).values() if u in self.items]
            for i in ids
        }
        downs: dict[str, list[str]] = {i: [] for i in ids}
        for experiment_id, found in ups.items():
            for up in found:
                downs[up].append(experiment_id)
        waiting = {i: len(found) for i, found in ups.items()}
        heap = [(place, i) for place, i in enumerate(ids) if not waiting[i]]
        place_of = {i: place for place, i in enumerate(ids)}
        order: list[str] = []
        while heap:
            _, experiment_id = heapq.heappop(heap)
            order.append(experiment_id)
            for down in downs[experiment_id]:
                waiting[down] -= 1
                if not waiting[down]:
                    heapq.heappush(heap, (place_of[down], down))
        placed = set(order)
        return order, [i for i in ids if i not in placed]

    def pending(self) -> bool:
        """Is any member still to be started (or held back, to be said)?"""
        return bool(self.heap or self.parked or self.polling or self.held)

    def left(self) -> list[tuple[Path, dict[str, Any]]]:
        """The members never started (a stop came first)."""
        return [self.items[i] for i, state in self.state.items() if state == _PENDING]

    def next(self) -> Ready | Held | None:
        """The next member that may start now (or that never can, in this batch), or None."""
        if self.held:
            experiment_id = self.held.pop(0)
            self.state[experiment_id] = _TAKEN
            folder, meta = self.items[experiment_id]
            return Held(folder, meta, "its dependencies form a cycle (metadata edited by hand)")
        self._poll()
        while self.heap:
            _, experiment_id = heapq.heappop(self.heap)
            wait_on, after, outside = self._look(experiment_id)
            if wait_on is not None:
                self.parked.setdefault(wait_on, []).append(experiment_id)
                continue
            if outside:
                self.polling.append(experiment_id)
                continue
            self.state[experiment_id] = _TAKEN
            folder, meta = self.items[experiment_id]
            return Ready(folder, meta, after)
        return None

    def _look(self, experiment_id: str) -> tuple[str | None, list[str], bool]:
        """(a member of the batch to wait for, the ones to follow, a wait outside the batch)."""
        after: list[str] = []
        outside = False
        for up in record.depends_on(self.items[experiment_id][1]).values():
            state = self.state.get(up)
            if state == _PENDING or (state == _TAKEN and not self.chained):
                return up, [], False
            if state == _TAKEN:
                after.append(up)
            elif state in (None, _ELSEWHERE) and self._running(up):
                outside = True
        return None, after, outside

    def _running(self, experiment_id: str) -> bool:
        """Is this experiment (outside the batch) running, by a launcher still alive?"""
        folder = record.folder_by_id(experiment_id, self.home)
        meta = record.read_by_id(experiment_id, self.home)
        if folder is None or meta is None or meta.get("status") != Status.RUNNING:
            return False
        from yanex.record import reap

        try:  # a launcher of this host that died leaves it running: recorded failed
            return not reap(folder, os.uname().nodename)
        except (OSError, record.BadRecord):
            return False

    def _poll(self) -> None:
        if not self.polling or time.monotonic() < self.next_poll:
            return
        self.next_poll = time.monotonic() + POLL_SECONDS
        waiting, self.polling = self.polling, []
        for experiment_id in waiting:
            heapq.heappush(self.heap, (self.rank[experiment_id], experiment_id))

    def ended(self, experiment_id: str, elsewhere: bool = False) -> None:
        """A member is done in this batch (ran, was refused, could not be claimed: ``elsewhere``
        when another runner has it); those waiting on it are looked at again."""
        if experiment_id not in self.state:
            return
        self.state[experiment_id] = _ELSEWHERE if elsewhere else _ENDED
        for waiting in self.parked.pop(experiment_id, []):
            heapq.heappush(self.heap, (self.rank[waiting], waiting))

    def started(self, experiment_id: str) -> None:
        """A member was handed to a chaining executor: those waiting on it may be handed too."""
        if self.chained:
            for waiting in self.parked.pop(experiment_id, []):
                heapq.heappush(self.heap, (self.rank[waiting], waiting))


# --- the graph, from the index ----------------------------------------------------------------


def dependencies_of(index: Index, ids: Sequence[str]) -> dict[str, dict[str, str]]:
    """``{id: {slot: upstream}}`` for these experiments (those with none left out)."""
    found: dict[str, dict[str, str]] = {}
    for chunk in _chunks(ids):
        marks = ", ".join("?" * len(chunk))
        for experiment_id, slot, up in index.conn.execute(
            f"SELECT id, slot, upstream FROM dependencies WHERE id IN ({marks}) "
            "ORDER BY id, position",
            chunk,
        ):
            found.setdefault(experiment_id, {})[slot] = up
    return found


def dependents(index: Index, ids: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
    """``{upstream: [(dependent id, slot), ...]}``: who depends on each of ``ids``."""
    found: dict[str, list[tuple[str, str]]] = {}
    for chunk in _chunks(ids):
        marks = ", ".join("?" * len(chunk))
        for experiment_id, slot, up in index.conn.execute(
            f"SELECT id, slot, upstream FROM dependencies WHERE upstream IN ({marks}) "
            "ORDER BY id, slot",
            chunk,
        ):
            found.setdefault(up, []).append((experiment_id, slot))
    return found


def _chunks(ids: Sequence[str], size: int = 500) -> Iterable[list[str]]:
    items = list(dict.fromkeys(ids))
    for start in range(0, len(items), size):
        yield items[start : start + size]


Link = tuple[str, str, "record.Record | None"]  # (slot, experiment id, its record, if any)


def links(index: Index, experiment_id: str) -> tuple[list[Link], list[Link]]:
    """What an experiment depends on, and what depends on it: each slot, ID and record
    (None: gone), as ``yanex show`` and the dashboard list them."""
    from yanex import query

    ups = dependencies_of(index, [experiment_id]).get(experiment_id, {})
    downs = dependents(index, [experiment_id]).get(experiment_id, [])
    ids = [*ups.values(), *(eid for eid, _ in downs)]
    found = {}
    if ids:
        filters = query.Filters(ids=tuple(ids), archived=None)
        found = {rec.id: rec for rec in query.select(index, filters)}
    return (
        [(slot, eid, found.get(eid)) for slot, eid in ups.items()],
        [(slot, eid, found.get(eid)) for eid, slot in downs],
    )


@dataclass
class Lineage:
    """Experiments and the edges between them (``(upstream, dependent, slot)``), upstream first."""

    ids: list[str]
    edges: list[tuple[str, str, str]]


def lineage(
    index: Index,
    ids: Sequence[str],
    *,
    up: bool = True,
    down: bool = True,
    depth: int | None = None,
    connected: bool = False,
) -> Lineage:
    """What ``ids`` depend on (``up``) and what depends on them (``down``), at most ``depth``
    steps away, through the index; ``connected``: the whole weakly connected component (their
    siblings' branches too)."""
    edges: set[tuple[str, str, str]] = set()
    seen = set(ids)
    for direction in (("up", up), ("down", down)):
        name, wanted = direction
        if not wanted:
            continue
        frontier, steps = list(ids), 0
        while frontier and (depth is None or steps < depth):
            steps += 1
            found: list[str] = []
            if name == "up":
                for dependent, slots in dependencies_of(index, frontier).items():
                    for slot, upper in slots.items():
                        edges.add((upper, dependent, slot))
                        found.append(upper)
            else:
                for upper, rows in dependents(index, frontier).items():
                    for dependent, slot in rows:
                        edges.add((upper, dependent, slot))
                        found.append(dependent)
            frontier = [i for i in dict.fromkeys(found) if i not in seen]
            seen.update(frontier)
    if connected:
        frontier = list(seen)
        while frontier:
            found = []
            for dependent, slots in dependencies_of(index, frontier).items():
                for slot, upper in slots.items():
                    edges.add((upper, dependent, slot))
                    found.append(upper)
            for upper, rows in dependents(index, frontier).items():
                for dependent, slot in rows:
                    edges.add((upper, dependent, slot))
                    found.append(dependent)
            frontier = [i for i in dict.fromkeys(found) if i not in seen]
            seen.update(frontier)
    graph: dict[str, list[str]] = {i: [] for i in sorted(seen)}
    for upper, dependent, _ in sorted(edges):
        graph.setdefault(dependent, []).append(upper)
        graph.setdefault(upper, [])
    try:
        order = list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError:
        order = sorted(graph)
    place = {experiment_id: i for i, experiment_id in enumerate(order)}
    return Lineage(order, sorted(edges, key=lambda e: (place[e[0]], place[e[1]], e[2])))


class Graph:
    """A dependency graph of experiments (yanex 0.6's ``ExperimentGraph``, in the part a
    script uses), each experiment read its own way (a script's ``v06.Dependency``, the results
    API's ``Experiment``): ``experiments`` upstream first, ``edges`` as ``(upstream,
    dependent, slot)``, ``roots``, ``leaves``, ``get(id)``, ``filter(...)``,
    ``load_artifact(name)`` (from the one experiment of the graph that has it)."""

    def __init__(self, experiments: list[Any], edges: list[tuple[str, str, str]]) -> None:
        self.experiments = experiments
        self.edges = edges
        self._by_id = {dep.id: dep for dep in experiments}

    @property
    def ids(self) -> list[str]:
        return [dep.id for dep in self.experiments]

    @property
    def roots(self) -> list[Any]:
        """Those that depend on none of the graph."""
        below = {dependent for _, dependent, _ in self.edges}
        return [dep for dep in self.experiments if dep.id not in below]

    @property
    def leaves(self) -> list[Any]:
        """Those none of the graph depends on."""
        above = {upstream for upstream, _, _ in self.edges}
        return [dep for dep in self.experiments if dep.id not in above]

    def get(self, experiment_id: str) -> Any:
        return self._by_id.get(experiment_id)

    def filter(
        self,
        script_pattern: str | None = None,
        status: str | None = None,
        name: str | None = None,
    ) -> list[Any]:
        """The experiments whose script file name matches ``script_pattern`` (a glob), with
        that ``status``, whose name matches ``name`` (a glob)."""
        import fnmatch

        found = []
        for dep in self.experiments:
            script = dep.script_path.name if dep.script_path else ""
            if script_pattern is not None and not fnmatch.fnmatch(script, script_pattern):
                continue
            if status is not None and dep.status != status:
                continue
            if name is not None and not fnmatch.fnmatch(dep.name or "", name):
                continue
            found.append(dep)
        return found

    def load_artifact(self, filename: str, loader: Any = None, format: str | None = None) -> Any:
        """The artifact from the one experiment of the graph that has it; None when none has
        it; AmbiguousArtifactError when several have."""
        from yanex.errors import AmbiguousArtifactError

        having = [dep for dep in self.experiments if dep.artifact_exists(filename)]
        if len(having) > 1:
            raise AmbiguousArtifactError(filename, [dep.id for dep in having])
        return having[0].load_artifact(filename, loader, format) if having else None

    def __len__(self) -> int:
        return len(self.experiments)

    def __iter__(self) -> Any:
        return iter(self.experiments)

    def __contains__(self, experiment_id: object) -> bool:
        return experiment_id in self._by_id

    def __repr__(self) -> str:
        return f"<Graph of {len(self)} experiments, {len(self.edges)} dependencies>"
