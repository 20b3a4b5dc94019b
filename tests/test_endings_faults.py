"""Every way a run ends is recorded, with one signal per stop request and no process left over:
group signals, `timeout`, orphans after a stop or a SIGKILL of yanex, stop signals during the
output drain, a bounded drain, terminal input, and the portable path of -j 0."""

from __future__ import annotations

import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import Project, metadata, process_gone, results

# Counts the SIGINT/SIGTERM it gets, cleans up for a second, and records both.
COUNTER = """
import os, signal, sys, time
got = []
def stop(signum, frame):
    got.append(signum)
    if len(got) == 1:
        time.sleep(1)  # cleaning up, inside the grace period
        open(os.environ["OUT"], "w").write(f"{len(got)} cleaned")
        sys.exit(5)
signal.signal(signal.SIGINT, stop)
signal.signal(signal.SIGTERM, stop)
print("ready", flush=True)
while True:
    time.sleep(0.05)
"""

# Starts five kinds of descendants, two of which leave its process group (a new session, a
# double-forked daemon), records their pids, then waits (ignoring SIGTERM).
SPAWNER = """
import multiprocessing, os, signal, subprocess, sys, time

def sleeper():
    time.sleep(1000)

def daemon():
    read, write = os.pipe()
    middle = os.fork()
    if middle == 0:  # fork, setsid, fork again; the middle one exits
        os.setsid()
        if os.fork() == 0:
            os.write(write, str(os.getpid()).encode())
            os.execvp("sleep", ["sleep", "1000"])
        os._exit(0)
    os.close(write)
    os.waitpid(middle, 0)
    return int(os.read(read, 64))

if __name__ == "__main__":
    pids = [subprocess.Popen(["sleep", "1000"]).pid]
    worker = multiprocessing.get_context("fork").Process(target=sleeper)
    worker.start()
    pids.append(worker.pid)
    out = subprocess.run(["sh", "-c", "sleep 1000 >/dev/null 2>&1 & echo $!"],
                         capture_output=True, text=True).stdout
    pids.append(int(out))
    pids.append(subprocess.Popen(["sleep", "1000"], start_new_session=True).pid)
    pids.append(daemon())
    open(os.environ["PIDS"], "w").write(" ".join(map(str, pids)))
    if os.environ.get("STUBBORN"):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print("ready", flush=True)
    if os.environ.get("EXIT_AT_ONCE"):
        os._exit(0)  # without waiting for the multiprocessing worker
    time.sleep(1000)
"""


