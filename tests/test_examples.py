"""The README's quick start, run as written, in a fresh repository holding the examples."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Project, metadata, results, run_python

pytestmark = pytest.mark.slow  # the whole module: the full suite, not the edit loop's

ROOT = Path(__file__).resolve().parent.parent


def quick_start_commands() -> list[list[str]]:
    """The commands of the README's quick start, as a user types them."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = [part.split("```", 1)[0] for part in section.split("```bash\n")[1:]]
    lines = [line for block in blocks for line in block.splitlines() if line.strip()]
    return [shlex.split(line, comments=True) for line in lines]


def copy_examples(project: Project) -> None:
    shutil.copytree(ROOT / "examples", project.path / "examples")
    shutil.copytree(ROOT / "conf", project.path / "conf")
    project.commit("examples")


def test_readme_quick_start_runs(project: Project) -> None:
    copy_examples(project)
    commands = quick_start_commands()
    assert [c[:2] for c in commands] == [
        ["yanex", "run"],
        ["yanex", "run"],
        ["python", "examples/kfold.py"],
        ["yanex", "list"],
        ["yanex", "show"],
        ["yanex", "compare"],
    ]
    run, dry_run, kfold, list_cmd, show_cmd, compare_cmd = commands

    r = project.yanex(*run[1:])
    assert r.returncode == 0, r.stderr
    assert re.search(r"final val_loss \d", r.stdout)
    folder = project.only_experiment()
    meta = metadata(folder)
    assert meta["status"] == "completed" and meta["git"]["dirty"] is False
    assert meta["hydra"]["choices"] == {"model": "poly", "optimizer": "sgd"}
    params = json.loads((folder / "params.json").read_text())
    assert params["optimizer"]["lr"] == 0.05 and params["model"]["degree"] == 2
    lines = results(folder)
    assert len(lines) == params["training"]["epochs"]
    assert lines[-1]["results"]["loss"] < lines[0]["results"]["loss"]  # it learns
    summary = json.loads((folder / "artifacts" / "summary.json").read_text())
    assert summary["final_val_loss"] == lines[-1]["results"]["val_loss"]
    assert (folder / "artifacts" / "weights.npy").exists()

    r = project.yanex(*dry_run[1:])
    assert r.returncode == 0, r.stderr
    assert "name: momentum" in r.stdout and "epochs: 5" in r.stdout
    assert len(project.experiments()) == 1  # the dry run created nothing

    r = run_python(
        "import runpy, sys; sys.argv = sys.argv[1:]; "
        "runpy.run_path(sys.argv[0], run_name='__main__')",
        cwd=project.path,
        env=project.env(),
        args=kfold[1:],
    )
    assert r.returncode == 0, r.stderr
    assert "3/3 folds completed" in r.stdout
    assert len(project.experiments()) == 4

    r = project.yanex(*list_cmd[1:])
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) == 1 + 4 and "first" in r.stdout
    assert "val_loss" in r.stdout.splitlines()[0]
    r = project.yanex(*show_cmd[1:])
    assert r.returncode == 0, r.stderr
    config, choices = r.stdout.split("\nconfig\n")[1].split("\nhydra choices\n")
    assert f"experiment {folder.name}" in r.stdout and "    degree: 2" in config
    assert sorted(choices.splitlines()[:2]) == ["  model: poly", "  optimizer: sgd"]
    r = project.yanex(*compare_cmd[1:])
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0].split()[:3] == ["ID", "NAME", "STATUS"]
    assert folder.name in r.stdout


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
    multirun_cmd, stage_cmd, run_cmd = readme_block_after("### Sweeps and staging")
    r = project.yanex(*multirun_cmd[1:])
    assert r.returncode == 0, r.stderr
    assert "6 completed, 0 failed" in r.stderr
    r = project.yanex(*stage_cmd[1:])
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.split()) == 6
    r = project.yanex(*run_cmd[1:])
    assert r.returncode == 0, r.stderr
    done = [metadata(folder) for folder in project.experiments()]
    assert sorted(m["status"] for m in done) == ["completed"] * 12
    assert {m["sweep_values"]["optimizer.lr"] for m in done} == {0.001, 0.01, 0.1}
    assert {m["sweep_values"]["model"] for m in done} == {"linear", "poly"}


def test_readme_hydra_app_example_runs(project: Project) -> None:
    """The example @hydra.main app: as Hydra runs it, then run, staged and swept by yanex."""
    copy_examples(project)
    plain, run, stage, staged, swept = readme_block_after("### `@hydra.main` apps")
    r = run_python(
        "import runpy, sys; sys.argv = sys.argv[1:]; "
        "runpy.run_path(sys.argv[0], run_name='__main__')",
        cwd=project.path,
        env=project.env(),
        args=plain[1:],
    )
    assert r.returncode == 0, r.stderr
    assert re.search(r"quadratic: loss \d", r.stdout)
    assert project.store_entries() == []

    r = project.yanex(*run[1:])
    assert r.returncode == 0, r.stderr
    (folder,) = project.experiments()
    meta = metadata(folder)
    assert meta["hydra"]["choices"] == {"model": "quadratic", "optimizer": "sgd"}
    assert meta["hydra"]["app_config_matches"] is True
    params = json.loads((folder / "params.json").read_text())
    assert params["model"]["degree"] == 2 and params["optimizer"]["lr"] == 0.05
    lines = results(folder)
    assert len(lines) == params["training"]["epochs"]
    assert lines[-1]["results"]["loss"] < lines[0]["results"]["loss"]  # it learns
    assert (folder / "hydra" / ".hydra" / "config.yaml").is_file()

    assert project.yanex(*stage[1:]).returncode == 0
    r = project.yanex(*staged[1:])
    assert r.returncode == 0 and "1 completed" in r.stderr, r.stderr
    r = project.yanex(*swept[1:])
    assert r.returncode == 0 and "4 completed, 0 failed" in r.stderr, r.stderr
    metas = [metadata(f) for f in project.experiments()]
    assert len(metas) == 6 and {m["status"] for m in metas} == {"completed"}
    assert all(m["hydra"]["app_config_matches"] for m in metas)
    assert {m["hydra"]["choices"]["optimizer"] for m in metas} == {"sgd", "momentum"}


def test_sweep_script_example_runs(project: Project) -> None:
    copy_examples(project)
    env = project.env(PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    r = subprocess.run(
        ["bash", "examples/sweep.sh"],
        cwd=project.path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    done = [metadata(folder) for folder in project.experiments()]
    assert len(done) == 6 and {m["status"] for m in done} == {"completed"}
    assert {m["tags"][0] for m in done} == {"sweep-example"}


def test_grid_search_example_runs_two_at_a_time(project: Project) -> None:
    copy_examples(project)
    r = run_python(
        "import runpy, sys; sys.argv = ['examples/grid_search.py', '--jobs', '2']; "
        "runpy.run_path(sys.argv[0], run_name='__main__')",
        cwd=project.path,
        env=project.env(),
    )
    assert r.returncode == 0, r.stderr
    done = [metadata(folder) for folder in project.experiments()]
    assert len(done) == 6 and {m["status"] for m in done} == {"completed"}
    best_line = r.stdout.strip().splitlines()[-1]
    best = min(
        done,
        key=lambda m: results(project.home / "experiments" / m["id"])[-1]["results"]["val_loss"],
    )
    assert best_line.startswith(f"best: {best['id']} ")
