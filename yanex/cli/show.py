"""``yanex show``: one experiment in full (its config, results, dependencies, code and
output), or several side by side.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from yanex import query
from yanex.cli import CONTEXT_SETTINGS, UserError, echo_err
from yanex.cli import output as out
from yanex.cli.selection import (
    current_project_name,
    filter_options,
    flat_params,
    selected,
    synced_index,
)
from yanex.dotted import leaves
from yanex.index import Index
from yanex.record import Record, Status
from yanex.regular_files import BadRecord, open_regular, read_regular


def _stderr_tail(rec: Record, lines: int = 10) -> list[str]:
    try:
        fd, st = open_regular(rec.output_file("stderr.txt"))  # never a FIFO in its place
    except (OSError, BadRecord):
        return []
    try:
        size = st.st_size
        start = max(0, size - 16384)
        text = os.pread(fd, size - start, start).decode("utf-8", "replace")
    except OSError:
        return []
    finally:
        os.close(fd)
    return [line for line in text.splitlines() if line.strip()][-lines:]


def _last_steps(rec: Record) -> list[dict[str, Any]]:
    """The last 10 logged lines, read from the end of results.jsonl (a warning if it cannot
    be read)."""
    try:
        return rec.tail(10)
    except BadRecord as exc:
        echo_err(f"yanex: warning: experiment {rec.id}: {exc}; its last steps are left out")
        return []


def _show_json(rec: Record) -> dict[str, Any]:
    meta = rec.metadata
    return {
        **meta,
        "dir": str(rec.dir),
        "archived": rec.archived,
        "config": rec.params,
        "results": {name: s.to_json() for name, s in rec.series.items()},
        "last_steps": _last_steps(rec),
        "artifacts": [{"name": a.name, "size": a.size} for a in rec.artifacts],
        "stderr_tail": _stderr_tail(rec) if rec.status == Status.FAILED else [],
    }


# The filter options that select experiments (not only say where to look).
_NARROWING = ("status", "tags", "name", "script", "id_lists", "sweep", "since", "until",
              "started_after", "started_before", "ended_after", "ended_before", "where",
              "project")  # fmt: skip


@click.command(context_settings=CONTEXT_SETTINGS)
@click.argument("ref", metavar="[ID]", required=False)
@click.option(
    "--latest", is_flag=True, help="The newest experiment the filters select (default: all)."
)
@filter_options
@click.option(
    "--metrics",
    "--show-metric",
    "metric_names",
    metavar="NAME,...",
    help="Only these results in the results table (comma-separated).",
)
@click.option(
    "-f",
    "-F",
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "markdown", "csv", "default"], case_sensitive=False),
    default="text",
    show_default=True,
)
def show(ref: str | None, latest: bool, metric_names: str | None, fmt: str, **options: Any) -> None:
    """Show one experiment: status (and why it failed), times, tags, config, results,
    artifacts, git state, environment and folder.

    ID is an experiment ID, a unique prefix of one (4+ characters), or a name (the newest
    experiment of this project with that name); --latest shows the newest the filters
    select. An ID finds archived experiments too.
    """
    narrowing = [_option_flag(name) for name in _NARROWING if options.get(name)]
    if ref is not None and latest:
        raise click.UsageError("give an ID or --latest, not both")
    if ref is None and not latest:
        raise click.UsageError(
            "Missing argument 'ID' (or --latest: the newest experiment the filters select)."
        )
    if ref is not None and narrowing:
        raise click.UsageError(
            f"{', '.join(narrowing)} select{'s' if len(narrowing) == 1 else ''} with --latest; "
            "an ID names its experiment alone"
        )
    with synced_index(verify=False) as index:  # the one shown is checked below
        if latest:
            found = selected(index, (), options, required=False, limit=1)
            if not found:
                raise UserError("no experiments match\n`yanex list` shows what there is.")
            rec = found[0]
        else:
            scope = None if options["all_projects"] else current_project_name
            rec = query.Lookup(index, scope).one(ref or "")
        index.refresh_if_changed(rec.id)
        rec = query.Lookup(index, None).one(rec.id)
        links = _dependency_links(index, rec)
    metrics = _metric_names(rec, metric_names)
    if fmt == "json":
        data = _show_json(rec)
        data["dependents"] = [{"id": eid, "slot": slot} for slot, eid, _ in links[1]]
        if metrics is not None:
            data["results"] = {n: s for n, s in data["results"].items() if n in metrics}
        out.print_json(data)
    elif fmt == "markdown":
        _show_markdown(rec, metrics)
    elif fmt == "csv":
        _show_csv(rec, metrics)
    else:
        _print_show(rec, links, metrics)


_Link = tuple[str, str, Record | None]  # (slot, experiment id, its record: None when gone)


def _dependency_links(index: Index, rec: Record) -> tuple[list[_Link], list[_Link]]:
    from yanex import dependencies

    return dependencies.links(index, rec.id)


def _link_text(eid: str, other: Record | None) -> str:
    if other is None:
        return f"{eid}  (gone)"
    script = Path(other.script).name if other.script else "?"
    named = f"  {out.safe(other.name)}" if other.name else ""
    return f"{eid}  {other.status:<9}  {out.safe(script)}{named}"


def _option_flag(name: str) -> str:
    """An option as typed (``started_after`` -> ``--started-after``) of the running command."""
    for param in click.get_current_context().command.params:
        if param.name == name and param.opts:
            return max(param.opts, key=len)
    return name


def _metric_names(rec: Record, given: str | None) -> list[str] | None:
    """``--metrics a,b``: the results to show (each one the experiment logged)."""
    if given is None:
        return None
    names = [name.strip() for name in given.split(",") if name.strip()]
    unknown = [name for name in names if name not in rec.series]
    if unknown:
        known = ", ".join(out.safe(n) for n in rec.series) or "none"
        raise UserError(
            f"--metrics: experiment {rec.id} logged no {', '.join(map(repr, unknown))}\n"
            f"Its results: {known}."
        )
    return names


def _show_rows(rec: Record, metrics: Sequence[str] | None) -> list[tuple[str, str]]:
    """show's fields as (name, value) pairs, for --format markdown and csv."""
    meta = rec.metadata
    git = meta.get("git") or {}
    rows = [
        ("id", rec.id),
        ("name", rec.name or ""),
        ("status", rec.status),
        ("error", (rec.error or "").splitlines()[0] if rec.error else ""),
        ("description", rec.description or ""),
        ("tags", ", ".join(rec.tags)),
        ("script", " ".join([str(rec.script), *(meta.get("args") or [])])),
        ("created", meta.get("created_at") or ""),
        ("started", meta.get("started_at") or ""),
        ("ended", meta.get("ended_at") or ""),
        ("duration", out.duration(rec.duration)),
        ("git.commit", git.get("commit") or ""),
        ("git.branch", git.get("branch") or ""),
        ("git.dirty", "yes" if git.get("dirty") else "no"),
        ("dir", str(rec.dir)),
    ]
    rows += [(f"params.{k}", out.full_value(v)) for k, v in flat_params(rec).items()]
    rows += [
        (f"results.{n}", out.full_value(s.last))
        for n, s in rec.series.items()
        if metrics is None or n in metrics
    ]
    return [(name, out.safe(text)) for name, text in rows]


