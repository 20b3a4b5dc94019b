"""`yanex run --staged --executor dask --cluster slurm -j N`: a cluster of batch jobs built by
dask-jobqueue from Dask's own configuration, its jobs started by stand-in sbatch/squeue/scancel
commands on PATH (tests/batch_standins.py) that run the job scripts dask-jobqueue writes on
this machine: real workers, a real scheduler, preempted jobs replaced, all cancelled at the
end. PBS takes the same path with qsub/qstat/qdel."""

from __future__ import annotations

import json
import re
import shlex
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from batch_standins import BatchSystem, install
from conftest import Project, Result, assert_usage_error, metadata

pytest.importorskip("dask_jobqueue")
pytestmark = pytest.mark.slow  # real workers: the full suite, not the edit loop's

JOB = """
import json, os, time, yanex
with open(os.environ["RUNS_LOG"], "a") as log:
    log.write(json.dumps({"x": yanex.get_param("x"), "job": os.environ.get("SLURM_JOB_ID")
                          or os.environ.get("PBS_JOBID")}) + "\\n")
release = os.environ.get("RELEASE")
while release and not os.path.exists(release):
    time.sleep(0.1)
yanex.log_results({"x": yanex.get_param("x")})
"""


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout} s: {what}")


class Site:
    """A project whose user has a batch system (stand-ins) and a home of their own."""

    def __init__(self, project: Project, root: Path, kind: str = "slurm") -> None:
        self.project = project
        self.batch: BatchSystem = install(kind, root / kind)
        self.user_home = root / "user"
        (self.user_home / ".config" / "dask").mkdir(parents=True)
        self.runs_log = root / "runs.log"
        self.release = root / "release"
        project.write("job.py", JOB)
        project.commit()

    def jobqueue_yaml(self, text: str) -> None:
        (self.user_home / ".config" / "dask" / "jobqueue.yaml").write_text(text)

    def env(self, **extra: str) -> dict[str, str]:
        return self.project.env(
            HOME=str(self.user_home),
            PATH=self.batch.path(),
            RUNS_LOG=str(self.runs_log),
            **extra,
        )

    def yanex(self, *args: str, **extra: str) -> Result:
        return self.project.yanex(*args, env=self.env(**extra), timeout=240)

    def stage(self, *params: str) -> list[str]:
        r = self.yanex("stage", "job.py", *params)
        assert r.returncode == 0, r.stderr
        return r.stdout.split()

    def runs(self) -> list[dict[str, Any]]:
        if not self.runs_log.exists():
            return []
        return [json.loads(line) for line in self.runs_log.read_text().splitlines()]

    def status(self, experiment_id: str) -> str:
        return metadata(self.project.home / "experiments" / experiment_id)["status"]


@pytest.fixture
def site(project: Project, tmp_path: Path) -> Any:
    made = Site(project, tmp_path)
    try:
        yield made
    finally:
        made.batch.kill_all()  # whatever a failed test left


SMALL_JOBS = "jobqueue:\n  slurm:\n    cores: 1\n    processes: 1\n    memory: 1GB\n"


def readme_slurm_section() -> tuple[str, list[list[str]]]:
    """The README's Slurm example: its jobqueue.yaml, and its yanex commands as argv."""
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    section = readme.split("### On a cluster: Dask", 1)[1].split("\n### ", 1)[0]
    yaml_text = re.search(r"```yaml\n(.*?)```", section, re.S)
    commands = re.search(r"```bash\n(yanex run --staged --executor dask --cluster .*?)```",
                         section, re.S)  # fmt: skip
    assert yaml_text and commands, "the README's Slurm example"
    lines = commands.group(1).replace("\\\n", " ").splitlines()
    argv = [shlex.split(line.split("  #")[0]) for line in lines if line.strip()]
    return yaml_text.group(1), argv


