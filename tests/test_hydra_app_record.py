"""A ``@hydra.main`` app's record equals what the app resolved, on every path (direct, staged,
-m, Dask, rerun): values of ``${oc.env:}``, ``${now:}`` and the app's own resolvers are what
the app resolved when it ran; where they differ from what yanex composed, the record keeps
the app's and says so; where they do not, nothing is said."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Project, metadata

pytestmark = pytest.mark.slow  # real apps in child processes

APP = """
import json

import hydra
from omegaconf import DictConfig, OmegaConf

import yanex

OmegaConf.register_new_resolver("double", lambda x: 2 * int(x))  # the app's own resolver


@hydra.main(version_base=None, config_path="conf", config_name="config")
def main(cfg: DictConfig) -> None:
    print("CFG " + json.dumps(OmegaConf.to_container(cfg, resolve=True)))
    print("PARAMS " + json.dumps(yanex.get_params()))


if __name__ == "__main__":
    main()
"""


def write_app(project: Project, config: str = "db:\n  user: ${oc.env:DBUSER,nobody}\n") -> None:
    project.write("app.py", APP)
    project.write("conf/config.yaml", config)
    project.commit()


def saw(folder: Path) -> tuple[Any, Any]:
    """What the app's cfg held, and what yanex.get_params() gave it, as it printed them."""
    lines = (folder / "stdout.txt").read_text().splitlines()
    found = {line.split(" ", 1)[0]: json.loads(line.split(" ", 1)[1]) for line in lines}
    return found["CFG"], found["PARAMS"]


def recorded(folder: Path) -> Any:
    return json.loads((folder / "params.json").read_text())


def assert_recorded_as_the_app_ran(folder: Path) -> None:
    cfg, params = saw(folder)
    assert recorded(folder) == cfg == params


def test_a_staged_app_records_the_environment_it_ran_in(project: Project) -> None:
    write_app(project)
    r = project.yanex("stage", "app.py", DBUSER="alice")
    assert r.returncode == 0, r.stderr
    folder = project.only_experiment()
    assert recorded(folder) == {"db": {"user": "alice"}}  # what yanex composed, staging
    r = project.yanex("run", "--staged", DBUSER="bob")
    assert r.returncode == 0, r.stderr
    assert_recorded_as_the_app_ran(folder)
    assert recorded(folder) == {"db": {"user": "bob"}}
    assert (folder / "config.yaml").read_text() == "db:\n  user: bob\n"
    meta = metadata(folder)
    assert meta["hydra"]["app_config_matches"] is False
    assert meta["hydra"]["app_config_differences"] == ["db.user"]
    warning = (
        "the config the @hydra.main app resolved differs from the one yanex composed at db.user"
    )
    assert warning in r.stderr and any(warning in w for w in meta["warnings"])
    # The composition as the app made it, for Hydra's tools and for a rerun.
    assert "${oc.env:DBUSER,nobody}" in (folder / ".hydra" / "config.yaml").read_text()
    # The same environment: nothing to say.
    r = project.yanex("run", "app.py", DBUSER="carol")
    assert r.returncode == 0, r.stderr
    folder = project.experiments()[-1]
    assert_recorded_as_the_app_ran(folder)
    assert metadata(folder)["hydra"]["app_config_matches"] is True
    assert "differs" not in r.stderr and "warnings" not in metadata(folder)


@pytest.mark.parametrize("how", ["direct", "-m"])
def test_the_clock_the_app_read_is_the_record(project: Project, how: str) -> None:
    """``${now:}`` to the microsecond: yanex composes before the app starts, so the two
    always differ, and the record is the app's."""
    write_app(project, "lr: 0.1\n")
    stamp = "+t=${now:%H:%M:%S.%f}"
    args = ["lr=0.1,0.2", "-m", "-j", "1"] if how == "-m" else []
    r = project.yanex("run", "app.py", stamp, *args)
    assert r.returncode == 0, r.stderr
    folders = project.experiments()
    assert len(folders) == (2 if how == "-m" else 1)
    stamps = set()
    for folder in folders:
        assert_recorded_as_the_app_ran(folder)
        stamps.add(recorded(folder)["t"])
        meta = metadata(folder)
        assert meta["hydra"]["app_config_differences"] == ["t"]
        assert meta["overrides"][0] == stamp  # the override as typed: it replays the same
    assert len(stamps) == len(folders)


def test_the_apps_own_resolvers_are_resolved_by_the_app(project: Project) -> None:
    """A resolver the app registers when it is imported: yanex cannot resolve it, so the
    app does, and its value is recorded, with nothing to say (yanex composed no other)."""
    write_app(project, "a: 3\nb: ${double:${a}}\n")
    r = project.yanex("run", "app.py", "a=5")
    assert r.returncode == 0, r.stderr
    folder = project.only_experiment()
    assert_recorded_as_the_app_ran(folder)
    assert recorded(folder) == {"a": 5, "b": 10}
    meta = metadata(folder)
    assert meta["hydra"]["app_config_matches"] is True and "warnings" not in meta
    assert meta["hydra"]["resolved_by_app"] == ["b"]
    # Staged, the record says what yanex could not resolve, until the app runs.
    r = project.yanex("stage", "app.py", "a=1")
    assert r.returncode == 0, r.stderr
    staged = project.home / "experiments" / r.stdout.strip()
    assert recorded(staged) == {"a": 1, "b": "${double:${a}}"}
    r = project.yanex("run", "--staged")
    assert r.returncode == 0, r.stderr
    assert recorded(staged) == {"a": 1, "b": 2}


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Any]:
    pytest.importorskip("distributed")
    from test_dask import Cluster

    running = Cluster(tmp_path)
    try:
        running.add_workers(1, env={"DBUSER": "worker"})
        yield running
    finally:
        running.close()


def test_on_dask_the_record_is_what_the_worker_resolved(project: Project, cluster: Any) -> None:
    write_app(project)
    r = project.yanex("stage", "app.py", DBUSER="client")
    assert r.returncode == 0, r.stderr
    folder = project.only_experiment()
    env = {k: v for k, v in project.env().items() if k != "DBUSER"}
    r = project.yanex(
        "run", "--staged", "--executor", "dask", "--scheduler", cluster.address, env=env
    )
    assert r.returncode == 0, r.stderr
    assert_recorded_as_the_app_ran(folder)
    assert recorded(folder) == {"db": {"user": "worker"}}
    assert metadata(folder)["hydra"]["app_config_differences"] == ["db.user"]


def test_a_config_the_app_cannot_resolve_keeps_the_record_yanex_composed(
    project: Project,
) -> None:
    """An app that adds to its own command line a value that cannot be resolved (and never
    reads it): the record stays what yanex composed, and says why."""
    project.write(
        "app.py",
        APP.replace(
            'print("CFG "', 'print("A " + str(cfg.a))\n    return\n    print("CFG "'
        ).replace("import json\n", 'import json\nimport sys\nsys.argv.append("+bad=${nope}")\n'),
    )
    project.write("conf/config.yaml", "a: 1\n")
    project.commit()
    r = project.yanex("run", "app.py")
    assert r.returncode == 0, r.stderr
    folder = project.only_experiment()
    assert recorded(folder) == {"a": 1}
    meta = metadata(folder)
    assert meta["hydra"]["app_config_matches"] is False
    assert "the config the @hydra.main app composed cannot be resolved" in r.stderr
    assert "the record holds the one yanex composed" in meta["warnings"][0]
    assert "bad: ${nope}" in (folder / ".hydra" / "config.yaml").read_text()
