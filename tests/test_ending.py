"""One ending, from the child to the summary: what `yanex.launch` returns is what the launcher
recorded and what a batch counts, and a failure's reason is the script's own last error line
(a @hydra.main app's included: Hydra's advice to set HYDRA_FULL_ERROR is not a reason)."""

from __future__ import annotations

import json

import pytest
from conftest import Project, metadata, run_python

FAILS = """
import sys
print("noise", file=sys.stderr)
raise ValueError("the data is bad")
"""

HYDRA_FAILS = """
import hydra


@hydra.main(version_base=None, config_path=None)
def main(cfg) -> None:
    raise ValueError(f"bad lr {cfg.lr}")


if __name__ == "__main__":
    main()
"""

LAUNCH = """
import json, yanex
from yanex.ending import Ending
from yanex.record import Status
one = yanex.launch({"x": 1}, "fails.py")
grid = yanex.launch({"x": "list(1, 2)"}, "fails.py", jobs=1)
staged = yanex.launch({"x": 1}, "fails.py", stage=True)
print(json.dumps({
    "types": [type(r) is Ending is yanex.Result for r in [one, *grid, staged]],
    "statuses": [r.status for r in [one, *grid, staged]],
    "known": all(r.status in Status.ALL for r in [one, *grid, staged]),
    "one": [one.exit_code, one.cli_exit_code, one.reason, one.name, one.duration > 0],
    "grid": [[r.reason, r.cli_exit_code, r.name] for r in grid],
    "staged": [staged.why, staged.exit_code, staged.reason],
}))
"""


@pytest.mark.slow
def test_launch_returns_the_ending_the_launcher_recorded(project: Project) -> None:
    project.write("fails.py", FAILS)
    project.commit()
    r = run_python(LAUNCH, cwd=project.path, env=project.env())
    assert r.returncode == 0, r.stderr
    seen = json.loads(r.stdout.splitlines()[-1])
    assert seen["types"] == [True] * 4
    assert seen["statuses"] == ["failed", "failed", "failed", "staged"] and seen["known"]
    reason = "exited with code 1: ValueError: the data is bad"
    assert seen["one"] == [1, 1, reason, None, True]
    assert seen["grid"] == [[reason, 1, "x=1"], [reason, 1, "x=2"]]
    assert seen["staged"] == [None, None, None]


@pytest.mark.slow
def test_a_hydra_apps_reason_is_its_own_error_in_every_summary(project: Project) -> None:
    project.write("app.py", HYDRA_FAILS)
    project.commit()
    wanted = "exited with code 1: ValueError: bad lr"
    # A direct run.
    r = project.yanex("run", "app.py", "+lr=0.1")
    assert r.returncode == 1
    assert f"failed ({wanted} 0.1)" in r.stderr, r.stderr
    meta = metadata(project.only_experiment())
    assert "HYDRA_FULL_ERROR" not in meta["error"]
    assert meta["error"].splitlines()[-1] == "ValueError: bad lr 0.1"
    # -m: one line per failed member, with its reason.
    r = project.yanex("run", "app.py", "+lr=0.1,0.2", "-m")
    assert r.returncode == 1
    for lr in ("0.1", "0.2"):
        assert f"(lr={lr}): {wanted} {lr}\n" in r.stderr, r.stderr
    assert "0 completed, 2 failed" in r.stderr
    # --staged: the same.
    assert project.yanex("stage", "app.py", "-p", "+lr=list(0.3, 0.4)").returncode == 0
    r = project.yanex("run", "--staged")
    assert r.returncode == 1
    for lr in ("0.3", "0.4"):
        assert f"(lr={lr}): {wanted} {lr}\n" in r.stderr, r.stderr
