"""Sweep functions, the grid they span, and staging it."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from conftest import Project, assert_usage_error, metadata, run_python

from yanex.config.overrides import parse_override
from yanex.errors import ParamError

SHOW = "import json, yanex; print(json.dumps(yanex.get_params()))\n"


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("list(1, 2, 3)", [1, 2, 3]),
        ("list(0.01, adam, 'two words', [1, 2])", [0.01, "adam", "two words", [1, 2]]),
        ("range(4)", [0, 1, 2, 3]),
        ("range(2, 5)", [2, 3, 4]),
        ("range(0, 10, 3)", [0, 3, 6, 9]),
        ("range(5, 0, -2)", [5, 3, 1]),
        ("range(0, 1, 0.1)", [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]),  # exact
        ("range(0.5, 2)", [0.5, 1.5]),
        ("linspace(0, 1, 5)", [0.0, 0.25, 0.5, 0.75, 1.0]),
        ("linspace(0, 100, 3)", [0, 50, 100]),  # ints stay ints
        ("linspace(0.001, 0.1, 3)", [0.001, 0.0505, 0.1]),
        ("linspace(3, 3, 1)", [3]),
        ("logspace(0, 3, 4)", [1, 10, 100, 1000]),
        ("logspace(-3, -1, 3)", [0.001, 0.01, 0.1]),
        ("sort(list(3, 1, 2))", [1, 2, 3]),  # Hydra's own helpers still work
    ],
)
def test_sweep_values(text: str, values: list[Any]) -> None:
    ov = parse_override(f"x={text}")
    assert ov.sweep is not None
    assert list(ov.sweep.values) == values
    assert [type(v) for v in ov.sweep.values] == [type(v) for v in values]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("range(0, 10, 0)", "step cannot be 0"),
        ("range(0, 10, -1)", "never reaches 10"),
        ("range(5, 5)", "is empty"),
        ("range()", "missing a required argument: 'start'"),  # Hydra's own signature
        ("range(1, 2, 3, 4)", "too many positional arguments"),
        ("linspace(0, 1, 0)", "num must be at least 1"),
        ("linspace(0, 1, 2.5)", "cannot be parsed"),
        ("list()", "at least one value"),
        ("range(a, 5)", "cannot be parsed"),
        ("linspace(0, b, 3)", "cannot be parsed"),
        ("nosuch(1, 2)", "Unknown function 'nosuch'"),
        ("range(0, 1e12)", "at most"),
    ],
)
def test_bad_sweeps_are_refused(text: str, message: str) -> None:
    with pytest.raises(ParamError) as info:
        parse_override(f"x={text}")
    assert message in info.value.format_message()


def test_a_huge_range_is_refused_before_it_is_made() -> None:
    """Refused at once: making 10**12 values first would never finish (the thread would hang)."""
    refused: list[BaseException] = []

    def parse() -> None:
        try:
            parse_override("x=range(0, 1e12)")
        except ParamError as exc:
            refused.append(exc)

    worker = threading.Thread(target=parse, daemon=True)
    worker.start()
    worker.join(timeout=120)
    assert not worker.is_alive(), "range(0, 1e12) was being expanded instead of refused"
    assert refused and "at most" in refused[0].format_message()


def test_a_bare_comma_is_a_sweep_only_with_multirun() -> None:
    with pytest.raises(ParamError) as info:
        parse_override("title=Hello, world")
    assert "ambiguous" in info.value.format_message()
    ov = parse_override("title=Hello, world", multirun=True)
    assert ov.sweep is not None and ov.sweep.values == ("Hello", "world")


def test_sweeps_without_stage_are_refused_naming_the_grid(project: Project) -> None:
    project.write("show.py", SHOW)
    project.commit()
    r = project.yanex("run", "show.py", "-p", "lr=list(0.1, 0.01)", "-p", "bs=range(3)")
    assert_usage_error(r, "6 experiments", "--stage")
    assert project.store_entries() == []


def test_dry_run_shows_the_grid_and_creates_nothing(project: Project) -> None:
    project.write("show.py", SHOW)
    project.commit()
    r = project.yanex(
        "run",
        "show.py",
        "-p",
        "lr=list(0.1, 0.01)",
        "-p",
        "bs=list(32, 64)",
        "--stage",
        "--dry-run",
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "grid of 4 experiments:",
        "  1. lr=0.1,bs=32",
        "  2. lr=0.1,bs=64",
        "  3. lr=0.01,bs=32",
        "  4. lr=0.01,bs=64",
    ]
    assert project.store_entries() == []


def staged(project: Project) -> list[dict[str, Any]]:
    metas = [metadata(folder) for folder in project.experiments()]
    return sorted(metas, key=lambda m: m["sweep_index"] if m["sweep_index"] is not None else -1)


def params_of(project: Project, experiment_id: str) -> dict[str, Any]:
    return json.loads((project.home / "experiments" / experiment_id / "params.json").read_text())


def test_stage_writes_one_staged_experiment_per_grid_member(project: Project) -> None:
    project.write("show.py", SHOW)
    project.write(
        "config.yaml",
        "model:\n  lr: linspace(0.001, 0.1, 3)\n  depth: 2\ndata:\n  seed: ${range:0,2}\n",
    )
    commit = project.commit()
    r = project.yanex("run", "show.py", "-p", "model.depth=list(2, 4)", "--stage", "-n", "grid")
    assert r.returncode == 0, r.stderr
    ids = r.stdout.split()
    assert len(ids) == 12 and "12 experiments" in r.stderr
    metas = staged(project)
    assert [m["id"] for m in metas] == ids
    assert {m["status"] for m in metas} == {"staged"}
    assert len({m["sweep"] for m in metas}) == 1 and metas[0]["sweep"]
    # The config's own sweeps vary slowest, then the overrides' in the order typed.
    assert metas[0]["name"] == "grid-model.lr=0.001,data.seed=0,model.depth=2"
    assert metas[0]["git"]["commit"] == commit and metas[0]["started_at"] is None
    assert metas[0]["project"] == str(project.path)
    grid = {
        (p["model"]["lr"], p["model"]["depth"], p["data"]["seed"])
        for p in (params_of(project, i) for i in ids)
    }
    assert grid == {
        (lr, depth, seed) for lr in (0.001, 0.0505, 0.1) for depth in (2, 4) for seed in (0, 1)
    }
    assert (project.home / "experiments" / ids[0] / "config.yaml").read_text() == (
        "model:\n  lr: 0.001\n  depth: 2\ndata:\n  seed: 0\n"
    )


@pytest.mark.slow
def test_param_overrides_a_sweep_from_the_config_and_interpolations_follow(
    project: Project,
) -> None:
    project.write("show.py", SHOW)
    project.write("config.yaml", "lr: list(0.1, 0.2)\nwarmup_lr: ${lr}\nbs: list(1, 2)\n")
    project.commit()
    r = project.yanex("stage", "show.py", "-p", "lr=0.5")
    assert r.returncode == 0, r.stderr
    configs = [params_of(project, i) for i in r.stdout.split()]
    assert configs == [
        {"lr": 0.5, "warmup_lr": 0.5, "bs": 1},
        {"lr": 0.5, "warmup_lr": 0.5, "bs": 2},
    ]
    r = project.yanex("stage", "show.py", "-p", "bs=3")
    configs = [params_of(project, i) for i in r.stdout.split()]
    assert [(c["lr"], c["warmup_lr"]) for c in configs] == [(0.1, 0.1), (0.2, 0.2)]


def test_sweeps_from_the_environment(project: Project) -> None:
    project.write("show.py", SHOW)
    project.commit()
    r = project.yanex("stage", "show.py", env=project.env(YANEX_PARAM_model__lr="list(0.1, 0.2)"))
    assert r.returncode == 0, r.stderr
    assert [params_of(project, i) for i in r.stdout.split()] == [
        {"model": {"lr": 0.1}},
        {"model": {"lr": 0.2}},
    ]


def test_stage_a_single_experiment(project: Project) -> None:
    project.write("show.py", SHOW)
    project.commit()
    r = project.yanex("run", "show.py", "-p", "lr=3", "--stage", "-t", "later")
    assert r.returncode == 0, r.stderr
    (meta,) = staged(project)
    assert meta["status"] == "staged" and meta["sweep"] is None and meta["tags"] == ["later"]
    assert not (project.home / "experiments" / meta["id"] / "stdout.txt").exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("config", "params", "message"),
    [
        ("lr: range(0, 10, 0)\n", [], "step cannot be 0"),
        ("lr: ${linspace:0,1,0}\n", [], "num must be at least 1"),
        ("lr: list()\n", [], "at least one value"),
        ("lr: linspace(a, 1, 3)\n", [], "cannot be parsed"),
        ("", ["lr=range(0, 1e12)"], "at most"),
        ("", ["a=range(1000)", "b=range(1000)"], "1,000,000 experiments"),
        ("", ["x=bogus(1)"], "Unknown function"),
    ],
)
def test_bad_sweeps_exit_2_and_create_nothing(
    project: Project, config: str, params: list[str], message: str
) -> None:
    project.write("show.py", SHOW)
    if config:
        project.write("config.yaml", config)
    project.commit()
    args = [arg for p in params for arg in ("-p", p)]
    r = project.yanex("run", "show.py", *args, "--stage")
    assert_usage_error(r, message)
    assert project.store_entries() == []


@pytest.mark.parametrize(
    ("config", "params"),
    [("name: run-${list:a,b}\n", []), ("", ["name=run-${list:a,b}"])],
    ids=["config", "--param"],
)
def test_a_sweep_inside_a_longer_value_is_refused(
    project: Project, config: str, params: list[str]
) -> None:
    """It would run once, with the text of a Python object as the value ("run-Sweep(...)")."""
    project.write("show.py", SHOW)
    project.write("config.yaml", config)
    project.commit()
    args = [arg for p in params for arg in ("-p", p)]
    r = project.yanex("run", "show.py", *args)
    assert_usage_error(
        r,
        "Error: 'name': a sweep must be the whole value, not part of a longer one",
        "tag: ${list:a,b} and name: run-${tag}",
    )
    assert "Sweep(" not in r.stdout + r.stderr
    assert project.store_entries() == []


@pytest.mark.parametrize(
    "config",
    [
        "tag: ${list:a,b}\nname: run-${tag}\n",  # the way to sweep part of a value
        "tag: '${ list : a, b }'\nname: run-${tag}\n",  # spaces, as OmegaConf allows
    ],
    ids=["interpolated", "spaced"],
)
def test_a_whole_value_sweep_interpolated_into_a_longer_value(
    project: Project, config: str
) -> None:
    project.write("show.py", SHOW)
    project.write("config.yaml", config)
    project.commit()
    r = project.yanex("stage", "show.py")
    assert r.returncode == 0, r.stderr
    assert [params_of(project, i) for i in r.stdout.split()] == [
        {"tag": "a", "name": "run-a"},
        {"tag": "b", "name": "run-b"},
    ]


@pytest.mark.slow
def test_big_grid_needs_yes_without_a_terminal(project: Project) -> None:
    project.write("show.py", SHOW)
    project.commit()
    args = ("run", "show.py", "-p", "a=range(101)", "-p", "b=range(100)", "--stage")
    r = project.yanex(*args, "--dry-run")
    assert_usage_error(r, "10,100 experiments", "--yes")
    assert project.store_entries() == []
    r = project.yanex(*args, "--dry-run", "--yes")
    assert r.returncode == 0 and r.stdout.startswith("grid of 10,100 experiments:")


CALLER = """
import json
from pathlib import Path

