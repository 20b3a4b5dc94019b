"""Readers give exact answers, fast plans, and never crash or hang: values keep their types
from the script to the index, `--where` and DataFrames; dates are whole days; every filter is
an index range; an odd folder (a huge int, a FIFO) is skipped with one warning; a read-only
store is read; a locked index is named. Each answer is checked against the raw files."""

from __future__ import annotations

import json
import math
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
from conftest import Project, assert_usage_error, metadata, run_python

from yanex import index as index_module
from yanex import query, record, results_file

# Every test here makes real runs or reads a long file: a second or more each.
pytestmark = pytest.mark.slow

BIG = 2**53 + 1  # the first int a float cannot hold

TYPED = """
import math, yanex
seed = yanex.get_param("seed", None)
results = {"count": yanex.get_param("count", 3), "score": float("nan") if seed else 0.5}
if seed is not None:
    results["seed_back"] = seed
yanex.log_results(results, step=0)
yanex.log_results({"step": 7, "timestamp": "mine"}, step=0)  # the same step, user names
yanex.log_results({"val": {"f1": yanex.get_param("f1", 0.5)}}, step=1)
"""


def ids(project: Project, *args: str) -> list[str]:
    r = project.yanex("list", "--all", "--format", "ids", *args)
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


def params_of(folder: Path) -> dict:
    return json.loads((folder / "params.json").read_text())


@pytest.fixture
def typed_runs(project: Project) -> Project:
    project.write("job.py", TYPED)
    project.commit()
    for args in (
        ["-p", f"+seed={BIG}", "-p", "+f1=0.9", "-n", "big"],
        ["-p", f"+seed={BIG - 1}", "-p", "+f1=0.2", "-n", "float-sized"],
        ["-p", "+count=5", "-n", "no-seed"],  # lacks the seed
        ["-p", f"+seed={2**70}", "-p", "+f1=0.7", "-n", "huge"],  # beyond 64 bits
    ):
        r = project.yanex("run", "job.py", *args)
        assert r.returncode == 0, r.stderr
    return project


def by_seed(project: Project) -> dict[object, str]:
    """The oracle: each run's seed as its params.json holds it (exact JSON ints)."""
    return {params_of(f).get("seed"): f.name for f in project.experiments()}


def test_ints_are_exact_through_the_index_and_where(typed_runs: Project) -> None:
    seeds = by_seed(typed_runs)
    assert set(seeds) == {BIG, BIG - 1, None, 2**70}
    assert ids(typed_runs, "--where", f"params.seed=={BIG - 1}") == [seeds[BIG - 1]]
    assert ids(typed_runs, "--where", f"params.seed=={BIG}") == [seeds[BIG]]
    assert ids(typed_runs, "--where", f"params.seed>{BIG - 1}", "--sort", "params.seed") == [
        seeds[BIG],
        seeds[2**70],
    ]
    assert ids(typed_runs, "--where", f"params.seed=={2**70}") == [seeds[2**70]]
    assert ids(typed_runs, "--where", f"params.seed=={2**70 + 1}") == []
    assert ids(typed_runs, "--where", f"params.seed<{2**70 + 1}", "--sort", "-params.seed") == [
        seeds[2**70],
        seeds[BIG],
        seeds[BIG - 1],
    ]
    assert ids(typed_runs, "--where", f"results.seed_back=={BIG}") == [seeds[BIG]]
    # The values listed are the ints the files hold, to the last digit.
    listed = json.loads(typed_runs.yanex("list", "--format", "json").stdout)
    assert {e["params"].get("seed") for e in listed} == set(seeds)


def test_dataframes_keep_types_beside_missing_values(typed_runs: Project) -> None:
    code = """
import json, math, pandas as pd, yanex.results as yr
df = yr.to_dataframe(yr.find(sort="name"))
out = {c: str(df[c].dtype) for c in df.columns}
out["seed"] = [None if v is pd.NA else str(v) for v in df["params.seed"].tolist()]
out["count"] = [int(v) for v in df["results.count"].tolist()]
out["score_na"] = df["results.score"].isna().tolist()
out["score_nan"] = [isinstance(v, float) and math.isnan(v) for v in df["results.score"].tolist()]
out["names"] = df["name"].tolist()
m = yr.metrics_dataframe(yr.get("big"))
out["m_cols"] = list(m.columns)
out["m_steps"] = m["step"].tolist()
out["m_user_step"] = [None if v is pd.NA else int(v) for v in m["results.step"].tolist()]
out["m_dtypes"] = {c: str(m[c].dtype) for c in m.columns}
print(json.dumps(out, default=str))
"""
    r = run_python(code, cwd=typed_runs.path, env=typed_runs.env())
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    # Oracle: the raw files.
    rows = sorted(typed_runs.experiments(), key=lambda f: metadata(f)["name"])
    assert out["names"] == [metadata(f)["name"] for f in rows]
    raw_seeds = [params_of(f).get("seed") for f in rows]
    assert out["seed"] == [None if s is None else str(s) for s in raw_seeds]  # no 2**53 + 1.0
    assert out["results.count"] == "Int64" and out["count"] == [3, 3, 3, 5]
    assert out["results.score"] == "Float64"
    score_raw = [json.loads((f / "results.jsonl").read_text().splitlines()[0]) for f in rows]
    is_nan = [v["results"]["score"] == "NaN" for v in score_raw]
    assert out["score_nan"] == is_nan and not any(out["score_na"])  # NaN is not missing
    assert out["results.val.f1"] == "Float64"
    assert out["params.seed"] == "object"  # 2**70 does not fit Int64: Python ints, exact
    # metrics: one row per step, yanex's step apart from the result named step.
    assert out["m_cols"] == [
        "step",
        "timestamp",
        "results.count",
        "results.score",
        "results.seed_back",
        "results.step",
        "results.timestamp",
        "results.val.f1",
    ]
    assert out["m_steps"] == [0, 1] and out["m_user_step"] == [7, None]
    assert out["m_dtypes"]["step"] == "Int64" and out["m_dtypes"]["results.count"] == "Int64"


