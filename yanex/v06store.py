"""yanex 0.6's experiment folders, read as ours: what their files hold, in our terms.

yanex 0.6 kept its experiments where yanex keeps them (``~/.yanex/experiments/<id>/``), in
files of its own: ``metadata.json`` with its own fields (``script_path``, ``completed_at``,
``error_message``, ``git.commit_hash``, ...), ``params.yaml`` (``config.yaml`` before 0.6.0),
``metrics.json`` (a JSON list it rewrote whole at every log; ``results.json`` before 0.3),
``artifacts/stdout.txt`` and ``stderr.txt``, ``artifacts/git_diff.patch`` and
``dependencies.json``. The readers (``record``, and through it the index, ``show``, the
dashboard and ``yanex.results``) ask this module what such a folder holds: the metadata,
parameters and results lines ``yanex migrate`` (``yanex.migrate``) then writes, so an
experiment reads the same before and after it is migrated. Nothing here reads or writes a
file: ``record`` reads them (with its checks: a FIFO is never read from) and hands their bytes
here.

Times: 0.6 wrote ``datetime.utcnow().isoformat()``, a UTC time without its zone (and read it
back as UTC): it is read as UTC and given with the local offset, as ours are.

Imported by ``record``, so it stays cheap: the standard library only (PyYAML when a folder's
parameters are YAML).
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from yanex import store
from yanex.json_policy import encode_value

# The field our metadata of a 0.6 folder carries: what was 0.6's own and has no place in ours.
MARKER = "yanex_0_6"
# Where 0.6 kept what our folders hold at their top (read there when ours' is missing).
OUTPUTS = {
    store.STDOUT: "artifacts/stdout.txt",
    store.STDERR: "artifacts/stderr.txt",
    store.GIT_PATCH: "artifacts/git_diff.patch",
}
# git.<this> of a 0.6 folder read as it is: where its patch is (ours' is git.patch).
PATCH_FIELD = "patch_file"
PARAMS_FILES = ("params.yaml", "config.yaml", "config.json")  # newest name first
METRICS_FILES = ("metrics.json", "results.json")
DEPENDENCIES = "dependencies.json"
# 0.6's archive, inside its experiments folder (ours is <home>/archived).
ARCHIVED = "archived"
# Fields 0.6 put in each metrics.json entry beside the logged values.
_ENTRY_FIELDS = ("step", "timestamp", "last_updated")
_EXIT_CODE = re.compile(r"Script exited with code (-?\d+)(?::|$)")  # 0.6's own words


def is_v06(meta: dict[str, Any]) -> bool:
    """Did yanex 0.6 write this metadata? It adds ``saved_at`` at every write and never has
    our ``script``; ours never has ``saved_at``."""
    return "saved_at" in meta and "script" not in meta


def metadata(meta: dict[str, Any], depends: bytes | None) -> dict[str, Any]:
    """0.6's metadata as ours (``depends``: its folder's dependencies.json, None when it has
    none): ValueError says why it cannot be (then the folder is skipped, named)."""
    environment = _dict(meta.get("environment"))
    system = _dict(environment.get("system"))
    repository = _dict(_dict(environment.get("git")).get("repository"))
    python = _dict(environment.get("python"))
    status = meta.get("status")
    error = meta.get("error_message")
    if status == "cancelled" and meta.get("cancellation_reason"):
        error = meta["cancellation_reason"]
    own: dict[str, Any] = {"project": meta.get("project")}
    if status == "created":  # 0.6 made its folder, then never started it (ours has no such)
        own["status"] = status
        status = "failed"
        error = "yanex 0.6 created it and never started it (its status there: created)"
    cwd = system.get("working_directory")
    repo = repository.get("repo_path")
    project = repo if isinstance(repo, str) else cwd
    ours: dict[str, Any] = {
        "id": meta.get("id"),
        "name": meta.get("name"),
        "description": meta.get("description"),
        "tags": meta.get("tags") if meta.get("tags") is not None else [],
        "status": status,
        "script": meta.get("script_path"),
        "args": meta.get("script_args") if meta.get("script_args") is not None else [],
        "cwd": cwd,
        "config_file": None,
        "hydra": None,
        "overrides": [],
        "project": os.path.realpath(project) if isinstance(project, str) else None,
        "created_at": local_time(meta.get("created_at")),
        "started_at": local_time(meta.get("started_at")),
        "ended_at": local_time(meta.get("completed_at")),
        "duration": meta.get("duration"),
        "exit_code": _exit_code(status, error, meta),
        "error": error,
        "git": _git(meta.get("git"), repository),
        "environment": {
            "python": {
                "version": str(python.get("python_version") or "?").split(" ")[0],
                "executable": python.get("python_executable"),
            },
            "platform": python.get("platform"),
            "hostname": system.get("hostname"),
        },
    }
    for key in ("script", "cwd"):
        if not isinstance(ours[key], str):
            del ours[key]  # API-made (no script) or not recorded: absent, as ours may be
    if depends is not None:
        slots = dependencies(depends)
        if slots:
            ours["dependencies"] = slots
    if isinstance(meta.get("cli_args"), dict):
        ours["cli_args"] = meta["cli_args"]  # the same meaning as ours (yanex.get_cli_args)
    if meta.get("storage_version") is not None:
        own["storage_version"] = meta["storage_version"]
    ours[MARKER] = own
    return ours


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def local_time(text: Any) -> Any:
    """A time 0.6 wrote (naive: UTC) as ours are written: ISO 8601 with the local offset.
    Anything else is left as it is (the readers' own checks judge it)."""
    if not isinstance(text, str):
        return text
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        return text
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    try:
        return stamp.astimezone().isoformat()
    except (OverflowError, OSError):
        return text


def _exit_code(status: Any, error: Any, meta: dict[str, Any]) -> int | None:
    """What 0.6 knew of the script's exit code: 0 for a completed `yanex run` (it completed
    only those), the code its own failure message names ("Script exited with code N")."""
    if status == "completed" and isinstance(meta.get("cli_args"), dict):
        return 0
    if status == "failed" and isinstance(error, str):
        found = _EXIT_CODE.match(error)
        if found:
            return int(found.group(1))
    return None


def _git(git: Any, repository: dict[str, Any]) -> dict[str, Any] | None:
    if not isinstance(git, dict) or not git.get("commit_hash"):
        return None
    remote = repository.get("remote_url")
    return {
        "commit": git.get("commit_hash"),
        "branch": git.get("branch"),
        "dirty": bool(git.get("has_uncommitted_changes")),
        "remote_url": public_url(remote) if isinstance(remote, str) else None,
        **({PATCH_FIELD: OUTPUTS[store.GIT_PATCH]} if git.get("has_uncommitted_changes") else {}),
    }


def public_url(url: str) -> str:
    """A remote URL without the user info 0.6 kept in it (``https://user:token@host/x`` ->
    ``https://host/x``): ours never records a credential. An scp-like address
    (``git@host:x``) holds none and is kept."""
    parts = urlsplit(url)
    if not parts.scheme or "@" not in parts.netloc:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def dependencies(raw: bytes) -> dict[str, str]:
    """``{slot: experiment id}`` from 0.6's ``dependencies.json`` (its storage version 0 had
    a list, whose slots 0.6's own migration names ``dep1``, ``dep2``, ...)."""
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"{DEPENDENCIES} is not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{DEPENDENCIES} holds a {type(data).__name__}, not an object")
    slots = data.get("dependencies")
    if slots is None and isinstance(data.get("dependency_ids"), list):
        slots = {f"dep{i}": upstream for i, upstream in enumerate(data["dependency_ids"], 1)}
    if not isinstance(slots, dict):
        raise ValueError(f"{DEPENDENCIES} has no dependencies object")
    return slots