from omegaconf import OmegaConf
from omegaconf.basecontainer import BaseContainer

import yanex
from yanex.config.pipeline import resolve

# The calling program's own resolver named like a yanex sweep; `list` and `linspace` it lacks.
OmegaConf.register_new_resolver("range", lambda n: f"caller-{n}")
mine = BaseContainer._resolvers["range"]


def registry() -> list:
    return [
        BaseContainer._resolvers.get("range") is mine,
        str(OmegaConf.create({"x": "${range:3}"}).x),
        [OmegaConf.has_resolver(n) for n in ("list", "linspace", "logspace", "yanex.sweep")],
    ]


resolved = resolve(cwd=Path.cwd(), param_texts=["a=1"], environ={})
grid = [m.config["seed"] for m in resolved.grid.members()]
after_resolve = registry()
results = yanex.launch({"lr": 0.5}, "show.py")
after_launch = registry()
print(json.dumps([grid, after_resolve, [r.results for r in results], after_launch]))
"""


def test_a_calling_programs_resolvers_are_left_as_they_were(project: Project) -> None:
    """yanex's `range` resolves the config's sweep while it resolves a config; afterwards the
    program's own `range` is back (the same object), and `list` is again not registered."""
    project.write("show.py", "import yanex; yanex.log_results(yanex.get_params())\n")
    project.write("config.yaml", "seed: ${range:0,2}\n")
    project.commit()
    r = run_python(CALLER, cwd=project.path, env=project.env())
    assert r.returncode == 0, r.stderr
    grid, after_resolve, logged, after_launch = json.loads(r.stdout.splitlines()[-1])
    assert grid == [0, 1]
    assert [[line["results"] for line in lines] for lines in logged] == [
        [{"seed": 0, "lr": 0.5}],
        [{"seed": 1, "lr": 0.5}],
    ]
    assert after_resolve == after_launch == [True, "caller-3", [False, False, False, False]]


