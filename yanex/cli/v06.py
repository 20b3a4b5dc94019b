"""yanex 0.6's commands that yanex no longer has: ``push`` and ``pull``. Each exits 2 saying
what to do instead (``yanex --help`` does not list them).
"""

from __future__ import annotations

import click

from yanex.cli import CONTEXT_SETTINGS, UserError

_SYNC = (
    "yanex {verb} (yanex 0.6's copy of experiments {way} another machine) is gone: copy the "
    "experiment folders with rsync, e.g.\n"
    "  {example}\n"
    "then any yanex command indexes what arrived."
)


def _gone(verb: str, way: str, example: str) -> click.Command:
    @click.command(
        verb,
        context_settings={**CONTEXT_SETTINGS, "ignore_unknown_options": True},
        hidden=True,
        add_help_option=False,
    )
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def command(args: tuple[str, ...]) -> None:
        raise UserError(_SYNC.format(verb=verb, way=way, example=example))

    return command


push = _gone("push", "to", "rsync -a ~/.yanex/experiments/ HOST:.yanex/experiments/")
pull = _gone("pull", "from", "rsync -a HOST:.yanex/experiments/ ~/.yanex/experiments/")