def params(data: bytes, name: str) -> dict[str, Any]:
    """The parameters in a 0.6 parameters file (``name``: one of PARAMS_FILES) as ours hold
    them (JSON's types); ValueError says why they cannot be read."""
    if name.endswith(".json"):
        try:
            found = json.loads(data)
        except ValueError as exc:
            raise ValueError(f"{name} is not valid JSON ({exc})") from exc
    else:
        import yaml

        try:
            found = yaml.safe_load(data)
        except yaml.YAMLError as exc:
            raise ValueError(f"{name} is not valid YAML ({exc})".replace("\n", " ")) from exc
    if found is None:
        return {}
    if not isinstance(found, dict):
        raise ValueError(f"{name} holds a {type(found).__name__}, not a mapping")
    return _plain(found, name)


def _plain(node: Any, where: str) -> Any:
    """YAML's values as JSON holds them: a date as its ISO text (0.6 loaded its config files
    with PyYAML, which makes dates of unquoted ones); a key that is not text is refused."""
    if isinstance(node, dict):
        plain = {}
        for key, value in node.items():
            if not isinstance(key, str):
                raise ValueError(f"{where} has a key that is not text ({key!r})")
            plain[key] = _plain(value, where)
        return plain
    if isinstance(node, (list, tuple)):
        return [_plain(value, where) for value in node]
    if isinstance(node, (datetime, date)):
        return node.isoformat()
    if isinstance(node, (str, int, float, bool)) or node is None:
        return node
    raise ValueError(f"{where} holds a {type(node).__name__}, which JSON cannot")


