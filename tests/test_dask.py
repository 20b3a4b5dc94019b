"""`yanex run --staged --executor dask`: staged members on a real Dask scheduler and workers on
127.0.0.1, the workers in another working folder and HOME than the client."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Project, assert_usage_error, metadata

pytest.importorskip("distributed")
pytestmark = pytest.mark.slow  # the whole module: the full suite, not the edit loop's

JOB = """
import json, os, socket, sys, time, yanex
time.sleep(float(yanex.get_param("sleep", 0)))
with open(os.environ["RUNS_LOG"], "a") as log:
    log.write(json.dumps({"id": yanex.experiment_id(), "x": yanex.get_param("x"),
                          "cwd": os.getcwd(), "cuda": os.environ.get("CUDA_VISIBLE_DEVICES")})
              + "\\n")
yanex.log_results({"x": yanex.get_param("x")})
if yanex.get_param("fail", False):
    sys.exit(3)
print("done", yanex.get_param("x"))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


class Cluster:
    """A real `dask scheduler` and `dask worker` processes, as a user starts them by hand."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.workers: list[subprocess.Popen[bytes]] = []
        elsewhere = root / "worker-home"
        elsewhere.mkdir(exist_ok=True)
        # Workers live elsewhere: another cwd and HOME, and no YANEX_HOME of their own.
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("YANEX_")}
        self.runs_log = root / "runs.log"  # the jobs log here: workers are started with it
        self.env.update(HOME=str(elsewhere), RUNS_LOG=str(self.runs_log))
        self.scheduler = self._start(
            "scheduler", "--host", "127.0.0.1", "--port", str(self.port), "--no-dashboard"
        )

    def _start(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "dask", *args],
            cwd=self.root / "worker-home",
            env={**self.env, **(env or {})},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def add_workers(self, count: int, *extra: str, env: dict[str, str] | None = None) -> None:
        proc = self._start(
            "worker", self.address, "--nworkers", str(count), "--nthreads", "1",
            "--no-dashboard", "--host", "127.0.0.1", *extra, env=env,
        )  # fmt: skip
        self.workers.append(proc)
        self.expected = getattr(self, "expected", 0) + count
        from distributed import Client

        with Client(self.address, timeout=30) as client:
            client.wait_for_workers(self.expected, timeout=60)

    def close(self) -> None:
        for proc in [*self.workers, self.scheduler]:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in [*self.workers, self.scheduler]:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    running = Cluster(tmp_path)
    try:
        running.add_workers(2)
        yield running
    finally:
        running.close()


def setup(project: Project) -> dict[str, str]:
    project.write("job.py", JOB)
    project.commit()
    return project.env()


def stage(project: Project, env: dict[str, str], *params: str) -> list[str]:
    args = [arg for p in params for arg in ("-p", p)]
    r = project.yanex("stage", "job.py", *args, env=env)
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


def runs(cluster: Cluster) -> list[dict]:
    """What the jobs wrote: a runs.log the workers' environment names (RUNS_LOG)."""
    path = cluster.runs_log
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_a_grid_runs_on_the_cluster_with_the_store_it_was_staged_in(
    project: Project, cluster: Cluster
) -> None:
    env = setup(project)
    ids = stage(project, env, "x=range(4)", "sleep=0.3")
    r = project.yanex("run", "--staged", "--executor", "dask", "--scheduler", cluster.address,
                      env=env)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "4 completed, 0 failed, 0 cancelled, 0 refused" in r.stderr
    done = runs(cluster)
    assert sorted(d["x"] for d in done) == [0, 1, 2, 3]
    assert {d["cwd"] for d in done} == {str(project.path)}  # the folder it was staged from
    for experiment_id in ids:
        meta = metadata(project.home / "experiments" / experiment_id)
        assert meta["status"] == "completed"
        assert meta["launcher"]["hostname"] == os.uname().nodename
        assert meta["launcher"]["pid"] != os.getpid()  # a worker process ran it
        # the worker that ran it, by its address and name
        assert meta["dask"]["worker"].startswith("tcp://127.0.0.1:"), meta["dask"]
        assert meta["dask"]["worker_name"]
        assert (project.home / "experiments" / experiment_id / "stdout.txt").read_text() == (
            f"done {meta['sweep_values']['x']}\n"
        )
        assert not (project.home / "experiments" / experiment_id / "claim.json").exists()
    again = project.yanex("run", "--staged", "--executor", "dask", env=env)
    assert again.returncode == 0 and "nothing is staged" in again.stderr


