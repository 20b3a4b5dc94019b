"""`yanex ui` over HTTP: a real server process on 127.0.0.1, over a store made by real runs.

What a browser would get: the table (the same rows as `yanex list`, the same filters, sorts,
search, pages), one experiment, curves, comparisons, the staged queue, edits and their rules,
and the security rules (token, host names, CSRF, files only from inside experiment folders).
"""

from __future__ import annotations

import contextlib
import csv
import html
import io
import json
import os
import platform
import re
import signal
import socket
import sqlite3
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote_plus

import pytest
from conftest import (
    Project,
    assert_usage_error,
    clean_env,
    git,
    metadata,
    results,
    run_python,
    runs_of_each_git_state,
)
from uiserver import Server, row_ids, text

from yanex.index import SCHEMA_VERSION

# Every test here talks to a real `yanex ui` process (a module-wide server): the full suite.
pytestmark = pytest.mark.slow

TRAIN = """
import struct, sys, zlib, yanex
lr = yanex.get_param("lr", 0.1)
width = yanex.get_param("model.width", 8)
for step in range(12):
    yanex.log_results({"loss": round(1.0 / (step + 1) + lr, 6), "acc": round(step / 12, 6)})
if yanex.get_param("fail", False):
    print("loading the data", file=sys.stderr)
    print("ValueError: the data is bad", file=sys.stderr)
    sys.exit(3)

def chunk(kind, data):
    crc = struct.pack(">I", zlib.crc32(kind + data))
    return struct.pack(">I", len(data)) + kind + data + crc

def png(width, height):
    rows = b"".join(b"\\x00" + b"\\x20\\x60\\xc0" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
    return b"\\x89PNG\\r\\n\\x1a\\n" + body + chunk(b"IEND", b"")

open("plot.png", "wb").write(png(4, 3))
yanex.log_artifact("plot.png")
yanex.save_artifact("a note", "note.txt")
print("trained with", lr, width)
"""

WAIT = """
import os, time, yanex
yanex.log_results({"loss": 1.0}, step=0)
print("waiting", flush=True)
while not os.path.exists("go"):
    time.sleep(0.05)
yanex.log_results({"loss": 0.5}, step=1)
print("done", flush=True)
"""

HOSTILE = "<script>alert(1)</script>\x1b[2J"


def run_ok(proj: Project, *args: str) -> None:
    r = proj.yanex(*args)
    assert r.returncode == 0, (args, r.stderr)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """Runs of every kind: completed with artifacts, failed, a run grid, a staged grid, a
    dirty run with its patch, a hostile name, runs to change, and another project's run."""
    root = tmp_path_factory.mktemp("ui")
    path = root / "proj"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    proj = Project(path, root / "home")
    proj.write("train.py", TRAIN)
    proj.write("wait.py", WAIT)
    proj.write(".gitignore", "plot.png\ngo\n")
    proj.write("conf/config.yaml", "defaults:\n  - model: small\n  - _self_\nlr: 0.1\nepochs: 12\n")
    proj.write("conf/model/small.yaml", "width: 8\n")
    proj.write("conf/model/large.yaml", "width: 64\n")
    proj.commit("train")
    run_ok(proj, "run", "train.py", "-p", "lr=0.1", "-n", "base", "-t", "baseline")
    run_ok(proj, "run", "train.py", "-p", "lr=0.01", "-p", "model=large", "-n", "small",
           "-t", "baseline", "-t", "small", "-d", "a smaller learning rate")  # fmt: skip
    assert proj.yanex("run", "train.py", "-p", "+fail=true", "-n", "broken").returncode == 3
    run_ok(proj, "stage", "train.py", "-p", "lr=list(0.2, 0.3)")
    run_ok(proj, "run", "--staged")
    run_ok(proj, "stage", "train.py", "-p", "lr=list(0.4, 0.5, 0.6)", "-n", "queued")
    run_ok(proj, "run", "train.py", "-n", HOSTILE, "-t", "odd%_tag")
    for name in ("scratch-edit", "scratch-archive", "scratch-delete", "scratch-files"):
        run_ok(proj, "run", "train.py", "-n", name)
    proj.write("train.py", TRAIN + "# an uncommitted change\n")
    run_ok(proj, "run", "train.py", "--ignore-dirty", "-n", "dirty")
    git(path, "checkout", "-q", "train.py")
    other = Project(root / "other", proj.home)
    other.path.mkdir()
    git(other.path, "init", "-q", "-b", "main")
    other.write("job.py", "import yanex\nyanex.log_results({'loss': 9.0})\n")
    other.commit("job")
    run_ok(other, "run", "job.py", "-n", "elsewhere")
    return proj


@pytest.fixture(scope="module")
def server(store: Project) -> Iterator[Server]:
    srv = Server.start(store)
    yield srv
    srv.stop()
    logged = "".join(srv.stderr)
    assert "Traceback" not in logged, logged


def by_name(proj: Project) -> dict[str, str]:
    """Experiment IDs by name (folders still being created, without metadata, left out)."""
    found: dict[str, str] = {}
    for root in (proj.home / "experiments", proj.home / "archived"):
        for folder in root.iterdir() if root.exists() else ():
            if (folder / "metadata.json").exists():
                found[metadata(folder)["name"] or ""] = folder.name
    return found


def cli_ids(proj: Project, *args: str) -> list[str]:
    r = proj.yanex("list", "--all", "--format", "ids", *args)
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


def page_ids(srv: Server, query: str) -> list[str]:
    reply = srv.get(f"/?per=200&{query}")
    assert reply.status == 200, text(reply.text)[:500]
    return row_ids(reply.text)


