"""`yanex rerun` of a ``@hydra.main`` app runs with exactly the recorded config, with or
without ``--worktree``, whatever the project's tree holds today; when that cannot be, the
rerun stops before it starts and says why."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import Project, assert_usage_error, metadata

pytestmark = pytest.mark.slow  # real apps, reruns in worktrees

# A model whose score depends on every value of its config (deterministic).
APP = """
import json

import hydra
from omegaconf import DictConfig, OmegaConf

import yanex


@hydra.main(version_base=None, config_path="conf", config_name="config")
def main(cfg: DictConfig) -> None:
    seen = OmegaConf.to_container(cfg, resolve=True)
    score = round(1 - cfg.data.noise / 2 + cfg.train.epochs / 1000 + cfg.model.width / 1e4, 4)
    print("CFG " + json.dumps(seen))
    yanex.log_results({"val_acc": score})


if __name__ == "__main__":
    main()
"""


def write_app(project: Project) -> None:
    project.write("app.py", APP)
    project.write(
        "conf/config.yaml",
        """
        defaults:
          - model: small
          - _self_
        data:
          noise: 0.25
        train:
          epochs: 40
        """,
    )
    project.write("conf/model/small.yaml", "width: 8\n")
    project.write("conf/model/large.yaml", "width: 64\n")
    project.commit()


def outcome(folder: Path) -> tuple[Any, Any, float]:
    """What the app composed, what was recorded, and the score it logged."""
    line = next(x for x in (folder / "stdout.txt").read_text().splitlines() if x[:4] == "CFG ")
    last = json.loads((folder / "results.jsonl").read_text().splitlines()[-1])
    params = json.loads((folder / "params.json").read_text())
    return json.loads(line[4:]), params, last["results"]["val_acc"]


def rerun(project: Project, *args: str) -> Path:
    r = project.yanex("rerun", *args)
    assert r.returncode == 0, r.stderr
    assert "differs from the one yanex composed" not in r.stderr
    folder = project.experiments()[-1]
    assert metadata(folder)["hydra"]["app_config_matches"] is True
    return folder


def test_a_rerun_runs_the_recorded_config_after_the_tree_changed(project: Project) -> None:
    """The issue's case: the best run, then a committed change of the tree (other values, a
    key added, another default option); the rerun, plain and --worktree, gives the same."""
    write_app(project)
    r = project.yanex("run", "app.py", "train.epochs=50", "-n", "best")
    assert r.returncode == 0, r.stderr
    original = project.only_experiment()
    cfg, params, score = outcome(original)
    assert (
        cfg
        == params
        == {
            "model": {"width": 8},
            "data": {"noise": 0.25},
            "train": {"epochs": 50},
        }
    )
    project.write(
        "conf/config.yaml",
        """
        defaults:
          - model: large
          - _self_
        data:
          noise: 0.35
          extra: 1
        train:
          epochs: 30
        """,
    )
    project.commit("change the tree")
    for how in ([], ["--worktree"]):
        folder = rerun(project, "best", *how)
        assert outcome(folder) == (params, params, score), how
        assert metadata(folder)["rerun_of"] == original.name
    # The plain rerun said what it gave back, and records it as overrides that replay.
    plain = metadata(project.experiments()[-2])
    assert plain["overrides"][0] == "train.epochs=50"
    assert {"model=small", "++data.noise=0.25", "~data.extra"} <= set(plain["overrides"])
    assert any("given back as recorded" in w for w in plain["warnings"])
    # A new value on top of the recorded config.
    folder = rerun(project, "best", "-p", "data.noise=0.5")
    assert outcome(folder)[1] == {**params, "data": {"noise": 0.5}}


def test_a_rerun_gives_back_values_of_the_clock_and_the_environment(project: Project) -> None:
    write_app(project)
    stamp = "+t=${now:%H:%M:%S.%f}"
    r = project.yanex("run", "app.py", stamp, "+user=${oc.env:DBUSER}", "-n", "x", DBUSER="a")
    assert r.returncode == 0, r.stderr
    _, params, _ = outcome(project.only_experiment())
    assert params["user"] == "a"
    for how in ([], ["--worktree"]):
        folder = project.experiments()[-1]
        r = project.yanex("rerun", "x", *how, DBUSER="b")
        assert r.returncode == 0, r.stderr
        folder = project.experiments()[-1]
        cfg, again, _ = outcome(folder)
        assert cfg == again == params, how
        assert metadata(folder)["hydra"]["app_config_matches"] is True
        assert "differs from the one yanex composed" not in r.stderr


def test_a_rerun_that_cannot_be_composed_stops_before_it_starts(project: Project) -> None:
    write_app(project)
    r = project.yanex("run", "app.py", "model=large", "-n", "big")
    assert r.returncode == 0, r.stderr
    _, params, score = outcome(project.only_experiment())
    (project.path / "conf" / "model" / "large.yaml").unlink()
    project.commit("drop the large model")
    before = project.store_entries()
    r = project.yanex("rerun", "big")
    assert_usage_error(r, "cannot be composed again", "has no option 'large'", "--worktree")
    assert project.store_entries() == before
    # The recorded tree still composes it.
    folder = rerun(project, "big", "--worktree")
    assert outcome(folder) == (params, params, score)
