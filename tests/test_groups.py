"""Hydra config groups (a conf/ tree) and yanex.launch, through the real CLI and Hydra."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from conftest import Project, assert_usage_error, metadata, run_python

SHOW = "import json, yanex; print(json.dumps(yanex.get_params()))\n"


def make_tree(project: Project, root: str = "conf") -> None:
    project.write(
        f"{root}/config.yaml",
        """
        defaults:
          - model: small
          - optimizer: sgd
          - _self_
        training:
          epochs: 5
          lr_scale: 1.0
        """,
    )
    project.write(f"{root}/model/small.yaml", "width: 8\ndepth: 2\n")
    project.write(f"{root}/model/large.yaml", "width: 64\ndepth: 4\n")
    project.write(f"{root}/optimizer/sgd.yaml", "name: sgd\nlr: 0.1\n")
    project.write(f"{root}/optimizer/adam.yaml", "name: adam\nlr: 0.001\n")
    project.write("show.py", SHOW)
    project.commit()


def run_show(project: Project, *args: str, **env: str) -> tuple[dict[str, Any], dict[str, Any]]:
    r = project.yanex("run", "show.py", *args, env=project.env(**env))
    assert r.returncode == 0, r.stderr
    folder = project.experiments()[-1]
    return json.loads(r.stdout), metadata(folder)


def test_the_tree_is_composed_with_its_defaults(project: Project) -> None:
    make_tree(project)
    params, meta = run_show(project)
    assert params == {
        "model": {"width": 8, "depth": 2},
        "optimizer": {"name": "sgd", "lr": 0.1},
        "training": {"epochs": 5, "lr_scale": 1.0},
    }
    assert meta["hydra"]["choices"] == {"model": "small", "optimizer": "sgd"}
    assert meta["hydra"]["config_dir"] == str(project.path / "conf")


@pytest.mark.slow
def test_overrides_select_change_add_remove_and_place(project: Project) -> None:
    make_tree(project)
    params, meta = run_show(
        project,
        "-p",
        "model=large",
        "-p",
        "model.width=128",
        "-p",
        "+seed=7",
        "-p",
        "~training.lr_scale",
        "-p",
        "+optimizer@second_opt=adam",
        "-p",
        "+title='Hello, world'",
    )
    assert params["model"] == {"width": 128, "depth": 4}
    assert params["seed"] == 7 and params["title"] == "Hello, world"
    assert params["training"] == {"epochs": 5}
    assert params["second_opt"] == {"name": "adam", "lr": 0.001}
    assert meta["hydra"]["choices"]["model"] == "large"
    assert meta["hydra"]["overrides"][:2] == ["model=large", "model.width=128"]
    assert meta["overrides"][0] == "model=large"  # as given


def test_overrides_from_the_environment(project: Project) -> None:
    make_tree(project)
    params, meta = run_show(project, YANEX_PARAM_model="large", YANEX_PARAM_optimizer__lr="0.5")
    assert params["model"]["width"] == 64 and params["optimizer"]["lr"] == 0.5
    assert meta["hydra"]["choices"]["model"] == "large"


def test_hydra_files_are_in_the_experiment_folder(project: Project) -> None:
    make_tree(project)
    run_show(project, "-p", "optimizer=adam", "-p", "training.epochs=9")
    folder = project.only_experiment()
    hydra_config = (folder / ".hydra" / "config.yaml").read_text()
    assert hydra_config == (folder / "config.yaml").read_text() and "name: adam" in hydra_config
    assert (folder / ".hydra" / "overrides.yaml").read_text() == (
        "- optimizer=adam\n- training.epochs=9\n"
    )
    from omegaconf import OmegaConf  # Hydra tooling reads them back

    assert OmegaConf.load(folder / ".hydra" / "config.yaml").training.epochs == 9


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["-p", "model=huge"],
            "config group 'model' has no option 'huge'; available: large, small",
        ),
        (["-p", "missing_key=1"], "+missing_key=1"),
        (["-p", "model.nothere=1"], "Could not override 'model.nothere'"),
        (["-p", "model=[1"], "cannot be parsed"),
        (["--config-name", "other"], "other.yaml"),
        (["--config-dir", "nowhere"], "nowhere"),
        (["-p", "lr=list(1, 2)", "--stage"], "+lr=list(1, 2)"),
        (
            ["-p", "+name=run-${list:a,b}", "-p", "model=list(small, large)", "--stage"],
            "'name': a sweep must be the whole value",
        ),
    ],
)
def test_bad_overrides_exit_2_and_create_nothing(
    project: Project, args: list[str], message: str
) -> None:
    make_tree(project)
    r = project.yanex("run", "show.py", *args)
    assert_usage_error(r, message)
    assert project.store_entries() == []


def test_another_tree_and_primary_config(project: Project) -> None:
    make_tree(project, root="configs")
    project.write("configs/fast.yaml", "defaults:\n  - model: large\n  - _self_\nfast: true\n")
    project.commit()
    params, meta = run_show(project, "--config-dir", "configs", "--config-name", "fast")
    assert params == {"model": {"width": 64, "depth": 4}, "fast": True}
    assert meta["hydra"]["config_name"] == "fast"


@pytest.mark.slow
def test_a_sweep_over_a_group_stages_one_experiment_per_option(project: Project) -> None:
    make_tree(project)
    r = project.yanex(
        "run",
        "show.py",
        "-p",
        "model=list(small, large)",
        "-p",
        "optimizer.lr=list(0.1, 0.2)",
        "--stage",
    )
    assert r.returncode == 0, r.stderr
    metas = [metadata(project.home / "experiments" / i) for i in r.stdout.split()]
    assert [m["sweep_values"] for m in metas] == [
        {"model": "small", "optimizer.lr": 0.1},
        {"model": "small", "optimizer.lr": 0.2},
        {"model": "large", "optimizer.lr": 0.1},
        {"model": "large", "optimizer.lr": 0.2},
    ]
    assert [m["hydra"]["choices"]["model"] for m in metas] == ["small", "small", "large", "large"]
    widths = [
        json.loads((project.home / "experiments" / m["id"] / "params.json").read_text())["model"]
        for m in metas
    ]
    assert [w["width"] for w in widths] == [8, 8, 64, 64]


@pytest.mark.slow
def test_hydra_is_not_imported_without_a_conf_folder(project: Project) -> None:
    project.write("config.yaml", "a: 1\n")
    project.write("show.py", SHOW)
    project.commit()
    code = textwrap.dedent(
        """
        import sys
        from pathlib import Path
        from yanex.launcher import Launcher, RunRequest
        Launcher().prepare(RunRequest(script=Path("show.py")))
        print("hydra" in sys.modules)
        """
    )
    r = run_python(code, cwd=project.path, env=project.env())
    assert r.stdout.split() == ["False"], r.stderr
    make_tree(project)  # with a conf/ tree, Hydra composes it
    r = run_python(code, cwd=project.path, env=project.env())
    assert r.stdout.split() == ["True"], r.stderr


# --- yanex.launch ------------------------------------------------------------------------------

LOGS = """
import yanex
yanex.log_results({"width": yanex.get_param("model.width"), "lr": yanex.get_param("optimizer.lr")})
"""


def launch(project: Project, code: str) -> Any:
    script = textwrap.dedent(code)
    r = run_python(script, cwd=project.path, env=project.env())
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.splitlines()[-1])


@pytest.mark.slow
def test_launch_runs_like_the_cli(project: Project) -> None:
    make_tree(project)
    project.write("logs.py", LOGS)
    project.commit()
    got = launch(
        project,
        """
        import json, yanex
        r = yanex.launch({"model": "large", "optimizer": {"lr": 0.5}}, "logs.py",
                         name="from-python", tags=["api"])
        print(json.dumps([r.id, r.status, r.exit_code, str(r.dir), r.results]))
        """,
    )
    experiment_id, status, exit_code, folder, logged = got
    assert (status, exit_code) == ("completed", 0)
    assert Path(folder) == project.home / "experiments" / experiment_id
    assert logged[0]["results"] == {"width": 64, "lr": 0.5}
    meta = metadata(Path(folder))
    assert meta["name"] == "from-python" and meta["tags"] == ["api"]
    assert meta["hydra"]["choices"]["model"] == "large" and meta["git"]["dirty"] is False


@pytest.mark.slow
def test_launch_with_sweeps_returns_a_list_and_can_stage(project: Project) -> None:
    make_tree(project)
    project.write("logs.py", LOGS)
    project.commit()
    got = launch(
        project,
        """
        import json, yanex
        from omegaconf import OmegaConf
        cfg = OmegaConf.create({"optimizer": {"lr": "list(0.1, 0.2)"}})
        ran = yanex.launch(cfg, "logs.py")
        staged = yanex.launch({"model": "list(small, large)"}, "logs.py", stage=True)
        print(json.dumps([[r.status for r in ran], [r.results[0]["results"] for r in ran],
                          [r.status for r in staged]]))
        """,
    )
    assert got == [
        ["completed", "completed"],
        [{"width": 8, "lr": 0.1}, {"width": 8, "lr": 0.2}],
        ["staged", "staged"],
    ]


def test_launch_errors_raise_yanex_error(project: Project) -> None:
    make_tree(project)
    got = launch(
        project,
        """
        import json, yanex
        out = []
        for cfg in ({"model": "huge"}, {"x": "range(0, 10, 0)"}):
            try:
                yanex.launch(cfg, "show.py")
            except yanex.YanexError as exc:
                out.append(str(exc))
        print(json.dumps(out))
        """,
    )
    assert "no option 'huge'" in got[0] and "step cannot be 0" in got[1]
    assert project.store_entries() == []


@pytest.mark.slow
def test_launch_a_failing_script(project: Project) -> None:
    make_tree(project)
    project.write("fail.py", "import sys; sys.exit(4)\n")
    project.commit()
    got = launch(
        project,
        """
        import json, yanex
        r = yanex.launch({}, "fail.py")
        print(json.dumps([r.status, r.exit_code]))
        """,
    )
    assert got == ["failed", 4]


@pytest.mark.slow
def test_kfold_example_runs(project: Project) -> None:
    root = Path(__file__).resolve().parent.parent
    import shutil

    shutil.copytree(root / "examples", project.path / "examples")
    shutil.copytree(root / "conf", project.path / "conf")
    project.commit("examples")
    r = subprocess.run(
        [sys.executable, "examples/kfold.py", "--folds", "3", "--model", "poly"],
        cwd=project.path,
        env=project.env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert "3/3 folds completed" in r.stdout and "mean val_loss" in r.stdout
    metas = [metadata(folder) for folder in project.experiments()]
    assert sorted(m["name"] for m in metas) == [f"kfold-poly-data.fold={i}" for i in range(3)]
    assert {m["sweep"] for m in metas} != {None} and len({m["sweep"] for m in metas}) == 1
    assert {m["hydra"]["choices"]["model"] for m in metas} == {"poly"}
