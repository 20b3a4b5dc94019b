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


def under_hydra(
    project: Project, script: str, *args: str, cwd: Path | None = None, refused: bool = False
) -> str:
    """Run the app as Hydra runs it (``python app.py ARGS``), its output in a tmp folder;
    with ``refused``, Hydra must refuse it (its message is returned)."""
    out = project.path.parent / "hydra-outputs"
    proc = subprocess.run(
        [sys.executable, script, *args, f"hydra.run.dir={out}/run", f"hydra.sweep.dir={out}/m"],
        cwd=cwd or project.path,
        env=project.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    if refused:
        assert proc.returncode == 1, proc.stdout
        return proc.stderr
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


# --- tutorials/basic/running_your_hydra_app/5_basic_sweep: hydra.sweeper.params drive -m ------

SWEEP_APP = """
from omegaconf import DictConfig

import hydra


@hydra.main(config_path="conf", config_name="config")
def my_app(cfg: DictConfig) -> None:
    print(f"driver={cfg.db.driver}, timeout={cfg.db.timeout}")


if __name__ == "__main__":
    my_app()
"""


def sweep_app(project: Project) -> None:
    project.write("my_app.py", SWEEP_APP)
    project.write(
        "conf/config.yaml",
        """
        defaults:
          - db: ???
          - _self_

        hydra:
          sweeper:
            params:
              db: glob(*)
              db.timeout: 5,10
        """,
    )
    project.write("conf/db/mysql.yaml", "driver: mysql\nuser: omry\npassword: secret\ntimeout: 5\n")
    project.write(
        "conf/db/postgresql.yaml",
        "driver: postgresql\nuser: postgres_user\npassword: drowssap\ntimeout: 10\n",
    )
    project.commit()


def jobs_printed(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("driver=")]


@pytest.mark.parametrize(
    "overrides",
    [
        [],
        ["db=mysql", "db.timeout=20"],
        ["db=mysql"],
        ["db.timeout=1,2,3"],
        ["db=postgresql,mysql"],
        ["+db.port=1,2"],
    ],
    ids=["the config's", "all fixed", "a group fixed", "a value swept", "reordered", "added"],
)
def test_the_sweeper_params_drive_multirun_as_under_hydra(
    project: Project, overrides: list[str]
) -> None:
    """Differential: Hydra's own ``-m`` (its BasicSweeper) against ``yanex run -m``: the same
    jobs in the same order, each with the same config."""
    sweep_app(project)
    expected = jobs_printed(under_hydra(project, "my_app.py", "-m", *overrides))
    assert expected  # Hydra ran jobs
    r = project.yanex("run", "my_app.py", "-m", "-j", "2", *overrides)
    assert r.returncode == 0, r.stderr
    members = sorted(
        (metadata(folder)["sweep_index"] or 0, folder) for folder in project.experiments()
    )
    got = [jobs_printed((folder / "stdout.txt").read_text())[0] for _, folder in members]
    assert got == expected
    for _, folder in members:
        assert metadata(folder)["hydra"]["app_config_matches"] is True


def test_the_sweeper_params_are_hydras_multirun_only(project: Project) -> None:
    """Without -m Hydra runs one job and leaves the sweeper alone: so does yanex. What Hydra
    refuses under -m (a value of a group the multirun's config has not chosen yet) yanex
    refuses too, and a sweeper yanex does not run is refused, with the way to run it."""
    sweep_app(project)
    assert "Could not override 'db.timeout'" in under_hydra(
        project, "my_app.py", "-m", "db.timeout=20", refused=True
    )
    r = project.yanex("run", "my_app.py", "-m", "db.timeout=20")
    assert r.returncode == 2 and "Could not override 'db.timeout'" in r.stderr, r.stderr
    assert project.store_entries() == []
    r = project.yanex("run", "my_app.py", "db=mysql")
    assert r.returncode == 0, r.stderr
    assert jobs_printed(r.stdout) == ["driver=mysql, timeout=5"]
    project.write("conf/hydra/sweeper/grid.yaml", "_target_: some.Sweeper\n")
    project.write(
        "conf/config.yaml",
        "defaults:\n  - db: mysql\n  - override hydra/sweeper: grid\n  - _self_\n",
    )
    project.commit()
    before = project.store_entries()
    r = project.yanex("run", "my_app.py", "-m", "db.timeout=1,2")
    assert r.returncode == 2 and "chooses Hydra's grid sweeper" in r.stderr, r.stderr
    assert project.store_entries() == before


# --- hydra.run.dir and hydra.sweep.dir chosen by the user are honoured ------------------------

DIR_APP = """
import json

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig


@hydra.main(version_base=None, config_path="conf", config_name="config")
def main(cfg: DictConfig) -> None:
    print("OUT " + json.dumps([HydraConfig.get().runtime.output_dir, cfg.x]))


if __name__ == "__main__":
    main()
"""


def dir_app(project: Project, hydra_node: str = "") -> None:
    project.write("app.py", DIR_APP)
    project.write("conf/config.yaml", "x: 0\n" + hydra_node)
    project.commit()


def test_a_run_dir_given_on_the_command_line_is_where_the_app_writes(project: Project) -> None:
    dir_app(project)
    mine = project.path.parent / "mine"
    r = project.yanex("run", "app.py", f"hydra.run.dir={mine}", "x=1")
    assert r.returncode == 0, r.stderr
    folder = project.only_experiment()
    assert printed(folder, "OUT ") == [str(mine), 1]
    assert (mine / ".hydra" / "config.yaml").read_text() == "x: 1\n"
    meta = metadata(folder)
    assert meta["overrides"] == [f"hydra.run.dir={mine}", "x=1"]
    assert meta["hydra"]["output_dir"] == str(mine)
    assert meta["hydra"]["app_config_matches"] is True
    # Hydra's default: the experiment folder, and nothing recorded beyond it.
    r = project.yanex("run", "app.py", "x=2")
    assert r.returncode == 0, r.stderr
    folder = project.experiments()[-1]
    assert printed(folder, "OUT ") == [str(folder / "hydra"), 2]
    assert "output_dir" not in metadata(folder)["hydra"]


def test_a_run_dir_the_config_sets_is_where_the_app_writes(project: Project) -> None:
    dir_app(project, "hydra:\n  run:\n    dir: runs/x=${x}\n")
    r = project.yanex("run", "app.py", "x=3")
    assert r.returncode == 0, r.stderr
    folder = project.only_experiment()
    expected = str(project.path / "runs" / "x=3")
    assert printed(folder, "OUT ") == [expected, 3]
    assert metadata(folder)["hydra"]["run_dir"] == "runs/x=${x}"
    assert metadata(folder)["hydra"]["output_dir"] == expected
    assert (project.path / "runs" / "x=3" / ".hydra" / "config.yaml").is_file()


@pytest.mark.parametrize(
    "subdir", [None, "${hydra.job.override_dirname}"], ids=["Hydra's subdir", "the user's"]
)
def test_a_sweep_dir_holds_the_members_as_hydras_multirun_holds_its_jobs(
    project: Project, subdir: str | None
) -> None:
    """Differential: the folders Hydra's own ``-m`` makes against those of ``yanex run -m``,
    each holding the config of the same job."""
    node = "hydra:\n  sweep:\n    dir: SWEEP\n" + (f"    subdir: {subdir}\n" if subdir else "")
    dir_app(project, node.replace("SWEEP", str(project.path.parent / "hydra-sweep")))
    theirs = project.path.parent / "hydra-sweep"
    proc = subprocess.run(
        [sys.executable, "app.py", "-m", "x=1,2,3"],
        cwd=project.path,
        env=project.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    expected = {
        str(p.parent.parent.relative_to(theirs)): p.read_text()
        for p in theirs.rglob(".hydra/config.yaml")
    }
    assert len(expected) == 3
    ours = project.path.parent / "yanex-sweep"
    r = project.yanex("run", "app.py", "-m", "x=1,2,3", f"hydra.sweep.dir={ours}", "-j", "2")
    assert r.returncode == 0, r.stderr
    got = {
        str(p.parent.parent.relative_to(ours)): p.read_text()
        for p in ours.rglob(".hydra/config.yaml")
    }
    assert got == expected
    for folder in project.experiments():
        out, x = printed(folder, "OUT ")
        assert metadata(folder)["hydra"]["output_dir"] == out
        assert (Path(out) / ".hydra" / "config.yaml").read_text() == f"x: {x}\n"


# --- structured configs the app stores in ConfigStore (structured_configs/5.1) ----------------

SCHEMA_APP = """
import json
from dataclasses import dataclass

from omegaconf import MISSING, OmegaConf

import hydra
from hydra.core.config_store import ConfigStore

import yanex


@dataclass
class DBConfig:
    driver: str = MISSING
    host: str = "localhost"
    port: int = MISSING


@dataclass
class MySQLConfig(DBConfig):
    driver: str = "mysql"
    port: int = 3306
    user: str = MISSING
    password: str = MISSING


@dataclass
class PostGreSQLConfig(DBConfig):
    driver: str = "postgresql"
    user: str = MISSING
    port: int = 5432
    password: str = MISSING
    timeout: int = 10


@dataclass
class Config:
    db: DBConfig = MISSING
    debug: bool = False


cs = ConfigStore.instance()
cs.store(name="base_config", node=Config)
cs.store(group="db", name="base_mysql", node=MySQLConfig)
cs.store(group="db", name="base_postgresql", node=PostGreSQLConfig)


@hydra.main(version_base=None, config_path="conf", config_name="config")
def my_app(cfg: Config) -> None:
    kind = type(OmegaConf.to_object(cfg).db).__name__
    print("JOB " + json.dumps([kind, OmegaConf.to_container(cfg)]))
    yanex.log_results({"port": yanex.get_param("db.port")})


if __name__ == "__main__":
    my_app()
"""


def schema_app(project: Project) -> None:
    project.write("my_app.py", SCHEMA_APP)
    project.write(
        "conf/config.yaml",
        "defaults:\n  - base_config\n  - db: mysql\n  - _self_\n\ndebug: true\n",
    )
    project.write(
        "conf/db/mysql.yaml", "defaults:\n  - base_mysql\n\nuser: omry\npassword: secret\n"
    )
    project.write(
        "conf/db/postgresql.yaml",
        "defaults:\n  - base_postgresql\n\nuser: postgres_user\npassword: drowssap\n",
    )
    project.commit()


def jobs(text: str) -> list[Any]:
    return [json.loads(line[4:]) for line in text.splitlines() if line.startswith("JOB ")]


def test_configs_the_app_stores_in_config_store_compose(project: Project) -> None:
    """The app's schemas exist only in its own process: the app composes (yanex asks it),
    the record is what it composed, typed by its schema, as under Hydra."""
    schema_app(project)
    args = ["db=postgresql", "db.port=1234"]
    (expected,) = jobs(under_hydra(project, "my_app.py", *args))
    assert expected[0] == "PostGreSQLConfig"
    r = project.yanex("run", "my_app.py", *args)
    assert r.returncode == 0, r.stderr
    folder = project.only_experiment()
    assert jobs((folder / "stdout.txt").read_text()) == [expected]
    assert json.loads((folder / "params.json").read_text()) == expected[1]
    meta = metadata(folder)
    assert meta["hydra"]["choices"] == {"db": "postgresql"}
    assert meta["hydra"]["app_config_matches"] is True
    # A grid over a group and a typed value, as Hydra's -m runs it.
    grid = ["db=mysql,postgresql", "db.port=1,2"]
    expected = jobs(under_hydra(project, "my_app.py", "-m", *grid))
    r = project.yanex("run", "my_app.py", "-m", "-j", "2", *grid)
    assert r.returncode == 0, r.stderr
    members = sorted((metadata(f)["sweep_index"], f) for f in project.experiments()[1:])
    assert [jobs((f / "stdout.txt").read_text())[0] for _, f in members] == expected
    # A rerun composes through the app again, and runs what was recorded.
    r = project.yanex("rerun", folder.name)
    assert r.returncode == 0, r.stderr
    assert jobs((project.experiments()[-1] / "stdout.txt").read_text()) == [
        jobs((folder / "stdout.txt").read_text())[0]
    ]


def test_what_the_app_cannot_compose_is_refused_before_anything_is_made(project: Project) -> None:
    schema_app(project)
    for args, needle in (
        (["db=mysqll"], "config group 'db' has no option 'mysqll'; did you mean mysql?"),
        (["db.port=abc"], "Value 'abc' of type 'str' could not be converted to Integer"),
    ):
        r = project.yanex("run", "my_app.py", *args)
        assert r.returncode == 2 and needle in r.stderr, r.stderr
        assert "Traceback" not in r.stderr
    assert project.store_entries() == []


def test_an_untracked_file_in_the_tree_of_such_an_app_is_uncommitted_code(
    project: Project,
) -> None:
    """Which files the app's composition reads is the app's to know: every file of its tree
    counts, so an untracked one makes the run dirty (refused, or kept in git.patch)."""
    schema_app(project)
    project.write("conf/db/sqlite.yaml", "driver: sqlite\n")  # not committed
    r = project.yanex("run", "my_app.py")
    assert r.returncode == 2 and "conf/db/sqlite.yaml" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and project.store_entries() == []
    r = project.yanex("run", "my_app.py", "--ignore-dirty")
    assert r.returncode == 0, r.stderr
    assert "+driver: sqlite" in (project.only_experiment() / "git.patch").read_text()


def test_shell_completion_never_starts_such_an_app(project: Project) -> None:
    from test_hydra_cli import bash_complete

    schema_app(project)
    marker = project.path.parent / "imported"
    project.write("my_app.py", f"open({str(marker)!r}, 'w').close()\n" + SCHEMA_APP)
    project.commit()
    offered = bash_complete(project, ("yanex run my_app.py db=", "yanex run my_app.py db =", 4))
    assert offered == ["=mysql =postgresql"]
    assert not marker.exists()


LAUNCHER = """
from dataclasses import dataclass

from hydra.core.config_store import ConfigStore

import yanex


@dataclass
class Schema:
    lr: float = 0.1
    epochs: int = 3


ConfigStore.instance().store(name="schema", node=Schema)
results = yanex.launch({"lr": "list(0.2, 0.3)", "epochs": "range(1, 3)"}, "show.py")
print([r.status for r in results])
"""


def test_a_sweep_over_a_key_a_schema_types_is_a_grid(project: Project) -> None:
    """A program that stores a schema and launches a grid over its typed keys: each member
    gets its value, converted as the schema says (an int range for a float is floats)."""
    project.write("conf/config.yaml", "defaults:\n  - schema\n  - _self_\nlr: 0.5\n")
    project.write("show.py", "import json, yanex; print(json.dumps(yanex.get_params()))\n")
    project.write("launcher.py", LAUNCHER)
    project.commit()
    proc = subprocess.run(
        [sys.executable, "launcher.py"],
        cwd=project.path,
        env=project.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == str(["completed"] * 4)
    got = [json.loads((f / "params.json").read_text()) for f in project.experiments()]
    assert sorted(map(json.dumps, got)) == sorted(
        json.dumps({"lr": lr, "epochs": e}) for lr in (0.2, 0.3) for e in (1, 2)
    )
