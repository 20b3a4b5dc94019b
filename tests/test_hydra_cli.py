"""The command line a Hydra user types: positional overrides, Hydra's comma rule, -m, Hydra's
sweep functions, key typos and shell completion, through the real CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import Project, assert_usage_error, metadata

from yanex.config.overrides import parse_override
from yanex.errors import ParamError

SHOW = "import json, sys, yanex; print(json.dumps([yanex.get_params(), sys.argv[1:]]))\n"


def make_tree(project: Project) -> None:
    project.write(
        "conf/config.yaml",
        """
        defaults:
          - model: small
          - _self_
        lr: 0.1
        training:
          epochs: 5
          lr_scale: 1.0
        """,
    )
    project.write("conf/model/small.yaml", "width: 8\ndepth: 2\n")
    project.write("conf/model/large.yaml", "width: 64\ndepth: 4\n")
    project.write("show.py", SHOW)
    project.commit()


def run_show(project: Project, *args: str, **env: str) -> tuple[dict[str, Any], list[str], dict]:
    r = project.yanex("run", "show.py", *args, env=project.env(**env))
    assert r.returncode == 0, r.stderr
    params, argv = json.loads(r.stdout.splitlines()[-1])
    return params, argv, metadata(project.experiments()[-1])


def params_of(project: Project, experiment_id: str) -> dict[str, Any]:
    return json.loads((project.home / "experiments" / experiment_id / "params.json").read_text())


# --- positional overrides --------------------------------------------------------------------


@pytest.mark.slow
def test_positional_overrides_mean_the_param_forms(project: Project) -> None:
    make_tree(project)
    overrides = ["model=large", "lr=0.5", "+seed=3", "~training.lr_scale"]
    positional, argv, meta = run_show(project, *overrides, "data.csv", "--", "model=x", "--flag")
    with_param, _, _ = run_show(project, *(arg for o in overrides for arg in ("-p", o)))
    assert (
        positional
        == with_param
        == {
            "model": {"width": 64, "depth": 4},
            "lr": 0.5,
            "training": {"epochs": 5},
            "seed": 3,
        }
    )
    # What is not an override, and all after `--`, reaches the script verbatim.
    assert argv == meta["args"] == ["data.csv", "model=x", "--flag"]
    assert meta["overrides"] == overrides


@pytest.mark.slow
def test_positional_and_param_overrides_apply_in_the_order_typed(project: Project) -> None:
    make_tree(project)
    assert run_show(project, "-p", "lr=1", "lr=2")[0]["lr"] == 2
    assert run_show(project, "lr=2", "-p", "lr=1")[0]["lr"] == 1
    _, argv, meta = run_show(project, "-n", "named", "lr=3", "-t", "t1", "notes.txt")
    assert (meta["name"], meta["tags"], meta["overrides"], argv) == (
        "named",
        ["t1"],
        ["lr=3"],
        ["notes.txt"],
    )


# --- Hydra's comma rule ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "env", "fixes"),
    [
        (
            ["-p", "lr=0.1,0.01"],
            {},
            [
                """--param "lr='0.1,0.01'\"""",
                '--param "lr=[0.1,0.01]"',
                '--param "lr=list(0.1,0.01)"',
            ],
        ),
        (
            ["title=Hello, world"],
            {},
            [
                """--param "title='Hello, world'\"""",
                '--param "title=[Hello, world]"',
                '--param "title=list(Hello, world)"',
            ],
        ),
        (
            [],
            {"YANEX_PARAM_lr": "0.1,0.01"},
            [
                """YANEX_PARAM_lr="'0.1,0.01'\"""",
                'YANEX_PARAM_lr="[0.1,0.01]"',
                'YANEX_PARAM_lr="list(0.1,0.01)"',
            ],
        ),
    ],
    ids=["--param", "positional", "environment"],
)
def test_a_bare_comma_is_refused_with_hydras_three_fixes(
    project: Project, args: list[str], env: dict[str, str], fixes: list[str]
) -> None:
    make_tree(project)
    r = project.yanex("run", "show.py", *args, "--stage", env=project.env(**env))
    assert_usage_error(r, "is ambiguous", "a string:", "a list:", "a sweep:", "-m", *fixes)
    assert project.store_entries() == []


