"""``yanex migrate``: yanex 0.6's experiment folders made experiments of ours, beside theirs.

Read as they are (``v06store``), a 0.6 folder is data: it lists, shows and compares, but is
never run, rerun or changed. Migrating writes our files into it, beside 0.6's, which are kept
as they were: ``params.json`` and ``config.yaml`` (from ``params.yaml``), ``results.jsonl``
(from ``metrics.json``), ``stdout.txt``, ``stderr.txt`` and ``git.patch`` (copies of
``artifacts/stdout.txt``, ...), and last our ``metadata.json``, 0.6's own kept first as
``metadata.v06.json``. Each file is written atomically and ``metadata.json`` comes last: it is
what makes the folder ours, so a migration interrupted anywhere leaves a 0.6 folder that a
rerun migrates whole, and a folder migrated is left alone (idempotent). 0.6's archive
(``experiments/archived/<id>``) is migrated in place, then moved into ours (``archived/``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from yanex import journal, record, regular_files, results_file, store, v06store
from yanex.errors import StoreError

# 0.6's metadata.json, kept beside ours once migrated.
KEPT_METADATA = "metadata.v06.json"
# What ours' metadata of a migrated folder says of where it came from (MARKER's content).
MIGRATED = "migrated_from"


@dataclass
class Plan:
    """One 0.6 folder's migration: what it writes (name -> bytes), in order, and where the
    folder then moves (0.6's archive -> ours), or why it cannot be migrated."""

    folder: Path
    writes: dict[str, bytes] = field(default_factory=dict)
    move_to: Path | None = None
    refusal: str | None = None
    done: bool = False  # migrated already; only a move into our archive may be left

    @property
    def id(self) -> str:
        return self.folder.name

    def describe(self) -> str:
        """What it writes, as ``yanex migrate --dry-run`` lists it."""
        if self.refusal is not None:
            return f"{self.id}: not migrated: {self.refusal}"
        parts = []
        for name in self.writes:
            if name == store.METADATA:
                parts.append(f"{name} (ours; 0.6's kept as {KEPT_METADATA})")
            elif name == store.RESULTS:
                lines = self.writes[name].count(b"\n")
                parts.append(f"{name} ({lines} line{'s' if lines != 1 else ''})")
            elif name != KEPT_METADATA:
                parts.append(name)
        text = f"{self.id}: writes {', '.join(parts)}" if parts else f"{self.id}: migrated already"
        if self.move_to is not None:
            text += f"; then moves it to {self.move_to}"
        return text


def v06_folders(home: Path) -> list[Path]:
    """Every folder of the store that yanex 0.6 wrote (and not yet migrated), its archive's
    included; and the folders of 0.6's archive migrated but not yet moved into ours."""
    found = []
    root = store.experiments_root(home)
    for folder in [*_ids_in(root), *v06store.archived_folders(root)]:
        try:
            raw = regular_files.read_regular(folder / store.METADATA)
        except (OSError, record.BadRecord):
            if folder.parent.name == v06store.ARCHIVED:
                found.append(folder)  # unreadable: planned, to be named with why
            continue
        if folder.parent.name == v06store.ARCHIVED or _is_v06_bytes(raw):
            found.append(folder)
    return found


def _ids_in(root: Path) -> list[Path]:
    try:
        entries = list(os.scandir(root))
    except OSError:
        return []
    return sorted(
        Path(e.path)
        for e in entries
        if store.is_valid_id(e.name) and e.is_dir(follow_symlinks=False)
    )


def _is_v06_bytes(raw: bytes) -> bool:
    import json

    try:
        meta = json.loads(raw)
    except (ValueError, RecursionError):
        return False
    return isinstance(meta, dict) and v06store.is_v06(meta)


def select(home: Path, refs: Sequence[str]) -> list[Path]:
    """The 0.6 folders named by ``refs`` (IDs or unique prefixes of them; none: all of them).
    StoreError names a reference that is no 0.6 folder, or is not unique."""
    folders = v06_folders(home)
    if not refs:
        return folders
    chosen: list[Path] = []
    for ref in refs:
        matches = [f for f in folders if f.name.startswith(ref.lower())]
        if len(matches) > 1:
            names = ", ".join(f.name for f in matches[:5])
            raise StoreError(f"{ref!r} names {len(matches)} folders of yanex 0.6 ({names})",
                             hint="Give more of the ID.")  # fmt: skip
        if not matches:
            ours = (store.experiments_root(home) / ref).is_dir() and store.is_valid_id(ref)
            raise StoreError(
                f"{ref!r} is not a folder of yanex 0.6 in {store.experiments_root(home)}"
                + (" (it is an experiment of this yanex already)" if ours else ""),
                hint="`yanex migrate --dry-run` lists the folders there are to migrate.",
            )
        if matches[0] not in chosen:
            chosen.append(matches[0])
    return chosen


def plan(folder: Path, home: Path) -> Plan:
    """What migrating ``folder`` writes; nothing is written here."""
    result = Plan(folder)
    if folder.parent.name == v06store.ARCHIVED:
        target = store.archived_root(home) / folder.name
        if target.exists():
            result.refusal = f"{target} exists already (an archived experiment of the same ID)"
            return result
        result.move_to = target
    try:
        raw = regular_files.read_regular(folder / store.METADATA)
    except FileNotFoundError:
        result.refusal = "it has no metadata.json"
        return result
    except (OSError, record.BadRecord) as exc:
        result.refusal = f"its metadata.json cannot be read ({exc})"
        return result
    if not _is_v06_bytes(raw):
        try:
            record.parse_metadata(raw, folder)
        except record.BadRecord as exc:
            result.refusal = f"its metadata.json is neither 0.6's nor ours ({exc})"
            return result
        result.done = True  # ours already (migrated, and not yet moved)
        return result
    try:
        meta = record.parse_metadata(raw, folder)
        params = record.v06_params(folder)
        try:
            results, _ = results_file.v06_results(folder)
        except FileNotFoundError:
            results = None
    except (OSError, record.BadRecord) as exc:
        result.refusal = str(exc)
        return result
    if meta["status"] == record.Status.RUNNING:
        why = _still_running(raw, meta)
        if why is not None:
            result.refusal = why
            return result
        meta = {**meta, "status": record.Status.FAILED, "error": "yanex 0.6 recorded it running; "
                "its process had ended when it was migrated"}  # fmt: skip
    writes = result.writes
    writes[store.PARAMS] = record.params_json(params).encode("utf-8")
    writes[store.CONFIG] = record.config_yaml(params).encode("utf-8")
    if results is not None:
        writes[store.RESULTS] = results
    for ours, theirs in v06store.OUTPUTS.items():
        try:
            writes[ours] = regular_files.read_regular(folder / theirs)
            if ours == store.GIT_PATCH:
                writes[ours] = v06store.patch(writes[ours])
        except FileNotFoundError:
            continue
        except (OSError, record.BadRecord) as exc:
            result.refusal = f"its {theirs} cannot be read ({exc})"
            return result
    writes[KEPT_METADATA] = raw
    writes[store.METADATA] = store.record_json(ours_metadata(meta)).encode("utf-8")
    return result


def _still_running(raw: bytes, meta: dict[str, Any]) -> str | None:
    """Why a folder 0.6 records as running is not migrated (its process may still write it),
    or None when that process has ended on this host."""
    import json
    import socket

    pid = json.loads(raw).get("process_id")
    host = (meta.get("environment") or {}).get("hostname")
    if host != socket.gethostname():
        return f"yanex 0.6 records it running on {host}: migrate it there, or once it has ended"
    if isinstance(pid, int) and store.pid_alive(pid):
        return f"yanex 0.6 records it running (process {pid}, alive): migrate it once it has ended"
    return None


def ours_metadata(meta: dict[str, Any]) -> dict[str, Any]:
    """The metadata a migrated folder keeps: what reading it gave, with what was 0.6's own
    under ``migrated_from`` (the marker of a folder read as it is goes)."""
    ours = dict(meta)
    own = ours.pop(v06store.MARKER, {})
    if isinstance(ours.get("git"), dict):  # its patch is git.patch now
        ours["git"] = {k: v for k, v in ours["git"].items() if k != v06store.PATCH_FIELD}
    ours[MIGRATED] = {"yanex": "0.6", "metadata": KEPT_METADATA, **own}
    return ours


def apply(item: Plan, home: Path) -> None:
    """Write the plan's files (metadata.json last), then move the folder into our archive.
    OSError when the disk refuses; what was written is then finished by a rerun."""
    if item.refusal is not None:
        raise ValueError(item.refusal)
    if item.writes:
        with record.locked(item.folder):
            for name, data in item.writes.items():
                store.write_bytes_atomic(item.folder / name, data)
    if item.move_to is not None:
        store.make_private_dirs(item.move_to.parent)
        os.rename(item.folder, item.move_to)
    journal.note(home, [item.id])
