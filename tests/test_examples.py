"""The README's quick start, run as written, in a fresh repository holding the examples."""

from __future__ import annotations

import json
import re
import shlex
import shutil
from pathlib import Path

from conftest import Project, metadata, results, run_python

ROOT = Path(__file__).resolve().parent.parent


def quick_start_commands() -> list[list[str]]:
    """The `yanex run ...` lines of the README's quick start."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return [line.split()[1:] for line in section.splitlines() if line.startswith("yanex run ")]


def copy_examples(project: Project) -> None:
    shutil.copytree(ROOT / "examples", project.path / "examples")
    shutil.copytree(ROOT / "conf", project.path / "conf")
    project.commit("examples")


def test_readme_quick_start_runs(project: Project) -> None:
    copy_examples(project)
    commands = quick_start_commands()
    assert commands, "the README has a quick start with `yanex run` lines"
    for args in commands:
        r = project.yanex(*args)
        assert r.returncode == 0, (args, r.stderr)
        if "--dry-run" in args:
            assert "training:\n  epochs: 5\n" in r.stdout
        else:
            assert re.search(r"final loss \d", r.stdout)
    folder = project.only_experiment()  # the dry run created nothing
    meta = metadata(folder)
    assert meta["status"] == "completed" and meta["git"]["dirty"] is False
    params = json.loads((folder / "params.json").read_text())
    lines = results(folder)
    assert len(lines) == params["training"]["epochs"]
    assert lines[-1]["results"]["loss"] < lines[0]["results"]["loss"]  # it learns
    summary = json.loads((folder / "artifacts" / "summary.json").read_text())
    assert summary["final_loss"] == lines[-1]["results"]["loss"]
    assert (folder / "artifacts" / "weights.npy").exists()


def test_example_runs_standalone_too(project: Project) -> None:
    copy_examples(project)
    r = run_python(
        "import runpy; runpy.run_path('examples/train.py', run_name='__main__')",
        cwd=project.path,
        env=project.env(YANEX_PARAM_training__epochs="3"),
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("epoch ") == 3
    assert project.store_entries() == []


def readme_block_after(heading: str) -> list[list[str]]:
    """The commands of the first bash block under ``heading`` (continuations joined,
    comments dropped)."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split(heading, 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    lines = block.replace("\\\n", " ").splitlines()
    return [shlex.split(line.split("#", 1)[0]) for line in lines if line.strip()]


def test_readme_sweep_example_runs(project: Project) -> None:
    copy_examples(project)
    stage_cmd, run_cmd = readme_block_after("### Sweeps and staging")
    r = project.yanex(*stage_cmd[1:])
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.split()) == 6
    r = project.yanex(*run_cmd[1:])
    assert r.returncode == 0, r.stderr
    done = [metadata(folder) for folder in project.experiments()]
    assert sorted(m["status"] for m in done) == ["completed"] * 6
    assert {m["sweep_values"]["model.lr"] for m in done} == {0.001, 0.01, 0.1}