def wait_for(check, what: str, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    """Hang guard for things that happen in another process."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


# --- the table --------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_table_shows_what_yanex_list_shows(store: Project, server: Server) -> None:
    reply = server.get("/")
    assert reply.status == 200
    assert reply.headers["content-type"].startswith("text/html")
    assert row_ids(reply.text) == cli_ids(store)
    seen = text(reply.text)
    for header in ("ID", "Name", "Status", "Tags", "Started", "Duration", "loss", "acc"):
        assert header in seen
    names = by_name(store)
    row = re.search(rf'<tr data-id="{names["base"]}".*?</tr>', reply.text, re.S)
    assert row is not None
    cells = text(row.group())
    assert "base" in cells and "completed" in cells and "baseline" in cells
    assert "0.1833" in cells  # its last loss, as `yanex list` prints it
    assert "staged" in seen and "failed" in seen
    assert names["elsewhere"] not in reply.text  # another project's run
    everywhere = server.get("/?scope=all")
    assert row_ids(everywhere.text) == cli_ids(store, "-A")
    assert "other" in text(everywhere.text)  # the project column


@pytest.mark.slow
@pytest.mark.parametrize(
    ("query", "args"),
    [
        ("status=failed", ["--status", "failed"]),
        ("status=staged&status=failed", ["--status", "staged", "--status", "failed"]),
        ("tag=baseline", ["--tag", "baseline"]),
        ("tag=baseline,+small", ["--tag", "baseline", "--tag", "small"]),
        ("name=scratch-*", ["--name", "scratch-*"]),
        ("where=params.lr<%3D0.05", ["--where", "params.lr<=0.05"]),
        (
            "where=results.loss>0.2%0Astatus%3D%3Dcompleted",
            ["--where", "results.loss>0.2", "--where", "status==completed"],
        ),
        ("script=train.py&since=1h", ["--script", "train.py", "--since", "1h"]),
    ],
)
def test_filters_select_what_the_cli_selects(
    store: Project, server: Server, query: str, args: list[str]
) -> None:
    expected = cli_ids(store, *args)
    assert expected  # each case selects something
    assert page_ids(server, query) == expected


def queued(proj: Project) -> list[Path]:
    """The staged grid's members (named by their values after --name)."""
    return [f for f in proj.experiments() if (metadata(f)["name"] or "").startswith("queued")]


def test_filter_by_sweep_prefix(store: Project, server: Server) -> None:
    members = queued(store)
    assert len(members) == 3
    sweep = metadata(members[0])["sweep"]
    assert page_ids(server, f"sweep={sweep[:5]}") == cli_ids(store, "--sweep", sweep[:5])
    assert sorted(page_ids(server, f"sweep={sweep[:5]}")) == sorted(f.name for f in members)


def test_text_search_over_id_name_tags_and_description(store: Project, server: Server) -> None:
    names = by_name(store)
    assert page_ids(server, "q=scratch-ed") == [names["scratch-edit"]]
    assert set(page_ids(server, "q=BASELINE")) == {names["base"], names["small"]}  # a tag
    assert page_ids(server, "q=smaller+learning") == [names["small"]]  # every word
    assert page_ids(server, f"q={names['broken'][:6]}") == [names["broken"]]  # an ID
    assert page_ids(server, "q=odd%25_") == [names[HOSTILE]]  # % and _ are literal
    assert page_ids(server, "q=b_se") == page_ids(server, "q=b%25e") == []
    assert "No experiments match" in text(server.get("/?q=nothing-like-this").text)


def test_sorting_by_any_column(store: Project, server: Server) -> None:
    assert page_ids(server, "sort=results.loss") == cli_ids(store, "--sort", "results.loss")
    assert page_ids(server, "sort=-name") == cli_ids(store, "--sort", "-name")
    assert page_ids(server, "sort=duration") == cli_ids(store, "--sort", "duration")
    by_tags = page_ids(server, "sort=tags")
    names = by_name(store)
    assert by_tags.index(names["base"]) < by_tags.index(names["scratch-edit"])  # untagged last
    table = server.get("/").text
    for key in ("id", "name", "status", "tags", "started", "duration", "results.loss"):
        assert f"sort={key}" in table or f"sort=-{key}" in table, key
    sorted_page = server.get("/?sort=results.loss").text
    assert "sort=-results.loss" in sorted_page  # clicking again turns it around


def test_pages_come_from_the_index(store: Project, server: Server) -> None:
    everything = cli_ids(store)
    total = len(everything)
    assert total > 10
    assert row_ids(server.get("/?per=5").text) == everything[:5]
    second = server.get("/?per=5&page=2").text
    assert row_ids(second) == everything[5:10]
    assert f"6\N{EN DASH}10 of {total} experiments" in text(second)
    assert 'rel="prev"' in second and 'rel="next"' in second
    last = (total - 1) // 5 * 5
    assert row_ids(server.get("/?per=5&page=99").text) == everything[last:]  # the last one
    one = server.get("/?per=5&q=scratch").text  # 4 rows: one page, no pager
    assert len(row_ids(one)) == 4 and 'rel="next"' not in one


def test_a_bad_filter_is_a_clear_error(server: Server) -> None:
    reply = server.get("/?where=params.lr%3D0.1")
    assert reply.status == 400
    assert "'=' is not a comparison" in text(reply.text)
    reply = server.get("/?status=sleeping")
    assert reply.status == 400 and "unknown status 'sleeping'" in text(reply.text)
    assert "Traceback" not in reply.text


def test_user_text_is_shown_escaped(store: Project, server: Server) -> None:
    page = server.get("/").text
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;\\x1b[2J" in page
    assert "\x1b" not in page
    one = server.get(f"/e/{by_name(store)[HOSTILE]}").text
    assert "<script>alert" not in one
    assert "&lt;script&gt;alert(1)&lt;/script&gt;\\x1b[2J" in one  # shown
    # The edit form holds the name as it is, so that saving it changes nothing.
    field = '<input name="name" value="&lt;script&gt;alert(1)&lt;/script&gt;\x1b[2J">'
    assert one.count("\x1b") == 1 and field in one
    # The sweep view's data: control characters escaped (the page shows it as text).
    sweep = server.get("/api/sweep?tag=odd%25_tag")
    assert "\x1b" not in sweep.text
    (run,) = json.loads(sweep.body)["runs"]
    assert run["name"] == "<script>alert(1)</script>\\x1b[2J"


# --- columns ----------------------------------------------------------------------------------


def column_keys(html: str) -> list[str]:
    """The keys of the table's columns, left to right."""
    return re.findall(r'<th class="[^"]*" data-key="([^"]+)"', html)


def cell(html: str, experiment_id: str, key: str) -> str:
    """What the table shows in one row's column."""
    row = re.search(rf'<tr data-id="{experiment_id}".*?</tr>', html, re.S)
    assert row is not None, experiment_id
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(), re.S)[1:]  # after the checkbox
    return text(cells[column_keys(html).index(key)])


def test_the_table_shows_the_parameters_that_tell_rows_apart(
    store: Project, server: Server
) -> None:
    names = by_name(store)
    page = server.get("/").text
    fields = ["id", "name", "status", "tags", "started", "duration"]
    # What varies among the rows shown: lr, the model group's width, the failed run's flag.
    keys = column_keys(page)
    assert keys[:6] == fields and keys[9:] == ["results.loss", "results.acc", "error"]
    assert set(keys[6:9]) == {"params.lr", "params.model.width", "params.fail"}
    assert cell(page, names["base"], "params.lr") == "0.1"
    assert cell(page, names["small"], "params.model.width") == "64"
    assert cell(page, names["base"], "params.fail") == "-"  # it has no such parameter
    # A sweep's members: the parameters the sweep varies, nothing else.
    sweep = metadata(queued(store)[0])["sweep"]
    members = server.get(f"/?sweep={sweep}").text
    assert column_keys(members) == [*fields, "params.lr"]
    # A failed run on the page brings the reason.
    failed = server.get("/?status=failed").text
    assert column_keys(failed)[-1] == "error"
    reason = "exited with code 3: ValueError: the data is bad"
    assert cell(failed, names["broken"], "error") == reason


def test_columns_are_chosen_in_the_address(store: Project, server: Server) -> None:
    names = by_name(store)
    page = server.get("/?col=name,params.lr,commit,error&sort=params.lr").text
    assert column_keys(page) == ["id", "name", "params.lr", "commit", "error"]  # the ID first
    head = git(store.path, "rev-parse", "HEAD").strip()
    assert cell(page, names["base"], "commit") == head[:10]
    # Every link of the page keeps the choice: sorting, pages, the filter form, the views.
    kept = "col=name%2Cparams.lr%2Ccommit%2Cerror"
    assert f"/?sort=-params.lr&amp;{kept}" in page.replace("&amp;scope=project", "")
    assert '<input type="hidden" name="col" value="name,params.lr,commit,error">' in page
    assert f"/sweep?sort=params.lr&amp;{kept}" in page.replace("&amp;scope=project", "")
    # The picker offers every field and the store's parameters and results, these ticked.
    picker = page[page.index('<details class="picker"') : page.index("</details>")]
    for key in ("exit_code", "dirty", "params.epochs", "params.model.width", "results.acc"):
        assert f'value="{key}"' in picker, key
    assert re.search(r'value="params.lr" checked', picker)
    assert not re.search(r'value="params.epochs" checked', picker)
    # A column that cannot be shown is named.
    reply = server.get("/?col=bogus")
    assert reply.status == 400 and "unknown column 'bogus'" in text(reply.text)
    reply = server.get("/?col=params.lrr")
    assert reply.status == 400 and "no experiment has a parameter 'lrr'" in text(reply.text)
    assert "params.lr" in text(reply.text)


def test_every_column_sorts_as_the_cli_sorts(store: Project, server: Server) -> None:
    for key in ("params.lr", "-params.model.width", "error", "-exit_code", "commit"):
        assert page_ids(server, f"sort={key}") == cli_ids(store, "--sort", key), key


@pytest.mark.parametrize(
    ("query", "args"),
    [
        ("f.params.lr=%3C0.2", ["--where", "params.lr<0.2"]),
        ("f.params.lr=0.1", ["--where", "params.lr==0.1"]),
        ("f.results.loss=%3E%3D0.2", ["--where", "results.loss>=0.2"]),
        ("f.status=failed,staged", ["--status", "failed", "--status", "staged"]),
        ("f.tags=baseline", ["--tag", "baseline"]),
        ("f.name=scratch", ["--name", "*scratch*"]),
        ("f.error=the+data+is+bad", ["--name", "broken"]),
        ("f.exit_code=3", ["--where", "exit_code==3"]),
        ("f.duration=%3E0&f.params.model.width=64", ["--where", "params.model.width==64"]),
        ("f.dirty=yes", ["--name", "dirty"]),
    ],
)
def test_each_column_filters(store: Project, server: Server, query: str, args: list[str]) -> None:
    expected = cli_ids(store, *args)
    assert expected  # each case selects something
    assert page_ids(server, query) == expected
    page = server.get(f"/?{query}").text
    key, _, value = query.split("&")[0].partition("=")
    shown = html.escape(unquote_plus(value))
    assert f'name="{key}" value="{shown}"' in page  # the filter shows what it holds


def test_a_bad_column_filter_is_a_clear_error(server: Server) -> None:
    reply = server.get("/?f.params.lr=%3C%5B1%2C")
    assert reply.status == 400 and "cannot be parsed" in text(reply.text)
    reply = server.get("/?f.bogus=1")
    assert reply.status == 400 and "unknown column 'bogus'" in text(reply.text)


@pytest.fixture(scope="module")
def dirt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Project, Server]]:
    """A clean run, a dirty one and one outside git (dirty: null), and a dashboard of them."""
    root = tmp_path_factory.mktemp("dirt")
    proj = Project(root / "proj", root / "home")
    proj.path.mkdir()
    git(proj.path, "init", "-q", "-b", "main")
    proj.write("job.py", "print('ran')\n")
    proj.commit("job")
    runs_of_each_git_state(proj)
    srv = Server.start(proj, "--all-projects")
    yield proj, srv
    srv.stop()
    assert "Traceback" not in "".join(srv.stderr), "".join(srv.stderr)


