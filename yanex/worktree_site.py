"""The script's side of a ``--worktree`` rerun: the recorded code first, wherever the script
imports it from, and every import from the live repository reported.

``yanex rerun --worktree`` copies this file as ``sitecustomize.py`` into a folder of its own
that it puts first on the child's ``PYTHONPATH`` (with ``YANEX_WORKTREE`` naming the live
repository and the worktree). Python imports ``sitecustomize`` after it has processed every
``.pth`` file, so at that moment everything that points into the live repository is in
place and can be pointed at the worktree instead:

- ``sys.path`` entries inside the repository (``PYTHONPATH``, a setuptools editable install
  written as a ``.pth`` path entry, a ``.pth`` of the user's own);
- the ``MAPPING`` and ``NAMESPACES`` of setuptools' editable finders
  (``__editable___*_finder``), which name each package's folder.

Then a finder placed first on ``sys.meta_path`` looks at where each module is found and
reports one found in the live repository (a ``sys.path.insert`` of the script's own, a
``.pth`` this file does not know) on stderr and in the experiment's ``warnings.jsonl``, which
the launcher moves into ``metadata.warnings``. A user's own ``sitecustomize`` (found after
this one) still runs; the mapping is made again after it. Processes the script starts with
the same environment (spawned workers) get the same.

This file is never imported by yanex itself: it runs in the script's interpreter, with the
standard library only until it has something to report.
"""

from __future__ import annotations

import _thread
import importlib
import json
import os
import sys
from typing import Any

ENV = "YANEX_WORKTREE"


def _spec() -> tuple[str, str] | None:
    try:
        spec = json.loads(os.environ.get(ENV) or "")
        return os.path.realpath(spec["live"]), os.path.realpath(spec["code"])
    except (ValueError, KeyError, TypeError):
        return None


def _mapped(path: Any, live: str, code: str) -> str | None:
    """``path`` inside the live repository, as the same path in the worktree; else None."""
    if not isinstance(path, str) or not path:
        return None
    real = os.path.realpath(path)
    if real == live or real.startswith(live + os.sep):
        return code + real[len(live) :]
    return None


def _map_everything(live: str, code: str) -> None:
    sys.path[:] = [_mapped(entry, live, code) or entry for entry in sys.path]
    for name, module in list(sys.modules.items()):
        if not (name.startswith("__editable__") and name.endswith("_finder")):
            continue
        mapping = getattr(module, "MAPPING", None)
        if isinstance(mapping, dict):
            for key, value in list(mapping.items()):
                mapping[key] = _mapped(value, live, code) or value
        namespaces = getattr(module, "NAMESPACES", None)
        if isinstance(namespaces, dict):
            for key, paths in list(namespaces.items()):
                namespaces[key] = [_mapped(p, live, code) or p for p in paths]
    sys.path_importer_cache.clear()
    importlib.invalidate_caches()


class LiveImports:
    """A meta path finder that asks the others, and reports a module they find in the live
    repository; it finds nothing of its own, so imports behave as without it."""

    def __init__(self, live: str, code: str) -> None:
        self.live, self.code = live, code
        self.reported: set[str] = set()
        self._busy: set[int] = set()  # threads asking the other finders now

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        thread = _thread.get_ident()
        if thread in self._busy:
            return None  # an import made while finding: the import system asks them all
        self._busy.add(thread)
        try:
            for finder in sys.meta_path:
                if finder is self:
                    continue
                find = getattr(finder, "find_spec", None)
                if find is None:
                    return None  # a finder of the old kind: let the import system ask them all
                spec = find(fullname, path, target)
                if spec is not None:
                    where = spec.origin if spec.has_location else None
                    self.check(fullname, where)
                    return spec
            return None
        finally:
            self._busy.discard(thread)

    def check(self, module: str, where: Any) -> None:
        if module in self.reported or _mapped(where, self.live, self.code) is None:
            return
        self.reported.add(module)
        text = (
            f"module {module} was imported from the live repository ({where}), not from the "
            "recorded code of this rerun"
        )
        print(f"yanex: warning: {text}", file=sys.stderr, flush=True)
        folder = os.environ.get("YANEX_EXPERIMENT_DIR")
        if folder:
            try:
                from pathlib import Path

                from yanex.store import append_warning

                append_warning(Path(folder), text)
            except (ImportError, OSError):
                pass  # said on stderr, which is kept in stderr.txt


def install() -> None:
    spec = _spec()
    if spec is None:
        return
    live, code = spec
    _map_everything(live, code)
    guard = LiveImports(live, code)
    sys.meta_path.insert(0, guard)
    # The user's own sitecustomize, as if this one were not there.
    here = os.path.dirname(os.path.abspath(__file__))
    ours = sys.modules.pop("sitecustomize", None)
    sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or ".") != here]
    try:
        import sitecustomize  # noqa: F401
    except ImportError as exc:
        if exc.name != "sitecustomize":
            raise
    finally:
        if ours is not None and "sitecustomize" not in sys.modules:
            sys.modules["sitecustomize"] = ours
    _map_everything(live, code)  # what the user's sitecustomize added
    for name, module in list(sys.modules.items()):  # imported before the guard was in place
        guard.check(name, getattr(module, "__file__", None))


install()
