"""A record that replays: every member's concrete overrides rebuild its config byte for byte;
values and keys are written so that Hydra's grammar, params.json, get_param and config.yaml
all read them the same."""

from __future__ import annotations

import json
import os
import string
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import Project, metadata, run_python, same
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from yanex.config.overrides import render_value
from yanex.errors import ParamError
from yanex.grammar import parse_value

SHOW = "import json, yanex; print(json.dumps(yanex.get_params()))\n"

# A grid that mixes a group, strings with spaces, quotes, commas and backslashes, nulls,
# nested values, and dict values merged into a mapping the config has (as Hydra merges).
GRID = [
    "model=list(small, large)",
    r"""title=list('a b', "it's", 'x,y', 'back\slash', 'ends\\', '', null, 'é ü', """
    r"""{a: 1, b: [x, 'y z']}, [1, [2, null], ['a b']])""",
    "training=list({epochs: 9}, {lr_scale: 2.5})",
]


def make_tree(project: Project) -> None:
    project.write(
        "conf/config.yaml",
        """
        defaults:
          - model: small
          - _self_
        title: none
        training:
          epochs: 5
          lr_scale: 1.0
        summary: ${title}/${training.epochs}
        """,
    )
    project.write("conf/model/small.yaml", "width: 8\n")
    project.write("conf/model/large.yaml", "width: 64\n")
    project.write("show.py", SHOW)
    project.commit()


