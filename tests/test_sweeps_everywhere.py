"""A sweep function means the same in every way in: on the command line, in YANEX_PARAM_*, in
a config file, in a conf/ tree and in a yanex.launch string (issue 19). A quoted string is never
a sweep, and a config string in yanex 0.6's comma form is said to be one string."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from conftest import Project, assert_usage_error, metadata, same
from hydra_corpus import SWEEP_FUNCTIONS

import yanex
from yanex.config.pipeline import resolve
from yanex.errors import ParamError

SHOW = "import json, yanex; print(json.dumps(yanex.get_params()))\n"
SEED = {"YANEX_SHUFFLE_SEED": "7"}


def members(
    cwd: Path, texts: Sequence[str] = (), environ: dict[str, str] | None = None
) -> list[Any]:
    """The members yanex makes, each member's config."""
    grid = resolve(cwd=cwd, param_texts=list(texts), environ={**SEED, **(environ or {})}).grid
    return [member.config for member in grid.members()]


def launched(project: Project, cfg: dict[str, Any]) -> list[Any]:
    """The params.json of each member yanex.launch stages."""
    found = yanex.launch(cfg, "show.py", cwd=project.path, stage=True)
    found = found if isinstance(found, list) else [found]
    return [json.loads((result.dir / "params.json").read_text()) for result in found]


def ways_in(project: Project, tmp_path: Path, text: str) -> dict[str, list[Any]]:
    """The values `x` takes with ``text`` written in each way in."""
    plain, tree = tmp_path / "plain", tmp_path / "tree"
    (plain).mkdir()
    (plain / "config.yaml").write_text(f"x: {text}\n")
    (tree / "conf").mkdir(parents=True)
    (tree / "conf" / "config.yaml").write_text(f"x: {text}\n")
    found = {
        "command line": members(tmp_path, [f"+x={text}"]),
        "YANEX_PARAM_x": members(tmp_path, environ={"YANEX_PARAM_x": text}),
        "config file": members(plain),
        "conf/ tree": members(tree),
        "yanex.launch": launched(project, {"x": text}),
    }
    return {way: [config["x"] for config in configs] for way, configs in found.items()}


@pytest.fixture
def launch_project(project: Project, monkeypatch: pytest.MonkeyPatch) -> Project:
    project.write("show.py", SHOW)
    project.commit()
    monkeypatch.setenv("YANEX_SHUFFLE_SEED", "7")
    return project


@pytest.mark.slow
@pytest.mark.parametrize(("text", "values"), SWEEP_FUNCTIONS)
def test_every_sweep_function_means_the_same_in_every_way_in(
    launch_project: Project, tmp_path: Path, text: str, values: list[Any]
) -> None:
    found = ways_in(launch_project, tmp_path, text)
    first = found["command line"]
    for way, got in found.items():
        assert same(got, first), (way, got, first)  # the same values, types and order
    if text.startswith("shuffle"):
        assert sorted(first) == values
    else:
        assert same(first, values), first


def write_groups(project: Project) -> None:
    project.write("conf/config.yaml", "defaults:\n  - db: mysql\n  - _self_\nx: 0\n")
    project.write("conf/db/mysql.yaml", "driver: mysql\n")
    project.write("conf/db/postgresql.yaml", "driver: postgresql\n")
    project.write("show.py", SHOW)
    project.commit()


@pytest.mark.slow
def test_glob_selects_a_groups_options_in_every_way_that_names_a_group(
    project: Project,
) -> None:
    """glob() on the command line, in YANEX_PARAM_* and in a yanex.launch string; a config
    value cannot select a group's option, so glob() there is refused, naming the override."""
    write_groups(project)
    expected = [{"driver": "mysql"}, {"driver": "postgresql"}]
    assert [c["db"] for c in members(project.path, ["db=glob(*)"])] == expected
    env = {"YANEX_PARAM_db": "glob(*)"}
    assert [c["db"] for c in members(project.path, environ=env)] == expected
    assert [c["db"] for c in launched(project, {"db": "glob(*)"})] == expected
    project.write("conf/config.yaml", "defaults:\n  - db: mysql\n  - _self_\nx: glob(*)\n")
    with pytest.raises(ParamError, match=r"glob\(\) selects options of a config group") as exc:
        members(project.path)
    assert "GROUP=glob(*)" in str(exc.value.hint)
    project.write("plain.yaml", "x: glob(*)\n")
    with pytest.raises(ParamError, match=r"glob\(\) selects options of a config group"):
        resolve(cwd=project.path, param_texts=[], environ={}, config_paths=[Path("plain.yaml")])


QUOTED = "a: 'range(3)'\nb: \"list(1, 2)\"\nc: 'choice(x, y)'\nd: 'q,m,h'\n"


