"""The experiment store: where experiments live on disk, their IDs, and safe writes to them.

Layout: ``$YANEX_HOME/experiments/<id>/`` (``YANEX_HOME`` defaults to ``~/.yanex``), created
user-only (0700). Files written whole are written atomically (temp file + rename), so a
reader or a crash never sees torn JSON; logs are appended. A folder without
``metadata.json`` is not an experiment (it is being created, or its creation failed).

Imported by the script-side API, so it stays cheap: standard library only.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import math
import os
import re
import time
from datetime import datetime
from pathlib import Path

from yanex.errors import StoreError

TYPE_CHECKING = False  # typing itself costs more to import than this whole module
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from typing import Any

# File names inside one experiment folder.
METADATA = "metadata.json"
CONFIG = "config.yaml"
PARAMS = "params.json"
STDOUT = "stdout.txt"
STDERR = "stderr.txt"
RESULTS = "results.jsonl"
ARTIFACTS = "artifacts"
GIT_PATCH = "git.patch"
GIT_PATCH_AT_STAGING = "git.staged.patch"
CLAIM = "claim.json"  # who runs a staged experiment
RESERVE = ".reserve"  # room kept on the disk for recording how a run ended
# What a long results.jsonl comes to, kept beside it while it grows (see results_file.save_summary)
RESULTS_SUMMARY = ".results-summary.json"
# Problems the script met and went on from (a log line that could not be written), one JSON
# line each; the script never writes metadata.json, so the launcher merges these into
# metadata.warnings when the run ends.
WARNINGS = "warnings.jsonl"


ID_LENGTH = 8
_ID_RE = re.compile(rf"[0-9a-f]{{{ID_LENGTH}}}")


EXPERIMENTS_DIR_ENV = "YANEX_EXPERIMENTS_DIR"  # yanex 0.6's variable: the experiments folder


def env_number(
    name: str, default: float, least: float, environ: Mapping[str, str] | None = None
) -> Any:
    """A number yanex reads from the environment (``YANEX_HEARTBEAT``, ...), of ``default``'s
    type and at least ``least``; unset, empty or not a finite number: ``default``."""
    raw = (os.environ if environ is None else environ).get(name)
    try:
        value = type(default)(raw) if raw else default
    except ValueError:
        return default
    return max(least, value) if math.isfinite(value) else default  # (inf, nan: not a number)


def yanex_home() -> Path:
    """The store's root: ``$YANEX_HOME``; else the parent of ``$YANEX_EXPERIMENTS_DIR`` (yanex
    0.6's variable, which names the experiments folder itself); else ``~/.yanex``.

    yanex keeps its index, change journal, cache and archived experiments beside the
    experiments folder, in its parent (``~/.yanex`` beside ``~/.yanex/experiments``), and every
    process finds the store from an experiment's folder the same way (``<home>/experiments/
    <id>``): so ``YANEX_EXPERIMENTS_DIR`` must name a folder called ``experiments`` (0.6's
    default and its docs' use), and agree with ``YANEX_HOME`` when both are set. Otherwise
    a StoreError names the fix, as no store that is half one and half the other is used.
    """
    home = os.environ.get("YANEX_HOME")
    found = Path(home).expanduser().absolute() if home else None
    folder = os.environ.get(EXPERIMENTS_DIR_ENV)
    if folder:
        experiments = Path(folder).expanduser().absolute()
        _check_experiments_dir(experiments, found)
        return found or experiments.parent
    return found or Path.home() / ".yanex"


def _check_experiments_dir(experiments: Path, home: Path | None) -> None:
    """Refuse a ``YANEX_EXPERIMENTS_DIR`` that is not ``<home>/experiments``, naming the fix."""
    if home is not None:
        if os.path.realpath(home / "experiments") != os.path.realpath(experiments):
            raise StoreError(
                f"YANEX_HOME={home} and {EXPERIMENTS_DIR_ENV}={experiments} name two stores "
                f"(the experiments of YANEX_HOME are in {home / 'experiments'})",
                hint=f"Unset one of them: {EXPERIMENTS_DIR_ENV} is yanex 0.6's name for the "
                "experiments folder, YANEX_HOME the folder that holds it.",
            )
        return
    if experiments.name != "experiments":
        holder = experiments.parent / f"{experiments.name}-yanex"
        raise StoreError(
            f"{EXPERIMENTS_DIR_ENV}={experiments}: yanex keeps its index, change journal and "
            "archived experiments beside the experiments folder, in its parent, so the folder "
            f"must be named 'experiments' (this one is named {experiments.name!r})",
            hint=f"Rename it to {experiments.parent / 'experiments'}, or leave it where it is "
            f"and give it a store folder of its own: `mkdir {holder} && ln -s {experiments} "
            f"{holder / 'experiments'}`, then set YANEX_HOME={holder} and unset "
            f"{EXPERIMENTS_DIR_ENV}.",
        )


def experiments_root(home: Path | None = None) -> Path:
    return (home or yanex_home()) / "experiments"


def archived_root(home: Path | None = None) -> Path:
    """Where ``yanex archive`` moves experiments: out of listings and ``--staged``, kept whole."""
    return (home or yanex_home()) / "archived"


# now_iso's cache: the text of the current second ("2026-11-27T20:10:45") and its offset.
_second = -1
_second_text = ""
_offset_text = ""


def now_iso() -> str:
    """The local time, ISO 8601 with its UTC offset: ``2026-11-27T20:10:45.123+00:00``.

    Called for every logged result, so the date, time and offset are formatted once a second
    (an offset changes only on a minute boundary) and only the milliseconds at every call.
    """
    global _second, _second_text, _offset_text
    now = time.time()
    second = int(now)
    if second != _second:
        stamp = datetime.fromtimestamp(second).astimezone()
        text = stamp.isoformat(timespec="seconds")  # ...T20:10:45+00:00
        _second_text, _offset_text = text[:19], text[19:]
        _second = second
    return f"{_second_text}.{int((now - second) * 1000):03d}{_offset_text}"


def is_valid_id(experiment_id: str) -> bool:
    return bool(_ID_RE.fullmatch(experiment_id))


def make_private_dirs(path: Path) -> None:
    """Create ``path`` and missing parents user-only (0700); existing folders are left alone."""
    missing = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=0o700)
            folder.chmod(0o700)  # mkdir's mode is filtered by the umask


def create_experiment_dir() -> tuple[str, Path]:
    """Reserve a new, unique experiment ID by creating its folder (0700)."""
    root = experiments_root()
    try:
        make_private_dirs(root)
        for _ in range(100):
            experiment_id = os.urandom(ID_LENGTH // 2).hex()
            path = root / experiment_id
            try:
                path.mkdir(mode=0o700)
            except FileExistsError:
                continue
            return experiment_id, path
    except OSError as exc:
        raise StoreError(
            f"cannot create an experiment folder in {root}: {exc.strerror or exc}",
            hint="Check that the disk has space and YANEX_HOME is writable.",
        ) from exc
    raise StoreError(f"no free experiment ID found in {root}")


def experiment_dir(experiment_id: str, home: Path | None = None) -> Path:
    """The folder of an existing experiment; the ID cannot address anything outside the store."""
    if not is_valid_id(experiment_id):
        raise StoreError(
            f"{experiment_id!r} is not an experiment ID",
            hint=f"IDs are {ID_LENGTH} hexadecimal digits, e.g. 3f9a1c07.",
        )
    root = experiments_root(home)
    folder = root / experiment_id
    if not (folder / METADATA).is_file():
        raise StoreError(f"no experiment {experiment_id} in {root}")
    return folder


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


RESERVE_BYTES = 256 * 1024


def reserve_room(folder: Path) -> None:
    """Take some disk space for the end of a run: a script that fills the disk must not keep
    its ending from being recorded. Best effort (a disk full already keeps nothing)."""
    try:
        fd = os.open(folder / RESERVE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError:
        return
    try:
        os.write(fd, bytes(RESERVE_BYTES))  # written, not sparse: the blocks are really taken
    except OSError:
        pass
    finally:
        os.close(fd)


def release_room(folder: Path) -> None:
    with contextlib.suppress(OSError):
        (folder / RESERVE).unlink()


def remove_experiment_dir(path: Path) -> None:
    """Remove a folder whose creation failed, so no half-written experiment remains."""
    import shutil

    shutil.rmtree(path, ignore_errors=True)


# yanex's temp names: ".yanex-<12 hex>.tmp", then an extension or nothing (earlier versions
# ended an artifact's with its own). Short, so that any name a file can have fits beside one.
# Only yanex makes such names (an artifact may not have one: see check_name), so a reader
# leaves out exactly these, a folder of them too (a write in progress, or what a crash left).
_TEMP_NAME = re.compile(r"\.yanex-[0-9a-f]{12}\.tmp(\.[^/]*)?")


def temp_path(path: Path) -> Path:
    """A new temp name beside ``path``, for a file to be put in its place."""
    return path.with_name(f".yanex-{os.urandom(6).hex()}.tmp")


def is_temp_name(name: str) -> bool:
    """Is this file or folder name one of yanex's temp names (see :func:`temp_path`)?"""
    return _TEMP_NAME.fullmatch(name) is not None


def remove_temp(path: Path) -> None:
    """Remove a temp path, whatever a writer left there: a file, a link, or a folder (a
    custom artifact saver may make one). Best effort: it is hidden from readers anyway."""
    import shutil
    import stat

    try:
        if stat.S_ISDIR(os.lstat(path).st_mode):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.unlink(path)
    except OSError:
        pass


def remove_temps(folder: Path) -> None:
    """Remove the temp files and folders writers killed mid-write left anywhere under
    ``folder`` (a run's ``artifacts/`` when it has ended: nothing of it writes any more)."""
    for root, dirs, files in os.walk(folder):
        for name in [d for d in dirs if is_temp_name(d)] + [f for f in files if is_temp_name(f)]:
            remove_temp(Path(root) / name)
        dirs[:] = [d for d in dirs if not is_temp_name(d)]


@contextlib.contextmanager
def replacing(path: Path, durable: bool = True, *, in_folder: bool = False) -> Iterator[Path]:
    """The one atomic write: a temp path beside ``path`` for the new file, renamed over
    ``path`` when the block ends, removed (whatever it is) if it raises. A reader sees the old
    file or the new one, never part of one.

    ``durable``: the new file reaches the disk before the rename (fsync), so that even a power
    loss leaves one or the other; files that matter only while yanex runs (claims, caches)
    skip it. ``in_folder``: the temp path is ``path``'s own name in a temp folder of its own,
    for a writer that goes by the name or writes beside it (numpy adds ".npy" to a name
    without it): all it wrote is in that folder, removed when the block ends.
    """
    temp = temp_path(path)
    tmp = temp / path.name if in_folder else temp
    try:
        if in_folder:
            os.mkdir(temp, 0o700)
        yield tmp
        if durable:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        remove_temp(temp)
        raise
    if in_folder:
        remove_temp(temp)


def write_bytes_atomic(path: Path, data: bytes, durable: bool = True) -> None:
    """Write ``data`` to ``path`` through :func:`replacing` (synced from the descriptor that
    wrote it, when ``durable``)."""
    with replacing(path, durable=False) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)


