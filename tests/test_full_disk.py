"""A disk that fills up during a run: the run's true ending is still recorded, and commands
that read the store on a full disk say so instead of failing with a traceback."""

from __future__ import annotations

import os
from pathlib import Path

from conftest import Project, metadata

# Fills the disk the store is on, and leaves it full.
FILLER = """
import os, yanex
fd = os.open(os.path.join(os.environ["YANEX_HOME"], "filler"), os.O_WRONLY | os.O_CREAT)
try:
    while True:
        os.write(fd, b"\\0" * 65536)
except OSError:
    pass
print("the disk is full", flush=True)
"""


def fill(path: Path) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, bytes(65536))
    except OSError:
        pass
    finally:
        os.close(fd)


def test_the_true_ending_is_recorded_on_a_disk_the_script_filled(
    project: Project, small_disk: Path
) -> None:
    project.write("fill.py", FILLER)
    project.commit()
    on_disk = Project(project.path, small_disk)
    r = on_disk.yanex("run", "fill.py")
    assert r.returncode == 0, r.stderr
    folder = on_disk.only_experiment()
    meta = metadata(folder)
    assert meta["status"] == "completed" and meta["exit_code"] == 0
    assert "cannot record" not in r.stderr and "Traceback" not in r.stderr
    assert not (folder / ".reserve").exists()  # the room kept for the ending is given back


def test_reading_the_store_on_a_full_disk_is_a_clear_error(
    project: Project, small_disk: Path
) -> None:
    project.write("fill.py", FILLER)
    project.commit()
    on_disk = Project(project.path, small_disk)
    assert on_disk.yanex("run", "fill.py").returncode == 0
    fill(small_disk / "more-filler")  # the room the run gave back, taken too
    r = on_disk.yanex("list")  # the index cannot be written
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.startswith("Error: ") and "disk" in r.stderr, r.stderr
    (small_disk / "filler").unlink()
    (small_disk / "more-filler").unlink()
    r = on_disk.yanex("list")
    assert r.returncode == 0 and "completed" in r.stdout
