"""Every way a run can end is recorded: completed, failed, cancelled; output is never lost."""

from __future__ import annotations

import os
import pty
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import Project, metadata, process_gone

WAITS_FOR_SIGNALS = """
    import os, signal, sys, time
    seen = []
    def note(sig, frame):
        seen.append(sig)
        with open("signals.txt", "a") as f:
            f.write(signal.Signals(sig).name + "\\n")
        if len(seen) == 1:
            raise KeyboardInterrupt
    signal.signal(signal.SIGINT, note)
    signal.signal(signal.SIGTERM, note)
    signal.signal(signal.SIGHUP, note)
    with open("pid.txt", "w") as f:
        f.write(str(os.getpid()))
    try:
        print("ready", flush=True)  # inside try: a signal may come as soon as it is read
        time.sleep(60)
    except KeyboardInterrupt:
        time.sleep(1.0)  # time for a second, unwanted copy of the signal to arrive
        print("cleaned up", flush=True)
        sys.exit(1)
"""


def start(project: Project, *args: str, **env: str) -> subprocess.Popen[bytes]:
    proc = project.popen(
        "run",
        *args,
        env=project.env(**env),
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # a signal for yanex alone, as `kill PID` sends it
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"ready\n"
    return proc


def test_failing_script_is_failed_with_its_exit_code_and_stderr_tail(project: Project) -> None:
    project.write(
        "fail.py",
        """
        import sys
        print("working")
        print("\\n".join(f"noise {i}" for i in range(30)), file=sys.stderr)
        print("ValueError: the data is bad", file=sys.stderr)
        sys.exit(3)
        """,
    )
    project.commit()
    r = project.yanex("run", "fail.py")
    assert r.returncode == 3
    meta = metadata(project.only_experiment())
    assert meta["status"] == "failed" and meta["exit_code"] == 3
    assert meta["error"].startswith("exited with code 3")
    assert "ValueError: the data is bad" in meta["error"]
    assert "noise 0\n" not in meta["error"]  # the last lines, not all of them
    assert "failed" in r.stderr and project.only_experiment().name in r.stderr


def test_uncaught_exception_is_failed_with_the_traceback_tail(project: Project) -> None:
    project.write("boom.py", "1 / 0\n")
    project.commit()
    r = project.yanex("run", "boom.py")
    assert r.returncode == 1
    meta = metadata(project.only_experiment())
    assert meta["status"] == "failed" and "ZeroDivisionError" in meta["error"]


def test_script_killed_by_a_signal_from_elsewhere_is_failed(project: Project) -> None:
    project.write("oom.py", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")
    project.commit()
    r = project.yanex("run", "oom.py")
    assert r.returncode == 128 + 9
    meta = metadata(project.only_experiment())
    assert meta["status"] == "failed" and meta["exit_code"] == -9
    assert meta["error"].startswith("killed by signal SIGKILL")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130), (signal.SIGHUP, 129)]
)
def test_signal_sent_to_yanex_is_forwarded_once_and_cancels(
    project: Project, sig: signal.Signals, code: int
) -> None:
    project.write("wait.py", WAITS_FOR_SIGNALS)
    project.commit()
    proc = start(project, "wait.py")
    proc.send_signal(sig)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == code, err
    assert (project.path / "signals.txt").read_text() == f"{sig.name}\n"  # exactly once
    folder = project.only_experiment()
    meta = metadata(folder)
    assert meta["status"] == "cancelled" and meta["error"] == f"cancelled by {sig.name}"
    assert meta["ended_at"] and meta["duration"] > 0
    assert (folder / "stdout.txt").read_text() == "ready\ncleaned up\n"  # output kept
    assert process_gone(int((project.path / "pid.txt").read_text()))


@pytest.mark.slow
def test_script_that_ignores_the_signal_is_killed_after_the_grace_period(project: Project) -> None:
    project.write(
        "stubborn.py",
        """
        import os, signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        open("pid.txt", "w").write(str(os.getpid()))
        print("ready", flush=True)
        while True:
            time.sleep(0.1)
        """,
    )
    project.commit()
    proc = start(project, "stubborn.py", YANEX_GRACE_PERIOD="1")
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == 143
    meta = metadata(project.only_experiment())
    assert meta["status"] == "cancelled" and meta["exit_code"] == -9
    assert process_gone(int((project.path / "pid.txt").read_text()))