@pytest.mark.parametrize(
    ("config", "overrides", "shortcut"),
    [
        # plain scalars: members made by putting each value into the first member
        (
            "a: 1\nm:\n  lr: 0.1\n  layers: [64, 64]\n",
            ["a=list(1, 2.5, true, x)", "m.lr=range(3)"],
            True,
        ),
        ("a: 1\nm:\n  s: t\n", ["a=list(null, -0.0, inf, '1')", "m.s=list(a, b)"], True),
        ("a: 1\n", ["+b=list(1, 2)", "+c.d=list(x, y)"], True),
        # values OmegaConf reads as its own, interpolations, nested values, a
        # list index: every member made and resolved by OmegaConf
        ("a: 1\nm:\n  s: t\n", ["a=list(x, '???', '${m.s}')"], False),
        ("a: 1\nb: ${a}\n", ["a=range(3)"], False),
        ("a: 1\nm:\n  lr: 0.1\n", ["m=list({lr: 1}, {lr: 2})"], False),
        ("a: [1, 2]\n", ["a.0=range(2)"], False),
    ],
)
def test_members_are_the_same_however_they_are_made(
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
    config: str,
    overrides: list[str],
    shortcut: bool,
) -> None:
    """The shortcut for plain grids gives exactly the members OmegaConf would make."""
    from yanex.config import sweeps
    from yanex.config.pipeline import resolve

    (tmp_path / "config.yaml").write_text(config)
    taken: list[bool] = []
    real = sweeps._only_plain_values

    def members() -> list[tuple[Any, Any, Any]]:
        grid = resolve(cwd=tmp_path, param_texts=overrides, environ={}).grid
        return [(m.config, m.varied, m.source) for m in grid.members()]

    monkeypatch.setattr(
        sweeps, "_only_plain_values", lambda *a: taken.append(real(*a)) or taken[-1]
    )
    fast = members()
    assert taken == [shortcut]
    monkeypatch.setattr(sweeps, "_only_plain_values", lambda *a: False)
    slow = members()
    assert fast == slow and len(fast) >= 2
    assert json.dumps(fast) == json.dumps(slow)  # types too: 1 is not 1.0 or True