@pytest.mark.parametrize(
    ("typed", "where", "name"),
    [
        ("null", "dirty==null", "no-git"),
        ("NULL", "dirty==null", "no-git"),
        ("yes", "dirty==true", "dirty"),
        ("True", "dirty==true", "dirty"),
        ("no", "dirty==false", "clean"),
        ("false", "dirty==false", "clean"),
        ("!=null", "dirty!=null", None),  # the clean run and the dirty one
        ("!=yes", "dirty!=true", "clean"),  # a missing value never matches, != included
    ],
)
def test_the_dirty_filter_means_what_where_dirty_means(
    dirt: tuple[Project, Server], typed: str, where: str, name: str | None
) -> None:
    proj, srv = dirt
    expected = cli_ids(proj, "--all-projects", "--where", where)
    assert page_ids(srv, f"col=name,dirty&f.dirty={quote(typed)}") == expected
    if name is not None:
        assert [metadata(proj.home / "experiments" / i)["name"] for i in expected] == [name]
    else:
        assert len(expected) == 2


@pytest.mark.parametrize("typed", ["unknown", "nul", "1", "maybe", "<yes", "!=", "'true'"])
def test_any_other_dirty_filter_is_an_error_not_the_clean_runs(
    dirt: tuple[Project, Server], typed: str
) -> None:
    _, srv = dirt
    reply = srv.get(f"/?col=name,dirty&f.dirty={quote(typed)}")
    shown = text(reply.text)
    assert reply.status == 400, shown[:500]
    assert f"the Dirty filter {typed!r} is not yes, no or null" in shown
    assert "null (no git: blank in the table)" in shown
    assert row_ids(reply.text) == []


def csv_rows(reply: Any) -> list[list[str]]:
    assert reply.status == 200, reply.text[:500]
    assert reply.headers["content-type"].startswith("text/csv")
    assert reply.headers["content-disposition"].startswith("attachment")
    return list(csv.reader(io.StringIO(reply.text)))