def test_json_output_is_strict_json_a_nan_as_its_string(typed_runs: Project) -> None:
    """Bare NaN is not JSON: `list`, `show` and `compare` print a logged NaN as "NaN", the
    string results.jsonl holds, so a strict reader (jq, JSON.parse) takes their output."""

    def strict(text: str) -> object:
        def refuse(name: str) -> None:
            raise AssertionError(f"bare {name} in the JSON printed")

        return json.loads(text, parse_constant=refuse)

    (big,) = ids(typed_runs, "--name", "big")
    listed = strict(typed_runs.yanex("list", "--format", "json").stdout)
    assert {row["name"]: row["results"]["score"] for row in listed}["big"] == "NaN"
    shown = strict(typed_runs.yanex("show", big, "--format", "json").stdout)
    assert shown["results"]["score"]["last"] == "NaN"
    strict(typed_runs.yanex("compare", "--format", "json").stdout)


def test_dataframe_of_ints_with_one_run_missing_is_int64(typed_runs: Project) -> None:
    code = (
        "import json, yanex.results as yr\n"
        "df = yr.to_dataframe(yr.find(where='params.seed<=9007199254740993'))\n"
        "print(json.dumps([str(df['params.seed'].dtype), [int(v) for v in df['params.seed']]]))"
    )
    r = run_python(code, cwd=typed_runs.path, env=typed_runs.env())
    assert r.returncode == 0, r.stderr
    dtype, values = json.loads(r.stdout)
    assert dtype == "Int64" and sorted(values) == [BIG - 1, BIG]


def test_nested_results_sort_and_filter_by_dotted_names(typed_runs: Project) -> None:
    f1 = {f.name: json.loads((f / "results.jsonl").read_text().splitlines()[-1]) for f in
          typed_runs.experiments()}  # fmt: skip
    oracle = sorted(f1, key=lambda i: -f1[i]["results"]["val"]["f1"])
    assert ids(typed_runs, "--sort", "-results.val.f1") == oracle
    # A result alone sorts best first (f1: largest), as compare and get_best decide it.
    assert ids(typed_runs, "--sort", "results.val.f1") == oracle
    assert ids(typed_runs, "--sort", "+results.val.f1") == oracle[::-1]
    above = [i for i in oracle if f1[i]["results"]["val"]["f1"] > 0.6]
    assert ids(typed_runs, "--where", "results.val.f1>0.6", "--sort", "-results.val.f1") == above
    r = typed_runs.yanex("show", "big", "--format", "json")
    assert json.loads(r.stdout)["results"]["val.f1"]["last"] == 0.9
    header = typed_runs.yanex("list").stdout.splitlines()[0].split()
    assert "val.f1" in header  # columns by the names --sort and --where take
    assert typed_runs.yanex("get", "results.val.f1", "big").stdout == "0.9\n"


def test_dates_are_whole_days(typed_runs: Project) -> None:
    created = {f.name: datetime.fromisoformat(metadata(f)["created_at"]) for f in
               typed_runs.experiments()}  # fmt: skip
    day = next(iter(created.values())).astimezone().date().isoformat()
    on_day = sorted(i for i, c in created.items() if c.astimezone().date().isoformat() == day)
    assert on_day  # the oracle: runs made today, by their metadata
    assert sorted(ids(typed_runs, "--until", day)) == on_day
    assert sorted(ids(typed_runs, "--since", day, "--until", day)) == on_day
    assert sorted(ids(typed_runs, "--where", f"created=={day}")) == on_day
    assert sorted(ids(typed_runs, "--where", f"created<={day}")) == on_day
    assert ids(typed_runs, "--where", f"created<{day}") == []
    code = f"import json, yanex.results as yr\nprint(json.dumps(len(yr.find(until='{day}'))))"
    r = run_python(code, cwd=typed_runs.path, env=typed_runs.env())
    assert json.loads(r.stdout) == len(on_day)


def test_unknown_keys_name_the_close_ones(typed_runs: Project) -> None:
    assert_usage_error(typed_runs.yanex("list", "-w", "params.sed==1"), "params.seed")
    assert_usage_error(typed_runs.yanex("list", "--sort", "results.val.f2"), "results.val.f1")
    assert_usage_error(typed_runs.yanex("list", "--sort", "results.val"), "results.val.f1")


# --- plans ------------------------------------------------------------------------------------


