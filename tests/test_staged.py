"""`yanex run --staged`: claimed once, checked against the code, N at a time, never lost."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Project, assert_usage_error, git, metadata, run_python

# Appends its experiment ID to runs.log (outside the git index: untracked files are fine).
RECORDS = """
import os, sys, time, yanex
with open(os.path.join(os.environ["RUNS_LOG"]), "a") as log:
    log.write(yanex.experiment_id() + "\\n")
time.sleep(yanex.get_param("sleep", 0))
x = yanex.get_param("x", 0)
print("x is", x, "cwd", os.getcwd())
if x == yanex.get_param("fail_at", -1):
    sys.exit(7)
"""


def setup(project: Project) -> dict[str, str]:
    project.write("job.py", RECORDS)
    project.commit()
    return project.env(RUNS_LOG=str(project.path.parent / "runs.log"))


def stage(project: Project, env: dict[str, str], *params: str) -> list[str]:
    args = [arg for p in params for arg in ("-p", p)]
    r = project.yanex("stage", "job.py", *args, env=env)
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


def runs_log(project: Project) -> list[str]:
    path = project.path.parent / "runs.log"
    return path.read_text().split() if path.exists() else []


def statuses(project: Project, ids: list[str]) -> list[str]:
    return [metadata(project.home / "experiments" / i)["status"] for i in ids]


@pytest.mark.slow
def test_staged_experiments_run_once_oldest_first(project: Project) -> None:
    env = setup(project)
    first = stage(project, env, "x=list(1, 2, 3)")
    second = stage(project, env, "x=4")
    r = project.yanex("run", "--staged", env=env)
    assert r.returncode == 0, r.stderr
    assert runs_log(project) == first + second  # oldest first, a grid in its order
    assert statuses(project, first + second) == ["completed"] * 4
    assert "x is 1" in r.stdout  # with -j 1 the output streams as in a direct run
    assert "4 completed, 0 failed, 0 cancelled, 0 refused" in r.stderr
    meta = metadata(project.home / "experiments" / first[0])
    assert meta["started_at"] > meta["created_at"] and meta["exit_code"] == 0
    again = project.yanex("run", "--staged", env=env)
    assert again.returncode == 0 and "nothing is staged" in again.stderr
    assert len(runs_log(project)) == 4


@pytest.mark.slow
def test_parallel_runs_keep_each_output_in_its_own_files(project: Project) -> None:
    env = setup(project)
    ids = stage(project, env, "x=range(6)", "sleep=0.3")
    r = project.yanex("run", "--staged", "-j", "3", env=env)
    assert r.returncode == 0, r.stderr
    assert statuses(project, ids) == ["completed"] * 6
    assert "x is" not in r.stdout + r.stderr  # no interleaved script output
    for index, experiment_id in enumerate(ids):
        out = (project.home / "experiments" / experiment_id / "stdout.txt").read_text()
        assert out.startswith(f"x is {index} ")
    assert sorted(runs_log(project)) == sorted(ids)


@pytest.mark.slow
def test_two_runners_at_once_run_each_experiment_once(project: Project) -> None:
    env = setup(project)
    ids = stage(project, env, "x=range(10)", "sleep=0.2")
    runners = [
        project.popen("run", "--staged", "-j", "2", env=env, stdin=subprocess.DEVNULL)
        for _ in range(2)
    ]
    for runner in runners:
        runner.communicate(timeout=120)
        assert runner.returncode == 0
    log = runs_log(project)
    assert sorted(log) == sorted(ids)  # every experiment ran, none twice
    assert statuses(project, ids) == ["completed"] * 10


@pytest.mark.slow
def test_a_failure_does_not_stop_the_others(project: Project) -> None:
    env = setup(project)
    ids = stage(project, env, "x=list(1, 2, 3)", "fail_at=2")
    r = project.yanex("run", "--staged", env=env)
    assert r.returncode == 1
    assert statuses(project, ids) == ["completed", "failed", "completed"]
    assert "2 completed, 1 failed, 0 cancelled, 0 refused" in r.stderr


def test_each_runs_in_the_folder_it_was_staged_from(project: Project) -> None:
    env = setup(project)
    (project.path / "sub").mkdir()
    r = subprocess.run(
        [sys.executable, "-m", "yanex", "stage", "../job.py"],
        cwd=project.path / "sub",
        env=env,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    r = project.yanex("run", "--staged", env=env)
    assert r.returncode == 0, r.stderr
    assert f"cwd {project.path / 'sub'}" in r.stdout


@pytest.mark.slow
def test_only_the_current_project_is_run(project: Project, tmp_path: Path) -> None:
    env = setup(project)
    ours = stage(project, env, "x=1")
    other = Project(tmp_path / "other", project.home)
    other.path.mkdir()
    git(other.path, "init", "-q", "-b", "main")
    other.write("job.py", RECORDS)
    other.commit()
    theirs = stage(other, env, "x=2")
    r = project.yanex("run", "--staged", env=env)
    assert r.returncode == 0
    assert statuses(project, ours) == ["completed"]
    assert statuses(other, theirs) == ["staged"]


@pytest.mark.slow
def test_changed_code_is_refused_and_stays_staged(project: Project) -> None:
    env = setup(project)
    ids = stage(project, env, "x=1")
    staged_commit = metadata(project.home / "experiments" / ids[0])["git"]["commit"]
    project.write("job.py", RECORDS + "\n# changed\n")
    new_commit = project.commit("change the code")
    r = project.yanex("run", "--staged", env=env)
    assert r.returncode == 1
    assert "refused" in r.stderr and new_commit[:12] in r.stderr and "--ignore-dirty" in r.stderr
    assert statuses(project, ids) == ["staged"] and runs_log(project) == []

    r = project.yanex("run", "--staged", "--ignore-dirty", env=env)
    assert r.returncode == 0, r.stderr
    meta = metadata(project.home / "experiments" / ids[0])
    assert meta["status"] == "completed"
    assert meta["git"]["commit"] == new_commit  # the code it really ran with
    assert meta["git_at_staging"]["commit"] == staged_commit


def test_a_tree_dirtied_after_clean_staging_is_refused(project: Project) -> None:
    env = setup(project)
    ids = stage(project, env, "x=1")
    project.write("job.py", RECORDS + "\n# uncommitted\n")
    r = project.yanex("run", "--staged", env=env)
    assert r.returncode == 1 and "uncommitted changes" in r.stderr
    assert statuses(project, ids) == ["staged"]


def test_staged_dirty_runs_when_the_changes_are_the_same(project: Project) -> None:
    env = setup(project)
    project.write("job.py", RECORDS + "\n# uncommitted\n")
    r = project.yanex("stage", "job.py", "--ignore-dirty", env=env)
    ids = r.stdout.split()
    assert (project.home / "experiments" / ids[0] / "git.patch").exists()
    r = project.yanex("run", "--staged", env=env)
    assert r.returncode == 0, r.stderr
    assert statuses(project, ids) == ["completed"]


@pytest.mark.slow
def test_interrupted_runner_leaves_the_rest_staged_and_a_rerun_picks_them_up(
    project: Project,
) -> None:
    env = setup(project)
    ids = stage(project, env, "x=range(3)", "sleep=30")
    runner = project.popen(
        "run", "--staged", env=env, stdin=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 30
    while not runs_log(project) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert runs_log(project) == ids[:1]
    runner.send_signal(signal.SIGINT)
    runner.communicate(timeout=60)
    assert runner.returncode == 130
    assert statuses(project, ids) == ["cancelled", "staged", "staged"]

    # Make the remaining ones quick: parameters were fixed at staging, so edit them there.
    for experiment_id in ids[1:]:
        params = project.home / "experiments" / experiment_id / "params.json"
        params.write_text(json.dumps({"x": 9, "sleep": 0}))
    r2 = project.yanex("run", "--staged", env=env)
    assert r2.returncode == 0, r2.stderr
    assert statuses(project, ids) == ["cancelled", "completed", "completed"]
    assert runs_log(project) == ids  # each ran exactly once


HOLD_A_CLAIM = """
import sys, time
from pathlib import Path
from yanex import claims
assert claims.take(Path(sys.argv[1])) is not None
print("claimed", flush=True)
time.sleep(120)
"""


def hold_claim(folder: Path) -> subprocess.Popen[bytes]:
    """A real process that claims ``folder``, as a runner does, and keeps living."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD_A_CLAIM, str(folder)], stdout=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stdout.readline() == b"claimed\n"
    return proc


