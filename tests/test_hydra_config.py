"""Where the config comes from, found as Hydra finds it, through the real CLI."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import Project, assert_usage_error, imported_modules, metadata

SHOW = "import json, yanex; print(json.dumps(yanex.get_params()))\n"


def write_tree(project: Project, root: str) -> None:
    project.write(
        f"{root}/config.yaml",
        "defaults:\n  - model: small\n  - _self_\nlr: 0.1\n",
    )
    project.write(f"{root}/model/small.yaml", "width: 8\n")
    project.write(f"{root}/model/large.yaml", "width: 64\n")


def run(project: Project, *args: str, cwd: Path | None = None, **env: str) -> dict[str, Any]:
    """``yanex run ARGS`` from ``cwd``; the params the script read (they are the recorded ones)."""

    proc = subprocess.run(
        [sys.executable, "-m", "yanex", "run", *args],
        cwd=cwd or project.path,
        env=project.env(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    params = json.loads(proc.stdout.splitlines()[-1])
    assert params == json.loads((project.experiments()[-1] / "params.json").read_text())
    return params


@pytest.mark.slow
def test_the_tree_next_to_the_script_whichever_folder_yanex_runs_from(project: Project) -> None:
    write_tree(project, "myproj/conf")
    project.write("myproj/train.py", SHOW)
    write_tree(project, "conf")  # ./conf of the outer folder: the script's own comes first
    project.write("conf/config.yaml", "lr: 99\n")
    project.commit()
    from_outside = run(project, "myproj/train.py", "model=large")
    from_inside = run(project, "train.py", "model=large", cwd=project.path / "myproj")
    script = str(project.path / "myproj" / "train.py")
    from_elsewhere = run(project, script, "model=large", cwd=Path("/"))
    assert from_outside == from_inside == from_elsewhere == {"model": {"width": 64}, "lr": 0.1}
    assert {metadata(f)["hydra"]["config_dir"] for f in project.experiments()} == {
        str(project.path / "myproj" / "conf")
    }


@pytest.mark.slow
def test_the_current_folders_tree_when_the_script_has_none(project: Project) -> None:
    write_tree(project, "conf")
    project.write("scripts/show.py", SHOW)
    project.commit()
    assert run(project, "scripts/show.py") == {"model": {"width": 8}, "lr": 0.1}


def test_a_config_file_with_a_defaults_list_is_composed(project: Project) -> None:
    write_tree(project, "conf")
    project.write("show.py", SHOW)
    project.commit()
    params = run(project, "show.py", "-c", "conf/config.yaml", "model=large")
    assert params == {"model": {"width": 64}, "lr": 0.1}  # no `defaults` parameter
    meta = metadata(project.experiments()[-1])
    assert meta["hydra"]["choices"] == {"model": "large"}
    assert meta["hydra"]["config_dir"] == str(project.path / "conf")
    assert meta["config_file"] is None


def test_config_given_twice_merges_the_files_in_order(project: Project) -> None:
    project.write("base.yaml", "model:\n  lr: 0.1\n  depth: 2\nname: base\n")
    project.write("fast.yaml", "model:\n  lr: 0.5\nfast: true\n")
    project.write("show.py", SHOW)
    project.commit()
    params = run(project, "show.py", "-c", "base.yaml", "--config", "fast.yaml", "model.depth=3")
    assert params == {"model": {"lr": 0.5, "depth": 3}, "name": "base", "fast": True}
    meta = metadata(project.experiments()[-1])
    assert meta["config_file"] == [str(project.path / "base.yaml"), str(project.path / "fast.yaml")]
    r = project.yanex("get", "run-command", meta["id"])
    assert "-c " + str(project.path / "base.yaml") in r.stdout
    assert "-c " + str(project.path / "fast.yaml") in r.stdout


@pytest.mark.slow
def test_a_tree_without_a_primary_config_composes_from_groups_and_keeps_missing_values(
    project: Project,
) -> None:
    # Hydra's tutorial shape: conf/db/*.yaml and no conf/config.yaml.
    project.write("conf/db/postgresql.yaml", "driver: postgresql\nuser: ???\npass: ${db.user}\n")
    project.write("conf/db/mysql.yaml", "driver: mysql\nuser: omry\npass: secret\n")
    project.write("show.py", SHOW)
    project.commit()
    assert run(project, "show.py") == {}
    params = run(project, "show.py", "+db=postgresql")
    assert params == {"db": {"driver": "postgresql", "user": "???", "pass": "???"}}
    folder = project.experiments()[-1]
    assert (folder / "config.yaml").read_text() == (
        "db:\n  driver: postgresql\n  user: ???\n  pass: ???\n"
    )
    # Hydra's own record keeps the interpolation, unresolved.
    assert "pass: ${db.user}" in (folder / ".hydra" / "config.yaml").read_text()
    assert metadata(folder)["hydra"]["config_name"] is None
    assert run(project, "show.py", "+db=postgresql", "db.user=me")["db"]["pass"] == "me"


RESOLVERS = """\
year: ${now:%Y}
home: ${oc.env:HOME}
listed: ${oc.decode:'[1, 2]'}
python: ${python_version:major}
"""


@pytest.mark.slow
def test_resolvers_mean_the_same_with_and_without_a_tree(project: Project) -> None:
    project.write("config.yaml", RESOLVERS)
    project.write("show.py", SHOW)
    project.commit()
    plain = run(project, "show.py")
    (project.path / "config.yaml").rename(project.path / "kept.yaml")
    project.write("conf/config.yaml", RESOLVERS)
    project.commit()
    tree = run(project, "show.py")
    year = str(datetime.date.today().year)
    assert (
        plain
        == tree
        == {
            "year": year,
            "home": os.environ["HOME"],
            "listed": [1, 2],
            "python": str(sys.version_info[0]),
        }
    )


@pytest.mark.slow
def test_untracked_config_files_the_run_reads_make_the_tree_dirty(project: Project) -> None:
    write_tree(project, "conf")
    project.write("show.py", SHOW)
    project.commit()
    project.write("conf/model/huge.yaml", "width: 512\n")  # not committed
    project.write("extra.yaml", "seed: 1\n")  # not committed
    for args in (["model=huge"], ["-c", "extra.yaml"]):
        r = project.yanex("run", "show.py", *args)
        assert_usage_error(r, "uncommitted changes", "(a config file of the run, not tracked")
        assert ("conf/model/huge.yaml" if args[0] == "model=huge" else "extra.yaml") in r.stderr
    assert project.store_entries() == []
    # A run that reads none of them is clean.
    assert run(project, "show.py", "model=large") == {"model": {"width": 64}, "lr": 0.1}
    assert metadata(project.experiments()[-1])["git"]["dirty"] is False
    # --ignore-dirty keeps the untracked option in git.patch; staged, it runs as recorded.
    r = project.yanex("run", "show.py", "model=huge", "--ignore-dirty", "--stage")
    assert r.returncode == 0, r.stderr
    folder = project.home / "experiments" / r.stdout.strip()
    patch = (folder / "git.patch").read_text()
    assert "+++ b/conf/model/huge.yaml" in patch and "+width: 512" in patch
    assert str(project.path / "conf/model/huge.yaml") in metadata(folder)["config_files"]
    r = project.yanex("run", "--staged")
    assert r.returncode == 0 and "1 completed" in r.stderr, r.stderr
    assert json.loads((folder / "stdout.txt").read_text()) == {"model": {"width": 512}, "lr": 0.1}


@pytest.mark.slow
def test_a_tree_changed_between_runs_composes_anew(project: Project) -> None:
    """The second run of the same tree and overrides reads Hydra's composition from the cache
    (without importing Hydra); an edited option, one of the same size, is seen at once."""
    write_tree(project, "conf")
    project.write("show.py", SHOW)
    project.commit()
    assert run(project, "show.py", "model=large") == {"model": {"width": 64}, "lr": 0.1}
    modules, r = imported_modules(project, "run", "show.py", "model=large")
    assert r.returncode == 0, r.stderr
    assert not {m for m in modules if m == "hydra" or m.startswith("hydra.")}
    folder = project.experiments()[-1]
    assert json.loads((folder / "stdout.txt").read_text()) == {"model": {"width": 64}, "lr": 0.1}
    assert metadata(folder)["hydra"]["choices"] == {"model": "large"}
    project.write("conf/model/large.yaml", "width: 65\n")  # the same size
    project.commit()
    assert run(project, "show.py", "model=large") == {"model": {"width": 65}, "lr": 0.1}


def _second_run_of(project: Project, *args: str, **env: str) -> dict[str, Any]:
    """Run twice (the first fills the composition cache); what the second run's script read."""
    run(project, *args, **env)
    return run(project, *args, **env)


