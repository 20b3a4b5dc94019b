"""The one code check (yanex.code.check.CodeCheck): every member of a staged batch, of `-m` and of a
`yanex.launch` sweep runs the code it records, the check keyed on what git itself would
notice (the index, HEAD, the files' stat data), never on a clock."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from conftest import Project, metadata, results

from yanex.code.check import RACY_SECONDS

# Member 0 edits a tracked file that the later members import.
EDITS = """
import yanex
from model import FACTOR
x = yanex.get_param("x")
yanex.log_results({"factor": FACTOR})
if x == 0:
    with open("model.py", "a") as f:
        f.write("FACTOR = 2  # edited by member 0\\n")
"""


def setup(project: Project) -> None:
    project.write("model.py", "FACTOR = 1\n")
    project.write("job.py", EDITS)
    project.commit()


def members(project: Project) -> list[Path]:
    return sorted(project.experiments(), key=lambda f: metadata(f)["sweep_index"])


@pytest.mark.slow
def test_a_member_that_edits_the_code_gets_the_next_ones_refused(project: Project) -> None:
    setup(project)
    assert project.yanex("stage", "job.py", "-p", "x=range(3)").returncode == 0
    r = project.yanex("run", "--staged", "-j", "1")
    assert r.returncode == 1, r.stderr
    first, *rest = members(project)
    assert metadata(first)["status"] == "completed"
    assert [metadata(f)["status"] for f in rest] == ["staged", "staged"]
    assert r.stderr.count("uncommitted changes (it was clean at staging)") == 2, r.stderr


@pytest.mark.slow
def test_with_ignore_dirty_each_member_of_m_records_the_code_it_ran(project: Project) -> None:
    setup(project)
    r = project.yanex("run", "job.py", "x=range(3)", "-m", "-j", "1", "--ignore-dirty")
    assert r.returncode == 0, r.stderr
    first, *rest = members(project)
    assert results(first)[0]["results"] == {"factor": 1}
    assert metadata(first)["git"]["dirty"] is False and not (first / "git.patch").exists()
    for folder in rest:
        meta = metadata(folder)
        assert results(folder)[0]["results"] == {"factor": 2}  # it ran the edited code
        assert meta["git"]["dirty"] is True and meta["git_at_staging"]["dirty"] is False
        assert "+FACTOR = 2  # edited by member 0" in (folder / "git.patch").read_text()


def git_logger(tmp_path: Path) -> tuple[Path, Path]:
    """A `git` first on PATH that logs each command, then runs the real git."""
    tools, log = tmp_path / "tools", tmp_path / "git.log"
    tools.mkdir()
    real = next(
        Path(d, "git") for d in os.environ["PATH"].split(os.pathsep) if Path(d, "git").is_file()
    )
    wrapper = tools / "git"
    wrapper.write_text(f'#!/bin/sh\necho "$*" >> "{log}"\nexec "{real}" "$@"\n')
    wrapper.chmod(0o755)
    return tools, log


@pytest.mark.slow
def test_unchanged_code_is_read_with_git_once_per_batch(project: Project, tmp_path: Path) -> None:
    """What the check costs: a 20-member grid of unchanged code reads the repository's state
    once at staging and once for the whole batch, not once per member (nor once a second)."""
    project.write("model.py", "FACTOR = 1\n")
    project.write("job.py", "import time, yanex\ntime.sleep(0.1)\nyanex.get_param('x')\n")
    project.commit()
    time.sleep(RACY_SECONDS + 0.2)  # older than a racily clean file
    tools, log = git_logger(tmp_path)
    env = project.env(PATH=f"{tools}{os.pathsep}{os.environ['PATH']}")
    r = project.yanex("run", "job.py", "x=range(20)", "-m", "-j", "1", env=env)
    assert r.returncode == 0, r.stderr
    commands = log.read_text().splitlines()
    assert sum(c.startswith("status ") for c in commands) == 2, commands
    assert len(commands) <= 12, commands  # none per member
