"""The script side of yanex: read parameters, log results and artifacts.

A tracked script finds its experiment through ``YANEX_EXPERIMENT_DIR`` (set by the launcher),
reads its parameters from ``params.json`` there, appends to ``results.jsonl`` and copies into
``artifacts/``. It never writes ``metadata.json`` (the launcher owns it): a problem it goes on
from, such as a line a full disk could not take, is told on stderr and appended to
``warnings.jsonl``, which the launcher merges into the metadata. Run with plain ``python
script.py`` every call still works: parameters come from the defaults and ``YANEX_PARAM_*``,
and logging is a no-op that warns once.

Every tracked script pays for ``import yanex``, so importing it loads almost nothing: this
module uses the standard library only, and even json, pathlib and the store are imported at
the first call that needs them; the libraries a format needs (numpy, matplotlib, torch) only
when it is used.
"""

from __future__ import annotations

import _thread  # the builtin behind threading: importing threading costs a script more
import os
import sys
import warnings

TYPE_CHECKING = False  # typing itself costs more to import than this whole module
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from pathlib import Path
    from typing import IO, Any

__all__ = [
    "copy_artifact",
    "experiment_dir",
    "experiment_id",
    "get_experiment_dir",
    "get_experiment_id",
    "get_param",
    "get_params",
    "is_standalone",
    "load_artifact",
    "log_artifact",
    "log_metrics",
    "log_results",
    "save_artifact",
]

ENV_EXPERIMENT_ID = "YANEX_EXPERIMENT_ID"
ENV_EXPERIMENT_DIR = "YANEX_EXPERIMENT_DIR"
ENV_PARAM_PREFIX = "YANEX_PARAM_"  # config.overrides.ENV_PREFIX, without importing it

_MISSING = object()


def _is_mapping(obj: object) -> bool:
    """``isinstance(obj, Mapping)``, with collections.abc imported only for a non-dict."""
    if isinstance(obj, dict):
        return True
    from collections.abc import Mapping

    return isinstance(obj, Mapping)


class _Context:
    """The experiment this process belongs to (or none), found once per process."""

    def __init__(self, folder: Path | None = None) -> None:
        """The experiment of ``YANEX_EXPERIMENT_DIR``, or of ``folder`` when given (one
        created in this process)."""
        import json  # loaded with the store anyway

        from yanex import store  # with json, pathlib and re: imported at the first call

        self.store = store
        # Built once: json.dumps with options builds a new encoder at every call. Strict JSON:
        # a non-finite float raises, and the slow path writes it as a string.
        self.encoder = json.JSONEncoder(ensure_ascii=False, allow_nan=False, default=_json_default)
        self.lock = _thread.allocate_lock()
        self.dir: Path | None = None
        self.id: str | None = None
        self.params: dict[str, Any] | None = None
        self.results_fd: int | None = None
        self.next_step = 0
        self.warned = False
        self.reported: set[str] = set()  # problems already told on stderr and recorded
        raw = os.environ.get(ENV_EXPERIMENT_DIR)
        if folder is not None:
            self.dir = folder
            self.id = folder.name
        elif raw:
            self.dir = _checked_experiment_dir(raw)
            self.id = self.dir.name


def _checked_experiment_dir(raw: str) -> Path:
    """Accept only a folder of this store named by a valid ID: the env cannot point elsewhere."""
    from pathlib import Path

    from yanex import store

    path = Path(raw)
    root = store.experiments_root().resolve()
    resolved = path.resolve()
    if resolved.parent != root or not store.is_valid_id(resolved.name):
        raise RuntimeError(
            f"{ENV_EXPERIMENT_DIR}={raw!r} is not an experiment folder of the store {root}; "
            "run the script with `yanex run`, or unset the variable to run it standalone"
        )
    if not (resolved / store.METADATA).is_file():
        raise RuntimeError(f"{ENV_EXPERIMENT_DIR}={raw!r}: no such experiment")
    return resolved


_context: _Context | None = None
_context_lock = _thread.allocate_lock()


def _ctx() -> _Context:
    global _context
    if _context is None:
        with _context_lock:
            if _context is None:
                _context = _Context()
    return _context


