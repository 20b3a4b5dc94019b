"""The dashboard's web application: Starlette routes, rendered with Jinja2.

Handlers that read the store (the index, experiment folders) are plain functions, run in the
thread pool, so a slow disk never stalls the server; each opens its own index, brought up to
date as every CLI command does (SQLite connections belong to the thread that opened them).
Their queries are cancelled when the browser goes away (a page reloaded mid-query) or the
server stops (Ctrl-C): a slow query nobody waits for stops at once, instead of running on.
Handlers of changes are async only to read their form: the change itself runs in the thread
pool too. Every change is a POST with the page's CSRF token, made through ``yanex.manage``
under the CLI's rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote, urlencode, urlsplit

import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from yanex import columns, dependencies, display, manage, query, store
from yanex.errors import StoreBusy, StoreError, YanexError
from yanex.index import Index
from yanex.record import Record, Status
from yanex.terminal import safe
from yanex.ui import security, views

HERE = Path(__file__).parent
MAX_SELECTED = 100  # experiments compared or overlaid at once
MAX_VIEWED_BYTES = 2 * 1024 * 1024  # a text file shown in a page; larger ones are downloaded
ACTIONS = {"archive": manage.archive, "unarchive": manage.unarchive, "delete": manage.delete}
DONE = {
    "updated": "Saved.",
    "archived": "Archived: out of the table and of `yanex run --staged`; Unarchive brings it back.",
    "unarchived": "Unarchived: back in the table.",
    "deleted": "Deleted.",
}


@dataclass(frozen=True)
class Settings:
    """What one dashboard serves, and the secrets it checks."""

    home: Path  # the store
    project: str  # the project it was started in
    all_projects: bool  # the table shows every project unless asked otherwise
    csrf: str  # in every form of a change
    token: str | None  # required on every request (None: loopback only, by host name)
    cookie: str  # where the browser keeps the token
    plotly_js: Path  # served from the installed plotly package
    # Set when the server stops: every running query is cancelled.
    stopping: threading.Event = field(default_factory=threading.Event)


# How many SQLite steps a query takes between two looks at whether it is still wanted.
_CANCEL_CHECK_STEPS = 10_000


class _Wanted(threading.local):
    """The request a thread pool thread is answering now: set while it is still wanted."""

    cancelled: threading.Event | None = None


def _chunks(f: BinaryIO, size: int = 1 << 16) -> Iterator[bytes]:
    """A file's bytes in chunks, closing it at the end (or when the client goes away)."""
    with f:
        while chunk := f.read(size):
            yield chunk


def _elapsed(rec: Record) -> str:
    """How long it ran, or has been running."""
    if rec.duration is not None:
        return display.duration(rec.duration)
    if rec.status == Status.RUNNING and rec.started_ts is not None:
        return display.duration(max(0.0, time.time() - rec.started_ts))
    return "-"


def _environment(settings: Settings) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    try:
        release = version("yanex")
    except PackageNotFoundError:  # pragma: no cover - run from a source tree
        release = "dev"
    env.filters.update(
        clean=safe,
        value=display.value,
        full=display.full_value,
        ago=display.ago,
        size=display.size,
        when=display.local_time,
        elapsed=_elapsed,
        basename=lambda path: Path(str(path)).name,
        clean_lines=lambda text: "\n".join(safe(line) for line in str(text).split("\n")),
        tojson_clean=lambda value: safe(json.dumps(value, ensure_ascii=False, default=str)),
    )
    env.globals.update(
        csrf=settings.csrf,
        release=release,
        static=lambda name: f"/static/{name}?v={release}",
        plotly=f"/vendor/plotly.min.js?v={release}",
        statuses=Status.ALL,
        live_statuses=Status.LIVE,
        project=settings.project,
        project_name=Path(settings.project).name,
        page_sizes=views.PAGE_SIZES,
        lower_is_better=query.lower_is_better,
        now=time.time,
        cell=display.cell,
        reason=columns.reason,
        fields=columns.FIELDS,
    )
    return env


