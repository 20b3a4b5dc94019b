"""Existing ``@hydra.main`` apps run unchanged under yanex: a real app in a tmp git repo, run
plainly, staged, swept and with -m; the config it composes is the one yanex records."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from conftest import Project, assert_usage_error, metadata, results

APP = """
import json
import os
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

import yanex

{before}


@hydra.main({decorator})
def main(cfg: DictConfig) -> None:
    seen = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    print("APP " + json.dumps(seen))
    print("RUNDIR " + HydraConfig.get().runtime.output_dir)
    print("CWD " + os.getcwd())
    yanex.log_results({{"seen": seen, "lr_param": yanex.get_param("lr")}})
    print("ID " + str(yanex.experiment_id()))


if __name__ == "__main__":
    main()
"""


def write_app(
    project: Project,
    path: str = "app.py",
    decorator: str = 'version_base=None, config_path="conf", config_name="config"',
    before: str = "",
    conf: str | None = "conf",
) -> None:
    project.write(path, APP.format(decorator=decorator, before=before))
    if conf is not None:
        root = str(Path(path).parent / conf)
        project.write(
            f"{root}/config.yaml",
            """
            defaults:
              - model: small
              - _self_
            lr: 0.1
            name: run-${model.width}
            """,
        )
        project.write(f"{root}/model/small.yaml", "width: 8\n")
        project.write(f"{root}/model/large.yaml", "width: 64\n")
    project.commit()


def app_saw(folder: Path) -> dict[str, Any]:
    """What the app printed it ran with: its config, Hydra's run dir, its cwd, the ID."""
    out = (folder / "stdout.txt").read_text().splitlines()
    lines = dict(line.split(" ", 1) for line in out if line.split(" ", 1)[0].isupper())
    return {
        "config": json.loads(lines["APP"]),
        "run_dir": lines["RUNDIR"],
        "cwd": lines["CWD"],
        "id": lines["ID"],
    }


@pytest.mark.slow
def test_an_app_runs_with_the_config_yanex_records(project: Project) -> None:
    write_app(project)
    r = project.yanex("run", "app.py", "model=large", "lr=0.5", "+seed=3")
    assert r.returncode == 0, r.stderr
    folder = project.only_experiment()
    saw = app_saw(folder)
    expected = {"model": {"width": 64}, "lr": 0.5, "name": "run-64", "seed": 3}
    assert saw["config"] == expected
    assert json.loads((folder / "params.json").read_text()) == expected
    assert (folder / "config.yaml").read_text() == (
        "model:\n  width: 64\nlr: 0.5\nname: run-64\nseed: 3\n"
    )
    # Hydra's run directory is inside the experiment folder; the cwd is unchanged (1.2+).
    assert saw["run_dir"] == str(folder / "hydra") and saw["cwd"] == str(project.path)
    assert (folder / "hydra" / ".hydra" / "config.yaml").is_file()
    meta = metadata(folder)
    assert meta["hydra"]["app"] == {
        "config_path": "conf",
        "config_name": "config",
        "version_base": "1.3",
    }
    assert meta["hydra"]["app_config_matches"] is True and "warnings" not in meta
    assert meta["hydra"]["choices"] == {"model": "large"}
    # The API works inside the app as in any script.
    assert saw["id"] == folder.name
    assert results(folder)[0]["results"] == {"seen": expected, "lr_param": 0.5}


