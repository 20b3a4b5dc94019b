"""``yanex ui``: the dashboard, a local web server over the store (``yanex.ui``).

Only click is imported here: the server and its libraries (the ``ui`` extra) load when the
command runs, so ``yanex --help`` stays light and works without the extra. What stops the
dashboard from starting (the extra missing, the port busy, the store unreadable) is one
``Error:`` line and exit code 2.
"""

from __future__ import annotations

from pathlib import Path

import click

from yanex.cli import CONTEXT_SETTINGS, UserError, echo_err
from yanex.errors import YanexError


def _one_line(exc: YanexError) -> str:
    text = exc.message if not exc.hint else f"{exc.message} ({exc.hint.rstrip('.')})"
    return " ".join(text.split("\n"))


@click.command(context_settings=CONTEXT_SETTINGS)
@click.option(
    "-p",
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    help="The port to serve on (0: any free one).",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="The address to serve on (e.g. 0.0.0.0 for other machines; use an SSH tunnel across "
    "a network you do not trust).",
)
@click.option(
    "--no-token",
    is_flag=True,
    help="Ask for no token (127.0.0.1, localhost or ::1 only). Anyone who can open this "
    "machine's loopback ports, every user of a shared machine included, can then read and "
    "delete your experiments.",
)
@click.option(
    "-A",
    "--all-projects",
    is_flag=True,
    help="Show every project's experiments (default: this git repository's, else this "
    "folder's; the dashboard can switch).",
)
@click.option(
    "--no-browser",
    is_flag=True,
    hidden=True,
    help="yanex 0.6's: the dashboard never opens a browser (open the printed URL).",
)
def ui(port: int, host: str, all_projects: bool, no_token: bool, no_browser: bool) -> None:
    """Open the dashboard: experiments, metric curves, comparisons, the staged queue.

    \b
    Serves a web page at http://127.0.0.1:8000/ (offline: nothing is loaded from the
    internet) until Ctrl-C. Every request needs the token in the printed URL (open that
    URL once: the browser keeps it in a cookie). Needs the ui extra: pip install "yanex[ui]".
    \b
    Examples:
      yanex ui
      yanex ui --port 8123 -A
      yanex ui --host 0.0.0.0     # from other machines, with the printed token
    """
    if no_token:
        from yanex.ui import security

        if not security.is_loopback(host):
            raise UserError(
                f"--no-token serves only 127.0.0.1, localhost or ::1, not {host} (other "
                "machines would reach it with no token); drop --no-token, or --host 127.0.0.1"
            )
    try:
        from yanex.ui import require_extra

        plotly_js = require_extra()
        from yanex import query
        from yanex.cli.selection import IndexProgress
        from yanex.code.state import project_of
        from yanex.index import Index
        from yanex.ui.server import listen, serve

        index = Index(echo=echo_err, progress=IndexProgress())
        try:
            index.sync()  # an unreadable store stops us here, not at the first page
            home = index.home
            project = str(project_of(Path.cwd()))
            count = query.count(index, query.Filters(project=None if all_projects else project))
        finally:
            index.close()
        sock = listen(host, port)
    except YanexError as exc:
        raise UserError(_one_line(exc)) from exc
    serve(
        sock,
        host=host,
        home=home,
        project=project,
        all_projects=all_projects,
        plotly_js=plotly_js,
        summary=f"{count:,} experiment{'' if count == 1 else 's'} of "
        + ("every project" if all_projects else project),
        echo=click.echo,
        no_token=no_token,
    )
