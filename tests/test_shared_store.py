"""Several machines on one store: each with its own index (``YANEX_INDEX``), the second one a
real process with another host name (a UTS namespace: ``unshare --uts``, as root), sharing the
store's folder as machines share it over NFS. An edit, a new run or an ending made on one is
seen by the next command on the other; a run whose machine died is recorded failed by the
other within a bounded time; claims held by a dead host say when they expire."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import Project, Result, metadata

OTHER_HOST = "machine-b"


def _can_be_another_machine() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "--uts", "sh", "-c", f"hostname {OTHER_HOST} && hostname"],
        capture_output=True,
        text=True,
    )
    return probe.returncode == 0 and probe.stdout.strip() == OTHER_HOST


pytestmark = pytest.mark.skipif(
    not _can_be_another_machine(),
    reason="a second host name needs a UTS namespace (root and unshare --uts)",
)


@dataclass
class Machine:
    """One machine on the shared store: its own index, and (for the other) its own host."""

    project: Project
    index: Path
    host: str | None  # None: this machine's own host name
    settings: dict[str, str] = field(default_factory=dict)  # YANEX_* of its every command

    def env(self, **extra: str) -> dict[str, str]:
        return self.project.env(YANEX_INDEX=str(self.index), **self.settings, **extra)

    def argv(self, *args: str) -> list[str]:
        command = [sys.executable, "-m", "yanex", *args]
        if self.host is None:
            return command
        return ["unshare", "--uts", "sh", "-c", f'hostname {self.host} && exec "$@"', "sh",
                *command]  # fmt: skip

    def yanex(self, *args: str, timeout: float = 120, **extra: str) -> Result:
        proc = subprocess.run(
            self.argv(*args),
            cwd=self.project.path,
            env=self.env(**extra),
            capture_output=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        return Result(proc.returncode, proc.stdout.decode(), proc.stderr.decode())

    def popen(self, *args: str, **extra: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            self.argv(*args),
            cwd=self.project.path,
            env=self.env(**extra),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )


@pytest.fixture
def machines(project: Project, tmp_path: Path) -> tuple[Machine, Machine]:
    return (
        Machine(project, tmp_path / "index-a.sqlite3", None),
        Machine(project, tmp_path / "index-b.sqlite3", OTHER_HOST),
    )


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout} s: {what}")


def status_of(folder: Path) -> str:
    return metadata(folder)["status"]


def copies(template: Path, count: int) -> list[str]:
    """``count`` copies of one real experiment folder, each with an ID of its own."""
    root = template.parent
    files = {p.name: p.read_bytes() for p in template.iterdir() if p.is_file()}
    meta = json.loads(files.pop("metadata.json"))
    made = []
    while len(made) < count:
        experiment_id = os.urandom(4).hex()
        folder = root / experiment_id
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        for name, data in files.items():
            (folder / name).write_bytes(data)
        (folder / "metadata.json").write_text(json.dumps({**meta, "id": experiment_id}))
        made.append(experiment_id)
    return made


def ids(result: Result) -> set[str]:
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


@pytest.mark.slow
def test_an_edit_on_one_machine_is_seen_by_the_next_command_on_the_other(
    machines: tuple[Machine, Machine], project: Project
) -> None:
    """More experiments than one command re-checks by itself (YANEX_VERIFY_BATCH, 5,000 by
    default; 100 here): only the store's change journal tells the other index which ones
    changed."""
    a, b = machines
    for machine in machines:
        machine.settings["YANEX_VERIFY_BATCH"] = "100"
    project.write("job.py", "import yanex\nyanex.log_results({'loss': 0.5})\n")
    project.commit()
    r = a.yanex("run", "job.py")
    assert r.returncode == 0, r.stderr
    everyone = sorted([project.only_experiment().name, *copies(project.only_experiment(), 600)])
    assert len(ids(a.yanex("list", "--all", "-f", "ids"))) == len(everyone)  # a's index, built

    # Every 20th (in ID order): whatever batch a re-checks, most of them are outside it.
    tagged = everyone[::20]
    r = b.yanex("update", *tagged, "--add-tag", "from-b")
    assert r.returncode == 0, r.stderr
    assert ids(a.yanex("list", "-t", "from-b", "--all", "-f", "ids")) == set(tagged)

    # A new run and its ending on b: seen by a's next command.
    r = b.yanex("run", "job.py", "-n", "made-on-b")
    assert r.returncode == 0, r.stderr
    shown = a.yanex("list", "--name", "made-on-b", "-f", "json")
    assert [e["status"] for e in json.loads(shown.stdout)] == ["completed"]

    # Archived on a, then unarchived and deleted on b: each seen by the other at once.
    assert a.yanex("archive", tagged[0], "--yes").returncode == 0
    assert tagged[0] in ids(b.yanex("list", "--archived", "--all", "-f", "ids"))
    assert b.yanex("unarchive", tagged[0], "--yes").returncode == 0
    assert b.yanex("delete", tagged[1], "--yes").returncode == 0
    listed = ids(a.yanex("list", "-t", "from-b", "--all", "-f", "ids"))
    assert tagged[0] in listed and tagged[1] not in listed

    # Readers never write the journal: a's commands above left it as b's writes made it.
    journal = project.home / "changes.log"
    size = journal.stat().st_size
    assert a.yanex("list", "--all", "-f", "ids").returncode == 0
    assert journal.stat().st_size == size

    # A journal removed (or replaced) by hand: the next command re-checks every experiment.
    journal.unlink()
    r = b.yanex("update", *tagged[2:], "--remove-tag", "from-b")
    assert r.returncode == 0, r.stderr
    journal.unlink()
    assert ids(a.yanex("list", "-t", "from-b", "--all", "-f", "ids")) == {tagged[0]}


SLOW = """
import time, yanex
yanex.log_results({"step": 1})
time.sleep(float(yanex.get_param("sleep", 60)))
"""


def running_on_b(b: Machine, project: Project, *params: str, **env: str) -> tuple[Any, Path]:
    """A run started on b, once it is recorded running."""
    proc = b.popen("run", "slow.py", *params, **env)

    def running() -> Path | None:
        for folder in project.experiments():
            if (folder / "metadata.json").exists() and status_of(folder) == "running":
                return folder
        return None

    folder = wait_for(running, 60, "the run on b is running")
    return proc, folder


@pytest.mark.slow
def test_a_run_whose_machine_died_is_recorded_failed_by_the_other(
    machines: tuple[Machine, Machine], project: Project
) -> None:
    a, b = machines
    project.write("slow.py", SLOW)
    project.commit()
    proc, folder = running_on_b(b, project, YANEX_HEARTBEAT="1")
    launcher = metadata(folder)["launcher"]
    assert launcher["hostname"] == OTHER_HOST

    # While b's launcher lives, its heartbeat keeps the run running on a (lost after 4 s).
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        shown = json.loads(a.yanex("list", "-f", "json").stdout)
        assert [e["status"] for e in shown] == ["running"]
    refused = a.yanex("delete", folder.name, "--yes")
    assert refused.returncode == 2 and "running" in refused.stderr

    # b dies: its launcher killed at once (its watcher ends the script), no ending recorded.
    killed = time.monotonic()
    os.kill(launcher["pid"], signal.SIGKILL)
    proc.wait(timeout=30)
    r = wait_for(
        lambda: (lambda r: r if "failed" in r.stdout else None)(a.yanex("list")),
        30,
        "a records b's run failed",
    )
    assert time.monotonic() - killed < 20
    assert "lost its launcher on machine-b; recorded as failed" in r.stderr
    meta = metadata(folder)
    assert meta["status"] == "failed"
    assert meta["error"].startswith(
        f"launcher lost: no heartbeat from yanex (pid {launcher['pid']} on {OTHER_HOST}) since"
    )
    assert "renewed it every 1 s" in meta["error"]
    assert not (folder / ".heartbeat").exists()  # the dead launcher's, removed with it
    r = a.yanex("delete", folder.name, "--yes")  # no longer running: a may delete it
    assert r.returncode == 0, r.stderr
    assert not folder.exists()


@pytest.mark.slow
def test_a_run_that_ends_leaves_no_heartbeat_and_is_never_taken_for_lost(
    machines: tuple[Machine, Machine], project: Project
) -> None:
    a, b = machines
    project.write("slow.py", SLOW)
    project.commit()
    proc, folder = running_on_b(b, project, "-p", "sleep=2", YANEX_HEARTBEAT="0.2")
    assert (folder / ".heartbeat").is_file()
    while proc.poll() is None:
        assert a.yanex("list").returncode == 0
    assert proc.returncode == 0
    assert status_of(folder) == "completed"
    assert not (folder / ".heartbeat").exists()


HOLD = """
import sys
from pathlib import Path
from yanex import claims
for folder in sys.argv[1:]:
    assert claims.take(Path(folder)) is not None
