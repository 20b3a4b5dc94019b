"""`yanex.launch` sweeps: Ctrl-C stops the whole sweep, and each member runs (and records)
the code there is, refused when it changed, as `run --staged` refuses it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap

import pytest
from conftest import Project, metadata

SLOW = """
import time, yanex
print("member", yanex.get_param("x"), "ready", flush=True)
time.sleep(30)
"""

CALLER = """
import json, sys, yanex
try:
    found = yanex.launch({"x": "list(1, 2, 3)"}, "slow.py")
    print(json.dumps({"finished": len(found)}))
except KeyboardInterrupt:
    print(json.dumps({"interrupted": True}), flush=True)
"""


def test_ctrl_c_stops_the_whole_sweep(project: Project) -> None:
    project.write("slow.py", SLOW)
    project.commit()
    caller = subprocess.Popen(
        [sys.executable, "-c", CALLER],
        cwd=project.path,
        env=project.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    assert caller.stdout is not None
    assert caller.stdout.readline() == b"member 1 ready\n"
    caller.send_signal(signal.SIGINT)
    out, err = caller.communicate(timeout=60)
    assert json.loads(out.decode().splitlines()[-1]) == {"interrupted": True}, err
    (folder,) = project.experiments()  # the other members were never made
    meta = metadata(folder)
    assert meta["status"] == "cancelled" and meta["error"] == "cancelled by SIGINT"


EDITS_ITSELF = """
import yanex
x = yanex.get_param("x")
if x == 1:
    with open("model.py", "a") as f:
        f.write("# edited while the sweep ran\\n")
print("member", x)
"""


def launch_code(ignore_dirty: bool) -> str:
    return textwrap.dedent(
        f"""
        import json, yanex
        try:
            found = yanex.launch({{"x": "list(1, 2, 3)"}}, "job.py", ignore_dirty={ignore_dirty})
            print(json.dumps([[r.status, r.name] for r in found]))
        except yanex.YanexError as exc:
            print(json.dumps({{"error": exc.format_message(), "ran": len(exc.results)}}))
        """
    )


@pytest.mark.slow
def test_code_edited_between_members_stops_the_sweep(project: Project) -> None:
    project.write("model.py", "FACTOR = 1\n")
    project.write("job.py", EDITS_ITSELF)
    project.commit()
    r = subprocess.run(
        [sys.executable, "-c", launch_code(False)],
        cwd=project.path,
        env=project.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    outcome = json.loads(r.stdout.splitlines()[-1])
    assert outcome["ran"] == 1, r.stderr
    assert "the code changed while the sweep ran" in outcome["error"]
    assert "uncommitted changes" in outcome["error"] and "ignore_dirty" in outcome["error"]
    assert len(project.experiments()) == 1


@pytest.mark.slow
def test_with_ignore_dirty_each_member_records_the_code_it_ran(project: Project) -> None:
    project.write("model.py", "FACTOR = 1\n")
    project.write("job.py", EDITS_ITSELF)
    project.commit()
    r = subprocess.run(
        [sys.executable, "-c", launch_code(True)],
        cwd=project.path,
        env=project.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert json.loads(r.stdout.splitlines()[-1]) == [
        ["completed", "x=1"],
        ["completed", "x=2"],
        ["completed", "x=3"],
    ], r.stderr
    first, second, _ = (metadata(f) for f in project.experiments())
    assert first["git"]["dirty"] is False
    assert second["git"]["dirty"] is True
    patch = (project.experiments()[1] / "git.patch").read_text()
    assert "+# edited while the sweep ran" in patch
