"""One experiment as data: its statuses, its metadata read and written in one place, and what
its folder holds (parameters, artifacts; its logged results are ``results_file``'s).

The launcher writes through this module and every reader (the index, ``yanex show``,
``yanex.results``) reads through it, so an experiment means the same thing everywhere.
Metadata changes are read-modify-write under a lock on the folder: the launcher recording an
ending and ``yanex update`` adding a tag at the same moment both keep their change.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from yanex import journal, store, v06store
from yanex.errors import DependencyError, StoreError
from yanex.regular_files import BadRecord, first_of, read_regular
from yanex.results_file import Series, Summary, read_results, tail_results


class Status:
    """The status names an experiment's ``metadata.json`` holds."""

    STAGED = "staged"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    ALL = (STAGED, RUNNING, COMPLETED, FAILED, CANCELLED)
    ENDED = (COMPLETED, FAILED, CANCELLED)
    LIVE = (STAGED, RUNNING)  # still expected to change on their own


_LOCK = ".lock"

# Types of the metadata fields readers rely on; a folder whose metadata breaks them is skipped.
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "name": (str, type(None)),
    "description": (str, type(None)),
    "script": (str,),
    "args": (list,),
    "cwd": (str,),
    "project": (str, type(None)),
    "created_at": (str,),
    "started_at": (str, type(None)),
    "ended_at": (str, type(None)),
    "duration": (int, float, type(None)),
    "exit_code": (int, type(None)),
    "error": (str, type(None)),
    "sweep": (str, type(None)),
    "sweep_index": (int, type(None)),
    "git": (dict, type(None)),
    "hydra": (dict, type(None)),
    "environment": (dict, type(None)),
    "dependencies": (dict, type(None)),
}


def validate(meta: Any, experiment_id: str) -> dict[str, Any]:
    """``meta`` if it is the metadata of experiment ``experiment_id``; else BadRecord says why."""
    if not isinstance(meta, dict):
        raise BadRecord(f"metadata.json holds a {type(meta).__name__}, not an object")
    if meta.get("id") != experiment_id:
        raise BadRecord(f"metadata.json names experiment {meta.get('id')!r}, not its folder's")
    if meta.get("status") not in Status.ALL:
        raise BadRecord(f"unknown status {meta.get('status')!r}")
    tags = meta.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise BadRecord("tags is not a list of strings")
    for key, types in _FIELD_TYPES.items():
        value = meta.get(key)
        if key in meta and (not isinstance(value, types) or isinstance(value, bool)):
            raise BadRecord(f"{key} is a {type(value).__name__}")
        if isinstance(value, int) and not fits_int64(value):
            raise BadRecord(f"{key} is out of range ({_short(value)})")
    for slot, upstream in (meta.get("dependencies") or {}).items():
        if not isinstance(upstream, str) or not store.is_valid_id(upstream):
            raise BadRecord(f"dependencies.{slot} is not an experiment ID ({_short(upstream)})")
    launcher = meta.get("launcher")
    if isinstance(launcher, dict):
        pid = launcher.get("pid")
        if pid is not None and (not isinstance(pid, int) or isinstance(pid, bool)):
            raise BadRecord(f"launcher.pid is a {type(pid).__name__}")
        if pid is not None and not 0 <= pid < 2**31:
            raise BadRecord(f"launcher.pid is out of range ({_short(pid)})")
    return meta


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def fits_int64(value: int) -> bool:
    """Does SQLite hold this int as an INTEGER (beyond, Python's sqlite3 refuses it)?"""
    return INT64_MIN <= value <= INT64_MAX


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 24 else f"{text[:10]}...{text[-6:]}, {len(text)} digits"


def read_metadata(folder: Path | str) -> dict[str, Any]:
    """The validated metadata of the experiment in ``folder``; BadRecord when unusable,
    FileNotFoundError when the folder holds none (yet)."""
    raw = read_regular(os.path.join(folder, store.METADATA))
    return parse_metadata(raw, folder)


def parse_metadata(raw: bytes, folder: Path | str) -> dict[str, Any]:
    """The validated metadata in the bytes of the metadata.json of ``folder`` (a folder of
    yanex 0.6's read as ours: see ``v06store``); BadRecord when unusable."""
    try:
        meta = json.loads(raw)
    except ValueError as exc:
        raise BadRecord(f"metadata.json is not valid JSON ({exc})") from exc
    except RecursionError:
        raise BadRecord("metadata.json is nested too deeply") from None
    if meta.__class__ is dict and v06store.is_v06(meta):
        meta = _from_v06(meta, folder)
    return validate(meta, os.path.basename(folder))


