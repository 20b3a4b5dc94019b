"""Hydra's own app features work under yanex as under Hydra: apps in the shapes of Hydra's
examples (tutorials/basic/running_your_hydra_app/5_basic_sweep, advanced/config_search_path,
structured configs in ConfigStore), each run by Hydra itself and by yanex, compared."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import Project, metadata

pytestmark = pytest.mark.slow  # real apps, each run by Hydra and by yanex


def under_hydra(project: Project, script: str, *args: str, cwd: Path | None = None) -> str:
    """Run the app as Hydra runs it (``python app.py ARGS``), its output in a tmp folder."""
    out = project.path.parent / "hydra-outputs"
    proc = subprocess.run(
        [sys.executable, script, *args, f"hydra.run.dir={out}/run", f"hydra.sweep.dir={out}/m"],
        cwd=cwd or project.path,
        env=project.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def printed(folder: Path, prefix: str) -> Any:
    """What the app printed after ``prefix`` in an experiment's stdout."""
    for line in (folder / "stdout.txt").read_text().splitlines():
        if line.startswith(prefix):
            return json.loads(line[len(prefix) :])
    raise AssertionError(f"no {prefix!r} line in {folder / 'stdout.txt'}")


# --- advanced/config_search_path: pkg:// names a package next to the app ----------------------

SEARCH_APP = """
import json

from omegaconf import DictConfig, OmegaConf

import hydra


@hydra.main(version_base=None, config_path="conf", config_name="config")
def my_app(cfg: DictConfig) -> None:
    print("CFG " + json.dumps(OmegaConf.to_container(cfg)))


if __name__ == "__main__":
    my_app()
"""


def test_a_search_path_package_next_to_the_app_is_found(project: Project) -> None:
    """Hydra's advanced/config_search_path: ``hydra.searchpath: [pkg://additional_conf]``,
    a package in the app's folder, found from any folder the app is started in."""
    root = "search"
    project.write(f"{root}/__init__.py", "")
    project.write(f"{root}/my_app.py", SEARCH_APP)
    project.write(
        f"{root}/conf/config.yaml",
        """
        defaults:
          - dataset: cifar10
          - _self_

        hydra:
          searchpath:
            - pkg://additional_conf
        """,
    )
    project.write(f"{root}/conf/dataset/cifar10.yaml", "name: cifar10\npath: /datasets/cifar10\n")
    project.write(f"{root}/additional_conf/__init__.py", "")
    project.write(
        f"{root}/additional_conf/dataset/imagenet.yaml",
        "name: imagenet\npath: /datasets/imagenet\n",
    )
    project.commit()
    expected = under_hydra(project, f"{root}/my_app.py", "dataset=imagenet")
    r = project.yanex("run", f"{root}/my_app.py", "dataset=imagenet")  # from the project's root
    assert r.returncode == 0, r.stderr
    folder = project.only_experiment()
    assert f"CFG {json.dumps(printed(folder, 'CFG '))}" in expected
    assert json.loads((folder / "params.json").read_text()) == {
        "dataset": {"name": "imagenet", "path": "/datasets/imagenet"}
    }
    assert metadata(folder)["hydra"]["choices"] == {"dataset": "imagenet"}
    assert metadata(folder)["hydra"]["app_config_matches"] is True
    # Nothing of the app's is left imported in a program that composed it (yanex.launch).
    code = (
        "import sys, yanex; "
        f"r = yanex.launch({{'dataset': 'imagenet'}}, '{root}/my_app.py'); "
        "print(r.status, 'additional_conf' in sys.modules, "
        f"any(p.endswith('/{root}') for p in sys.path))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=project.path,
        env=project.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[-3:] == ["completed", "False", "False"]
