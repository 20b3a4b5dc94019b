"""Starting the dashboard: take the address, say where it is, serve until Ctrl-C.

The socket is bound here, before uvicorn starts, so that a busy port is a one-line error
(and ``--port 0`` can print the port the system chose); uvicorn then serves on it.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from yanex.errors import YanexError
from yanex.ui import security
from yanex.ui.app import Settings, create_app


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``; YanexError when the address cannot be taken."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise YanexError(f"cannot listen on {host!r}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        # Restarting at once on the same port works (a closed port in TIME_WAIT), while a
        # port another program listens on stays busy.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise YanexError(
                f"port {port} on {host} is in use; choose another with --port"
            ) from None
        raise YanexError(f"cannot listen on {host} port {port}: {exc.strerror or exc}") from None
    return sock


def url(host: str, port: int, token: str | None) -> str:
    """The address to open: this machine's name for a wildcard address, the token with it."""
    shown = host
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None and address.is_unspecified:
        shown = socket.gethostname()
    elif address is not None and address.version == 6:
        shown = f"[{host}]"
    return f"http://{shown}:{port}/" + (f"?token={token}" if token else "")


def serve(
    sock: socket.socket,
    *,
    host: str,
    home: Path,
    project: str,
    all_projects: bool,
    plotly_js: Path,
    summary: str,
    echo: Callable[[str], None],
    no_token: bool = False,
) -> None:
    """Serve the dashboard on ``sock`` until Ctrl-C (or SIGTERM, which ends the process as
    usual once the server has stopped). Every request needs the token printed in the URL,
    unless ``no_token`` (loopback only: then local host names are all that is checked)."""
    import uvicorn

    port = sock.getsockname()[1]
    token = None if no_token else security.new_token()
    settings = Settings(
        home=home,
        project=project,
        all_projects=all_projects,
        csrf=security.new_token(),
        token=token,
        cookie=f"yanex_token_{port}",
        plotly_js=plotly_js,
    )
    config = uvicorn.Config(
        create_app(settings),
        log_level="warning",
        access_log=False,
        lifespan="off",
        ws="none",
        proxy_headers=False,  # no proxy in front: nobody's X-Forwarded-* is trusted
        server_header=False,
        timeout_graceful_shutdown=3,
    )

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            settings.stopping.set()  # the queries running now stop, and the server with them
            super().handle_exit(sig, frame)

    echo(f"yanex ui: {summary}, at {url(host, port, token)}")
    if token:
        echo(
            "  (every request needs this token, as Jupyter's does: keep the URL to yourself; "
            "--no-token serves 127.0.0.1 without one)"
        )
    else:
        echo(
            "  (no token: anyone who can open this machine's 127.0.0.1 ports, every user of a "
            "shared machine included, can read and delete these experiments)"
        )
    echo("  Ctrl-C stops it.")
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn stops, then passes Ctrl-C on
        Server(config).run(sockets=[sock])
    echo("yanex ui: stopped")