@pytest.mark.slow
def test_each_of_the_three_fixes_does_what_it_says(project: Project) -> None:
    make_tree(project)
    assert run_show(project, "lr='0.1,0.01'")[0]["lr"] == "0.1,0.01"
    assert run_show(project, "lr=[0.1,0.01]")[0]["lr"] == [0.1, 0.01]
    r = project.yanex("run", "show.py", "lr=list(0.1,0.01)", "--stage")
    assert r.returncode == 0, r.stderr
    assert [params_of(project, i)["lr"] for i in r.stdout.split()] == [0.1, 0.01]


@pytest.mark.slow
def test_a_function_that_makes_several_values_is_a_sweep_never_a_string(project: Project) -> None:
    make_tree(project)
    r = project.yanex("run", "show.py", "lr=int(2,1,0)")
    assert_usage_error(r, "lr=int(2,1,0)", "3 experiments", "-m", "--stage")
    r = project.yanex("run", "show.py", "lr=int(2,1,0)", "--stage")
    assert r.returncode == 0, r.stderr
    assert [params_of(project, i)["lr"] for i in r.stdout.split()] == [2, 1, 0]


# --- -m/--multirun -----------------------------------------------------------------------------


@pytest.mark.slow
def test_multirun_stages_the_grid_and_runs_it_at_once(project: Project) -> None:
    make_tree(project)
    r = project.yanex("run", "show.py", "lr=0.1,0.2", "model=small,large", "-m", "-j", "2")
    assert r.returncode == 0, r.stderr
    assert "running 4 experiments, 2 at a time" in r.stderr
    assert "4 completed, 0 failed, 0 cancelled, 0 refused" in r.stderr
    metas = sorted((metadata(f) for f in project.experiments()), key=lambda m: m["sweep_index"])
    assert [m["status"] for m in metas] == ["completed"] * 4
    assert len({m["sweep"] for m in metas}) == 1
    assert [m["overrides"] for m in metas] == [
        ["lr=0.1", "model=small"],
        ["lr=0.1", "model=large"],
        ["lr=0.2", "model=small"],
        ["lr=0.2", "model=large"],
    ]
    assert [m["name"] for m in metas] == [",".join(m["overrides"]) for m in metas]
    assert [m["hydra"]["choices"]["model"] for m in metas] == ["small", "large"] * 2


@pytest.mark.slow
def test_multirun_counts_a_failure_and_exits_1(project: Project) -> None:
    project.write("fail.py", "import sys, yanex; sys.exit(3 if yanex.get_param('x') == 2 else 0)\n")
    project.commit()
    r = project.yanex("run", "fail.py", "x=1,2,3", "-m")
    assert r.returncode == 1, r.stderr
    assert "2 completed, 1 failed" in r.stderr
    assert sorted(metadata(f)["status"] for f in project.experiments()) == [
        "completed",
        "completed",
        "failed",
    ]


def test_multirun_with_stage_only_stages(project: Project) -> None:
    make_tree(project)
    r = project.yanex("run", "show.py", "lr=0.1,0.2", "-m", "--stage")
    assert r.returncode == 0, r.stderr
    assert [metadata(project.home / "experiments" / i)["status"] for i in r.stdout.split()] == [
        "staged",
        "staged",
    ]


@pytest.mark.parametrize(
    "extra", [["-j", "2"], ["--executor", "dask"], ["--retries", "1"], ["--resources", "gpu=1"]]
)
def test_multirun_with_stage_refuses_options_of_a_run(project: Project, extra: list[str]) -> None:
    make_tree(project)
    r = project.yanex("run", "show.py", "lr=0.1,0.2", "-m", "--stage", *extra)
    assert_usage_error(r, "only stages", "yanex run --staged")
    assert project.store_entries() == []


def test_a_sweep_without_m_or_stage_is_refused_naming_both(project: Project) -> None:
    make_tree(project)
    r = project.yanex("run", "show.py", "lr=list(0.1, 0.2)")
    assert_usage_error(r, "2 experiments", "-m", "--stage")
    assert project.store_entries() == []