@pytest.mark.slow
def test_files_in_a_symlinked_folder_of_the_tree_are_seen(project: Project) -> None:
    project.write("show.py", SHOW)
    project.write("conf/config.yaml", "defaults:\n  - data: a\n  - _self_\n")
    shared = project.path.parent / "shared" / "data"
    shared.mkdir(parents=True)
    (shared / "a.yaml").write_text("n: 1\n")
    (project.path / "conf" / "data").symlink_to(shared)
    project.commit()
    assert _second_run_of(project, "show.py") == {"data": {"n": 1}}
    (shared / "a.yaml").write_text("n: 2\n")
    assert run(project, "show.py") == {"data": {"n": 2}}


@pytest.mark.slow
def test_a_defaults_list_read_from_the_environment_follows_it(project: Project) -> None:
    project.write("show.py", SHOW)
    project.write("conf/config.yaml", "defaults:\n  - model: ${oc.env:MODEL,a}\n  - _self_\n")
    project.write("conf/model/a.yaml", "width: 1\n")
    project.write("conf/model/b.yaml", "width: 2\n")
    project.commit()
    assert _second_run_of(project, "show.py") == {"model": {"width": 1}}
    assert run(project, "show.py", MODEL="b") == {"model": {"width": 2}}
    assert metadata(project.experiments()[-1])["hydra"]["choices"] == {"model": "b"}


