"""What goes wrong while one staged member starts ends that member alone, with the reason;
the worker entry point runs only what is staged and claimed by its caller."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from conftest import Project, assert_usage_error, metadata

from yanex import claims
from yanex.ending import NotRun
from yanex.executors.member import CodeCheck, run_member


@pytest.mark.slow
def test_a_deleted_folder_and_a_missing_working_folder_end_only_their_member(
    project: Project,
) -> None:
    project.write("job.py", "print('ran')\n")
    project.commit()
    (project.path / "sub").mkdir()  # a working folder git does not track
    ids = project.yanex("stage", "job.py", "-p", "x=list(1, 2)").stdout.split()
    sub = Project(project.path / "sub", project.home)
    other = sub.yanex("stage", "../job.py").stdout.split()
    assert len(ids) == 2 and len(other) == 1, other
    shutil.rmtree(project.home / "experiments" / ids[0])  # deleted by hand before the run
    shutil.rmtree(project.path / "sub")  # its working folder is gone
    r = project.yanex("run", "--staged")
    assert "Traceback" not in r.stderr
    assert metadata(project.home / "experiments" / ids[1])["status"] == "completed"
    meta = metadata(project.home / "experiments" / other[0])
    assert (
        meta["status"] == "failed"
        and "working folder" in meta["error"]
        and "is gone" in meta["error"]
    )
    assert "1 completed, 1 failed" in r.stderr and r.returncode == 1
    for experiment_id in (ids[1], other[0]):
        assert not (project.home / "experiments" / experiment_id / "claim.json").exists()


def test_the_worker_entry_runs_only_what_is_staged_and_claimed_by_its_caller(
    project: Project,
) -> None:
    project.write("job.py", "print('ran')\n")
    project.commit()
    (experiment_id,) = project.yanex("stage", "job.py").stdout.split()
    folder = project.home / "experiments" / experiment_id
    code = CodeCheck(ignore_dirty=False)
    # Not claimed at all, then claimed by someone else: refused, nothing runs.
    assert run_member(project.home, experiment_id, "not-a-token", code=code).why == NotRun.ELSEWHERE
    theirs = claims.take(folder)
    assert theirs is not None
    assert run_member(project.home, experiment_id, "not-a-token", code=code).why == NotRun.ELSEWHERE
    assert metadata(folder)["status"] == "staged" and claims.holds(folder, theirs.token)
    # Claimed by its caller: it runs, and the claim is given back.
    import os

    os.chdir(project.path)
    end = run_member(project.home, experiment_id, theirs.token, code=code)
    assert end.status == "completed" and not (folder / "claim.json").exists()
    # Once it ran, nothing runs it again.
    assert run_member(project.home, experiment_id, theirs.token, code=code).why == NotRun.ELSEWHERE
    assert (folder / "stdout.txt").read_text() == "ran\n"


@pytest.mark.slow
def test_a_member_whose_folder_is_broken_is_skipped_and_the_rest_run(project: Project) -> None:
    project.write("job.py", "print('ran')\n")
    project.commit()
    ids = project.yanex("stage", "job.py", "-p", "x=list(1, 2, 3)").stdout.split()
    # Its metadata.json is replaced by a folder: it cannot be read, nor recorded.
    meta = project.home / "experiments" / ids[1] / "metadata.json"
    text = meta.read_text()
    meta.unlink()
    meta.mkdir()
    (meta / "x").write_text(text)
    r = project.yanex("run", "--staged")
    assert "Traceback" not in r.stderr and r.returncode == 0, r.stderr
    statuses = [metadata(project.home / "experiments" / i)["status"] for i in (ids[0], ids[2])]
    assert statuses == ["completed", "completed"]
    assert "skipped experiment folder " + ids[1] in r.stderr


WAITS_FOR_GO = """
import os, time, yanex
if yanex.get_param("x") == 0:
    open(os.environ["READY"], "w").close()
    deadline = time.monotonic() + 60
    while not os.path.exists(os.environ["GO"]) and time.monotonic() < deadline:
        time.sleep(0.02)
print("ran", yanex.get_param("x"))
"""


@pytest.mark.slow
def test_members_that_vanish_while_queued_are_counted_and_fail_the_batch(
    project: Project,
) -> None:
    """Deleted, emptied and truncated while the runner holds the queue: each is named with
    its reason, the summary counts them, and the exit code says the batch did not all run."""
    project.write("job.py", WAITS_FOR_GO)
    project.commit()
    ids = project.yanex("stage", "job.py", "-p", "x=range(4)").stdout.split()
    assert len(ids) == 4
    ready, go = project.path.parent / "ready", project.path.parent / "go"
    runner = project.popen("run", "--staged", env=project.env(READY=str(ready), GO=str(go)))
    deadline = time.monotonic() + 60
    while not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    root = project.home / "experiments"
    shutil.rmtree(root / ids[1])  # deleted
    (root / ids[2] / "metadata.json").write_bytes(b"")  # emptied
    text = (root / ids[3] / "metadata.json").read_bytes()
    (root / ids[3] / "metadata.json").write_bytes(text[: len(text) // 2])  # truncated
    go.touch()
    _, err = runner.communicate(timeout=60)
    stderr = err.decode()
    assert runner.returncode == 1, stderr
    assert "1 completed, 0 failed, 0 cancelled, 0 refused, 3 gone" in stderr, stderr
    for experiment_id in ids[1:]:
        assert f"yanex: {experiment_id} could not be run" in stderr
    assert "Traceback" not in stderr
    assert metadata(root / ids[0])["status"] == "completed"


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["fifo", "folder"])
def test_a_claim_that_is_not_a_file_is_never_opened(project: Project, kind: str) -> None:
    """A FIFO as claim.json would block the runner in open(), deaf to Ctrl-C: it is refused
    for what it is, that member alone, and the rest run."""
    project.write("job.py", "print('ran')\n")
    project.commit()
    ids = project.yanex("stage", "job.py", "-p", "x=list(1, 2)").stdout.split()
    claim = project.home / "experiments" / ids[0] / "claim.json"
    if kind == "fifo":
        os.mkfifo(claim)
    else:
        claim.mkdir()
    r = project.yanex("run", "--staged", timeout=30)
    what = "a FIFO" if kind == "fifo" else "a folder"
    assert f"{ids[0]} could not be run" in r.stderr and f"claim.json is {what}" in r.stderr
    assert "1 completed, 0 failed, 0 cancelled, 0 refused, 1 gone" in r.stderr, r.stderr
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert metadata(project.home / "experiments" / ids[1])["status"] == "completed"


def test_staging_where_the_store_cannot_be_written_is_a_usage_error(
    project: Project, tmp_path: Path
) -> None:
    project.write("job.py", "print('ran')\n")
    project.commit()
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    env = project.env(YANEX_HOME=str(blocker / "home"))
    r = project.yanex("stage", "job.py", "-p", "+x=range(2)", env=env)
    assert_usage_error(r, "cannot stage in", "nothing was staged")