def _from_v06(meta: dict[str, Any], folder: Path | str) -> dict[str, Any]:
    """yanex 0.6's metadata (with its folder's dependencies.json) read as ours."""
    try:
        depends = read_regular(os.path.join(folder, v06store.DEPENDENCIES))
    except FileNotFoundError:
        depends = None
    try:
        return v06store.metadata(meta, depends)
    except ValueError as exc:
        raise BadRecord(f"a folder of yanex 0.6 whose {exc}") from exc


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[None]:
    """Hold the folder's metadata lock: one read-modify-write of metadata.json at a time."""
    fd = os.open(folder / _LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def write_metadata(folder: Path, meta: Mapping[str, Any], durable: bool = True) -> None:
    """Write the whole metadata atomically (a new experiment; changes go through ``update``)."""
    text = store.record_json(dict(meta))
    store.write_bytes_atomic(folder / store.METADATA, text.encode("utf-8"), durable)
    journal.note_folder(folder)  # other machines' indexes read it from the journal


def update(
    folder: Path,
    changes: Mapping[str, Any] | Callable[[dict[str, Any]], Mapping[str, Any]],
    *,
    only_if: tuple[str, ...] = (),
    durable: bool = True,
) -> dict[str, Any] | None:
    """Apply ``changes`` to the metadata on disk, under the folder's lock; the new metadata.

    ``changes`` may be a function of the current metadata (to add a tag to those there).
    With ``only_if``, the change is made only while the status is one of those (None is
    returned otherwise): a run recorded as ended is never reopened by a late writer.
    ``durable=False`` skips waiting for the disk (see ``store.write_bytes_atomic``).
    """
    if not (folder / _LOCK).exists():  # never locked: it may be 0.6's, which gets no lock file
        _refuse_v06(folder, store.read_json(folder / store.METADATA))
    with locked(folder):
        meta = store.read_json(folder / store.METADATA)
        _refuse_v06(folder, meta)
        if only_if and meta.get("status") not in only_if:
            return None
        meta.update(changes(meta) if callable(changes) else changes)
        store.write_bytes_atomic(folder / store.METADATA, store.record_json(meta).encode(), durable)
    journal.note_folder(folder)  # other machines' indexes read it from the journal
    return meta


def _refuse_v06(folder: Path, meta: Any) -> None:
    """A folder of yanex 0.6 is read as it is, never changed (``yanex migrate`` makes it ours)."""
    if isinstance(meta, dict) and v06store.is_v06(meta):
        raise StoreError(
            f"experiment {folder.name} is a folder of yanex 0.6: it is read as it is, "
            "never changed",
            hint=f"`yanex migrate {folder.name}` makes it an experiment of this yanex "
            "(`--dry-run` first lists what that writes).",
        )


# --- artifacts ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Artifact:
    """A file the script saved: its name inside ``artifacts/``, size in bytes, and path."""

    name: str
    size: int
    path: Path


def artifacts(folder: Path) -> list[Artifact]:
    """The experiment's artifacts, by name; yanex's temp files and folders (being written, or
    left by a crash: see store.is_temp_name) are left out."""
    root = folder / store.ARTIFACTS
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(name for name in dirnames if not store.is_temp_name(name))
        for filename in sorted(filenames):
            if store.is_temp_name(filename):
                continue
            path = Path(dirpath) / filename
            with contextlib.suppress(OSError):
                found.append(Artifact(path.relative_to(root).as_posix(), path.stat().st_size, path))
    return found


def params_json(config: Mapping[str, Any]) -> str:
    """The resolved parameters as ``params.json`` holds them (what ``get_param`` reads)."""
    return json.dumps(config, indent=2, ensure_ascii=False) + "\n"


def config_yaml(config: Mapping[str, Any]) -> str:
    """The resolved parameters as ``config.yaml`` holds them (block style, keys in order)."""
    if not config:
        return "{}\n"
    import yaml

    # libyaml's emitter is 4x faster, and writes what PyYAML's own does when every string is
    # printable ASCII and the keys short (checked on 50,000 random configs); beyond that they
    # differ (libyaml escapes an emoji, wraps escaped text elsewhere): PyYAML's text is kept.
    plain = _printable_ascii(config)
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper) if plain else yaml.SafeDumper
    return yaml.dump(
        dict(config), Dumper=dumper, sort_keys=False, allow_unicode=True, default_flow_style=False
    )