def test_the_table_downloads_as_csv_the_cli_writes(store: Project, server: Server) -> None:
    columns = "name,status,params.lr,results.loss,error,started"
    rows = csv_rows(server.get(f"/table.csv?per=5&col={columns}"))  # every row, not a page
    r = store.yanex("list", "--all", "--columns", f"id,{columns}", "--format", "csv")
    assert rows == list(csv.reader(io.StringIO(r.stdout)))
    assert r.stdout == server.get(f"/table.csv?col={columns}").text
    # Without a choice: the columns the table shows.
    default = csv_rows(server.get("/table.csv"))
    assert default[0] == column_keys(server.get("/").text)
    assert [row[0] for row in default[1:]] == cli_ids(store)


def test_the_sweep_view_draws_what_the_selection_holds(store: Project, server: Server) -> None:
    names = by_name(store)
    members = sorted(
        (metadata(f)["sweep_index"], f, metadata(f)["sweep"])
        for f in store.experiments()
        if metadata(f)["sweep"] and metadata(f)["status"] == "completed"
    )
    sweep = members[0][2]
    data = json.loads(server.get(f"/api/sweep?sweep={sweep[:6]}&scope=all").body)
    assert data["total"] == 2 and [run["id"] for run in data["runs"]] == [
        m[1].name for m in members
    ]
    assert [p["key"] for p in data["params"]] == ["params.lr"]
    assert data["params"][0]["values"] == [0.2, 0.3]
    loss = next(r for r in data["results"] if r["key"] == "results.loss")
    assert loss["better"] == "min"
    assert loss["values"] == [results(m[1])[-1]["results"]["loss"] for m in members]
    # Any selection: a tag's runs, the parameters that vary among them.
    tagged = json.loads(server.get("/api/sweep?tag=baseline").body)
    assert {run["id"] for run in tagged["runs"]} == {names["base"], names["small"]}
    assert {p["key"] for p in tagged["params"]} == {"params.lr", "params.model.width"}
    failed = json.loads(server.get("/api/sweep?status=failed").body)
    assert failed["runs"][0]["reason"] == "exited with code 3: ValueError: the data is bad"
    # The page: its scripts draw in SVG and, as every page's, may not compile code.
    page = server.get(f"/sweep?sweep={sweep}&result=results.loss")
    assert page.status == 200 and "Sweep view" in text(page.text)
    policy = page.headers["content-security-policy"]
    assert "'unsafe-eval'" not in policy
    assert policy == server.get("/").headers["content-security-policy"]
    assert f'data-src="/api/sweep?sweep={sweep}' in page.text
    bad = server.get("/api/sweep?status=sleeping")
    assert bad.status == 400 and "unknown status" in json.loads(bad.body)["error"]


# --- one experiment -------------------------------------------------------------------------


def test_an_experiment_shows_everything_about_it(store: Project, server: Server) -> None:
    experiment_id = by_name(store)["small"]
    folder = store.home / "experiments" / experiment_id
    meta = metadata(folder)
    reply = server.get(f"/e/{experiment_id}")
    assert reply.status == 200
    page = reply.text
    seen = text(page)
    for needle in (
        "small",
        experiment_id,
        "completed",
        "a smaller learning rate",
        "baseline",
        "Hydra choices",
        "lr: 0.01",  # the config, as YAML
        "width: 64",
        meta["git"]["commit"],
        "main",
        platform.python_version(),
        meta["environment"]["hostname"],
        "trained with 0.01 64",  # stdout
        "plot.png",
        "note.txt",
    ):
        assert needle in seen, needle
    assert re.search(r"model\s+large", seen)  # the Hydra choice of the group
    png = (folder / "artifacts" / "plot.png").read_bytes()
    assert f"plot.png {len(png)} B" in seen  # artifacts with their sizes
    assert f'<img src="/e/{experiment_id}/files/artifacts/plot.png"' in page  # shown inline
    image = server.get(f"/e/{experiment_id}/files/artifacts/plot.png")
    assert image.status == 200 and image.body == png
    assert image.headers["content-type"] == "image/png"
    assert image.headers["content-disposition"].startswith("inline")
    every = ("metadata.json", "config.yaml", "results.jsonl", "stdout.txt", ".hydra/config.yaml")
    for name in every:
        assert f"/e/{experiment_id}/files/{name}?download=1" in page, name
        download = server.get(f"/e/{experiment_id}/files/{name}?download=1")
        assert download.status == 200 and download.body == (folder / name).read_bytes()
        assert download.headers["content-disposition"].startswith("attachment")
    assert server.get(f"/e/{experiment_id}/files/artifacts/missing.txt").status == 404
    # yanex's own bookkeeping beside metadata.json is not the user's: not listed; a dotfile
    # the script saved among its artifacts is
    (folder / ".results-summary.json").write_text("{}")
    (folder / "artifacts" / ".hidden-by-the-user").write_text("mine")
    page = server.get(f"/e/{experiment_id}").text
    assert "/files/.results-summary.json" not in page and "/files/.lock" not in page
    assert f"/e/{experiment_id}/files/artifacts/.hidden-by-the-user?download=1" in page


def test_an_experiment_is_found_by_name_or_prefix(store: Project, server: Server) -> None:
    experiment_id = by_name(store)["base"]
    for ref in ("base", experiment_id[:5]):
        reply = server.get(f"/e/{ref}")
        assert reply.status == 303 and reply.headers["location"] == f"/e/{experiment_id}"
    missing = server.get("/e/no-such-run")
    assert missing.status == 404
    assert "no experiment has the ID, ID prefix or name 'no-such-run'" in text(missing.text)


def test_a_failure_says_why_at_the_top(store: Project, server: Server) -> None:
    page = server.get(f"/e/{by_name(store)['broken']}").text
    seen = text(page)
    assert "Failed (exit code 3)" in seen
    assert "ValueError: the data is bad" in seen
    assert seen.index("ValueError: the data is bad") < seen.index("Details")
    assert seen.index("Failed (exit code 3)") < seen.index("Config")


def test_the_patch_of_a_dirty_run_is_viewable(store: Project, server: Server) -> None:
    experiment_id = by_name(store)["dirty"]
    page = server.get(f"/e/{experiment_id}").text
    assert f"/e/{experiment_id}/view/git.patch" in page
    assert re.search(r"Dirty\s+yes", text(page))
    patch = server.get(f"/e/{experiment_id}/view/git.patch")
    assert patch.status == 200
    assert '<span class="add">+# an uncommitted change</span>' in patch.text
    clean = server.get(f"/e/{by_name(store)['base']}").text
    assert "git.patch" not in clean and re.search(r"Dirty\s+no", text(clean))


