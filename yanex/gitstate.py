"""The git state a run starts from: commit, branch, dirty, remote, and the patch of changes.

A run must be rebuildable from what it records: a clean commit, or (with ``--ignore-dirty``)
the commit plus ``git.patch``. So a dirty tree (modified or staged tracked files, or an
untracked script) is refused unless the user says otherwise. GitPython is imported only here,
when a run starts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from yanex.errors import GitStateError

if TYPE_CHECKING:
    import git

# Git's empty tree: what a repository without commits is compared against.
_EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
_SHOWN_FILES = 10


@dataclass
class GitSnapshot:
    """The state of the repository that holds the script."""

    root: Path
    commit: str | None
    branch: str | None
    remote_url: str | None
    changed_files: list[str] = field(default_factory=list)
    script_untracked: str | None = None  # the script's path in the repo, when git does not track it
    repo: git.Repo | None = field(default=None, repr=False, compare=False)

    @property
    def dirty(self) -> bool:
        return bool(self.changed_files) or self.script_untracked is not None

    def to_metadata(self) -> dict[str, Any]:
        return {
            "commit": self.commit,
            "branch": self.branch,
            "dirty": self.dirty,
            "remote_url": self.remote_url,
        }


class NotARepository(Exception):
    """The script is not in a git repository (or git cannot be run); carries the reason."""


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


def _status_paths(porcelain: str) -> list[str]:
    """Paths from ``git status --porcelain -z``, skipping a rename's second entry (its old path)."""
    paths: list[str] = []
    entries = iter(porcelain.split("\0"))
    for entry in entries:
        if len(entry) < 4:
            continue
        paths.append(entry[3:])
        if entry[0] in "RC":
            next(entries, None)
    return paths


def snapshot(script: Path) -> GitSnapshot:
    """Read the state of the repository that holds ``script``; raise NotARepository outside one."""
    try:
        import git
    except ImportError as exc:  # GitPython raises ImportError when no git executable is found
        raise NotARepository(f"git cannot be run ({str(exc).splitlines()[0]})") from exc

    script = script.resolve()
    try:
        repo = git.Repo(script.parent, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError) as exc:
        raise NotARepository(f"{script.parent} is not in a git repository") from exc
    if repo.bare or repo.working_tree_dir is None:
        raise NotARepository(f"{script.parent} is in a bare git repository")
    root = Path(repo.working_tree_dir).resolve()

    try:
        commit = repo.head.commit.hexsha if repo.head.is_valid() else None
        try:
            branch: str | None = repo.active_branch.name
        except TypeError:  # detached HEAD
            branch = None
        remote_url = None
        if repo.remotes:
            names = [r.name for r in repo.remotes]
            remote = repo.remotes["origin"] if "origin" in names else repo.remotes[0]
            urls = list(remote.urls)
            remote_url = strip_credentials(urls[0]) if urls else None
        changed = _status_paths(repo.git.status("--porcelain", "-z", "--untracked-files=no"))
        rel_script = script.relative_to(root).as_posix()
        tracked = repo.git.ls_files("--", rel_script)
    except git.GitCommandError as exc:
        raise GitStateError(f"git failed in {root}: {exc.stderr.strip() or exc}") from exc

    return GitSnapshot(
        root=root,
        commit=commit,
        branch=branch,
        remote_url=remote_url,
        changed_files=changed,
        script_untracked=None if tracked else rel_script,
        repo=repo,
    )


def repo_root(path: Path) -> Path | None:
    """The working tree that holds ``path``, or None outside a git repository."""
    try:
        import git
    except ImportError:
        return None
    try:
        repo = git.Repo(path, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return None
    return Path(repo.working_tree_dir).resolve() if repo.working_tree_dir else None


def require_clean(snap: GitSnapshot) -> None:
    """Refuse a dirty tree with a message that names what changed and how to go on."""
    if not snap.dirty:
        return
    lines = [f"  {path}" for path in snap.changed_files[:_SHOWN_FILES]]
    if len(snap.changed_files) > _SHOWN_FILES:
        lines.append(f"  ... and {len(snap.changed_files) - _SHOWN_FILES} more")
    if snap.script_untracked:
        lines.append(f"  {snap.script_untracked} (the script is not tracked by git)")
    raise GitStateError(
        f"the git working tree at {snap.root} has uncommitted changes:\n" + "\n".join(lines),
        hint="Commit them so the run can be reproduced, or pass --ignore-dirty to run anyway "
        "(the changes are saved in the experiment's git.patch).",
    )


def patch(snap: GitSnapshot) -> bytes:
    """``git diff HEAD`` plus the untracked script as a new file: commit + patch rebuild the run."""
    assert snap.repo is not None
    git_cmd = snap.repo.git
    base = snap.commit or _EMPTY_TREE
    out: bytes = git_cmd.diff(
        base, "--binary", stdout_as_string=False, strip_newline_in_stdout=False
    )
    if snap.script_untracked:
        # `git diff --no-index` exits 1 when the files differ, which they always do here.
        out += git_cmd.diff(
            "--no-index",
            "--binary",
            "--",
            "/dev/null",
            snap.script_untracked,
            with_exceptions=False,
            stdout_as_string=False,
            strip_newline_in_stdout=False,
        )
    return out


# Likely secrets in uncommitted changes, which git.patch would keep: (what, pattern).
_SECRETS = [
    ("a private key", re.compile(rb"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----")),
    ("an AWS access key", re.compile(rb"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("a GitHub token", re.compile(rb"\bgh[pousr]_[A-Za-z0-9]{36,}")),
    ("a GitLab token", re.compile(rb"\bglpat-[A-Za-z0-9_\-]{20,}")),
    ("a Slack token", re.compile(rb"\bxox[abposr]-[A-Za-z0-9\-]{10,}")),
    (
        "a password or API key",
        re.compile(
            rb"(?i)(?:api[_-]?key|secret|token|passw(?:or)?d)[\"']?\s*[:=]\s*[\"'][^\"'\s]{8,}[\"']"
        ),
    ),
]


def find_secrets(patch: bytes) -> list[tuple[str, int, str]]:
    """``(file, line, what)`` for each added line of ``patch`` that looks like a secret."""
    found = []
    path, line_no = "?", 0
    for raw in patch.split(b"\n"):
        if raw.startswith(b"+++ "):
            name = raw[4:].decode("utf-8", "replace")
            path = name[2:] if name.startswith("b/") else name
        elif raw.startswith(b"@@"):
            start = re.search(rb"\+(\d+)", raw)
            line_no = int(start.group(1)) - 1 if start else 0
        elif raw.startswith(b"+"):
            line_no += 1
            for what, pattern in _SECRETS:
                if pattern.search(raw):
                    found.append((path, line_no, what))
                    break
        elif raw.startswith(b" "):
            line_no += 1
    return found