def test_the_readmes_slurm_section_runs_as_written(site: Site) -> None:
    yaml_text, commands = readme_slurm_section()
    site.jobqueue_yaml(yaml_text)  # ~/.config/dask/jobqueue.yaml, as the README says
    assert len(commands) == 2 and all(argv[0] == "yanex" for argv in commands)
    for number, argv in enumerate(commands):
        before = len(site.batch.submitted())
        staged = site.stage("-p", f"x=range({number * 10}, {number * 10 + 4})")
        r = site.yanex(*argv[1:])
        assert r.returncode == 0, r.stderr
        assert "4 completed" in r.stderr and "(dask)" in r.stderr
        assert all(site.status(i) == "completed" for i in staged)
        jobs = site.batch.submitted()[before:]
        # -j 8 with cores: 4: two jobs would do; four members fill one.
        assert len(jobs) == 1, site.batch.calls()
        script = site.batch.script(jobs[0])
        assert "#SBATCH -t 04:00:00" in script and "--nthreads 4" in script
        if "queue=gpu" in argv:  # the per-run options reach the job
            assert "#SBATCH -p gpu" in script and "#SBATCH --gres=gpu:1" in script
        # the batch over, every job it submitted was cancelled and is gone
        assert set(site.batch.cancelled()) >= set(jobs)
        wait_for(lambda: not site.batch.live(), 30, "every job ended")
    ran = {run["x"]: run["job"] for run in site.runs()}
    assert sorted(ran) == [0, 1, 2, 3, 10, 11, 12, 13]


def test_jobs_are_submitted_for_j_members_at_once(site: Site) -> None:
    site.jobqueue_yaml(SMALL_JOBS)
    staged = site.stage("-p", "x=range(3)")
    runner = site.project.popen(
        "run", "--staged", "--executor", "dask", "--cluster", "slurm", "-j", "2",
        env=site.env(RELEASE=str(site.release)),
    )  # fmt: skip
    wait_for(lambda: len(site.runs()) == 2, 120, "two members run")
    assert site.batch.listed() == ["1", "2"]  # squeue: the two jobs run
    site.release.touch()
    _, err = runner.communicate(timeout=120)
    assert runner.returncode == 0, err.decode()
    assert b"at most 2 at a time on a slurm cluster of 2 jobs" in err
    assert len(site.batch.submitted()) == 2
    assert all(site.status(i) == "completed" for i in staged)
    assert {run["job"] for run in site.runs()} <= set(site.batch.submitted())
    wait_for(lambda: not site.batch.listed(), 30, "squeue lists no job")


def test_a_preempted_job_is_replaced_while_members_remain(site: Site) -> None:
    site.jobqueue_yaml(SMALL_JOBS)
    staged = site.stage("-p", "x=range(3)")
    runner = site.project.popen(
        "run", "--staged", "--executor", "dask", "--cluster", "slurm", "-j", "2",
        env=site.env(RELEASE=str(site.release), DASK_DISTRIBUTED__DEPLOY__LOST_WORKER_TIMEOUT="1s"),
    )  # fmt: skip
    try:
        first = wait_for(lambda: len(site.runs()) >= 2 and site.runs(), 120, "two members run")
        preempted = first[0]["job"]
        site.batch.preempt(preempted)  # its member is cut off with its worker
        # The other job's member holds its worker: the third member needs the new job.
        replacement = wait_for(
            lambda: [r for r in site.runs() if r["job"] not in {run["job"] for run in first}],
            120,
            "a member runs on a replacement job",
        )
        assert replacement[0]["job"] not in site.batch.submitted()[:2]
    finally:
        site.release.touch()
    _out, err = runner.communicate(timeout=120)
    stderr = err.decode()
    assert runner.returncode == 1, stderr  # the preempted job's member failed
    assert "slurm job (SLURMCluster-" in stderr and "submitted a new one" in stderr
    assert "2 completed, 1 failed" in stderr
    failed = [i for i in staged if site.status(i) == "failed"]
    assert len(failed) == 1
    error = metadata(site.project.home / "experiments" / failed[0])["error"]
    assert "its Dask worker died" in error
    assert len(site.batch.submitted()) == 3
    assert set(site.batch.cancelled()) >= set(site.batch.submitted()[1:])
    wait_for(lambda: not site.batch.live(), 30, "every job ended")


