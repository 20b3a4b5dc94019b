"""The ``yanex`` command line: parses flags, hands the work to the launcher, reports the end.

Messages from yanex itself go to stderr; stdout carries the script's output (or, for
``--dry-run``, the resolved config). A ``YanexError`` is shown as one ``Error: ...`` line (plus
a hint) with exit code 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from yanex.errors import YanexError

if TYPE_CHECKING:
    from yanex.launcher import Prepared

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class UserError(click.ClickException):
    """A ``YanexError`` shown the click way: ``Error: <message>`` on stderr, exit code 2."""

    exit_code = 2


@click.group(context_settings=CONTEXT_SETTINGS)
@click.version_option(package_name="yanex", prog_name="yanex")
def main() -> None:
    """yanex: run Python scripts as tracked, reproducible experiments.

    Each run gets an ID and a folder in $YANEX_HOME/experiments (default ~/.yanex) holding its
    resolved config, git state, output, results, artifacts and metadata.
    """


def _echo_err(message: str) -> None:
    click.echo(message, err=True)


def _describe_git(prepared: Prepared) -> str:
    git = prepared.git
    if git is None:
        return "no git repository"
    commit = (git.commit or "no commit")[:12]
    where = f"branch {git.branch}" if git.branch else "detached HEAD"
    state = "dirty, allowed by --ignore-dirty" if git.dirty else "clean"
    return f"git {commit} on {where} ({state})"


@main.command(context_settings=CONTEXT_SETTINGS)
@click.argument("script", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("script_args", nargs=-1, type=click.UNPROCESSED, metavar="[-- SCRIPT_ARGS...]")
@click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="YAML config file (default: ./config.yaml when present; this replaces it).",
)
@click.option(
    "-p",
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="Set a parameter (repeatable): model.lr=0.005, +new=1, ~remove. "
    "Values are typed: 3, 1e-3, true, null, [1, 2], 'quoted text'.",
)
@click.option("-n", "--name", help="Name of the experiment.")
@click.option("-d", "--description", help="Description of the experiment.")
@click.option("-t", "--tag", "tags", multiple=True, help="Tag the experiment (repeatable).")
@click.option(
    "--ignore-dirty",
    is_flag=True,
    help="Run even with uncommitted changes; they are saved in the experiment's git.patch.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Check everything (script, config, values, git) and print the resolved config; "
    "create nothing.",
)
def run(
    script: Path,
    script_args: tuple[str, ...],
    config_path: Path | None,
    params: tuple[str, ...],
    name: str | None,
    description: str | None,
    tags: tuple[str, ...],
    ignore_dirty: bool,
    dry_run: bool,
) -> None:
    """Run SCRIPT as a tracked experiment.

    \b
    Parameters are merged, lowest to highest priority:
      the script's defaults (yanex.get_param(key, default))
      < the config file (--config, else ./config.yaml)
      < YANEX_PARAM_<key>=<value> environment variables (nested: YANEX_PARAM_model__lr)
      < --param KEY=VALUE
    The script runs with this Python interpreter, in the current folder; arguments after
    `--` reach its sys.argv. A dirty git tree is refused unless --ignore-dirty is given.
    yanex exits with the script's exit code (130 after Ctrl-C, 143 after SIGTERM).

    \b
    Examples:
      yanex run train.py --param model.lr=0.005 --tag baseline
      yanex run train.py -c configs/big.yaml -p epochs=50 -n big-run
      yanex run train.py --dry-run -p "title='Hello, world'"
      yanex run train.py -- --data ./data --verbose
    """
    from yanex.launcher import Launcher, RunRequest, config_yaml

    for tag in tags:
        if not tag.strip():
            raise click.BadParameter("a tag cannot be empty", param_hint="'--tag'")

    request = RunRequest(
        script=script,
        script_args=list(script_args),
        config_path=config_path,
        params=list(params),
        name=name,
        description=description,
        tags=list(tags),
        ignore_dirty=ignore_dirty,
    )
    launcher = Launcher(stdout=sys.stdout.buffer, stderr=sys.stderr.buffer, echo=_echo_err)
    try:
        if dry_run:
            prepared = launcher.prepare(request)
            for warning in prepared.warnings:
                _echo_err(f"warning: {warning}")
            click.echo(config_yaml(prepared.resolved.config), nl=False)
            _echo_err(
                f"dry run: {prepared.script.name} is ready to run with {_describe_git(prepared)}; "
                "nothing was created."
            )
            return
        outcome = launcher.run(request)
    except YanexError as exc:
        raise UserError(exc.format_message()) from exc

    summary = {
        "completed": "completed",
        "failed": f"failed ({outcome.error.splitlines()[0] if outcome.error else 'error'})",
        "cancelled": f"cancelled ({outcome.error})",
    }[outcome.status]
    _echo_err(f"yanex: experiment {outcome.id} {summary}")
    sys.exit(outcome.cli_exit_code)
