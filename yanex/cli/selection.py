"""Which experiments a reading or curating command means: the filter options they share,
the project they look in, and the store's index, brought up to date (with its progress).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from yanex import query
from yanex.cli import UserError, echo_err, user_errors
from yanex.cli import output as out
from yanex.dotted import leaves
from yanex.index import Index
from yanex.index_values import param_leaves
from yanex.record import Record, Status

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


def refs_of(refs: Sequence[str], options: dict[str, Any]) -> list[str]:
    """The experiments named as arguments, then by ``-i/--ids A,B`` (0.6's way)."""
    named = [ref for text in options.get("id_lists") or () for ref in text.split(",")]
    return [*refs, *(ref.strip() for ref in named if ref.strip())]


def project_scope(options: dict[str, Any], index: Index | None) -> str | None:
    """The project the filters look in: ``--project NAME`` (a folder name or path), every
    project (``-A``), or the current one."""
    wanted = options.get("project")
    if wanted is None:
        return None if options["all_projects"] else current_project_name()
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


def filters_of(
    options: dict[str, Any],
    ids: Sequence[str] = (),
    archived_default: bool = False,
    index: Index | None = None,
) -> query.Filters:
    """The filters the options ask for; named experiments are looked up in the whole store."""
    project = None
    if not ids:
        project = project_scope(options, index)
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
def synced_index(verify: bool = True) -> Iterator[Index]:
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
def current_project_name() -> str:
    """The project the command is run in (one git call, made when first needed)."""
    from yanex.code.state import project_of

    return str(project_of(Path.cwd()))


def selected(
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
    refs = refs_of(refs, options)
    if refs:
        scope = None if options["all_projects"] else current_project_name
        ids = [rec.id for rec in query.Lookup(index, scope, strict).many(refs)]
    filters = filters_of(options, ids, archived_default, index)
    if required and not refs and not filters.narrows():
        raise UserError(
            "name the experiments (IDs, prefixes or names) or select them with filters "
            "(--status, --tag, --name, --where, ...)"
        )
    records = query.select(index, filters, sort=sort, limit=limit)
    if ids and sort == (query.NEWEST_FIRST,):  # named ones: in the order given
        records.sort(key=lambda rec: ids.index(rec.id))
    return records


def label(rec: Record) -> str:
    return f"{rec.id} {out.safe(rec.name) if rec.name else '(unnamed)'} [{rec.status}]"


def result_names(records: Sequence[Record]) -> list[str]:
    """The results' dotted names (``val.f1``), as --where and --sort name them."""
    return list(dict.fromkeys(name for rec in records for name in flat_last(rec)))


def flat_last(rec: Record) -> dict[str, Any]:
    return dict(leaves(rec.last))


def flat_params(rec: Record) -> dict[str, Any]:
    return dict(param_leaves(rec.params))