class Dashboard:
    """The routes, over one store."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.env = _environment(settings)
        self.wanted = _Wanted()

    # -- plumbing ---------------------------------------------------------------------------

    def reader(self, handler: Callable[[Request], Response]) -> Callable[[Request], Any]:
        """``handler`` (which reads the store) as an endpoint run in the thread pool, whose
        queries are cancelled when the client goes away or the server stops."""

        async def endpoint(request: Request) -> Response:
            cancelled = threading.Event()

            async def watch() -> None:
                # A GET's one request message, then whatever comes next: only a disconnect
                # (or the end of the response, when nobody waits any more) comes next.
                while (await request.receive())["type"] != "http.disconnect":
                    pass
                cancelled.set()

            watcher = asyncio.ensure_future(watch())
            try:
                return await run_in_threadpool(self._answer, handler, request, cancelled)
            finally:
                watcher.cancel()

        return endpoint

    def _answer(
        self, handler: Callable[[Request], Response], request: Request, cancelled: threading.Event
    ) -> Response:
        self.wanted.cancelled = cancelled
        try:
            return handler(request)
        except sqlite3.OperationalError:
            if cancelled.is_set() or self.settings.stopping.is_set():
                return Response("cancelled: the client went away, or the server stops", 503)
            raise
        finally:
            self.wanted.cancelled = None

    @contextlib.contextmanager
    def index(self) -> Iterator[tuple[Index, list[str]]]:
        """The store's index brought up to date, and the notices it gave (skipped folders).
        Its queries stop (sqlite3.OperationalError) once the request is no longer wanted."""
        notices: list[str] = []
        index = Index(self.settings.home, echo=notices.append)
        try:
            index.sync()  # brought up to date whole: only the reading after it is cancelled
            cancelled, stopping = self.wanted.cancelled, self.settings.stopping
            if cancelled is not None:
                index.conn.set_progress_handler(
                    lambda: cancelled.is_set() or stopping.is_set(), _CANCEL_CHECK_STEPS
                )
            yield index, notices
        finally:
            index.close()

    def render(self, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        return HTMLResponse(self.env.get_template(template).render(**context), status_code)

    def _lookup(self, index: Index, ref: str) -> Record:
        scope = None if self.settings.all_projects else self.settings.project
        try:
            return query.Lookup(index, scope).one(ref)
        except query.QueryError as exc:
            raise HTTPException(404, exc.format_message()) from None

    def _exact(self, index: Index, experiment_id: str) -> Record:
        if not store.is_valid_id(experiment_id):
            raise HTTPException(404, f"{safe(experiment_id)!r} is not an experiment ID")
        try:
            return query.Lookup(index, None).exact(experiment_id)
        except query.QueryError as exc:
            raise HTTPException(404, exc.format_message()) from None

    def _selection(self, index: Index, request: Request) -> list[Record]:
        """The experiments a compare or overlay asks for: ``id=`` (IDs, prefixes, names;
        comma-separated too) or ``sweep=`` (its members, in grid order)."""
        refs = views.words(request.query_params.getlist("id"))
        sweep = request.query_params.get("sweep", "").strip()
        found: list[Record] = []
        try:
            if refs:
                scope = None if self.settings.all_projects else self.settings.project
                found = query.Lookup(index, scope).many(refs[:MAX_SELECTED])
            if sweep:
                filters = query.make_filters(sweep=sweep, archived=None)
                order = (query.Sort("sweep_index"),)
                members = query.select(index, filters, order, limit=MAX_SELECTED)
                found += [rec for rec in members if rec.id not in {r.id for r in found}]
        except query.QueryError as exc:
            raise HTTPException(404, exc.format_message()) from None
        return found

    async def _form(self, request: Request) -> FormData:
        """The form of a change, once its origin and CSRF token are checked (403 otherwise)."""
        origin = request.headers.get("origin")
        if origin and urlsplit(origin).netloc != request.headers.get("host"):
            raise HTTPException(403, "a change must come from the dashboard's own pages")
        form = await request.form()
        token = form.get("csrf")
        if not security.same(token if isinstance(token, str) else None, self.settings.csrf):
            raise HTTPException(
                403,
                "this form has no valid CSRF token: reload the page and try again "
                "(changes are accepted only from the dashboard's own pages)",
            )
        return form

    # -- the table --------------------------------------------------------------------------

    def _query(self, request: Request) -> views.TableQuery:
        params = {key: request.query_params.getlist(key) for key in request.query_params}
        return views.TableQuery.parse(params, self.settings.all_projects)

    def _table_context(self, request: Request, whole: bool = True) -> tuple[dict[str, Any], int]:
        """The table's page; ``whole``: with what the column picker offers."""
        q = self._query(request)
        context: dict[str, Any] = {"q": q, "page": None, "error": None, "notices": []}
        with self.index() as (index, notices):
            try:
                context["page"] = page = views.table_page(index, q, self.settings.project)
                if whole:
                    page.picker = views.picker(index)
            except query.QueryError as exc:
                context["error"] = exc.format_message()
        context["notices"] = notices
        done = request.query_params.get("done")
        context["done"] = DONE.get(done or "")
        which = request.query_params.get("which", "")
        if done == "deleted" and store.is_valid_id(which):
            context["done"] = f"Deleted experiment {which}."
        return context, 400 if context["error"] else 200

    def table(self, request: Request) -> Response:
        context, status = self._table_context(request)
        return self.render("table.html", status, nav="table", **context)

    def rows(self, request: Request) -> Response:
        """The table alone, for live updates."""
        context, status = self._table_context(request, whole=False)
        return self.render("_table.html", status, **context)

    def table_csv(self, request: Request) -> Response:
        """Every row the table's filters select, with the columns it shows."""
        q = self._query(request)
        with self.index() as (index, _):
            try:
                page = views.table_page(index, q, self.settings.project)
                text = views.table_csv(index, q, self.settings.project, page.columns)
            except query.QueryError as exc:
                raise HTTPException(400, exc.format_message()) from None
        return _csv(text, "experiments.csv")

    # -- the sweep view ---------------------------------------------------------------------

    def sweep(self, request: Request) -> Response:
        q = self._query(request)
        return self.render(
            "sweep.html",
            nav="sweep",
            q=q,
            source=q.url("/api/sweep"),
            result=request.query_params.get("result", ""),
            x=request.query_params.get("x", ""),
        )

    def sweep_data(self, request: Request) -> Response:
        q = self._query(request)
        with self.index() as (index, _):
            try:
                data = views.sweep_data(index, q, self.settings.project)
            except query.QueryError as exc:
                raise HTTPException(400, exc.format_message()) from None
        return JSONResponse(data)

    # -- one experiment ---------------------------------------------------------------------

    def experiment(self, request: Request) -> Response:
        ref = request.path_params["ref"]
        with self.index() as (index, _):
            rec = self._lookup(index, ref)
            if rec.id != ref:
                return RedirectResponse(f"/e/{rec.id}", 303)
            ups, downs = dependencies.links(index, rec.id)  # both ways, linked
        x = views.experiment(rec)
        done = DONE.get(request.query_params.get("done", ""))
        return self.render(
            "experiment.html", nav="experiment", x=x, rec=rec, done=done, ups=ups, downs=downs
        )

    def live(self, request: Request) -> Response:
        """What changed in a live experiment: its status, and the log lines since the offsets
        the page has (``?stdout=N&stderr=M``)."""
        with self.index() as (index, _):
            rec = self._exact(index, request.path_params["id"])
        answer: dict[str, Any] = {
            "status": rec.status,
            "results": [
                [
                    safe(name),
                    display.value(s.last),
                    display.value(s.min),
                    display.value(s.max),
                    str(s.count),
                    "" if s.last_step is None else str(s.last_step),
                ]
                for name, s in rec.series.items()
            ],
        }
        for name, filename in (("stdout", store.STDOUT), ("stderr", store.STDERR)):
            offset = request.query_params.get(name)
            start = int(offset) if offset and offset.isdigit() else None
            tail = views.read_tail(rec.output_file(filename), start)
            answer[name] = {"lines": tail.lines, "offset": tail.offset}
        return JSONResponse(answer)

    def _open(self, request: Request) -> tuple[Record, str, int, os.stat_result]:
        """The experiment and the file a request names, opened once (see
        ``security.open_inside``): 403 for a name that could leave the folder, 404 for none."""
        with self.index() as (index, _):
            rec = self._exact(index, request.path_params["id"])
        name = request.path_params["name"]
        try:
            fd, info = security.open_inside(rec.dir, name)
        except ValueError as exc:
            raise HTTPException(403, str(exc)) from None
        except FileNotFoundError:
            raise HTTPException(404, f"experiment {rec.id} has no file {safe(name)}") from None
        return rec, name, fd, info

    def file(self, request: Request) -> Response:
        """A file of the experiment's folder: images and text shown, anything downloadable,
        sent from the descriptor that was checked (never opened again by its name)."""
        _, name, fd, info = self._open(request)
        entry = views.file_entry(name, 0)
        suffix = Path(name).suffix.lower()
        download = request.query_params.get("download") == "1" or not (entry.image or entry.text)
        if entry.image:
            media_type = views.IMAGE_TYPES[suffix]
        elif entry.text:
            media_type = "text/plain; charset=utf-8"
        else:
            media_type = "application/octet-stream"
        filename = Path(name).name
        quoted = quote(filename)
        disposition = "attachment" if download else "inline"
        disposition += (
            f"; filename*=utf-8''{quoted}" if quoted != filename else f'; filename="{filename}"'
        )
        return StreamingResponse(
            _chunks(os.fdopen(fd, "rb")),
            media_type=media_type,
            headers={
                "content-length": str(info.st_size),
                "content-disposition": disposition,
                "content-security-policy": security.FILE_POLICY,
                "cache-control": "no-store",
            },
        )

    def view(self, request: Request) -> Response:
        """A text file of the folder in a page (a patch with its changes coloured)."""
        rec, name, fd, info = self._open(request)
        with os.fdopen(fd, "rb") as f:
            data = f.read(MAX_VIEWED_BYTES)
        text = data.decode("utf-8", "replace")
        if name.endswith((".patch", ".diff")):
            lines = views.patch_lines(text)
        else:
            lines = [("", line) for line in views.terminal_lines(data)]
        return self.render(
            "view.html",
            rec=rec,
            name=name,
            lines=lines,
            size=info.st_size,
            cut=info.st_size > len(data),
        )

    # -- curves and comparisons -------------------------------------------------------------

    def curves_data(self, request: Request) -> Response:
        with self.index() as (index, _):
            records = self._selection(index, request)
        return JSONResponse(views.curves(records))

    def curves_csv(self, request: Request) -> Response:
        """Every logged step of the selection (or of one result: ``result=``), whole."""
        with self.index() as (index, _):
            records = self._selection(index, request)
        result = request.query_params.get("result") or None
        name = f"{result or 'results'}.csv" if len(records) != 1 else f"{records[0].id}.csv"
        return _csv(views.curves_csv(records, result), name)

    def compare_csv(self, request: Request) -> Response:
        with self.index() as (index, _):
            records = self._selection(index, request)
        return _csv(views.compare_csv(views.comparison(records)), "compare.csv")

    def curves(self, request: Request) -> Response:
        with self.index() as (index, _):
            records = self._selection(index, request)
        source = urlencode([("id", rec.id) for rec in records])
        return self.render(
            "curves.html",
            nav="curves",
            records=records,
            source=f"/api/curves?{source}",
            sweep=request.query_params.get("sweep", "").strip(),
        )

    def compare(self, request: Request) -> Response:
        with self.index() as (index, _):
            records = self._selection(index, request)
        c = views.comparison(records)
        source = urlencode([("id", rec.id) for rec in records])
        return self.render("compare.html", nav="compare", c=c, source=f"/api/curves?{source}")

    def staged(self, request: Request) -> Response:
        scope = request.query_params.get("scope")
        all_projects = self.settings.all_projects if scope is None else scope == "all"
        with self.index() as (index, _):
            queues = views.staged_queue(index, None if all_projects else self.settings.project)
        return self.render("staged.html", nav="staged", queues=queues, all_projects=all_projects)

    # -- changes ----------------------------------------------------------------------------

    async def update(self, request: Request) -> Response:
        form = await self._form(request)

        def change() -> str:
            with self.index() as (index, _):
                rec = self._exact(index, request.path_params["id"])
                name = form.get("name")
                description = form.get("description")
                remove = form.get("remove_tag")
                manage.update(
                    rec,
                    name=name if isinstance(name, str) else None,
                    description=description if isinstance(description, str) else None,
                    add_tags=views.words(
                        [v for v in form.getlist("add_tag") if isinstance(v, str)]
                    ),
                    remove_tags=[remove] if isinstance(remove, str) and remove else [],
                )
                index.refresh([rec.id])
                return rec.id

        experiment_id = await run_in_threadpool(change)
        return RedirectResponse(f"/e/{experiment_id}?done=updated", 303)

    def confirm(self, request: Request) -> Response:
        """Archive, unarchive or delete asks first, on a page of its own."""
        action = request.path_params["action"]
        if action not in ACTIONS:
            raise HTTPException(404, "no such page")
        with self.index() as (index, _):
            rec = self._exact(index, request.path_params["id"])
            downs = dependencies.links(index, rec.id)[1] if action == "delete" else []
        refusal = None
        if rec.status == Status.RUNNING and action != "unarchive":
            refusal = f"experiment {rec.id} is running; it cannot be {action}d"
        return self.render(
            "confirm.html", rec=rec, action=action, refusal=refusal, dependents=downs
        )

    async def act(self, request: Request) -> Response:
        action = request.path_params["action"]
        if action not in ACTIONS:
            raise HTTPException(404, "no such page")
        await self._form(request)

        def change() -> str:
            with self.index() as (index, _):
                rec = self._exact(index, request.path_params["id"])
                ACTIONS[action](rec, index)  # a delete others depend on is refused (409)
                index.sync()
                return rec.id

        experiment_id = await run_in_threadpool(change)
        if action == "delete":
            return RedirectResponse(f"/?done=deleted&which={experiment_id}", 303)
        return RedirectResponse(f"/e/{experiment_id}?done={action}d", 303)

    # -- assets -----------------------------------------------------------------------------

    def plotly(self, request: Request) -> Response:
        return FileResponse(
            self.settings.plotly_js,
            media_type="text/javascript",
            headers={"cache-control": "public, max-age=86400"},
        )

    # -- errors -----------------------------------------------------------------------------

    def error_page(self, status: int, message: str) -> HTMLResponse:
        return self.render("error.html", status, status=status, message=message)

    async def http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if request.url.path.startswith("/api/") or request.url.path.endswith("/live"):
            return JSONResponse({"error": exc.detail}, exc.status_code)
        return self.error_page(exc.status_code, str(exc.detail))

    async def user_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, YanexError)
        status = 409 if isinstance(exc, manage.RefusedError) else 400
        headers = {}
        if isinstance(exc, StoreError):  # the server's store, not the request: try again later
            status = 503
            if isinstance(exc, StoreBusy):
                headers["retry-after"] = "5"
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": exc.format_message()}, status, headers=headers)
        page = self.error_page(status, exc.format_message())
        page.headers.update(headers)
        return page

    def routes(self) -> list[Route | Mount]:
        actions = "{action:str}"
        read = self.reader
        return [
            Route("/", read(self.table)),
            Route("/rows", read(self.rows)),
            Route("/table.csv", read(self.table_csv)),
            Route("/sweep", read(self.sweep)),
            Route("/api/sweep", read(self.sweep_data)),
            Route("/api/curves.csv", read(self.curves_csv)),
            Route("/compare.csv", read(self.compare_csv)),
            Route("/staged", read(self.staged)),
            Route("/compare", read(self.compare)),
            Route("/curves", read(self.curves)),
            Route("/api/curves", read(self.curves_data)),
            Route("/e/{ref}", read(self.experiment)),
            Route("/e/{id}/live", read(self.live)),
            Route("/e/{id}/files/{name:path}", read(self.file)),
            Route("/e/{id}/view/{name:path}", read(self.view)),
            Route("/e/{id}/update", self.update, methods=["POST"]),
            Route(f"/e/{{id}}/{actions}", read(self.confirm), methods=["GET"]),
            Route(f"/e/{{id}}/{actions}", self.act, methods=["POST"]),
            Route("/vendor/plotly.min.js", self.plotly),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ]


def _csv(text: str, filename: str) -> Response:
    """A CSV download (the name is the browser's suggestion: only safe characters)."""
    safe_name = "".join(c if c.isalnum() or c in "._-" else "_" for c in filename)
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={
            "content-disposition": f'attachment; filename="{safe_name}"',
            "cache-control": "no-store",
        },
    )


def create_app(settings: Settings) -> Any:
    """The dashboard as an ASGI application, behind its guard (token or local host name)."""
    dashboard = Dashboard(settings)
    app = Starlette(
        routes=dashboard.routes(),
        exception_handlers={
            HTTPException: dashboard.http_error,
            YanexError: dashboard.user_error,
        },
    )
    return security.Guard(app, settings.token, settings.cookie)