def _printable_ascii(node: Any) -> bool:
    """Is every string of a plain config printable ASCII, and every key such a string of 1 to
    64 characters (PyYAML writes an empty key, or one near 128 characters written, as a complex
    key; libyaml does not)?"""
    if isinstance(node, str):
        return node.isascii() and node.isprintable()
    if isinstance(node, dict):
        return all(
            isinstance(k, str) and 0 < len(k) <= 64 and _printable_ascii(k) and _printable_ascii(v)
            for k, v in node.items()
        )
    if isinstance(node, list):
        return all(_printable_ascii(v) for v in node)
    return True


def read_params(folder: Path | str) -> dict[str, Any]:
    """The run's resolved parameters (``params.json``; in a folder of yanex 0.6, its
    ``params.yaml``); {} when missing or not JSON; BadRecord when it is not a file (a FIFO, a
    device), or 0.6's parameters cannot be read."""
    try:
        params = json.loads(read_regular(os.path.join(folder, store.PARAMS)))
    except FileNotFoundError:
        return v06_params(folder)
    except (ValueError, RecursionError):
        return {}
    return params if isinstance(params, dict) else {}


def v06_params(folder: Path | str) -> dict[str, Any]:
    """The parameters of a folder of yanex 0.6 (it has no params.json); {} when it has none."""
    try:
        data, _, name = first_of(folder, v06store.PARAMS_FILES)
    except FileNotFoundError:
        return {}
    try:
        return v06store.params(data, name)
    except ValueError as exc:
        raise BadRecord(f"a folder of yanex 0.6 whose {exc}") from exc


# --- the reader's view ----------------------------------------------------------------------


def _datetime(stamp: float | None) -> datetime | None:
    return None if stamp is None else datetime.fromtimestamp(stamp).astimezone()


@dataclass(repr=False)
class Record:
    """One experiment as readers see it: what the index holds, the folder read on demand.

    ``params`` is the resolved config, ``last`` each result's last logged value and
    ``series`` each result's summary (all from the index); ``metadata``, ``results`` (every
    logged line) and ``artifacts`` read the folder. ``created``, ``started`` and ``ended``
    are timezone-aware datetimes (``*_ts``: the same as seconds since the epoch).

    The index's text is decoded when an attribute is first used: ``yanex.results.find()`` of
    100,000 experiments builds its records without parsing what nobody reads.
    """

    id: str
    archived: bool
    status: str
    name: str | None
    description: str | None
    tags_json: str
    project: str | None
    script: str | None
    created_ts: float | None
    started_ts: float | None
    ended_ts: float | None
    duration: float | None
    exit_code: int | None
    error: str | None
    sweep: str | None
    sweep_index: int | None
    params_json: str
    last_json: str
    series_json: str  # per result leaf: [count, min, max, last step]
    steps: int  # the lines of results.jsonl indexed
    root: Path  # the store folder it is in (experiments/ or archived/)
    git_commit: str | None = None  # the commit it ran (metadata's git.commit)
    git_dirty: bool | None = None  # with uncommitted changes (None: not in a git repository)

    @cached_property
    def dir(self) -> Path:
        return self.root / self.id

    @cached_property
    def tags(self) -> list[str]:
        return json.loads(self.tags_json)

    @cached_property
    def params(self) -> dict[str, Any]:
        return json.loads(self.params_json)

    @cached_property
    def last(self) -> dict[str, Any]:
        """Each result's last logged value (a nested result's leaves each their last)."""
        return json.loads(self.last_json)

    @property
    def created(self) -> datetime | None:
        return _datetime(self.created_ts)

    @property
    def started(self) -> datetime | None:
        return _datetime(self.started_ts)

    @property
    def ended(self) -> datetime | None:
        return _datetime(self.ended_ts)

    @cached_property
    def series(self) -> dict[str, Series]:
        """Each result leaf (``val.f1``) with its last value, min, max, number of steps and
        last step: exact, kept in the index (``results.jsonl`` is not read again)."""
        return Summary(self.last, json.loads(self.series_json), self.steps).series()

    def tail(self, count: int = 10) -> list[dict[str, Any]]:
        """The last ``count`` lines the script logged (read from the end of the file)."""
        return tail_results(self.dir, count)

    @cached_property
    def metadata(self) -> dict[str, Any]:
        """The whole ``metadata.json`` ({} if the folder is gone or unreadable)."""
        try:
            return read_metadata(self.dir)
        except (OSError, BadRecord):
            return {}

    @property
    def results(self) -> list[dict[str, Any]]:
        """Every line the script logged: ``{"step", "timestamp", "results"}``, oldest first
        (the whole file in memory: :meth:`tail` and :attr:`series` read less)."""
        return read_results(self.dir)

    @property
    def artifacts(self) -> list[Artifact]:
        return artifacts(self.dir)

    def output_file(self, name: str) -> Path:
        """Where its ``stdout.txt``, ``stderr.txt`` or ``git.patch`` is: in its folder; in a
        folder of yanex 0.6 (read as it is), where 0.6 kept it (``artifacts/``)."""
        if v06store.MARKER in self.metadata:
            kept = v06store.output_file(self.dir, name)
            if kept is not None:
                return kept
        return self.dir / name

    def __repr__(self) -> str:
        return f"<Record {self.id} {self.status} name={self.name!r}>"


