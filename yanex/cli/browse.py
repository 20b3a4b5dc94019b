"""The reading and curating commands: ``yanex list``, ``show``, ``compare``, ``get``,
``update``, ``archive``, ``unarchive``, ``delete`` and ``reindex``.

Each reads the store through the index (``yanex.index``) and selects experiments through one
filter layer (``yanex.query``); changes go through ``yanex.manage``. Tables and messages name
experiments with their user text escaped (``output.safe``).
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from yanex import columns, manage, query
from yanex.cli import CONTEXT_SETTINGS, UserError, echo_err, user_errors
from yanex.cli import output as out
from yanex.index import Index, param_leaves
from yanex.record import BadRecord, Record, Status, leaves, open_regular, read_regular

DEFAULT_LIMIT = 20


# --- shared options ---------------------------------------------------------------------------


def filter_options(command: Callable[..., Any], name_glob: bool = True) -> Callable[..., Any]:
    """The filters list, compare, get, update, archive and delete share (yanex 0.6's short
    flags keep their meaning: -s status, -n name, -c script, -i IDs, -g, -a, -p).
    ``name_glob=False``: update's, whose --name sets the name (as 0.6's docs use it)."""
    options = [
        click.option(
            "-s",
            "--status",
            multiple=True,
            type=click.Choice(Status.ALL, case_sensitive=False),
            help="Only experiments with this status (repeatable: any of them).",
        ),
        click.option(
            "-t",
            "--tag",
            "tags",
            multiple=True,
            help="Only experiments with this tag (repeatable: all).",
        ),
        click.option(
            "-n",
            "--name",
            metavar="GLOB",
            help="Only names matching this glob (run-*; '': unnamed).",
        )
        if name_glob
        else None,
        click.option(
            "-c",
            "--script",
            metavar="GLOB",
            help="Only runs of this script: a file name or glob (train.py, train, '*prep*'), or "
            "a path.",
        ),
        click.option(
            "-i",
            "--ids",
            "id_lists",
            multiple=True,
            metavar="ID,...",
            help="Only these experiments: IDs, prefixes or names, comma-separated (repeatable).",
        ),
        click.option("--sweep", metavar="ID", help="Only the members of this sweep."),
        click.option(
            "--since",
            metavar="WHEN",
            help='Created since: an ISO date/time, a time ago (30m, 12h, 3d, 2w, "3 days ago"), '
            "today, yesterday.",
        ),
        click.option("--until", metavar="WHEN", help="Created until (same forms as --since)."),
        click.option("--started-after", metavar="WHEN", help="Started at or after WHEN."),
        click.option("--started-before", metavar="WHEN", help="Started before WHEN."),
        click.option("--ended-after", metavar="WHEN", help="Ended at or after WHEN."),
        click.option("--ended-before", metavar="WHEN", help="Ended before WHEN."),
        click.option(
            "-w",
            "--where",
            multiple=True,
            metavar="EXPR",
            help="A condition over params.<key>, results.<name> (its last value) or a field "
            "(status, name, duration, exit_code, ...): ==, !=, <, <=, >, >=; values typed as "
            'in --param. Repeatable: all must hold. E.g. --where "results.loss<0.3".',
        ),
        click.option(
            "-p",
            "--project",
            metavar="NAME",
            help="Experiments of this project: its repository's folder name, or its path.",
        ),
        click.option(
            "-A",
            "-g",
            "--all-projects",
            "--global",
            "all_projects",
            is_flag=True,
            help="Experiments of every project (default: this git repository, else this folder).",
        ),
        click.option(
            "--archived", is_flag=True, help="Archived experiments (which are left out otherwise)."
        ),
        click.option(
            "-a",
            "--include-archived",
            is_flag=True,
            help="Archived experiments too (yanex 0.6's -a/--archived).",
        ),
    ]
    for option in reversed(options):
        if option is not None:
            command = option(command)
    return command


def _refs(refs: Sequence[str], options: dict[str, Any]) -> list[str]:
    """The experiments named as arguments, then by ``-i/--ids A,B`` (0.6's way)."""
    named = [ref for text in options.get("id_lists") or () for ref in text.split(",")]
    return [*refs, *(ref.strip() for ref in named if ref.strip())]


def _project_scope(options: dict[str, Any], index: Index | None) -> str | None:
    """The project the filters look in: ``--project NAME`` (a folder name or path), every
    project (``-A``), or the current one."""
    wanted = options.get("project")
    if wanted is None:
        return None if options["all_projects"] else _current_project_name()
    if options["all_projects"]:
        raise click.UsageError("--project and -A/--all-projects: give one of them")
    if not wanted.strip():
        raise click.BadParameter("give a project's folder name or path", param_hint="'--project'")
    if index is None:
        return str(Path(wanted).absolute())
    known = [row[0] for row in index.conn.execute("SELECT DISTINCT project FROM experiments")]
    found = [p for p in known if p and (p == wanted or Path(p).name == wanted)]
    if not found and Path(wanted).exists():
        return str(Path(wanted).resolve())
    if len(found) > 1:
        raise UserError(
            f"--project {out.safe(wanted)!r} names {len(found)} projects: "
            + ", ".join(out.safe(p) for p in found[:5])
            + "\nGive the path of the one you mean."
        )
    return found[0] if found else wanted  # a name no project has: nothing matches


def _filters(
    options: dict[str, Any],
    ids: Sequence[str] = (),
    archived_default: bool = False,
    index: Index | None = None,
) -> query.Filters:
    """The filters the options ask for; named experiments are looked up in the whole store."""
    project = None
    if not ids:
        project = _project_scope(options, index)
    archived: bool | None = bool(options["archived"]) or archived_default
    if options.get("include_archived") and not options["archived"]:
        archived = None
    if ids:
        archived = True if options["archived"] else None
    name, where = options.get("name"), list(options["where"])
    if name == "":  # yanex 0.6: --name '' selects the unnamed ones
        name = None
        where.append(query.Condition("name", "==", None, "--name ''"))
    return query.make_filters(
        status=options["status"],
        tags=options["tags"],
        name=name,
        script=options["script"],
        sweep=options["sweep"],
        since=options["since"],
        until=options["until"],
        where=where,
        project=project,
        archived=archived,
        ids=ids,
        started_after=options.get("started_after"),
        started_before=options.get("started_before"),
        ended_after=options.get("ended_after"),
        ended_before=options.get("ended_before"),
    )


class IndexProgress:
    """An index build's progress on stderr: a rich bar on a terminal, else one line."""

    def __init__(self) -> None:
        self.bar: Any = None
        self.task: Any = None
        self.told = False

    def __call__(self, done: int, total: int, why: str) -> None:
        if not sys.stderr.isatty():
            if not self.told and done < total:
                many = "experiment" if total == 1 else "experiments"
                echo_err(f"yanex: indexing {total:,} {many} ({why})")
                self.told = True
            return
        if self.bar is None:
            if done >= total:
                return
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

            self.bar = Progress(
                "yanex: indexing ({task.description})",
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self.task = self.bar.add_task(out.safe(why), total=total)
            self.bar.start()
        self.bar.update(self.task, completed=done)
        if done >= total:
            self.bar.stop()
            self.bar = None


@contextmanager
def _index(verify: bool = True) -> Iterator[Index]:
    """The store's index, brought up to date, with user mistakes shown as ``Error:`` lines
    (``verify``: see ``Index.sync``)."""
    with user_errors():
        index = Index(echo=echo_err, progress=IndexProgress())
        try:
            index.sync(verify)
            yield index
        finally:
            index.close()


@functools.cache
def _current_project_name() -> str:
    """The project the command is run in (one git call, made when first needed)."""
    from yanex.code import project_of

    return str(project_of(Path.cwd()))


def _selected(
    index: Index,
    refs: Sequence[str],
    options: dict[str, Any],
    *,
    required: bool = True,
    archived_default: bool = False,
    sort: Sequence[query.Sort] = (query.NEWEST_FIRST,),
    limit: int | None = None,
    strict: bool = False,
) -> list[Record]:
    """The experiments named by ``refs`` (ID, prefix or name), narrowed by the filters; or,
    without refs, the filters' selection of the current project. ``strict``: a command that
    changes them (a name several experiments share is refused, see ``query.Lookup``)."""
    ids: list[str] = []
    refs = _refs(refs, options)
    if refs:
        scope = None if options["all_projects"] else _current_project_name
        ids = [rec.id for rec in query.Lookup(index, scope, strict).many(refs)]
    filters = _filters(options, ids, archived_default, index)
    if required and not refs and not filters.narrows():
        raise UserError(
            "name the experiments (IDs, prefixes or names) or select them with filters "
            "(--status, --tag, --name, --where, ...)"
        )
    records = query.select(index, filters, sort=sort, limit=limit)
    if ids and sort == (query.NEWEST_FIRST,):  # named ones: in the order given
        records.sort(key=lambda rec: ids.index(rec.id))
    return records


def _label(rec: Record) -> str:
    return f"{rec.id} {out.safe(rec.name) if rec.name else '(unnamed)'} [{rec.status}]"


# --- list -------------------------------------------------------------------------------------


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


def _result_names(records: Sequence[Record]) -> list[str]:
    """The results' dotted names (``val.f1``), as --where and --sort name them."""
    return list(dict.fromkeys(name for rec in records for name in _flat_last(rec)))


def _flat_last(rec: Record) -> dict[str, Any]:
    return dict(leaves(rec.last))


def _flat_params(rec: Record) -> dict[str, Any]:
    return dict(param_leaves(rec.params))


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
    with _index() as index:
        refs = _refs((), options)
        scope = None if options["all_projects"] else _current_project_name
        ids = [rec.id for rec in query.Lookup(index, scope).many(refs)] if refs else []
        filters = _filters(options, ids, index=index)
        if depends_on:
            upstream = query.Lookup(index, _current_project_name).many(depends_on)
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
    names = _result_names(records)
    if fmt == "csv" and column_keys:
        out.print_csv(
            [col.key for col in chosen],
            [[out.csv_cell(col.key, col.value(rec)) for col in chosen] for rec in records],
        )
        return
    if fmt == "csv":
        keys = list(dict.fromkeys(k for rec in records for k in _flat_params(rec)))
        headers = ["id", "name", "status", "tags", "project", "script", "created", "started",
                   "ended", "duration", "exit_code", "error", "commit", "dirty"]  # fmt: skip
        rows = []
        for rec in records:
            params = _flat_params(rec)
            data = {**_record_json(rec), "error": columns.reason(rec)}
            rows.append(
                [
                    out.full_value(data[h]) if h != "tags" else out.safe(";".join(rec.tags))
                    for h in headers
                ]
                + [out.full_value(params.get(k)) for k in keys]
                + [out.full_value(_flat_last(rec).get(n)) for n in names]
            )
        out.print_csv(
            headers + [f"params.{k}" for k in keys] + [f"results.{n}" for n in names], rows
        )
        return
    _print_list(records, chosen, markdown=fmt == "markdown")
    if fmt == "markdown":
        return
    scope = "all projects" if options["all_projects"] else _current_project_name()
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


# --- show -------------------------------------------------------------------------------------


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
    with _index(verify=False) as index:  # the one shown is checked below
        if latest:
            found = _selected(index, (), options, required=False, limit=1)
            if not found:
                raise UserError("no experiments match\n`yanex list` shows what there is.")
            rec = found[0]
        else:
            scope = None if options["all_projects"] else _current_project_name
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
    rows += [(f"params.{k}", out.full_value(v)) for k, v in _flat_params(rec).items()]
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


# --- compare ----------------------------------------------------------------------------------


@click.command(context_settings=CONTEXT_SETTINGS)
@click.argument("refs", nargs=-1, metavar="[ID]...")
@filter_options
@click.option(
    "--all-params", is_flag=True, help="Show every parameter, not only those that differ."
)
@click.option(
    "--params",
    "param_spec",
    metavar="auto|all|none|KEY,...",
    help="Which parameters: auto (those that differ: the default), all, none, or these keys "
    "(globs: '*.lr').",
)
@click.option(
    "--metrics",
    "metric_spec",
    metavar="auto|all|none|NAME,...",
    help="Which results: all (the default), auto (those that differ), none, or these names.",
)
@click.option("--only-different", is_flag=True, help="Only the parameters and results that differ.")
@click.option("--max-rows", type=click.IntRange(min=1), help="Show at most this many rows.")
@click.option(
    "--export",
    "export_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the table to this file instead (.csv, .json or .md: its format).",
)
@click.option(
    "--no-interactive",
    is_flag=True,
    hidden=True,
    help="yanex 0.6's static table: the only one there is now.",
)
@click.option(
    "--sort",
    "sort_key",
    metavar="KEY",
    help="Sort rows by KEY (-KEY: descending, +KEY: ascending; a result alone: best first).",
)
@click.option(
    "--minimize", multiple=True, metavar="RESULT", help="Smaller is better for RESULT (repeatable)."
)
@click.option(
    "--maximize", multiple=True, metavar="RESULT", help="Larger is better for RESULT (repeatable)."
)
@click.option(
    "-f",
    "-F",
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json", "markdown", "default"], case_sensitive=False),
    default="table",
    show_default=True,
)
def compare(
    refs: tuple[str, ...],
    all_params: bool,
    param_spec: str | None,
    metric_spec: str | None,
    only_different: bool,
    max_rows: int | None,
    export_path: Path | None,
    no_interactive: bool,
    sort_key: str | None,
    minimize: tuple[str, ...],
    maximize: tuple[str, ...],
    fmt: str,
    **options: Any,
) -> None:
    """Compare experiments side by side: one row each, the parameters that differ, the code
    when it differs (commit, patch, submodules), and the last value of each result, the best
    of each marked with *.

    \b
    Without IDs, the experiments the filters select (default: all of this project's).
    Best means smallest for results named like loss, error, mse, time, largest for those
    named like acc, f1, score, reward; --minimize/--maximize decide for any other (which is
    marked nowhere until they do).
    \b
    Examples:
      yanex compare 3f9a 7c2f
      yanex compare --sweep 81d0 --sort results.loss
    """
    if all_params and param_spec not in (None, "all"):
        raise click.UsageError(f"--all-params and --params {param_spec}: give one of them")
    if export_path is not None and fmt not in ("table", "default"):
        raise click.UsageError("--export takes its format from the file's suffix; drop -f")
    with _index() as index:
        sort = (query.parse_sort(sort_key),) if sort_key else (query.NEWEST_FIRST,)
        records = _selected(index, refs, options, required=False, sort=sort)
    if not records:
        # As `list` and yanex 0.6's compare: an empty selection is an answer, not an error.
        echo_err("yanex: no experiments match; nothing to compare (`yanex list` shows them)")
        return
    if max_rows is not None and len(records) > max_rows:
        echo_err(f"(the first {max_rows} of {len(records)} experiments; --max-rows)")
        records = records[:max_rows]
    flat = [_flat_params(rec) for rec in records]
    keys = _columns(
        "--params",
        "all" if all_params else param_spec or "auto",
        list(dict.fromkeys(k for params in flat for k in params)),
        flat,
    )
    lasts = [_flat_last(rec) for rec in records]
    metric_default = "auto" if only_different else "all"
    names = _columns("--metrics", metric_spec or metric_default, _result_names(records), lasts)
    if export_path is not None:
        suffix = export_path.suffix.lower()
        fmt = {".json": "json", ".md": "markdown", ".markdown": "markdown"}.get(suffix, "csv")
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            _print_compare(records, flat, keys, names, minimize, maximize, fmt)
        from yanex import store

        with user_errors():
            try:
                store.write_bytes_atomic(export_path, buffer.getvalue().encode())
            except OSError as exc:
                raise UserError(f"cannot write {export_path}: {exc.strerror or exc}") from exc
        echo_err(f"yanex: wrote {len(records)} experiments to {out.safe(export_path)} ({fmt})")
        return
    _print_compare(records, flat, keys, names, minimize, maximize, fmt)


def _columns(option: str, spec: str, found: list[str], rows: Sequence[dict[str, Any]]) -> list[str]:
    """``--params``/``--metrics``: the keys shown of those ``found`` (auto: those whose value
    differs between the rows; a list: the keys named, globs allowed, each matching one)."""
    import fnmatch

    if spec == "all":
        return found
    if spec == "none":
        return []
    if spec == "auto":
        return query.differing_keys(list(rows)) if len(rows) > 1 else found
    chosen: list[str] = []
    for pattern in (part.strip() for part in spec.split(",")):
        matches = [key for key in found if fnmatch.fnmatchcase(key, pattern)]
        if not pattern or not matches:
            shown = ", ".join(out.safe(k) for k in found[:10]) or "none"
            raise UserError(
                f"{option} {out.safe(pattern)!r}: none of these experiments has it\n"
                f"They have: {shown}{', ...' if len(found) > 10 else ''}."
            )
        chosen += [key for key in matches if key not in chosen]
    return chosen


def _print_compare(
    records: Sequence[Record],
    flat: Sequence[dict[str, Any]],
    keys: Sequence[str],
    names: Sequence[str],
    minimize: Sequence[str],
    maximize: Sequence[str],
    fmt: str,
) -> None:
    """compare's table (or csv, json, markdown) of ``records``."""
    best = query.best_rows(records, names, minimize, maximize)
    codes = _code_labels(records)
    show_code = len(set(codes)) > 1  # two runs of different code never look alike
    if fmt == "json":
        out.print_json(
            [
                {
                    "id": rec.id,
                    "name": rec.name,
                    "status": rec.status,
                    "code": codes[i],
                    "params": {k: params.get(k) for k in keys},
                    "results": {n: _flat_last(rec).get(n) for n in names},
                    "best": [n for n in names if best.get(n) and i in best[n]],
                }
                for i, (rec, params) in enumerate(zip(records, flat, strict=True))
            ]
        )
        return
    if fmt == "csv":
        rows = [
            [rec.id, out.safe(rec.name or ""), rec.status]
            + ([out.safe(codes[i])] if show_code else [])
            + [out.full_value(params.get(k)) for k in keys]
            + [out.full_value(_flat_last(rec).get(n)) for n in names]
            for i, (rec, params) in enumerate(zip(records, flat, strict=True))
        ]
        out.print_csv(
            [
                "id",
                "name",
                "status",
                *(["code"] if show_code else []),
                *(f"params.{k}" for k in keys),
                *(f"results.{n}" for n in names),
            ],
            rows,
        )
        return
    fixed = ["ID", "NAME", "STATUS", *(["CODE"] if show_code else [])]
    headers = [*fixed, *(out.safe(k) for k in keys), *(out.safe(n) for n in names)]
    if fmt == "markdown":
        rows = [
            [rec.id, out.safe(rec.name or ""), rec.status]
            + ([out.safe(codes[i])] if show_code else [])
            + [out.value(params[k]) if k in params else "-" for k in keys]
            + [out.value(_flat_last(rec).get(n)) for n in names]
            for i, (rec, params) in enumerate(zip(records, flat, strict=True))
        ]
        out.print_markdown(headers, rows)
        return
    table = out.Table(headers, styles={0: "cyan"})
    first_result = len(fixed) + len(keys)
    table.numeric = set(range(first_result, len(headers)))
    for i, (rec, params) in enumerate(zip(records, flat, strict=True)):
        last = _flat_last(rec)
        table.rows.append(
            [rec.id, out.safe(rec.name or ""), rec.status]
            + ([out.safe(codes[i])] if show_code else [])
            + [out.value(params[k]) if k in params else "-" for k in keys]
            + [out.value(last[n]) if n in last else "" for n in names]
        )
        for j, name in enumerate(names):
            if i in best.get(name, ()):
                table.best.add((i, first_result + j))
    table.print()
    if not keys and len(records) > 1 and not query.differing_keys(list(flat)):
        echo_err("(every parameter is the same; --all-params shows them)")
    unsure = [  # results with values to choose between, but no way to tell the best
        n
        for n in names
        if query.direction(n, minimize, maximize) is None
        and query.best_rows(records, [n], maximize=[n])
    ]
    if unsure and len(records) > 1:
        shown = ", ".join(out.safe(n) for n in unsure[:5]) + (", ..." if len(unsure) > 5 else "")
        echo_err(
            f"(no best marked for {shown}: the name does not say which way is better; "
            "--minimize NAME or --maximize NAME)"
        )


def _code_labels(records: Sequence[Record]) -> list[str]:
    """Each run's code in one cell (commit, patch hash, submodules): ``compare``'s CODE."""
    from yanex import code

    return [code.label(code.recorded_in(rec.dir, rec.metadata.get("git"))) for rec in records]


# --- get --------------------------------------------------------------------------------------

_GET_FIELDS = ("id", "name", "status", "dir", "description", "tags", "script", "args", "cwd",
               "project", "created", "started", "ended", "duration", "exit_code", "error",
               "sweep", "sweep_index", "git.commit", "git.branch", "git.dirty", "rerun_of",
               "run-command", "cli-command", "params", "results", "stdout", "stderr",
               "artifacts", "artifacts-dir", "dependencies", "upstream", "downstream",
               "lineage")  # fmt: skip
# Fields that walk the dependency graph (the index's): IDs, comma-joined, upstream first.
_LINEAGE_FIELDS = {"upstream": (True, False), "downstream": (False, True), "lineage": (True, True)}
# yanex 0.6's names of fields, and its prefixes (metric:x, metrics.x, param:x, meta:x).
_V06_FIELDS = {"experiment-dir": "dir", "metrics": "results", "script_path": "script",
               "created_at": "created", "started_at": "started", "completed_at": "ended",
               "ended_at": "ended", "error_message": "error", "git.commit_hash": "git.commit",
               "git.has_uncommitted_changes": "git.dirty"}  # fmt: skip
_V06_PREFIXES = {"metrics.": "results.", "metric:": "results.", "param:": "params.", "meta:": ""}
# Metadata read by path (``environment.python.version``, ``git.remote_url``).
_METADATA_PATHS = ("git.", "environment.", "hydra.", "cli_args.", "sweep_values.", "worktree.")
_OUTPUTS = ("stdout", "stderr")


def _get_field(field: str) -> str:
    """The field as today's ``yanex get`` names it (``metrics.acc`` -> ``results.acc``); a
    UserError for one it does not know."""
    for prefix, now in _V06_PREFIXES.items():
        if field.startswith(prefix) and len(field) > len(prefix):
            field = now + field[len(prefix) :]
            break
    field = _V06_FIELDS.get(field, field)
    if field.startswith(("params.", "results.")) and field.partition(".")[2]:
        return field
    if field in _GET_FIELDS or field.startswith(_METADATA_PATHS):
        return field
    raise UserError(
        f"unknown field {out.safe(field)!r}\n"
        "Give params.<key>, results.<name>, or one of: " + ", ".join(_GET_FIELDS)
    )


def _get_value(rec: Record, field: str) -> Any:
    meta = rec.metadata
    if field.startswith("params."):
        return _lookup(rec.params, field[len("params.") :])
    if field.startswith("results."):
        return _flat_last(rec).get(field[len("results.") :])
    if field == "params":
        return list(_flat_params(rec))
    if field == "results":
        return list(_flat_last(rec))
    if field == "artifacts":
        return [str(rec.dir / "artifacts" / artifact.name) for artifact in rec.artifacts]
    if field == "dir":
        return str(rec.dir)
    if field == "artifacts-dir":
        return str(rec.dir / "artifacts")
    if field == "tags":
        return ",".join(rec.tags)
    if field == "run-command":
        return run_command(rec)
    if field == "dependencies":
        return " ".join(f"{slot}={eid}" for slot, eid in (meta.get("dependencies") or {}).items())
    if field == "cli-command":
        return cli_command(rec)
    if field in ("created", "started", "ended"):
        return meta.get(f"{field}_at")
    if field in ("git.commit", "git.branch", "git.dirty"):
        return (meta.get("git") or {}).get(field[4:])
    if field.startswith(_METADATA_PATHS):
        return _lookup(meta, field)
    if field == "args":
        return " ".join(meta.get("args") or [])
    return meta.get(field)


def _lookup(params: Any, key: str) -> Any:
    node = params
    for part in key.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif (
            isinstance(node, list)
            and part.lstrip("-").isdigit()
            and -len(node) <= int(part) < len(node)
        ):
            node = node[int(part)]
        else:
            return None
    return node


def run_command(rec: Record) -> str:
    """The ``yanex run`` command line that rebuilds this experiment (run from its folder)."""
    import shlex

    meta = rec.metadata
    cwd = Path(meta.get("cwd") or ".")
    script = Path(meta.get("script") or "")
    try:
        script_text = str(script.relative_to(cwd))
    except ValueError:
        script_text = str(script)
    argv = ["yanex", "run", script_text]
    config_file = meta.get("config_file")
    files = config_file if isinstance(config_file, list) else [config_file] if config_file else []
    defaults = (cwd / "config.yaml", script.parent / "config.yaml")
    if files and (len(files) > 1 or Path(files[0]) not in defaults):
        for path in files:  # several --config files are merged in order
            argv += ["-c", path]
    hydra = meta.get("hydra") or {}
    app = hydra.get("app") or {}
    found = [cwd / "conf", script.parent / "conf"]  # where yanex looks, or the app's own
    if app.get("config_path") is not None:
        found.append((script.parent / app["config_path"]).resolve())
    if hydra.get("config_dir") and Path(hydra["config_dir"]) not in found:
        argv += ["--config-dir", hydra["config_dir"]]
    if hydra.get("config_name") and hydra["config_name"] != "config":
        argv += ["--config-name", hydra["config_name"]]
    for text in meta.get("overrides") or []:
        argv += ["-p", text]
    for slot, eid in (meta.get("dependencies") or {}).items():
        argv += ["-D", f"{slot}={eid}"]
    if meta.get("name"):
        argv += ["-n", meta["name"]]
    if meta.get("description"):
        argv += ["-d", meta["description"]]
    for tag in meta.get("tags") or []:
        argv += ["-t", tag]
    if meta.get("args"):
        argv += ["--", *meta["args"]]
    return " ".join(shlex.quote(str(arg)) for arg in argv)


def cli_command(rec: Record) -> str:
    """The command line as it was typed (``cli_args`` in the metadata: sweeps as given),
    else the one that rebuilds the run (:func:`run_command`)."""
    import shlex

    given = rec.metadata.get("cli_args")
    if not isinstance(given, dict) or not given.get("script"):
        return run_command(rec)
    argv = ["yanex", "run", str(given["script"])]
    for flag, key in (("-c", "config"), ("-p", "param"), ("-D", "depends_on")):
        for value in given.get(key) or []:
            argv += [flag, str(value)]
    for flag, key in (("-n", "name"), ("-d", "description"), ("--clone-from", "clone_from")):
        if given.get(key) is not None:
            argv += [flag, str(given[key])]
    for tag in given.get("tag") or []:
        argv += ["-t", str(tag)]
    meta = rec.metadata
    if meta.get("sweep") and not given.get("stage") and given.get("parallel") is None:
        argv.append("-m")  # a member of a grid run at once
    if given.get("parallel") is not None:
        argv += ["-j", str(given["parallel"])]
    if given.get("stage"):
        argv.append("--stage")
    if meta.get("args"):
        argv += ["--", *map(str, meta["args"])]
    return " ".join(shlex.quote(arg) for arg in argv)


def _output_text(rec: Record, name: str, head: int | None, tail: int | None) -> str:
    """stdout.txt or stderr.txt as the script wrote it (--head/--tail: its first/last lines)."""
    try:
        text = read_regular(rec.dir / f"{name}.txt").decode("utf-8", "replace")
    except (OSError, BadRecord):
        return ""
    if head is None and tail is None:
        return text
    lines = text.splitlines(keepends=True)
    first = lines[:head] if head is not None else []
    last = lines[len(lines) - tail :] if tail else []
    if head is not None and tail is not None and head + tail >= len(lines):
        return "".join(lines)
    return "".join(first + last if head is not None else last)


def _follow(rec: Record, name: str, tail: int | None) -> None:
    """``get stdout ID -f``: what the script wrote (--tail: its last lines), then what it
    writes until the experiment ends (Ctrl-C stops following)."""
    import time

    from yanex.record import read_metadata

    sys.stdout.write(_output_text(rec, name, None, tail))
    sys.stdout.flush()
    path = rec.dir / f"{name}.txt"
    offset = path.stat().st_size if path.exists() else 0
    try:
        while True:
            try:
                status = read_metadata(rec.dir).get("status")
            except (OSError, BadRecord):
                status = None
            if path.exists() and path.stat().st_size > offset:
                with open(path, "rb") as handle:
                    handle.seek(offset)
                    chunk = handle.read()
                offset += len(chunk)
                sys.stdout.buffer.write(chunk)
                sys.stdout.flush()
            elif status not in Status.LIVE:
                return
            else:
                time.sleep(0.2)
    except KeyboardInterrupt:
        sys.exit(130)


@click.command(context_settings=CONTEXT_SETTINGS)
@click.argument("field")
@click.argument("refs", nargs=-1, metavar="[ID]...")
@filter_options
@click.option(
    "--depth",
    type=click.IntRange(min=1),
    help="With upstream, downstream or lineage: at most N dependencies away.",
)
@click.option("-l", "--limit", type=click.IntRange(min=1), help="At most this many experiments.")
@click.option(
    "-F",
    "--format",
    "fmt",
    type=click.Choice(["default", "json", "csv", "markdown", "sweep"], case_sensitive=False),
    default="default",
    help="sweep: the values comma-separated on one line, for "
    '-p "lr=$(yanex get params.lr -s completed -F sweep)" -m.',
)
@click.option("--default", "missing", metavar="TEXT", help="Print TEXT for a missing value.")
@click.option("--head", type=click.IntRange(min=0), help="stdout/stderr: its first N lines.")
@click.option("--tail", type=click.IntRange(min=0), help="stdout/stderr: its last N lines.")
@click.option(
    "-f", "--follow", is_flag=True, help="stdout/stderr: follow it until the experiment ends."
)
def get(
    field: str,
    refs: tuple[str, ...],
    limit: int | None,
    fmt: str,
    missing: str | None,
    head: int | None,
    tail: int | None,
    follow: bool,
    depth: int | None,
    **options: Any,
) -> None:
    """Print one FIELD of each experiment, one line each (for scripts).

    \b
    FIELD: params.<key>, results.<name> (its last value), run-command (the `yanex run`
    command line that rebuilds the experiment), cli-command (the one typed), stdout and
    stderr (--head N, --tail N, -f), params and results (their names), artifacts (their
    paths), a metadata path (environment.python.version), or one of:
      id name status dir description tags script args cwd project created started ended
      duration exit_code error sweep sweep_index git.commit git.branch git.dirty rerun_of
      artifacts-dir
    yanex 0.6's names work too: metrics.<name>, metric:<name>, param:<key>, meta:<field>,
    experiment-dir, script_path, completed_at, error_message, git.commit_hash.
    dependencies: its -D dependencies, as SLOT=ID; upstream: the IDs of the experiments it
    depends on, directly or not; downstream: of those that depend on it; lineage: both, and
    itself (comma-joined, upstream first; --depth N: at most N steps away).
    A missing value prints an empty line (--default TEXT); error prints the ID and the
    reason in one line (a tab between). Without IDs, the experiments the filters select.
    \b
    Examples:
      yanex get results.loss --sweep 81d0
      cd "$(yanex get dir 3f9a)"
      $(yanex get run-command 3f9a)
      yanex run train.py -m -p "lr=$(yanex get params.lr -s completed -t best -F sweep)"
      yanex run eval.py -D "model=list($(yanex get downstream 3f9a))" -m
    """
    field = _get_field(field)
    for flag, given in (("--head", head is not None), ("--tail", tail is not None)):
        if given and field not in _OUTPUTS:
            raise click.UsageError(f"{flag} applies to stdout and stderr, not {field}")
    if follow and (field not in _OUTPUTS or fmt != "default" or head is not None):
        raise click.UsageError("-f/--follow follows stdout or stderr (--tail N: from its end)")
    if depth is not None and field not in _LINEAGE_FIELDS:
        raise click.UsageError("--depth applies to upstream, downstream and lineage")
    fmt = fmt.lower()
    with _index() as index:
        records = _selected(index, refs, options, limit=limit)
        if field in _LINEAGE_FIELDS:
            lineage = [_lineage_ids(index, rec, field, depth) for rec in records]
    if not records:
        echo_err("yanex: no experiments match")
        return
    if follow:
        if len(records) > 1:
            raise UserError("-f/--follow follows one experiment; name it")
        _follow(records[0], field, tail)
        return
    if field in _OUTPUTS:
        values: list[Any] = [_output_text(rec, field, head, tail) for rec in records]
    elif field in _LINEAGE_FIELDS:
        values = lineage
    elif field == "error":  # the reason in one line, as list and to_dataframe give it
        values = [columns.reason(rec) for rec in records]
    else:
        values = [_get_value(rec, field) for rec in records]
    if missing is not None:
        values = [missing if value is None else value for value in values]
    _print_values(field, records, values, fmt, single=len(_refs(refs, options)) == 1)


def _lineage_ids(index: Index, rec: Record, field: str, depth: int | None) -> str:
    """``upstream``, ``downstream`` or ``lineage`` of one experiment: IDs, upstream first."""
    from yanex import dependencies

    up, down = _LINEAGE_FIELDS[field]
    found = dependencies.lineage(index, [rec.id], up=up, down=down, depth=depth)
    return ",".join(eid for eid in found.ids if field == "lineage" or eid != rec.id)


def _print_values(
    field: str, records: Sequence[Record], values: Sequence[Any], fmt: str, single: bool
) -> None:
    """get's values in the format asked for (0.6's json, csv, markdown and sweep too)."""
    pairs = list(zip(records, values, strict=True))
    if fmt == "json":
        found = [{"id": rec.id, "value": value} for rec, value in pairs]
        out.print_json(found[0] if single and len(found) == 1 else found)
        return

    def text(value: Any) -> str:
        if isinstance(value, list):
            return ", ".join(out.full_value(item) for item in value)
        return out.full_value(value)

    if fmt == "csv":
        out.print_csv(["id", field], [[rec.id, text(value)] for rec, value in pairs])
    elif fmt == "markdown":
        out.print_markdown(["ID", field], [[rec.id, text(value)] for rec, value in pairs])
    elif fmt == "sweep":
        missing = [rec.id for rec, value in pairs if value is None]
        if missing:  # a sweep over "nothing" is no value: left out, and said
            shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
            echo_err(f"yanex: {len(missing)} of them have no {out.safe(field)}, left out: {shown}")
        present = [value for value in values if value is not None]
        if field.startswith(("params.", "results.")):
            # Each value as Hydra's grammar reads it back (a string with a comma quoted), so
            # that `-p "x=$(yanex get params.x ... -F sweep)" -m` sweeps over exactly these.
            from yanex.config.overrides import render_value

            with user_errors():
                click.echo(",".join(out.safe(render_value(value)) for value in present))
        else:
            flat = [
                item
                for value in present
                for item in (value if isinstance(value, list) else [value])
            ]
            click.echo(",".join(out.full_value(item) for item in flat))
    elif field in _OUTPUTS:
        for value in values:  # the script's output, as it wrote it
            sys.stdout.write(value)
        sys.stdout.flush()
    elif field == "artifacts":
        for value in values:
            for path in value:
                click.echo(out.safe(path))
    elif field == "error":  # which run, and why it failed
        for rec, value in pairs:
            click.echo(f"{rec.id}\t{out.safe(value or '')}".rstrip("\t"))
    else:
        for value in values:
            click.echo(text(value))


# --- changes ----------------------------------------------------------------------------------


def _confirm(records: Sequence[Record], verb: str, yes: bool) -> bool:
    """List what will change and ask (``--yes`` skips; no terminal and no --yes: refuse)."""
    echo_err(f"{verb.capitalize()} {len(records)} experiment{'s' if len(records) != 1 else ''}:")
    for rec in records[:20]:
        echo_err(f"  {_label(rec)}")
    if len(records) > 20:
        echo_err(f"  ... and {len(records) - 20} more")
    if yes:
        return True
    if not sys.stdin.isatty():
        raise UserError(f"nothing was {verb}d: no terminal to confirm on; add --yes to {verb} them")
    return click.confirm(f"{verb.capitalize()} them?", default=False, err=True)


def _apply(
    records: Sequence[Record], verb: str, change: Callable[[Record, Index], Any], index: Index
) -> tuple[list[str], list[tuple[str, str]]]:
    """Make the change to each (the index told of each row changed), refusing (and naming)
    running ones: the IDs changed, and those refused with why."""
    done: list[str] = []
    refused: list[tuple[str, str]] = []
    for rec in records:
        try:
            change(rec, index)
        except manage.RefusedError as exc:
            refused.append((rec.id, exc.format_message()))
            echo_err(f"Error: {exc.format_message()}")
        else:
            done.append(rec.id)
    index.sync()
    past = {"archive": "archived", "unarchive": "unarchived", "delete": "deleted"}[verb]
    echo_err(f"yanex: {past} {len(done)} experiment{'s' if len(done) != 1 else ''}")
    return done, refused


def _report(verb: str, done: Sequence[str], refused: Sequence[tuple[str, str]], fmt: str) -> None:
    """What a change did, for scripts (``-F json``/``csv``/``markdown``, as yanex 0.6 had)."""
    if fmt == "json":
        out.print_json(
            {
                "success": not refused,
                "operation": verb,
                "experiments": list(done),
                "failed": [{"id": i, "error": why} for i, why in refused],
                "count": len(done),
            }
        )
        return
    rows = [[i, "success", ""] for i in done] + [[i, "refused", why] for i, why in refused]
    if fmt == "csv":
        out.print_csv(["id", "status", "error"], rows)
    elif fmt == "markdown":
        out.print_markdown(["ID", "STATUS", "ERROR"], [[c for c in r] for r in rows])


def _format_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "-F",
        "--format",
        "fmt",
        type=click.Choice(["default", "json", "csv", "markdown"], case_sensitive=False),
        default="default",
        help="Also print what was done on stdout, for scripts.",
    )(command)


def _change_command(
    verb: str,
    change: Callable[[Record, Index], Any],
    doc: str,
    archived: bool,
    dependents: bool = False,
) -> click.Command:
    """``dependents``: refuse experiments others depend on (``--ignore-dependents``)."""

    @click.command(verb, context_settings=CONTEXT_SETTINGS, help=doc)
    @click.argument("refs", nargs=-1, metavar="[ID]...")
    @filter_options
    @click.option("-y", "--yes", "--force", "yes", is_flag=True, help="Do it without asking.")
    @_format_option
    def command(refs: tuple[str, ...], yes: bool, fmt: str, **options: Any) -> None:
        ignore_dependents = options.pop("ignore_dependents", False)
        fmt = fmt.lower()
        with _index() as index:
            records = _selected(index, refs, options, archived_default=archived, strict=True)
            if not records:
                echo_err(f"yanex: no experiments match; nothing was {verb}d")
                _report(verb, [], [], fmt)
                return
            running = [rec for rec in records if rec.status == Status.RUNNING]
            if running:
                names = ", ".join(_label(rec) for rec in running[:5])
                raise UserError(
                    f"{len(running)} of them {'is' if len(running) == 1 else 'are'} running and "
                    f"cannot be {verb}d: {names}; nothing was {verb}d"
                )
            act = change
            if dependents:
                if not ignore_dependents:
                    with user_errors():
                        manage.check_dependents(records, index)
                act = functools.partial(change, ignore_dependents=True)  # checked as a whole
            if _confirm(records, verb, yes):
                done, refused = _apply(records, verb, act, index)
                _report(verb, done, refused, fmt)
                if refused:
                    sys.exit(2)
            else:
                echo_err(f"yanex: nothing was {verb}d")

    if dependents:
        command = click.option(
            "--ignore-dependents",
            is_flag=True,
            help="Delete experiments others depend on (-D) too; the others keep naming them.",
        )(command)
    return command


delete = _change_command(
    "delete",
    manage.delete,
    "Delete experiments (their folders) by IDs or filters; running ones are refused, and so "
    "are ones other experiments depend on (-D), unless deleted with them or "
    "--ignore-dependents is given.\n\n"
    "Lists them and asks first (--yes skips the question).",
    archived=False,
    dependents=True,
)
archive = _change_command(
    "archive",
    manage.archive,
    "Archive experiments: out of `yanex list` and `--staged`, kept whole in "
    "$YANEX_HOME/archived (`list --archived` shows them, `unarchive` brings them back).",
    archived=False,
)
unarchive = _change_command(
    "unarchive",
    manage.unarchive,
    "Bring archived experiments back (by IDs or filters over the archived ones).",
    archived=True,
)


@click.command(context_settings=CONTEXT_SETTINGS)
@click.argument("refs", nargs=-1, metavar="[ID]...")
@click.option("-n", "--name", "--set-name", "name", help='A new name ("" removes it).')
@click.option("-d", "--description", "--set-description", "description", help="A new description.")
@click.option("--add-tag", multiple=True, metavar="TAG", help="Add a tag (repeatable).")
@click.option("--remove-tag", multiple=True, metavar="TAG", help="Remove a tag (repeatable).")
@functools.partial(filter_options, name_glob=False)
@click.option("-y", "--yes", "--force", "yes", is_flag=True, help="Change them without asking.")
@click.option("--dry-run", is_flag=True, help="Show what would change; change nothing.")
@click.option("--set-status", hidden=True, help="yanex 0.6's: refused (a status is what happened).")
@click.option("--set-project", hidden=True, help="yanex 0.6's: refused (a project is a folder).")
@_format_option
def update(
    refs: tuple[str, ...],
    name: str | None,
    description: str | None,
    add_tag: tuple[str, ...],
    remove_tag: tuple[str, ...],
    yes: bool,
    dry_run: bool,
    set_status: str | None,
    set_project: str | None,
    fmt: str,
    **options: Any,
) -> None:
    """Change the name, description or tags of experiments, named by IDs or selected by
    filters (several selected by filters are listed and confirmed first; --yes skips)."""
    if set_status is not None:
        raise click.UsageError(
            "--set-status: a status records how a run ended and is never set by hand (yanex "
            "0.6 allowed it); tag the experiment instead: --add-tag " + out.safe(set_status)
        )
    if set_project is not None:
        raise click.UsageError(
            "--set-project: an experiment's project is the repository it ran in, not a name "
            "(yanex 0.6's); list another's with `yanex list -p NAME` or -A"
        )
    if name is None and description is None and not add_tag and not remove_tag:
        raise click.UsageError(
            "say what to change: --name, --description, --add-tag or --remove-tag"
        )
    for tag in add_tag:
        if not tag.strip():
            raise click.BadParameter("a tag cannot be empty", param_hint="'--add-tag'")
    warning = query.name_warning(name)
    if warning:
        echo_err(f"warning: {out.safe(warning)}")
    with _index() as index:
        records = _selected(index, refs, options, strict=True)
        if not records:
            echo_err("yanex: no experiments match; nothing was updated")
            return
        if dry_run:
            echo_err(f"dry run: would update {len(records)} experiments; nothing was changed:")
            for rec in records:
                echo_err(f"  {_label(rec)}")
            return
        if not _refs(refs, options) and len(records) > 1 and not _confirm(records, "update", yes):
            echo_err("yanex: nothing was updated")
            return
        for rec in records:
            manage.update(
                rec,
                name=name,
                description=description,
                add_tags=add_tag,
                remove_tags=remove_tag,
                index=index,
            )
    echo_err(f"yanex: updated {len(records)} experiment{'s' if len(records) != 1 else ''}")
    _report("update", [rec.id for rec in records], [], fmt.lower())


@click.command(context_settings=CONTEXT_SETTINGS)
def reindex() -> None:
    """Rebuild the index of the store from the experiment folders (they are the truth)."""
    import time

    started = time.monotonic()
    with user_errors():
        index = Index(echo=echo_err, progress=IndexProgress())
        try:
            count = index.reindex()
        finally:
            index.close()
    echo_err(
        f"yanex: indexed {count:,} experiments in {time.monotonic() - started:.1f}s ({index.path})"
    )


# --- open -------------------------------------------------------------------------------------


@click.command("open", context_settings=CONTEXT_SETTINGS)
@click.argument("refs", nargs=-1, metavar="[ID]...")
@click.option("--latest", is_flag=True, help="The newest experiment the filters select.")
@filter_options
def open_command(refs: tuple[str, ...], latest: bool, **options: Any) -> None:
    """Open experiments' folders in the file manager, and print their paths.

    Without a desktop (over SSH, in a container) only the paths are printed:
    cd "$(yanex open 3f9a)" goes there.
    """
    if bool(_refs(refs, options)) == latest:
        raise click.UsageError("name the experiments (IDs, prefixes or names), or give --latest")
    with _index() as index:
        records = _selected(index, refs, options, required=False, limit=1 if latest else None)
    if not records:
        raise UserError("no experiments match\n`yanex list` shows what there is.")
    desktop = sys.platform in ("darwin", "win32") or bool(
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    )
    for rec in records:
        click.echo(out.safe(rec.dir))
        if desktop and click.launch(str(rec.dir)) != 0:
            echo_err(f"yanex: could not open {out.safe(rec.dir)} in a file manager")
