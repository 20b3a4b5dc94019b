"""yanex 0.6's stores: read as data (never changed), the notice, `yanex migrate`, and
YANEX_EXPERIMENTS_DIR.

The stores are what yanex 0.6.1 really writes: its own ``yanex`` (the venv at
/work/venv-06, or $YANEX_06) runs scripts in a real git repository into a store of the test's
own. Where it is not installed, the committed copy of such a store (tests/data/v06_store,
written by :func:`write_v06_store`) stands in, and the live tests are skipped, saying so.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Project, assert_usage_error, clean_env, git

# Every test here writes or copies a whole store of yanex 0.6 (and runs 0.6.1 itself).
pytestmark = pytest.mark.slow

V06 = Path(os.environ.get("YANEX_06", "/work/venv-06/bin/yanex"))
live = pytest.mark.skipif(not V06.exists(), reason=f"yanex 0.6.1 is not installed ({V06})")
FIXTURE = Path(__file__).parent / "data" / "v06_store"

TRAIN = """\
import sys
import yanex

params = yanex.get_params()
print("training lr", params.get("lr"))
print("a warning", file=sys.stderr)
for step in range(3):
    yanex.log_metrics({"loss": 1.0 / (step + 1), "acc": 0.5 + step * 0.1}, step=step)
"""
FAIL = """\
import yanex

yanex.log_metrics({"x": 1})
raise SystemExit(3)
"""
EVAL = """\
import yanex

