"""``yanex rerun``: a recorded experiment run again, as a new experiment.

The rerun starts from the recorded parameters (``params.json``: exactly what the original ran
with), with new ``--param`` values on top, the same script, script arguments and working
folder, and ``rerun_of`` in its metadata. On today's code by default; with ``--worktree`` on
the recorded code: its commit checked out in a temporary git worktree with its ``git.patch``
applied, so a run from fifty commits ago runs exactly as it did.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yanex import code, groups, params, record, store
from yanex.errors import GitStateError, YanexError
from yanex.launcher import RunRequest


class RerunError(YanexError):
    """The recorded experiment cannot be run again as asked."""


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


def prepare(
    original: record.Record,
    *,
    param_texts: Sequence[str] = (),
    name: str | None = None,
    tags: Sequence[str] = (),
    stage: bool = False,
    ignore_dirty: bool = False,
) -> Rerun:
    """The request that runs ``original`` again with ``param_texts`` on top."""
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
    picks_option = config_dir is not None and any(
        groups.is_group(config_dir, _override_key(text)) for text in param_texts
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
        name=name if name is not None else meta.get("name"),
        description=meta.get("description"),
        tags=list(dict.fromkeys([*(meta.get("tags") or []), *tags])),
        ignore_dirty=ignore_dirty,
        stage=stage,
        cwd=cwd,
        # A rerun is defined by its record: the caller's YANEX_PARAM_* do not apply.
        environ={k: v for k, v in os.environ.items() if not k.startswith(params.ENV_PREFIX)},
        carried=carried,
    )
    if picks_option:
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
    git = meta.get("git") or {}
    return Rerun(request=request, original=original, commit=git.get("commit"))


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


def _git(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = code.git(cwd, *args)
    return subprocess.CompletedProcess(
        done.args,
        done.returncode,
        done.stdout.decode(errors="replace"),
        done.stderr.decode(errors="replace"),
    )


@contextlib.contextmanager
def worktree(rerun: Rerun) -> Iterator[None]:
    """Check out the recorded code in a temporary worktree (commit + ``git.patch``) and point
    the request's script there for as long as the block runs; removed afterwards.

    The working folder stays the recorded one, so data paths resolve as they did.
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
    found = _git(project, "cat-file", "-e", f"{rerun.commit}^{{commit}}")
    if found.returncode != 0:
        raise RerunError(
            f"commit {rerun.commit[:12]} of experiment {original.id} is no longer in {project}",
            hint="Fetch it (or the branch that holds it) into the repository, then try again.",
        )
    try:
        script_in_repo = Path(meta["script"]).relative_to(project)
    except ValueError as exc:
        raise RerunError(f"the script {meta['script']} is not inside {project}") from exc
    holder = Path(tempfile.mkdtemp(prefix=f"yanex-rerun-{original.id}-"))
    code = holder / "code"
    try:
        added = _git(project, "worktree", "add", "--detach", str(code), rerun.commit)
        if added.returncode != 0:
            raise GitStateError(f"git cannot check out {rerun.commit[:12]}: {added.stderr.strip()}")
        patch = original.dir / store.GIT_PATCH
        if patch.is_file() and patch.stat().st_size:
            applied = _git(code, "apply", "--binary", "--whitespace=nowarn", str(patch))
            if applied.returncode != 0:
                raise RerunError(
                    f"the recorded git.patch of experiment {original.id} does not apply to "
                    f"{rerun.commit[:12]}: {applied.stderr.strip()}"
                )
        request = rerun.request
        request.script = code / script_in_repo
        request.ignore_dirty = True  # the worktree holds exactly the recorded changes
        request.carried["project"] = str(project)
        request.carried["worktree"] = {"commit": rerun.commit, "patch": patch.is_file()}
        yield
    finally:
        _git(project, "worktree", "remove", "--force", str(code))
        shutil.rmtree(holder, ignore_errors=True)
        _git(project, "worktree", "prune")