# --- a run whose launcher is gone ---------------------------------------------------------


# --- what an experiment depends on ------------------------------------------------------------

DEPENDENCIES = "dependencies"  # in metadata.json: {slot: full id} (``-D``)


def depends_on(meta: Mapping[str, Any]) -> dict[str, str]:
    """The dependencies a metadata records, ``{slot: id}`` ({} for none)."""
    found = meta.get(DEPENDENCIES)
    return dict(found) if isinstance(found, dict) else {}


def folder_by_id(experiment_id: str, home: Path | None = None) -> Path | None:
    """Where experiment ``experiment_id`` is (``experiments/`` or ``archived/``), or None."""
    if not store.is_valid_id(experiment_id):
        return None
    for root in (store.experiments_root(home), store.archived_root(home)):
        if (root / experiment_id / store.METADATA).is_file():
            return root / experiment_id
    return None


def read_by_id(experiment_id: str, home: Path | None = None) -> dict[str, Any] | None:
    """An experiment's metadata, found in the store (None: gone or unreadable)."""
    folder = folder_by_id(experiment_id, home)
    if folder is None:
        return None
    try:
        return read_metadata(folder)
    except (OSError, BadRecord):
        return None


def upstream(experiment_id: str, home: Path | None = None) -> list[str]:
    """Every experiment ``experiment_id`` depends on, directly or not, upstream first (a
    topological order), read from the folders. A cycle (metadata edited by hand) raises
    DependencyError."""
    import graphlib

    graph: dict[str, list[str]] = {}
    todo = [experiment_id]
    while todo:
        current = todo.pop(0)
        if current in graph:
            continue
        meta = read_by_id(current, home)
        ups = list(depends_on(meta).values()) if meta is not None else []
        graph[current] = ups
        todo.extend(ups)
    try:
        order = list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        raise DependencyError(
            f"the dependencies of {experiment_id} form a cycle: {' -> '.join(exc.args[1])}"
        ) from None
    return [found for found in order if found != experiment_id]


def reap(folder: Path, hostname: str) -> str | None:
    """Record a ``running`` experiment as ``failed`` when its launcher is gone, so that no run
    stays "running" forever: on this host, its process no longer runs (killed with SIGKILL;
    its pid free or reused since); on another host, its heartbeat was not renewed in time (the
    machine died or lost the store: see ``identity.Heartbeat``). What happened, when it was
    reaped; None otherwise."""
    from yanex import identity

    meta = read_metadata(folder)
    launcher = identity.ProcessId.from_metadata(meta.get("launcher"))
    if meta.get("status") != Status.RUNNING or launcher is None:
        return None
    if launcher.host == hostname:
        if not launcher.is_gone():
            return None
        what = "was left running by a launcher that died"
        reason = (
            f"launcher died: yanex (pid {launcher.pid} on {hostname}) stopped without "
            "recording how the run ended"
        )
    else:
        silent = identity.Heartbeat.silence(folder, launcher)
        if silent is None:
            return None
        what = f"lost its launcher on {launcher.host}"
        reason = f"launcher lost: {silent}"
    changes: dict[str, Any] = {"status": Status.FAILED, "ended_at": store.now_iso()}
    changes["error"] = reason
    warnings = store.read_warnings(folder)
    if warnings:
        changes["warnings"] = [*(meta.get("warnings") or []), *warnings]
    if update(folder, changes, only_if=(Status.RUNNING,)) is None:
        return None
    with contextlib.suppress(OSError):  # the dead launcher's, if it left one
        (folder / identity.HEARTBEAT).unlink()
    return what
