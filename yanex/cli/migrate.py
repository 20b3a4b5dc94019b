"""The ``yanex migrate`` command: yanex 0.6's folders of the store made experiments of ours."""

from __future__ import annotations

import sys
from typing import Any

import click

from yanex.cli import CONTEXT_SETTINGS, UserError, echo_err, user_errors
from yanex.cli.selection import filter_options, filters_of, refs_of, selected, synced_index


@click.command(context_settings=CONTEXT_SETTINGS)
@click.argument("refs", nargs=-1, metavar="[ID]...")
@filter_options
@click.option(
    "--all",
    "everything",
    is_flag=True,
    help="Every folder of yanex 0.6, archived ones too: what no ID and no filter select "
    "(yanex 0.6's flag).",
)
@click.option("--dry-run", is_flag=True, help="List what migrating would write; write nothing.")
@click.option("-y", "--yes", "--force", "yes", is_flag=True, help="Migrate without asking.")
def migrate(
    refs: tuple[str, ...], everything: bool, dry_run: bool, yes: bool, **options: Any
) -> None:
    """Make the folders yanex 0.6 wrote in the store (all, those IDs, or those the filters
    select, as `yanex list` takes them) experiments of this yanex: our files are written
    beside 0.6's, which are kept as they are (its metadata.json as metadata.v06.json); 0.6's
    archive (experiments/archived) moves into ours.

    Until then they are read as they are: listed, shown, compared, never run or changed.
    A rerun finishes a migration that was interrupted; a migrated folder is left alone.
    """
    from yanex import migrate as migration
    from yanex import store

    named = refs_of(refs, options)
    narrowed = filters_of({**options, "all_projects": True}).narrows() or bool(
        options["project"] or options["archived"]
    )
    if everything and (named or narrowed):
        raise UserError(
            "--all selects every folder of yanex 0.6: give it alone, or IDs and filters"
        )
    with user_errors():
        home = store.yanex_home()
        folders = migration.select(home, named)
    if narrowed:  # the filters, over the index (which reads 0.6's folders as data)
        with synced_index() as index:
            chosen = {rec.id for rec in selected(index, named, options, required=False)}
        folders = [folder for folder in folders if folder.name in chosen]
    plans = [migration.plan(folder, home) for folder in folders]
    if not plans:
        echo_err(f"yanex: no folders of yanex 0.6 in {store.experiments_root(home)}; nothing to do")
        return
    refused = [item for item in plans if item.refusal is not None]
    todo = [item for item in plans if item.refusal is None]
    for item in plans:
        click.echo(item.describe())
    if dry_run:
        echo_err(f"yanex: --dry-run: nothing was written ({len(todo)} to migrate)")
        if refused:
            sys.exit(2)
        return
    if todo and not yes:
        if not sys.stdin.isatty():
            raise UserError(
                "nothing was migrated: no terminal to confirm on; add --yes to migrate them"
            )
        if not click.confirm(f"Migrate {len(todo)} folder(s)?", default=False, err=True):
            echo_err("yanex: nothing was migrated")
            return
    done = 0
    for item in todo:
        try:
            migration.apply(item, home)
        except OSError as exc:
            item.refusal = f"{exc.strerror or exc} (what was written is finished by a rerun)"
            refused.append(item)
            echo_err(f"yanex: {item.id}: not migrated: {item.refusal}")
            continue
        done += 1
    with synced_index() as index:  # migrated: read again as ours
        pass
    echo_err(f"yanex: migrated {done} folder{'s' if done != 1 else ''} of yanex 0.6")
    if refused:
        raise UserError(
            f"{len(refused)} folder{'s' if len(refused) != 1 else ''} not migrated: "
            + "; ".join(f"{item.id} ({item.refusal})" for item in refused[:5])
        )
