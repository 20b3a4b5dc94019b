"""Changing stored experiments: update their name, description and tags, archive, unarchive
and delete them, with the same rules wherever it is asked (CLI or dashboard).

A running experiment is never archived or deleted, and a staged one only while no runner has
claimed it (the change claims it first, so a runner cannot start it meanwhile). Folders move
by rename, so an experiment is always whole in one place: in ``experiments/``, in
``archived/``, or gone. Given the index, each change tells it the rows it changed, and
nothing else (a change never rebuilds it).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from yanex import claims, journal, record, store
from yanex.errors import DependentsError, RefusedError, YanexError
from yanex.index import Index
from yanex.record import Record, Status


def check_changeable(rec: Record, action: str) -> None:
    """Refuse to ``action`` (archive, delete) an experiment that is running."""
    if rec.status == Status.RUNNING:
        raise RefusedError(
            f"experiment {rec.id} ({rec.name or 'unnamed'}) is running; it cannot be {action}",
            hint="Wait for it to end, or stop it first.",
        )


@contextlib.contextmanager
def _held(rec: Record, action: str) -> Iterator[None]:
    """Hold a staged experiment's claim while it changes place, so no runner starts it."""
    if rec.status != Status.STAGED:
        yield
        return
    claim = claims.take(rec.dir)
    if claim is None:
        raise RefusedError(
            f"experiment {rec.id} is being started by a staged runner; it cannot be {action}"
        )
    try:
        yield
    finally:
        claims.release(rec.dir, claim)


def _current(rec: Record) -> Record:
    """The record with the status its folder holds now (the index may be a moment behind)."""
    try:
        meta = record.read_metadata(rec.dir)
    except FileNotFoundError:
        raise RefusedError(f"experiment {rec.id} is no longer in {rec.dir.parent}") from None
    except record.BadRecord as exc:
        raise RefusedError(f"experiment {rec.id} cannot be read: {exc}") from exc
    rec.status = meta["status"]
    return rec


def _tell(index: Index | None, rec: Record) -> None:
    """Have the index read this one experiment again (its rows only)."""
    if index is not None:
        index.refresh([rec.id])


def check_dependents(records: Sequence[Record], index: Index) -> None:
    """Refuse to delete experiments that others, not deleted with them, depend on (``-D``):
    their dependency would name an experiment that is gone. The refusal names them."""
    from yanex import dependencies

    leaving = {rec.id for rec in records}
    found = dependencies.dependents(index, [rec.id for rec in records])
    kept = {
        upstream: [(dependent, slot) for dependent, slot in rows if dependent not in leaving]
        for upstream, rows in found.items()
    }
    kept = {upstream: rows for upstream, rows in kept.items() if rows}
    if not kept:
        return
    lines = []
    for upstream, rows in kept.items():
        named = ", ".join(f"{dependent} (as {slot})" for dependent, slot in rows[:10])
        more = f" and {len(rows) - 10} more" if len(rows) > 10 else ""
        lines.append(f"  {upstream} is a dependency of {named}{more}")
    others = sorted({dependent for rows in kept.values() for dependent, _ in rows})
    raise DependentsError(
        "experiments others depend on cannot be deleted; nothing was deleted:\n" + "\n".join(lines),
        hint=f"Delete those too (add {' '.join(others[:10])}{' ...' if len(others) > 10 else ''} "
        "to the command), or pass --ignore-dependents to delete anyway (their dependency then "
        "names a deleted experiment: a staged one fails when run).",
    )


def delete(rec: Record, index: Index | None = None, *, ignore_dependents: bool = False) -> None:
    """Remove the experiment's folder: renamed out of the store first, then deleted. One that
    others depend on is refused (see :func:`check_dependents`) unless ``ignore_dependents``."""
    if not ignore_dependents:
        if index is None:
            with contextlib.closing(Index()) as opened:
                opened.sync()
                check_dependents([rec], opened)
        else:
            check_dependents([rec], index)
    rec = _current(rec)
    check_changeable(rec, "deleted")
    with _held(rec, "deleted"):
        trash = rec.dir.parent / f".deleting-{rec.id}-{os.urandom(4).hex()}"
        os.rename(rec.dir, trash)
    journal.note(rec.dir.parent.parent, [rec.id])
    _tell(index, rec)
    shutil.rmtree(trash, ignore_errors=True)


def archive(rec: Record, index: Index | None = None) -> Path:
    """Move the experiment to ``archived/``: out of listings and ``--staged``, kept whole."""
    return _move(rec, store.archived_root(_home(index)), "archived", index)


def unarchive(rec: Record, index: Index | None = None) -> Path:
    """Move an archived experiment back to ``experiments/``."""
    return _move(rec, store.experiments_root(_home(index)), "unarchived", index)


def _home(index: Index | None) -> Path | None:
    return None if index is None else index.home


def _move(rec: Record, root: Path, action: str, index: Index | None) -> Path:
    rec = _current(rec)
    check_changeable(rec, action)
    target = root / rec.id
    if rec.dir == target:
        return target
    if target.exists():
        raise RefusedError(f"experiment {rec.id} is already in {root}")
    store.make_private_dirs(root)
    with _held(rec, action):
        os.rename(rec.dir, target)
        rec.dir = target  # the claim moved with it: released there
    journal.note(root.parent, [rec.id])
    _tell(index, rec)
    return target


def update(
    rec: Record,
    *,
    name: str | None = None,
    description: str | None = None,
    add_tags: Sequence[str] = (),
    remove_tags: Sequence[str] = (),
    index: Index | None = None,
) -> dict[str, Any]:
    """Change the name, description or tags in metadata.json (under its lock); the changes."""
    for tag in add_tags:
        if not tag.strip():
            raise YanexError("a tag cannot be empty")
    changes: dict[str, Any] = {}

    def change(meta: dict[str, Any]) -> dict[str, Any]:
        if name is not None:
            changes["name"] = name or None
        if description is not None:
            changes["description"] = description or None
        if add_tags or remove_tags:
            tags = [t for t in meta.get("tags") or [] if t not in remove_tags]
            changes["tags"] = list(dict.fromkeys([*tags, *add_tags]))
        return changes

    try:
        record.update(rec.dir, change)
    except FileNotFoundError:
        raise RefusedError(f"experiment {rec.id} is no longer in {rec.dir.parent}") from None
    _tell(index, rec)
    return changes
