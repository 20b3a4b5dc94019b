"""Who may use the dashboard, what it may serve, and how a change must be asked for.

- Every request needs the token printed in the start-up URL, on every address, loopback
  included (as Jupyter does): on a shared login node every user can open 127.0.0.1's ports.
  Given once in the URL it is kept in a cookie (and the address bar loses it); scripts send
  ``Authorization: token ...``. Without it: 403.
- ``yanex ui --no-token`` (loopback only) asks for nothing, but answers only under a local
  host name: a page of another site that makes its own name resolve to 127.0.0.1 (DNS
  rebinding) is refused.
- Changes are POSTs carrying the page's CSRF token, which another site cannot read.
- Files are served only from inside an experiment's folder (:func:`open_inside`): opened
  once, without following any link, and served from that descriptor, with a policy that runs
  none of their scripts (an artifact may be any HTML or SVG).
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from yanex import store

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
LOCAL_NAMES = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})

# Pages run our own scripts only; plotly.js sets styles inline.
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
# Files from experiment folders: shown, never run (a sandboxed document has no scripts).
FILE_POLICY = "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'"

_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    # Same-origin requests keep their Origin (a form posted under "no-referrer" says "null").
    (b"referrer-policy", b"same-origin"),
]


def is_loopback(host: str) -> bool:
    """Is ``host`` one of this machine's usual loopback names (where ``--no-token`` may be
    used)?"""
    return host in LOOPBACK_HOSTS


def new_token() -> str:
    return secrets.token_urlsafe(24)


def same(given: str | None, expected: str) -> bool:
    return given is not None and secrets.compare_digest(given.encode(), expected.encode())


def _host_name(host_header: str) -> str:
    """The name in a Host header: ``127.0.0.1:8000`` -> ``127.0.0.1``, ``[::1]:80`` -> ``[::1]``."""
    if host_header.startswith("["):
        return host_header.split("]", 1)[0] + "]"
    return host_header.rsplit(":", 1)[0] if ":" in host_header else host_header


class Guard:
    """ASGI middleware: the token or the local host name, and safe headers on every answer."""

    def __init__(self, app: App, token: str | None, cookie: str) -> None:
        self.app = app
        self.token = token
        self.cookie = cookie

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        if self.token is None:
            if _host_name(headers.get("host", "")).lower() not in LOCAL_NAMES:
                await _plain(
                    send, 403, "403: this dashboard answers only to 127.0.0.1 and localhost"
                )
                return
        else:
            query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
            given = query.get("token") or _cookie(headers.get("cookie", ""), self.cookie)
            auth = headers.get("authorization", "")
            if auth.lower().startswith("token "):
                given = auth[6:].strip()
            if not same(given, self.token):
                await _plain(
                    send,
                    403,
                    "403: this dashboard needs its token: open the URL `yanex ui` printed "
                    "when it started",
                )
                return
            if "token" in query:  # keep it in a cookie, and out of the address bar
                del query["token"]
                # "//evil.example/" would be a protocol-relative address of another site.
                target = "/" + scope["path"].lstrip("/") + ("?" + urlencode(query) if query else "")
                await _redirect_with_cookie(send, target, self.cookie, self.token)
                return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [h for h in _HEADERS if h[0] not in present]
                if b"content-security-policy" not in present:
                    extra.append((b"content-security-policy", PAGE_POLICY.encode()))
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


async def _plain(send: Send, status: int, text: str) -> None:
    body = (text + "\n").encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                *_HEADERS,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _redirect_with_cookie(send: Send, target: str, cookie: str, token: str) -> None:
    value = f"{cookie}={token}; Path=/; HttpOnly; SameSite=Strict"
    await send(
        {
            "type": "http.response.start",
            "status": 303,
            "headers": [
                (b"location", target.encode("latin-1")),
                (b"set-cookie", value.encode("latin-1")),
                (b"content-length", b"0"),
                *_HEADERS,
            ],
        }
    )
    await send({"type": "http.response.body", "body": b""})


def open_inside(folder: Path, name: str) -> tuple[int, os.stat_result]:
    """Open the regular file ``name`` (a relative path with ``/``) inside an experiment folder,
    once: each part is opened relative to the one before it without following a link, so that
    no link, and no link swapped in while the file is opened, can lead out of the folder.
    The descriptor and its stat; the caller serves and closes that descriptor.

    ValueError when the name could leave the folder (empty parts, ``.`` or ``..``, an absolute
    path, a NUL byte, a backslash) or a part of it is a link; FileNotFoundError when there is
    no regular file there (a FIFO or a device is never opened for reading: O_NONBLOCK, then
    fstat).
    """
    store.check_name(name, "file name")  # empty, NUL, absolute, "", "." and ".." parts
    if "\\" in name:  # a URL's name is "/"-separated: a backslash is someone's trick
        raise ValueError(f"{name!r} is not a file name inside the folder")
    parts = name.split("/")
    nofollow = os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | nofollow)
    except OSError as exc:
        raise FileNotFoundError(name) from exc
    try:
        for part in parts[:-1]:
            try:
                inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | nofollow, dir_fd=fd)
            except OSError as exc:
                _refuse_link(fd, part, name, exc)
            os.close(fd)
            fd = inner
        try:
            found = os.open(parts[-1], os.O_RDONLY | os.O_NONBLOCK | nofollow, dir_fd=fd)
        except OSError as exc:
            _refuse_link(fd, parts[-1], name, exc)
    finally:
        os.close(fd)
    info = os.fstat(found)
    if not stat.S_ISREG(info.st_mode):
        os.close(found)
        raise FileNotFoundError(name)
    return found, info


def _refuse_link(fd: int, part: str, name: str, exc: OSError) -> None:
    """Why ``part`` (in the folder open at ``fd``) could not be opened: a link is refused
    (ValueError), anything else is not there (FileNotFoundError)."""
    try:
        is_link = stat.S_ISLNK(os.stat(part, dir_fd=fd, follow_symlinks=False).st_mode)
    except OSError:
        is_link = False
    if is_link:
        raise ValueError(f"{name!r} goes through a link; links are not followed") from exc
    raise FileNotFoundError(name) from exc
