"""`yanex.results` DataFrames of real runs: where each run came from beside its parameters and
results (commit, dirty, status, exit code, error, times, script, folder, tags), and the steps
of many experiments in one long table."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from conftest import Project, git, metadata, run_python

TRAIN = """
import sys, yanex
lr = yanex.get_param("lr", 0.1)
for step in range(3):
    yanex.log_results({"loss": lr * (3 - step)}, step=step)
yanex.log_results({"acc": 0.5 + lr}, step=2)
if yanex.get_param("fail", False):
    print("ValueError: the data is bad", file=sys.stderr)
    sys.exit(3)
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Project:
    root = tmp_path_factory.mktemp("frames")
    path = root / "proj"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    proj = Project(path, root / "home")
    proj.write("train.py", TRAIN)
    proj.commit("train")
    assert proj.yanex("run", "train.py", "-p", "lr=0.1", "-n", "a", "-t", "x").returncode == 0
    assert proj.yanex("run", "train.py", "-p", "lr=0.2", "-p", "+fail=true", "-n", "b").returncode
    proj.write("train.py", TRAIN + "# changed\n")
    r = proj.yanex("run", "train.py", "-p", "lr=0.3", "-n", "c", "--ignore-dirty")
    assert r.returncode == 0, r.stderr
    git(path, "checkout", "-q", "train.py")
    return proj


def py(proj: Project, code: str) -> dict:  # type: ignore[type-arg]
    r = run_python("import json, yanex.results as yr\n" + code, cwd=proj.path, env=proj.env())
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.splitlines()[-1])


@pytest.mark.slow
def test_a_dataframe_says_where_each_run_came_from(runs: Project) -> None:
    seen = py(
        runs,
        "df = yr.to_dataframe(yr.find(sort='name'))\n"
        "cols = ['commit', 'dirty', 'status', 'exit_code', 'error', 'started', 'duration',"
        " 'script', 'folder', 'tags', 'project']\n"
        "print(json.dumps({'columns': list(df.columns),"
        " 'dtypes': {c: str(df[c].dtype) for c in cols},"
        " 'rows': df[cols].astype(object).where(df[cols].notna(), None)"
        ".assign(started=df['started'].map(lambda t: t.isoformat()))"
        ".to_dict('records')}, default=str))",
    )
    head = git(runs.path, "rev-parse", "HEAD").strip()
    folders = {metadata(f)["name"]: f for f in runs.experiments()}
    a, b, c = seen["rows"]
    assert (a["commit"], a["dirty"], c["commit"], c["dirty"]) == (head, False, head, True)
    assert (a["status"], a["exit_code"], a["error"]) == ("completed", 0, None)
    assert (b["status"], b["exit_code"]) == ("failed", 3)
    assert b["error"] == "exited with code 3: ValueError: the data is bad"
    assert a["folder"] == str(folders["a"]) and a["script"] == str(runs.path / "train.py")
    assert a["tags"] == ["x"] and a["project"] == str(runs.path)
    started = datetime.fromisoformat(metadata(folders["a"])["started_at"])
    assert datetime.fromisoformat(a["started"]) == started  # to the microsecond, as recorded
    assert a["duration"] == metadata(folders["a"])["duration"]
    assert seen["dtypes"] == {
        "commit": "string",
        "dirty": "boolean",
        "status": "string",
        "exit_code": "Int64",
        "error": "string",
        "started": seen["dtypes"]["started"],
        "duration": "Float64",
        "script": "string",
        "folder": "string",
        "tags": "object",
        "project": "string",
    }
    assert seen["dtypes"]["started"].startswith("datetime64")
    # yanex's own columns have no dot: none meets a parameter's or a result's.
    own = [c for c in seen["columns"] if not c.startswith(("params.", "results."))]
    assert all("." not in c for c in own)
    assert "params.lr" in seen["columns"] and "results.loss" in seen["columns"]


def test_metrics_of_many_experiments_are_one_long_table(runs: Project) -> None:
    seen = py(
        runs,
        "recs = yr.find(sort='name')\n"
        "df = yr.metrics_dataframe(recs)\n"
        "one = yr.metrics_dataframe(recs[0])\n"
        "print(json.dumps({'columns': list(df.columns), 'ids': df['id'].tolist(),"
        " 'steps': df['step'].tolist(), 'loss': df['results.loss'].tolist(),"
        " 'acc': [None if v is None or v != v else v for v in"
        " df['results.acc'].astype(object).where(df['results.acc'].notna(), None)],"
        " 'id_dtype': str(df['id'].dtype), 'one': list(one.columns),"
        " 'grouped': {k: len(v) for k, v in df.groupby('id').groups.items()},"
        " 'order': [r.id for r in recs]}))",
    )
    a, b, c = seen["order"]
    assert seen["columns"] == ["id", "step", "timestamp", "results.loss", "results.acc"]
    assert seen["ids"] == [a] * 3 + [b] * 3 + [c] * 3 and seen["id_dtype"] == "string"
    assert seen["steps"] == [0, 1, 2] * 3
    assert seen["loss"] == pytest.approx([0.3, 0.2, 0.1, 0.6, 0.4, 0.2, 0.9, 0.6, 0.3])
    assert seen["acc"] == pytest.approx([None, None, 0.6, None, None, 0.7, None, None, 0.8])
    assert seen["grouped"] == {a: 3, b: 3, c: 3}
    assert seen["one"] == ["step", "timestamp", "results.loss", "results.acc"]  # as before


def test_reading_leaves_the_scripts_garbage_collector_as_it_was(runs: Project) -> None:
    """find() and to_dataframe() pause the cyclic collector while they build (gc_pause): a
    script's collector is on again after, and one the script turned off stays off."""
    seen = py(
        runs,
        "import gc\n"
        "on = [gc.isenabled()]\n"
        "df = yr.to_dataframe(yr.find()); on.append(gc.isenabled())\n"
        "gc.disable(); yr.to_dataframe(yr.find()); on.append(gc.isenabled())\n"
        "print(json.dumps({'on': on, 'rows': len(df)}))",
    )
    assert seen == {"on": [True, True, False], "rows": 3}


def test_overlapping_pauses_in_threads_put_the_collector_back_once() -> None:
    """The dashboard's threads read at once: the collector stays off until the last pause
    ends, and is then on again as the first found it."""
    import gc
    import threading

    from yanex.gc_pause import gc_paused

    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen: list[bool] = []

    def first() -> None:
        with gc_paused():
            first_in.set()
            second_in.wait(10)
        first_out.set()

    def second() -> None:
        first_in.wait(10)
        with gc_paused():
            second_in.set()
            first_out.wait(10)
            seen.append(gc.isenabled())  # the first ended: still paused for this one

    assert gc.isenabled()
    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert seen == [False] and gc.isenabled()
