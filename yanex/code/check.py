"""The ONE code check every member of a batch, a ``-m`` grid and a ``yanex.launch`` sweep goes
through before it starts (``CodeCheck``): is the code there is now the code the member
recorded?

A batch may hold thousands of members, each asking: git is asked again only when something
git itself would notice has changed, and never by a clock.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from yanex import record, store
from yanex.code.git import NotARepository, git, rev_parse, start
from yanex.code.state import GitSnapshot, Recorded, changes_since, patch, snapshot
from yanex.errors import GitStateError

# A file changed this recently may change again without its stat data changing (its mtime and
# ctime still in the same tick of the file system's clock: git's "racily clean" entries). Such
# a state is read with git every time, never taken from the cache. 2 s: FAT's granularity,
# far above the coarse clock tick of Linux file systems (at most 10 ms).
RACY_SECONDS = 2.0
_Stat = tuple[int, int, int, int, int] | None


def _stat(path: Path | str) -> _Stat:
    """What git compares to see that a file changed: mtime, ctime, size, inode, mode."""
    try:
        st = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino, st.st_mode)


def _tree_stats(path: Path) -> Iterator[_Stat]:
    """The stat data of a file, or of a folder and everything in it (a config tree)."""
    yield _stat(path)
    if path.is_dir():
        for folder, dirs, files in os.walk(path):
            dirs.sort()
            for name in [*dirs, *sorted(files)]:
                yield _stat(Path(folder, name))


@dataclass
class _Repo:
    """A repository the check watches: where its files and its git files are."""

    root: Path
    git_dir: Path
    common_dir: Path
    index: _Stat = None  # the index the tracked paths were listed from
    files: list[str] = field(default_factory=list)  # every tracked file, absolute
    submodules: list[Path] = field(default_factory=list)  # every submodule, absolute


class CodeCheck:
    """Is the code there is now the code a member recorded? The one check of the staged runner
    (``yanex run --staged``, ``-m``, ``yanex.launch(jobs=...)``) and of a ``yanex.launch``
    sweep, asked before each member starts.

    The state is read with git again only when something git itself would notice has
    changed: the index file, HEAD and the ref it names, the repository's config, the stat
    data (mtime, ctime, size, inode, mode) of every tracked file and of the run's untracked
    files, and the same for each submodule. A batch of 1,000 members of unchanged code reads
    git once; an edit made by a member is seen by the next one. Never a clock: only a file
    changed within ``RACY_SECONDS`` of the check is read with git each time, since a second
    change in the same tick would keep its stat data (as git treats racily clean files).

    With ``ignore_dirty`` a difference is allowed, and the member records the state it really
    runs with (the staging state is kept as ``git_at_staging`` and ``git.staged.patch``).
    ``git_reads`` counts the states read with git (what the benchmark reports).
    """

    def __init__(self, ignore_dirty: bool = False) -> None:
        self.ignore_dirty = ignore_dirty
        self.git_reads = 0
        self._lock = threading.Lock()
        self._repos: dict[Path, _Repo] = {}
        self._states: dict[tuple[str, ...], tuple[tuple[Any, ...], GitSnapshot]] = {}

    def state(
        self,
        script: Path,
        configs: Sequence[Path] = (),
        reads: Callable[[Path], bool] | None = None,
    ) -> GitSnapshot:
        """The state of the repository that holds ``script`` now (see :func:`snapshot`),
        read with git only when it may have changed; NotARepository outside one."""
        script = script.resolve()
        key = (str(script), *(str(path) for path in configs))
        with self._lock:
            repo = self._repo(script.parent)
            mark = self._fingerprint(repo, [script, *configs])
            found = self._states.get(key)
            if mark is not None and found is not None and found[0] == mark:
                return found[1]
            self.git_reads += 1
            now = snapshot(script, configs, reads)
            if mark is None:
                self._states.pop(key, None)
            else:  # read after the mark: a change in between only makes the next mark differ
                self._states[key] = (mark, now)
            return now

    def compare(
        self,
        recorded: Recorded | None,
        script: Path,
        configs: Sequence[Path] = (),
        reads: Callable[[Path], bool] | None = None,
        when: str = "at staging",
    ) -> tuple[str | None, GitSnapshot | None]:
        """Why the code there is now is not ``recorded`` (None: it is the same), and the state
        now (None outside a repository). ``recorded`` None: recorded outside a repository."""
        try:
            now = self.state(script, configs, reads)
        except NotARepository as exc:
            return (None if recorded is None else f"{exc}"), None
        if recorded is None:
            recorded = Recorded(now.commit)
        return changes_since(recorded, now, when), now

    def __call__(self, folder: Path, meta: dict[str, Any]) -> str | None:
        """Why this staged member may not run with the code there is now, or None when it may
        (with ``ignore_dirty``, after recording the state it runs with)."""
        git_meta = meta.get("git")
        staged = folder / store.GIT_PATCH
        recorded = None
        if git_meta is not None:
            before = staged.read_bytes() if staged.exists() else b""
            recorded = Recorded.from_metadata(git_meta, before)
        # the untracked config files the member read at staging (their content is in its
        # git.patch), so that they count as the tree's changes now too
        configs = [Path(path) for path in meta.get("config_files") or ()]
        difference, now = self.compare(recorded, Path(meta["script"]), configs)
        if difference is None:
            return None
        if not self.ignore_dirty:
            return difference
        _record_real_state(folder, git_meta, now)
        return None

    def _repo(self, folder: Path) -> _Repo:
        """Where the repository at ``folder`` keeps its files (asked of git once per folder;
        NotARepository, not remembered, outside one)."""
        repo = self._repos.get(folder)
        if repo is None:
            root, git_dir, common_dir = _located(folder)
            repo = self._repos[folder] = _Repo(root, git_dir, common_dir)
        return repo

    def _fingerprint(self, repo: _Repo, files: Sequence[Path]) -> tuple[Any, ...] | None:
        """What git would look at to see a change, or None when it cannot be trusted (a file
        changed within ``RACY_SECONDS``, or the repository cannot be read)."""
        started = time.time_ns()
        try:
            stats: list[_Stat] = []
            heads: list[bytes] = []
            self._watch(repo, stats, heads, depth=0)
            for path in files:
                stats.extend(_tree_stats(path))
        except (OSError, GitStateError, NotARepository):
            return None
        racy = started - int(RACY_SECONDS * 1e9)
        if any(st is not None and max(st[0], st[1]) >= racy for st in stats):
            return None
        return (tuple(heads), tuple(stats))

    def _watch(self, repo: _Repo, stats: list[_Stat], heads: list[bytes], depth: int) -> None:
        index = _stat(repo.git_dir / "index")
        head = (repo.git_dir / "HEAD").read_bytes()
        heads.append(head)
        stats.append(index)
        if head.startswith(b"ref: "):
            stats.append(_stat(repo.common_dir / os.fsdecode(head[5:].strip())))
        for name in ("packed-refs", "config", "reftable/tables.list"):
            stats.append(_stat(repo.common_dir / name))
        if index != repo.index:  # the tracked paths changed, or were never listed
            tracked = _tracked(repo.root) if index is not None else []
            top = str(repo.root)
            repo.files = [os.path.join(top, path) for path, is_sub in tracked if not is_sub]
            repo.submodules = [repo.root / path for path, is_sub in tracked if is_sub]
            repo.index = index
        stats.extend(map(_stat, repo.files))  # most of a check's time: strings, no Path
        for where in repo.submodules:
            if depth < 8 and (where / ".git").exists():
                self._watch(self._repo(where), stats, heads, depth + 1)
            else:
                stats.append(_stat(where))


def _located(folder: Path) -> tuple[Path, Path, Path]:
    """The top, git dir and common git dir of the repository at ``folder``, absolute."""
    proc = start(
        folder,
        "rev-parse",
        "--path-format=absolute",
        "--show-toplevel",
        "--git-dir",
        "--git-common-dir",
    )
    root, git_dir, common_dir = rev_parse(proc, folder)[:3]
    return root, git_dir, common_dir


def _tracked(root: Path) -> list[tuple[str, bool]]:
    """Every path of the index (``git ls-files -s``), and whether it is a submodule."""
    done = git(root, "ls-files", "-s", "-z")
    if done.returncode != 0:
        raise GitStateError(f"git cannot list the files of {root}")
    found = []
    for entry in done.stdout.split(b"\0"):
        if entry:
            info, _, path = entry.partition(b"\t")
            found.append((os.fsdecode(path), info.startswith(b"160000 ")))
    return found


def _record_real_state(
    folder: Path, recorded: dict[str, Any] | None, now: GitSnapshot | None
) -> None:
    """A member run with other code than staged (``--ignore-dirty``) records what it ran."""
    patch_file = folder / store.GIT_PATCH
    if patch_file.exists():
        os.replace(patch_file, folder / store.GIT_PATCH_AT_STAGING)
    if now is not None and now.dirty:
        store.write_bytes_atomic(patch_file, patch(now))
    real = now.to_metadata() if now is not None else None
    record.update(folder, {"git_at_staging": recorded, "git": real})
