"""``yanex rerun``: a recorded experiment run again, as a new experiment.

The rerun starts from the recorded parameters (``params.json``: exactly what the original ran
with), with new ``--param`` values on top, the same script, script arguments and working
folder, and ``rerun_of`` in its metadata. It gets a name of its own (``NAME-rerun-N``), so a
name keeps meaning one experiment. On today's code by default; with ``--worktree`` on the
recorded code: its commit checked out in a temporary git worktree, its submodules at their
recorded commits (cloned from the repository's own copies, offline), its ``git.patch``
applied; and the worktree comes first for everything the script imports from the repository
(see ``yanex.worktree_site``). Either way the rerun records the original's script path and
the code it really ran.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yanex import record, store
from yanex.code.diff import recorded_in
from yanex.code.git import git
from yanex.code.state import GitSnapshot, changes_since, has_commit, submodule_paths
from yanex.config import overrides, pipeline, sources
from yanex.errors import GitStateError, RerunError
from yanex.launcher import RunRequest


@dataclass
class Rerun:
    """What a rerun needs beyond its request: the recorded code to build, when asked."""

    request: RunRequest
    original: record.Record
    commit: str | None  # the recorded commit (None outside git)


def _override_key(text: str) -> str:
    """``+optimizer@second=sgd`` -> ``optimizer``: the group or key an override names."""
    key = text.split("=", 1)[0].strip().lstrip("+~")
    return key.split("@", 1)[0]


_RERUN_SUFFIX = re.compile(r"-rerun-[0-9]+$")


def rerun_name(name: str | None, taken: Callable[[str], bool]) -> str | None:
    """``best`` -> ``best-rerun-1``, or the first ``-rerun-N`` no experiment has; a rerun of
    a rerun counts on from the same base (``best-rerun-1`` -> ``best-rerun-2``). An unnamed
    original gives an unnamed rerun."""
    if not name:
        return None
    base = _RERUN_SUFFIX.sub("", name)
    number = 1
    while taken(f"{base}-rerun-{number}"):
        number += 1
    return f"{base}-rerun-{number}"


def prepare(
    original: record.Record,
    *,
    param_texts: Sequence[str] = (),
    name: str | None = None,
    tags: Sequence[str] = (),
    stage: bool = False,
    ignore_dirty: bool = False,
    taken: Callable[[str], bool] = lambda name: False,
) -> Rerun:
    """The request that runs ``original`` again with ``param_texts`` on top; named ``name``,
    else after the original (``taken`` tells a name already in use)."""
    meta = original.metadata
    if not meta:
        raise RerunError(f"experiment {original.id} cannot be read from {original.dir}")
    cwd = Path(meta["cwd"])
    if not cwd.is_dir():
        raise RerunError(
            f"experiment {original.id} ran in {cwd}, which no longer exists",
            hint="Recreate the folder, or run the script anew with `yanex run`.",
        )
    recorded = record.read_params(original.dir)
    hydra = meta.get("hydra")
    config_dir = Path(hydra["config_dir"]) if hydra and hydra.get("config_dir") else None
    ran_in = (meta.get("worktree") or {}).get("path")  # a worktree rerun's tree, now removed
    if config_dir is not None and ran_in and config_dir.is_relative_to(ran_in):
        config_dir = Path(meta["project"]) / config_dir.relative_to(ran_in)
    picks_option = config_dir is not None and any(
        sources.is_group(config_dir, _override_key(text)) for text in param_texts
    )
    carried: dict[str, Any] = {
        "rerun_of": original.id,
        "config_file": meta.get("config_file"),
        "hydra": hydra,
    }
    prior = [str(text) for text in meta.get("overrides") or []]
    request = RunRequest(
        script=Path(meta["script"]),
        script_args=[str(arg) for arg in meta.get("args") or []],
        name=name if name is not None else rerun_name(meta.get("name"), taken),
        description=meta.get("description"),
        tags=list(dict.fromkeys([*(meta.get("tags") or []), *tags])),
        ignore_dirty=ignore_dirty,
        stage=stage,
        # The same experiments as dependencies (checked again: completed, or staged for a
        # staged rerun).
        depends_on=[f"{slot}={eid}" for slot, eid in (meta.get("dependencies") or {}).items()],
        cwd=cwd,
        # A rerun is defined by its record: the caller's YANEX_PARAM_* do not apply.
        environ={k: v for k, v in os.environ.items() if not k.startswith(overrides.ENV_PREFIX)},
        carried=carried,
    )
    if hydra and hydra.get("app"):
        # A @hydra.main app composes its own config: its tree again (the worktree's, with
        # --worktree) with the recorded overrides, given back exactly the recorded values
        # whatever the tree holds today; a new option of a group composes the tree anew.
        request.config_dir = config_dir
        request.config_name = hydra.get("config_name")
        request.params = list(param_texts)
        choices = hydra.get("choices") or {}
        request.replay = pipeline.Replay(recorded, prior, choices, original.id)
        carried["hydra"] = None  # the composition records its own
    elif picks_option:
        # Another option of a config group: compose the tree again, as recorded plus the new.
        assert hydra is not None and config_dir is not None
        request.config_dir = config_dir
        request.config_name = hydra.get("config_name")
        request.params = [*prior, *param_texts]
        carried["hydra"] = None  # the composition records its own
    else:
        request.base_config = escape_interpolations(recorded)
        request.base_overrides = prior
        request.params = list(param_texts)
    git_meta = meta.get("git") or {}
    return Rerun(request=request, original=original, commit=git_meta.get("commit"))


def code_change(original: record.Record, now: GitSnapshot) -> str | None:
    """How the code ``now`` differs from the code ``original`` recorded, or None."""
    recorded = recorded_in(original.dir, original.metadata.get("git"))
    return None if recorded is None else changes_since(recorded, now, "then")


def escape_interpolations(node: Any) -> Any:
    """Recorded values are final: a string holding ``${...}`` stays that text (OmegaConf would
    read it as an interpolation)."""
    if isinstance(node, dict):
        return {key: escape_interpolations(value) for key, value in node.items()}
    if isinstance(node, list):
        return [escape_interpolations(value) for value in node]
    if isinstance(node, str) and "${" in node:
        return node.replace("${", "\\${")
    return node


def _git(cwd: Path, *args: str) -> str:
    """Run one git command that must succeed for the worktree; its output."""
    done = git(cwd, *args)
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip()
        raise GitStateError(f"`git {' '.join(args)}` failed in {cwd}: {message}")
    return done.stdout.decode(errors="replace")


@contextlib.contextmanager
def worktree(rerun: Rerun) -> Iterator[None]:
    """Check out the recorded code in a temporary worktree (commit, submodules, ``git.patch``)
    and point the request there for as long as the block runs; removed afterwards.

    The working folder stays the recorded one, so data paths resolve as they did; the record
    keeps the original's script path (the worktree is gone afterwards) and says ``worktree``.
    """
    original, meta = rerun.original, rerun.original.metadata
    if rerun.commit is None:
        raise RerunError(
            f"experiment {original.id} recorded no git commit, so its code cannot be rebuilt",
            hint="Rerun it on today's code (without --worktree).",
        )
    project = Path(meta.get("project") or "")
    if not (project / ".git").exists():
        raise RerunError(f"the repository {project} of experiment {original.id} is gone")
    if not has_commit(project, rerun.commit):
        raise RerunError(
            f"commit {rerun.commit[:12]} of experiment {original.id} is no longer in {project}",
            hint="Fetch it (or the branch that holds it) into the repository, then try again.",
        )
    try:
        script_in_repo = Path(meta["script"]).relative_to(project)
    except ValueError as exc:
        raise RerunError(f"the script {meta['script']} is not inside {project}") from exc
    holder = Path(tempfile.mkdtemp(prefix=f"yanex-rerun-{original.id}-"))
    tree = holder / "code"
    try:
        added = git(project, "worktree", "add", "--detach", str(tree), rerun.commit)
        if added.returncode != 0:
            message = added.stderr.decode(errors="replace").strip()
            raise GitStateError(f"git cannot check out {rerun.commit[:12]}: {message}")
        git_meta = meta.get("git") or {}
        _check_out_submodules(original, project, tree, git_meta.get("submodules"))
        patch = original.output_file(store.GIT_PATCH)
        if patch.is_file() and patch.stat().st_size:
            applied = git(tree, "apply", "--binary", "--whitespace=nowarn", str(patch))
            if applied.returncode != 0:
                raise RerunError(
                    f"the recorded git.patch of experiment {original.id} does not apply to "
                    f"{rerun.commit[:12]}: {applied.stderr.decode(errors='replace').strip()}"
                )
        request = rerun.request
        request.script = tree / script_in_repo
        request.ignore_dirty = True  # the worktree holds exactly the recorded changes
        if request.config_dir is not None and request.config_dir.is_relative_to(project):
            request.config_dir = tree / request.config_dir.relative_to(project)
        request.environ = child_environ(request.environ, project, tree, holder / "site")
        request.carried["project"] = str(project)
        request.carried["script"] = str(meta["script"])  # the worktree's copy is removed
        request.carried["worktree"] = {
            "commit": rerun.commit,
            "patch": patch.is_file(),
            "path": str(tree),  # where it ran (removed): paths recorded under it are the project's
        }
        yield
    finally:
        # `git worktree remove` refuses a worktree with submodules: remove it, then prune.
        shutil.rmtree(holder, ignore_errors=True)
        git(project, "worktree", "prune")


def _check_out_submodules(
    original: record.Record, project: Path, tree: Path, recorded: Mapping[str, str] | None
) -> None:
    """Each submodule the original ran with, at its recorded commit, cloned from the copy the
    project's own checkout of it holds (no network). A record made before submodules were
    recorded gets the submodules the project has checked out, at the worktree's commits."""
    if recorded is None:
        listed = git(
            tree, "config", "-z", "--file", ".gitmodules", "--get-regexp", r"^submodule\..*\.path$"
        )
        paths = submodule_paths(listed.stdout.decode("utf-8", "replace"))
        wanted: dict[str, str | None] = {
            path: None for path in paths if (project / path / ".git").exists()
        }
    else:
        wanted = dict(recorded)
    for path in sorted(wanted, key=lambda p: p.count("/")):  # a submodule before those in it
        parent = max((p for p in wanted if path.startswith(p + "/")), key=len, default="")
        inner = path[len(parent) + 1 :] if parent else path
        live = project / path
        if not (live / ".git").exists():
            raise RerunError(
                f"submodule {path} of experiment {original.id} is not checked out in {project}, "
                "so its recorded commit cannot be had",
                hint=f"Run `git submodule update --init {path}` there, then try again.",
            )
        source = _git(live, "rev-parse", "--absolute-git-dir").strip()
        where = tree / parent if parent else tree
        names = git(
            where, "config", "-z", "--file", ".gitmodules", "--get-regexp", r"^submodule\..*\.path$"
        ).stdout.decode("utf-8", "replace")
        name = next(
            (
                key[len("submodule.") : -len(".path")]
                for key, _, value in (item.partition("\n") for item in names.split("\0"))
                if value == inner
            ),
            inner,
        )
        _git(
            where,
            "-c",
            "protocol.file.allow=always",
            "-c",
            f"submodule.{name}.url={source}",
            "submodule",
            "update",
            "--init",
            "--",
            inner,
        )
        commit = wanted[path]
        if commit is not None:
            if not has_commit(tree / path, commit):
                raise RerunError(
                    f"commit {commit[:12]} of submodule {path} (experiment {original.id}) is "
                    f"no longer in {live}",
                    hint="Fetch it into the submodule, then try again.",
                )
            _git(tree / path, "checkout", "-q", "--detach", commit)


def child_environ(
    environ: Mapping[str, str], project: Path, tree: Path, site: Path
) -> dict[str, str]:
    """The script's environment for a worktree rerun: ``PYTHONPATH`` entries inside the
    project mapped into the worktree, after a folder whose ``sitecustomize`` maps what
    ``.pth`` files add (editable installs) and reports imports from the live repository."""
    site.mkdir(parents=True)
    source = Path(__file__).with_name("worktree_site.py")
    shutil.copyfile(source, site / "sitecustomize.py")
    live = os.path.realpath(project)
    entries = []
    for entry in (environ.get("PYTHONPATH") or "").split(os.pathsep):
        # a relative entry is the script's working folder's: the child maps it (sys.path)
        real = os.path.realpath(entry) if os.path.isabs(entry) else ""
        if real == live or real.startswith(live + os.sep):
            entry = str(tree) + real[len(live) :]
        if entry:
            entries.append(entry)
    env = dict(environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site), *entries])
    env["YANEX_WORKTREE"] = json.dumps({"live": str(project), "code": str(tree)})
    return env
