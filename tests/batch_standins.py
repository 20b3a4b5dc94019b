"""Stand-ins for a batch system's commands (Slurm's sbatch/squeue/scancel, PBS's
qsub/qstat/qdel), put on PATH for tests: they do with the job script dask-jobqueue writes what
the batch system would, on this machine. Submitting runs the script in the background (a
session of its own: the job), listing shows the jobs still alive, cancelling kills the job's
processes. Every call is logged, and a test "preempts" a job by killing it."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

_COMMON = """
import fcntl, json, os, signal, subprocess, sys, time
from pathlib import Path

STATE = Path({state!r})
JOBS = STATE / "jobs"
JOBS.mkdir(parents=True, exist_ok=True)


def log(*words):
    with open(STATE / "calls.log", "a") as f:
        f.write(" ".join(str(w) for w in words) + "\\n")


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{{pid}}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def live_jobs():
    found = []
    for entry in sorted(JOBS.glob("*.pid"), key=lambda p: int(p.stem)):
        if alive(int(entry.read_text())):
            found.append(entry.stem)
    return found
"""

_SUBMIT = """
def submit(script):
    with open(STATE / "counter", "a+") as counter:
        fcntl.flock(counter, fcntl.LOCK_EX)
        counter.seek(0)
        job = int(counter.read() or 0) + 1
        counter.seek(0)
        counter.truncate()
        counter.write(str(job))
    kept = JOBS / f"{{job}}.sh"
    kept.write_bytes(Path(script).read_bytes())  # the batch system keeps its own copy
    out = open(JOBS / f"{{job}}.out", "wb")
    env = {{**os.environ, "{job_env}": str(job)}}
    # The job: its script, then its exit status kept (what squeue -j tells of an ended job).
    proc = subprocess.Popen(["bash", "-c", 'bash "$0"; echo $? > "$1"', str(kept),
                             str(JOBS / f"{{job}}.exit")], stdout=out, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True, env=env)
    (JOBS / f"{{job}}.pid").write_text(str(proc.pid))
    log("{submit}", job)
    return job


script = sys.argv[-1]
if {stdin}:  # the script comes on stdin (LSF's bsub < script)
    script = str(STATE / "stdin.sh")
    Path(script).write_bytes(sys.stdin.buffer.read())
job = submit(script)
print({submitted!r}.format(id=job))
"""

_STATUS = """
def state(job):
    if alive(int((JOBS / f"{{job}}.pid").read_text())):
        return "RUNNING"
    code = JOBS / f"{{job}}.exit"
    if not code.exists():
        return "CANCELLED"  # killed: cancelled or preempted
    return "COMPLETED" if code.read_text().strip() == "0" else "FAILED"


args = sys.argv[1:]
log("{status}", *args)
shape = args[args.index("-o") + 1] if "-o" in args else "%i %T"
if "-j" in args:  # these jobs, ended ones too (a job Slurm forgot: an error)
    jobs = args[args.index("-j") + 1].split(",")
    if any(not (JOBS / f"{{job}}.pid").exists() for job in jobs):
        print("slurm_load_jobs error: Invalid job id specified", file=sys.stderr)
        sys.exit(1)
else:
    jobs = live_jobs()
if "-h" not in args:
    print("JOBID STATE")
for job in jobs:
    print(shape.replace("%i", job).replace("%T", state(job)).replace("%r", "None"))
"""

_CANCEL = """
for word in sys.argv[1:]:
    job = word.split(".")[0]
    pid_file = JOBS / f"{{job}}.pid"
    log("{cancel}", job)
    if not pid_file.exists():
        print(f"{cancel}: error: invalid job id {{job}}", file=sys.stderr)
        sys.exit(1)
    pid = int(pid_file.read_text())
    if alive(pid):
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
"""


@dataclass
class BatchSystem:
    """A batch system's stand-in commands in ``bin`` (put it first on PATH), its state in
    ``state``: ``calls.log``, and per job its script copy, output and pid."""

    bin: Path
    state: Path
    submit: str
    cancel: str
    status: str

    def listed(self) -> list[str]:
        """The jobs the status command (squeue, qstat) lists as a user runs it."""
        import subprocess

        out = subprocess.run(
            [str(self.bin / self.status)], capture_output=True, text=True, check=True
        ).stdout
        return [line.split()[0] for line in out.splitlines()[1:]]

    def calls(self) -> list[str]:
        log = self.state / "calls.log"
        return log.read_text().splitlines() if log.exists() else []

    def submitted(self) -> list[str]:
        return [line.split()[1] for line in self.calls() if line.startswith(self.submit)]

    def cancelled(self) -> list[str]:
        return [line.split()[1] for line in self.calls() if line.startswith(self.cancel)]

    def pid(self, job: str) -> int:
        return int((self.state / "jobs" / f"{job}.pid").read_text())

    def script(self, job: str) -> str:
        return (self.state / "jobs" / f"{job}.sh").read_text()

    def output(self, job: str) -> str:
        path = self.state / "jobs" / f"{job}.out"
        return path.read_text(errors="replace") if path.exists() else ""

    def alive(self, job: str) -> bool:
        try:
            os.killpg(self.pid(job), 0)
        except ProcessLookupError:
            return False
        return True

    def live(self) -> list[str]:
        return [job for job in self.submitted() if self.alive(job)]

    def preempt(self, job: str) -> None:
        """What a preemption does to a job: every process of it killed."""
        os.killpg(self.pid(job), signal.SIGKILL)

    def kill_all(self) -> None:
        for job in self.submitted():
            with contextlib.suppress(ProcessLookupError, FileNotFoundError):
                os.killpg(self.pid(job), signal.SIGKILL)

    def path(self) -> str:
        return f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}"


_KINDS = {
    "slurm": dict(
        submit="sbatch", status="squeue", cancel="scancel", job_env="SLURM_JOB_ID",
        submitted="Submitted batch job {id}", stdin=False,
    ),
    "pbs": dict(
        submit="qsub", status="qstat", cancel="qdel", job_env="PBS_JOBID",
        submitted="{id}.pbs-server", stdin=False,
    ),
}  # fmt: skip


def install(kind: str, root: Path) -> BatchSystem:
    """Write the stand-ins of ``kind`` (slurm, pbs) under ``root``."""
    spec = _KINDS[kind]
    bin_dir, state = root / "bin", root / "state"
    bin_dir.mkdir(parents=True, exist_ok=True)
    state.mkdir(parents=True, exist_ok=True)
    head = f"#!{sys.executable}\n" + _COMMON.format(state=str(state))
    bodies = {
        spec["submit"]: _SUBMIT.format(
            submit=spec["submit"], job_env=spec["job_env"], submitted=spec["submitted"],
            stdin=spec["stdin"],
        ),
        spec["status"]: _STATUS.format(status=spec["status"]),
        spec["cancel"]: _CANCEL.format(cancel=spec["cancel"]),
    }  # fmt: skip
    for name, body in bodies.items():
        script = bin_dir / name
        script.write_text(head + textwrap.dedent(body))
        script.chmod(0o755)
    return BatchSystem(bin_dir, state, spec["submit"], spec["cancel"], spec["status"])