@pytest.mark.slow
def test_ctrl_c_at_a_terminal_reaches_the_script_once(project: Project) -> None:
    project.write("wait.py", WAITS_FOR_SIGNALS)
    project.commit()
    pid, fd = pty.fork()
    if pid == 0:  # the child: yanex with the pty as its controlling terminal
        os.chdir(project.path)
        os.execve(sys.executable, [sys.executable, "-m", "yanex", "run", "wait.py"], project.env())
    output = b""
    deadline = time.monotonic() + 30
    while b"ready" not in output and time.monotonic() < deadline:
        output += os.read(fd, 1024)
    assert b"ready" in output
    os.write(fd, b"\x03")  # Ctrl-C: the terminal signals the whole foreground process group
    while True:
        try:
            chunk = os.read(fd, 1024)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 130, output
    assert (project.path / "signals.txt").read_text() == "SIGINT\n"
    assert b"cleaned up" in output
    meta = metadata(project.only_experiment())
    assert meta["status"] == "cancelled"


def test_output_bytes_are_kept_exactly(project: Project) -> None:
    project.write(
        "bytes.py",
        """
        import sys
        out = sys.stdout.buffer
        out.write(b"not utf-8: \\xff\\xfe\\x80\\n")
        for pct in range(0, 101, 25):
            out.write(f"progress {pct}%\\r".encode())
            out.flush()
        out.write(b"\\n")
        sys.stderr.buffer.write(b"err \\xc3\\x28\\n")
        """,
    )
    project.commit()
    r = subprocess.run(
        [sys.executable, "-m", "yanex", "run", "bytes.py"],
        cwd=project.path,
        env=project.env(),
        capture_output=True,
        timeout=60,
    )
    assert r.returncode == 0
    expected = (
        b"not utf-8: \xff\xfe\x80\n"
        b"progress 0%\rprogress 25%\rprogress 50%\rprogress 75%\rprogress 100%\r\n"
    )
    folder = project.only_experiment()
    assert (folder / "stdout.txt").read_bytes() == expected
    assert r.stdout == expected
    assert (folder / "stderr.txt").read_bytes() == b"err \xc3\x28\n"


def test_megabytes_of_output_on_both_streams(project: Project) -> None:
    project.write(
        "loud.py",
        """
        import sys
        line = "x" * 1023 + "\\n"
        for i in range(8 * 1024):  # 8 MiB to each stream, interleaved
            sys.stdout.write(line)
            sys.stderr.write(line)
        """,
    )
    project.commit()
    r = subprocess.run(
        [sys.executable, "-m", "yanex", "run", "loud.py"],
        cwd=project.path,
        env=project.env(),
        capture_output=True,
        timeout=120,
    )
    assert r.returncode == 0
    folder = project.only_experiment()
    size = 8 * 1024 * 1024
    assert (folder / "stdout.txt").stat().st_size == size
    assert (folder / "stderr.txt").stat().st_size == size
    assert len(r.stdout) == size


def test_a_closed_terminal_pipe_does_not_stop_the_run(project: Project) -> None:
    project.write(
        "many.py",
        """
        import yanex
        for i in range(20000):
            print(f"line {i}")
        yanex.log_results({"done": True})
        """,
    )
    project.commit()
    proc = project.popen("run", "many.py")
    assert proc.stdout is not None
    proc.stdout.read(10)
    proc.stdout.close()  # like `yanex run many.py | head -1`
    proc.wait(timeout=60)
    assert proc.returncode == 0
    folder = project.only_experiment()
    assert (folder / "stdout.txt").read_text().count("\n") == 20000
    assert metadata(folder)["status"] == "completed"


@pytest.mark.slow
def test_background_process_holding_the_pipes_does_not_hang_the_run(project: Project) -> None:
    project.write(
        "daemon.py",
        f"""
        import subprocess
        subprocess.Popen([{sys.executable!r}, "-c", "import time; time.sleep(20)"])
        print("started a helper")
        """,
    )
    project.commit()
    # The helper lives 20 s: a yanex that waited for it would hit this timeout and fail.
    r = project.yanex("run", "daemon.py", timeout=19)
    assert r.returncode == 0
    assert metadata(project.only_experiment())["status"] == "completed"


def test_interrupted_launcher_never_leaves_running(project: Project, tmp_path: Path) -> None:
    """SIGTERM arriving while the script starts still ends in a recorded status."""
    project.write("quick.py", "print('ready', flush=True)\nimport time; time.sleep(5)\n")
    project.commit()
    proc = start(project, "quick.py")
    proc.send_signal(signal.SIGTERM)
    proc.send_signal(signal.SIGTERM)  # a copy of the first, as timeout(1) sends: one stop
    proc.communicate(timeout=30)
    assert proc.returncode == 143
    assert metadata(project.only_experiment())["status"] == "cancelled"