@pytest.mark.slow
def test_an_app_is_found_from_any_folder(project: Project) -> None:
    write_app(project, path="pkg/app.py")
    for cwd, script in ((project.path, "pkg/app.py"), (project.path / "pkg", "app.py")):
        r = subprocess.run(
            [sys.executable, "-m", "yanex", "run", script, "model=large"],
            cwd=cwd,
            env=project.env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert r.returncode == 0, r.stderr
        folder = project.experiments()[-1]
        assert app_saw(folder)["config"]["model"] == {"width": 64}
        assert json.loads((folder / "params.json").read_text()) == app_saw(folder)["config"]
        assert metadata(folder)["hydra"]["config_dir"] == str(project.path / "pkg" / "conf")


@pytest.mark.slow
def test_an_app_staged_then_run(project: Project) -> None:
    write_app(project)
    r = project.yanex("stage", "app.py", "model=large", "lr=0.25")
    assert r.returncode == 0, r.stderr
    folder = project.home / "experiments" / r.stdout.strip()
    assert not (folder / "hydra").exists()  # nothing ran yet
    r = project.yanex("run", "--staged")
    assert r.returncode == 0 and "1 completed" in r.stderr, r.stderr
    assert app_saw(folder)["config"]["lr"] == 0.25
    assert metadata(folder)["hydra"]["app_config_matches"] is True


@pytest.mark.slow
@pytest.mark.parametrize("how", ["-m", "--stage"])
def test_an_app_swept_gives_each_member_its_own_overrides(project: Project, how: str) -> None:
    write_app(project)
    if how == "-m":
        r = project.yanex("run", "app.py", "model=small,large", "lr=0.1,0.2", "-m", "-j", "2")
    else:
        r = project.yanex("run", "app.py", "model=list(small, large)", "lr=range(1, 3)", "--stage")
        assert r.returncode == 0, r.stderr
        r = project.yanex("run", "--staged", "-j", "2")
    assert r.returncode == 0, r.stderr
    folders = project.experiments()
    assert len(folders) == 4
    seen = sorted(
        (app_saw(f)["config"]["model"]["width"], app_saw(f)["config"]["lr"]) for f in folders
    )
    lrs = [0.1, 0.2] if how == "-m" else [1, 2]
    assert seen == sorted((w, lr) for w in (8, 64) for lr in lrs)
    for folder in folders:
        meta = metadata(folder)
        assert meta["status"] == "completed"
        assert meta["hydra"]["app_config_matches"] is True
        saw = app_saw(folder)["config"]
        assert meta["overrides"] == [f"model={meta['sweep_values']['model']}", f"lr={saw['lr']}"]


@pytest.mark.slow
def test_an_app_rerun_composes_as_recorded(project: Project) -> None:
    write_app(project)
    r = project.yanex("run", "app.py", "model=large", "-n", "first")
    assert r.returncode == 0, r.stderr
    for change in ([], ["-p", "lr=0.7"], ["-p", "model=small"]):
        r = project.yanex("rerun", "first", *change)
        assert r.returncode == 0, r.stderr
        folder = project.experiments()[-1]
        assert app_saw(folder)["config"] == json.loads((folder / "params.json").read_text())
        assert metadata(folder)["hydra"]["app_config_matches"] is True, r.stderr
    assert app_saw(project.experiments()[-2])["config"]["lr"] == 0.7
    assert app_saw(project.experiments()[-1])["config"]["model"] == {"width": 8}


@pytest.mark.slow
def test_an_app_that_changes_its_config_at_run_time_is_recorded_as_such(project: Project) -> None:
    write_app(project, before='sys.argv.append("lr=0.9")  # an app that edits its command line')
    r = project.yanex("run", "app.py", "lr=0.5")
    assert r.returncode == 0, r.stderr
    folder = project.only_experiment()
    assert app_saw(folder)["config"]["lr"] == 0.9
    warning = "the config the @hydra.main app resolved differs from the one yanex composed at lr"
    assert warning in r.stderr
    # The record holds what the app ran with, and get_param inside the app read it.
    assert json.loads((folder / "params.json").read_text())["lr"] == 0.9
    assert "lr: 0.9" in (folder / "config.yaml").read_text()
    assert results(folder)[0]["results"]["lr_param"] == 0.9
    meta = metadata(folder)
    assert meta["hydra"]["app_config_matches"] is False
    assert meta["hydra"]["app_config_differences"] == ["lr"]
    assert any(warning in w for w in meta["warnings"])


@pytest.mark.slow
def test_a_legacy_app_composes_next_to_itself_and_changes_into_its_run_dir(
    project: Project,
) -> None:
    # No version_base: Hydra 1.1's defaults (config_path ".", hydra.job.chdir=True).
    write_app(project, path="legacy/app.py", decorator='config_name="config"', conf=None)
    project.write("legacy/config.yaml", "lr: 0.1\nwidth: 3\n")
    project.commit()
    r = project.yanex("run", "legacy/app.py", "width=4")
    assert r.returncode == 0, r.stderr
    folder = project.only_experiment()
    saw = app_saw(folder)
    assert saw["config"] == {"lr": 0.1, "width": 4}
    assert saw["cwd"] == str(folder / "hydra")  # Hydra changed into it, inside the folder
    assert metadata(folder)["hydra"]["app"]["version_base"] == "1.1"
    assert metadata(folder)["hydra"]["app_config_matches"] is True


@pytest.mark.slow
def test_an_app_without_a_config_takes_added_keys_as_hydra_does(project: Project) -> None:
    write_app(project, decorator="version_base=None", conf=None)
    r = project.yanex("run", "app.py", "+lr=0.3", "+model.width=2")
    assert r.returncode == 0, r.stderr
    assert app_saw(project.only_experiment())["config"] == {"lr": 0.3, "model": {"width": 2}}
    r = project.yanex("run", "app.py", "lr=0.3")
    assert_usage_error(r, "Could not override 'lr'", "+lr=0.3")


@pytest.mark.slow
def test_an_app_reads_a_missing_value_as_hydra_apps_do(project: Project) -> None:
    write_app(project, decorator='version_base=None, config_path="conf"', conf=None)
    project.write("conf/db/postgresql.yaml", "driver: postgresql\nuser: ???\n")
    project.commit()
    r = project.yanex("run", "app.py", "+db=postgresql")
    assert r.returncode == 1  # the app met ??? when it resolved its config, as under Hydra
    assert "MissingMandatoryValue: Missing mandatory value: user" in r.stderr
    assert "full_key: db.user" in r.stderr
    folder = project.only_experiment()
    assert (folder / "config.yaml").read_text() == "db:\n  driver: postgresql\n  user: ???\n"
    r = project.yanex("run", "app.py", "+db=postgresql", "db.user=omry")
    assert r.returncode == 0, r.stderr
    assert app_saw(project.experiments()[-1])["config"]["db"]["user"] == "omry"


@pytest.mark.slow
def test_an_app_whose_config_path_is_computed_is_refused_with_the_way_around(
    project: Project,
) -> None:
    decorator = 'version_base=None, config_path=os.environ["CONF"], config_name="config"'
    write_app(project, decorator=decorator)
    r = project.yanex("run", "app.py", CONF="conf")
    assert_usage_error(r, "config_path of its @hydra.main is computed", "--config-dir")
    r = project.yanex("run", "app.py", "--config-dir", "conf", "model=large", CONF="elsewhere")
    assert r.returncode == 0, r.stderr
    # The app is told where yanex composed from (Hydra's --config-path).
    folder = project.only_experiment()
    assert app_saw(folder)["config"]["model"] == {"width": 64}
    assert metadata(folder)["hydra"]["app_config_matches"] is True


def test_an_app_is_recognised_however_hydra_is_imported(tmp_path: Path) -> None:
    from yanex.config.hydra_app import find

    forms = {
        "import hydra\n@hydra.main(config_path='c', config_name='n', version_base='1.2')\n": (
            "c",
            "n",
            "1.2",
        ),
        "import hydra as h\n@h.main('c', 'n', None)\n": ("c", "n", "1.3"),
        "from hydra import main\n@main(config_name='n')\n": (".", "n", "1.1"),
        "from hydra import main as hm\n@hm(version_base='1.3')\n": (None, None, "1.3"),
    }
    for head, (path, name, base) in forms.items():
        script = tmp_path / "app.py"
        script.write_text(head + "def run(cfg):\n    pass\n")
        app = find(script)
        assert app is not None, head
        assert (app.config_path, app.config_name, app.version_base) == (path, name, base)
    script.write_text(textwrap.dedent("import hydra\ndef main():\n    pass\n"))
    assert find(script) is None


DRIVER = """
import json

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

import yanex


@hydra.main(version_base=None, config_path="conf", config_name="config")
def main(cfg: DictConfig) -> None:
    job = HydraConfig.get().job.name
    results = yanex.launch({"model": "list(small, large)", "lr": 0.5}, "app.py")
    print("DRIVER " + json.dumps({
        "statuses": [r.status for r in results],
        "ids": [r.id for r in results],
        "job_after": HydraConfig.get().job.name,
        "job_before": job,
        "width": cfg.model.width,
    }))


if __name__ == "__main__":
    main()
"""


@pytest.mark.slow
def test_launch_works_inside_a_running_hydra_app(project: Project) -> None:
    """A @hydra.main driver (run by plain python) calls yanex.launch on an app of the same
    tree: each member composes its own config, and the driver's Hydra state is its own after."""
    write_app(project)
    project.write("driver.py", DRIVER)
    project.commit()
    r = subprocess.run(
        [sys.executable, "driver.py", "model=large"],
        cwd=project.path,
        env=project.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert "GlobalHydra" not in r.stderr
    line = next(line for line in r.stdout.splitlines() if line.startswith("DRIVER "))
    saw = json.loads(line.split(" ", 1)[1])
    assert saw["statuses"] == ["completed", "completed"]
    assert saw["job_after"] == saw["job_before"] == "driver" and saw["width"] == 64
    widths = []
    for experiment_id in saw["ids"]:
        folder = project.home / "experiments" / experiment_id
        widths.append(app_saw(folder)["config"]["model"]["width"])
        assert json.loads((folder / "params.json").read_text())["lr"] == 0.5
    assert widths == [8, 64]