@pytest.mark.slow
def test_a_claim_left_by_a_dead_runner_is_taken_over(project: Project) -> None:
    env = setup(project)
    ids = stage(project, env, "x=1")
    holder = hold_claim(project.home / "experiments" / ids[0])
    holder.kill()
    holder.wait()
    r = project.yanex("run", "--staged", env=env)
    assert r.returncode == 0, r.stderr
    assert statuses(project, ids) == ["completed"]
    assert not (project.home / "experiments" / ids[0] / "claim.json").exists()


@pytest.mark.slow
def test_a_claim_held_by_a_live_runner_is_left_alone(project: Project) -> None:
    env = setup(project)
    ids = stage(project, env, "x=1")
    holder = hold_claim(project.home / "experiments" / ids[0])
    try:
        r = project.yanex("run", "--staged", env=env)
        assert r.returncode == 0
        assert statuses(project, ids) == ["staged"]
    finally:
        holder.kill()
        holder.wait()


def test_staged_takes_no_script_or_params(project: Project) -> None:
    setup(project)
    assert_usage_error(project.yanex("run", "--staged", "job.py"), "SCRIPT")
    assert_usage_error(project.yanex("run", "--staged", "-p", "x=1"), "--param")
    assert_usage_error(project.yanex("run", "job.py", "--stage", "-j", "2"), "--staged")
    assert_usage_error(project.yanex("run"), "SCRIPT")