def wait_for(predicate, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def start(project: Project, script: str, **env: str) -> subprocess.Popen[bytes]:
    """yanex run SCRIPT as the leader of a process group of its own (as a shell's job)."""
    proc = project.popen(
        "run", script, env=project.env(**env), stdin=subprocess.DEVNULL, start_new_session=True
    )
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    return proc


@pytest.mark.slow
def test_a_signal_to_yanexs_whole_group_reaches_the_script_once(
    project: Project, tmp_path: Path
) -> None:
    project.write("counter.py", COUNTER)
    project.commit()
    out = tmp_path / "out.txt"
    proc = start(project, "counter.py", OUT=str(out))
    os.killpg(proc.pid, signal.SIGINT)  # `kill -INT -PGID`: yanex and everything in its group
    proc.communicate(timeout=60)
    assert out.read_text() == "1 cleaned"  # one signal, and time to clean up
    assert proc.returncode == 130
    meta = metadata(project.only_experiment())
    assert meta["status"] == "cancelled" and meta["exit_code"] == 5


@pytest.mark.slow
def test_timeout_stops_the_script_with_one_signal(project: Project, tmp_path: Path) -> None:
    if shutil.which("timeout") is None:
        pytest.skip("no timeout command")
    project.write("counter.py", COUNTER)
    project.commit()
    out = tmp_path / "out.txt"
    # timeout(1) treats SIGALRM as its timer running out: sending it once the script is
    # ready makes the expiry land at a known point however slow the machine is.
    proc = subprocess.Popen(
        ["timeout", "600", sys.executable, "-m", "yanex", "run", "counter.py"],
        cwd=project.path,
        env=project.env(OUT=str(out)),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    proc.send_signal(signal.SIGALRM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 124, err  # timeout's own "timed out"
    assert out.read_text() == "1 cleaned", err
    assert metadata(project.only_experiment())["status"] == "cancelled"


def test_ctrl_c_pressed_twice_fast_kills(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two Ctrl-C 0.1 s apart (a person's fastest): the second kills, it is no copy."""
    from yanex import processes, supervise

    sent: list[int] = []
    monkeypatch.setattr(processes, "signal_group", lambda pgid, signum: sent.append(signum))
    child = object.__new__(supervise.Child)
    child.pgid, child.grace, child.received, child.received_at = 1, 10.0, None, 0.0
    child.forward(signal.SIGINT)
    time.sleep(0.1)
    child.forward(signal.SIGINT)
    assert sent == [signal.SIGINT, signal.SIGKILL]


IGNORES_SIGTERM = """
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ready", flush=True)
time.sleep(600)
"""


def test_a_second_stop_kills_and_a_copy_of_the_first_does_not(project: Project) -> None:
    """The same signal again at once is a copy (timeout(1) signals yanex and its group); a
    second stop after that kills a script that does not stop, long before the grace ends."""
    from yanex.supervise import SAME_STOP

    project.write("stubborn.py", IGNORES_SIGTERM)
    project.commit()
    proc = start(project, "stubborn.py", YANEX_GRACE_PERIOD="600")
    proc.send_signal(signal.SIGTERM)
    proc.send_signal(signal.SIGTERM)  # a copy: the script is not killed for it
    time.sleep(1)
    assert proc.poll() is None  # still in its grace period
    time.sleep(SAME_STOP)
    proc.send_signal(signal.SIGTERM)  # a second stop
    proc.communicate(timeout=30)
    assert proc.returncode == 143
    meta = metadata(project.only_experiment())
    assert meta["status"] == "cancelled" and meta["exit_code"] == -signal.SIGKILL


@pytest.mark.slow
def test_nothing_the_script_started_outlives_a_stop(project: Project, tmp_path: Path) -> None:
    project.write("spawner.py", SPAWNER)
    project.commit()
    pids_file = tmp_path / "pids"
    proc = start(
        project,
        "spawner.py",
        PIDS=str(pids_file),
        STUBBORN="1",
        YANEX_GRACE_PERIOD="1",
    )
    pids = [int(p) for p in pids_file.read_text().split()]
    script_pid = int(metadata(project.only_experiment())["launcher"]["pid"])
    assert script_pid == proc.pid
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode == 143
    for pid in pids:
        assert wait_for(lambda pid=pid: process_gone(pid)), f"{pid} outlived the run"
    assert metadata(project.only_experiment())["status"] == "cancelled"


def test_nothing_the_script_started_outlives_a_sigkill_of_yanex(
    project: Project, tmp_path: Path
) -> None:
    project.write("spawner.py", SPAWNER)
    project.commit()
    pids_file = tmp_path / "pids"
    proc = start(project, "spawner.py", PIDS=str(pids_file))
    pids = [int(p) for p in pids_file.read_text().split()]
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    for pid in pids:
        assert wait_for(lambda pid=pid: process_gone(pid)), f"{pid} outlived yanex"


@pytest.mark.slow
def test_what_a_finished_script_left_running_is_ended(project: Project, tmp_path: Path) -> None:
    project.write("spawner.py", SPAWNER)
    project.commit()
    pids_file = tmp_path / "pids"
    r = project.yanex("run", "spawner.py", PIDS=str(pids_file), EXIT_AT_ONCE="1", timeout=60)
    assert r.returncode == 0, r.stderr
    for pid in map(int, pids_file.read_text().split()):
        assert process_gone(pid), f"{pid} outlived the run"
    assert metadata(project.only_experiment())["status"] == "completed"


# Leaves a process that is no longer in its group (setsid) holding both output pipes.
HOLDER = """
import subprocess, sys
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], start_new_session=True)
print("ready", flush=True)
"""


@pytest.mark.slow
def test_a_stop_signal_during_the_drain_still_records_the_ending(project: Project) -> None:
    project.write("holder.py", HOLDER)
    project.commit()
    proc = start(project, "holder.py")
    time.sleep(1)  # the script has exited; yanex waits for the pipes the holder keeps open
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=20)
    assert proc.returncode == 0  # the run was over: its ending stands
    assert metadata(project.only_experiment())["status"] == "completed"


@pytest.mark.slow
def test_the_whole_drain_is_bounded(project: Project) -> None:
    project.write("holder.py", HOLDER)
    project.commit()
    # Waiting 5 s for each pipe in turn would take 10 s: this timeout fails the test then.
    r = project.yanex("run", "holder.py", timeout=9)
    assert r.returncode == 0
    assert metadata(project.only_experiment())["status"] == "completed"


def test_what_is_typed_at_the_terminal_reaches_the_script(project: Project) -> None:
    project.write("ask.py", "name = input('name? ')\nprint(f'hello {name}')\n")
    project.commit()
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(project.path)
        os.execve(sys.executable, [sys.executable, "-m", "yanex", "run", "ask.py"], project.env())
    output = b""
    deadline = time.monotonic() + 60
    while b"name? " not in output and time.monotonic() < deadline:
        output += os.read(fd, 1024)
    os.write(fd, b"Ada\n")
    while True:
        try:
            chunk = os.read(fd, 1024)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, output
    assert b"hello Ada" in output
    assert (project.only_experiment() / "stdout.txt").read_text() == "name? hello Ada\n"


@pytest.mark.slow
def test_staged_runs_with_one_job_per_cpu_on_the_portable_path(project: Project) -> None:
    project.write("job.py", "import yanex\nprint(yanex.get_param('x'))\n")
    project.commit()
    assert project.yanex("stage", "job.py", "-p", "x=list(1, 2, 3)").returncode == 0
    r = project.yanex("run", "--staged", "-j", "0", YANEX_PORTABLE="1")
    assert r.returncode == 0, r.stderr
    assert f"{os.cpu_count()} at a time" in r.stderr and "3 completed" in r.stderr


ASKS = """
import yanex
x = yanex.get_param("x")
answer = input(f"member {x}? ")
yanex.log_results({"answer": answer})
"""


def test_each_member_of_a_batch_reads_what_is_typed_for_it(project: Project) -> None:
    """-j 1 at a terminal: a line typed for a later member reaches that member, not the
    reader of one that has ended."""
    project.write("ask.py", ASKS)
    project.commit()
    members = 4
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(project.path)
        args = ["run", "ask.py", f"x=range({members})", "-m", "-j", "1"]
        os.execve(sys.executable, [sys.executable, "-m", "yanex", *args], project.env())
    output = b""
    deadline = time.monotonic() + 60
    asked = 0
    try:
        while time.monotonic() < deadline:
            if asked < members and f"member {asked}? ".encode() in output:
                os.write(fd, f"answer {asked}\n".encode())
                asked += 1
            ready, _, _ = select.select([fd], [], [], 0.2)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
    finally:
        if time.monotonic() >= deadline:
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
    assert asked == members, output.decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 0, output
    answers = sorted(
        (metadata(f)["sweep_index"], results(f)[0]["results"]["answer"])
        for f in project.experiments()
    )
    assert answers == [(i, f"answer {i}") for i in range(members)]


CALLER_STAYS_AS_IT_WAS = """
import ctypes, json, os, yanex
libc = ctypes.CDLL(None, use_errno=True)
def subreaper():
    flag = ctypes.c_int(-1)
    libc.prctl(37, ctypes.byref(flag), 0, 0, 0)  # PR_GET_CHILD_SUBREAPER
    return flag.value
before = subreaper()
result = yanex.launch({}, "orphan.py")
orphan_parent = result.results[0]["results"]["orphan_parent"]
print(json.dumps([before, orphan_parent == os.getpid(), subreaper()]))
"""

# Leaves an orphan, which says who its parent became.
ORPHAN = """
import os, time, yanex
read, write = os.pipe()
if os.fork() == 0:
    if os.fork() == 0:
        time.sleep(0.3)  # its parent has exited by now
        os.write(write, str(os.getppid()).encode())
        os._exit(0)
    os._exit(0)
os.wait()
yanex.log_results({"orphan_parent": int(os.read(read, 32))})
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_CHILD_SUBREAPER")
def test_a_program_that_launches_runs_is_their_subreaper_only_while_they_run(
    project: Project,
) -> None:
    """yanex.launch in a program (a notebook): the orphans of its run become its children
    (to be ended with the run), and before and after the run the program is as it was."""
    from conftest import run_python

    project.write("orphan.py", ORPHAN)
    project.commit()
    r = run_python(CALLER_STAYS_AS_IT_WAS, cwd=project.path, env=project.env())
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "[0, true, 0]"
