"""Two recorded code states side by side, for ``yanex diff``; and the short label of one state
that ``compare``'s code column and the dashboard's code row show.

Each state is rebuilt as a tree in a temporary index (its commit plus its ``git.patch``, each
submodule at its commit plus its section of the patch) and git compares the trees, shaped as
``git.patch`` is: neither the work tree nor the repository's index is touched.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from yanex import store
from yanex.code.git import EMPTY_TREE, PATCH_CONFIG, PATCH_OPTIONS, git, unquote
from yanex.code.state import Recorded, has_commit, short_commit
from yanex.errors import GitStateError


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

    parts = [short_commit(recorded.commit)]
    if recorded.patch:
        parts.append(f"+ patch {hashlib.sha256(recorded.patch).hexdigest()[:8]}")
    parts += [f"{path}@{(c or '-')[:8]}" for path, c in sorted((recorded.submodules or {}).items())]
    return " ".join(parts)


def _block_path(header: bytes) -> bytes:
    """The path a ``diff --git a/P b/P`` header names (C-quoted when it holds odd bytes)."""
    rest = header[len(b"diff --git ") :]
    if rest.startswith(b'"'):
        quoted = re.match(rb'"((?:[^"\\]|\\.)*)"', rest)
        return unquote(quoted[0])[2:] if quoted else b""
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


def state_tree(repo: Path, commit: str | None, patch_bytes: bytes, strip: int = 1) -> str:
    """The tree of ``commit`` with ``patch_bytes`` applied, built in a temporary index: neither
    the work tree nor the repository's index is touched (only objects are added)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="yanex-tree-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        done = git(repo, "read-tree", commit or EMPTY_TREE, env=env)
        if done.returncode != 0:
            raise GitStateError(f"git cannot read {short_commit(commit)} in {repo}")
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
        *PATCH_CONFIG,
        "diff-tree",
        "-r",
        *PATCH_OPTIONS,
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