def test_multirun_sends_its_grid_to_the_cluster(project: Project, cluster: Cluster) -> None:
    """Hydra's -m with --executor dask: the grid is staged and run on the cluster at once."""
    env = setup(project)
    r = project.yanex("run", "job.py", "x=1,2,3", "-m", "--executor", "dask",
                      "--scheduler", cluster.address, env=env)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "3 completed, 0 failed, 0 cancelled, 0 refused" in r.stderr
    assert sorted(d["x"] for d in runs(cluster)) == [1, 2, 3]
    r = project.yanex("run", "job.py", "-p", "x=1", "--executor", "dask", env=env)
    assert_usage_error(r, "apply to --staged and -m")


def test_failures_are_counted_and_the_exit_code_says_so(project: Project, cluster: Cluster) -> None:
    env = setup(project)
    ids = stage(project, env, "x=list(1, 2)", "fail=list(false, true)")
    r = project.yanex("run", "--staged", "--executor", "dask", "--scheduler", cluster.address,
                      env=env)  # fmt: skip
    assert r.returncode == 1
    assert "2 completed, 2 failed" in r.stderr
    statuses = sorted(metadata(project.home / "experiments" / i)["status"] for i in ids)
    assert statuses == ["completed", "completed", "failed", "failed"]


def test_gpu_members_get_their_own_devices(project: Project, tmp_path: Path) -> None:
    env = setup(project)
    stage(project, env, "x=range(4)", "sleep=1")
    running = Cluster(tmp_path)
    try:
        running.add_workers(1, "--nthreads", "2", "--resources", "gpu=2")
        r = project.yanex("run", "--staged", "--executor", "dask", "--scheduler",
                          running.address, "--resources", "gpu=1", env=env)  # fmt: skip
        assert r.returncode == 0, r.stderr
    finally:
        running.close()
    devices = [d["cuda"] for d in runs(running)]
    assert sorted(devices) == ["0", "0", "1", "1"]


def test_a_member_sees_its_own_workers_devices(project: Project, tmp_path: Path) -> None:
    """Two workers on GPUs 5 and 7, and one with four GPUs in two slots: each member runs on
    its worker's own devices (its CUDA_VISIBLE_DEVICES split among its GPU slots)."""
    env = setup(project)
    ids = stage(project, env, "x=range(6)", "sleep=1")
    running = Cluster(tmp_path)
    try:
        running.add_workers(1, "--resources", "gpu=1", env={"CUDA_VISIBLE_DEVICES": "5"})
        running.add_workers(1, "--resources", "gpu=1", env={"CUDA_VISIBLE_DEVICES": "7"})
        running.add_workers(
            1, "--nthreads", "2", "--resources", "gpu=2", env={"CUDA_VISIBLE_DEVICES": "0,1,2,3"}
        )
        r = project.yanex("run", "--staged", "--executor", "dask", "--scheduler",
                          running.address, "--resources", "gpu=1", env=env)  # fmt: skip
        assert r.returncode == 0, r.stderr
    finally:
        running.close()
    seen = {d["id"]: d["cuda"] for d in runs(running)}
    assert sorted(seen) == sorted(ids)
    assert set(seen.values()) <= {"5", "7", "0,1", "2,3"}, seen
    assert "0" not in seen.values()
    for experiment_id in ids:  # and which worker ran it is in its record
        worker = metadata(project.home / "experiments" / experiment_id)["dask"]
        assert worker["worker"].startswith("tcp://127.0.0.1:") and worker["worker_name"]


def test_an_unreachable_scheduler_is_a_clear_error_and_nothing_changes(project: Project) -> None:
    env = setup(project)
    ids = stage(project, env, "x=1")
    started = time.monotonic()
    r = project.yanex("run", "--staged", "--executor", "dask", "--scheduler",
                      f"tcp://127.0.0.1:{free_port()}", env=env, timeout=60)  # fmt: skip
    assert_usage_error(r, "cannot reach the Dask scheduler", "everything stays staged")
    assert time.monotonic() - started < 60
    meta = metadata(project.home / "experiments" / ids[0])
    assert meta["status"] == "staged"
    assert not (project.home / "experiments" / ids[0] / "claim.json").exists()