def test_curves_are_each_result_against_its_step(store: Project, server: Server) -> None:
    experiment_id = by_name(store)["base"]
    logged = results(store.home / "experiments" / experiment_id)
    data = json.loads(server.get(f"/api/curves?id={experiment_id}").body)
    loss = next(r for r in data["results"] if r["name"] == "loss")
    assert loss["lower_is_better"] is True
    (trace,) = loss["traces"]
    assert trace["x"] == [line["step"] for line in logged]
    assert trace["y"] == [line["results"]["loss"] for line in logged]
    acc = next(r for r in data["results"] if r["name"] == "acc")
    assert acc["lower_is_better"] is False
    # Each point's time and the run's start, for the wall-time and relative-time axes.
    from datetime import datetime

    assert trace["t"] == [datetime.fromisoformat(line["timestamp"]).timestamp() for line in logged]
    started = metadata(store.home / "experiments" / experiment_id)["started_at"]
    assert trace["start"] == datetime.fromisoformat(started).timestamp() and trace["n"] == 0


def test_curves_count_a_results_line_as_every_reader_does(store: Project, server: Server) -> None:
    """A first line after a byte-order mark, a line with bytes that are not UTF-8, and one
    whose results are not an object: the curve has the points `yanex show` counts."""
    import shutil

    from yanex.results_file import parse_results

    target = store.home / "experiments" / "c0ffee00"
    shutil.copytree(store.home / "experiments" / by_name(store)["base"], target)
    try:
        meta = metadata(target)
        meta.update(id="c0ffee00", name="odd-lines")
        (target / "metadata.json").write_text(json.dumps(meta))
        (target / "results.jsonl").write_bytes(
            b'\xef\xbb\xbf{"step": 0, "results": {"loss": 1.0}}\n'
            b'{"step": 1, "results": {"loss": 2.0, "note": "\xff"}}\n'
            b'{"step": 2, "results": 3}\n'
            b'{"step": 3, "results": {"loss": 4.0}}\n'
        )
        counted, _ = parse_results((target / "results.jsonl").read_bytes())
        data = json.loads(server.get("/api/curves?id=c0ffee00").body)
        (trace,) = next(r for r in data["results"] if r["name"] == "loss")["traces"]
        assert trace["x"] == [line["step"] for line in counted] == [1, 3]
        assert trace["y"] == [2.0, 4.0]
        shown = store.yanex("show", "c0ffee00")
        assert shown.returncode == 0 and re.search(r"loss\s+4\b", shown.stdout), shown.stdout
    finally:
        shutil.rmtree(target)


def test_curves_and_comparisons_download_as_csv(store: Project, server: Server) -> None:
    names = by_name(store)
    base, small = names["base"], names["small"]
    logged = results(store.home / "experiments" / base)
    rows = csv_rows(server.get(f"/api/curves.csv?id={base}"))
    assert rows[0] == ["id", "name", "step", "timestamp", "results.loss", "results.acc"]
    assert rows[1:] == [
        [base, "base", str(line["step"]), line["timestamp"], repr(line["results"]["loss"]),
         repr(line["results"]["acc"])]
        for line in logged
    ]  # fmt: skip
    both = csv_rows(server.get(f"/api/curves.csv?id={base}&id={small}&result=loss"))
    assert both[0] == ["id", "name", "step", "timestamp", "results.loss"]
    assert [row[0] for row in both[1:]] == [base] * len(logged) + [small] * len(logged)
    compared = csv_rows(server.get("/compare.csv?id=base&id=small"))
    assert compared[0][:4] == ["id", "name", "status", "code"]
    base_row, small_row = (dict(zip(compared[0], row, strict=True)) for row in compared[1:])
    assert set(compared[0][4:]) == {
        "params.lr",
        "params.model.width",
        "results.loss",
        "results.acc",
    }
    assert (base_row["params.lr"], base_row["params.model.width"]) == ("0.1", "8")
    assert (small_row["params.lr"], small_row["params.model.width"]) == ("0.01", "64")
    assert small_row["results.loss"] == "0.093333" and base_row["id"] == base


def test_a_sweeps_curves_overlaid_in_grid_order(store: Project, server: Server) -> None:
    members = sorted(
        (metadata(f)["sweep_index"], f.name, metadata(f)["sweep"])
        for f in store.experiments()
        if metadata(f)["sweep"] and metadata(f)["status"] == "completed"
    )
    assert len(members) == 2
    data = json.loads(server.get(f"/api/curves?sweep={members[0][2][:6]}").body)
    loss = next(r for r in data["results"] if r["name"] == "loss")
    assert [t["id"] for t in loss["traces"]] == [m[1] for m in members]
    page = server.get(f"/curves?sweep={members[0][2]}")
    assert page.status == 200 and "Curves of 2 experiments" in text(page.text)
    assert server.get("/api/curves?id=zzzz-none").status == 404


def test_compare_shows_differing_params_and_marks_the_best(store: Project, server: Server) -> None:
    names = by_name(store)
    reply = server.get("/compare?id=base&id=small")  # names, as `yanex compare` takes them
    assert reply.status == 200
    page = reply.text
    seen = text(page)
    assert "Compare 2 experiments" in seen
    assert "Parameters that differ (2)" in seen
    differ = page[page.index('<tbody class="differ">') : page.index('<tbody class="results">')]
    assert re.search(r"<th>lr</th>\s*<td[^>]*>0.1</td>\s*<td[^>]*>0.01</td>", differ)
    assert re.search(r"<th>model.width</th>\s*<td[^>]*>8</td>\s*<td[^>]*>64</td>", differ)
    folded = page[page.index('<details class="same">') :]
    assert "1 parameter the same in all" in text(folded)  # the rest, folded
    best = re.findall(r'<td class="num best">([^<]*)', page)
    assert best == ["0.09333 ★"]  # the smaller last loss; acc is the same for both
    assert f'data-pending="/api/curves?id={names["base"]}&amp;id={names["small"]}"' in page
    assert 'id="overlay"' in page  # one click overlays their curves


def test_the_staged_queue_per_sweep(store: Project, server: Server) -> None:
    page = server.get("/staged").text
    seen = text(page)
    assert "3 staged" in seen
    order = [seen.index(f"lr={v}") for v in ("0.4", "0.5", "0.6")]
    assert order == sorted(order)  # in the order `yanex run --staged` runs them
    for folder in queued(store):
        assert folder.name in page


# --- live -------------------------------------------------------------------------------------


