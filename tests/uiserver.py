"""A real `yanex ui` process for tests: started on a free port, spoken to over HTTP, stopped.

Its stdout and stderr are read all along (a full pipe would stall the server), and what it
wrote to stderr is kept, so a test module can check that no request raised.
"""

from __future__ import annotations

import http.client
import queue
import re
import signal
import subprocess
import threading
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlencode, urlsplit

from conftest import Project

START_TIMEOUT = 90  # seconds: a hang guard, not a speed requirement


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


@dataclass
class Server:
    """``yanex ui --port 0 ARGS`` run in a project, until :meth:`stop`."""

    proc: subprocess.Popen[bytes]
    url: str  # as printed
    host: str
    port: int
    token: str | None
    stderr: list[str] = field(default_factory=list)

    @classmethod
    def start(cls, proj: Project, *args: str, env: dict[str, str] | None = None) -> Server:
        proc = proj.popen("ui", "--port", "0", *args, env=env)
        lines: queue.Queue[str | None] = queue.Queue()
        errors: list[str] = []

        def pump_out() -> None:
            assert proc.stdout is not None
            for raw in proc.stdout:
                lines.put(raw.decode("utf-8", "replace"))
            lines.put(None)

        def pump_err() -> None:
            assert proc.stderr is not None
            for raw in proc.stderr:
                errors.append(raw.decode("utf-8", "replace"))

        threading.Thread(target=pump_out, daemon=True).start()
        threading.Thread(target=pump_err, daemon=True).start()
        while True:
            try:
                line = lines.get(timeout=START_TIMEOUT)
            except queue.Empty:
                proc.kill()
                raise AssertionError("yanex ui printed no URL") from None
            if line is None:
                proc.wait(timeout=30)
                raise AssertionError(f"yanex ui stopped: {''.join(errors)}")
            found = re.search(r"http://\S+", line)
            if found:
                break
        url = found.group()
        parts = urlsplit(url)
        token = re.search(r"token=([\w-]+)", url)
        return cls(
            proc,
            url,
            parts.hostname or "",
            parts.port or 80,
            token.group(1) if token else None,
            errors,
        )

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        host: str | None = None,
        token: bool = True,
    ) -> Reply:
        """One request, the path sent as it is (no ``..`` folded away), no redirect followed;
        with the server's token (as a script sends it) unless ``token=False``."""
        sent = dict(headers or {})
        if token and self.token and "authorization" not in {k.lower() for k in sent}:
            sent["Authorization"] = f"token {self.token}"
        conn = http.client.HTTPConnection(host or self.host, self.port, timeout=60)
        try:
            conn.request(method, path, body=body, headers=sent)
            response = conn.getresponse()
            return Reply(
                response.status,
                {k.lower(): v for k, v in response.getheaders()},
                response.read(),
            )
        finally:
            conn.close()

    def get(self, path: str, headers: dict[str, str] | None = None, token: bool = True) -> Reply:
        return self.request("GET", path, headers=headers, token=token)

    def post(
        self,
        path: str,
        data: dict[str, Any],
        headers: dict[str, str] | None = None,
        token: bool = True,
    ) -> Reply:
        body = urlencode(data, doseq=True).encode()
        sent = {"content-type": "application/x-www-form-urlencoded", **(headers or {})}
        return self.request("POST", path, body=body, headers=sent, token=token)

    def csrf(self, path: str = "/") -> str:
        page = self.get(path)
        found = re.search(r'<meta name="csrf" content="([^"]+)">', page.text)
        assert found, page.text[:500]
        return found.group(1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self.skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self.skip -= 1

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(data)


def text(html: str) -> str:
    """What a reader sees of a page: its text, entities decoded, spaces folded."""
    parser = _Text()
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split())


def row_ids(html: str) -> list[str]:
    """The experiment IDs of the table's rows, top to bottom."""
    return re.findall(r'<tr data-id="([0-9a-f]{8})"', html)