def test_every_filter_and_sort_is_an_index_range_not_a_scan_per_row(typed_runs: Project) -> None:
    """The plan of each kind of condition searches its index once (no correlated subquery
    per experiment, which made a numeric filter quadratic)."""
    index = index_module.Index(typed_runs.home, echo=lambda line: None)
    try:
        index.sync()
        for where in (
            "params.seed<=5",
            "params.seed==9007199254740993",
            "results.score>0.1",
            "results.val.f1>=0.5",
            "params.count=='x'",
            "params.seed==null",
            "params.seed!=null",
            "params.flag==true",
            f"params.seed=={2**70}",
        ):
            filters = query.make_filters(where=[where])
            sql, values = filters.sql()
            plan = " | ".join(
                row[-1]
                for row in index.conn.execute(
                    f"EXPLAIN QUERY PLAN SELECT e.id FROM experiments e WHERE {sql}", values
                )
            )
            assert "CORRELATED" not in plan, (where, plan)
            assert "_value" in plan, (where, plan)  # params_value / results_value
        sort = query.parse_sort("-results.val.f1")
        join, order, values = sort.sql("s0")
        plan = " | ".join(
            row[-1]
            for row in index.conn.execute(
                f"EXPLAIN QUERY PLAN SELECT e.id FROM experiments e {join} ORDER BY {order}",
                values,
            )
        )
        assert "CORRELATED" not in plan and "PRIMARY KEY" in plan, plan
    finally:
        index.close()


# --- changes tell the index their rows ----------------------------------------------------------


def test_unarchive_changes_its_rows_and_never_rebuilds(typed_runs: Project) -> None:
    assert len(ids(typed_runs)) == 4  # the index is built
    path = typed_runs.home / f"index-v{index_module.SCHEMA_VERSION}.sqlite3"
    inode = path.stat().st_ino
    target = by_seed(typed_runs)[BIG]
    for verb in ("archive", "unarchive", "archive", "unarchive"):
        r = typed_runs.yanex(verb, target, "--yes")
        assert r.returncode == 0, r.stderr
        assert "indexing" not in r.stderr and "Traceback" not in r.stderr
    assert path.stat().st_ino == inode  # the same file: never deleted and built again
    assert target in ids(typed_runs) and ids(typed_runs, "--archived") == []
    r = typed_runs.yanex("delete", target, "--yes")
    assert r.returncode == 0 and target not in ids(typed_runs)
    assert path.stat().st_ino == inode


# --- hostile folders ------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["sweep_index", "exit_code", "duration"])
def test_an_int_past_64_bits_in_metadata_skips_the_folder_with_one_warning(
    typed_runs: Project, field: str
) -> None:
    folder = by_seed(typed_runs)[BIG]
    target = typed_runs.home / "experiments" / folder / "metadata.json"
    meta = metadata(target.parent)
    meta[field] = 2**64
    target.write_text(json.dumps(meta))
    for args in (["list"], ["compare"], ["get", "status", "--status", "completed"]):
        r = typed_runs.yanex(*args)
        assert r.returncode == 0, r.stderr
        assert "Traceback" not in r.stderr
        assert r.stderr.count(f"skipped experiment folder {folder}") == 1, r.stderr
        assert "out of range" in r.stderr
    r = run_python("import yanex.results as yr\nprint(len(yr.find()))", cwd=typed_runs.path,
                   env=typed_runs.env())  # fmt: skip
    assert r.returncode == 0 and r.stdout.strip() == "3" and "Traceback" not in r.stderr
    r = typed_runs.yanex("show", folder)  # the folder itself: said why it is not there
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "out of range" in r.stderr and "no experiment has the ID" in r.stderr
    from uiserver import Server, row_ids

    server = Server.start(typed_runs)  # the dashboard starts, and lists the others
    try:
        page = server.get("/")
        assert page.status == 200 and len(row_ids(page.text)) == 3
        assert folder not in row_ids(page.text)
        assert f"skipped experiment folder {folder}" in page.text
    finally:
        server.stop()


@pytest.mark.parametrize("name", ["results.jsonl", "metadata.json", "params.json"])
def test_a_fifo_in_a_folder_never_hangs_a_reader(typed_runs: Project, name: str) -> None:
    folder = typed_runs.home / "experiments" / by_seed(typed_runs)[BIG]
    (folder / name).unlink()
    os.mkfifo(folder / name)
    others = [f.name for f in typed_runs.experiments() if f != folder]
    for args in (["list", "--format", "ids"], ["reindex"], ["show", others[0]]):
        r = typed_runs.yanex(*args, timeout=60)  # the timeout guards against a hang
        assert r.returncode == 0, r.stderr
        assert "Traceback" not in r.stderr
        assert r.stderr.count(f"skipped experiment folder {folder.name}") == 1, r.stderr
        assert f"{name} is a FIFO, not a file" in r.stderr
    assert sorted(ids(typed_runs)) == sorted(others)


def test_a_fifo_results_file_after_indexing_never_hangs_show(typed_runs: Project) -> None:
    folder = typed_runs.home / "experiments" / by_seed(typed_runs)[BIG]
    (folder / "stderr.txt").unlink()
    os.mkfifo(folder / "stderr.txt")
    (folder / "config.yaml").unlink()
    os.mkfifo(folder / "config.yaml")
    r = typed_runs.yanex("show", folder.name, timeout=60)
    assert r.returncode == 0 and "Traceback" not in r.stderr
    assert "seed: 9007199254740993" in r.stdout  # the config made again from the record


