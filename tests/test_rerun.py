"""`yanex rerun`: the recorded experiment again, on today's code or, with --worktree, on its
own code (commit + git.patch)."""

from __future__ import annotations

import json

import pytest
from conftest import Project, assert_usage_error, git, metadata, results

MODEL = "FACTOR = 2\n"
TRAIN = """
import sys, yanex
from model import FACTOR
lr = yanex.get_param("lr", 0.1)
yanex.log_results({"score": lr * FACTOR, "args": sys.argv[1:]})
print("factor", FACTOR)
"""


def newest(project: Project) -> dict:
    return metadata(project.experiments()[-1])


def setup(project: Project) -> str:
    project.write("model.py", MODEL)
    project.write("train.py", TRAIN)
    project.commit("v1")
    r = project.yanex("run", "train.py", "-p", "lr=0.5", "-n", "orig", "-t", "v1", "--", "--x", "1")
    assert r.returncode == 0, r.stderr
    return project.only_experiment().name


@pytest.mark.slow
def test_rerun_repeats_script_args_and_params_with_changes_on_top(project: Project) -> None:
    original = setup(project)
    r = project.yanex("rerun", "orig", "-t", "again")
    assert r.returncode == 0, r.stderr
    meta = newest(project)
    assert meta["rerun_of"] == original and meta["name"] == "orig-rerun-1"  # a name of its own
    assert meta["args"] == ["--x", "1"] and meta["tags"] == ["v1", "again"]
    assert results(project.experiments()[-1])[0]["results"] == {"score": 1.0, "args": ["--x", "1"]}
    assert "ran at commit" not in r.stderr  # the same commit: nothing to point out
    r = project.yanex("rerun", original[:4], "-p", "lr=2", "-n", "bigger")
    assert r.returncode == 0, r.stderr
    assert results(project.experiments()[-1])[0]["results"]["score"] == 4.0
    assert newest(project)["name"] == "bigger"
    # The rerun's run-command rebuilds it: the original overrides, then the new ones.
    assert newest(project)["overrides"] == ["lr=0.5", "lr=2"]


@pytest.mark.slow
def test_rerun_on_todays_code_says_the_commit_differs(project: Project) -> None:
    setup(project)
    project.write("model.py", "FACTOR = 3\n")
    project.commit("v2")
    r = project.yanex("rerun", "orig")
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("ran at commit") == 1 and "--worktree" in r.stderr
    assert results(project.experiments()[-1])[0]["results"]["score"] == 1.5


@pytest.mark.slow
def test_rerun_worktree_runs_the_recorded_code(project: Project) -> None:
    project.write("model.py", MODEL)
    project.write("train.py", TRAIN)
    project.commit("v1")
    project.write("model.py", "FACTOR = 5  # not committed\n")
    r = project.yanex("run", "train.py", "-p", "lr=0.5", "-n", "dirty-orig", "--ignore-dirty")
    assert r.returncode == 0, r.stderr
    original = project.only_experiment()
    git(project.path, "checkout", "model.py")
    for version in (7, 11):  # fifty commits later, in spirit
        project.write("model.py", f"FACTOR = {version}\n")
        project.commit(f"v{version}")
    r = project.yanex("rerun", "dirty-orig", "--worktree")
    assert r.returncode == 0, r.stderr
    rerun = project.experiments()[-1]
    assert results(rerun)[0]["results"] == results(original)[0]["results"]  # score 2.5
    assert "factor 5" in r.stdout
    meta = metadata(rerun)
    assert meta["script"] == str(project.path / "train.py")  # not the removed worktree's copy
    assert meta["git"]["commit"] == metadata(original)["git"]["commit"]
    assert meta["git"]["dirty"] is True and meta["project"] == str(project.path)
    assert (rerun / "git.patch").read_bytes() == (original / "git.patch").read_bytes()
    # The worktree is gone afterwards, and today's code is untouched.
    assert "worktree" not in git(project.path, "worktree", "list").split("\n", 1)[-1]
    assert (project.path / "model.py").read_text() == "FACTOR = 11\n"


def test_a_commit_that_is_gone_is_a_clear_error(project: Project) -> None:
    setup(project)
    project.write("model.py", "FACTOR = 9\n")
    project.commit("v2")
    git(project.path, "reset", "-q", "--hard", "HEAD~1")
    git(project.path, "commit", "-q", "--amend", "-m", "rewritten")
    git(project.path, "reflog", "expire", "--expire=now", "--all")
    git(project.path, "gc", "-q", "--prune=now")
    before = len(project.experiments())
    r = project.yanex("rerun", "orig", "--worktree")
    assert_usage_error(r, "is no longer in", "Fetch it")
    assert len(project.experiments()) == before


