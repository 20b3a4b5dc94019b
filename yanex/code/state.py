"""The state of the repository that holds a run's script: commit, branch, dirty, remote,
submodules (``snapshot``), and ``git.patch``, the uncommitted changes that rebuild it.

A dirty tree (modified or staged tracked files, a submodule with changes or at another
commit, or an untracked script) is refused unless the user says otherwise (``require_clean``):
a run must be rebuildable from the commit, or (with ``--ignore-dirty``) the commit plus
``git.patch``.

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
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from yanex.code.git import (
    EMPTY_TREE,
    PATCH_CONFIG,
    PATCH_OPTIONS,
    NotARepository,
    collect,
    git,
    output,
    output_bytes,
    rev_parse,
    start,
)
from yanex.errors import GitStateError

_SHOWN_FILES = 10


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
        return _root(start(path, "rev-parse", "--show-toplevel"), path)
    except NotARepository:
        return None


def project_of(cwd: Path) -> Path:
    """The project a command in ``cwd`` serves (its runs, its listings, its staged queue):
    the git repository it is in, else the folder itself."""
    return repo_root(cwd) or cwd.resolve()


def _root(proc: subprocess.Popen[bytes], path: Path) -> Path:
    return rev_parse(proc, path)[0]


def has_commit(repo: Path, commit: str) -> bool:
    return git(repo, "cat-file", "-e", f"{commit}^{{commit}}").returncode == 0


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
    root_proc = start(here, "rev-parse", "--show-toplevel")
    procs = [
        start(here, *_STATUS),
        start(here, "ls-files", "-z", "--", script.name),
        start(here, "config", "-z", "--get-regexp", r"^remote\..*\.url$"),
    ]
    try:
        root = _root(root_proc, here)
        # Config files outside the repository are not git's (their content is recorded).
        inside = [path for path in (p.resolve() for p in configs) if path.is_relative_to(root)]
        if inside:
            relative = [path.relative_to(root).as_posix() for path in inside]
            procs.append(start(root, "ls-files", "-z", "--others", "--full-name", "--", *relative))
        commit, branch, changed, notes = _status(output(procs[0]))
        tracked = output(procs[1])
        remote_url = _remote_url(output(procs[2], ok=(0, 1)))  # 1: no remote configured
        others = [path for path in output(procs[3]).split("\0") if path] if inside else []
    finally:
        collect(procs)
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
        proc = start(sub_root, *_STATUS)
        commit, branch, changed, notes = _status(output(proc))
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


def short_commit(commit: str | None) -> str:
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
        now_at, was_at = short_commit(now.commit), short_commit(recorded.commit)
        return f"the commit is {now_at}, it was {was_at} {when}"
    if recorded.submodules is not None:
        current = now.submodule_commits()
        for path in sorted(set(recorded.submodules) | set(current)):
            before, after = recorded.submodules.get(path), current.get(path)
            if before != after:
                where = "not checked out" if after is None else f"at {short_commit(after)}"
                was = "not checked out" if before is None else f"at {short_commit(before)}"
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
    options = (*PATCH_OPTIONS, f"--src-prefix=a/{prefix}", f"--dst-prefix=b/{prefix}")
    base = snap.commit or EMPTY_TREE
    out = b""
    if snap.changed_files:  # a submodule that only moved has no changes of its own
        tracked = start(
            snap.root,
            *PATCH_CONFIG,
            "diff-index",
            *options,
            "--ignore-submodules=all",  # their commits are recorded; their changes follow
            base,
        )
        out = output_bytes(tracked)
    for path in snap.untracked:
        # `git diff --no-index` exits 1 when the files differ, which they always do here.
        untracked = start(
            snap.root, *PATCH_CONFIG, "diff", "--no-index", *options, "--", "/dev/null", path
        )
        out += output_bytes(untracked, ok=(0, 1))
    for path, sub in sorted(snap.submodules.items()):
        if sub.dirty:
            out += _patch(sub, f"{prefix}{path}/")
    return out