def _before_fork() -> None:
    # A context being made in another thread is finished first: the child would otherwise
    # find it missing and wait forever on the import locks that thread holds.
    _context_lock.acquire()


def _after_fork_in_parent() -> None:
    _context_lock.release()


def _after_fork_in_child() -> None:
    """Give a forked child logging of its own.

    A lock held by one of the parent's threads at the fork would never be released in the
    child. The inherited results fd shares its open file, and so its flock, with the parent:
    the child opens its own. And the child is a process of its own: its steps start at 0,
    as a spawned child's do.
    """
    global _context_lock
    _context_lock = _thread.allocate_lock()
    ctx = _context
    if ctx is not None:
        ctx.lock = _thread.allocate_lock()
        ctx.next_step = 0
        if ctx.results_fd is not None:
            import contextlib  # loaded with the store already

            fd, ctx.results_fd = ctx.results_fd, None
            with contextlib.suppress(OSError):
                os.close(fd)


os.register_at_fork(
    before=_before_fork,
    after_in_parent=_after_fork_in_parent,
    after_in_child=_after_fork_in_child,
)


def _warn_standalone(what: str) -> None:
    ctx = _ctx()
    if not ctx.warned:
        ctx.warned = True
        warnings.warn(
            f"yanex: not running under `yanex run`; {what} and later logging calls are no-ops",
            RuntimeWarning,
            stacklevel=3,
        )


# --- context -----------------------------------------------------------------------------


def is_standalone() -> bool:
    """True when the script runs without ``yanex run`` (nothing is tracked)."""
    return _ctx().dir is None


def experiment_id() -> str | None:
    """This experiment's ID, or None when standalone."""
    return _ctx().id


def experiment_dir() -> Path | None:
    """This experiment's folder, or None when standalone."""
    return _ctx().dir


# --- parameters --------------------------------------------------------------------------


# How a standalone run (``python script.py``, no ``yanex run``) types its YANEX_PARAM_*
# variables: the config pipeline's ``env_params`` (Hydra's grammar, OmegaConf), handed in by
# the package (yanex/__init__.py). The script API sits below the config pipeline and never
# imports it (an import-linter contract); the package composes the two.
standalone_params: Callable[[Mapping[str, str]], tuple[dict[str, Any], list[str]]] | None = None


def _load_params(ctx: _Context) -> dict[str, Any]:
    if ctx.params is None:
        if ctx.dir is not None:
            ctx.params = ctx.store.read_json(ctx.dir / ctx.store.PARAMS)
        elif any(name.startswith(ENV_PARAM_PREFIX) for name in os.environ):
            assert standalone_params is not None  # given by the package (yanex/__init__.py)
            params, problems = standalone_params(os.environ)
            for problem in problems:
                warnings.warn(problem, RuntimeWarning, stacklevel=3)
            ctx.params = params
        else:
            ctx.params = {}
    return ctx.params


def get_params() -> dict[str, Any]:
    """All parameters of this run as a plain dict (a copy: changing it changes nothing)."""
    from copy import deepcopy

    return deepcopy(_load_params(_ctx()))


def get_param(key: str, default: Any = None) -> Any:
    """One parameter by dotted key (``"model.lr"``, ``"layers.0"``), else ``default``."""
    from yanex.dotted import lookup

    missing = object()
    node = lookup(_load_params(_ctx()), key, missing)
    if node is missing:
        return default
    if isinstance(node, (dict, list)):
        from copy import deepcopy

        return deepcopy(node)
    return node


# --- results -----------------------------------------------------------------------------