def test_a_running_experiment_updates_live_and_cannot_be_removed(
    store: Project, server: Server
) -> None:
    (store.path / "go").unlink(missing_ok=True)
    proc = store.popen("run", "wait.py", "-n", "live-one")
    try:
        wait_for(lambda: "live-one" in by_name(store), "the run's folder")
        experiment_id = by_name(store)["live-one"]
        wait_for(lambda: experiment_id in page_ids(server, "status=running"), "the running row")
        first = json.loads(server.get(f"/e/{experiment_id}/live").body)
        assert first["status"] == "running"
        wait_for(
            lambda: json.loads(server.get(f"/e/{experiment_id}/live").body)["results"],
            "its first result",
        )
        now = json.loads(server.get(f"/e/{experiment_id}/live").body)["results"]
        assert now == [["loss", "1", "1", "1", "1", "0"]]  # last, min, max, steps, last step
        wait_for(
            lambda: (
                "waiting"
                in json.loads(server.get(f"/e/{experiment_id}/live").body)["stdout"]["lines"]
            ),
            "its output",
        )
        offset = json.loads(server.get(f"/e/{experiment_id}/live").body)["stdout"]["offset"]
        page = server.get(f"/e/{experiment_id}").text
        assert 'data-live="1"' in page and "updates live" in page
        assert "running: cannot be archived or deleted" in text(page)
        # The same rules as the CLI: a running experiment is neither archived nor deleted.
        csrf = server.csrf()
        confirm = server.get(f"/e/{experiment_id}/delete")
        assert "is running; it cannot be deleted" in text(confirm.text)
        for action in ("delete", "archive"):
            refused = server.post(f"/e/{experiment_id}/{action}", {"csrf": csrf})
            assert refused.status == 409, refused.text
            assert "is running" in text(refused.text)
        assert (store.home / "experiments" / experiment_id).is_dir()
        (store.path / "go").write_text("")
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        (store.path / "go").unlink(missing_ok=True)
    later = json.loads(server.get(f"/e/{experiment_id}/live?stdout={offset}").body)
    assert later["status"] == "completed"
    assert later["stdout"]["lines"] == ["done"]  # only what came since
    curve = json.loads(server.get(f"/api/curves?id={experiment_id}").body)["results"][0]
    assert curve["traces"][0]["y"] == [1.0, 0.5]
    assert later["results"] == [["loss", "0.5", "0.5", "1", "2", "1"]]
    assert experiment_id in page_ids(server, "status=completed")


# --- changes --------------------------------------------------------------------------------


def test_editing_needs_the_csrf_token(store: Project, server: Server) -> None:
    experiment_id = by_name(store)["scratch-edit"]
    folder = store.home / "experiments" / experiment_id
    before = metadata(folder)
    path = f"/e/{experiment_id}/update"
    for data in ({"add_tag": "x"}, {"add_tag": "x", "csrf": "forged"}):
        refused = server.post(path, data)
        assert refused.status == 403 and "CSRF" in text(refused.text)
    csrf = server.csrf()
    other_site = server.post(
        path, {"add_tag": "x", "csrf": csrf}, {"origin": "http://evil.example"}
    )
    assert other_site.status == 403
    assert server.get(f"{path}?add_tag=x").status in (404, 405)  # a GET changes nothing
    assert metadata(folder) == before
    reply = server.post(path, {"csrf": csrf, "name": "edited", "description": "now described"})
    assert reply.status == 303 and reply.headers["location"] == f"/e/{experiment_id}?done=updated"
    assert server.post(path, {"csrf": csrf, "add_tag": "fresh, second"}).status == 303
    meta = metadata(folder)
    assert (meta["name"], meta["description"], meta["tags"]) == (
        "edited",
        "now described",
        ["fresh", "second"],
    )
    assert cli_ids(store, "--tag", "fresh") == [experiment_id]  # the CLI sees it at once
    assert server.post(path, {"csrf": csrf, "remove_tag": "fresh"}).status == 303
    assert metadata(folder)["tags"] == ["second"]
    assert page_ids(server, "tag=second") == [experiment_id]
    assert "Saved." in text(server.get(f"/e/{experiment_id}?done=updated").text)


def test_archive_and_delete_ask_first(store: Project, server: Server) -> None:
    names = by_name(store)
    csrf = server.csrf()
    archived = names["scratch-archive"]
    confirm = server.get(f"/e/{archived}/archive")
    assert confirm.status == 200 and "Archive experiment" in text(confirm.text)
    assert (store.home / "experiments" / archived).is_dir()  # asking changed nothing
    reply = server.post(f"/e/{archived}/archive", {"csrf": csrf})
    assert reply.status == 303
    assert (store.home / "archived" / archived).is_dir()
    assert archived not in page_ids(server, "")
    assert page_ids(server, "archived=1") == cli_ids(store, "--archived") == [archived]
    assert "archived" in text(server.get(f"/e/{archived}").text)
    assert server.post(f"/e/{archived}/unarchive", {"csrf": csrf}).status == 303
    assert archived in page_ids(server, "")

    deleted = names["scratch-delete"]
    assert "Delete experiment" in text(server.get(f"/e/{deleted}/delete").text)
    assert (store.home / "experiments" / deleted).is_dir()
    assert server.post(f"/e/{deleted}/delete", {}).status == 403  # no token, no change
    reply = server.post(f"/e/{deleted}/delete", {"csrf": csrf})
    assert reply.status == 303 and reply.headers["location"] == f"/?done=deleted&which={deleted}"
    assert not (store.home / "experiments" / deleted).exists()
    assert deleted not in cli_ids(store)
    assert f"Deleted experiment {deleted}." in text(server.get(reply.headers["location"]).text)
    assert server.get(f"/e/{deleted}").status == 404
    assert server.get(f"/e/{archived}/explode").status == 404


def test_an_unreadable_folder_is_named_not_hidden(store: Project, server: Server) -> None:
    broken = store.home / "experiments" / "0badf01d"
    broken.mkdir()
    (broken / "metadata.json").write_text("{not json")
    try:
        page = server.get("/")
        assert page.status == 200
        assert "skipped experiment folder 0badf01d: metadata.json is not valid JSON" in text(
            page.text
        )
        assert row_ids(page.text) == cli_ids(store)  # the others are all there
    finally:
        (broken / "metadata.json").unlink()
        broken.rmdir()
    assert "skipped" not in text(server.get("/").text)


# --- security -------------------------------------------------------------------------------