def shell(project: Project, command: str) -> subprocess.CompletedProcess[str]:
    env = project.env(PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    return subprocess.run(
        ["bash", "-c", command],
        cwd=project.path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_every_value_of_a_mixed_grid_replays_byte_for_byte(project: Project) -> None:
    make_tree(project)
    r = project.yanex("run", "show.py", *GRID, "-m", "-j", "2")
    assert r.returncode == 0, r.stderr
    members = [metadata(folder) for folder in project.experiments()]
    assert len(members) == 2 * 10 * 2
    for meta in members:
        folder = project.home / "experiments" / meta["id"]
        # Concrete, in override syntax; the name is the same text.
        assert not any("list(" in text or "None" in text for text in meta["overrides"])
        assert meta["name"] == ",".join(meta["overrides"])
        assert (folder / ".hydra" / "overrides.yaml").read_text() == yaml.safe_dump(
            meta["overrides"], allow_unicode=True
        )
    # Replaying the recorded command (`yanex get run-command`) rebuilds each config: one
    # member per title (the values that need quoting), the models and trainings alternating,
    # so that every value of every swept key is replayed.
    by_index = {meta["sweep_index"]: meta for meta in members}
    replayed = [by_index[(t % 2) * 20 + t * 2 + (t // 2) % 2] for t in range(10)]
    assert {m["overrides"][0] for m in replayed} == {o for m in members for o in m["overrides"][:1]}
    assert {m["overrides"][2] for m in replayed} == {m["overrides"][2] for m in members}
    for meta in replayed:
        command = project.yanex("get", "run-command", meta["id"]).stdout.strip()
        replay = shell(project, command)
        assert replay.returncode == 0, (command, replay.stderr)
        again = project.experiments()[-1]
        original = project.home / "experiments" / meta["id"]
        assert (again / "config.yaml").read_bytes() == (original / "config.yaml").read_bytes()
        assert (again / ".hydra" / "config.yaml").read_bytes() == (
            original / ".hydra" / "config.yaml"
        ).read_bytes()


@pytest.mark.slow
def test_members_take_hydras_merge_and_the_values_as_typed(project: Project) -> None:
    make_tree(project)
    r = project.yanex("run", "show.py", *GRID, "--stage")
    assert r.returncode == 0, r.stderr
    ids = r.stdout.split()
    params = [
        json.loads((project.home / "experiments" / i / "params.json").read_text()) for i in ids
    ]
    assert [p["title"] for p in params[:20:2]] == [
        "a b",
        "it's",
        "x,y",
        "back\\slash",
        "ends\\",
        "",
        None,
        "é ü",
        {"a": 1, "b": ["x", "y z"]},
        [1, [2, None], ["a b"]],
    ]
    assert [p["training"] for p in params[:2]] == [
        {"epochs": 9, "lr_scale": 1.0},  # merged into the config's mapping, as Hydra does
        {"epochs": 5, "lr_scale": 2.5},
    ]
    assert params[0]["summary"] == "a b/9"  # interpolations follow each member's values
    assert metadata(project.home / "experiments" / ids[12])["overrides"][1] == "title=null"


@pytest.mark.slow
def test_a_plain_configs_members_replay_too(project: Project) -> None:
    project.write("config.yaml", "x: 0\nopt:\n  lr: 0.1\n  momentum: 0.9\n")
    project.write("show.py", SHOW)
    project.commit()
    args = ["x=list(null, 'a,b', [1, 'c d'])", "opt=list({lr: 0.5})", "+y=range(2)", "--stage"]
    r = project.yanex("run", "show.py", *args)
    assert r.returncode == 0, r.stderr
    for experiment_id in r.stdout.split():
        meta = metadata(project.home / "experiments" / experiment_id)
        replay = project.yanex("run", "show.py", *meta["overrides"])
        assert replay.returncode == 0, replay.stderr
        assert (project.experiments()[-1] / "config.yaml").read_bytes() == (
            project.home / "experiments" / experiment_id / "config.yaml"
        ).read_bytes()
        assert json.loads(replay.stdout)["opt"] == {"lr": 0.5, "momentum": 0.9}


# --- values and keys, written and read back ---------------------------------------------------

KEYS_AND_VALUES = """\
1: int key
false: bool key
1.5: float key
s: '1'
n: null
f: .inf
big: 123456789012345678901234567890
l: [1, [2, {x: 3}]]
"""
AGREE = """
import json, yanex
print(json.dumps([yanex.get_params(), yanex.get_param("1"), yanex.get_param("false"),
                  yanex.get_param("l.1.1.x"), yanex.get_param("x.2")]))
"""


def test_params_json_get_param_and_config_yaml_agree(project: Project) -> None:
    project.write("config.yaml", KEYS_AND_VALUES)
    project.write("agree.py", AGREE)
    project.commit()
    r = project.yanex("run", "agree.py", "+x={2: two, true: yes}")
    assert r.returncode == 0, r.stderr
    folder = project.only_experiment()
    got, by_key, by_bool, nested, from_override = json.loads(r.stdout)
    in_yaml = yaml.safe_load((folder / "config.yaml").read_text())
    in_json = json.loads((folder / "params.json").read_text())
    assert same(in_yaml, in_json) and same(in_json, got)
    assert list(in_yaml) == ["1", "false", "1.5", "s", "n", "f", "big", "l", "x"]
    assert (by_key, by_bool, nested, from_override) == ("int key", "bool key", 3, "two")
    assert in_yaml["x"] == {"2": "two", "true": "yes"}


def test_two_keys_python_takes_for_one_are_refused(project: Project) -> None:
    project.write("config.yaml", "1: int key\ntrue: bool key\n")  # 1 == True in Python
    project.write("show.py", SHOW)
    project.commit()
    r = project.yanex("run", "show.py")
    assert r.returncode == 2 and "the keys 1 and true are one key to Python" in r.stderr
    assert project.store_entries() == []


LAUNCH = """
import json, yanex
cfg = {
    "title": "Hello, world",
    "path": "C:\\\\dir\\\\",
    "quoted": "it's \\"quoted\\"",
    "spaced": "  lead and trail  ",
    "not_a_sweep": "'list(1, 2)'",
    "layers": {0: "zero", 2.5: "float", True: "bool"},
    "nothing": None,
}
r = yanex.launch(cfg, "show.py")
print(json.dumps([r.status, json.load(open(r.dir / "params.json"))]))
"""


@pytest.mark.parametrize("tree", [False, True], ids=["plain", "conf tree"])
def test_launch_keeps_strings_and_keys_as_given(project: Project, tree: bool) -> None:
    project.write("show.py", SHOW)
    if tree:
        project.write(
            "conf/config.yaml",
            "title: t\npath: p\nquoted: q\nspaced: s\nnot_a_sweep: n\nlayers: {}\nnothing: 1\n",
        )
    project.commit()
    r = run_python(textwrap.dedent(LAUNCH), cwd=project.path, env=project.env())
    assert r.returncode == 0, r.stderr
    status, params = json.loads(r.stdout.splitlines()[-1])
    assert status == "completed"
    assert params == {
        "title": "Hello, world",
        "path": "C:\\dir\\",
        "quoted": 'it\'s "quoted"',
        "spaced": "  lead and trail  ",
        "not_a_sweep": "'list(1, 2)'",
        "layers": {"0": "zero", "2.5": "float", "true": "bool"},
        "nothing": None,
    }


def test_launch_refuses_a_top_level_key_no_command_line_can_name(project: Project) -> None:
    project.write("show.py", SHOW)
    project.commit()
    code = """
    import yanex
    try:
        yanex.launch({1: "a"}, "show.py")
    except yanex.YanexError as exc:
        print(exc)
    """
    r = run_python(textwrap.dedent(code), cwd=project.path, env=project.env())
    assert "the top-level key 1 cannot be named on a command line" in r.stdout, r.stderr
    assert project.store_entries() == []


# --- render_value: Hydra's grammar reads back exactly what was written ------------------------

TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30
)
WORD = st.text(alphabet=string.ascii_letters + "_", min_size=1, max_size=8).filter(
    lambda word: word.lower() not in {"true", "false", "null", "nan", "inf"}
)
SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    TEXT,
)
VALUE = st.recursive(
    SCALAR,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(WORD, inner, max_size=4)),
    max_leaves=12,
)


@pytest.mark.slow
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(VALUE)
@example("A\n")  # a trailing newline: `$` matched before it, so it went unquoted and was lost
@example(["A\n"])
def test_any_value_renders_to_text_the_grammar_reads_back(value: Any) -> None:
    assert same(parse_value(render_value(value), "x"), value)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "null"),
        (True, "true"),
        ("true", "'true'"),
        ("adam", "adam"),
        ("data/set-1.csv", "data/set-1.csv"),
        ("a b", "'a b'"),
        ("it's", "'it\\'s'"),
        ("back\\slash", "'back\\slash'"),
        ("ends\\", "'ends\\\\'"),
        ([1, "a b", None], "[1, 'a b', null]"),
        ({"k": 1.5, 2: "v"}, "{k: 1.5, 2: v}"),
        (1e-05, "1e-05"),
        (float("-inf"), "-inf"),
    ],
)
def test_values_are_written_as_a_hydra_user_would(value: Any, text: str) -> None:
    assert render_value(value) == text


@pytest.mark.parametrize("key", ["1", "true", "INF", "null", "café"])
def test_a_string_key_the_grammar_would_read_otherwise_is_refused(key: str) -> None:
    with pytest.raises(ParamError, match="cannot be written in override syntax"):
        render_value({key: 1})