def _json_default(obj: Any) -> Any:
    """Numpy scalars and arrays (and anything with ``tolist``/``item``) become plain values."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON-serialisable")


def log_results(data: Mapping[str, Any], step: int | None = None) -> None:
    """Append one line ``{"step", "timestamp", "results"}`` to ``results.jsonl``.

    ``step=None`` means one more than the last step this process logged (0 at first).
    Safe from several threads and processes at once. A call that fails uses no step: a value
    JSON cannot hold raises; a line the disk cannot take is left out whole, and the loss is
    told on stderr and recorded in ``metadata.warnings``.
    """
    if type(data) is not dict:  # a dict: the fast path
        if not _is_mapping(data):
            raise TypeError(
                f"log_results takes a mapping of names to values, not {type(data).__name__}"
            )
        data = dict(data)
    if step is not None and (not isinstance(step, int) or isinstance(step, bool)):
        raise TypeError(f"step must be an int or None, not {type(step).__name__}")
    ctx = _ctx()
    if ctx.dir is None:
        _warn_standalone("log_results")
        return
    _check_keys(data)
    store = ctx.store
    with ctx.lock:
        if step is None:
            step = ctx.next_step
        record = {"step": step, "timestamp": store.now_iso(), "results": data}
        try:
            line = ctx.encoder.encode(record)
        except ValueError:  # NaN or infinity (or a value that holds itself)
            from yanex.json_policy import encode_value

            try:
                line = ctx.encoder.encode(encode_value(record, _json_default))
            except ValueError as exc:
                raise ValueError(f"log_results: {exc}") from None
        try:
            encoded = (line + "\n").encode("utf-8")
        except UnicodeEncodeError as exc:
            bad = exc.object[exc.start : exc.end]
            raise ValueError(
                f"log_results: a string holds the lone surrogate {bad!r}, which UTF-8 (and so "
                "a JSON file) cannot hold; decode the text it came from with "
                "errors='replace', or log it as bytes.hex()"
            ) from None
        try:
            if ctx.results_fd is None:
                ctx.results_fd = os.open(
                    ctx.dir / store.RESULTS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600
                )
            store.append_locked(ctx.results_fd, encoded)
        except OSError as exc:
            # The run goes on without this line, and the step is not used: the next line
            # takes it. The loss is told once, and recorded.
            problem = f"{store.RESULTS} is incomplete: {exc.strerror or exc}"
            _report(ctx, ctx.dir, problem, f"from step {step}")
            return
        ctx.next_step = step + 1  # only now: a call that failed used up no step


def _report(ctx: _Context, folder: Path, problem: str, detail: str) -> None:
    """Tell of a problem once (not at every call while it lasts): on stderr, and in
    warnings.jsonl for metadata.warnings (the launcher owns metadata.json)."""
    import contextlib  # loaded with the store already

    if problem in ctx.reported:
        return
    ctx.reported.add(problem)
    text = f"{problem} ({detail})"
    with contextlib.suppress(AttributeError, OSError, ValueError):  # no usable stderr
        sys.stderr.write(f"yanex: warning: experiment {ctx.id}: {text}\n")
        sys.stderr.flush()
    try:
        ctx.store.append_warning(folder, text)
    except OSError:
        # Most likely the disk is full: the warning is written into room taken from what the
        # launcher keeps for recording the ending (it ends up in metadata.json from there).
        if _borrow_room(ctx, folder):
            with contextlib.suppress(OSError):  # stderr has told it
                ctx.store.append_warning(folder, text)


_BORROW = 8192  # bytes given up from the launcher's reserve for one warning
_RESERVE_KEPT = 128 * 1024  # what is never borrowed: the room the ending itself needs


def _borrow_room(ctx: _Context, folder: Path) -> bool:
    """Shrink the launcher's reserve (``.reserve``) by a few KiB, so a warning fits on a full
    disk; False when there is none left to spare."""
    reserve = folder / ctx.store.RESERVE
    try:
        size = reserve.stat().st_size
        if size - _BORROW < _RESERVE_KEPT:
            return False
        os.truncate(reserve, size - _BORROW)
    except OSError:
        return False
    return True


def _json_key(key: object) -> str | None:
    """The text JSON writes for a dict key (None for a key it refuses: the encoder says so)."""
    if isinstance(key, str):
        return key
    if key is None:
        return "null"
    if key is True:
        return "true"
    if key is False:
        return "false"
    if isinstance(key, int):
        return int.__repr__(key)
    if isinstance(key, float):
        from yanex.json_policy import non_finite

        return non_finite(key) or float.__repr__(key)
    return None


_PLAIN = frozenset({str, float, int, bool, type(None)})  # checked first: the common values
_NESTED = (dict, list, tuple)


def _check_keys(results: dict[Any, Any]) -> None:
    """Refuse keys JSON would write alike (``1`` and ``"1"``): the line would hold a duplicate.

    Names mapped to values that hold no dict or list pass at once (the common line);
    otherwise nested values are walked, and a dict with a key that is not a str is compared.
    """
    for key, value in results.items():
        if type(key) is not str or (type(value) not in _PLAIN and isinstance(value, _NESTED)):
            break
    else:
        return
    stack: list[Any] = [results]
    seen: set[int] = set()  # a value that holds itself is left to the encoder to refuse
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, dict):
            if any(type(key) is not str for key in node):
                _check_distinct(node)
            values = node.values()
        else:
            values = node
        stack.extend(value for value in values if isinstance(value, _NESTED))


def _check_distinct(node: dict[Any, Any]) -> None:
    written: dict[str, object] = {}  # the text JSON writes -> the key
    for key in node:
        text = _json_key(key)
        if text is None:
            continue
        if text in written:
            raise ValueError(
                f"log_results: the keys {written[text]!r} and {key!r} would both be written "
                f'as "{text}"; give them distinct names'
            )
        written[text] = key


log_metrics = log_results


# --- artifacts ---------------------------------------------------------------------------


def _artifact_path(name: str) -> Path | None:
    """Where artifact ``name`` lives, or None when standalone. An invalid name is refused
    either way: a script tried standalone fails as it would under ``yanex run``."""
    ctx = _ctx()
    store = ctx.store
    if ctx.dir is None:
        store.check_name(str(name), "artifact name")
        return None
    return store.path_inside(ctx.dir / store.ARTIFACTS, str(name), "artifact name")


def _write_via_temp(
    target: Path,
    what: str,
    write: Callable[[IO[bytes]], None] | None = None,
    write_path: Callable[[Path], None] | None = None,
) -> None:
    """Write an artifact through a temp file and a rename: no half-written artifact is seen.

    ``write`` fills an open file; ``write_path`` (a custom saver) writes a path of its own,
    which has the artifact's name. Folders are made user-only, like the experiment's; the
    temp name is short, so any name a file can have fits. Nothing is left behind when the
    write fails. An artifact the disk cannot take is recorded in ``metadata.warnings``
    before the error is raised.
    """
    import contextlib  # loaded with the store already

    ctx = _ctx()
    assert ctx.dir is not None
    root = ctx.dir / ctx.store.ARTIFACTS
    name = target.relative_to(root)
    with contextlib.suppress(NotADirectoryError, OSError):  # a file is in the way: named below
        ctx.store.make_private_dirs(target.parent)
    for folder in reversed(name.parents[:-1]):  # "plots", then "plots/2024", ...
        if not (root / folder).is_dir():
            if (root / folder).exists():
                raise ValueError(
                    f"{what}: cannot write {name.as_posix()!r}: {folder.as_posix()!r} is a "
                    "file in artifacts/, not a folder"
                )
            break  # the folder could not be made: the write below says why
    if target.is_dir():
        raise ValueError(
            f"{what}: {name.as_posix()!r} is a folder in artifacts/; name a file inside it"
        )
    # A custom saver is given the artifact's own name, in a temp folder (see _saver_wrote).
    try:
        with ctx.store.replacing(target, durable=False, in_folder=write is None) as tmp:
            if write_path is None:
                assert write is not None
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with open(fd, "wb") as f:
                    write(f)
            else:
                write_path(tmp)
                _saver_wrote(tmp, what)
                os.chmod(tmp, 0o600)
    except BaseException as exc:
        if isinstance(exc, OSError):
            problem = f"artifact {name.as_posix()!r} was not saved: {exc.strerror or exc}"
            _report(ctx, ctx.dir, problem, what)
        raise


def _saver_wrote(tmp: Path, what: str) -> None:
    """Make ``tmp`` the one file a custom saver wrote, or refuse what it wrote (ValueError).

    ``tmp`` is the artifact's name alone in a temp folder, so whatever the saver wrote is
    there: a library that adds its extension to a name without it (``numpy.save`` writes
    ``weights.npy`` when given ``weights``) wrote one file, kept under the name asked for;
    a folder, several files, a file of another name, a link (symbolic or hard: the artifact
    would be, or change with, a file outside the experiment) or a FIFO are not an artifact.
    """
    import stat

    written = sorted(os.listdir(tmp.parent))
    if not written:
        raise ValueError(f"{what}: the saver wrote no file at the path it was given")
    if len(written) > 1:
        raise ValueError(
            f"{what}: the saver wrote {', '.join(map(repr, written))}, not one file at the "
            "path it was given; save each file as an artifact of its own"
        )
    made = tmp.parent / written[0]
    if written[0] != tmp.name and not written[0].startswith(f"{tmp.name}."):
        raise ValueError(
            f"{what}: the saver wrote {written[0]!r}, not the path it was given "
            f"({tmp.name!r}); write to that path as it is"
        )
    st = os.lstat(made)
    if stat.S_ISLNK(st.st_mode) or (stat.S_ISREG(st.st_mode) and st.st_nlink > 1):
        raise ValueError(
            f"{what}: the saver made a link at the path it was given, not a file of its own; "
            "write the data there, or copy a file in with log_artifact(path)"
        )
    if stat.S_ISDIR(st.st_mode):
        raise ValueError(
            f"{what}: the saver made a folder at the path it was given, not a file; "
            "save one file (an archive of the folder), or each of its files with log_artifact"
        )
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(
            f"{what}: the saver made something that is not a file at the path it was given "
            "(a FIFO, socket or device); write a regular file there"
        )
    if made != tmp:  # an extension the library added: kept under the name asked for
        os.rename(made, tmp)


def log_artifact(path: str | os.PathLike[str], name: str | None = None) -> None:
    """Copy the file at ``path`` into ``artifacts/`` (as ``name``, else its own name)."""
    from pathlib import Path

    source = Path(path)
    if not source.is_file():
        raise FileNotFoundError(f"log_artifact: no such file: {source}")
    target = _artifact_path(name if name is not None else source.name)
    if target is None:
        _warn_standalone("log_artifact")
        return
    import shutil

    with open(source, "rb") as src:
        _write_via_temp(target, "log_artifact", lambda f: shutil.copyfileobj(src, f))


def copy_artifact(src_path: str | os.PathLike[str], filename: str | None = None) -> None:
    """yanex 0.6 name of :func:`log_artifact`."""
    log_artifact(src_path, filename)


def _save_text(obj: Any, f: IO[bytes], encoding: str = "utf-8") -> None:
    f.write(str(obj).encode(encoding))


def _save_json(
    obj: Any, f: IO[bytes], indent: int | None = 2, ensure_ascii: bool = False, **options: Any
) -> None:
    import json

    text = json.dumps(
        obj, indent=indent, ensure_ascii=ensure_ascii, default=_json_default, **options
    )
    f.write((text + "\n").encode("utf-8"))


def _save_jsonl(obj: Any, f: IO[bytes], ensure_ascii: bool = False) -> None:
    import json

    for item in obj:
        line = json.dumps(item, ensure_ascii=ensure_ascii, default=_json_default)
        f.write((line + "\n").encode("utf-8"))


def _save_csv(obj: Any, f: IO[bytes], delimiter: str = ",", **options: Any) -> None:
    import csv
    import io

    if hasattr(obj, "to_csv"):  # a pandas DataFrame
        obj.to_csv(f, **{"index": False, "sep": delimiter, **options})
        return
    text = io.TextIOWrapper(f, encoding="utf-8", newline="")
    rows = list(obj)
    if rows and _is_mapping(rows[0]):
        fields = list(dict.fromkeys(k for row in rows for k in row))
        writer = csv.DictWriter(text, fieldnames=fields, delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)
    else:
        csv.writer(text, delimiter=delimiter).writerows(rows)
    text.flush()
    text.detach()


def _save_npy(obj: Any, f: IO[bytes], **options: Any) -> None:
    import numpy

    numpy.save(f, obj, **options)


def _save_npz(obj: Any, f: IO[bytes], compressed: bool = False) -> None:
    import numpy

    save = numpy.savez_compressed if compressed else numpy.savez
    if _is_mapping(obj):
        save(f, **obj)
    else:
        save(f, obj)


def _save_figure(fmt: str) -> Callable[..., None]:
    def save(fig: Any, f: IO[bytes], **options: Any) -> None:
        if not hasattr(fig, "savefig"):
            raise TypeError(f"save_artifact: a .{fmt} artifact takes a matplotlib figure")
        fig.savefig(f, **{"format": fmt, **options})

    return save


def _save_pickle(obj: Any, f: IO[bytes], **options: Any) -> None:
    import pickle

    pickle.dump(obj, f, **options)


def _save_torch(obj: Any, f: IO[bytes], **options: Any) -> None:
    import torch

    torch.save(obj, f, **options)


_SAVERS: dict[str, Callable[..., None]] = {
    ".txt": _save_text,
    ".json": _save_json,
    ".jsonl": _save_jsonl,
    ".csv": _save_csv,
    ".npy": _save_npy,
    ".npz": _save_npz,
    ".pkl": _save_pickle,
    ".pickle": _save_pickle,
    ".png": _save_figure("png"),
    ".svg": _save_figure("svg"),
    ".pdf": _save_figure("pdf"),
    ".pt": _save_torch,
    ".pth": _save_torch,
}


class _Format:
    """A format added with ``yanex.register_format`` (yanex 0.6): tried before the built-in
    ones for its extensions, and loadable by name (``load_artifact(..., format=name)``)."""

    def __init__(
        self,
        name: str,
        extensions: list[str],
        type_check: Callable[[Any], bool],
        saver: Callable[..., None],
        loader: Callable[[Path], Any],
        required_package: str | None,
    ) -> None:
        self.name = name
        self.extensions = [ext.lower() for ext in extensions]
        self.type_check = type_check
        self.saver = saver
        self.loader = loader
        self.required_package = required_package

    def check_package(self) -> None:
        if self.required_package:
            from importlib.util import find_spec

            if find_spec(self.required_package) is None:
                raise ImportError(
                    f"the artifact format {self.name!r} needs {self.required_package}: "
                    f"pip install {self.required_package}"
                )


_FORMATS: list[_Format] = []  # registered formats, the latest first


def save_artifact(obj: Any, filename: str, saver: Any = None, **kwargs: Any) -> None:
    """Save ``obj`` into ``artifacts/filename``; the format follows the extension.

    .txt (str), .json, .jsonl (a list), .csv (rows, dicts or a DataFrame), .npy/.npz
    (numpy), .pkl, .png/.svg/.pdf (a matplotlib figure), .pt/.pth (torch), and formats added
    with ``register_format``. ``saver(obj, path, **kwargs)`` writes any other; ``kwargs`` go
    to the writer (``indent=`` for JSON, ``dpi=`` for a figure, ``compressed=`` for .npz).
    """
    target = _artifact_path(filename)  # an invalid name is refused first, for what it is
    suffix = os.path.splitext(str(filename))[1].lower()
    if saver is None:
        for fmt in _FORMATS:
            if suffix in fmt.extensions and fmt.type_check(obj):
                fmt.check_package()
                saver = fmt.saver
                break
    builtin = _SAVERS.get(suffix) if saver is None else None
    if saver is None and builtin is None:
        raise ValueError(
            f"save_artifact: no format for {suffix or 'a name without extension'!r}; "
            f"use one of {', '.join(_SAVERS)}, pass saver=, or write the file and call "
            "log_artifact"
        )
    if target is None:
        _warn_standalone("save_artifact")
        return
    if builtin is not None:
        _write_via_temp(target, "save_artifact", lambda f: builtin(obj, f, **kwargs))
    else:
        _write_via_temp(target, "save_artifact", write_path=lambda p: saver(obj, p, **kwargs))


def _load_json(path: Path) -> Any:
    import json

    return json.loads(path.read_text(encoding="utf-8"))


def _load_jsonl(path: Path) -> list[Any]:
    import json

    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _load_csv(path: Path) -> list[dict[str, str]]:
    import csv

    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _load_csv_dataframe(path: Path) -> Any:
    import pandas

    return pandas.read_csv(path)


def _load_npy(path: Path) -> Any:
    import numpy

    return numpy.load(path, allow_pickle=False)


def _load_npz(path: Path) -> dict[str, Any]:
    import numpy

    with numpy.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def _load_pickle(path: Path) -> Any:
    import pickle

    with open(path, "rb") as f:
        return pickle.load(f)


def _load_torch(path: Path) -> Any:
    import torch

    return torch.load(path)


def _load_image(path: Path) -> Any:
    from PIL import Image

    return Image.open(path)


_LOADERS: dict[str, Callable[[Path], Any]] = {
    ".txt": lambda p: p.read_text(encoding="utf-8"),
    ".json": _load_json,
    ".jsonl": _load_jsonl,
    ".csv": _load_csv,
    ".npy": _load_npy,
    ".npz": _load_npz,
    ".pkl": _load_pickle,
    ".pickle": _load_pickle,
    ".pt": _load_torch,
    ".pth": _load_torch,
}

# yanex 0.6's names for its built-in formats (``load_artifact(..., format="csv-pandas")``).
_NAMED_LOADERS: dict[str, Callable[[Path], Any]] = {
    "text": _LOADERS[".txt"],
    "json": _load_json,
    "jsonl": _load_jsonl,
    "csv-pandas": _load_csv_dataframe,
    "csv-list": _load_csv_dataframe,  # 0.6 read both CSV formats with pandas
    "npy": _load_npy,
    "npz": _load_npz,
    "torch": _load_torch,
    "pickle": _load_pickle,
    "png": _load_image,
}


def _loader_for(path: Path, format: str | None) -> Callable[[Path], Any]:
    if format is not None:
        for fmt in _FORMATS:
            if fmt.name == format:
                fmt.check_package()
                return fmt.loader
        if format in _NAMED_LOADERS:
            return _NAMED_LOADERS[format]
        known = sorted({*_NAMED_LOADERS, *(fmt.name for fmt in _FORMATS)})
        raise ValueError(f"load_artifact: unknown format {format!r}; known: {', '.join(known)}")
    suffix = path.suffix.lower()
    for fmt in _FORMATS:
        if suffix in fmt.extensions:
            fmt.check_package()
            return fmt.loader
    return _LOADERS.get(suffix, lambda p: p.read_bytes())


def load_artifact(filename: str, loader: Any = None, format: str | None = None) -> Any:
    """Load ``artifacts/filename`` by its extension (.csv gives a list of row dicts; other
    extensions give bytes); None when it does not exist or when standalone.

    ``loader(path)`` reads any other format; ``format=`` names one (``"csv-pandas"`` for a
    DataFrame, or a name given to ``register_format``). An artifact this experiment does not
    have is looked for in the experiments it depends on (``-D``), directly or not: found in
    one, it is loaded from there; in several, ``AmbiguousArtifactError`` names them.
    """
    target = _artifact_path(filename)
    if target is None:
        return None
    if not target.is_file():
        target = _dependency_artifact(filename)
        if target is None:
            return None
    return (loader or _loader_for(target, format))(target)


def _dependency_artifact(name: str) -> Path | None:
    """Where artifact ``name`` is among the experiments this one depends on (yanex 0.6's
    search); None when none has it."""
    from yanex import record
    from yanex.errors import AmbiguousArtifactError

    ctx = _ctx()
    assert ctx.dir is not None and ctx.id is not None
    home = ctx.dir.parent.parent
    found: list[tuple[str, Path]] = []
    for upstream in record.upstream(ctx.id, home):
        folder = record.folder_by_id(upstream, home)
        if folder is None:
            continue
        candidate = ctx.store.path_inside(folder / ctx.store.ARTIFACTS, str(name), "artifact name")
        if candidate.is_file():
            found.append((upstream, candidate))
    if len(found) > 1:
        raise AmbiguousArtifactError(name, [upstream for upstream, _ in found])
    return found[0][1] if found else None


# --- the experiment of this process ---------------------------------------------------------


def _track(folder: Path | None) -> _Context | None:
    """Make ``folder``'s experiment the one this process logs to (None: back to none);
    the previous context, for :func:`_untrack`. For experiments created in-process."""
    global _context
    with _context_lock:
        previous = _context
        _context = None if folder is None else _Context(folder)
    return previous


def _untrack(previous: _Context | None) -> None:
    global _context
    with _context_lock:
        current = _context
        _context = previous
    if current is not None and current.results_fd is not None:
        import contextlib

        with contextlib.suppress(OSError):
            os.close(current.results_fd)


# yanex 0.6 names, kept so that scripts written for it run unchanged.
get_experiment_id = experiment_id
get_experiment_dir = experiment_dir