@pytest.mark.slow
def test_dry_run_lists_a_sweep_without_stage(project: Project) -> None:
    make_tree(project)
    r = project.yanex(
        "run", "show.py", "lr=list(0.1, null)", "model=list(small, large)", "--dry-run"
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [  # in Hydra's order: as typed, the last fastest
        "grid of 4 experiments:",
        "  1. lr=0.1,model=small",
        "  2. lr=0.1,model=large",
        "  3. lr=null,model=small",
        "  4. lr=null,model=large",
    ]
    assert project.store_entries() == []


# --- Hydra's sweep functions keep Hydra's meaning ----------------------------------------------


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("sort(3, 1, 2)", [1, 2, 3]),
        ("sort(list(b, c, a), reverse=true)", ["c", "b", "a"]),
        ("sort(range(3, 0, -1))", [1, 2, 3]),
        ("int(list(1.5, 2.5))", [1, 2]),
        ("float(range(1, 3))", [1.0, 2.0]),
        ("str(choice(1, true))", ["1", "true"]),
        ("range(start=1, stop=6, step=2)", [1, 3, 5]),
        ("range(1, stop=3)", [1, 2]),
        ("range(3)", [0, 1, 2]),
        ("tag(fast, choice(a, b))", ["a", "b"]),
        ("choice('a b', [c, 'd e'], {k: 'v w'})", ["a b", ["c", "d e"], {"k": "v w"}]),
        ("list(['a b'], [c])", [["a b"], ["c"]]),
    ],
)
def test_sweep_functions_have_hydras_meaning(text: str, values: list[Any]) -> None:
    ov = parse_override(f"x={text}")
    assert ov.sweep is not None
    assert list(ov.sweep.values) == values
    assert [type(v) for v in ov.sweep.values] == [type(v) for v in values]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("interval(0, 1)", "not a grid sweep"),
        ("glob(*)", "options of a config group"),
        ("range(0, 10, 0)", "step cannot be 0"),
        ("range(start=1, 2)", "positional argument follows keyword argument"),
        ("str(range(1, 3))", "Range can only be cast to int or float"),
        ("nosuch(1)", "Unknown function 'nosuch'"),
    ],
)
def test_sweep_functions_that_are_no_grid_say_so(text: str, message: str) -> None:
    with pytest.raises(ParamError) as info:
        parse_override(f"x={text}")
    assert message in info.value.format_message()


@pytest.mark.slow
def test_shuffle_draws_from_a_recorded_seed(project: Project) -> None:
    make_tree(project)
    args = ["run", "show.py", "lr=shuffle(range(12))", "--stage"]
    r = project.yanex(*args)
    assert r.returncode == 0, r.stderr
    metas = [metadata(project.home / "experiments" / i) for i in r.stdout.split()]
    order = [m["sweep_values"]["lr"] for m in metas]
    assert sorted(order) == list(range(12)) and order != list(range(12))
    seeds = {m["shuffle_seed"] for m in metas}
    assert len(seeds) == 1
    # The recorded seed repeats the order.
    again = project.yanex(*args[:-1], "--dry-run", env=project.env(YANEX_SHUFFLE_SEED=str(*seeds)))
    listed = [line.split("lr=")[1] for line in again.stdout.splitlines()[1:]]
    assert [int(v) for v in listed] == order


@pytest.mark.slow
def test_a_shuffled_list_value_is_recorded_as_drawn(project: Project) -> None:
    make_tree(project)
    params, _, meta = run_show(project, "lr=shuffle([1, 2, 3, 4, 5, 6])")
    assert sorted(params["lr"]) == [1, 2, 3, 4, 5, 6]
    assert meta["overrides"] == [f"lr={json.dumps(params['lr'])}"]
    assert isinstance(meta["shuffle_seed"], int)


@pytest.mark.slow
def test_glob_selects_options_of_a_group(project: Project) -> None:
    make_tree(project)
    project.write("conf/model/tiny.yaml", "width: 2\ndepth: 1\n")
    project.commit()
    r = project.yanex("run", "show.py", "model=glob(*, exclude=s*)", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[1:] == ["  1. model=large", "  2. model=tiny"]
    assert_usage_error(project.yanex("run", "show.py", "lr=glob(*)", "-m"), "not a group")


# --- key typos ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["model.widht=3"], ["Could not override 'model.widht'", "model.width?", "+model.widht=3"]),
        (["model.widht=list(1, 2)", "--stage"], ["no 'model.widht'", "model.width?", "+model.w"]),
        (["model=lage"], ["no option 'lage'", "did you mean large?", "available: large, small"]),
        (["~model.dpth"], ["model.depth?"]),
    ],
)
def test_typos_in_a_tree_are_refused_with_a_suggestion(
    project: Project, args: list[str], needles: list[str]
) -> None:
    make_tree(project)
    assert_usage_error(project.yanex("run", "show.py", *args), *needles)
    assert project.store_entries() == []