def test_ctrl_c_on_the_client_cancels_what_runs_and_leaves_the_rest_staged(
    project: Project, cluster: Cluster
) -> None:
    env = setup(project)
    ids = stage(project, env, "x=range(6)", "sleep=30")
    client = subprocess.Popen(
        [sys.executable, "-m", "yanex", "run", "--staged", "--executor", "dask", "--scheduler",
         cluster.address, "-j", "2"],
        cwd=project.path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True,
    )  # fmt: skip
    folders = [project.home / "experiments" / i for i in ids]
    assert wait_until(lambda: sum(metadata(f)["status"] == "running" for f in folders) == 2)
    client.send_signal(signal.SIGINT)
    _, err = client.communicate(timeout=120)
    assert client.returncode == 130, err
    statuses = [metadata(f)["status"] for f in folders]
    assert sorted(statuses) == ["cancelled"] * 2 + ["staged"] * 4, err
    assert not any((f / "claim.json").exists() for f in folders)
    assert b"4 still staged" in err


def test_a_worker_killed_mid_run_leaves_its_member_failed(
    project: Project, cluster: Cluster
) -> None:
    env = setup(project)
    ids = stage(project, env, "x=1", "sleep=30")
    folder = project.home / "experiments" / ids[0]
    client = project.popen("run", "--staged", "--executor", "dask", "--scheduler",
                           cluster.address, env=env)  # fmt: skip
    assert wait_until(lambda: metadata(folder)["status"] == "running")
    worker_pid = metadata(folder)["launcher"]["pid"]
    os.kill(worker_pid, signal.SIGKILL)
    _, err = client.communicate(timeout=180)
    meta = metadata(folder)
    assert meta["status"] == "failed" and "worker died" in meta["error"], err
    assert b"1 failed" in err and client.returncode == 1


def test_with_retries_a_killed_workers_member_runs_again(
    project: Project, cluster: Cluster
) -> None:
    env = setup(project)
    ids = stage(project, env, "x=1", "sleep=3")
    folder = project.home / "experiments" / ids[0]
    client = project.popen("run", "--staged", "--executor", "dask", "--scheduler",
                           cluster.address, "--retries", "1", env=env)  # fmt: skip
    assert wait_until(lambda: metadata(folder)["status"] == "running")
    os.kill(metadata(folder)["launcher"]["pid"], signal.SIGKILL)
    _, err = client.communicate(timeout=180)
    meta = metadata(folder)
    assert meta["status"] == "completed", err
    assert meta["attempts"] == 2 and "worker died" in meta["retried_after"][0]


STEPS = """
import os, sys, time, yanex
print("attempt", os.getpid(), flush=True)
for step in range(2):
    yanex.log_results({"x": yanex.get_param("x")}, step=step)
open(os.environ["RUNS_LOG"] + ".steps", "a").write("logged\\n")
time.sleep(float(yanex.get_param("sleep", 0)))
"""