def test_rerun_keeps_the_clean_tree_rule(project: Project) -> None:
    setup(project)
    project.write("model.py", "FACTOR = 4\n")
    assert_usage_error(project.yanex("rerun", "orig"), "uncommitted changes", "model.py")
    assert len(project.experiments()) == 1


@pytest.mark.slow
def test_rerun_of_a_hydra_run_keeps_its_choices(project: Project) -> None:
    project.write("conf/config.yaml", "defaults:\n  - model: small\n  - _self_\nseed: 1\n")
    project.write("conf/model/small.yaml", "width: 8\n")
    project.write("conf/model/large.yaml", "width: 64\n")
    project.write("show.py", "import json, yanex\nprint(json.dumps(yanex.get_params()))\n")
    project.commit()
    assert project.yanex("run", "show.py", "-p", "seed=3", "-n", "h").returncode == 0
    r = project.yanex("rerun", "h")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"model": {"width": 8}, "seed": 3}
    assert newest(project)["hydra"]["choices"] == {"model": "small"}
    r = project.yanex("rerun", "h", "-p", "model=large")  # another option: composed again
    assert json.loads(r.stdout) == {"model": {"width": 64}, "seed": 3}
    assert newest(project)["hydra"]["choices"] == {"model": "large"}


@pytest.mark.slow
def test_bad_reruns(project: Project) -> None:
    setup(project)
    assert_usage_error(project.yanex("rerun", "nothing-like-it"), "no experiment has the ID")
    r = project.yanex("rerun", "orig", "--worktree", "--stage")
    assert r.returncode == 2 and "cannot be staged" in r.stderr
    assert_usage_error(project.yanex("rerun", "orig", "-p", "lr=[1,"), "cannot be parsed")
    assert len(project.experiments()) == 1


@pytest.mark.slow
def test_a_worktree_rerun_can_be_rerun_and_replayed_and_keeps_names_apart(
    project: Project,
) -> None:
    """A worktree rerun records the original's script path and a name of its own: a rerun of
    it works, so does `get run-command`, and `rerun NAME` still means the original."""
    original = setup(project)
    project.write("model.py", "FACTOR = 3\n")
    project.commit("v2")
    r = project.yanex("rerun", "orig", "--worktree")
    assert r.returncode == 0, r.stderr
    first = newest(project)
    assert (first["name"], first["rerun_of"]) == ("orig-rerun-1", original)
    assert first["script"] == str(project.path / "train.py")
    assert (
        first["git"]["commit"] == metadata(project.home / "experiments" / original)["git"]["commit"]
    )
    assert results(project.experiments()[-1])[0]["results"]["score"] == 1.0  # FACTOR 2
    r = project.yanex("rerun", "orig-rerun-1", "--worktree")  # a rerun of a rerun
    assert r.returncode == 0, r.stderr
    second = newest(project)
    assert (second["name"], second["rerun_of"]) == ("orig-rerun-2", first["id"])
    assert results(project.experiments()[-1])[0]["results"]["score"] == 1.0
    r = project.yanex("get", "run-command", "orig-rerun-1")
    assert r.returncode == 0 and r.stdout.startswith("yanex run train.py "), r.stdout
    r = project.yanex("rerun", "orig")  # the original, on today's code
    assert r.returncode == 0, r.stderr
    assert newest(project)["rerun_of"] == original and newest(project)["name"] == "orig-rerun-3"
    assert results(project.experiments()[-1])[0]["results"]["score"] == 1.5  # FACTOR 3


@pytest.mark.slow
def test_a_plain_rerun_says_when_the_uncommitted_code_differs(project: Project) -> None:
    project.write("model.py", MODEL)
    project.write("train.py", TRAIN)
    project.commit("v1")
    project.write("model.py", "FACTOR = 5\n")
    r = project.yanex("run", "train.py", "-n", "dirty", "--ignore-dirty")
    assert r.returncode == 0, r.stderr
    project.write("model.py", "FACTOR = 6\n")
    r = project.yanex("rerun", "dirty", "--ignore-dirty")
    assert r.returncode == 0, r.stderr
    assert "ran other code than there is now" in r.stderr
    assert "uncommitted changes differ" in r.stderr
    rerun = project.experiments()[-1]
    assert "+FACTOR = 6" in (rerun / "git.patch").read_text()  # the code it ran
