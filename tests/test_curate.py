"""`yanex update/archive/unarchive/delete`: they say what, ask first, refuse running runs,
and keep every experiment whole in one place."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import sys
import time

import pytest
from conftest import Project, assert_usage_error, metadata

JOB = "import yanex\nyanex.log_results({'loss': yanex.get_param('lr', 0.1)})\nprint('ok')\n"


def setup(project: Project) -> dict[str, str]:
    project.write("job.py", JOB)
    project.commit()
    for name, lr in (("a", 0.1), ("b", 0.2), ("c", 0.3)):
        assert project.yanex("run", "job.py", "-p", f"lr={lr}", "-n", name).returncode == 0
    return {metadata(f)["name"]: f.name for f in project.experiments()}


def names(project: Project, *args: str) -> list[str]:
    r = project.yanex("list", "--format", "json", *args)
    assert r.returncode == 0, r.stderr
    return sorted(e["name"] for e in json.loads(r.stdout))


@pytest.mark.slow
def test_update_name_description_and_tags(project: Project) -> None:
    ids = setup(project)
    r = project.yanex("update", "a", "--name", "alpha", "-d", "first try", "--add-tag", "x",
                      "--add-tag", "y")  # fmt: skip
    assert r.returncode == 0, r.stderr
    meta = metadata(project.home / "experiments" / ids["a"])
    assert (meta["name"], meta["description"], meta["tags"]) == ("alpha", "first try", ["x", "y"])
    assert project.yanex("update", ids["a"][:5], "--remove-tag", "x").returncode == 0
    assert names(project, "--tag", "y") == ["alpha"] and names(project, "--tag", "x") == []
    assert_usage_error(project.yanex("update", "b"), "say what to change")
    assert_usage_error(project.yanex("update", "b", "--add-tag", " "), "a tag cannot be empty")


@pytest.mark.slow
def test_archive_hides_and_unarchive_brings_back_whole(project: Project) -> None:
    ids = setup(project)
    before = sorted(p.name for p in (project.home / "experiments" / ids["b"]).iterdir())
    r = project.yanex("archive", "b", "--yes")
    assert r.returncode == 0, r.stderr
    assert f"{ids['b']} b [completed]" in r.stderr and "archived 1 experiment" in r.stderr
    assert names(project) == ["a", "c"]
    assert names(project, "--archived") == ["b"]
    assert (project.home / "archived" / ids["b"]).is_dir()
    assert project.yanex("show", "b").returncode == 0  # still found by name or ID
    assert project.yanex("unarchive", "--name", "b", "--yes").returncode == 0
    assert names(project) == ["a", "b", "c"]
    after = sorted(p.name for p in (project.home / "experiments" / ids["b"]).iterdir())
    assert after == before


@pytest.mark.slow
def test_archived_staged_experiments_leave_the_queue(project: Project) -> None:
    project.write("job.py", JOB)
    project.commit()
    staged = project.yanex("stage", "job.py", "-p", "lr=list(1, 2)").stdout.split()
    assert project.yanex("archive", staged[0], "--yes").returncode == 0
    r = project.yanex("run", "--staged")
    assert "1 completed" in r.stderr
    assert metadata(project.home / "archived" / staged[0])["status"] == "staged"
    assert not (project.home / "archived" / staged[0] / "claim.json").exists()


@pytest.mark.slow
def test_delete_by_filter_asks_and_removes(project: Project) -> None:
    ids = setup(project)
    r = project.yanex("delete", "--where", "params.lr>=0.2")
    assert_usage_error(r, "no terminal to confirm on", "--yes")
    assert names(project) == ["a", "b", "c"]
    r = project.yanex("delete", "--where", "params.lr>=0.2", "--yes")
    assert r.returncode == 0 and "Delete 2 experiments" in r.stderr
    assert names(project) == ["a"]
    assert sorted(p.name for p in (project.home / "experiments").iterdir()) == [ids["a"]]


@pytest.mark.slow
def test_delete_asks_at_a_terminal(project: Project) -> None:
    setup(project)
    for answer, left in ((b"n\n", ["a", "b", "c"]), (b"y\n", ["b", "c"])):
        pid, fd = pty.fork()
        if pid == 0:
            os.chdir(project.path)
            os.execve(sys.executable, [sys.executable, "-m", "yanex", "delete", "a"], project.env())
        output = b""
        deadline = time.monotonic() + 60
        while b"[y/N]" not in output and time.monotonic() < deadline:
            output += os.read(fd, 1024)
        os.write(fd, answer)
        while True:
            try:
                chunk = os.read(fd, 1024)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
        os.waitpid(pid, 0)
        assert b"Delete 1 experiment" in output
        assert names(project) == left


@pytest.mark.slow
def test_running_experiments_are_never_deleted_or_archived(project: Project) -> None:
    project.write("slow.py", "import time\nprint('ready', flush=True)\ntime.sleep(60)\n")
    project.commit()
    proc = project.popen("run", "slow.py", "-n", "busy", stdin=subprocess.DEVNULL,
                         start_new_session=True)  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        for verb in ("delete", "archive"):
            r = project.yanex(verb, "busy", "--yes")
            assert_usage_error(r, "is running", "busy", f"nothing was {verb}d")
        assert metadata(project.only_experiment())["status"] == "running"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    assert project.yanex("delete", "busy", "--yes").returncode == 0
    assert project.experiments() == []


@pytest.mark.slow
def test_commands_that_change_need_ids_or_filters(project: Project) -> None:
    setup(project)
    for verb in ("delete", "archive", "unarchive"):
        assert_usage_error(project.yanex(verb, "--yes"), "name the experiments")
    assert names(project) == ["a", "b", "c"]
    assert_usage_error(project.yanex("delete", "zzzz", "--yes"), "no experiment has the ID")


@pytest.mark.slow
def test_a_reference_that_is_an_id_prefix_and_a_name_is_refused_everywhere(
    project: Project,
) -> None:
    """`yanex delete ffff --yes` with an experiment ffff0000 and another named `ffff` deleted
    ffff0000: a prefix never silently beats a name, nor a name a prefix."""
    ids = setup(project)
    prefix = ids["a"][:4]
    r = project.yanex("update", "b", "--name", prefix)
    assert r.returncode == 0 and "looks like an experiment ID" in r.stderr, r.stderr
    before = sorted(p.name for p in (project.home / "experiments").iterdir())
    for args in (
        ["delete", prefix, "--yes"],
        ["archive", prefix, "--yes"],
        ["update", prefix, "--add-tag", "x"],
        ["rerun", prefix],
        ["show", prefix],  # reading too: never a prefix over a name, or the other way
    ):
        r = project.yanex(*args)
        assert_usage_error(r, f"'{prefix}' is an ID prefix and a name", ids["a"], ids["b"])
        assert "full ID" in r.stderr
    assert sorted(p.name for p in (project.home / "experiments").iterdir()) == before
    assert all(not metadata(f)["tags"] for f in project.experiments())
    # the full IDs still name each one
    assert project.yanex("update", ids["a"], "--add-tag", "x").returncode == 0
    assert metadata(project.home / "experiments" / ids["a"])["tags"] == ["x"]


@pytest.mark.slow
def test_a_name_several_experiments_share_is_refused_by_changing_commands(
    project: Project,
) -> None:
    ids = setup(project)
    assert project.yanex("update", ids["c"], "--name", "a").returncode == 0  # two are "a"
    for args in (
        ["delete", "a", "--yes"],
        ["archive", "a", "--yes"],
        ["update", "a", "--add-tag", "x"],
        ["rerun", "a"],
    ):
        r = project.yanex(*args)
        assert_usage_error(r, "'a' is the name of 2 experiments", ids["a"], ids["c"])
    assert len(project.experiments()) == 3
    assert all(not metadata(f)["tags"] for f in project.experiments())
    # reading: the newest of this project with that name (README: Finding and comparing)
    r = project.yanex("get", "id", "a")
    assert r.returncode == 0 and r.stdout.strip() == ids["c"]


@pytest.mark.slow
def test_a_name_that_is_an_id_gets_a_warning_when_set(project: Project) -> None:
    ids = setup(project)
    r = project.yanex("update", "b", "--name", ids["a"])
    assert r.returncode == 0, r.stderr
    assert f"warning: the name '{ids['a']}' is the ID of experiment {ids['a']}" in r.stderr
    # a's full ID is now a's ID and b's name: refused, and the way out is named
    r = project.yanex("archive", ids["a"], "--yes")
    assert_usage_error(r, "is an ID prefix and a name", f"yanex update {ids['b']} --name NEW")
    assert project.yanex("update", ids["b"], "--name", "b-again").returncode == 0
    assert project.yanex("archive", ids["a"], "--yes").returncode == 0
    r = project.yanex("run", "job.py", "-n", "beef12")
    assert r.returncode == 0 and "'beef12' looks like an experiment ID" in r.stderr, r.stderr
    r = project.yanex("run", "job.py", "-n", "plain-name")
    assert "warning" not in r.stderr