def _show_markdown(rec: Record, metrics: Sequence[str] | None) -> None:
    """One experiment as a markdown section (``show ID -F markdown >> notes.md``)."""
    click.echo(f"## Experiment {rec.id}" + (f": {out.safe(rec.name)}" if rec.name else ""))
    click.echo()
    fields = [(k, v) for k, v in _show_rows(rec, metrics) if not k.startswith("results.")]
    out.print_markdown(["field", "value"], [(k, v) for k, v in fields if v != ""])
    series = [(n, s) for n, s in rec.series.items() if metrics is None or n in metrics]
    if series:
        click.echo()
        out.print_markdown(
            ["result", "last", "min", "max", "steps"],
            [
                (out.safe(n), out.value(s.last), out.value(s.min), out.value(s.max), s.count)
                for n, s in series
            ],
        )
    if rec.artifacts:
        click.echo()
        for artifact in rec.artifacts:
            click.echo(f"- {out.safe(artifact.name)} ({out.size(artifact.size)})")


def _show_csv(rec: Record, metrics: Sequence[str] | None) -> None:
    out.print_csv(["field", "value"], _show_rows(rec, metrics))


def _config_text(rec: Record) -> str:
    """The config as the run's config.yaml holds it (YAML made again if it is missing)."""
    try:
        return read_regular(rec.dir / "config.yaml").decode("utf-8")
    except (OSError, UnicodeDecodeError, BadRecord):
        from yanex.record import config_yaml

        return config_yaml(rec.params)