print("held", flush=True)
import time; time.sleep(600)
"""


@pytest.mark.slow
def test_claims_held_by_a_dead_host_say_when_they_expire(
    machines: tuple[Machine, Machine], project: Project
) -> None:
    a, b = machines
    project.write("job.py", "print('ran')\n")
    project.commit()
    r = a.yanex("stage", "job.py", "-p", "x=range(2)")
    held, free = r.stdout.split()
    folder = project.home / "experiments" / held

    # A runner on b takes a claim, and b dies (the process killed: nothing given back).
    holder = subprocess.Popen(
        ["unshare", "--uts", "sh", "-c", f'hostname {OTHER_HOST} && exec "$@"', "sh",
         sys.executable, "-c", HOLD, str(folder)],
        stdout=subprocess.PIPE, env=b.env(),
    )  # fmt: skip
    assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
    holder.kill()
    holder.wait()

    r = a.yanex("run", "--staged")
    assert r.returncode == 0, r.stderr
    assert status_of(project.home / "experiments" / free) == "completed"
    assert status_of(folder) == "staged"
    line = next(line for line in r.stderr.splitlines() if held in line)
    assert f"a runner on {OTHER_HOST} (pid {holder.pid}) holds it" in line
    assert "if that runner is gone, the claim expires at" in line
    left = re.search(r"\(in (\d+) s; YANEX_CLAIM_LEASE=300 s\)", line)
    assert left and 240 < int(left.group(1)) <= 300, line
    assert "1 completed" in r.stderr and "1 held by another runner (still staged)" in r.stderr

    # Once the lease has run out (2 s here), the next runner takes the claim over and runs it.
    time.sleep(2.2)
    r = a.yanex("run", "--staged", YANEX_CLAIM_LEASE="2")
    assert r.returncode == 0, r.stderr
    assert status_of(folder) == "completed"