def test_a_job_that_ends_before_its_worker_joins_is_replaced(site: Site) -> None:
    """A job script that fails at once (here the first job's only): squeue says the job
    FAILED, and a new job runs the members."""
    flag = site.batch.state / "failed-once"
    site.jobqueue_yaml(
        SMALL_JOBS + f"    job-script-prologue: ['test -e {flag} || {{ touch {flag}; exit 3; }}']\n"
    )
    staged = site.stage("-p", "x=range(2)")
    r = site.yanex(
        "run", "--staged", "--executor", "dask", "--cluster", "slurm", "-j", "1",
        YANEX_BATCH_POLL="1",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "1 slurm job (SLURMCluster-0: job 1 FAILED) ended before its worker joined; " \
        "submitted a new one" in r.stderr  # fmt: skip
    assert "2 completed" in r.stderr
    assert [site.status(i) for i in staged] == ["completed", "completed"]
    assert site.batch.submitted() == ["1", "2"]
    assert sorted(run["job"] for run in site.runs()) == ["2", "2"]


def test_jobs_that_never_start_a_worker_end_the_batch(site: Site) -> None:
    """Every job's script fails at once: after three in a row yanex stops submitting, says
    so, and the members stay staged."""
    site.jobqueue_yaml(SMALL_JOBS + "    job-script-prologue: ['exit 3']\n")
    staged = site.stage("-p", "x=range(2)")
    r = site.yanex(
        "run", "--staged", "--executor", "dask", "--cluster", "slurm", "-j", "1",
        YANEX_BATCH_POLL="1",
    )  # fmt: skip
    assert r.returncode == 1, r.stderr
    assert "3 slurm jobs in a row ended before their Dask worker joined " \
        "(the last: SLURMCluster-0: job 3 FAILED): their job script cannot start a worker; " \
        "see a job's output (--cluster-option log_directory=DIR keeps it)" in r.stderr  # fmt: skip
    assert "what had not started stays staged" in r.stderr and "Traceback" not in r.stderr
    assert [site.status(i) for i in staged] == ["staged", "staged"]
    assert site.batch.submitted() == ["1", "2", "3"]
    assert not site.runs()


def test_jobs_that_never_start_beside_a_working_one_leave_it_the_batch(site: Site) -> None:
    """Job 1 works, every later job's script fails at once: after three in a row no more are
    submitted, and the members run on job 1 (its member was never cut off)."""
    site.jobqueue_yaml(
        SMALL_JOBS + "    job-script-prologue: ['test \"$SLURM_JOB_ID\" -lt 2 || exit 3']\n"
    )
    staged = site.stage("-p", "x=range(3)")
    runner = site.project.popen(
        "run", "--staged", "--executor", "dask", "--cluster", "slurm", "-j", "2",
        env=site.env(RELEASE=str(site.release), YANEX_BATCH_POLL="1"),
    )  # fmt: skip
    try:
        wait_for(lambda: len(site.batch.submitted()) >= 4, 120, "three failed jobs")
        time.sleep(4)  # four polls: no fifth job
        assert site.batch.submitted() == ["1", "2", "3", "4"]
    finally:
        site.release.touch()
    _out, err = runner.communicate(timeout=120)
    stderr = err.decode()
    assert runner.returncode == 0, stderr
    assert "3 slurm jobs in a row ended before their Dask worker joined" in stderr
    assert re.search(r"going on with the 1 slurm job \(SLURMCluster-\d+\) left", stderr), stderr
    assert [site.status(i) for i in staged] == ["completed"] * 3
    assert {run["job"] for run in site.runs()} == {"1"}


def test_pbs_takes_the_same_path(project: Project, tmp_path: Path) -> None:
    site = Site(project, tmp_path, "pbs")
    try:
        site.jobqueue_yaml("jobqueue:\n  pbs:\n    cores: 1\n    memory: 1GB\n")
        staged = site.stage("-p", "x=range(2)")
        r = site.yanex("run", "--staged", "--executor", "dask", "--cluster", "pbs", "-j", "1")
        assert r.returncode == 0, r.stderr
        assert all(site.status(i) == "completed" for i in staged)
        assert site.batch.submitted() == ["1"] and site.batch.cancelled() == ["1"]
        assert "#PBS" in site.batch.script("1")
    finally:
        site.batch.kill_all()


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--cluster", "slurm", "-j", "2"], ["--executor dask"]),
        (["--executor", "dask", "--cluster", "slurm"], ["needs -j N"]),
        (["--executor", "dask", "--cluster", "slurm", "-j", "2", "--scheduler", "tcp://x:1"],
         ["give one"]),
        (["--executor", "dask", "-j", "2", "--cluster-option", "walltime=1"], ["needs --cluster"]),
        (["--executor", "dask", "--cluster", "slurm", "-j", "2", "--cluster-option", "walltime"],
         ["not KEY=VALUE"]),
        (["--executor", "dask", "--cluster", "nope", "-j", "2"], ["'nope' is not one of"]),
        (["--executor", "dask", "--cluster", "slurm", "-j", "2", "--cluster-option", "wall=1"],
         ["has no such option", "Did you mean walltime"]),
    ],
)  # fmt: skip
def test_bad_cluster_options_are_refused_and_nothing_runs(
    site: Site, args: list[str], needles: list[str]
) -> None:
    site.jobqueue_yaml(SMALL_JOBS)
    staged = site.stage("-p", "x=range(2)")
    r = site.yanex("run", "--staged", *args)
    assert_usage_error(r, *needles)
    assert site.batch.calls() == []  # no job submitted
    assert all(site.status(i) == "staged" for i in staged)