@pytest.mark.slow
def test_a_damaged_cache_entry_is_composed_again(project: Project) -> None:
    write_tree(project, "conf")
    project.write("show.py", SHOW)
    project.commit()
    expected = {"model": {"width": 64}, "lr": 0.1}
    assert run(project, "show.py", "model=large") == expected
    (entry,) = (project.home / "cache" / "compositions").iterdir()
    data = entry.read_bytes()
    # The int 64 as marshal writes it ('i', or 0xE9 with its reference flag), made 65: data
    # that still loads, and would be a wrong config if it were believed.
    for code in (b"i", b"\xe9"):
        data = data.replace(code + (64).to_bytes(4, "little"), code + (65).to_bytes(4, "little"))
    assert data != entry.read_bytes()
    entry.write_bytes(data)
    assert run(project, "show.py", "model=large") == expected
    # Garbage, and an empty file: composed again too.
    for damaged in (b"\x00" * 100, b""):
        entry.write_bytes(damaged)
        assert run(project, "show.py", "model=large") == expected


@pytest.mark.slow
def test_a_cache_entry_of_another_shape_is_composed_again(project: Project) -> None:
    """An entry whose checksum holds but whose content is not a composition (written by
    hand, or by other code): composed again by Hydra, never a traceback."""
    import hashlib
    import marshal

    write_tree(project, "conf")
    project.write("show.py", SHOW)
    project.commit()
    expected = {"model": {"width": 64}, "lr": 0.1}
    assert run(project, "show.py", "model=large") == expected
    (entry,) = (project.home / "cache" / "compositions").iterdir()
    config, info = marshal.loads(entry.read_bytes()[32:])
    shapes = [
        ([1, 2], info),  # a list for the config
        ({"model": {"width": 64}, "lr": {1, 2}}, info),  # a set: not a value OmegaConf holds
        ({"model": {"width": 64}, "lr": b"0.1"}, info),  # bytes
        (config, "info"),  # info not a mapping
        (config, {**info, "choices": ["model"]}),
        (config, {k: v for k, v in info.items() if k != "overrides"}),  # a key missing
        (config, {**info, "overrides": [1]}),
        (config,),  # one item
        None,
    ]
    for shape in shapes:
        payload = marshal.dumps(shape)
        entry.write_bytes(hashlib.sha256(payload).digest() + payload)
        assert run(project, "show.py", "model=large") == expected, shape


@pytest.mark.slow
@pytest.mark.parametrize(
    "config",
    [
        '"defaults":\n  - model: ${oc.env:MODEL,a}\n  - _self_\n',
        "{defaults: [{model: '${oc.env:MODEL,a}'}, _self_]}\n",
        "'defaults' : [{model: \"\\x24{oc.env:MODEL,a}\"}, _self_]\n",
        "base: &d\n  - model: ${oc.env:MODEL,a}\n  - _self_\ndefaults: *d\n",
    ],
    ids=["quoted key", "flow style", "escaped", "an alias"],
)
def test_a_defaults_list_read_from_the_environment_however_written_is_not_cached(
    project: Project, config: str
) -> None:
    project.write("show.py", SHOW)
    project.write("conf/config.yaml", config)
    project.write("conf/model/a.yaml", "width: 1\n")
    project.write("conf/model/b.yaml", "width: 2\n")
    project.commit()
    first = _second_run_of(project, "show.py")
    assert first["model"] == {"width": 1}
    assert run(project, "show.py", MODEL="b")["model"] == {"width": 2}
    assert metadata(project.experiments()[-1])["hydra"]["choices"] == {"model": "b"}


CONFIG_STORE = """
import sys
from pathlib import Path

from yanex.config import compose, sources

source = sources.find_source(cwd=Path.cwd())
before = compose.CompositionCache.of(source, []) is not None
from hydra.core.config_store import ConfigStore  # noqa: E402

ConfigStore.instance().store(name="base_schema", node={"lr": 0.1})
after = compose.CompositionCache.of(source, []) is not None
print(before, after)
"""


def test_a_process_with_configs_of_its_own_in_hydras_store_is_not_cached(
    project: Project,
) -> None:
    """A program that stored configs in Hydra's ConfigStore (and then calls yanex.launch)
    composes with Hydra each time: those configs are not files the cache can fingerprint."""
    from conftest import run_python

    write_tree(project, "conf")
    project.commit()
    r = run_python(CONFIG_STORE, cwd=project.path, env=project.env())
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["True", "False"]
