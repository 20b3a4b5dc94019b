"""`yanex list`'s columns and the failure reasons in every listing, over real runs: a sweep's
members show the parameters it varies, `--columns` chooses any parameter, result or field,
and a failure's one-line reason is in `list`, `get error`, csv and json."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime

import pytest
from conftest import Project, assert_usage_error, git, metadata

TRAIN = """
import sys, yanex
lr = yanex.get_param("lr", 0.1)
layers = yanex.get_param("layers", 2)
for step in range(3):
    yanex.log_results({"loss": round(1.0 / (step + 1) + lr, 6), "acc": round(step / 3, 6)})
if yanex.get_param("fail", False):
    print("loading the data", file=sys.stderr)
    print("ValueError: the data is bad", file=sys.stderr)
    sys.exit(3)
"""

HYDRA_FAILS = """
import hydra


@hydra.main(version_base=None, config_path=None)
def main(cfg) -> None:
    raise ValueError(f"bad lr {cfg.lr}")


if __name__ == "__main__":
    main()
"""


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """A run, a sweep of four, a failed run, a failed @hydra.main app, and a dirty run."""
    root = tmp_path_factory.mktemp("columns")
    path = root / "proj"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    proj = Project(path, root / "home")
    proj.write("train.py", TRAIN)
    proj.write("app.py", HYDRA_FAILS)
    proj.commit("train")
    assert proj.yanex("run", "train.py", "-p", "lr=0.1", "-n", "base").returncode == 0
    r = proj.yanex("stage", "train.py", "-p", "lr=list(0.2, 0.3)", "-p", "layers=list(1, 4)")
    assert r.returncode == 0, r.stderr
    assert proj.yanex("run", "--staged").returncode == 0
    assert proj.yanex("run", "train.py", "-p", "+fail=true", "-n", "broken").returncode == 3
    assert proj.yanex("run", "app.py", "+lr=0.5", "-n", "app").returncode == 1
    proj.write("train.py", TRAIN + "# an uncommitted change\n")
    assert proj.yanex("run", "train.py", "--ignore-dirty", "-n", "dirty").returncode == 0
    git(path, "checkout", "-q", "train.py")
    return proj


def by_name(proj: Project) -> dict[str, str]:
    return {metadata(f)["name"]: f.name for f in proj.experiments()}


def sweep_of(proj: Project) -> str:
    return next(metadata(f)["sweep"] for f in proj.experiments() if metadata(f)["sweep"])


def listed(proj: Project, *args: str) -> list[list[str]]:
    """`yanex list ARGS` as rows of cells. A pipe gets a plain table whose columns line up:
    they are the spans between the runs of two or more positions blank in every line."""
    r = proj.yanex("list", *args)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    width = max(map(len, lines))
    blank = [all(i >= len(line) or line[i] == " " for line in lines) for i in range(width)]
    bounds, start, i = [], 0, 0
    while i < width:
        if blank[i] and i + 1 < width and blank[i + 1]:
            bounds.append((start, i))
            while i < width and blank[i]:
                i += 1
            start = i
        else:
            i += 1
    bounds.append((start, width))
    return [[line[a:b].strip() for a, b in bounds] for line in lines]


@pytest.mark.slow
def test_a_sweep_lists_the_parameters_it_varies(store: Project) -> None:
    rows = listed(store, "--sweep", sweep_of(store)[:6])
    assert rows[0] == [
        "ID", "NAME", "STATUS", "TAGS", "STARTED", "DURATION", "lr", "layers", "loss", "acc"
    ]  # fmt: skip
    by_id = {row[0]: row for row in rows[1:]}
    for folder in store.experiments():
        meta = metadata(folder)
        if meta["sweep"]:
            params = json.loads((folder / "params.json").read_text())
            assert by_id[folder.name][6:8] == [str(params["lr"]), str(params["layers"])]
    assert len(by_id) == 4
    # Runs that are all one sweep's members, selected otherwise, show the same columns.
    assert listed(store, "--name", "lr=*")[0] == rows[0]
    # A selection that is not one sweep shows no parameters.
    assert listed(store, "--name", "base")[0] == [
        "ID", "NAME", "STATUS", "TAGS", "STARTED", "DURATION", "loss", "acc"
    ]  # fmt: skip


def test_columns_choose_any_parameter_result_or_field(store: Project) -> None:
    ids = by_name(store)
    rows = listed(store, "--columns", "id,params.lr,results.loss", "--columns", "commit,dirty")
    assert rows[0] == ["ID", "lr", "loss", "COMMIT", "DIRTY"]
    cells = {row[0]: row[1:] for row in rows[1:]}
    head = git(store.path, "rev-parse", "HEAD").strip()
    assert cells[ids["base"]] == ["0.1", "0.4333", head[:10], "no"]
    assert cells[ids["dirty"]][2:] == [head[:10], "yes"]
    assert cells[ids["broken"]][0] == "-"  # a parameter it does not have
    # +KEY adds to the default columns.
    rows = listed(store, "--name", "base", "--columns", "+exit_code,+description")
    assert rows[0][-4:] == ["loss", "acc", "EXIT CODE", "DESCRIPTION"]
    assert rows[1][-2:] == ["0", ""]  # exit code 0, no description


def test_csv_of_chosen_columns_is_exact(store: Project) -> None:
    ids = by_name(store)
    r = store.yanex(
        "list", "--columns", "id,started,tags,params.lr,results.loss,error", "--format", "csv"
    )
    assert r.returncode == 0, r.stderr
    table = list(csv.reader(io.StringIO(r.stdout)))
    assert table[0] == ["id", "started", "tags", "params.lr", "results.loss", "error"]
    rows = {row[0]: row for row in table[1:]}
    base = metadata(store.home / "experiments" / ids["base"])
    assert datetime.fromisoformat(rows[ids["base"]][1]) == datetime.fromisoformat(
        base["started_at"]
    )
    assert rows[ids["base"]][3:] == ["0.1", "0.433333", ""]  # the last loss, 1/3 + 0.1
    assert rows[ids["broken"]][5] == "exited with code 3: ValueError: the data is bad"


def test_failed_runs_are_listed_with_their_reason(store: Project) -> None:
    rows = listed(store, "--status", "failed")
    assert rows[0][-1] == "REASON"
    reasons = {row[1]: row[-1] for row in rows[1:]}
    assert reasons == {
        "broken": "exited with code 3: ValueError: the data is bad",
        "app": "exited with code 1: ValueError: bad lr 0.5",  # not Hydra's advice
    }
    # Any listing shows it when asked.
    assert listed(store, "--columns", "+error")[0][-1] == "REASON"


def test_get_error_prints_each_id_and_its_reason(store: Project) -> None:
    ids = by_name(store)
    r = store.yanex("get", "error", "--status", "failed")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        f"{ids['app']}\texited with code 1: ValueError: bad lr 0.5",
        f"{ids['broken']}\texited with code 3: ValueError: the data is bad",
    ]
    assert store.yanex("get", "error", "base").stdout == f"{ids['base']}\n"  # no reason


def test_csv_and_json_carry_the_reason_and_the_code(store: Project) -> None:
    ids = by_name(store)
    r = store.yanex("list", "--format", "csv", "--all")
    table = list(csv.reader(io.StringIO(r.stdout)))
    header = table[0]
    assert {"error", "commit", "dirty"} <= set(header)
    rows = {row[0]: dict(zip(header, row, strict=True)) for row in table[1:]}
    assert rows[ids["broken"]]["error"] == "exited with code 3: ValueError: the data is bad"
    assert rows[ids["base"]]["error"] == "" and rows[ids["base"]]["dirty"] == "false"
    assert rows[ids["dirty"]]["dirty"] == "true"
    head = git(store.path, "rev-parse", "HEAD").strip()
    assert rows[ids["base"]]["commit"] == head
    data = {e["id"]: e for e in json.loads(store.yanex("list", "--format", "json").stdout)}
    broken = data[ids["broken"]]
    assert broken["reason"] == "exited with code 3: ValueError: the data is bad"
    assert broken["error"].splitlines()[-1] == "ValueError: the data is bad"  # as recorded
    assert (broken["commit"], broken["dirty"]) == (head, False)


def test_the_code_a_run_ran_selects_and_sorts(store: Project) -> None:
    ids = by_name(store)
    r = store.yanex("list", "--where", "dirty==true", "--format", "ids")
    assert r.stdout.split() == [ids["dirty"]]
    head = git(store.path, "rev-parse", "HEAD").strip()
    r = store.yanex("list", "--where", f"commit=='{head}'", "--all", "--format", "ids")
    assert len(r.stdout.split()) == len(store.experiments())
    r = store.yanex("list", "--sort", "-dirty", "--format", "ids")
    assert r.stdout.split()[0] == ids["dirty"]


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--columns", "bogus"], ["unknown column 'bogus'", "params.<dotted key>", "error"]),
        (["--columns", "+bogus"], ["unknown column 'bogus'"]),
        (["--columns", "id,params.lrr"], ["no experiment has a parameter 'lrr'", "params.lr"]),
        (["--columns", "results.los"], ["no experiment has a result 'los'", "results.loss"]),
        (["--where", "dirty<true"], ["dirty is true or false", "dirty==true"]),
        (["--where", "dirty==1"], ["dirty is true or false"]),
    ],
)
def test_bad_columns_are_refused(store: Project, args: list[str], needles: list[str]) -> None:
    before = store.store_entries()
    assert_usage_error(store.yanex("list", *args), *needles)
    assert store.store_entries() == before
