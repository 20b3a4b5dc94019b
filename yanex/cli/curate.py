"""``yanex update``, ``archive``, ``unarchive``, ``delete`` and ``reindex``: changing
experiments, through ``yanex.manage``, after a confirmation that lists them.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence
from typing import Any

import click

from yanex import manage, query
from yanex.cli import CONTEXT_SETTINGS, UserError, echo_err, user_errors
from yanex.cli import output as out
from yanex.cli.selection import (
    IndexProgress,
    filter_options,
    label,
    refs_of,
    selected,
    synced_index,
)
from yanex.index import Index
from yanex.record import Record, Status


def _confirm(records: Sequence[Record], verb: str, yes: bool) -> bool:
    """List what will change and ask (``--yes`` skips; no terminal and no --yes: refuse)."""
    echo_err(f"{verb.capitalize()} {len(records)} experiment{'s' if len(records) != 1 else ''}:")
    for rec in records[:20]:
        echo_err(f"  {label(rec)}")
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
        with synced_index() as index:
            records = selected(index, refs, options, archived_default=archived, strict=True)
            if not records:
                echo_err(f"yanex: no experiments match; nothing was {verb}d")
                _report(verb, [], [], fmt)
                return
            running = [rec for rec in records if rec.status == Status.RUNNING]
            if running:
                names = ", ".join(label(rec) for rec in running[:5])
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
    with synced_index() as index:
        records = selected(index, refs, options, strict=True)
        if not records:
            echo_err("yanex: no experiments match; nothing was updated")
            return
        if dry_run:
            echo_err(f"dry run: would update {len(records)} experiments; nothing was changed:")
            for rec in records:
                echo_err(f"  {label(rec)}")
            return
        if not refs_of(refs, options) and len(records) > 1 and not _confirm(records, "update", yes):
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