def results(data: bytes, name: str) -> bytes:
    """0.6's logged metrics (``name``: one of METRICS_FILES) as our ``results.jsonl`` holds
    them; ValueError says why they cannot be read. Each entry ``{step, timestamp, <name>:
    value, ..., last_updated?}`` is a line ``{"step", "timestamp", "results"}``, in 0.6's
    order (by step); NaN and the infinities as the text ours stores for them."""
    try:
        entries = json.loads(data)
    except ValueError as exc:
        raise ValueError(
            f"{name} is not valid JSON ({exc}; yanex 0.6 rewrote it whole at every log, so a "
            "run killed while it wrote left it cut)"
        ) from exc
    except RecursionError:
        raise ValueError(f"{name} is nested too deeply") from None
    if not isinstance(entries, list):
        raise ValueError(f"{name} holds a {type(entries).__name__}, not a list")
    lines = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise ValueError(f"{name} holds an entry that is not an object")
        step = entry.get("step")
        line = {
            "step": step if isinstance(step, int) and not isinstance(step, bool) else None,
            "timestamp": local_time(entry.get("timestamp")),
            "results": encode_value({k: v for k, v in entry.items() if k not in _ENTRY_FIELDS}),
        }
        lines.append(json.dumps(line, ensure_ascii=False, allow_nan=False) + "\n")
    return "".join(lines).encode("utf-8")


def patch(data: bytes) -> bytes:
    """0.6's ``git_diff.patch`` as git applies it: 0.6 cut its last newline, without which git
    calls the patch corrupt."""
    return data + b"\n" if data and not data.endswith(b"\n") else data


def output_file(folder: Path, name: str) -> Path | None:
    """Where 0.6 kept what ours keeps as ``name`` (stdout.txt, stderr.txt, git.patch)."""
    kept = OUTPUTS.get(name)
    return folder / kept if kept is not None else None


def archived_folders(experiments: Path) -> list[Path]:
    """0.6's archived experiments (``experiments/archived/<id>``): not experiments of ours
    until ``yanex migrate`` moves them into our archive."""
    try:
        entries = list(os.scandir(experiments / ARCHIVED))
    except OSError:
        return []
    return sorted(
        Path(entry.path)
        for entry in entries
        if store.is_valid_id(entry.name) and entry.is_dir(follow_symlinks=False)
    )