@pytest.mark.slow
def test_a_new_key_close_to_one_of_a_plain_config_warns(project: Project) -> None:
    project.write("config.yaml", "model:\n  lr: 0.1\n")
    project.write("show.py", SHOW)
    project.commit()
    r = project.yanex("run", "show.py", "model.lrr=0.5")
    assert r.returncode == 0, r.stderr
    warning = "'model.lrr', which the config does not have; did you mean model.lr?"
    assert warning in r.stderr
    meta = metadata(project.only_experiment())
    assert any(warning in w for w in meta["warnings"])
    assert json.loads(r.stdout)[0] == {"model": {"lr": 0.1, "lrr": 0.5}}
    # An explicit add, or a key far from any, says nothing.
    for override in ("+model.lrr=1", "batch_size=3"):
        r = project.yanex("run", "show.py", override)
        assert r.returncode == 0 and "warning" not in r.stderr, r.stderr


@pytest.mark.slow
def test_with_no_config_a_key_the_script_never_reads_is_refused(project: Project) -> None:
    project.write(
        "train.py",
        "import yanex\nprint(yanex.get_param('model.lr', 0.1), yanex.get_param('epochs', 1))\n",
    )
    project.commit()
    r = project.yanex("run", "train.py", "modle.lr=0.5")
    assert_usage_error(r, "no config was found", "train.py does not read 'modle.lr'")
    assert "did you mean model.lr?" in r.stderr and "+modle.lr=0.5" in r.stderr
    r = project.yanex("run", "train.py", "model=poly")  # run from the wrong folder, say
    assert_usage_error(r, "reads model.lr, so 'model' holds parameters, not one value")
    assert project.store_entries() == []
    for ok in (["model.lr=0.5", "epochs=3"], ["+extra=1"], ["model={lr: 0.2}"]):
        assert project.yanex("run", "train.py", *ok).returncode == 0


# --- shell completion ----------------------------------------------------------------------------

COMPLETE = r"""
eval "$(_YANEX_COMPLETE=bash_source yanex)"
complete_line() {
  COMP_LINE="$1"; COMP_POINT=${#COMP_LINE}
  read -ra COMP_WORDS <<< "$2"; COMP_CWORD=$3
  if [[ "$1" == *" " ]]; then COMP_WORDS+=(""); fi
  COMPREPLY=(); _yanex_completion yanex 2>/dev/null; echo "${COMPREPLY[*]}"
}
"""


def bash_complete(project: Project, *lines: tuple[str, str, int]) -> list[str]:
    """What bash offers for each line (as bash splits its words: at `=` too)."""
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not installed")
    script = COMPLETE + "".join(f"complete_line '{a}' '{b}' {c}\n" for a, b, c in lines)
    env = project.env(PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    out = subprocess.run(
        [bash, "-c", script], cwd=project.path, env=env, capture_output=True, text=True, timeout=120
    )
    return out.stdout.splitlines()


@pytest.mark.slow
def test_shell_completion_offers_keys_and_group_options(project: Project) -> None:
    make_tree(project)
    offered = bash_complete(
        project,
        ("yanex run show.py mod", "yanex run show.py mod", 3),
        ("yanex run show.py model=", "yanex run show.py model =", 4),
        ("yanex run show.py model=l", "yanex run show.py model = l", 5),
        ("yanex run show.py model=large model.", "yanex run show.py model = large model.", 6),
        ("yanex run show.py -p tr", "yanex run show.py -p tr", 4),
        ("yanex run show.py ~training.", "yanex run show.py ~training.", 3),
        ("yanex run --dry", "yanex run --dry", 2),
    )
    assert offered == [
        "model= model.width= model.depth=",
        "=large =small",  # bash replaces its word "=" with "=large"
        "large",
        "model.width= model.depth=",
        "training. training.epochs= training.lr_scale=",
        "~training.epochs ~training.lr_scale",
        "--dry-run",
    ]


@pytest.mark.slow
def test_shell_completion_from_a_plain_config_or_the_script(project: Project) -> None:
    project.write("config.yaml", "optimizer:\n  lr: 0.1\n")
    project.write("show.py", SHOW)
    project.write("sub/train.py", "import yanex\nyanex.get_param('data.path')\n")
    project.commit()
    assert bash_complete(
        project,
        ("yanex run show.py opt", "yanex run show.py opt", 3),
        ("yanex run sub/train.py -- x", "yanex run sub/train.py -- x", 4),
    )[:1] == ["optimizer. optimizer.lr="]
    (project.path / "config.yaml").unlink()
    assert bash_complete(
        project, ("yanex run sub/train.py da", "yanex run sub/train.py da", 3)
    ) == ["data. data.path="]
