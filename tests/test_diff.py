"""`yanex diff A B` and the code in `yanex compare` (CLI and dashboard): two runs of different
code never look alike, and the diff between two code states is git's, built from each commit
plus its git.patch without touching the work tree."""

from __future__ import annotations

import json
import re

import pytest
from conftest import Project, assert_usage_error, git, metadata
from uiserver import Server

TRAIN = """
import yanex
from model import FACTOR
yanex.log_results({"score": yanex.get_param("lr", 0.1) * FACTOR})
"""


def two_runs(project: Project) -> tuple[str, str]:
    """Run a (lr 0.5, FACTOR 2), commit FACTOR 3, run b (lr 0.25): other config, code, results."""
    project.write("model.py", "FACTOR = 2\n")
    project.write("train.py", TRAIN)
    project.commit("v1")
    assert project.yanex("run", "train.py", "-p", "lr=0.5", "-n", "a").returncode == 0
    project.write("model.py", "FACTOR = 3\n")
    project.commit("v2")
    assert project.yanex("run", "train.py", "-p", "lr=0.25", "-n", "b").returncode == 0
    first, second = project.experiments()
    return first.name, second.name


@pytest.mark.slow
def test_diff_shows_config_code_and_results_side_by_side(project: Project) -> None:
    a, b = two_runs(project)
    r = project.yanex("diff", "a", "b")
    assert r.returncode == 0, r.stderr
    text = r.stdout
    assert f"A: {a} a" in text and f"B: {b} b" in text
    assert re.search(r"^lr\s+0\.5\s+0\.25$", text, re.M), text
    commit_a = metadata(project.home / "experiments" / a)["git"]["commit"]
    commit_b = metadata(project.home / "experiments" / b)["git"]["commit"]
    assert re.search(rf"^code\s+{commit_a[:12]}\s+{commit_b[:12]}$", text, re.M), text
    assert "-FACTOR = 2\n+FACTOR = 3\n" in text and "+++ b/model.py" in text
    assert re.search(r"^score\s+1\s+0\.75$", text, re.M), text
    found = json.loads(project.yanex("diff", "a", "b", "--format", "json").stdout)
    assert found["config"] == {"lr": [0.5, 0.25]}
    assert found["results"] == {"score": [1.0, 0.75]}
    assert found["code"]["same"] is False and "+FACTOR = 3" in found["code"]["diff"]
    assert found["environment"] == {}  # one interpreter, one set of packages


@pytest.mark.slow
def test_the_diff_of_two_dirty_states_leaves_the_repository_as_it_was(project: Project) -> None:
    project.write("model.py", "FACTOR = 2\n")
    project.write("train.py", TRAIN)
    project.commit("v1")
    for factor, name in ((5, "five"), (7, "seven")):
        project.write("model.py", f"FACTOR = {factor}\n")
        project.write("notes.py", f"# untracked script of {name}\n")
        r = project.yanex("run", "notes.py", "-n", name, "--ignore-dirty")
        assert r.returncode == 0, r.stderr
    status = git(project.path, "status", "--porcelain")
    found = json.loads(project.yanex("diff", "five", "seven", "--format", "json").stdout)
    diff = found["code"]["diff"]
    assert "-FACTOR = 5\n+FACTOR = 7\n" in diff
    assert "-# untracked script of five\n+# untracked script of seven\n" in diff
    assert found["code"]["a"] != found["code"]["b"] and "+ patch" in found["code"]["a"]
    assert git(project.path, "status", "--porcelain") == status  # work tree and index untouched
    assert git(project.path, "diff", "--cached") == ""


@pytest.mark.slow
def test_a_commit_that_is_gone_is_said(project: Project) -> None:
    two_runs(project)
    git(project.path, "reset", "-q", "--hard", "HEAD~1")
    git(project.path, "reflog", "expire", "--expire=now", "--all")
    git(project.path, "gc", "-q", "--prune=now")
    r = project.yanex("diff", "a", "b")
    assert r.returncode == 0, r.stderr
    assert "is no longer in" in r.stdout and "+FACTOR" not in r.stdout


@pytest.mark.slow
def test_diff_refuses_what_names_no_experiment(project: Project) -> None:
    two_runs(project)
    assert_usage_error(project.yanex("diff", "a", "nothing-like-it"), "no experiment has the ID")


@pytest.mark.slow
def test_compare_shows_the_code_when_it_differs(project: Project) -> None:
    two_runs(project)
    r = project.yanex("compare", "a", "b")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0].split()[:4] == ["ID", "NAME", "STATUS", "CODE"]
    rows = json.loads(project.yanex("compare", "a", "b", "--format", "json").stdout)
    assert rows[0]["code"] != rows[1]["code"]
    # the same params and results, other code: still told apart
    assert project.yanex("rerun", "a", "-n", "a2").returncode == 0  # today's code (FACTOR 3)
    csv = project.yanex("compare", "a", "a2", "--format", "csv").stdout.splitlines()
    assert csv[0].startswith("id,name,status,code,")
    assert project.yanex("rerun", "b", "-n", "b2").returncode == 0  # the same code as b
    r = project.yanex("compare", "b", "b2")
    assert "CODE" not in r.stdout.splitlines()[0]


@pytest.mark.slow
def test_the_dashboards_compare_has_a_code_row(project: Project) -> None:
    a, b = two_runs(project)
    server = Server.start(project)
    try:
        page = server.get(f"/compare?id={a}&id={b}").text
    finally:
        server.stop()
    row = page[page.index('<tr class="code">') :].split("</tr>", 1)[0]
    commits = [metadata(project.home / "experiments" / i)["git"]["commit"][:12] for i in (a, b)]
    assert re.search(rf"<td>{commits[0]}</td><td>{commits[1]}</td>", row), row
    assert "(differs)" in row


@pytest.mark.slow
def test_diff_shows_the_packages_that_differ(project: Project, tmp_path) -> None:
    """Run b with one more package on its path (a real distribution's metadata on
    PYTHONPATH): the environment section names it, and only it."""
    project.write("train.py", "import yanex\nyanex.log_results({'score': 1})\n")
    project.commit()
    assert project.yanex("run", "train.py", "-n", "a").returncode == 0
    site = tmp_path / "lib" / "site-packages"  # where installers put distributions
    (site / "extrapkg-1.2.3.dist-info").mkdir(parents=True)
    (site / "extrapkg-1.2.3.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: extrapkg\nVersion: 1.2.3\n"
    )
    r = project.yanex("run", "train.py", "-n", "b", PYTHONPATH=str(site))
    assert r.returncode == 0, r.stderr
    found = json.loads(project.yanex("diff", "a", "b", "--format", "json").stdout)
    assert found["environment"] == {"package extrapkg": [None, "1.2.3"]}
    text = project.yanex("diff", "a", "b").stdout
    assert re.search(r"^package extrapkg\s+.*1\.2\.3$", text, re.M), text