def test_files_are_served_only_from_inside_the_folder(
    store: Project, server: Server, tmp_path: Path
) -> None:
    experiment_id = by_name(store)["scratch-files"]
    folder = store.home / "experiments" / experiment_id
    secret = tmp_path / "secret.txt"
    secret.write_text("the secret\n")
    (folder / "artifacts" / "leak.txt").symlink_to(secret)
    (folder / "artifacts" / "up").symlink_to(store.home)
    os.mkfifo(folder / "artifacts" / "pipe.txt")
    base = f"/e/{experiment_id}/files"
    index_file = f"index-v{SCHEMA_VERSION}.sqlite3"
    assert (store.home / index_file).exists()  # a real file the attempts aim at
    for path in (
        f"{base}/../metadata.json",
        f"{base}/artifacts/../../{experiment_id}/metadata.json",
        f"{base}/%2e%2e/%2e%2e/{index_file}",
        f"{base}//etc/passwd",
        f"{base}/artifacts/leak.txt",
        f"{base}/artifacts/up/{index_file}",
        f"/e/{experiment_id}/view/artifacts/leak.txt",
    ):
        reply = server.get(path)
        assert reply.status == 403, (path, reply.status)
        assert b"the secret" not in reply.body and b"SQLite" not in reply.body
    assert server.get(f"{base}/artifacts/pipe.txt").status == 404  # not a file: never opened
    assert server.get(f"{base}/artifacts").status == 404
    assert server.get("/e/..%2f..%2fetc/files/passwd").status == 404
    page = server.get(f"/e/{experiment_id}").text
    assert "leak.txt" not in page and "pipe.txt" not in page
    shown = server.get(f"{base}/artifacts/note.txt")
    assert shown.status == 200 and shown.body == b"a note"
    assert shown.headers["content-type"].startswith("text/plain")
    assert shown.headers["content-security-policy"].startswith("sandbox")
    assert shown.headers["x-content-type-options"] == "nosniff"


def test_the_files_listed_are_the_users_not_yanex_temp_files(
    store: Project, server: Server
) -> None:
    """A user's dotfiles holding ".tmp" (or named .lock) are listed; yanex's temp files and a
    temp folder a killed save left are not, nor served."""
    experiment_id = by_name(store)["scratch-files"]
    art = store.home / "experiments" / experiment_id / "artifacts"
    mine = [".tmp_notes.txt", ".cache.tmp.json", "sub/.lock"]
    for name in mine:
        (art / name).parent.mkdir(exist_ok=True)
        (art / name).write_text("mine")
    left = art / ".yanex-0123456789ab.tmp.ckpt"
    left.mkdir()
    (left / "part.bin").write_text("half")
    (art / "sub" / ".yanex-ba9876543210.tmp").write_text("half")
    page = server.get(f"/e/{experiment_id}").text
    for name in mine:
        assert f"/e/{experiment_id}/files/artifacts/{name}?download=1" in page, name
    assert ".yanex-" not in page
    hidden = f"/e/{experiment_id}/files/artifacts/.yanex-0123456789ab.tmp.ckpt/part.bin"
    assert server.get(hidden).status != 200


def test_a_link_swapped_in_while_a_file_is_served_never_leads_out(
    store: Project, server: Server, tmp_path: Path
) -> None:
    """The file route opens a file once, without following links, and sends that descriptor:
    a link swapped in between a check and an open (checked, then opened again by name) would
    serve a file from outside the folder."""
    folder = store.home / "experiments" / by_name(store)["scratch-files"]
    secret = tmp_path / "secret.txt"
    secret.write_text("the secret\n")
    target = folder / "artifacts" / "swap.txt"
    target.write_text("inside\n")
    link, plain = folder / "artifacts" / ".link", folder / "artifacts" / ".plain"
    stop = threading.Event()

    def swap() -> None:
        while not stop.is_set():
            link.unlink(missing_ok=True)
            link.symlink_to(secret)
            os.replace(link, target)
            plain.write_text("inside\n")
            os.replace(plain, target)

    swapper = threading.Thread(target=swap)
    swapper.start()
    seen: set[int] = set()
    try:
        for i in range(400):
            path = f"/e/{folder.name}/{'view' if i % 2 else 'files'}/artifacts/swap.txt"
            reply = server.get(path)
            assert b"the secret" not in reply.body, i
            seen.add(reply.status)
    finally:
        stop.set()
        swapper.join()
        target.unlink()
    assert seen <= {200, 403, 404} and 200 in seen, seen


def test_with_no_token_loopback_answers_only_to_local_host_names(store: Project) -> None:
    srv = Server.start(store, "--no-token")
    try:
        assert srv.token is None and srv.url == f"http://127.0.0.1:{srv.port}/"
        assert srv.get("/", {"host": f"localhost:{srv.port}"}).status == 200
        rebound = srv.get("/", {"host": f"evil.example:{srv.port}"})
        assert rebound.status == 403 and b"127.0.0.1" in rebound.body
        page = srv.get("/")
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY"
    finally:
        srv.stop()


def test_no_token_is_refused_beyond_loopback(store: Project) -> None:
    r = store.yanex("ui", "--no-token", "--host", "0.0.0.0", "--port", "0", timeout=60)
    assert_usage_error(r, "--no-token serves only 127.0.0.1")


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2"])
def test_every_address_needs_the_printed_token(store: Project, host: str) -> None:
    """Loopback included (a shared login node's users can all open 127.0.0.1's ports)."""
    srv = Server.start(store, "--host", host, "--all-projects")
    try:
        assert srv.token and srv.url.startswith(f"http://{host}:{srv.port}/?token=")
        for path in ("/", "/static/yanex.css", "/api/curves?id=base", "/vendor/plotly.min.js"):
            denied = srv.get(path, token=False)
            assert denied.status == 403, path
            assert b"needs its token" in denied.body
        csrf = srv.csrf()
        deleted = srv.post(f"/e/{by_name(store)['base']}/delete", {"csrf": csrf}, token=False)
        assert deleted.status == 403  # the page's CSRF token alone changes nothing
        assert srv.get("/?token=wrong", token=False).status == 403
        entered = srv.get(f"/?token={srv.token}&tag=baseline", token=False)
        assert entered.status == 303 and entered.headers["location"] == "/?tag=baseline"
        cookie = entered.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        with_cookie = srv.get("/?tag=baseline", {"cookie": cookie.split(";")[0]}, token=False)
        assert with_cookie.status == 200 and "base" in text(with_cookie.text)
        everything = srv.get("/")  # Authorization: token ..., as a script sends it
        assert everything.status == 200
        assert row_ids(everything.text) == cli_ids(store, "-A")  # --all-projects: the default
        # An address like //evil.example/ must not become a redirect to another site.
        for path in ("//evil.example/", "///evil.example/x", "//evil.example/?a=1"):
            moved = srv.get(f"{path}{'&' if '?' in path else '?'}token={srv.token}", token=False)
            assert moved.status == 303, path
            location = moved.headers["location"]
            assert location.startswith("/") and not location.startswith("//"), location
    finally:
        srv.stop()


def test_a_fifo_results_file_never_stalls_a_request(store: Project, server: Server) -> None:
    """A results file that would block whoever reads it (a FIFO: no writer yet) is never
    read: its curves answer at once without it, and every page goes on answering."""
    experiment_id = by_name(store)["scratch-files"]
    results_file = store.home / "experiments" / experiment_id / "results.jsonl"
    saved = results_file.read_bytes()
    results_file.unlink()
    os.mkfifo(results_file)
    try:
        reply = server.get(f"/api/curves?id={experiment_id}")
        assert reply.status == 200 and json.loads(reply.text)["results"] == []
        assert server.get("/").status == 200
        assert server.get(f"/e/{experiment_id}").status == 200
        assert server.get(f"/e/{by_name(store)['base']}").status == 200
    finally:
        results_file.unlink()
        results_file.write_bytes(saved)


