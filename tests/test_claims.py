"""Claims on staged experiments are leases that hold across hosts, and a takeover of a stale
one is race-free; runners that compete over one grid run each member once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import pytest
from conftest import Project, metadata

from yanex import claims, store


def staged_folder(project: Project) -> Path:
    project.write("job.py", "print('ran')\n")
    project.commit()
    r = project.yanex("stage", "job.py")
    assert r.returncode == 0, r.stderr
    return project.home / "experiments" / r.stdout.strip()


def write_claim(folder: Path, claim: claims.Claim) -> None:
    store.write_json_atomic(folder / store.CLAIM, asdict(claim))


def test_a_claim_is_taken_once(project: Project) -> None:
    folder = staged_folder(project)
    first = claims.take(folder)
    assert first is not None and claims.holds(folder, first.token)
    assert claims.take(folder) is None  # held by a live process (this one)
    claims.release(folder, first)
    assert not (folder / store.CLAIM).exists()


def test_another_hosts_claim_holds_until_its_lease_expires(project: Project) -> None:
    folder = staged_folder(project)
    theirs = replace(claims.Claim.new(), host="elsewhere.cluster", pid=1)
    write_claim(folder, theirs)
    assert claims.take(folder) is None  # renewed just now: theirs
    write_claim(folder, replace(theirs, renewed=time.time() - claims.lease_seconds() - 5))
    taken = claims.take(folder)
    assert taken is not None and taken.generation == theirs.generation + 1


def test_a_reused_pid_does_not_keep_a_claim(project: Project) -> None:
    folder = staged_folder(project)
    # This process's pid, but another start time: the pid was reused by another process.
    write_claim(folder, replace(claims.Claim.new(), started=1.0))
    assert claims.take(folder) is not None


def test_a_renewal_is_refused_after_a_takeover(project: Project) -> None:
    folder = staged_folder(project)
    old = replace(claims.Claim.new(), host="elsewhere", renewed=time.time() - 10_000)
    write_claim(folder, old)
    new = claims.take(folder)
    assert new is not None
    assert claims.renew(folder, old) is None  # the old holder learns it lost the lease
    renewed = claims.renew(folder, new)
    assert renewed is not None and renewed.renewed >= new.renewed


TAKE = """
import json, sys, time
from pathlib import Path
from yanex import claims
start = float(sys.argv[2])
while time.time() < start:
    pass
taken = claims.take(Path(sys.argv[1]))
print(json.dumps(taken.token if taken else None), flush=True)
sys.stdin.read()  # a runner that holds its claim lives on (until every one has tried)
"""


@pytest.mark.slow
def test_of_many_runners_taking_over_one_stale_claim_exactly_one_gets_it(
    project: Project,
) -> None:
    folder = staged_folder(project)
    write_claim(folder, replace(claims.Claim.new(), host="gone", renewed=0.0))
    start = time.time() + 1.5
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", TAKE, str(folder), str(start)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=project.env(),
        )
        for _ in range(8)
    ]
    tokens = [json.loads(p.stdout.readline()) for p in procs if p.stdout is not None]
    for p in procs:
        p.communicate(timeout=60)
    winners = [t for t in tokens if t is not None]
    assert len(winners) == 1
    assert claims.holds(folder, winners[0])


RECORDS = """
import os, time, yanex
with open(os.environ["RUNS_LOG"], "a") as log:
    log.write(yanex.experiment_id() + "\\n")
time.sleep(0.2)
"""


@pytest.mark.slow
def test_two_runners_and_a_third_taking_over_stale_claims_run_each_member_once(
    project: Project, tmp_path: Path
) -> None:
    project.write("job.py", RECORDS)
    project.commit()
    env = project.env(RUNS_LOG=str(tmp_path / "runs.log"))
    r = project.yanex("stage", "job.py", "-p", "x=range(12)", env=env)
    ids = r.stdout.split()
    # A runner that died with claims on four members (a real process, killed).
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys; from pathlib import Path; from yanex import claims\n"
         "for f in sys.argv[1:]: claims.take(Path(f))\nprint('held', flush=True)\n"
         "import time; time.sleep(60)",
         *(str(project.home / "experiments" / i) for i in ids[:4])],
        stdout=subprocess.PIPE, env=env,
    )  # fmt: skip
    assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
    holder.kill()
    holder.wait()
    runners = [project.popen("run", "--staged", "-j", "2", env=env) for _ in range(3)]
    for runner in runners:
        runner.communicate(timeout=180)
    ran = (tmp_path / "runs.log").read_text().split()
    assert sorted(ran) == sorted(ids)  # each member once, the stale claims taken over
    assert all(metadata(project.home / "experiments" / i)["status"] == "completed" for i in ids)
    assert not any((project.home / "experiments" / i / "claim.json").exists() for i in ids)
    assert not any(
        name.startswith(".claim")
        for i in ids
        for name in os.listdir(project.home / "experiments" / i)
    )


def test_another_hosts_claim_is_described_with_when_it_expires(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(claims.LEASE_ENV, "120")
    theirs = replace(claims.Claim.new(), host="elsewhere.cluster", pid=4242)
    theirs = replace(theirs, renewed=time.time() - 50)
    said = claims.describe(theirs)
    expires = time.strftime("%H:%M:%S", time.localtime(theirs.renewed + 120))
    assert said.startswith("a runner on elsewhere.cluster (pid 4242) holds it")
    assert "last renewed 50 s ago (every 40 s while it holds it)" in said
    assert f"the claim expires at {expires} (in 70 s; YANEX_CLAIM_LEASE=120 s)" in said
    assert claims.describe(claims.Claim.new()).startswith("another runner holds it (pid ")