def _print_show(
    rec: Record,
    links: tuple[list[_Link], list[_Link]] = ([], []),
    metrics: Sequence[str] | None = None,
) -> None:

    meta = rec.metadata
    lines: list[tuple[str, str]] = []  # (style, text)

    def head(text: str) -> None:
        lines.append(("bold", ""))
        lines.append(("bold", text))

    def item(label: str, text: Any) -> None:
        lines.append(("", f"  {label:<12} {text}"))

    lines.append(("bold cyan", f"experiment {rec.id}" + (" (archived)" if rec.archived else "")))
    item("name", out.safe(rec.name or "(unnamed)"))
    item(
        "status",
        rec.status + (f" (exit code {rec.exit_code})" if rec.exit_code not in (None, 0) else ""),
    )
    if rec.error:
        reason = rec.error.splitlines()
        item("reason", out.safe(reason[0]))
    if rec.status == Status.FAILED:
        tail = _stderr_tail(rec)
        if tail:
            lines.append(("", "  stderr (last lines):"))
            lines += [("red", f"    {out.safe(line)}") for line in tail]
    if rec.description:
        item("description", out.safe(rec.description))
    item("tags", out.safe(", ".join(rec.tags)) or "-")
    item("script", out.safe(" ".join([str(rec.script), *(meta.get("args") or [])])))
    item("created", meta.get("created_at") or "-")
    item("started", meta.get("started_at") or "-")
    item("ended", meta.get("ended_at") or "-")
    item("duration", out.duration(rec.duration))
    if rec.sweep:
        item("sweep", f"{rec.sweep} (member {rec.sweep_index})")
    if meta.get("rerun_of"):
        item("rerun of", meta["rerun_of"])
    for warning in meta.get("warnings") or []:
        item("warning", out.safe(warning))

    ups, downs = links
    if ups:
        head("dependencies")
        lines += [("", f"  {out.safe(slot):<12} {_link_text(e, o)}") for slot, e, o in ups]
    if downs:
        head("depended on by")
        lines += [("", f"  {out.safe(slot):<12} {_link_text(e, o)}") for slot, e, o in downs]

    head("config")
    lines += [("", f"  {out.safe(line)}") for line in _config_text(rec).splitlines()]
    hydra = meta.get("hydra") or {}
    if hydra.get("choices"):
        head("hydra choices")
        lines += [("", f"  {out.safe(g)}: {out.safe(o)}") for g, o in hydra["choices"].items()]
    if meta.get("overrides"):
        item("overrides", out.safe(" ".join(meta["overrides"])))

    head("results")
    series = {n: s for n, s in rec.series.items() if metrics is None or n in metrics}
    if not series:
        lines.append(("", "  (none logged)"))
    else:
        width = max(len(n) for n in series)
        lines.append(("dim", f"  {'name':<{width}}  {'last':>10}  {'min':>10}  {'max':>10}  steps"))
        for name, s in series.items():
            lines.append(
                (
                    "",
                    f"  {out.safe(name):<{width}}  {out.value(s.last):>10}  "
                    f"{out.value(s.min):>10}  {out.value(s.max):>10}  {s.count}",
                )
            )
        names = list(series)
        lines.append(("dim", "  last steps:"))
        lines.append(
            ("dim", "    " + "  ".join(["step".rjust(6)] + [out.safe(n).rjust(10) for n in names]))
        )
        for line in _last_steps(rec):
            flat = dict(leaves(line["results"]))
            cells = [str(line.get("step", "")).rjust(6)] + [
                out.value(flat.get(n)).rjust(10) for n in names
            ]
            lines.append(("", "    " + "  ".join(cells)))

    head("artifacts")
    found = rec.artifacts
    shown = [("", f"  {out.safe(a.name)}  ({out.size(a.size)})") for a in found]
    lines += shown or [("", "  (none)")]

    head("git")
    git = meta.get("git")
    if git is None:
        lines.append(("", "  (not in a git repository)"))
    else:
        item("commit", git.get("commit") or "(no commit)")
        item("branch", out.safe(git.get("branch") or "(detached HEAD)"))
        patch = rec.output_file("git.patch")
        dirty = "yes" if git.get("dirty") else "no"
        if patch.exists():
            dirty += f" ({patch.relative_to(rec.dir)}, {out.size(patch.stat().st_size)})"
        item("dirty", dirty)
        if git.get("remote_url"):
            item("remote", out.safe(git["remote_url"]))

    head("environment")
    env = meta.get("environment") or {}
    python = env.get("python") or {}
    item("python", f"{python.get('version', '?')} ({out.safe(python.get('executable', '?'))})")
    item("platform", out.safe(env.get("platform", "?")))
    item("host", out.safe(env.get("hostname", "?")))
    if "packages" in env:  # (yanex 0.6 recorded none)
        item("packages", f"{len(env.get('packages') or {})} installed")

    head("folder")
    lines.append(("", f"  {out.safe(rec.dir)}"))

    if out.is_terminal():
        from rich.console import Console

        console = Console(highlight=False)
        for style, text in lines:
            console.print(text, style=style or None, markup=False)
    else:
        for _, text in lines:
            click.echo(text)