# --- no state that outlives a resolution ------------------------------------------------------


@pytest.mark.slow
def test_memory_stays_flat_over_repeated_resolutions(tmp_path: Any) -> None:
    """A resolution's sweeps are freed with it: nothing kept at module level grows."""
    import gc
    import tracemalloc

    from yanex.config.pipeline import resolve

    def resolve_once() -> int:
        grid = resolve(cwd=tmp_path, param_texts=["x=range(10000)"], environ={}).grid
        return grid.size

    assert resolve_once() == 10_000  # the parser and the resolvers made once, before measuring
    tracemalloc.start()
    try:
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(6):
            resolve_once()
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # One resolution's 10,000 values take about 0.4 MB; six kept would be 2.4 MB.
    assert grown < 200_000, f"{grown:,} bytes kept after 6 resolutions"


def _waiting_resolver(name: str, inside: threading.Event, go: threading.Event) -> None:
    """A resolver of the test's own that holds a resolution inside yanex until ``go``."""
    from omegaconf import OmegaConf

    def wait() -> int:
        inside.set()
        assert go.wait(30), "the other thread never let this one go on"
        return 7

    OmegaConf.register_new_resolver(name, wait, replace=True)


def test_a_thread_keeps_the_resolvers_it_registers_while_yanex_resolves(tmp_path: Any) -> None:
    """Another thread of the program (a Hydra app, which registers ``now`` whenever it composes,
    or a program with a ``range`` of its own) registers resolvers while yanex resolves a
    member: they are still there when yanex is done."""
    from omegaconf import OmegaConf
    from omegaconf.basecontainer import BaseContainer

    from yanex.config.pipeline import resolve

    registry = BaseContainer._resolvers
    saved = {name: registry.get(name) for name in ("now", "range", "test.wait")}
    for name in saved:
        registry.pop(name, None)
    inside, go = threading.Event(), threading.Event()
    _waiting_resolver("test.wait", inside, go)
    (tmp_path / "config.yaml").write_text("year: ${now:%Y}\nwait: ${test.wait:}\nlr: 0.1\n")
    try:
        grid = resolve(cwd=tmp_path, param_texts=["lr=list(0.1, 0.2)"], environ={}).grid
        found: list[Any] = []
        yanex_thread = threading.Thread(target=lambda: found.extend(grid.members()))
        yanex_thread.start()
        assert inside.wait(30)  # yanex is resolving a member, its resolvers registered
        OmegaConf.register_new_resolver("now", lambda pattern: "theirs", replace=True)
        OmegaConf.register_new_resolver("range", lambda n: f"theirs-{n}", replace=True)
        go.set()
        yanex_thread.join(30)
        assert [member.config["lr"] for member in found] == [0.1, 0.2]
        assert found[0].config["wait"] == 7
        theirs = OmegaConf.create({"t": "${now:%Y}", "r": "${range:3}"})
        assert (theirs.t, theirs.r) == ("theirs", "theirs-3")
    finally:
        go.set()
        for name, resolver in saved.items():
            registry.pop(name, None)
            if resolver is not None:
                registry[name] = resolver


