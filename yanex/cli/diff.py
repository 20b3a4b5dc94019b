"""``yanex diff A B``: what differs between two runs, side by side: config, code (each commit
plus its patch, and the diff between the two code states), environment and last results.

The code diff is built without touching the work tree or the index: each state (its commit,
its ``git.patch`` applied) is written as a tree object through a temporary index, and git
compares the two trees (submodules likewise, in their own repositories). A commit that is no
longer in the repository is said, never guessed around.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from yanex import query
from yanex.cli import CONTEXT_SETTINGS, echo_err, user_errors
from yanex.cli import output as out
from yanex.cli.selection import current_project_name, synced_index
from yanex.code.diff import diff_states, label, recorded_in
from yanex.index_values import param_leaves
from yanex.record import Record
from yanex.terminal import safe_lines


class _Missing:
    """A key one run does not have: "-" in the text, null in JSON (a string "-" is a value)."""

    def __repr__(self) -> str:
        return "-"


_MISSING = _Missing()


def _pairs(a: dict[str, Any], b: dict[str, Any], every: bool = False) -> list[list[Any]]:
    """``[key, value in a, value in b]`` for each key whose values differ (``every``: all)."""
    keys = list(dict.fromkeys([*a, *b]))
    if not every:
        keys = query.differing_keys([a, b])
    return [[key, a.get(key, _MISSING), b.get(key, _MISSING)] for key in keys]


def _environment(rec: Record) -> dict[str, Any]:
    env = rec.metadata.get("environment") or {}
    python = env.get("python") or {}
    found = {
        "python": f"{python.get('implementation', '')} {python.get('version', '?')}".strip(),
        "platform": env.get("platform"),
    }
    found |= {f"package {name}": v for name, v in sorted((env.get("packages") or {}).items())}
    return found


def _code(a: Record, b: Record) -> dict[str, Any]:
    """Both code states, their labels, and the diff between them (or why there is none)."""
    state_a = recorded_in(a.dir, a.metadata.get("git"))
    state_b = recorded_in(b.dir, b.metadata.get("git"))
    found: dict[str, Any] = {
        "a": label(state_a),
        "b": label(state_b),
        "same": state_a == state_b,
        "diff": "",
        "notes": [],
    }
    if state_a is None or state_b is None:
        if state_a != state_b:
            found["notes"].append("one of them ran outside git: its code was not recorded")
        return found
    project_a, project_b = a.metadata.get("project"), b.metadata.get("project")
    if project_a != project_b:
        found["notes"].append(f"they ran in different repositories ({project_a}, {project_b})")
        return found
    if found["same"]:
        return found
    if not project_a or not (Path(project_a) / ".git").exists():
        found["notes"].append(f"the repository {project_a} is gone: only the commits compare")
        return found
    with user_errors():
        diff, notes = diff_states(Path(project_a), state_a, state_b)
    found["diff"] = diff.decode("utf-8", "replace")
    found["notes"] += notes
    return found


def difference(a: Record, b: Record) -> dict[str, Any]:
    """What ``yanex diff`` shows, as data (its ``--format json``)."""
    flat_a, flat_b = dict(param_leaves(a.params)), dict(param_leaves(b.params))
    return {
        "a": {"id": a.id, "name": a.name, "status": a.status},
        "b": {"id": b.id, "name": b.name, "status": b.status},
        "config": _rows(_pairs(flat_a, flat_b)),
        "code": _code(a, b),
        "environment": _rows(_pairs(_environment(a), _environment(b))),
        "results": _rows(_pairs(a.last, b.last, every=True)),
    }


def _rows(pairs: list[list[Any]]) -> dict[str, list[Any]]:
    return {key: [None if v is _MISSING else v for v in values] for key, *values in pairs}


@click.command(context_settings=CONTEXT_SETTINGS)
@click.argument("ref_a", metavar="A")
@click.argument("ref_b", metavar="B")
@click.option(
    "-f", "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
def diff(ref_a: str, ref_b: str, fmt: str) -> None:
    """Show what differs between runs A and B, side by side: config, code, environment, results.

    \b
    Config: the parameters that differ. Code: each run's commit, patch and submodules, then
    the diff between the two code states (each commit with its git.patch applied), as git
    shows it. Environment: Python, platform and the packages that differ. Results: the last
    value of each. A and B are IDs, unique prefixes or names, as for `yanex show`. A key
    one run does not have shows as "-" (in json: null).
    \b
    Examples:
      yanex diff 3f9a 7c2f
      yanex diff best best-rerun-1 --format json
    """
    with synced_index(verify=False) as index:
        lookup = query.Lookup(index, current_project_name)
        a, b = lookup.one(ref_a), lookup.one(ref_b)
    found = difference(a, b)
    if fmt == "json":
        out.print_json(found)
        return
    heads = [f"A: {a.id} {out.safe(a.name or '')}".strip(), f"B: {b.id} {out.safe(b.name or '')}"]
    _section("config", found["config"], heads, "every parameter is the same")
    click.echo("")
    click.secho("code", bold=True)
    code_rows = [["code", found["code"]["a"], found["code"]["b"]]]
    _table(code_rows, heads)
    for note in found["code"]["notes"]:
        click.echo(f"  ({out.safe(note)})")
    if found["code"]["same"]:
        click.echo("  (the same code)")
    elif found["code"]["diff"]:
        click.echo(safe_lines(found["code"]["diff"]), nl=False)
    _section("environment", found["environment"], heads, "the same environment")
    _section("results", found["results"], heads, "no results logged")
    if a.id == b.id:
        echo_err("(A and B are the same experiment)")


def _section(title: str, rows: dict[str, list[Any]], heads: list[str], none: str) -> None:
    click.echo("")
    click.secho(title, bold=True)
    if not rows:
        click.echo(f"  ({none})")
        return
    _table([[key, *values] for key, values in rows.items()], heads)


def _table(rows: list[list[Any]], heads: list[str]) -> None:
    table = out.Table(["", *heads])
    table.rows = [
        [out.safe(key)] + ["-" if v is None else out.value(v) for v in values]
        for key, *values in rows
    ]
    table.print()