# --- the index's place and its lock --------------------------------------------------------


@pytest.fixture
def read_only_store(project: Project, small_disk: Path, tmp_path: Path) -> Project:
    """A store on its own filesystem, remounted read-only after runs were made."""
    project.write("job.py", TYPED)
    project.commit()
    on_disk = Project(project.path, small_disk)
    assert on_disk.yanex("run", "job.py", "-n", "kept").returncode == 0
    for leftover in small_disk.glob("index-v*"):
        leftover.unlink()  # no index in the store either
    remount = subprocess.run(
        ["mount", "-o", "remount,ro", str(small_disk)], capture_output=True, text=True
    )
    if remount.returncode != 0:
        pytest.skip(f"cannot remount read-only: {remount.stderr.strip()}")
    yield on_disk
    subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)


def test_a_read_only_store_is_read(read_only_store: Project, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    env = read_only_store.env(XDG_CACHE_HOME=str(cache))
    for args in (["list"], ["show", "kept"], ["compare"], ["get", "params.seed", "kept"]):
        r = read_only_store.yanex(*args, env=env)
        assert r.returncode == 0, r.stderr
        assert "Traceback" not in r.stderr
    assert "kept" in read_only_store.yanex("list", env=env).stdout
    # the index went to the user's cache
    assert list(cache.rglob(f"store-*-index-v{index_module.SCHEMA_VERSION}.sqlite3"))


def test_a_locked_index_names_its_holder_and_gives_up(typed_runs: Project) -> None:
    assert len(ids(typed_runs)) == 4  # the index is built
    path = typed_runs.home / f"index-v{index_module.SCHEMA_VERSION}.sqlite3"
    from uiserver import Server

    quick = typed_runs.env(YANEX_INDEX_WAIT="2")  # the wait the user sets, not 10 s
    server = Server.start(typed_runs, env=quick)  # a dashboard that runs when the lock is taken
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time\n"
            "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
            "c.execute('BEGIN IMMEDIATE')\nprint('held', flush=True)\ntime.sleep(60)\n",
            str(path),
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        started = time.monotonic()
        r = typed_runs.yanex("list", env=quick, timeout=60)
        waited = time.monotonic() - started
        assert_usage_error(r, "locked by", f"pid {holder.pid}")
        assert "waiting for the index" in r.stderr and "(at most 2 s)" in r.stderr
        assert "disk" not in r.stderr
        assert 2 <= waited < index_module.LOCK_WAIT
        # the dashboard says the same, as "try again" (503), not as a bad request
        page = server.get("/")
        assert page.status == 503 and page.headers.get("retry-after") == "5"
        assert "locked by" in page.text and f"pid {holder.pid}" in page.text
    finally:
        server.stop()
        holder.kill()
        holder.wait()
    assert typed_runs.yanex("list").returncode == 0


# --- the library never prints -------------------------------------------------------------------


def test_the_library_never_prints_while_it_builds_the_index(typed_runs: Project) -> None:
    for leftover in typed_runs.home.glob("index-v*"):
        leftover.unlink()
    code = (
        "import yanex.results as yr\n"
        "seen = []\n"
        "runs = yr.find(progress=lambda done, total, why: seen.append((done, total)))\n"
        "print(len(runs), seen[0], seen[-1])\n"
    )
    r = run_python(code, cwd=typed_runs.path, env=typed_runs.env())
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert r.stdout.split(maxsplit=1)[0] == "4" and "(0, 4) (4, 4)" in r.stdout


def test_a_piped_build_says_one_line(typed_runs: Project) -> None:
    for leftover in typed_runs.home.glob("index-v*"):
        leftover.unlink()
    r = typed_runs.yanex("list")
    assert r.returncode == 0
    assert r.stderr == "yanex: indexing 4 experiments (there was none)\n"


# --- long results ---------------------------------------------------------------------------


def test_a_long_results_file_is_summarized_exactly_a_chunk_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The streamed summary (what show and the dashboard say) equals the one of the whole
    file read at once, across chunk boundaries; curves are thinned, their last point kept."""
    from yanex.ui import views

    folder = tmp_path / "0123abcd"
    folder.mkdir()
    values = [math.sin(i / 7) * 1000 + (i % 13) for i in range(20_011)]
    with open(folder / "results.jsonl", "w") as f:
        for i, value in enumerate(values):
            line = {"loss": value, "n": i} if i % 3 else {"loss": value, "nested": {"x": -i}}
            f.write(json.dumps({"step": i, "timestamp": "t", "results": line}) + "\n")
        f.write('{"step": 99999, "results": {"loss": -1e9')  # being written: left out
    monkeypatch.setattr(results_file, "RESULTS_CHUNK", 1000)
    summary = results_file.Summary()
    offset = results_file.scan_results(folder, summary)
    assert offset == (folder / "results.jsonl").read_bytes().rfind(b"\n") + 1
    whole = results_file.summarize(results_file.read_results(folder))  # the oracle
    series = summary.series()
    assert series["loss"].to_json() == whole["loss"].to_json()
    assert series["n"].to_json() == whole["n"].to_json()
    assert series["nested.x"].count == len(values[::3]) and series["nested.x"].min == -20_010
    assert results_file.tail_results(folder, 3) == results_file.read_results(folder)[-3:]
    rec = record.Record(
        "0123abcd", False, "completed", None, None, "[]", None, None, None, None, None, None,
        None, None, None, None, "{}", json.dumps(summary.last), json.dumps(summary.stats),
        summary.lines, tmp_path,
    )  # fmt: skip
    traces = views._traces(rec)
    xs, ys, _ = traces["loss"]
    assert len(xs) <= views.MAX_POINTS + 1 and xs[-1] == len(values) - 1 and ys[-1] == values[-1]
    assert xs[:3] == [0, 5, 10]  # every 5th of 20,011 points
    xs, ys, _ = traces["nested.x"]  # at a third of the lines: found by its name's bytes
    assert len(xs) <= views.MAX_POINTS + 1 and xs[-1] == 20_010 - 20_010 % 3 and xs[0] == 0
    assert ys[-1] == -xs[-1]


def _grow(path: Path, start: int, stop: int) -> None:
    """Lines as yanex writes them: numbers, NaN, a big int, a nested result, a string."""
    with open(path, "a") as f:
        for i in range(start, stop):
            results: dict = {"loss": 1 / (i + 1), "val": {"f1": i % 17 / 10}}
            if i % 50 == 0:
                results |= {"loss": "NaN", "big": 2**70 + i, "note": f"at {i}"}
            f.write(json.dumps({"step": i, "timestamp": "t", "results": results}) + "\n")


def _scan(folder: Path) -> tuple[results_file.Summary, int]:
    summary = results_file.Summary()
    return summary, results_file.scan_results(folder, summary)


def _same(summary: results_file.Summary, oracle: results_file.Summary) -> None:
    assert json.dumps(summary.last) == json.dumps(oracle.last)  # NaN and 2**70 as they are
    assert summary.stats == oracle.stats and summary.lines == oracle.lines


def test_a_reader_starts_from_the_summary_the_launcher_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The summary kept while the file grew, plus the rest read by the reader, is exactly
    the summary of the whole file, and the reader parses only the rest."""
    from yanex.summary_keeper import SummaryKeeper

    monkeypatch.setattr(results_file, "SUMMARY_FILE_BYTES", 20_000)
    folder = tmp_path / "0123abcd"
    folder.mkdir()
    results = folder / "results.jsonl"
    keeper = SummaryKeeper(folder)
    _grow(results, 0, 100)  # under the threshold: nothing kept
    keeper.catch_up(final=False)
    assert not (folder / ".results-summary.json").exists()
    _grow(results, 100, 700)
    keeper.catch_up(final=False)
    kept = json.loads((folder / ".results-summary.json").read_text())
    assert kept["offset"] == results.stat().st_size and kept["lines"] == 700
    _grow(results, 700, 900)  # after the last look: the reader reads these itself
    with open(results, "a") as f:
        f.write('{"step": 900, "results": {"loss": -1')  # being written: left out
    parsed: list[int] = []
    real = results_file.parse_results
    monkeypatch.setattr(results_file, "parse_results", lambda b: parsed.append(len(b)) or real(b))
    summary, offset = _scan(folder)
    assert sum(parsed) == offset - kept["offset"]  # only what came after the kept summary
    monkeypatch.setattr(results_file, "SUMMARY_FILE_BYTES", 10**12)  # the oracle: the whole file
    oracle, whole = _scan(folder)
    assert offset == whole and summary.lines == 900
    _same(summary, oracle)
    assert summary.series()["loss"].min == 1 / 900 and summary.series()["big"].max == 2**70 + 850


@pytest.mark.parametrize(
    "change",
    [
        "replaced",
        "rewritten in place",
        "truncated",
        "garbage",
        "wrong types",
        "another inode",
        "edited by hand",
    ],
)
def test_a_summary_that_is_not_of_this_file_is_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    from yanex.summary_keeper import SummaryKeeper

    monkeypatch.setattr(results_file, "SUMMARY_FILE_BYTES", 20_000)
    folder = tmp_path / "0123abcd"
    folder.mkdir()
    results, kept = folder / "results.jsonl", folder / ".results-summary.json"
    _grow(results, 0, 600)
    SummaryKeeper(folder).catch_up(final=False)
    saved = json.loads(kept.read_text())
    if change == "replaced":  # a new file of the same bytes: another inode
        data = results.read_bytes()
        results.unlink()
        results.write_bytes(data)
    elif change == "rewritten in place":
        data = results.read_bytes().replace(b'"loss": 0.5,', b'"loss": 9.5,', 1)
        with open(results, "r+b") as f:
            f.write(data)
    elif change == "truncated":
        os.truncate(results, saved["offset"] // 2)
    elif change == "garbage":
        kept.write_text("{not json")
    elif change == "wrong types":
        kept.write_text(json.dumps(saved | {"stats": {"loss": [1, "low", None, None]}}))
    elif change == "another inode":
        kept.write_text(json.dumps(saved | {"inode": saved["inode"] + 1}))
    else:  # numbers changed, the checksums of the file's bytes kept
        kept.write_text(json.dumps(saved | {"stats": saved["stats"] | {"loss": [7, 0, 9, 49]}}))
    _grow(results, 600, 1000)
    monkeypatch.setattr(results_file, "SUMMARY_FILE_BYTES", 1)
    summary, offset = _scan(folder)
    monkeypatch.setattr(results_file, "SUMMARY_FILE_BYTES", 10**12)
    oracle, whole = _scan(folder)
    assert offset == whole
    _same(summary, oracle)
    if change == "rewritten in place":
        assert summary.series()["loss"].max == 9.5


@pytest.mark.slow
def test_a_long_run_leaves_its_summary_and_show_says_the_same_numbers(project: Project) -> None:
    """A real run past SUMMARY_FILE_BYTES: its launcher keeps the summary to the last line,
    and `yanex show` says what it says when the whole file is read."""
    project.write(
        "long.py",
        """
        import yanex
        for step in range(90_000):
            yanex.log_results({"loss": 1 / (step + 1), "val": {"f1": step % 7}, "pad": "x" * 40})
        """,
    )
    project.commit()
    r = project.yanex("run", "long.py")
    assert r.returncode == 0, r.stderr
    folder = project.only_experiment()
    size = (folder / "results.jsonl").stat().st_size
    assert size >= results_file.SUMMARY_FILE_BYTES
    kept = json.loads((folder / ".results-summary.json").read_text())
    assert kept["offset"] == size and kept["lines"] == 90_000
    shown = project.yanex("show", folder.name)
    assert shown.returncode == 0 and "90,000" in shown.stdout.replace("90000", "90,000")
    (folder / ".results-summary.json").unlink()
    project.yanex("reindex")
    again = project.yanex("show", folder.name)
    assert again.stdout == shown.stdout


def test_a_result_beyond_float_range_does_not_break_every_reader(project: Project) -> None:
    project.write("job.py", "import yanex\nyanex.log_results({'n': 10**400, 'm': -(10**400)})\n")
    project.commit()
    assert project.yanex("run", "job.py").returncode == 0
    r = project.yanex("list", "-w", "results.n>1e300", "--format", "ids")
    assert r.returncode == 0 and r.stdout.strip() == project.only_experiment().name, r.stderr
    assert project.yanex("get", "results.m", project.only_experiment().name).stdout.strip() == (
        str(-(10**400))
    )


def test_nested_nan_reads_back_as_nan(project: Project) -> None:
    """Every reader turns the strings NaN and the infinities are written as back into floats,
    nested in lists and dicts too."""
    project.write(
        "job.py",
        "import yanex\nyanex.log_results({'v': [1.0, float('nan')], 'd': {'x': float('inf')}})\n",
    )
    project.commit()
    assert project.yanex("run", "job.py").returncode == 0
    results = results_file.read_results(project.only_experiment())[0]["results"]
    assert results["d"]["x"] == math.inf
    assert results["v"][0] == 1.0 and math.isnan(results["v"][1])


def test_reindex_while_others_read(typed_runs: Project) -> None:
    """A rebuild never makes the index vanish under a reader."""
    readers = [typed_runs.popen("list", "--all", "--format", "ids") for _ in range(3)]
    r = typed_runs.yanex("reindex")
    assert r.returncode == 0 and "indexed 4 experiments" in r.stderr
    for proc in readers:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert len(out.split()) == 4


def test_a_copy_in_both_roots_is_named_not_flipped(typed_runs: Project) -> None:
    folder = typed_runs.home / "experiments" / by_seed(typed_runs)[BIG]
    (typed_runs.home / "archived").mkdir(exist_ok=True)
    shutil.copytree(folder, typed_runs.home / "archived" / folder.name)
    r = typed_runs.yanex("list", "--all", "--format", "ids")
    assert r.returncode == 0 and folder.name in r.stdout.split()
    assert "in both experiments/ and archived/" in r.stderr
    with sqlite3.connect(typed_runs.home / f"index-v{index_module.SCHEMA_VERSION}.sqlite3") as conn:
        archived = conn.execute("SELECT archived FROM experiments WHERE id = ?", (folder.name,))
        assert archived.fetchone() == (0,)


def test_a_build_read_by_worker_processes_indexes_what_one_process_does(
    typed_runs: Project,
) -> None:
    root = typed_runs.home / "experiments"
    broken = root / "aaaa0002"
    shutil.copytree(root / by_seed(typed_runs)[BIG], broken)
    (broken / "metadata.json").write_text("{not json")
    (root / "aaaa0001").mkdir()  # being created: no metadata yet
    code = """
import json, sys
from yanex import index, index_rows
index_rows.PARALLEL_FROM = int(sys.argv[1])
built = index.Index(echo=lambda line: None)
dump = {table: sorted(map(list, built.conn.execute(f"SELECT * FROM {table}")))
        for table in ("experiments", "tags", "params", "results", "pending", "broken")}
for row in dump["experiments"]:
    row[-3] = row[-3].split("|")[0]  # fingerprints: the same files
print(json.dumps(dump))
"""
    dumps = []
    for parallel_from in ("2", "1000000"):
        for leftover in typed_runs.home.glob("index-v*"):
            leftover.unlink()
        r = run_python(code, cwd=typed_runs.path, env=typed_runs.env(), args=[parallel_from])
        assert r.returncode == 0, r.stderr
        dumps.append(json.loads(r.stdout))
    assert dumps[0] == dumps[1]
    assert len(dumps[0]["experiments"]) == 4 and dumps[0]["pending"] == [["aaaa0001", 0]]
    assert [row[0] for row in dumps[0]["broken"]] == ["aaaa0002"]


def test_a_big_results_file_summarized_in_parts_equals_one_pass(tmp_path: Path) -> None:
    folder = tmp_path / "0123abcd"
    folder.mkdir()
    with open(folder / "results.jsonl", "w") as f:
        for i in range(30_011):
            line = {"loss": (i * 7919) % 1000 - 500, "val": {"f1": i / 3}} if i % 5 else {}
            if i % 7 == 0:
                line["acc"] = "NaN" if i % 2 else i / 10
            f.write(json.dumps({"step": i, "results": line}) + "\n")
    code = """
import json, sys
from yanex import regular_files, results_file
results_file.PARALLEL_BYTES = 10_000
whole = results_file.Summary()
fd, st = regular_files.open_regular(sys.argv[1] + "/results.jsonl")
parts = results_file._parts(fd, 0, st.st_size)
end = results_file.scan_results(sys.argv[1], whole)
results_file.PARALLEL_BYTES = 10**15
one = results_file.Summary()
assert results_file.scan_results(sys.argv[1], one) == end
same_last = json.dumps(whole.last) == json.dumps(one.last)  # NaN is NaN
print(json.dumps([len(parts), whole.stats == one.stats, same_last, whole.lines == one.lines,
                  one.lines]))
"""
    r = run_python(code, cwd=tmp_path, env=dict(os.environ), args=[str(folder)])
    assert r.returncode == 0, r.stderr
    parts, *same, lines = json.loads(r.stdout)
    assert parts > 1 and all(same) and lines == 30_011


_PARTS_AGAINST_ONE_PASS = """
import json, sys
from yanex import regular_files, results_file
results_file.PARALLEL_BYTES = 10_000
fd, st = regular_files.open_regular(sys.argv[1] + "/results.jsonl")
parts = results_file._parts(fd, 0, st.st_size)
whole = results_file.Summary()
end = results_file.scan_results(sys.argv[1], whole)
results_file.PARALLEL_BYTES = 10**15
one = results_file.Summary()
assert results_file.scan_results(sys.argv[1], one) == end
print(json.dumps([len(parts), whole.last, one.last, whole.stats == one.stats,
                  whole.lines == one.lines]))
"""


def _in_parts_and_in_one_pass(folder: Path) -> tuple[dict, dict]:
    """The last values of results.jsonl summarized in parts, and in one pass (the oracle)."""
    r = run_python(_PARTS_AGAINST_ONE_PASS, cwd=folder, env=dict(os.environ), args=[str(folder)])
    assert r.returncode == 0, r.stderr
    parts, in_parts, in_one, same_stats, same_lines = json.loads(r.stdout)
    assert parts > 1 and same_stats and same_lines
    return in_parts, in_one


def test_results_replaced_then_nested_again_in_a_later_part_merge_as_one_pass(
    tmp_path: Path,
) -> None:
    """A nested result replaced by a plain value (or an empty dict) and then nested again in
    a later part: its leaves before the replacement are gone, in parts as in one pass."""
    folder = tmp_path / "0123abcd"
    folder.mkdir()
    lines = [{"a": {"b": 1}, "e": {"x": {"y": 1}}, "g": {"h": 1}}]  # in the first part
    lines += [{"filler": i} for i in range(3600)]  # the last part begins here (at 3/4 or less)
    lines += [{"a": 5, "e": {"x": {}}, "g": {}}]
    lines += [{"filler": i} for i in range(3600, 3700)]
    lines += [{"a": {"c": 2}, "e": {"x": {"z": 2}}, "g": {"k": 2}}]
    lines += [{"filler": i} for i in range(3700, 3800)]
    with open(folder / "results.jsonl", "w") as f:
        for i, line in enumerate(lines):
            f.write(json.dumps({"step": i, "results": line}) + "\n")
    in_parts, in_one = _in_parts_and_in_one_pass(folder)
    assert in_one["a"] == {"c": 2} and in_one["e"] == {"x": {"z": 2}} and in_one["g"] == {"k": 2}
    assert in_parts == in_one
    assert json.dumps(in_parts) == json.dumps(in_one)  # in the same order


def test_a_part_too_deep_to_send_back_is_read_in_one_pass(tmp_path: Path) -> None:
    """A result nested 800 deep in a later part cannot come back from its process (pickle's
    depth): the file is read in one pass instead, never a traceback."""
    folder = tmp_path / "0123abcd"
    folder.mkdir()
    deep = "1"
    for _ in range(800):
        deep = '{"d": ' + deep + "}"
    with open(folder / "results.jsonl", "w") as f:
        for i in range(3700):
            f.write(json.dumps({"step": i, "results": {"filler": i}}) + "\n")
        f.write('{"step": 3700, "results": {"deep": ' + deep + "}}\n")
        f.write(json.dumps({"step": 3701, "results": {"filler": 3701}}) + "\n")
    in_parts, in_one = _in_parts_and_in_one_pass(folder)
    assert in_parts == in_one and in_one["filler"] == 3701 and "deep" in in_one


def test_any_mix_of_nested_and_plain_results_merges_in_parts_as_one_pass(
    tmp_path: Path,
) -> None:
    """Results that change shape at random (nested, plain, empty, absent), cut anywhere."""
    import random

    chance = random.Random(7)

    def value(depth: int) -> object:
        kind = chance.choice(["plain", "nested", "nested", "empty", "none"] if depth else ["plain"])
        if kind == "nested":
            return {k: value(depth - 1) for k in chance.sample("pqrstuvw", chance.randint(1, 2))}
        return {"plain": chance.randint(0, 9), "empty": {}, "none": None}[kind]

    folder = tmp_path / "0123abcd"
    folder.mkdir()
    names = [f"m{i}" for i in range(60)]  # each changed now and then: leaves outlive a part
    with open(folder / "results.jsonl", "w") as f:
        for i in range(6000):
            line = {k: value(3) for k in chance.sample(names, chance.randint(0, 2))}
            f.write(json.dumps({"step": i, "results": line}) + "\n")
    in_parts, in_one = _in_parts_and_in_one_pass(folder)
    assert in_parts == in_one
    assert json.dumps(in_parts) == json.dumps(in_one)  # in the same order


# Lines that are not one JSON object each, or only just are: each is one line, counted or
# skipped by itself, wherever a chunk, a part or the tail begins.
_ODD_LINES = [
    '{"results": {"a": 1}},{"results": {"a": 2}}',  # two objects on a line: skipped
    '{"results": {"a": 3}}{"results": {"a": 4}}',
    '{"results": {"a": 5}} trailing',
    '{"results": {"l": [[1',  # a list cut by a newline: two bad lines
    "2]]}}",
    '{"results": {"s": "cut',  # a string cut by a newline
    'here"}}',
    "",
    '[{"results": {"a": 6}}]',  # a list, not an object
    '{"results": {"s": "x\u2028y\u0085z"}}',  # line separators inside a string: one line
    '  {"results": {"w": 1}}  \r',  # blanks around: one line
    '{"results": {"n": NaN, "z": "\\u0000"}}',
]


def _one_line_each(data: bytes) -> list[dict]:
    """The rule: each line (the bytes up to a newline) is a result when it is one JSON object
    with an object "results"; anything else is one bad line, skipped."""
    found = []
    for raw in data.split(b"\n")[:-1]:
        try:
            line = json.loads(raw.decode("utf-8", "replace"))
        except ValueError:
            continue
        if isinstance(line, dict) and isinstance(line.get("results"), dict):
            found.append(line)
    return found


def test_a_line_is_read_as_one_line_wherever_a_chunk_begins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Odd lines among good ones are counted (or skipped) the same by every reader: the
    whole file, its parts cut at any line, chunks of any size, the tail, parallel parts."""
    folder = tmp_path / "0123abcd"
    folder.mkdir()
    good = [json.dumps({"step": i, "results": {"a": 100 + i}}) for i in range(4)]
    lines = [*good[:2], *_ODD_LINES, *good[2:]]
    data = ("\n".join(lines) + "\n").encode()
    (folder / "results.jsonl").write_bytes(data)
    oracle = _one_line_each(data)
    assert len(oracle) == 7  # the good ones, the line separators, the blanks, NaN
    assert results_file.parse_results(data)[0] == oracle
    ends = [i + 1 for i, byte in enumerate(data) if byte == ord("\n")]
    for cut in ends:  # two chunks, cut at every line end
        head, rest = results_file.parse_results(data[:cut]), results_file.parse_results(data[cut:])
        assert head[1] == cut and head[0] + rest[0] == oracle
    whole = results_file.Summary()
    whole.add(oracle)
    for chunk in (1, 7, 50, 200, len(data)):
        monkeypatch.setattr(results_file, "RESULTS_CHUNK", chunk)
        summary = results_file.Summary()
        assert results_file.scan_results(folder, summary) == len(data)
        assert json.dumps(summary.last) == json.dumps(whole.last) and summary.stats == whole.stats
        assert summary.lines == len(oracle)
    decoded = results_file.read_results(folder)
    assert len(decoded) == len(oracle)
    for count in range(1, len(oracle) + 1):
        assert json.dumps(results_file.tail_results(folder, count)) == json.dumps(decoded[-count:])
    # Parallel parts, cut wherever the file's size puts them.
    with open(folder / "results.jsonl", "a") as f:
        f.write(("\n".join([*good, *_ODD_LINES]) + "\n") * 300)
    _in_parts_and_in_one_pass(folder)


def test_a_command_started_during_a_build_follows_it_then_answers(typed_runs: Project) -> None:
    """While another process builds the index (it holds the build lock and writes its
    progress there), a reader says whose build it waits for and how far it is, then answers."""
    for leftover in typed_runs.home.glob("index-v*"):
        leftover.unlink()
    lock = typed_runs.home / f"index-v{index_module.SCHEMA_VERSION}.sqlite3.lock"
    builder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time\n"
            "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "os.pwrite(fd, f'{os.getpid()} 2 4\\n'.encode(), 0)\n"
            "print('building', flush=True)\ntime.sleep(2)\n",
            str(lock),
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert builder.stdout is not None and builder.stdout.readline() == b"building\n"
        r = typed_runs.yanex("list", "--format", "ids", timeout=60)
    finally:
        builder.wait(timeout=30)
    assert r.returncode == 0, r.stderr
    assert f"indexing 4 experiments (pid {builder.pid} is building it)" in r.stderr
    assert sorted(r.stdout.split()) == sorted(f.name for f in typed_runs.experiments())