def test_two_threads_resolving_at_once_keep_their_own_sweeps(tmp_path: Any) -> None:
    """Two resolutions in two threads, each held half-way (its sweep placed in its config, not
    yet found): the second waits for the first to end, and each grid holds its own values."""
    from omegaconf.basecontainer import BaseContainer

    from yanex.config.pipeline import resolve

    events = {name: (threading.Event(), threading.Event()) for name in ("a", "b")}
    grids: dict[str, Any] = {}

    def resolving(name: str, values: str) -> threading.Thread:
        _waiting_resolver(f"test.wait_{name}", *events[name])
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.yaml").write_text(f"x: ${{test.wait_{name}:}}\ny: 0\n")
        texts = [f"y=list({values})", "x=3"]  # y is placed as a sweep, then reading x waits

        def run() -> None:
            grids[name] = resolve(cwd=tmp_path / name, param_texts=texts, environ={}).grid

        return threading.Thread(target=run)

    first, second = resolving("a", "1, 2"), resolving("b", "10, 20, 30")
    try:
        first.start()
        assert events["a"][0].wait(30)  # the first holds its placeholders
        second.start()
        assert not events["b"][0].wait(0.5)  # the second waits for the first to end
        events["a"][1].set()
        first.join(30)
        events["b"][1].set()
        second.join(30)
        assert [m.config for m in grids["a"].members()] == [{"x": 3, "y": 1}, {"x": 3, "y": 2}]
        assert [m.config for m in grids["b"].members()] == [{"x": 3, "y": v} for v in (10, 20, 30)]
    finally:
        for _, go in events.values():
            go.set()
        for name in events:
            BaseContainer._resolvers.pop(f"test.wait_{name}", None)