def run_in_terminal(
    project: Project,
    args: list[str],
    env: dict[str, str],
    answer: bytes | None,
    until: Callable[[bytes], bool] | None = None,
    then: bytes | None = None,
) -> tuple[int, bytes]:
    """Run yanex with a pseudo-terminal as its controlling terminal, as a user at a shell."""
    import pty

    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(project.path)
        os.execve(sys.executable, [sys.executable, "-m", "yanex", *args], env)
    output = b""
    deadline = time.monotonic() + 60
    sent = False
    while time.monotonic() < deadline:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
        if answer is not None and not sent and b"?" in output:
            os.write(fd, answer)
            sent = True
        if until is not None and then is not None and until(output):
            os.write(fd, then)
            until = None
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), output


@pytest.mark.slow
def test_big_grid_asks_at_a_terminal(project: Project) -> None:
    env = setup(project)
    args = ["stage", "job.py", "-p", "+a=range(101)", "-p", "+b=range(100)"]
    code, output = run_in_terminal(project, args, env, answer=b"n\n")
    assert b"Stage 10,100 experiments?" in output and code == 1
    assert project.store_entries() == []
    code, output = run_in_terminal(project, [*args, "--dry-run"], env, answer=b"y\n")
    assert code == 0 and b"grid of 10,100 experiments" in output


@pytest.mark.slow
def test_parallel_run_at_a_terminal_shows_progress_and_ctrl_c_leaves_the_rest(
    project: Project,
) -> None:
    env = setup(project)
    ids = stage(project, env, "x=range(3)", "sleep=30")
    code, output = run_in_terminal(
        project,
        ["run", "--staged", "-j", "2"],
        {**env, "COLUMNS": "120"},
        answer=None,
        until=lambda _: len(runs_log(project)) == 2,  # both scripts have started
        then=b"\x03",
    )
    assert code == 130, output
    assert b"staged runs" in output  # the live progress line
    assert sorted(statuses(project, ids)) == ["cancelled", "cancelled", "staged"]
    assert len(runs_log(project)) == 2


@pytest.mark.slow
def test_jobs_zero_means_one_per_cpu(project: Project) -> None:
    env = setup(project)
    ids = stage(project, env, "x=range(3)")
    r = project.yanex("run", "--staged", "-j", "0", env=env)
    assert r.returncode == 0, r.stderr
    assert f"{len(os.sched_getaffinity(0))} at a time" in r.stderr
    assert statuses(project, ids) == ["completed"] * 3


def start_big_staging(project: Project, size: int = 20000) -> subprocess.Popen[bytes]:
    """``yanex stage`` of a big grid, returned once it has made 300 member folders."""
    project.write("job.py", "import yanex\nyanex.log_results({'x': yanex.get_param('x')})\n")
    project.write("config.yaml", "x: 0\n")
    project.commit()
    proc = project.popen("stage", "job.py", "-p", f"x=range({size})", "--yes")
    root = project.home / "experiments"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if root.is_dir() and len(os.listdir(root)) >= 300:
            break
        time.sleep(0.005)
    assert proc.poll() is None, "the staging ended before it could be stopped"
    return proc


