"""The ``yanex`` command line: one group whose commands are loaded when they are used.

``yanex run`` is paid on every run, so the group imports nothing but click: each command
family lives in its own module (``run`` for running and staging; ``listing``, ``show``,
``compare``, ``diff``, ``get``, ``curate`` and ``open`` for finding and changing experiments,
with what they share in ``selection``), imported only when one of its commands is called (or
``--help`` lists them). A ``YanexError`` is shown as one ``Error: ...`` line (plus a hint)
with exit code 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from importlib import import_module
from typing import Any

import click

from yanex.errors import YanexError
from yanex.terminal import safe_lines

CONTEXT_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

# Each command's module and function, in the order `yanex --help` lists them.
COMMANDS = {
    "run": "yanex.cli.run:run",
    "stage": "yanex.cli.run:stage",
    "rerun": "yanex.cli.run:rerun",
    "list": "yanex.cli.listing:list_command",
    "show": "yanex.cli.show:show",
    "compare": "yanex.cli.compare:compare",
    "diff": "yanex.cli.diff:diff",
    "get": "yanex.cli.get:get",
    "update": "yanex.cli.curate:update",
    "archive": "yanex.cli.curate:archive",
    "unarchive": "yanex.cli.curate:unarchive",
    "delete": "yanex.cli.curate:delete",
    "open": "yanex.cli.open:open_command",
    "reindex": "yanex.cli.curate:reindex",
    "migrate": "yanex.cli.migrate:migrate",
    "ui": "yanex.cli.ui:ui",
}
# yanex 0.6's commands that are gone: each says what to do instead (not in `yanex --help`).
GONE = {"push": "yanex.cli.v06:push", "pull": "yanex.cli.v06:pull"}


class UserError(click.ClickException):
    """A ``YanexError`` shown the click way: ``Error: <message>`` on stderr, exit code 2."""

    exit_code = 2

    def format_message(self) -> str:
        return safe_lines(self.message)  # it may quote user text


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Show the user's mistakes (``YanexError``) as ``Error: ...`` and exit 2."""
    try:
        yield
    except YanexError as exc:
        raise UserError(exc.format_message()) from exc


def echo_err(message: str) -> None:
    """One of yanex's own messages, on stderr; user text in it cannot steer the terminal."""
    click.echo(safe_lines(message), err=True)


class _LazyGroup(click.Group):
    """Commands imported from their module when used (click's "lazily loading subcommands")."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name) or GONE.get(cmd_name)
        if target is None:
            return None
        module, _, name = target.partition(":")
        command = getattr(import_module(module), name)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=_LazyGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(package_name="yanex", prog_name="yanex")
def main() -> None:
    """yanex: run Python scripts as tracked, reproducible experiments.

    Each run gets an ID and a folder in $YANEX_HOME/experiments (default ~/.yanex) holding its
    resolved config, git state, output, results, artifacts and metadata. `yanex list`, `show`
    and `compare` find and compare them; an experiment is named by its ID, a unique ID prefix
    (4+ characters) or its name.
    """


# Shell completion (`_YANEX_COMPLETE=bash_source yanex`): bash's own splitting at `=` needs
# yanex's bash script to complete overrides (`model=<TAB>`); see yanex.cli.completion.
if os.environ.get("_YANEX_COMPLETE", "").startswith("bash"):
    from yanex.cli.completion import register

    register()