yanex.log_metrics({"score": 0.9})
"""
CONFIG = "lr: 0.01\nmodel:\n  layers: 3\n  name: resnet\n"


def v06(proj: Path, home: Path, *args: str, code: int = 0) -> str:
    """Run yanex 0.6.1's own command line with its store at ``home/experiments``."""
    env = clean_env(home, YANEX_EXPERIMENTS_DIR=str(home / "experiments"), HOME=str(home.parent))
    del env["YANEX_HOME"]
    proc = subprocess.run(
        [str(V06), *args], cwd=proj, env=env, capture_output=True, text=True, timeout=120,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.returncode == code, (args, proc.stdout, proc.stderr)
    return proc.stdout


def write_v06_store(proj: Project, home: Path) -> None:
    """What tests/data/v06_store holds: five runs of yanex 0.6.1 (a completed one with a
    config, tags and description; a failed one, then archived by 0.6; one from a dirty tree;
    a staged one; one that depends on the first)."""
    proj.write("train.py", TRAIN)
    proj.write("fail.py", FAIL)
    proj.write("eval.py", EVAL)
    proj.write("config.yaml", CONFIG)
    proj.commit("scripts")
    run = ["run", "train.py", "-c", "config.yaml", "-p", "lr=0.05"]
    v06(proj.path, home, *run, "-n", "first", "--tag", "a", "--tag", "b", "-d", "the first")
    v06(proj.path, home, "run", "fail.py", "-n", "bad", code=1)
    first, bad = (_by_name(home)[n] for n in ("first", "bad"))
    v06(proj.path, home, "archive", bad, "--force")
    v06(proj.path, home, "run", "eval.py", "-n", "eval", "-D", f"train={first}")
    v06(proj.path, home, "run", "train.py", "-p", "lr=0.1", "--stage", "-n", "later")
    (proj.path / "train.py").write_text(TRAIN + "# an uncommitted change\n")
    v06(proj.path, home, "run", "train.py", "-n", "dirty")
    git(proj.path, "checkout", "train.py")


def _by_name(home: Path) -> dict[str, str]:
    """{name: id} of the 0.6 folders of the store (its archive's included)."""
    found = {}
    root = home / "experiments"
    for meta in [*root.glob("*/metadata.json"), *root.glob("archived/*/metadata.json")]:
        data = json.loads(meta.read_text())
        found[data.get("name")] = data["id"]
    return found


def _tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its bytes (to prove nothing was changed)."""
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def live_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A store written by yanex 0.6.1 itself, once for the module: (its home, its project)."""
    if not V06.exists():
        pytest.skip(f"yanex 0.6.1 is not installed ({V06}): the live 0.6.1 part is skipped")
    base = tmp_path_factory.mktemp("v06-live")
    path = base / "proj"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    proj = Project(path, base / "home")
    proj.write("README.md", "0.6 project\n")
    proj.commit("init")
    write_v06_store(proj, proj.home)
    return proj.home, path


@pytest.fixture(params=["fixture", "live"])
def store(request: pytest.FixtureRequest, project: Project) -> Project:
    """The project's store holding a 0.6.1 store: the committed one, or one written live."""
    source = request.getfixturevalue("live_store")[0] if request.param == "live" else FIXTURE
    shutil.copytree(source / "experiments", project.home / "experiments")
    return project


def test_v06_store_is_read_as_data_and_never_changed(store: Project) -> None:
    root = store.home / "experiments"
    before = _tree(root)
    ids = _by_name(store.home)
    first, dirty = ids["first"], ids["dirty"]

    listed = store.yanex("list", "-A")
    assert listed.returncode == 0, listed.stderr
    # The first command says once what these are and what to do.
    assert "4 experiments of yanex 0.6 found in" in listed.stderr
    assert "1 archived by yanex 0.6" in listed.stderr
    assert "`yanex migrate --dry-run`" in listed.stderr
    for name, status in (("first", "completed"), ("eval", "completed"), ("dirty", "completed"),
                         ("later", "staged")):  # fmt: skip
        row = next(line for line in listed.stdout.splitlines() if f" {name} " in line)
        assert status in row, listed.stdout
    assert " bad " not in listed.stdout  # 0.6's archive is no experiment of ours
    again = store.yanex("list", "-A")
    assert "yanex 0.6" not in again.stderr  # said once

    shown = store.yanex("show", first)
    assert shown.returncode == 0, shown.stderr
    for text in ("the first", "a, b", "lr: 0.05", "layers: 3", "loss", "0.3333", "commit"):
        assert text in shown.stdout, (text, shown.stdout)
    assert "(no commit)" not in shown.stdout
    dirty_shown = store.yanex("show", dirty).stdout
    assert "dirty        yes (artifacts/git_diff.patch" in dirty_shown
    eval_shown = store.yanex("show", ids["eval"]).stdout
    assert first in eval_shown  # its dependency (0.6's dependencies.json)

    assert store.yanex("get", "params.lr", first).stdout.strip() == "0.05"
    assert store.yanex("get", "results.loss", first).stdout.strip() == "0.3333333333333333"
    assert store.yanex("get", "params.model.name", first).stdout.strip() == "resnet"
    code_diff = store.yanex("diff", first, dirty)  # dirty: its patch is its code too
    assert code_diff.returncode == 0, code_diff.stderr
    assert "+ patch" in code_diff.stdout and "(the same code)" not in code_diff.stdout
    compared = store.yanex("compare", first, dirty)
    assert compared.returncode == 0 and "0.05" in compared.stdout and "0.01" in compared.stdout

    code = (
        "import json, yanex.results as yr\n"
        f"e = yr.get_experiment({first!r})\n"
        "print(json.dumps([e.name, e.status, e.get_params(), e.get_metric('loss'),"
        " e.started_at.utcoffset() is not None]))\n"
    )
    got = subprocess.run(
        [sys.executable, "-c", code], env=store.env(), capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert got.returncode == 0, got.stderr
    name, status, params, loss, zoned = json.loads(got.stdout)
    assert (name, status, params) == (
        "first",
        "completed",
        {"lr": 0.05, "model": {"layers": 3, "name": "resnet"}},
    )
    assert loss == [1.0, 0.5, 1 / 3] and zoned

    assert _tree(root) == before  # read, never written: no file added, none changed


def test_v06_folder_is_not_changed_nor_run_until_migrated(store: Project) -> None:
    root = store.home / "experiments"
    before = _tree(root)
    ids = _by_name(store.home)
    refused = store.yanex("update", ids["first"], "--add-tag", "x", "--yes")
    assert_usage_error(refused, "yanex 0.6", f"yanex migrate {ids['first']}")
    assert _tree(root) == before


def test_migrate_dry_run_lists_and_writes_nothing(store: Project) -> None:
    root = store.home / "experiments"
    before = _tree(root)
    ids = _by_name(store.home)
    dry = store.yanex("migrate", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    line = next(x for x in dry.stdout.splitlines() if x.startswith(ids["first"]))
    assert "params.json, config.yaml, results.jsonl (3 lines), stdout.txt, stderr.txt" in line
    assert "metadata.json (ours; 0.6's kept as metadata.v06.json)" in line
    assert "git.patch" in next(x for x in dry.stdout.splitlines() if x.startswith(ids["dirty"]))
    assert f"then moves it to {store.home / 'archived' / ids['bad']}" in dry.stdout
    assert "nothing was written" in dry.stderr
    no_tty = store.yanex("migrate")  # no terminal and no --yes: refused, nothing written
    assert_usage_error(no_tty, "add --yes")
    unknown = store.yanex("migrate", "--dry-run", "ffffffff")
    assert_usage_error(unknown, "'ffffffff' is not a folder of yanex 0.6")
    assert _tree(root) == before


def test_migrate_takes_0_6s_all_and_the_filters(store: Project) -> None:
    """`--all` (0.6's way to say every folder) and the filters `yanex list` takes select what
    is migrated; `--all` beside IDs or filters is refused."""
    root = store.home / "experiments"
    before = _tree(root)
    ids = _by_name(store.home)
    everything = store.yanex("migrate", "--dry-run")
    assert everything.returncode == 0, everything.stderr
    every_id = sorted(line.split()[0].rstrip(":") for line in everything.stdout.splitlines())
    with_all = store.yanex("migrate", "--all", "--dry-run")
    assert sorted(line.split()[0].rstrip(":") for line in with_all.stdout.splitlines()) == every_id
    named = store.yanex("migrate", "--dry-run", "-A", "-n", "first")
    assert named.returncode == 0, named.stderr
    assert [line.split()[0].rstrip(":") for line in named.stdout.splitlines()] == [ids["first"]]
    listed = store.yanex("migrate", "--dry-run", "-A", "-i", f"{ids['first']},{ids['dirty']}")
    assert sorted(line.split()[0].rstrip(":") for line in listed.stdout.splitlines()) == sorted(
        [ids["first"], ids["dirty"]]
    )
    assert_usage_error(store.yanex("migrate", "--all", "-n", "first"), "--all selects every")
    assert_usage_error(store.yanex("migrate", "--all", ids["first"]), "--all selects every")
    assert _tree(root) == before


def test_migrate_makes_them_ours_keeping_theirs(store: Project) -> None:
    root = store.home / "experiments"
    ids = _by_name(store.home)
    first = ids["first"]
    theirs = _tree(root / first)
    shown_before = store.yanex("show", first).stdout

    done = store.yanex("migrate", "--yes")
    assert done.returncode == 0, done.stderr
    assert "migrated 5 folders of yanex 0.6" in done.stderr
    after = _tree(root / first)
    for name, data in theirs.items():  # 0.6's files kept as they were (metadata aside)
        assert after[name if name != "metadata.json" else "metadata.v06.json"] == data, name
    meta = json.loads(after["metadata.json"])
    assert meta["script"].endswith("train.py") and meta["migrated_from"]["yanex"] == "0.6"
    assert json.loads(after["params.json"]) == {
        "lr": 0.05,
        "model": {"layers": 3, "name": "resnet"},
    }
    assert after["stdout.txt"] == theirs["artifacts/stdout.txt"]
    assert (store.home / "archived" / ids["bad"] / "metadata.json").exists()
    assert not (root / "archived" / ids["bad"]).exists()

    # The same experiment as before, now one of ours in every way.
    shown = store.yanex("show", first).stdout
    for text in ("lr: 0.05", "0.3333", "the first", "a, b"):
        assert text in shown_before and text in shown, text
    assert "yanex 0.6" not in store.yanex("list", "-a", "-A").stderr
    assert store.yanex("list", "-a", "-A").stdout.count(" bad ") == 1
    tagged = store.yanex("update", first, "--add-tag", "moved", "--yes")
    assert tagged.returncode == 0, tagged.stderr
    assert "moved" in json.loads((root / first / "metadata.json").read_text())["tags"]

    # Idempotent: a second migration finds nothing, and changes nothing.
    settled = _tree(store.home / "experiments")
    again = store.yanex("migrate", "--yes")
    assert again.returncode == 0 and "no folders of yanex 0.6" in again.stderr
    assert _tree(store.home / "experiments") == settled


def test_interrupted_migration_is_finished_by_a_rerun(store: Project) -> None:
    """A migration that stops part way (here: the disk refuses one file of one folder) leaves
    that folder 0.6's, read as before; the rerun finishes it."""
    root = store.home / "experiments"
    ids = _by_name(store.home)
    dirty = root / ids["dirty"]
    (dirty / "git.patch").mkdir()  # where migrating writes: the rename onto it fails
    half = store.yanex("migrate", "--yes")
    assert_usage_error(half, "1 folder not migrated", ids["dirty"])
    assert "migrated 4 folders" in half.stderr
    assert "saved_at" in json.loads((dirty / "metadata.json").read_text())  # still 0.6's
    assert store.yanex("get", "params.lr", ids["dirty"]).stdout.strip() == "0.01"
    (dirty / "git.patch").rmdir()
    rerun = store.yanex("migrate", "--yes")
    assert rerun.returncode == 0, rerun.stderr
    assert "migrated 1 folder of yanex 0.6" in rerun.stderr
    theirs = (dirty / "artifacts/git_diff.patch").read_bytes()
    assert not theirs.endswith(b"\n")  # 0.6 cut the last newline git needs: ours has it
    assert (dirty / "git.patch").read_bytes() == theirs + b"\n"
    assert "migrated_from" in json.loads((dirty / "metadata.json").read_text())


def test_a_folder_migrate_cannot_map_is_named_with_why(store: Project) -> None:
    root = store.home / "experiments"
    ids = _by_name(store.home)
    metrics = root / ids["first"] / "metrics.json"
    metrics.write_bytes(metrics.read_bytes()[:40])  # cut, as a run killed mid-write left it
    done = store.yanex("migrate", "--yes")
    assert_usage_error(done, ids["first"], "metrics.json is not valid JSON")
    assert "migrated 4 folders" in done.stderr
    assert not (root / ids["first"] / "metadata.v06.json").exists()


@live
def test_values_match_yanex_0_6_own_answers(
    live_store: tuple[Path, Path], project: Project
) -> None:
    """The oracle: what yanex 0.6.1's own `yanex get` answers, ours answers from its store."""
    home, proj = live_store
    shutil.copytree(home / "experiments", project.home / "experiments")
    ids = _by_name(home)
    fields = {"params.lr": "params.lr", "metrics.loss": "results.loss", "status": "status",
              "name": "name", "description": "description", "params.model.layers":
              "params.model.layers"}  # fmt: skip
    chosen = ",".join(ids[name] for name in ("first", "dirty", "eval"))
    for theirs, ours in fields.items():  # each field of the three in one call of each
        expected = json.loads(v06(proj, home, "get", theirs, "--ids", chosen, "-F", "json"))
        got = project.yanex("get", ours, "--ids", chosen, "-F", "json")
        assert got.returncode == 0, (ours, got.stderr)
        answers = {row["id"]: row["value"] for row in json.loads(got.stdout)}
        assert len(expected) == len(answers) == 3, (theirs, expected, answers)
        for row in expected:
            if row["value"] in (None, "None", "-", "", "[not_found]"):  # 0.6 says so for none
                assert answers[row["id"]] in (None, "", "-"), (theirs, row, answers)
            else:
                assert answers[row["id"]] == row["value"], (theirs, row, answers)


@live
def test_times_are_0_6_utc_shown_in_local_time(
    live_store: tuple[Path, Path], project: Project
) -> None:
    """0.6 wrote naive UTC times (``datetime.utcnow()``): ours shows them in local time."""
    from datetime import UTC, datetime, timedelta

    home, _ = live_store
    shutil.copytree(home / "experiments", project.home / "experiments")
    first = _by_name(home)["first"]
    naive = json.loads((home / "experiments" / first / "metadata.json").read_text())["started_at"]
    shown = project.yanex("show", first, TZ="Asia/Tokyo").stdout
    tokyo = datetime.fromisoformat(naive).replace(tzinfo=UTC) + timedelta(hours=9)
    assert f"started      {tokyo.replace(tzinfo=None).isoformat()}+09:00" in shown, shown


@live
def test_migrated_staged_run_runs_and_a_rerun_works(
    live_store: tuple[Path, Path], project: Project
) -> None:
    home, proj = live_store
    shutil.copytree(home / "experiments", project.home / "experiments")
    ids = _by_name(home)
    before = _tree(project.home / "experiments")
    left = Project(proj, project.home).yanex("run", "--staged")  # read as it is, never run
    assert f"{ids['later']} was staged by yanex 0.6 and is left staged" in left.stderr
    assert _tree(project.home / "experiments") == before
    assert project.yanex("migrate", "--yes").returncode == 0
    ran = Project(proj, project.home).yanex("run", "--staged")
    assert ran.returncode == 0, ran.stderr
    assert "1 completed" in ran.stderr
    later = json.loads((project.home / "experiments" / ids["later"] / "metadata.json").read_text())
    assert later["status"] == "completed"
    assert Project(proj, project.home).yanex("get", "params.lr", ids["later"]).stdout == "0.1\n"
    rerun = Project(proj, project.home).yanex("rerun", ids["first"])
    assert rerun.returncode == 0, rerun.stderr
    assert "training lr 0.05" in rerun.stdout
    redone = Project(proj, project.home).yanex("rerun", ids["dirty"])  # with 0.6's patch
    assert redone.returncode == 0, redone.stderr
    code_diff = Project(proj, project.home).yanex("diff", ids["first"], ids["dirty"])
    assert "+# an uncommitted change" in code_diff.stdout, code_diff.stdout


def test_yanex_experiments_dir_is_the_experiments_folder(project: Project, tmp_path: Path) -> None:
    """0.6's variable names the experiments folder itself; ours' index and archive go beside
    it (in its parent), so it must be named 'experiments' and agree with YANEX_HOME."""
    shutil.copytree(FIXTURE / "experiments", tmp_path / "store" / "experiments")
    env = clean_env(project.home, YANEX_EXPERIMENTS_DIR=str(tmp_path / "store" / "experiments"))
    del env["YANEX_HOME"]
    listed = project.yanex("list", "-A", env=env)
    assert listed.returncode == 0 and " first " in listed.stdout, listed.stderr
    project.write("t.py", "import yanex\nyanex.log_metrics({'v': 1})\n")
    project.commit("t")
    ran = project.yanex("run", "t.py", env=env)
    assert ran.returncode == 0, ran.stderr
    assert len(list((tmp_path / "store" / "experiments").glob("*/results.jsonl"))) == 1
    assert list((tmp_path / "store").glob("index-v*.sqlite3"))
    assert not project.home.exists()

    other = tmp_path / "runs"
    env["YANEX_EXPERIMENTS_DIR"] = str(other)
    assert_usage_error(
        project.yanex("list", "-A", env=env), "must be named 'experiments'", "YANEX_HOME"
    )
    assert not other.exists()
    both = clean_env(
        tmp_path / "elsewhere", YANEX_EXPERIMENTS_DIR=str(tmp_path / "store" / "experiments")
    )
    assert_usage_error(project.yanex("list", env=both), "name two stores")


def test_dashboard_page_of_a_v06_folder_shows_its_output(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dashboard's experiment page reads 0.6's outputs where 0.6 kept them."""
    from yanex import query
    from yanex.index import Index
    from yanex.ui import views

    shutil.copytree(FIXTURE / "experiments", project.home / "experiments")
    monkeypatch.setenv("YANEX_HOME", str(project.home))
    ids = _by_name(project.home)
    index = Index(echo=lambda line: None)
    try:
        index.sync()
        page = views.experiment(query.Lookup(index, lambda: None).one(ids["first"]))
    finally:
        index.close()
    assert page.stdout.lines == ["training lr 0.05"]
    assert page.stderr_last == ["a warning"]
    assert "lr: 0.05" in page.config_yaml and page.steps == 3