def member_folders(project: Project) -> list[Path]:
    root = project.home / "experiments"
    return [f for f in root.iterdir() if not f.name.startswith(".")] if root.is_dir() else []


def assert_nothing_staged(project: Project) -> None:
    r = project.yanex("list", "--all", "--format", "ids")
    assert r.returncode == 0 and r.stdout.split() == [], r.stdout
    r = project.yanex("run", "--staged", timeout=60)
    assert r.returncode == 0 and "nothing is staged" in r.stderr, r.stderr


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_staging_stopped_midway_keeps_nothing(project: Project, sig: signal.Signals) -> None:
    proc = start_big_staging(project)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0, err
    assert member_folders(project) == []  # undone by the staging itself
    assert_nothing_staged(project)


@pytest.mark.slow
def test_a_staging_killed_midway_shows_nothing_and_the_next_command_cleans_up(
    project: Project,
) -> None:
    """SIGKILL while a big grid is being staged: none of its members is an experiment to any
    reader, nothing of it runs, and the next command removes what it left."""
    proc = start_big_staging(project)
    proc.kill()
    proc.communicate()
    assert len(member_folders(project)) >= 300  # left behind, out of sight
    assert not any((f / "metadata.json").exists() for f in member_folders(project))
    assert_nothing_staged(project)
    assert member_folders(project) == []


@pytest.mark.slow
def test_a_staging_killed_while_showing_its_grid_is_shown_whole(project: Project) -> None:
    """Killed as its first member became visible (the grid was written in full): the next
    command shows the rest, and the whole grid runs."""
    project.write("job.py", "import yanex\nyanex.log_results({'x': yanex.get_param('x')})\n")
    project.commit()
    size = 800
    proc = project.popen("stage", "job.py", "-p", f"x=range({size})", "--yes")
    root = project.home / "experiments"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        with os.scandir(root) if root.is_dir() else contextlib.nullcontext([]) as entries:
            if any(os.path.exists(os.path.join(e.path, "metadata.json")) for e in entries):
                break
    proc.kill()
    proc.communicate()
    runner = project.popen("run", "--staged", stdin=subprocess.DEVNULL)
    assert runner.stderr is not None
    lines = [runner.stderr.readline() for _ in range(2)]
    runner.send_signal(signal.SIGINT)
    runner.communicate(timeout=60)
    assert any(f"running {size} staged experiments".encode() in line for line in lines), lines
    r = project.yanex("list", "--all", "--format", "ids")
    assert len(r.stdout.split()) == size, r.stderr
    for folder in member_folders(project)[:50]:
        meta = metadata(folder)
        assert meta["status"] in ("staged", "cancelled")
        assert json.loads((folder / "params.json").read_text()) == meta["sweep_values"]


STAGES_AND_WATCHES_THE_DISK = """
import json, os, sys
from pathlib import Path
synced = set()
real_fsync = os.fsync
def fsync(fd):
    synced.add(os.readlink(f"/proc/self/fd/{fd}"))
    real_fsync(fd)
def machine_wide_sync():
    raise AssertionError("os.sync() flushes every filesystem of the machine")
os.fsync, os.sync = fsync, machine_wide_sync
import yanex
staged = yanex.launch({"x": "list(1, 2, 3)"}, "job.py", stage=True)
print(json.dumps({"synced": sorted(synced), "dirs": [str(r.dir) for r in staged]}))
"""


@pytest.mark.slow
def test_staging_fsyncs_what_it_wrote_and_never_syncs_the_machine(project: Project) -> None:
    project.write("job.py", "print('hi')\n")
    project.write("config.yaml", "x: 0\n")
    project.commit()
    r = run_python(STAGES_AND_WATCHES_THE_DISK, cwd=project.path, env=project.env())
    assert r.returncode == 0, r.stderr
    seen = json.loads(r.stdout.splitlines()[-1])
    synced = set(seen["synced"])
    assert str(project.home / "experiments") in synced
    for folder in map(Path, seen["dirs"]):
        assert str(folder) in synced
        for name in ("config.yaml", "params.json", "metadata.json"):
            assert (folder / name).exists()
        written = {str(p) for p in folder.iterdir() if p.is_file()}
        written = {p.replace("metadata.json", ".staged-metadata.json") for p in written}
        assert written <= synced, written - synced
