"""``yanex open``: an experiment's folder in the file manager (or its path)."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from yanex.cli import CONTEXT_SETTINGS, UserError, echo_err
from yanex.cli import output as out
from yanex.cli.selection import filter_options, refs_of, selected, synced_index


@click.command("open", context_settings=CONTEXT_SETTINGS)
@click.argument("refs", nargs=-1, metavar="[ID]...")
@click.option("--latest", is_flag=True, help="The newest experiment the filters select.")
@filter_options
def open_command(refs: tuple[str, ...], latest: bool, **options: Any) -> None:
    """Open experiments' folders in the file manager, and print their paths.

    Without a desktop (over SSH, in a container) only the paths are printed:
    cd "$(yanex open 3f9a)" goes there.
    """
    if bool(refs_of(refs, options)) == latest:
        raise click.UsageError("name the experiments (IDs, prefixes or names), or give --latest")
    with synced_index() as index:
        records = selected(index, refs, options, required=False, limit=1 if latest else None)
    if not records:
        raise UserError("no experiments match\n`yanex list` shows what there is.")
    desktop = sys.platform in ("darwin", "win32") or bool(
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    )
    for rec in records:
        click.echo(out.safe(rec.dir))
        if desktop and click.launch(str(rec.dir)) != 0:
            echo_err(f"yanex: could not open {out.safe(rec.dir)} in a file manager")