def test_a_quoted_string_is_never_a_sweep(tmp_path: Path) -> None:
    """In a config file, in a conf/ tree, and from the command line into a tree (where Hydra
    composes the value): the string, as Hydra gives it."""
    expected = {"a": "range(3)", "b": "list(1, 2)", "c": "choice(x, y)", "d": "q,m,h"}
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "config.yaml").write_text(QUOTED)
    assert members(tmp_path / "plain") == [expected]
    (tmp_path / "tree" / "conf").mkdir(parents=True)
    (tmp_path / "tree" / "conf" / "config.yaml").write_text(QUOTED)
    assert members(tmp_path / "tree") == [expected]
    assert members(tmp_path / "tree", ["a='range(4)'", "+e='list(1, 2)'"]) == [
        {**expected, "a": "range(4)", "e": "list(1, 2)"}
    ]
    resolved = resolve(cwd=tmp_path / "tree", param_texts=[], environ={})
    assert resolved.warnings == []  # quoted: no word about yanex 0.6's comma lists


def test_a_quoted_string_in_a_launch_config_is_the_string(launch_project: Project) -> None:
    assert launched(launch_project, {"x": "'list(1, 2)'", "y": "list(1, 2)"}) == [
        {"x": "'list(1, 2)'", "y": 1},
        {"x": "'list(1, 2)'", "y": 2},
    ]


def test_a_call_that_is_no_sweep_stays_the_string_as_hydra_leaves_it(
    launch_project: Project, tmp_path: Path
) -> None:
    """A config value is not override text: a cast of one value or a sort of a list is the
    text as written, in a file, a tree and a yanex.launch config, as Hydra gives it."""
    text = "{a: int(3.7), b: 'sort([3, 1])', c: str(x)}"
    values = {"a": "int(3.7)", "b": "sort([3, 1])", "c": "str(x)"}
    (tmp_path / "config.yaml").write_text("a: int(3.7)\nb: sort([3, 1])\nc: str(x)\n")
    assert members(tmp_path) == [values]
    (tmp_path / "tree" / "conf").mkdir(parents=True)
    (tmp_path / "tree" / "conf" / "config.yaml").write_text(f"x: {text}\n")
    assert members(tmp_path / "tree") == [{"x": values}]
    assert launched(launch_project, values) == [values]


def test_a_call_the_grammar_cannot_read_is_refused_naming_the_quotes(tmp_path: Path) -> None:
    """int(list(a, b)) meant a sweep of two ints, or the text: yanex cannot tell, and asks."""
    (tmp_path / "config.yaml").write_text("x: int(list(a, b))\n")
    with pytest.raises(ParamError, match="int\\(list\\(a, b\\)\\)") as exc:
        members(tmp_path)
    assert "x: 'int(list(a, b))'" in str(exc.value.hint)


COMMA_06 = "algorithm: quicksort,mergesort,heapsort\nn: list(1, 2, 3, 4)\n"


def test_yanex_06s_comma_list_in_a_config_is_one_string_with_a_warning(project: Project) -> None:
    """yanex 0.6 swept `a,b,c` in a config; it is one string, as in Hydra: a 12-run grid would
    run as 4. The warning says so on stderr and in metadata.warnings, with both fixes."""
    project.write("config.yaml", COMMA_06)
    project.write("show.py", SHOW)
    project.commit()
    r = project.yanex("run", "show.py", "--stage")
    assert r.returncode == 0, r.stderr
    folders = project.experiments()
    assert len(folders) == 4
    assert {json.loads((f / "params.json").read_text())["algorithm"] for f in folders} == {
        "quicksort,mergesort,heapsort"
    }
    fixes = ("list(quicksort,mergesort,heapsort)", "'quicksort,mergesort,heapsort'")
    assert r.stderr.count("quicksort,mergesort,heapsort' is one string") == 1, r.stderr
    assert all(fix in r.stderr for fix in fixes), r.stderr
    (warning,) = metadata(folders[0])["warnings"]
    assert "algorithm" in warning and all(fix in warning for fix in fixes)


def test_a_tree_read_from_the_composition_cache_means_the_same(tmp_path: Path) -> None:
    """The second resolution reads Hydra's composition from the cache: the same sweep, the
    same quoted string, the same comma-list warning (and none for the quoted one)."""
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "config.yaml").write_text(
        "algorithm: a,b\nlr: choice(0.1, 0.01)\nt: 'x,y'\nq: 'range(2)'\n"
    )
    cache = Path(os.environ["YANEX_HOME"]) / "cache" / "compositions"
    before = set(cache.iterdir()) if cache.is_dir() else set()
    answers = []
    for _ in range(2):
        resolved = resolve(cwd=tmp_path, param_texts=[], environ={})
        answers.append(([m.config for m in resolved.grid.members()], resolved.warnings))
    assert len(set(cache.iterdir()) - before) == 1  # composed once, then read back
    assert answers[0] == answers[1]
    configs, warnings = answers[0]
    assert configs == [
        {"algorithm": "a,b", "lr": lr, "t": "x,y", "q": "range(2)"} for lr in (0.1, 0.01)
    ]
    (warning,) = warnings
    assert "list(a,b)" in warning and "algorithm: 'a,b'" in warning


def test_a_sweep_in_a_config_still_refuses_what_the_command_line_refuses(
    project: Project,
) -> None:
    project.write("config.yaml", "x: interval(0, 1)\n")
    project.write("show.py", SHOW)
    project.commit()
    r = project.yanex("run", "show.py", "--stage")
    assert_usage_error(r, "interval() is a continuous range")
    assert project.store_entries() == []
