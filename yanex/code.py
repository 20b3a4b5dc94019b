"""The code a run runs: its state (commit, branch, dirty, remote, patch, submodules), the one
git runner, and the ONE code check every member of a batch, a ``-m`` grid and a
``yanex.launch`` sweep goes through before it starts.

A run must be rebuildable from what it records: a clean commit, or (with ``--ignore-dirty``)
the commit plus ``git.patch``. So a dirty tree (modified or staged tracked files, a submodule
with changes or at another commit, or an untracked script) is refused unless the user says
otherwise.

Submodules are part of the code: each checked-out submodule's commit is recorded
(``git.submodules``: path -> commit, nested ones by their full path) and its uncommitted
changes are a section of ``git.patch`` whose paths start with the submodule's path, so one
``git apply`` at the top of a checkout (its submodules at their recorded commits) rebuilds all
of it. The superproject's own section leaves gitlinks out: the recorded commits say them.

Every state read is cheap: read-only git commands in machine formats (``git status
--porcelain=v2 --branch`` among them), started together, about 10 ms. Machine formats also
keep the user's git config (colours, quoting, untracked-file listing) out of what is parsed.

``git.patch`` is made by plumbing (``git diff-index``) with every option that shapes it given
on the command line, so the user's config (colours, prefixes, external diff tools, textconv,
renames, context, quoting, abbreviated hashes) can neither change its bytes nor stop it from
applying. Only the settings of a diff driver named by attributes still count: its funcname
(the text after a hunk's ``@@``) and ``binary`` (the file as a binary patch), and both apply.
The secret scan of a patch loads detect-secrets, which only a dirty run needs.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from yanex import record, store
from yanex.errors import GitStateError

# Git's empty tree: what a repository without commits is compared against.
_EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
_SHOWN_FILES = 10

# --- the git runner ---------------------------------------------------------------------------

# Read-only: `git status` must not take index.lock, or concurrent runs could collide in it.
# English messages: "not a git repository" is recognised in them. Paths are literal, never
# globs (a script named exp[1].py must not match exp1.py), whatever the user's GIT_*_PATHSPECS.
# Never a prompt for credentials: nothing here may wait for a user.
_GIT_ENV = {
    "GIT_OPTIONAL_LOCKS": "0",
    "LC_ALL": "C",
    "GIT_LITERAL_PATHSPECS": "1",
    "GIT_TERMINAL_PROMPT": "0",
}
# Variables that change what a diff prints (GIT_DIFF_OPTS even overrides -U on the command
# line), and those that point git at another repository than the one holding the path given
# (set inside a git hook, say): the repository is always the one that holds the path.
_DROPPED_ENV = (
    "GIT_DIFF_OPTS",
    "GIT_EXTERNAL_DIFF",
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_COMMON_DIR",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_PREFIX",
)
# Everything that shapes git.patch, so that its bytes are the same whatever the config:
# full hashes, a/ b/ prefixes, no colour, no external tool or textconv, 3 lines of context,
# a rename written as a deletion and a new file (no similarity threshold or rename limit), and
# binary files as binary patches. Config that plumbing still reads is overridden with -c.
_PATCH_CONFIG = ("-c", "core.quotePath=true", "-c", "diff.suppressBlankEmpty=false")
_PATCH_OPTIONS = (
    "--patch",
    "--binary",
    "--full-index",
    "--no-color",
    "--no-ext-diff",
    "--no-textconv",
    "--no-renames",
    "--unified=3",
    "--inter-hunk-context=0",
)


class NotARepository(Exception):
    """The script is not in a git repository (or git cannot be run); carries the reason."""


def _environ(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.endswith("_PATHSPECS") and key not in _DROPPED_ENV
    }
    return env | _GIT_ENV | dict(extra or {})


def _start(cwd: Path, *args: str, env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start one git command; the caller collects it with ``_output``. ``env``: variables
    of this command only (a temporary index)."""
    try:
        return subprocess.Popen(
            ["git", *args],
            cwd=cwd,
            env=_environ(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    except FileNotFoundError as exc:
        raise NotARepository("git cannot be run (no `git` found on PATH)") from exc


def git(
    cwd: Path, *args: str, env: Mapping[str, str] | None = None, input: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run one git command to its end, as every git command of yanex runs (see ``_GIT_ENV``);
    the caller reads its return code. NotARepository when git cannot be run."""
    try:
        return subprocess.run(
            ["git", *args],
            cwd=cwd,
            env=_environ(env),
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
        )
    except FileNotFoundError as exc:
        raise NotARepository("git cannot be run (no `git` found on PATH)") from exc


def _output(proc: subprocess.Popen[bytes], ok: tuple[int, ...] = (0,)) -> str:
    return _output_bytes(proc, ok).decode("utf-8", "replace")  # names for messages, never opened


def _output_bytes(proc: subprocess.Popen[bytes], ok: tuple[int, ...] = (0,)) -> bytes:
    out, err = proc.communicate()
    if proc.returncode not in ok:
        message = err.decode(errors="replace").strip() or f"exit code {proc.returncode}"
        raise GitStateError(f"`git {' '.join(proc.args[1:])}` failed: {message}")
    return out


def _collect(procs: Sequence[subprocess.Popen[bytes]]) -> None:
    """End what is still running of ``procs`` (after an error in another of them)."""
    for proc in procs:
        if proc.returncode is None:
            proc.kill()
            proc.communicate()


# --- the state of a repository ----------------------------------------------------------------


@dataclass
class GitSnapshot:
    """The state of the repository that holds the script (or of one of its submodules)."""

    root: Path
    commit: str | None
    branch: str | None
    remote_url: str | None
    changed_files: list[str] = field(default_factory=list)
    script_untracked: str | None = None  # the script's path in the repo, when git does not track it
    # config files the run reads that git does not track (paths in the repo)
    configs_untracked: list[str] = field(default_factory=list)
    # checked-out submodules by their path in the repo (nested ones inside theirs)
    submodules: dict[str, GitSnapshot] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)  # why a changed path is listed
    _patch: bytes | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def dirty(self) -> bool:
        return (
            bool(self.changed_files)
            or self.script_untracked is not None
            or bool(self.configs_untracked)
            or any(sub.dirty for sub in self.submodules.values())
        )

    @property
    def untracked(self) -> list[str]:
        """Every file of the run that git does not track: the script, then its configs."""
        return [
            *([self.script_untracked] if self.script_untracked else []),
            *self.configs_untracked,
        ]

    def submodule_commits(self) -> dict[str, str | None]:
        """``{path: commit}`` of every checked-out submodule, nested ones by their full path."""
        found: dict[str, str | None] = {}
        for path, sub in sorted(self.submodules.items()):
            found[path] = sub.commit
            found |= {f"{path}/{inner}": c for inner, c in sub.submodule_commits().items()}
        return found

    def to_metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "commit": self.commit,
            "branch": self.branch,
            "dirty": self.dirty,
            "remote_url": self.remote_url,
        }
        if self.submodules:
            meta["submodules"] = self.submodule_commits()
        return meta


def strip_credentials(url: str) -> str:
    """Remove user info that may hold a secret: ``https://user:token@host/x`` -> ``https://host/x``.

    For ssh the user name is kept (``ssh://git@host/x``) but any password is dropped;
    scp-like addresses (``git@host:x``) hold no secret and are kept.
    """
    parts = urlsplit(url)
    if not parts.scheme or "@" not in parts.netloc:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    if parts.scheme in ("ssh", "git+ssh", "ssh+git"):
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}@{hostport}" if user else hostport
    else:
        netloc = hostport
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


# Submodules: a change of their commit or of their tracked files is a change (untracked files
# in them are not, as in the repository itself), whatever `submodule.<name>.ignore` says.
_STATUS = (
    "status",
    "--porcelain=v2",
    "--branch",
    "-z",
    "--untracked-files=no",
    "--ignore-submodules=untracked",
)


def _status(porcelain: str) -> tuple[str | None, str | None, list[str], dict[str, str]]:
    """``(commit, branch, changed paths, notes)`` from ``git status --porcelain=v2 --branch
    -z``; a note says how a submodule changed.

    Ordinary (``1``) and unmerged (``u``) entries end with the path; a rename or copy (``2``)
    ends with the new path and is followed by the old one as an entry of its own.
    """
    commit = branch = None
    paths: list[str] = []
    notes: dict[str, str] = {}
    entries = iter(porcelain.split("\0"))
    for entry in entries:
        if entry.startswith("# branch.oid "):
            oid = entry[len("# branch.oid ") :]
            commit = None if oid == "(initial)" else oid
        elif entry.startswith("# branch.head "):
            head = entry[len("# branch.head ") :]
            branch = None if head == "(detached)" else head
        elif entry[:2] in ("1 ", "u "):
            fields = entry.split(" ", 8 if entry[0] == "1" else 10)
            paths.append(fields[-1])
            if fields[2].startswith("S"):
                notes[fields[-1]] = _submodule_note(fields[2])
        elif entry[:2] == "2 ":
            fields = entry.split(" ", 9)
            paths.append(fields[9])
            next(entries, None)
    return commit, branch, paths, notes


def _submodule_note(sub: str) -> str:
    """``S<c><m><u>`` of a status entry, in words."""
    said = []
    if sub[1:2] == "C":
        said.append("at another commit")
    if sub[2:3] == "M":
        said.append("with uncommitted changes")
    return "a submodule " + (" and ".join(said) or "that changed")


def _remote_url(config: str) -> str | None:
    """origin's URL (else the first remote's) from ``git config -z --get-regexp``."""
    urls: dict[str, str] = {}
    for item in config.split("\0"):
        key, _, value = item.partition("\n")
        if key.startswith("remote.") and key.endswith(".url"):
            urls.setdefault(key[len("remote.") : -len(".url")], value)
    url = urls.get("origin") or next(iter(urls.values()), None)
    return strip_credentials(url) if url else None


def repo_root(path: Path) -> Path | None:
    """The working tree that holds ``path``, or None outside a git repository."""
    try:
        return _root(_start(path, "rev-parse", "--show-toplevel"), path)
    except NotARepository:
        return None


def project_of(cwd: Path) -> Path:
    """The project a command in ``cwd`` serves (its runs, its listings, its staged queue):
    the git repository it is in, else the folder itself."""
    return repo_root(cwd) or cwd.resolve()


def _root(proc: subprocess.Popen[bytes], path: Path) -> Path:
    return _rev_parse(proc, path)[0]


def _rev_parse(proc: subprocess.Popen[bytes], path: Path) -> list[Path]:
    """The paths a ``git rev-parse`` printed, one a line; NotARepository outside one."""
    out, err = proc.communicate()
    if proc.returncode != 0:
        message = err.decode(errors="replace").strip()
        if "not a git repository" in message:
            raise NotARepository(f"{path} is not in a git repository")
        if "must be run in a work tree" in message:
            raise NotARepository(f"{path} is not in a git working tree")
        raise GitStateError(f"git cannot read the repository at {path}: {message}")
    return [Path(os.fsdecode(line)).resolve() for line in out.split(b"\n") if line]


def submodule_paths(gitmodules: str) -> list[str]:
    """The paths ``git config -z --file .gitmodules --get-regexp`` names."""
    return [item.partition("\n")[2] for item in gitmodules.split("\0") if "\n" in item]


def snapshot(
    script: Path, configs: Sequence[Path] = (), reads: Callable[[Path], bool] | None = None
) -> GitSnapshot:
    """Read the state of the repository that holds ``script``; raise NotARepository outside one.

    ``configs`` are the run's config files and folders (a Hydra tree): a file of them that
    git does not track makes the tree dirty, as an untracked script does, when the run
    ``reads`` it (asked only of untracked files found in a folder)."""
    script = script.resolve()
    here = script.parent
    root_proc = _start(here, "rev-parse", "--show-toplevel")
    procs = [
        _start(here, *_STATUS),
        _start(here, "ls-files", "-z", "--", script.name),
        _start(here, "config", "-z", "--get-regexp", r"^remote\..*\.url$"),
    ]
    try:
        root = _root(root_proc, here)
        # Config files outside the repository are not git's (their content is recorded).
        inside = [path for path in (p.resolve() for p in configs) if path.is_relative_to(root)]
        if inside:
            relative = [path.relative_to(root).as_posix() for path in inside]
            procs.append(_start(root, "ls-files", "-z", "--others", "--full-name", "--", *relative))
        commit, branch, changed, notes = _status(_output(procs[0]))
        tracked = _output(procs[1])
        remote_url = _remote_url(_output(procs[2], ok=(0, 1)))  # 1: no remote configured
        others = [path for path in _output(procs[3]).split("\0") if path] if inside else []
    finally:
        _collect(procs)
    given = {path.relative_to(root).as_posix() for path in inside if not path.is_dir()}
    untracked = [
        path
        for path in others
        if path in given
        or (path.endswith((".yaml", ".yml")) and (reads is None or reads(root / path)))
    ]
    rel_script = script.relative_to(root).as_posix()
    return GitSnapshot(
        root=root,
        commit=commit,
        branch=branch,
        remote_url=remote_url,
        changed_files=changed,
        script_untracked=None if tracked else rel_script,
        configs_untracked=untracked,
        submodules=_submodules(root),
        notes=notes,
    )


def _submodules(root: Path) -> dict[str, GitSnapshot]:
    """The state of each checked-out submodule of the repository at ``root`` (nested ones in
    theirs); nothing is read when the repository has no ``.gitmodules``."""
    if not (root / ".gitmodules").is_file():
        return {}
    listed = git(
        root, "config", "-z", "--file", ".gitmodules", "--get-regexp", r"^submodule\..*\.path$"
    )
    found: dict[str, GitSnapshot] = {}
    for path in submodule_paths(listed.stdout.decode("utf-8", "replace")):
        sub_root = root / path
        if not (sub_root / ".git").exists():
            continue  # not checked out: none of its code can run
        proc = _start(sub_root, *_STATUS)
        commit, branch, changed, notes = _status(_output(proc))
        found[path] = GitSnapshot(
            root=sub_root.resolve(),
            commit=commit,
            branch=branch,
            remote_url=None,
            changed_files=changed,
            submodules=_submodules(sub_root),
            notes=notes,
        )
    return found


def _short(commit: str | None) -> str:
    return commit[:12] if commit else "no commit"


@dataclass(frozen=True)
class Recorded:
    """The code a run recorded: its commit, its ``git.patch`` bytes, and its submodules'
    commits (None: not compared)."""

    commit: str | None
    patch: bytes = b""
    submodules: Mapping[str, str | None] | None = None

    @classmethod
    def of(cls, snap: GitSnapshot) -> Recorded:
        return cls(snap.commit, patch(snap) if snap.dirty else b"", snap.submodule_commits())

    @classmethod
    def from_metadata(cls, git_meta: Mapping[str, Any], patch_bytes: bytes) -> Recorded:
        """A record without ``git.submodules`` had none checked out (or predates them: a
        difference is then refused, never let through)."""
        return cls(git_meta.get("commit"), patch_bytes, git_meta.get("submodules") or {})


def changes_since(recorded: Recorded, now: GitSnapshot, when: str) -> str | None:
    """How the code ``now`` differs from ``recorded``, or None when it is the same code.
    ``when`` names the recorded moment for the message: "at staging"."""
    if now.commit != recorded.commit:
        return f"the commit is {_short(now.commit)}, it was {_short(recorded.commit)} {when}"
    if recorded.submodules is not None:
        current = now.submodule_commits()
        for path in sorted(set(recorded.submodules) | set(current)):
            before, after = recorded.submodules.get(path), current.get(path)
            if before != after:
                where = "not checked out" if after is None else f"at {_short(after)}"
                was = "not checked out" if before is None else f"at {_short(before)}"
                return f"submodule {path} is {where}, it was {was} {when}"
    current_patch = patch(now) if now.dirty else b""
    if current_patch == recorded.patch:
        return None
    changed = [*now.changed_files, *now.untracked]
    shown = ", ".join(changed[:3]) + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")
    shown = f": {shown}" if shown else ""
    if recorded.patch:
        return f"the uncommitted changes differ from those recorded {when}{shown}"
    return f"the working tree has uncommitted changes (it was clean {when}){shown}"


def require_clean(snap: GitSnapshot) -> None:
    """Refuse a dirty tree with a message that names what changed and how to go on."""
    if not snap.dirty:
        return
    lines = [
        f"  {path}" + (f" ({snap.notes[path]})" if path in snap.notes else "")
        for path in snap.changed_files[:_SHOWN_FILES]
    ]
    if len(snap.changed_files) > _SHOWN_FILES:
        lines.append(f"  ... and {len(snap.changed_files) - _SHOWN_FILES} more")
    if snap.script_untracked:
        lines.append(f"  {snap.script_untracked} (the script is not tracked by git)")
    lines += [
        f"  {path} (a config file of the run, not tracked by git)"
        for path in snap.configs_untracked
    ]
    raise GitStateError(
        f"the git working tree at {snap.root} has uncommitted changes:\n" + "\n".join(lines),
        hint="Commit them so the run can be reproduced, or pass --ignore-dirty to run anyway "
        "(the changes are saved in the experiment's git.patch; yanex 0.6 ran without asking).",
    )


def patch(snap: GitSnapshot) -> bytes:
    """``git diff HEAD`` plus the untracked script and configs as new files, then a section
    per dirty submodule: commit + submodule commits + patch rebuild the run.

    The same bytes whatever the user's git config, and always applicable with ``git apply``
    at the top of the repository. Made once per snapshot.
    """
    if snap._patch is None:
        try:
            snap._patch = _patch(snap, "")
        except NotARepository as exc:  # git vanished from PATH since the state was read
            raise GitStateError(f"cannot write git.patch: {exc}") from exc
    return snap._patch


def _patch(snap: GitSnapshot, prefix: str) -> bytes:
    """The patch of one repository, its paths under ``prefix`` (a submodule's path)."""
    options = (*_PATCH_OPTIONS, f"--src-prefix=a/{prefix}", f"--dst-prefix=b/{prefix}")
    base = snap.commit or _EMPTY_TREE
    out = b""
    if snap.changed_files:  # a submodule that only moved has no changes of its own
        tracked = _start(
            snap.root,
            *_PATCH_CONFIG,
            "diff-index",
            *options,
            "--ignore-submodules=all",  # their commits are recorded; their changes follow
            base,
        )
        out = _output_bytes(tracked)
    for path in snap.untracked:
        # `git diff --no-index` exits 1 when the files differ, which they always do here.
        untracked = _start(
            snap.root, *_PATCH_CONFIG, "diff", "--no-index", *options, "--", "/dev/null", path
        )
        out += _output_bytes(untracked, ok=(0, 1))
    for path, sub in sorted(snap.submodules.items()):
        if sub.dirty:
            out += _patch(sub, f"{prefix}{path}/")
    return out


# --- the one code check -----------------------------------------------------------------------

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
    proc = _start(
        folder,
        "rev-parse",
        "--path-format=absolute",
        "--show-toplevel",
        "--git-dir",
        "--git-common-dir",
    )
    root, git_dir, common_dir = _rev_parse(proc, folder)[:3]
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


# --- two code states side by side (`yanex diff`) ----------------------------------------------


def recorded_in(folder: Path, git_meta: Mapping[str, Any] | None) -> Recorded | None:
    """The code an experiment folder recorded (None: it ran outside git)."""
    if not git_meta:
        return None
    patch_file = folder / store.GIT_PATCH
    if git_meta.get("patch_file") == "artifacts/git_diff.patch":  # yanex 0.6's (v06store)
        patch_file = folder / "artifacts" / "git_diff.patch"
    before = patch_file.read_bytes() if patch_file.is_file() else b""
    if before and not before.endswith(b"\n"):  # 0.6 cut the last newline git needs
        before += b"\n"
    return Recorded.from_metadata(git_meta, before)


def label(recorded: Recorded | None) -> str:
    """The code a run recorded, in one short cell: its commit, ``+ patch <hash>`` when it has
    uncommitted changes, ``path@commit`` per submodule; two different code states never look
    alike (``compare``'s code column, the dashboard's code row)."""
    if recorded is None:
        return "(not in git)"
    import hashlib  # not on a run's path: OpenSSL's takes a few ms to load

    parts = [_short(recorded.commit)]
    if recorded.patch:
        parts.append(f"+ patch {hashlib.sha256(recorded.patch).hexdigest()[:8]}")
    parts += [f"{path}@{(c or '-')[:8]}" for path, c in sorted((recorded.submodules or {}).items())]
    return " ".join(parts)


def _block_path(header: bytes) -> bytes:
    """The path a ``diff --git a/P b/P`` header names (C-quoted when it holds odd bytes)."""
    rest = header[len(b"diff --git ") :]
    if rest.startswith(b'"'):
        quoted = re.match(rb'"((?:[^"\\]|\\.)*)"', rest)
        return _unquote(quoted[0])[2:] if quoted else b""
    return rest[2 : 2 + (len(rest) - 5) // 2]


def split_patch(patch_bytes: bytes, submodules: Sequence[str]) -> dict[str, bytes]:
    """``git.patch`` by repository: ``""`` for the top, else the submodule's path (the
    longest one that holds the file)."""
    deepest = sorted(submodules, key=len, reverse=True)
    sections: dict[str, bytes] = {}
    starts = [m.start() for m in re.finditer(rb"^diff --git ", patch_bytes, re.M)]
    for begin, end in zip(starts, [*starts[1:], len(patch_bytes)][: len(starts)], strict=True):
        block = patch_bytes[begin:end]
        path = os.fsdecode(_block_path(block.split(b"\n", 1)[0]))
        owner = next((sub for sub in deepest if path.startswith(sub + "/")), "")
        sections[owner] = sections.get(owner, b"") + block
    return sections


def has_commit(repo: Path, commit: str) -> bool:
    return git(repo, "cat-file", "-e", f"{commit}^{{commit}}").returncode == 0


def state_tree(repo: Path, commit: str | None, patch_bytes: bytes, strip: int = 1) -> str:
    """The tree of ``commit`` with ``patch_bytes`` applied, built in a temporary index: neither
    the work tree nor the repository's index is touched (only objects are added)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="yanex-tree-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        done = git(repo, "read-tree", commit or _EMPTY_TREE, env=env)
        if done.returncode != 0:
            raise GitStateError(f"git cannot read {_short(commit)} in {repo}")
        if patch_bytes:
            applied = git(
                repo,
                "apply",
                "--cached",
                "--binary",
                "--whitespace=nowarn",
                f"-p{strip}",
                "-",
                input=patch_bytes,
                env=env,
            )
            if applied.returncode != 0:
                message = applied.stderr.decode(errors="replace").strip()
                raise GitStateError(f"the recorded patch does not apply in {repo}: {message}")
        done = git(repo, "write-tree", env=env)
        if done.returncode != 0:
            raise GitStateError(f"git cannot write a tree in {repo}")
        return done.stdout.decode().strip()


def diff_trees(repo: Path, tree_a: str, tree_b: str, prefix: str = "") -> bytes:
    """``git diff`` of two trees, shaped as ``git.patch`` is (whatever the user's config)."""
    done = git(
        repo,
        *_PATCH_CONFIG,
        "diff-tree",
        "-r",
        *_PATCH_OPTIONS,
        f"--src-prefix=a/{prefix}",
        f"--dst-prefix=b/{prefix}",
        tree_a,
        tree_b,
    )
    if done.returncode != 0:
        raise GitStateError(f"git cannot compare two trees in {repo}")
    return done.stdout


def diff_states(project: Path, a: Recorded, b: Recorded) -> tuple[bytes, list[str]]:
    """The diff between two recorded code states of the repository at ``project`` (each its
    commit plus its patch, submodules at their commits plus their sections), and what could
    not be compared (a commit no longer there)."""
    notes: list[str] = []
    subs_a, subs_b = dict(a.submodules or {}), dict(b.submodules or {})
    paths = sorted(set(subs_a) | set(subs_b))
    parts_a, parts_b = split_patch(a.patch, paths), split_patch(b.patch, paths)
    out = b""
    for path in ["", *paths]:
        repo = project / path if path else project
        commit_a = a.commit if not path else subs_a.get(path)
        commit_b = b.commit if not path else subs_b.get(path)
        own_a, own_b = parts_a.get(path, b""), parts_b.get(path, b"")
        if commit_a == commit_b and own_a == own_b:
            continue
        name = f"submodule {path}" if path else "the repository"
        if path and (commit_a is None or commit_b is None):
            notes.append(f"{name} is checked out in only one of them")
            continue
        if not (repo / ".git").exists():
            notes.append(f"{name} is not checked out at {repo}: its code cannot be compared")
            continue
        gone = [c for c in (commit_a, commit_b) if c and not has_commit(repo, c)]
        if gone:
            notes += [f"commit {c[:12]} of {name} is no longer in {repo}" for c in gone]
            continue
        strip = 1 + (len(Path(path).parts) if path else 0)
        tree_a = state_tree(repo, commit_a, own_a, strip)
        tree_b = state_tree(repo, commit_b, own_b, strip)
        out += diff_trees(repo, tree_a, tree_b, f"{path}/" if path else "")
    return out, notes


# The detect-secrets plugins the scan runs (class names, most specific first: a line is warned
# about once, for the first that finds something), and how a warning names what each finds.
# Left out: high-entropy strings (every checksum, git hash and base64 blob in a string) and
# public IP addresses, which are not secrets.
_SECRET_PLUGINS = {
    "PrivateKeyDetector": "a private key",
    "AWSKeyDetector": "an AWS key",
    "AzureStorageKeyDetector": "an Azure storage key",
    "GitHubTokenDetector": "a GitHub token",
    "GitLabTokenDetector": "a GitLab token",
    "SlackDetector": "a Slack token",
    "OpenAIDetector": "an OpenAI API key",
    "HuggingFaceTokenDetector": "a Hugging Face token",
    "PypiTokenDetector": "a PyPI token",
    "NpmDetector": "an npm token",
    "StripeDetector": "a Stripe key",
    "SendGridDetector": "a SendGrid key",
    "TwilioKeyDetector": "a Twilio key",
    "MailchimpDetector": "a Mailchimp key",
    "DiscordBotTokenDetector": "a Discord bot token",
    "TelegramBotTokenDetector": "a Telegram bot token",
    "SquareOAuthDetector": "a Square OAuth secret",
    "ArtifactoryDetector": "Artifactory credentials",
    "CloudantDetector": "Cloudant credentials",
    "IbmCloudIamDetector": "an IBM Cloud key",
    "IbmCosHmacDetector": "IBM COS credentials",
    "SoftlayerDetector": "SoftLayer credentials",
    "JwtTokenDetector": "a JSON web token",
    "BasicAuthDetector": "a password in a URL",
    "KeywordDetector": "a password, token or key",
    "SecretAssignmentDetector": "a password, token or key",
}
_NOT_A_SECRET = r"(?:true|false|yes|no|on|off|null|none)"
_PLUGIN_OPTIONS = {
    # `use_secret: false` names a secret but holds none
    "KeywordDetector": {"keyword_exclude": rf"[:=]\s*[\"']?{_NOT_A_SECRET}[\"']?\s*(?:#.*)?$"},
}
_SECRET_SETTINGS = {
    "plugins_used": [{"name": name, **_PLUGIN_OPTIONS.get(name, {})} for name in _SECRET_PLUGINS],
}


@functools.cache
def _yanex_detectors() -> tuple[type, ...]:
    """yanex's own detect-secrets plugins, for common forms no built-in one catches."""
    from detect_secrets.plugins.base import RegexBasedDetector
    from detect_secrets.util.filetype import FileType, determine_file_type

    class HuggingFaceTokenDetector(RegexBasedDetector):
        """Hugging Face access tokens: ``hf_`` and 34 letters."""

        secret_type = "Hugging Face Token"
        denylist = (re.compile(r"\bhf_[A-Za-z]{34}\b"),)

    class SecretAssignmentDetector(RegexBasedDetector):
        """``NAME=value`` in .env files, shell scripts and credentials files, whose values go
        unquoted: for a file of no known syntax, KeywordDetector only reads quoted values."""

        secret_type = "Secret Assignment"
        denylist = (
            re.compile(
                r"^\s*(?:export\s+)?[\w.-]*"
                r"(?:api_?key|access_?key|secret_?key|private_?key|secret|token|passw(?:or)?d)"
                rf"\s*=\s*(?!{_NOT_A_SECRET}\b)"
                r"(?:\"([^\"\s]+)\"|'([^'\s]+)'|([\w\-./+=:@~%!?*^&]+))\s*(?:#.*)?$",
                re.IGNORECASE,
            ),
        )

        def analyze_line(
            self, filename: str, line: str, line_number: int = 0, **kwargs: Any
        ) -> set[Any]:
            if determine_file_type(filename) is not FileType.OTHER:
                return set()  # code and config files: KeywordDetector knows their syntax
            return super().analyze_line(filename, line, line_number, **kwargs)

    return HuggingFaceTokenDetector, SecretAssignmentDetector


_HUNK = re.compile(rb"@@ -\d+(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_C_ESCAPES = {b"a": 7, b"b": 8, b"t": 9, b"n": 10, b"v": 11, b"f": 12, b"r": 13}


def _unquote(name: bytes) -> bytes:
    """A path as a diff header writes it: in C quotes when it holds unusual bytes (``\\303``)."""
    if not (len(name) > 1 and name.startswith(b'"') and name.endswith(b'"')):
        return name

    def byte(escape: re.Match[bytes]) -> bytes:
        code = escape[1]
        return bytes([int(code, 8) if len(code) == 3 else _C_ESCAPES.get(code, code[0])])

    return re.sub(rb"\\([0-7]{3}|.)", byte, name[1:-1])


def _added_lines(patch: bytes) -> dict[str, list[tuple[int, str]]]:
    """The lines each file of ``patch`` gains, with their numbers in the new file.

    A hunk is read by its line counts, so an added line ``++ x`` (``+++ x`` in the patch) is
    never taken for the next file's header.
    """
    added: dict[str, list[tuple[int, str]]] = {}
    path: str | None = None
    lines = iter(patch.split(b"\n"))
    for raw in lines:
        if raw.startswith(b"+++ "):
            # git ends a name that holds a space with a tab, for patch(1)
            name = _unquote(raw[4:].removesuffix(b"\t"))
            path = None if name == b"/dev/null" else name[2:].decode("utf-8", "replace")
            continue
        hunk = _HUNK.match(raw)
        if hunk is None:
            continue
        old, number, new = int(hunk[1] or 1), int(hunk[2]), int(hunk[3] or 1)
        while old > 0 or new > 0:
            body = next(lines, None)
            if body is None:
                break
            if body.startswith(b"+"):
                if path is not None:
                    added.setdefault(path, []).append((number, body[1:].decode("utf-8", "replace")))
                number, new = number + 1, new - 1
            elif body.startswith(b"-"):
                old -= 1
            elif not body.startswith(b"\\"):  # not "\ No newline at end of file": context
                number, old, new = number + 1, old - 1, new - 1
    return added


def find_secrets(patch: bytes) -> list[tuple[str, int, str]]:
    """``(file, line, what)`` for each added line of ``patch`` that looks like a secret.

    The scan is detect-secrets' (plugins, then its filters of likely false positives) with
    the plugins of ``_SECRET_PLUGINS``; it is imported here, as only a dirty run needs it.
    """
    added = _added_lines(patch)
    if not added:
        return []
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
    from detect_secrets.core.scan import _process_line_based_plugins
    from detect_secrets.settings import get_plugins, transient_settings

    # Registered as detect-secrets registers a plugin file's classes, for this scan only: a
    # program that launched this run in its own process may use detect-secrets too.
    plugins = get_mapping_from_secret_type_to_class()
    for detector in _yanex_detectors():
        plugins[detector.secret_type] = detector
    found: dict[tuple[str, int], str] = {}
    try:
        with transient_settings(_SECRET_SETTINGS):
            names = {p.secret_type: _SECRET_PLUGINS[type(p).__name__] for p in get_plugins()}
            for path, lines in added.items():
                # The line scan detect-secrets' scan_file and scan_diff share; scan_diff
                # itself needs unidiff, which cannot read every patch git writes.
                for secret in _process_line_based_plugins(lines, filename=path):
                    found.setdefault((path, secret.line_number), names[secret.type])
    finally:
        for detector in _yanex_detectors():
            del plugins[detector.secret_type]
    return [(path, line, what) for (path, line), what in found.items()]
