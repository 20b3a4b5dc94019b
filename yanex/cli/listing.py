"""``yanex list``: the experiments the filters select, as a table, json, csv or markdown."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from yanex import columns, query
from yanex.cli import CONTEXT_SETTINGS, echo_err
from yanex.cli import output as out
from yanex.cli.selection import (
    DEFAULT_LIMIT,
    current_project_name,
    filter_options,
    filters_of,
    flat_last,
    flat_params,
    refs_of,
    result_names,
    synced_index,
)
from yanex.index import Index
from yanex.record import Record


def _record_json(rec: Record) -> dict[str, Any]:
    return {
        "id": rec.id,
        "name": rec.name,
        "status": rec.status,
        "tags": rec.tags,
        "description": rec.description,
        "project": rec.project,
        "script": rec.script,
        "created": rec.created.isoformat() if rec.created else None,
        "started": rec.started.isoformat() if rec.started else None,
        "ended": rec.ended.isoformat() if rec.ended else None,
        "duration": rec.duration,
        "exit_code": rec.exit_code,
        "error": rec.error,
        "reason": columns.reason(rec),
        "commit": rec.git_commit,
        "dirty": rec.git_dirty,
        "sweep": rec.sweep,
        "sweep_index": rec.sweep_index,
        "archived": rec.archived,
        "dir": str(rec.dir),
        "params": rec.params,
        "results": rec.last,
    }


@click.command("list", context_settings=CONTEXT_SETTINGS)
@filter_options
@click.option(
    "--sort",
    "sort_key",
    metavar="KEY",
    help="Sort by KEY (-KEY: descending, +KEY: ascending; a result alone: best first, e.g. "
    "results.loss smallest, results.acc largest); default: newest first.",
)
@click.option(
    "-l",
    "--limit",
    type=click.IntRange(min=1),
    default=DEFAULT_LIMIT,
    show_default=True,
    help="Show at most this many.",
)
@click.option("--all", "show_all", is_flag=True, help="Show every match (no limit).")
@click.option(
    "--columns",
    "column_keys",
    multiple=True,
    metavar="KEYS",
    help="The columns of the table and csv, comma-separated: params.<key>, results.<name> or "
    "a field (id, name, status, tags, started, duration, created, ended, project, script, "
    "sweep, exit_code, error, commit, dirty, description); +KEY adds one to the default ones.",
)
@click.option(
    "-f",
    "-F",
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv", "markdown", "ids", "default"], case_sensitive=False),
    default="table",
    show_default=True,
    help="ids: one ID per line, for shell pipes (default: table, as yanex 0.6 named it).",
)
@click.option(
    "--depends-on",
    "depends_on",
    multiple=True,
    metavar="ID",
    help="Only experiments that depend on this one (-D; repeatable: on all of them).",
)
def list_command(
    sort_key: str | None,
    limit: int,
    show_all: bool,
    column_keys: tuple[str, ...],
    fmt: str,
    depends_on: tuple[str, ...],
    **options: Any,
) -> None:
    """List experiments of this project, newest first.

    \b
    Columns: ID, name, status, tags, when it started, how long it ran, the parameters a sweep
    varies (for --sweep, or runs of one sweep), and the last value of each result the listed
    runs logged (as many as fit the terminal); the reason a run failed with --status failed.
    --columns chooses them.
    \b
    Examples:
      yanex list --status failed
      yanex list --tag baseline --where "results.loss<0.3" --sort results.loss
      yanex list --sweep 3f9a --columns id,params.lr,results.loss,error
      yanex list -A --since 3d --format csv > runs.csv
      yanex list --sweep 3f9a --format ids | xargs yanex archive --yes
      yanex list --depends-on 3f9a       (what was run on 3f9a's output: -D)
    """
    with synced_index() as index:
        refs = refs_of((), options)
        scope = None if options["all_projects"] else current_project_name
        ids = [rec.id for rec in query.Lookup(index, scope).many(refs)] if refs else []
        filters = filters_of(options, ids, index=index)
        if depends_on:
            upstream = query.Lookup(index, current_project_name).many(depends_on)
            filters.depends_on = tuple(rec.id for rec in upstream)
        sort = (query.parse_sort(sort_key),) if sort_key else (query.NEWEST_FIRST,)
        records = query.select(index, filters, sort=sort, limit=None if show_all else limit)
        total = len(records) if show_all else query.count(index, filters)
        chosen = _list_columns(index, column_keys, records, filters, options)
        fmt = "table" if fmt.lower() == "default" else fmt.lower()
        if fmt == "json":
            from yanex import dependencies

            found = dependencies.dependencies_of(index, [rec.id for rec in records])
    if fmt == "ids":
        for rec in records:
            click.echo(rec.id)
        return
    if fmt == "json":
        out.print_json([{**_record_json(rec), "dependencies": found.get(rec.id, {})}
                        for rec in records])  # fmt: skip
        return
    names = result_names(records)
    if fmt == "csv" and column_keys:
        out.print_csv(
            [col.key for col in chosen],
            [[out.csv_cell(col.key, col.value(rec)) for col in chosen] for rec in records],
        )
        return
    if fmt == "csv":
        keys = list(dict.fromkeys(k for rec in records for k in flat_params(rec)))
        headers = ["id", "name", "status", "tags", "project", "script", "created", "started",
                   "ended", "duration", "exit_code", "error", "commit", "dirty"]  # fmt: skip
        rows = []
        for rec in records:
            params = flat_params(rec)
            data = {**_record_json(rec), "error": columns.reason(rec)}
            rows.append(
                [
                    out.full_value(data[h]) if h != "tags" else out.safe(";".join(rec.tags))
                    for h in headers
                ]
                + [out.full_value(params.get(k)) for k in keys]
                + [out.full_value(flat_last(rec).get(n)) for n in names]
            )
        out.print_csv(
            headers + [f"params.{k}" for k in keys] + [f"results.{n}" for n in names], rows
        )
        return
    _print_list(records, chosen, markdown=fmt == "markdown")
    if fmt == "markdown":
        return
    scope = "all projects" if options["all_projects"] else current_project_name()
    if not records:
        echo_err(
            f"no experiments match in {out.safe(scope)}"
            + ("" if options["all_projects"] else " (-A: all projects)")
        )
    elif total > len(records):
        shown = f"{len(records)} of {total:,} experiments in {out.safe(scope)}"
        echo_err(f"{shown}; --limit N or --all for more")


def _list_columns(
    index: Index,
    keys: Sequence[str],
    records: Sequence[Record],
    filters: query.Filters,
    options: dict[str, Any],
) -> list[columns.Column]:
    """The columns ``--columns`` asks for (``+KEY``: the default ones and KEY); by default
    the swept parameters when the listing is one sweep's members, and the reason a run
    failed when only failed or cancelled runs are asked for."""
    parts = [part.strip() for key in keys for part in key.split(",")]
    added = columns.parse(part[1:] for part in parts if part.startswith("+"))
    exact = columns.parse(part for part in parts if not part.startswith("+"))
    columns.check(index, [*exact, *added])
    if exact:
        return exact + [col for col in added if col not in exact]
    sweep = columns.one_sweep(records)
    chosen = columns.defaults(
        records,
        params=columns.swept_params(index, sweep) if sweep else (),
        all_projects=options["all_projects"],
        reasons=columns.failures_only(filters.status),
    )
    return chosen + [col for col in added if col not in chosen]


def _print_list(
    records: Sequence[Record], chosen: Sequence[columns.Column], markdown: bool = False
) -> None:
    titles = [col.title.upper() if col.kind == "field" else out.safe(col.leaf) for col in chosen]
    leading = next((i for i, col in enumerate(chosen) if col.key not in columns.BASE), len(chosen))
    table = out.Table(titles, optional_from=max(1, min(leading, len(chosen))))
    table.numeric = {i for i, col in enumerate(chosen) if col.numeric}
    styles = {"id": "cyan", "status": "bold"}
    table.styles = {i: styles[col.key] for i, col in enumerate(chosen) if col.key in styles}
    for rec in records:
        table.rows.append([out.cell(col.key, col.value(rec)) for col in chosen])
    if markdown:
        out.print_markdown(table.headers, table.rows)
    elif records:
        table.print()
