"""The ``yanex migrate`` command: yanex 0.6's folders of the store made experiments of ours."""

from __future__ import annotations

import contextlib
import sys

import click

from yanex.cli import CONTEXT_SETTINGS, UserError, echo_err, user_errors


@click.command(context_settings=CONTEXT_SETTINGS)
@click.argument("refs", nargs=-1, metavar="[ID]...")
@click.option("--dry-run", is_flag=True, help="List what migrating would write; write nothing.")
@click.option("-y", "--yes", "--force", "yes", is_flag=True, help="Migrate without asking.")
def migrate(refs: tuple[str, ...], dry_run: bool, yes: bool) -> None:
    """Make the folders yanex 0.6 wrote in the store (all, or those IDs) experiments of this
    yanex: our files are written beside 0.6's, which are kept as they are (its metadata.json
    as metadata.v06.json); 0.6's archive (experiments/archived) moves into ours.

    Until then they are read as they are: listed, shown, compared, never run or changed.
    A rerun finishes a migration that was interrupted; a migrated folder is left alone.
    """
    from yanex import migrate as migration
    from yanex import store
    from yanex.index import Index

    with user_errors():
        home = store.yanex_home()
        folders = migration.select(home, refs)
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
    with contextlib.closing(Index(echo=echo_err)) as index:
        index.sync()
    echo_err(f"yanex: migrated {done} folder{'s' if done != 1 else ''} of yanex 0.6")
    if refused:
        raise UserError(
            f"{len(refused)} folder{'s' if len(refused) != 1 else ''} not migrated: "
            + "; ".join(f"{item.id} ({item.refusal})" for item in refused[:5])
        )