def write_new(path: Path, data: bytes) -> None:
    """Write a file that does not exist yet, in place: for the files of an experiment folder
    being made, which is not an experiment until its metadata.json (written last, atomically)
    is there. A temp file and a rename would add nothing but their cost."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: Path, obj: Any, durable: bool = True) -> None:
    text = json.dumps(obj, indent=2, ensure_ascii=False) + "\n"
    write_bytes_atomic(path, text.encode("utf-8"), durable)


# Made once: json.dumps with any option builds a new encoder at every call.
_RECORD_ENCODER = json.JSONEncoder(ensure_ascii=False)


def record_json(obj: dict[str, Any]) -> str:
    """A record (metadata.json) as text: one top-level field per line, each value on its line
    in compact JSON. As easy to read and grep as an indented file, and written by json's C
    encoder (``indent`` makes json use its pure-Python one, 10x slower: staging 1,000
    members wrote metadata for a third of its time)."""
    encode = _RECORD_ENCODER.encode
    fields = ",\n".join(f"  {encode(key)}: {encode(value)}" for key, value in obj.items())
    return "{\n" + fields + "\n}\n" if fields else "{}\n"


def read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def append_locked(fd: int, data: bytes) -> None:
    """Append ``data`` to an ``O_APPEND`` file under an exclusive lock, whole or not at all.

    Threads and processes of one experiment share ``results.jsonl``: the lock keeps their
    lines apart, and a write that fails part-way (a full disk) is cut back to where it began,
    so a reader never sees a torn line. The error is raised for the caller to report.
    """
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        start = os.lseek(fd, 0, os.SEEK_END)  # where the line begins: appends are locked out
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                if written == 0:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                view = view[written:]
        except BaseException:
            os.ftruncate(fd, start)
            raise
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


def append_warning(folder: Path, text: str) -> None:
    """Record a problem of the run in ``warnings.jsonl`` (raises OSError when it cannot)."""
    line = json.dumps({"at": now_iso(), "warning": text}, ensure_ascii=False) + "\n"
    fd = os.open(folder / WARNINGS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        append_locked(fd, line.encode("utf-8"))
    finally:
        os.close(fd)


def read_warnings(folder: Path) -> list[str]:
    """The warnings recorded in ``warnings.jsonl``, oldest first ([] when there are none)."""
    try:
        with open(folder / WARNINGS, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return []
    found = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue  # not a line append_warning wrote whole
        if isinstance(record, dict) and isinstance(record.get("warning"), str):
            found.append(record["warning"])
    return found


NAME_MAX = 255  # bytes in one file name (Linux and macOS file systems)

_VALID_NAME = (
    "a valid name is a relative path like 'model.pt' or 'plots/loss.png': "
    f"parts separated by '/', none empty, '.' or '..', each at most {NAME_MAX} bytes"
)


def check_name(name: str, what: str = "name") -> None:
    """Refuse a name that is not a plain relative path of files and folders (ValueError).

    ``.``, ``sub/..`` or ``plots/`` name a folder, not a file, and a part longer than the file
    system allows fails later with a confusing error: each is refused here, saying why.
    """
    problem = _name_problem(name)
    if problem is not None:
        raise ValueError(f"invalid {what} {name!r}: {problem}; {_VALID_NAME}")


def _name_problem(name: str) -> str | None:
    if not name:
        return "it is empty"
    if "\x00" in name:
        return "it contains a NUL byte"
    if os.path.isabs(name):
        return "it is an absolute path"
    for part in name.split("/"):
        if part in ("", ".", ".."):
            return "it has an empty, '.' or '..' part"
        if is_temp_name(part):
            return f"{part!r} is a name yanex keeps for its temp files"
        try:
            size = len(os.fsencode(part))
        except UnicodeEncodeError:
            return "it holds a lone surrogate, which no file name can"
        if size > NAME_MAX:
            return f"a part is {size} bytes long"
    return None


def path_inside(root: Path, name: str, what: str = "name") -> Path:
    """``root / name`` for a valid relative name (see :func:`check_name`), refusing one that a
    symlink leads out of ``root``."""
    check_name(name, what)
    candidate = root / name
    resolved_root = root.resolve()
    if resolved_root not in candidate.resolve().parents:
        raise ValueError(f"invalid {what} {name!r}: it leaves {root}; {_VALID_NAME}")
    return candidate