def test_a_cluster_without_cores_or_memory_is_an_error(site: Site) -> None:
    site.jobqueue_yaml("jobqueue:\n  slurm:\n    walltime: '01:00:00'\n")
    staged = site.stage("-p", "x=range(2)")
    r = site.yanex("run", "--staged", "--executor", "dask", "--cluster", "slurm", "-j", "2")
    assert_usage_error(r, "cannot build the slurm cluster", "jobqueue.yaml", "--cluster-option")
    assert site.batch.calls() == []
    assert all(site.status(i) == "staged" for i in staged)


def test_a_submission_the_batch_system_refuses_is_an_error(site: Site) -> None:
    site.jobqueue_yaml(SMALL_JOBS)
    refusing = site.batch.bin / "sbatch"
    refusing.write_text(
        "#!/bin/sh\necho 'sbatch: error: invalid partition specified: nope' >&2\nexit 1\n"
    )
    staged = site.stage("-p", "x=range(2)")
    r = site.yanex(
        "run", "--staged", "--executor", "dask", "--cluster", "slurm", "-j", "2",
        "--cluster-option", "queue=nope",
    )  # fmt: skip
    assert_usage_error(r, "the slurm job could not be submitted", "invalid partition specified")
    assert all(site.status(i) == "staged" for i in staged)


def test_nothing_staged_submits_no_job(site: Site) -> None:
    site.jobqueue_yaml(SMALL_JOBS)
    r = site.yanex("run", "--staged", "--executor", "dask", "--cluster", "slurm", "-j", "2")
    assert r.returncode == 0, r.stderr
    assert "nothing is staged" in r.stderr
    assert site.batch.calls() == []


def test_the_cluster_names_are_dask_jobqueues() -> None:
    import dask
    import dask_jobqueue

    from yanex.cli.run import run
    from yanex.executors.dask import JOBQUEUE_CLUSTERS

    for kind, cls in JOBQUEUE_CLUSTERS.items():
        assert dask.config.get(f"jobqueue.{kind}") is not None
        assert hasattr(dask_jobqueue, cls)
    option = next(param for param in run.params if param.name == "cluster")
    assert list(option.type.choices) == list(JOBQUEUE_CLUSTERS)  # what --cluster offers


def test_multirun_runs_its_grid_on_a_cluster_built_for_it(site: Site) -> None:
    site.jobqueue_yaml(SMALL_JOBS)
    r = site.yanex(
        "run", "job.py", "x=1,2", "-m", "--executor", "dask", "--cluster", "slurm", "-j", "4"
    )
    assert r.returncode == 0, r.stderr
    assert "2 completed" in r.stderr
    assert len(site.batch.submitted()) == 2  # two members: two one-core jobs, not four
    assert sorted(run["x"] for run in site.runs()) == [1, 2]
    wait_for(lambda: not site.batch.live(), 30, "every job ended")


def test_ctrl_c_cancels_what_runs_leaves_the_rest_staged_and_every_job(site: Site) -> None:
    import signal

    site.jobqueue_yaml(SMALL_JOBS)
    staged = site.stage("-p", "x=range(2)")
    runner = site.project.popen(
        "run", "--staged", "--executor", "dask", "--cluster", "slurm", "-j", "1",
        env=site.env(RELEASE=str(site.release)),
    )  # fmt: skip
    wait_for(lambda: site.runs(), 120, "a member runs")
    runner.send_signal(signal.SIGINT)
    _, err = runner.communicate(timeout=120)
    assert runner.returncode == 130, err.decode()
    assert b"Traceback" not in err
    assert sorted(site.status(i) for i in staged) == ["cancelled", "staged"]
    assert site.batch.cancelled() == site.batch.submitted() == ["1"]
    wait_for(lambda: not site.batch.live(), 30, "the job ended")