def test_a_retried_member_keeps_its_last_attempt_only(project: Project, cluster: Cluster) -> None:
    """The lost attempt's results and output are kept apart (attempts/1/) and listed; the
    member's own files are those of the attempt that ended."""
    project.write("steps.py", STEPS)
    project.commit()
    env = project.env()
    (experiment_id,) = project.yanex("stage", "steps.py", "-p", "x=1", "-p", "sleep=3",
                                     env=env).stdout.split()  # fmt: skip
    folder = project.home / "experiments" / experiment_id
    steps_log = Path(str(cluster.runs_log) + ".steps")
    client = project.popen("run", "--staged", "--executor", "dask", "--scheduler",
                           cluster.address, "--retries", "1", env=env)  # fmt: skip
    assert wait_until(lambda: steps_log.exists())  # the first attempt logged its results
    os.kill(metadata(folder)["launcher"]["pid"], signal.SIGKILL)
    _, err = client.communicate(timeout=180)
    assert client.returncode == 0, err
    meta = metadata(folder)
    assert meta["status"] == "completed" and meta["attempts"] == 2
    lines = [json.loads(line) for line in (folder / "results.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [0, 1]  # not 0, 1, 0, 1
    kept = folder / "attempts" / "1"
    assert len((kept / "results.jsonl").read_text().splitlines()) == 2
    first, last = (kept / "stdout.txt").read_text(), (folder / "stdout.txt").read_text()
    assert first.startswith("attempt ") and last.startswith("attempt ") and first != last
    (earlier,) = meta["earlier_attempts"]
    assert earlier["attempt"] == 1 and earlier["folder"] == "attempts/1"
    assert "worker died" in earlier["error"]


def test_members_of_a_cluster_whose_workers_all_died_end_failed(
    project: Project, cluster: Cluster
) -> None:
    """Every worker killed: the client does not wait for ever; the members that ran end
    failed with the reason, counted as failed even when a reader reaped them first."""
    env = setup(project)
    ids = stage(project, env, "x=range(2)", "sleep=60")
    folders = [project.home / "experiments" / i for i in ids]
    client = project.popen("run", "--staged", "--executor", "dask", "--scheduler",
                           cluster.address, env={**env, "YANEX_DASK_LOST_AFTER": "3"})  # fmt: skip
    assert wait_until(lambda: all(metadata(f)["status"] == "running" for f in folders))
    for worker in cluster.workers:
        os.killpg(worker.pid, signal.SIGKILL)
    # A reader on this host reaps them first (their launchers, the workers, are gone).
    assert wait_until(lambda: project.yanex("list", "--all", env=env).returncode == 0
                      and all(metadata(f)["status"] == "failed" for f in folders))  # fmt: skip
    started = time.monotonic()
    _, err = client.communicate(timeout=120)
    assert time.monotonic() - started < 60, err
    assert client.returncode == 1, err
    assert b"0 completed, 2 failed" in err and b"still staged" not in err, err
    assert all(metadata(f)["status"] == "failed" for f in folders)


def test_members_running_when_every_worker_dies_are_recorded_by_the_client(
    project: Project, cluster: Cluster
) -> None:
    env = setup(project)
    ids = stage(project, env, "x=range(3)", "sleep=60")
    folders = [project.home / "experiments" / i for i in ids]
    client = project.popen("run", "--staged", "--executor", "dask", "--scheduler",
                           cluster.address, env={**env, "YANEX_DASK_LOST_AFTER": "3"})  # fmt: skip
    assert wait_until(lambda: sum(metadata(f)["status"] == "running" for f in folders) == 2)
    for worker in cluster.workers:
        os.killpg(worker.pid, signal.SIGKILL)
    _, err = client.communicate(timeout=120)
    assert client.returncode == 1, err
    statuses = sorted(metadata(f)["status"] for f in folders)
    assert statuses == ["failed", "failed", "staged"], err
    for folder in folders:
        meta = metadata(folder)
        if meta["status"] == "failed":
            assert "every Dask worker" in meta["error"] or "launcher died" in meta["error"]
    assert b"1 still staged" in err and b"Traceback" not in err


class NotDask:
    """A TCP server that is not a Dask scheduler: it answers in another protocol, or never."""

    def __init__(self, answer: bytes | None) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.address = f"tcp://127.0.0.1:{self.sock.getsockname()[1]}"
        self.answer = answer
        import threading

        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        held = []
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            held.append(conn)
            if self.answer is not None:
                with contextlib.suppress(OSError):
                    conn.sendall(self.answer)


@pytest.mark.parametrize("kind", ["http", "silent", "malformed", "bracket"])
def test_a_wrong_scheduler_is_a_usage_error_within_seconds(project: Project, kind: str) -> None:
    env = setup(project)
    ids = stage(project, env, "x=1")
    address = {
        "http": lambda: NotDask(b"HTTP/1.1 400 Bad Request\\r\\nContent-Length: 0\\r\\n\\r\\n" * 4),
        "silent": lambda: NotDask(None),
        "malformed": lambda: "tcp://127.0.0.1:notaport",
        "bracket": lambda: "tcp://[::1",
    }[kind]()
    address = getattr(address, "address", address)
    started = time.monotonic()
    r = project.yanex("run", "--staged", "--executor", "dask", "--scheduler", address,
                      env=env, timeout=60)  # fmt: skip
    elapsed = time.monotonic() - started
    assert_usage_error(r, "cannot reach the Dask scheduler", "everything stays staged")
    assert elapsed < 15, elapsed  # the connection is given 3.5 s; the rest is yanex starting
    assert metadata(project.home / "experiments" / ids[0])["status"] == "staged"


def test_a_lost_scheduler_ends_the_client_with_every_member_told_truly(
    project: Project, cluster: Cluster
) -> None:
    """The scheduler SIGKILLed mid-batch: the client ends within a bounded time, without
    tracebacks; the members that ran are recorded cut off (by their workers), the one that
    never started stays staged."""
    env = setup(project)
    ids = stage(project, env, "x=range(3)", "sleep=60")
    folders = [project.home / "experiments" / i for i in ids]
    client = project.popen("run", "--staged", "--executor", "dask", "--scheduler",
                           cluster.address, "-j", "2",
                           env={**env, "YANEX_DASK_LOST_AFTER": "2"})  # fmt: skip
    assert wait_until(lambda: sum(metadata(f)["status"] == "running" for f in folders) == 2)
    os.killpg(cluster.scheduler.pid, signal.SIGKILL)
    started = time.monotonic()
    _, err = client.communicate(timeout=120)
    assert time.monotonic() - started < 40, err
    assert client.returncode == 1, err
    assert b"Traceback" not in err and len(err.splitlines()) < 15, err.decode()
    assert b"0 completed, 2 failed" in err and b"1 still staged" in err, err
    by_status = sorted((metadata(f)["status"], metadata(f)["error"] or "") for f in folders)
    assert [status for status, _ in by_status] == ["failed", "failed", "staged"]
    for _, error in by_status[:2]:
        assert error.startswith("cut off: its Dask scheduler was lost while it ran"), error


def test_ctrl_c_after_the_scheduler_was_lost_ends_the_client_cleanly(
    project: Project, cluster: Cluster
) -> None:
    """Ctrl-C on a client whose scheduler was SIGKILLed: no traceback, a bounded end, and the
    members told truly (the running ones cut off, the one not started still staged)."""
    env = setup(project)
    ids = stage(project, env, "x=range(3)", "sleep=60")
    folders = [project.home / "experiments" / i for i in ids]
    client = project.popen("run", "--staged", "--executor", "dask", "--scheduler",
                           cluster.address, "-j", "2",
                           env={**env, "YANEX_DASK_LOST_AFTER": "2"})  # fmt: skip
    assert wait_until(lambda: sum(metadata(f)["status"] == "running" for f in folders) == 2)
    os.killpg(cluster.scheduler.pid, signal.SIGKILL)
    time.sleep(0.5)
    client.send_signal(signal.SIGINT)
    started = time.monotonic()
    _, err = client.communicate(timeout=120)
    assert time.monotonic() - started < 40, err
    assert b"Traceback" not in err and b"Error" not in err, err.decode()
    assert client.returncode == 130, err
    # (the scheduler gone, the stop cannot reach the workers: each cuts its member off)
    by_status = sorted((metadata(f)["status"], metadata(f)["error"] or "") for f in folders)
    assert [status for status, _ in by_status] == ["failed", "failed", "staged"], by_status
    for _, error in by_status[:2]:
        assert error.startswith("cut off: its Dask scheduler was lost while it ran"), error


def test_the_progress_line_counts_what_runs(project: Project, cluster: Cluster) -> None:
    """Four members sent to two one-thread workers: two run at a time, and the terminal says
    so (never "4 running", never "1000000 at a time")."""
    import pty

    env = setup(project)
    stage(project, env, "x=range(4)", "sleep=2")
    args = ["run", "--staged", "--executor", "dask", "--scheduler", cluster.address]
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(project.path)
        os.execve(sys.executable, [sys.executable, "-m", "yanex", *args],
                  {**env, "COLUMNS": "160"})  # fmt: skip
    output = b""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, output
    assert b"2 running" in output, output
    assert b"4 running" not in output and b"3 running" not in output
    assert b"1000000" not in output and b"as many at a time as the workers" in output