def test_plotly_comes_from_the_installed_package(server: Server) -> None:
    page = server.get(f"/e/{'base'}")
    assert page.status == 303
    experiment = server.get(page.headers["location"]).text
    scripts = re.findall(r'<script src="([^"]+)"', experiment)
    assert scripts and all(src.startswith("/") for src in scripts)  # nothing from elsewhere
    assert any(src.startswith("/vendor/plotly.min.js") for src in scripts)
    from yanex.ui import plotly_js

    served = server.get("/vendor/plotly.min.js")
    assert served.status == 200 and served.body == plotly_js().read_bytes()
    tracked = git(Path(__file__).parent, "ls-files").split()
    assert not [name for name in tracked if name.endswith(".js") and "plotly" in name]


# --- starting -------------------------------------------------------------------------------


def test_help_names_the_options_and_loads_no_server(project: Project) -> None:
    r = project.yanex("ui", "--help")
    assert r.returncode == 0
    for needle in ("--port", "--host", "--all-projects", 'pip install "yanex[ui]"', "token"):
        assert needle in r.stdout
    assert "ui" in project.yanex("--help").stdout
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from yanex.cli import main\n"
        "assert CliRunner().invoke(main, ['ui', '--help']).exit_code == 0\n"
        "print([m for m in ('starlette', 'uvicorn', 'jinja2', 'plotly') if m in sys.modules])\n"
    )
    r = run_python(code, cwd=project.path, env=project.env())
    assert r.stdout.strip() == "[]", r.stderr


def one_error_line(r) -> str:  # type: ignore[no-untyped-def]
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), r.stderr
    return lines[0]


def test_a_missing_extra_is_one_line(project: Project) -> None:
    code = (
        "import sys\n"
        "sys.modules['uvicorn'] = None  # as if it were not installed\n"
        "from yanex.cli import main\n"
        "sys.argv = ['yanex', 'ui']\n"
        "main()\n"
    )
    r = run_python(code, cwd=project.path, env=project.env())
    line = one_error_line(r)
    assert "uvicorn is not installed" in line and 'pip install "yanex[ui]"' in line


def test_a_busy_port_is_one_line(project: Project) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = project.yanex("ui", "--port", str(port))
    line = one_error_line(r)
    assert f"port {port} on 127.0.0.1 is in use" in line and "--port" in line


def test_an_unreadable_store_is_one_line(project: Project, tmp_path: Path) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    r = project.yanex("ui", env=clean_env(not_a_folder))
    assert "cannot create the index folder" in one_error_line(r)
    home = tmp_path / "home"
    home.mkdir()
    (home / "experiments").write_text("")  # where a folder must be
    line = one_error_line(project.yanex("ui", env=clean_env(home)))
    assert "cannot read the store folder" in line and "Not a directory" in line
    # `yanex list` says the same (with its hint on a second line), not a traceback
    assert_usage_error(project.yanex("list", env=clean_env(home)), "cannot read the store")
    if os.getuid() != 0:  # root reads whatever the modes say
        (home / "experiments").unlink()
        (home / "experiments").mkdir(mode=0)
        line = one_error_line(project.yanex("ui", env=clean_env(home)))
        assert "Permission denied" in line
        (home / "experiments").chmod(stat.S_IRWXU)


def test_bad_options_are_refused(project: Project) -> None:
    r = project.yanex("ui", "--port", "70000")
    assert r.returncode == 2 and "70000" in r.stderr
    # An address of no interface here (TEST-NET-1): refused when binding, nothing sent.
    line = one_error_line(project.yanex("ui", "--host", "192.0.2.1"))
    assert "cannot listen on 192.0.2.1 port 8000" in line


@pytest.mark.slow
def test_stopping_is_clean(store: Project) -> None:
    srv = Server.start(store)
    assert srv.get("/").status == 200
    srv.stop()
    assert srv.proc.returncode == 0
    assert srv.proc.stdout is not None
    assert "Traceback" not in "".join(srv.stderr) and "Aborted" not in "".join(srv.stderr)


# --- queries nobody waits for ---------------------------------------------------------------

ENDLESS = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n"


@pytest.mark.parametrize("why", ["the client went away", "the server stops"])
def test_a_query_nobody_waits_for_is_cancelled(store: Project, tmp_path: Path, why: str) -> None:
    """A page reloaded mid-query (its connection closed) or Ctrl-C stops the query that
    answers it at once: its thread is free again, instead of running on for minutes."""
    import asyncio

    from starlette.requests import Request
    from starlette.responses import Response

    from yanex.ui.app import Dashboard, Settings

    settings = Settings(
        home=store.home,
        project=str(store.path),
        all_projects=True,
        csrf="csrf",
        token=None,
        cookie="cookie",
        plotly_js=tmp_path / "plotly.min.js",
    )
    dashboard = Dashboard(settings)
    started = threading.Event()
    connections: list[Any] = []

    def endless(request: Request) -> Response:  # stands for a query that takes minutes
        with dashboard.index() as (index, _):
            connections.append(index.conn)
            started.set()
            index.conn.execute(ENDLESS).fetchone()
        return Response("finished")

    async def scenario() -> Response:
        messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        await messages.put({"type": "http.request", "body": b"", "more_body": False})
        scope = {"type": "http", "method": "GET", "path": "/", "headers": [], "query_string": b""}
        task = asyncio.ensure_future(dashboard.reader(endless)(Request(scope, messages.get)))
        assert await asyncio.get_running_loop().run_in_executor(None, started.wait, 60)
        if why == "the client went away":
            await messages.put({"type": "http.disconnect"})
        else:
            settings.stopping.set()
        return await asyncio.wait_for(task, 10)

    try:
        response = asyncio.run(scenario())
    finally:
        for conn in connections:  # should the cancel fail, free the thread anyway
            with contextlib.suppress(sqlite3.ProgrammingError):  # closed: it was freed
                conn.interrupt()
    assert response.status_code == 503


def test_ctrl_c_stops_the_dashboard_at_once_without_a_traceback(store: Project) -> None:
    srv = Server.start(store)
    assert srv.get("/").status == 200
    started = time.monotonic()
    srv.proc.send_signal(signal.SIGINT)
    srv.proc.wait(timeout=30)
    assert time.monotonic() - started < 5
    assert srv.proc.returncode == 0
    assert "Traceback" not in "".join(srv.stderr)
