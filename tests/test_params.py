"""Parameter resolution: sources and their order, and value typing by Hydra's grammar."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import Project

from yanex.config.overrides import parse_override
from yanex.config.pipeline import env_params, resolve
from yanex.errors import ParamError

SHOW = "import json, yanex; print(json.dumps(yanex.get_params()))\n"


def params_of(project: Project, *args: str, **env: str) -> dict[str, Any]:
    r = project.yanex("run", "show.py", *args, env=project.env(**env))
    assert r.returncode == 0, r.stderr
    stored = json.loads((project.experiments()[-1] / "params.json").read_text())
    assert json.loads(r.stdout) == stored  # what the script reads is what is stored
    return stored


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("x=3", 3),
        ("x=-7", -7),
        ("x=1e-3", 0.001),
        ("x=0.5", 0.5),
        ("x=true", True),
        ("x=False", False),
        ("x=null", None),
        ("x=[1, 2]", [1, 2]),
        ("x=[1,'a',{b: c}]", [1, "a", {"b": "c"}]),
        ("x={a: 1, b: [2]}", {"a": 1, "b": [2]}),
        ("x='3'", "3"),
        ('x="true"', "true"),
        ("x=adam", "adam"),
        ("x=yes", "yes"),  # YAML 1.1 would make this True; the grammar keeps a string
        ("x=0x10", "0x10"),
        ("x=1:30", "1:30"),
        ("x=a b", "a b"),
        ("x=", ""),
        ("x=/data/set-1", "/data/set-1"),
        ("x='Hello, world'", "Hello, world"),  # quoted: a comma is text
        ("x='a: b = c'", "a: b = c"),
        ("x=${y}", "${y}"),  # interpolation, resolved after merging
    ],
)
def test_values_are_typed_by_the_override_grammar(text: str, value: Any) -> None:
    ov = parse_override(text)
    assert ov.key == "x" and ov.op == "set"
    assert ov.value == value and type(ov.value) is type(value)


@pytest.mark.parametrize(
    ("text", "op", "key"),
    [
        ("model.lr=1", "set", "model.lr"),
        ("+new=1", "add", "new"),
        ("++new=1", "force_add", "new"),
        ("~old", "delete", "old"),
        ("~a.b", "delete", "a.b"),
    ],
)
def test_override_forms(text: str, op: str, key: str) -> None:
    ov = parse_override(text)
    assert (ov.op, ov.key) == (op, key)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x", "neither KEY=VALUE nor ~KEY"),
        ("x=[1,2", "cannot be parsed"),
        ("x={a:", "cannot be parsed"),
        ("=3", "no key"),
        ("x y=1", "cannot be parsed"),
        ("x=a=b", "cannot be parsed"),
        ("x=café", "cannot be parsed"),
        ("x=nosuchfn(1)", "cannot be parsed"),
        ("g@pkg=opt", "conf/"),
        ("x=a\x00b", "NUL"),
    ],
)
def test_bad_overrides_are_refused(text: str, message: str) -> None:
    with pytest.raises(ParamError) as info:
        parse_override(text)
    assert message in info.value.format_message()


def test_quoting_lets_any_text_through() -> None:
    assert parse_override("x='café au lait'").value == "café au lait"
    assert parse_override("url='http://h:80/x?y=1'").value == "http://h:80/x?y=1"


def test_precedence_config_then_env_then_param(project: Project) -> None:
    project.write("show.py", SHOW)
    project.write(
        "config.yaml",
        "model:\n  lr: 0.1\n  batch_size: 32\n  width: 8\nepochs: 10\nname: base\n",
    )
    project.commit()
    got = params_of(
        project,
        "--param",
        "model.lr=0.005",
        "--param",
        "epochs=20",
        YANEX_PARAM_model__batch_size="64",
        YANEX_PARAM_epochs="15",
        **{"YANEX_PARAM_model.width": "16"},
    )
    assert got == {
        "model": {"lr": 0.005, "batch_size": 64, "width": 16},
        "epochs": 20,  # --param beats the environment, which beats the file
        "name": "base",
    }


def test_config_option_replaces_the_default_file(project: Project) -> None:
    project.write("show.py", SHOW)
    project.write("config.yaml", "a: 1\nb: 2\n")
    project.write("conf/other.yaml", "a: 10\n")
    project.commit()
    assert params_of(project, "--config", "conf/other.yaml") == {"a": 10}
    assert params_of(project) == {"a": 1, "b": 2}


def test_add_remove_and_interpolate(project: Project) -> None:
    project.write("show.py", SHOW)
    project.write("config.yaml", "a: 1\nb: {c: 2, d: 3}\nlayers: [4, 5, 6]\n")
    project.commit()
    got = params_of(
        project, "-p", "+e=x", "-p", "~b.c", "-p", "~layers.1", "-p", "f=${b.d}", "-p", "b={g: 7}"
    )
    assert got == {"a": 1, "b": {"d": 3, "g": 7}, "layers": [4, 6], "e": "x", "f": 3}


def test_lists_from_the_cli_replace_lists(project: Project) -> None:
    project.write("show.py", SHOW)
    project.write("config.yaml", "layers: [1, 2, 3]\n")
    project.commit()
    assert params_of(project, "-p", "layers=[9]") == {"layers": [9]}


def test_yaml_config_values_keep_their_yaml_types(project: Project) -> None:
    project.write("show.py", SHOW)
    project.write("config.yaml", "lr: 1.0e-3\nflag: true\nname: 'quoted'\nnothing: null\n")
    project.commit()
    assert params_of(project) == {"lr": 0.001, "flag": True, "name": "quoted", "nothing": None}


def test_resolve_without_any_source_is_empty(tmp_path: Path) -> None:
    got = resolve(cwd=tmp_path, param_texts=[], environ={})
    assert got.config_file is None and got.config_dir is None
    assert next(iter(got.grid.members())).config == {}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (["~missing"], "no 'missing' to remove"),
        (["a=1", "+a=2"], "already set"),
        (["a=1", "~a=2"], "is 1, not 2"),
        (["x=${nope}"], "cannot be resolved"),
    ],
)
def test_overrides_that_do_not_fit_the_config(
    tmp_path: Path, params: list[str], message: str
) -> None:
    with pytest.raises(ParamError) as info:
        resolved = resolve(cwd=tmp_path, param_texts=params, environ={})
        list(resolved.grid.members())
    assert message in info.value.format_message()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("list(1, 2)", "is a sweep; sweeps run only under `yanex run --stage`"),
        ("${list:1,2}", "is a sweep; sweeps run only under `yanex run --stage`"),
        ("run-${list:1,2}", "cannot be resolved: a sweep must be the whole value"),
    ],
)
def test_a_standalone_script_refuses_sweeps_from_the_environment(value: str, message: str) -> None:
    params, problems = env_params({"YANEX_PARAM_x": value, "YANEX_PARAM_y": "2"})
    assert params == {"y": 2}  # the sweep is left out, the rest applies
    assert len(problems) == 1 and "YANEX_PARAM_x" in problems[0] and message in problems[0]
