"""`yanex.launch(..., jobs=N, executor=...)`: a grid through the same executors as `yanex run
--staged`, its results in grid order, Ctrl-C cancelling what runs."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest
from conftest import Project, metadata

JOB = """
import sys, time, yanex
x = yanex.get_param("x")
time.sleep(yanex.get_param("sleep", 0))
yanex.log_results({"x": x})
if x == 3:
    print("three is bad", file=sys.stderr)
    sys.exit(4)
"""

LAUNCH = """
import json, yanex
found = yanex.launch({{"x": "range(1, 5)", "sleep": {sleep}}}, "job.py", jobs=2{extra})
print(json.dumps([[r.name, r.status, r.exit_code, r.error, r.duration is not None,
                   r.results[-1]["results"]["x"] if r.results else None] for r in found]))
"""


def launch(project: Project, sleep: float = 0.2, extra: str = "") -> list:
    r = subprocess.run(
        [sys.executable, "-c", LAUNCH.format(sleep=sleep, extra=extra)],
        cwd=project.path, env=project.env(), capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.splitlines()[-1])


@pytest.mark.slow
def test_a_grid_runs_two_at_a_time_and_comes_back_in_grid_order(project: Project) -> None:
    project.write("job.py", JOB)
    project.commit()
    found = launch(project)
    assert [row[0] for row in found] == ["x=1", "x=2", "x=3", "x=4"]
    assert [row[1] for row in found] == ["completed", "completed", "failed", "completed"]
    assert found[2][2] == 4 and "three is bad" in found[2][3]
    assert all(row[4] for row in found) and [row[5] for row in found] == [1, 2, 3, 4]


@pytest.mark.slow
def test_a_grid_on_a_local_dask_cluster(project: Project) -> None:
    pytest.importorskip("distributed")
    project.write("job.py", JOB)
    project.commit()
    found = launch(project, extra=', executor="dask"')
    assert [row[1] for row in found] == ["completed", "completed", "failed", "completed"]


CALLER = """
import json, yanex
try:
    yanex.launch({"x": "range(1, 7)", "sleep": 30}, "job.py", jobs=2)
except KeyboardInterrupt:
    print(json.dumps("interrupted"), flush=True)
"""


@pytest.mark.slow
def test_ctrl_c_cancels_what_runs_and_leaves_the_rest_staged(project: Project) -> None:
    project.write("job.py", JOB)
    project.commit()
    caller = subprocess.Popen(
        [sys.executable, "-c", CALLER], cwd=project.path, env=project.env(),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    import time

    def running() -> int:
        found = [f / "metadata.json" for f in project.experiments()]
        return sum(json.loads(p.read_text())["status"] == "running" for p in found if p.exists())

    deadline = time.monotonic() + 60
    while running() < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    caller.send_signal(signal.SIGINT)
    out, err = caller.communicate(timeout=60)
    assert json.loads(out.decode().splitlines()[-1]) == "interrupted", err
    statuses = sorted(metadata(f)["status"] for f in project.experiments())
    assert statuses == ["cancelled"] * 2 + ["staged"] * 4
