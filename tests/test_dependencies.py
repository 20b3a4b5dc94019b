"""Dependencies between experiments (``-D/--depends-on``), yanex 0.6's meaning, end to end.

Real runs in a real git repository: what `-D` records, how scripts read it, the refusals (each
exit 2 with nothing created or changed), sweeps over dependencies in the grid's order, a staged
pipeline run upstream first (locally, and on a real Dask cluster), a failed dependency failing
what depends on it without running it, show/get/list and the dashboard both ways, and delete.
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime
from pathlib import Path

import pytest
from conftest import Project, assert_usage_error, git, metadata, run_python

PREP = """
import sys, time, yanex
dataset = yanex.get_param("dataset", "mnist")
time.sleep(yanex.get_param("sleep", 0))
yanex.save_artifact({"dataset": dataset}, "data.json")
yanex.log_results({"rows": 10})
print("prepared", dataset, flush=True)
if dataset == "bad":
    sys.exit(3)
"""

TRAIN = """
import yanex
yanex.assert_dependency("prep.py", slot="data")
data = yanex.get_dependency("data")
lr = yanex.get_param("lr", 0.1)
print("trained on", data.id, data.get_params().get("dataset", "mnist"),
      yanex.load_artifact("data.json")["dataset"], "lr", lr, flush=True)
yanex.save_artifact({"lr": lr, "data": data.id}, "model.json")
"""

EVAL = """
import yanex
model = yanex.get_dependency("model")
chain = yanex.get_dependencies(transitive=True)
print("evaluated", model.id, "chain", ",".join(dep.id for dep in chain),
      "data", yanex.load_artifact("data.json")["dataset"], flush=True)
"""

RUN_ID = re.compile(r"yanex: experiment ([0-9a-f]{8}) ")


def setup(project: Project) -> Project:
    project.write("prep.py", PREP)
    project.write("train.py", TRAIN)
    project.write("eval.py", EVAL)
    project.commit("pipeline")
    return project


def run(project: Project, *args: str) -> str:
    """``yanex run ARGS``, which must complete: the new experiment's ID."""
    r = project.yanex("run", *args)
    assert r.returncode == 0, (args, r.stdout, r.stderr)
    return RUN_ID.search(r.stderr).group(1)  # type: ignore[union-attr]


def stage(project: Project, *args: str) -> list[str]:
    r = project.yanex("stage", *args)
    assert r.returncode == 0, (args, r.stderr)
    return r.stdout.split()


def meta(project: Project, experiment_id: str) -> dict:
    return metadata(project.home / "experiments" / experiment_id)


def stdout_of(project: Project, experiment_id: str) -> str:
    return (project.home / "experiments" / experiment_id / "stdout.txt").read_text()


def when(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


@pytest.fixture
def pipeline(project: Project) -> Project:
    return setup(project)


# --- what -D records, and what the script reads ---------------------------------------------


@pytest.mark.slow
def test_a_dependency_is_recorded_in_full_and_read_by_the_script(pipeline: Project) -> None:
    prep = run(pipeline, "prep.py", "dataset=cifar", "-n", "prep-cifar")
    train = run(pipeline, "train.py", "-D", f"data={prep[:4]}", "lr=0.5")  # a prefix
    assert meta(pipeline, train)["dependencies"] == {"data": prep}
    assert stdout_of(pipeline, train) == f"trained on {prep} cifar cifar lr 0.5\n"
    by_name = run(pipeline, "train.py", "--depends-on", "data=prep-cifar")  # a name
    assert meta(pipeline, by_name)["dependencies"] == {"data": prep}
    # the artifact it does not have is found upstream, through the chain
    evaluated = run(pipeline, "eval.py", "-D", f"model={train}")
    assert stdout_of(pipeline, evaluated) == (
        f"evaluated {train} chain {prep},{train} data cifar\n"
    )
    # the script's yanex 0.6 flags name them too
    code = "import json, yanex; print(json.dumps(yanex.get_cli_args()['depends_on']))"
    pipeline.write("args.py", code)
    pipeline.commit("args")
    shown = run(pipeline, "args.py", "-D", prep, "-D", f"other={train}")
    assert json.loads(stdout_of(pipeline, shown)) == [f"dep1={prep}", f"other={train}"]


def test_slots_by_position_as_yanex_0_6_names_them(pipeline: Project) -> None:
    prep = run(pipeline, "prep.py")
    r = pipeline.yanex("run", "prep.py", "-D", prep, "-D", f"model={prep}", "-D", prep,
                       "--dry-run")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert f"depending on dep1={prep}, model={prep}, dep3={prep}" in r.stderr


def test_standalone_the_dependency_calls_do_nothing(pipeline: Project) -> None:
    code = (
        "import yanex; yanex.assert_dependency('prep.py', slot='data');"
        "print(yanex.get_dependency('data'), yanex.get_dependencies(),"
        " yanex.get_dependencies(transitive=True))"
    )
    r = run_python(code, cwd=pipeline.path, env=pipeline.env())
    assert r.returncode == 0 and r.stdout == "None {} []\n", r.stderr


@pytest.mark.slow
def test_assert_dependency_fails_the_run_with_the_reason(pipeline: Project) -> None:
    prep = run(pipeline, "prep.py")
    train = run(pipeline, "train.py", "-D", f"data={prep}")
    # eval's model slot holds a run of prep.py, which train.py asserts it does not want
    r = pipeline.yanex("run", "train.py", "-D", f"data={train}")
    assert r.returncode == 1
    failed = RUN_ID.search(r.stderr).group(1)  # type: ignore[union-attr]
    assert meta(pipeline, failed)["status"] == "failed"
    assert "Slot 'data' not from required script: prep.py" in meta(pipeline, failed)["error"]
    assert "Dependency in slot 'data' is not from 'prep.py'" in stdout_of(pipeline, failed)
    r = pipeline.yanex("run", "train.py")  # no dependency at all
    assert r.returncode == 1 and "Missing required dependency: prep.py" in r.stderr


@pytest.mark.slow
def test_load_artifact_found_in_two_dependencies_is_ambiguous(pipeline: Project) -> None:
    first, second = run(pipeline, "prep.py"), run(pipeline, "prep.py", "dataset=cifar")
    pipeline.write(
        "both.py",
        """
        import yanex
        from yanex.errors import AmbiguousArtifactError
        print(sorted(yanex.list_artifacts(transitive=True)))
        print(yanex.get_dependency("b").load_artifact("data.json"))
        try:
            yanex.load_artifact("data.json")
        except AmbiguousArtifactError as exc:
            print("ambiguous", exc.experiment_ids)
        print(yanex.load_artifact("nowhere.json"))
        """,
    )
    pipeline.commit("both")
    both = run(pipeline, "both.py", "-D", f"a={first}", "-D", f"b={second}")
    lines = stdout_of(pipeline, both).splitlines()
    assert lines[0] == str(sorted([first, second, both]))
    assert lines[1] == "{'dataset': 'cifar'}"
    assert lines[2] in (f"ambiguous {[first, second]}", f"ambiguous {[second, first]}")
    assert lines[3] == "None"


@pytest.mark.slow
def test_the_graph_around_the_run(pipeline: Project) -> None:
    prep = run(pipeline, "prep.py")
    train = run(pipeline, "train.py", "-D", f"data={prep}")
    sibling = run(pipeline, "train.py", "-D", f"data={prep}", "lr=0.2")
    pipeline.write(
        "graph.py",
        """
        import yanex
        graph = yanex.get_graph()
        print(graph.ids, [d.id for d in graph.roots], graph.edges)
        print(len(yanex.get_graph(weakly_connected=True)))
        print([d.id for d in yanex.get_graph(weakly_connected=True).filter("train.py")])
        """,
    )
    pipeline.commit("graph")
    shown = run(pipeline, "graph.py", "-D", f"model={train}")
    ids, connected, trains = stdout_of(pipeline, shown).splitlines()
    assert (
        ids == f"{[prep, train, shown]} {[prep]} {[(prep, train, 'data'), (train, shown, 'model')]}"
    )
    assert connected == "4"  # the sibling branch too
    assert sorted(json.loads(trains.replace("'", '"'))) == sorted([train, sibling])


@pytest.mark.slow
def test_the_results_api_reads_dependencies_as_0_6_did(pipeline: Project) -> None:
    """``yr.get_experiment(ID)``'s dependencies, their parameters merged under its own, and
    ``yr.get_graph``: yanex 0.6's results API over the same pipeline."""
    prep = run(pipeline, "prep.py", "dataset=cifar", "+shared.a=1", "+shared.b=1")
    train = run(pipeline, "train.py", "-D", f"data={prep}", "lr=0.5", "+shared.b=2")
    evaluated = run(pipeline, "eval.py", "-D", f"model={train}")
    sibling = run(pipeline, "train.py", "-D", f"data={prep}", "lr=0.2")
    code = f"""
import json
import yanex.results as yr
exp = yr.get_experiment("{evaluated}")
print(json.dumps({{s: d.id for s, d in exp.get_dependencies().items()}}))
print(json.dumps([d.id for d in exp.get_dependencies(transitive=True, include_self=True)]))
print(exp.get_dependency("model").get_param("lr"), exp.get_dependency("nope"))
train = yr.get_experiment("{train}")
print(json.dumps(train.get_params(include_deps=True), sort_keys=True))
print(train.get_param("dataset", include_deps=True), train.get_param("dataset"))
graph = yr.get_graph("{train}")
print(json.dumps([graph.ids, [d.id for d in graph.leaves], len(graph.edges)]))
print(len(yr.get_graph("{train}", weakly_connected=True)))
print(graph.load_artifact("model.json")["lr"])
"""
    r = run_python(code, cwd=pipeline.path, env=pipeline.env())
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert json.loads(lines[0]) == {"model": train}
    assert json.loads(lines[1]) == [prep, train, evaluated]
    assert lines[2] == "0.5 None"
    assert json.loads(lines[3]) == {"dataset": "cifar", "lr": 0.5, "shared": {"a": 1, "b": 2}}
    assert lines[4] == "cifar None"
    assert json.loads(lines[5]) == [[prep, train, evaluated], [evaluated], 2]
    assert lines[6] == "4"  # the sibling's branch too
    assert lines[7] == "0.5"
    assert sibling not in lines[5]


@pytest.mark.slow
def test_yanex_launch_and_run_multiple_take_dependencies(pipeline: Project) -> None:
    prep = run(pipeline, "prep.py", "-n", "the-prep")
    code = f"""
import yanex
ended = yanex.launch({{"lr": 0.3}}, "train.py", dependencies={{"data": "the-prep"}})
print(ended.status)
spec = yanex.ExperimentSpec(script_path="train.py", dependencies={{"data": "{prep}"}})
print([r.status for r in yanex.run_multiple([spec])])
"""
    r = run_python(code, cwd=pipeline.path, env=pipeline.env())
    assert r.returncode == 0, r.stderr
    assert "completed" in r.stdout.splitlines() and "['completed']" in r.stdout.splitlines()
    made = [p for p in pipeline.experiments() if p.name != prep]
    assert [metadata(p)["dependencies"] for p in made] == [{"data": prep}] * 2
    other = run(pipeline, "prep.py", "dataset=cifar")
    code = f"""
import yanex
for ended in yanex.launch({{}}, "train.py", dependencies={{"data": ["{prep}", "{other}"]}}):
    print(ended.status, ended.name)
"""
    r = run_python(code, cwd=pipeline.path, env=pipeline.env())
    assert r.returncode == 0, r.stderr
    assert [line for line in r.stdout.splitlines() if line.startswith("completed")] == [
        f"completed data={prep}", f"completed data={other}",
    ]  # fmt: skip


# --- refusals: exit 2, nothing created ------------------------------------------------------


def refused(project: Project, *args: str, needles: tuple[str, ...]) -> None:
    before = project.store_entries()
    r = project.yanex("run", *args)
    assert_usage_error(r, *needles)
    assert project.store_entries() == before


@pytest.mark.slow
def test_every_refusal_names_the_problem_and_creates_nothing(pipeline: Project) -> None:
    prep = run(pipeline, "prep.py", "-n", "twin")
    run(pipeline, "prep.py", "-n", "twin")
    r = pipeline.yanex("run", "prep.py", "dataset=bad")
    failed = RUN_ID.search(r.stderr).group(1)  # type: ignore[union-attr]
    staged = stage(pipeline, "prep.py")[0]
    refused(pipeline, "train.py", "-D", "data=0bad", needles=("-D data=0bad", "no experiment"))
    refused(pipeline, "train.py", "-D", "data=twin", needles=("is the name of 2 experiments",))
    refused(pipeline, "train.py", "-D", f"data={failed}",
            needles=(f"-D data={failed}", "is failed", "must be completed"))  # fmt: skip
    refused(pipeline, "train.py", "-D", f"data={staged}",
            needles=("is staged", "Stage this one too (--stage)"))  # fmt: skip
    refused(pipeline, "train.py", "-D", f"data={staged}", "-m",
            needles=("is staged", "must be completed"))  # -m runs now  # fmt: skip
    refused(pipeline, "train.py", "-D", f"data={prep}", "-D", f"data={prep}",
            needles=("the slot 'data' is named twice",))  # fmt: skip
    refused(pipeline, "train.py", "-D", f"data={prep},{staged}", "--stage",
            needles=("is ambiguous", f'-D "data=list({prep}, {staged})"', "-m"))  # fmt: skip
    refused(pipeline, "train.py", "-D", "data=range(3)", "--stage",
            needles=("a dependency sweep lists experiments",))  # fmt: skip
    refused(pipeline, "train.py", "-D", "a b=x", needles=("is not a slot name",))
    refused(pipeline, "train.py", "-D", f"data=list({prep}, {prep})", "--stage",
            needles=(f"names experiment {prep} twice",))  # fmt: skip
    refused(
        pipeline,
        "train.py",
        "-D",
        f"data=list({prep})",
        needles=("make a grid of 1 experiments", "-m"),
    )  # a sweep needs -m or --stage


@pytest.mark.slow
def test_a_cycle_is_refused_and_never_run(pipeline: Project) -> None:
    """Only metadata edited by hand can make one: `-D` refuses it, and so does the runner."""
    first = run(pipeline, "prep.py")
    second = run(pipeline, "train.py", "-D", f"data={first}")
    edited = meta(pipeline, first)
    edited["dependencies"] = {"back": second}
    (pipeline.home / "experiments" / first / "metadata.json").write_text(json.dumps(edited))
    refused(pipeline, "eval.py", "-D", f"model={second}", needles=("in a cycle", first, second))
    a = stage(pipeline, "prep.py")[0]
    b = stage(pipeline, "train.py", "-D", f"data={a}")[0]
    edited = meta(pipeline, a)
    edited["dependencies"] = {"back": b}
    (pipeline.home / "experiments" / a / "metadata.json").write_text(json.dumps(edited))
    r = pipeline.yanex("run", "--staged")
    assert r.returncode == 1
    assert r.stderr.count("its dependencies form a cycle") == 2
    assert "2 waiting on a dependency" in r.stderr
    assert {meta(pipeline, a)["status"], meta(pipeline, b)["status"]} == {"staged"}


def test_a_staged_dependency_of_another_project_is_refused(
    pipeline: Project, tmp_path: Path
) -> None:
    other = Project(tmp_path / "other", pipeline.home)
    other.path.mkdir()
    git(other.path, "init", "-q", "-b", "main")
    other.write("prep.py", PREP)
    other.commit("other")
    elsewhere = stage(other, "prep.py")[0]
    refused(pipeline, "train.py", "-D", f"data={elsewhere}", "--stage",
            needles=("is staged in another project",))  # fmt: skip


# --- sweeps over dependencies ------------------------------------------------------------------


def grid_names(project: Project, *args: str) -> list[str]:
    r = project.yanex("run", *args, "--dry-run", "--stage")
    assert r.returncode == 0, r.stderr
    return [line.split(". ", 1)[1] for line in r.stdout.splitlines()[1:]]


@pytest.mark.slow
def test_a_dependency_sweep_is_a_grid_in_the_order_typed(pipeline: Project) -> None:
    a, b = run(pipeline, "prep.py"), run(pipeline, "prep.py", "dataset=cifar")
    # as two --param sweeps typed in the same places vary
    assert grid_names(pipeline, "train.py", "lr=list(1, 2)", "+x=list(a, b)") == [
        "lr=1,x=a", "lr=1,x=b", "lr=2,x=a", "lr=2,x=b",
    ]  # fmt: skip
    assert grid_names(pipeline, "train.py", "-D", f"data=list({a}, {b})", "lr=list(1, 2)") == [
        f"data={a},lr=1", f"data={a},lr=2", f"data={b},lr=1", f"data={b},lr=2",
    ]  # fmt: skip
    assert grid_names(pipeline, "train.py", "lr=list(1, 2)", "-D", f"data=list({a}, {b})") == [
        f"lr=1,data={a}", f"lr=1,data={b}", f"lr=2,data={a}", f"lr=2,data={b}",
    ]  # fmt: skip
    assert grid_names(pipeline, "train.py", "-D", f"data=choice({a},{b})", "-D", "x=" + a) == [
        f"data={a}", f"data={b}",
    ]  # fmt: skip
    # two swept slots, and the -m spelling of yanex 0.6's comma
    r = pipeline.yanex("run", "prep.py", "-D", f"data={a},{b}", "-D", f"more={b[:5]},{a}",
                       "-m", "-j", "2")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "4 completed" in r.stderr
    made = {tuple(metadata(p).get("dependencies", {}).values()) for p in pipeline.experiments()}
    assert {(a, b), (a, a), (b, b), (b, a)} <= made


@pytest.mark.slow
def test_staged_sweep_members_record_each_their_own(pipeline: Project) -> None:
    a, b = run(pipeline, "prep.py"), run(pipeline, "prep.py", "dataset=cifar")
    ids = stage(pipeline, "train.py", "-D", f"data=list({a}, {b})", "lr=list(1, 2)")
    recorded = [meta(pipeline, i) for i in ids]
    assert [m["dependencies"] for m in recorded] == [{"data": x} for x in (a, a, b, b)]
    assert [m["sweep_values"] for m in recorded] == [{"lr": 1}, {"lr": 2}] * 2
    assert recorded[0]["name"] == f"data={a},lr=1"
    run_command = pipeline.yanex("get", "run-command", ids[3]).stdout.strip()
    assert run_command == f"yanex run train.py -p lr=2 -D data={b} -n data={b},lr=2"


# --- a staged pipeline: upstream first; a failed dependency fails what depends on it -------


@pytest.mark.slow
def test_a_staged_pipeline_runs_upstream_first_and_stops_at_a_failure(pipeline: Project) -> None:
    good, bad = stage(pipeline, "prep.py", "dataset=list(mnist, bad)")
    trains = stage(pipeline, "train.py", "-D", f"data=list({good}, {bad})", "lr=list(1, 2)")
    evals = [stage(pipeline, "eval.py", "-D", f"model={t}")[0] for t in trains]
    r = pipeline.yanex("run", "--staged", "-j", "2")
    assert r.returncode == 1
    assert "5 completed, 5 failed, 0 cancelled, 0 refused" in r.stderr, r.stderr
    for upstream, dependent in [(good, trains[0]), (good, trains[1]),
                                (trains[0], evals[0]), (trains[1], evals[1])]:  # fmt: skip
        up, down = meta(pipeline, upstream), meta(pipeline, dependent)
        assert up["status"] == down["status"] == "completed"
        assert when(down["started_at"]) >= when(up["ended_at"])
    assert meta(pipeline, bad)["status"] == "failed"
    for failed, cause, slot in [
        (trains[2], bad, "data"),
        (trains[3], bad, "data"),
        (evals[2], trains[2], "model"),
        (evals[3], trains[3], "model"),
    ]:
        found = meta(pipeline, failed)  # fmt: skip
        assert found["status"] == "failed" and found["started_at"] is None
        assert found["error"].startswith(f"its dependency {slot}={cause} ")
        assert found["error"].endswith("failed")
        assert not (pipeline.home / "experiments" / failed / "stdout.txt").exists()  # never ran
        assert f"yanex: {failed} failed" in r.stderr
    assert stdout_of(pipeline, evals[0]) == (
        f"evaluated {trains[0]} chain {good},{trains[0]} data mnist\n"
    )


@pytest.mark.slow
def test_a_dependent_waits_for_a_slow_upstream_while_others_run(pipeline: Project) -> None:
    slow = stage(pipeline, "prep.py", "sleep=1")[0]
    quick = stage(pipeline, "prep.py", "dataset=quick")[0]
    dependent = stage(pipeline, "train.py", "-D", f"data={slow}")[0]
    r = pipeline.yanex("run", "--staged", "-j", "3")
    assert r.returncode == 0 and "3 completed" in r.stderr, r.stderr
    up, down = meta(pipeline, slow), meta(pipeline, dependent)
    assert when(down["started_at"]) >= when(up["ended_at"])
    assert when(meta(pipeline, quick)["started_at"]) < when(up["ended_at"])  # no need to wait


@pytest.mark.slow
def test_a_runner_waits_for_a_dependency_another_runner_runs(pipeline: Project) -> None:
    slow = stage(pipeline, "prep.py", "sleep=3")[0]
    dependent = stage(pipeline, "train.py", "-D", f"data={slow}")[0]
    first = pipeline.popen("run", "--staged")
    try:
        deadline = time.monotonic() + 60
        while meta(pipeline, slow)["status"] != "running":
            assert time.monotonic() < deadline and first.poll() is None
            time.sleep(0.05)
        second = pipeline.yanex("run", "--staged")  # its batch: the dependent alone
    finally:
        _, err = first.communicate(timeout=60)
    assert first.returncode == 0, err.decode()
    assert second.returncode == 0, second.stderr
    assert "running 1 staged experiments" in second.stderr  # it saw the dependent staged
    assert "waiting on a dependency" not in second.stderr + err.decode()
    down = meta(pipeline, dependent)
    assert down["status"] == "completed"
    assert when(down["started_at"]) >= when(meta(pipeline, slow)["ended_at"])


@pytest.mark.slow
def test_a_dependency_that_did_not_run_leaves_its_dependents_staged(pipeline: Project) -> None:
    upstream = stage(pipeline, "prep.py")[0]
    dependent = stage(pipeline, "train.py", "-D", f"data={upstream}")[0]
    pipeline.write("prep.py", PREP + "# changed since staging\n")
    pipeline.commit("changed")  # the upstream is refused: its code changed
    r = pipeline.yanex("run", "--staged")
    assert r.returncode == 1
    assert f"refused {upstream}" in r.stderr
    assert f"yanex: {dependent} was not run" in r.stderr and "it stays staged" in r.stderr
    assert "1 waiting on a dependency" in r.stderr
    assert meta(pipeline, dependent)["status"] == "staged"
    r = pipeline.yanex("run", "--staged", "--ignore-dirty")
    assert r.returncode == 0 and "2 completed" in r.stderr, r.stderr


# --- show, get, list, rerun --------------------------------------------------------------------


@pytest.mark.slow
def test_show_get_and_list_name_them_both_ways(pipeline: Project) -> None:
    prep = run(pipeline, "prep.py", "-n", "the-prep")
    train = run(pipeline, "train.py", "-D", f"data={prep}", "-n", "the-train")
    evaluated = run(pipeline, "eval.py", "-D", f"model={train}")
    shown = pipeline.yanex("show", train).stdout
    assert re.search(rf"dependencies\n  data +{prep}  completed  prep.py  the-prep\n", shown)
    assert re.search(rf"depended on by\n  model +{evaluated}  completed  eval.py\n", shown)
    data = json.loads(pipeline.yanex("show", train, "-f", "json").stdout)
    assert data["dependencies"] == {"data": prep}
    assert data["dependents"] == [{"id": evaluated, "slot": "model"}]

    def get(field: str, *args: str) -> str:
        r = pipeline.yanex("get", field, *args)
        assert r.returncode == 0, r.stderr
        return r.stdout

    assert get("dependencies", train, evaluated, prep) == f"data={prep}\nmodel={train}\n\n"
    assert get("upstream", evaluated) == f"{prep},{train}\n"
    assert get("downstream", prep) == f"{train},{evaluated}\n"
    assert get("downstream", prep, "--depth", "1") == f"{train}\n"
    assert get("lineage", train) == f"{prep},{train},{evaluated}\n"
    assert_usage_error(pipeline.yanex("get", "name", train, "--depth", "1"), "--depth")
    listed = pipeline.yanex("list", "--depends-on", "the-prep", "-f", "ids")
    assert listed.stdout.split() == [train]
    rows = json.loads(pipeline.yanex("list", "-f", "json").stdout)
    assert {row["id"]: row["dependencies"] for row in rows} == {
        prep: {}, train: {"data": prep}, evaluated: {"model": train},
    }  # fmt: skip
    # a rerun depends on the same experiments
    r = pipeline.yanex("rerun", evaluated)
    assert r.returncode == 0, r.stderr
    again = RUN_ID.search(r.stderr).group(1)  # type: ignore[union-attr]
    assert meta(pipeline, again)["dependencies"] == {"model": train}


# --- delete -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_deleting_what_others_depend_on_is_refused_naming_them(pipeline: Project) -> None:
    prep = run(pipeline, "prep.py")
    train = run(pipeline, "train.py", "-D", f"data={prep}")
    staged = stage(pipeline, "train.py", "-D", f"data={prep}", "lr=0.3")[0]
    before = pipeline.store_entries()
    r = pipeline.yanex("delete", prep, "--yes")
    assert_usage_error(r, f"{prep} is a dependency of", f"{train} (as data)", f"{staged} (as data)",
                       "nothing was deleted", "--ignore-dependents")  # fmt: skip
    assert pipeline.store_entries() == before
    r = pipeline.yanex("delete", prep, train, "--yes")  # still one left
    assert_usage_error(r, f"{staged} (as data)")
    assert pipeline.store_entries() == before
    r = pipeline.yanex("delete", train, "--yes")  # nobody depends on it
    assert r.returncode == 0, r.stderr
    r = pipeline.yanex("delete", prep, "--yes", "--ignore-dependents")
    assert r.returncode == 0 and not (pipeline.home / "experiments" / prep).exists()
    r = pipeline.yanex("run", "--staged")  # its dependency is gone: it fails, saying so
    assert r.returncode == 1
    assert meta(pipeline, staged)["error"] == (
        f"its dependency data={prep} is gone (deleted, or unreadable)"
    )


# --- the dashboard ------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_dashboard_links_them_both_ways_and_refuses_the_delete(pipeline: Project) -> None:
    pytest.importorskip("starlette")
    from uiserver import Server, text

    prep = run(pipeline, "prep.py", "-n", "the-prep")
    train = run(pipeline, "train.py", "-D", f"data={prep}", "-n", "the-train")
    server = Server.start(pipeline)
    try:
        page = server.get(f"/e/{train}").text
        assert f'<a href="/e/{prep}">{prep}</a> the-prep' in page
        assert "Depends on" in text(page) and "data:" in text(page)
        page = server.get(f"/e/{prep}").text
        assert "Depended on by" in text(page)
        assert f'<a href="/e/{train}">{train}</a> the-train' in page and "as data" in text(page)
        confirm = server.get(f"/e/{prep}/delete")
        assert confirm.status == 200 and "Other experiments depend on it" in text(confirm.text)
        assert f"yanex delete {prep} --ignore-dependents" in text(confirm.text)
        reply = server.post(f"/e/{prep}/delete", {"csrf": server.csrf()})
        assert reply.status == 409 and f"{prep} is a dependency of {train}" in text(reply.text)
        assert (pipeline.home / "experiments" / prep).is_dir()
    finally:
        server.stop()
    assert "Traceback" not in "".join(server.stderr)


# --- on a real Dask cluster ---------------------------------------------------------------------


@pytest.mark.slow
def test_on_dask_a_task_waits_for_its_dependencies_tasks(pipeline: Project, tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    from test_dask import Cluster

    cluster = Cluster(tmp_path)
    try:
        cluster.add_workers(2)
        slow, bad = stage(pipeline, "prep.py", "dataset=list(slow, bad)", "sleep=1")
        trains = stage(pipeline, "train.py", "-D", f"data=list({slow}, {bad})")
        evals = [stage(pipeline, "eval.py", "-D", f"model={t}")[0] for t in trains]
        # -j 0: every member is sent at once; Dask holds each until its upstream's task ended
        r = pipeline.yanex("run", "--staged", "--executor", "dask", "--scheduler",
                           cluster.address, "-j", "0")  # fmt: skip
    finally:
        cluster.close()
    assert r.returncode == 1, r.stderr
    assert "3 completed, 3 failed, 0 cancelled, 0 refused" in r.stderr, r.stderr
    for upstream, dependent in [(slow, trains[0]), (trains[0], evals[0])]:
        up, down = meta(pipeline, upstream), meta(pipeline, dependent)
        assert up["status"] == down["status"] == "completed"
        assert when(down["started_at"]) >= when(up["ended_at"])
        assert down["dask"]["worker"].startswith("tcp://127.0.0.1:")
    for failed, cause, slot in [(trains[1], bad, "data"), (evals[1], trains[1], "model")]:
        found = meta(pipeline, failed)
        assert found["status"] == "failed" and found["started_at"] is None
        assert found["error"].startswith(f"its dependency {slot}={cause}")
    assert stdout_of(pipeline, evals[0]) == (
        f"evaluated {trains[0]} chain {slow},{trains[0]} data slow\n"
    )


# --- yanex 0.6's example, examples/cli/10_dependencies, in its shape -----------------------------

# examples/cli/10_dependencies/prepare_data.py (0.6.1), its sleep removed
V06_PREPARE = '''"""
Data preprocessing simulation for dependency tracking example.

Usage:
    yanex run prepare_data.py -p dataset=mnist
    yanex run prepare_data.py -p "dataset=mnist,cifar10" --parallel 2
"""

import time

import yanex

# Get parameters
params = yanex.get_params()
dataset = params.get("dataset", "mnist")
samples = params.get("samples", 1000)

print(f"📊 Preprocessing dataset: {dataset} ({samples} samples)")

# Simulate data preprocessing
pass  # Simulate processing time (the sleep removed)

# Simulate feature extraction
features = {"mnist": 784, "cifar10": 3072, "fashion": 784}.get(dataset, 784)
print(f"  Features extracted: {features}")

# Simulate train/test split
train_size = int(samples * 0.8)
test_size = samples - train_size
print(f"  Train/test split: {train_size}/{test_size}")

# Log metrics
yanex.log_metrics(
    {
        "dataset": dataset,
        "total_samples": samples,
        "train_samples": train_size,
        "test_samples": test_size,
        "num_features": features,
    }
)

# Save simulated preprocessed data as artifact
# In real workflow, this would be actual processed data
processed_data = {
    "dataset": dataset,
    "features": features,
    "train_size": train_size,
    "test_size": test_size,
}

yanex.save_artifact(processed_data, "processed_data.pkl")
print("✓ Preprocessed data saved")
'''


# examples/cli/10_dependencies/train_model.py (0.6.1), its sleep removed
V06_TRAIN = '''"""
Model training simulation with dependency on preprocessing.

Usage:
    yanex run train_model.py -D data=<prep-id> -p learning_rate=0.01
    yanex run train_model.py -D "data=<id1>,<id2>" -p "learning_rate=0.001,0.01,0.1"
"""

import time

import yanex

# Assert that we have a preprocessing dependency
# This will fail the experiment if the dependency is missing or not assigned the "data" slot
yanex.assert_dependency("prepare_data.py", slot="data")

# Get specific dependency by slot name (recommended approach)
data_exp = yanex.get_dependency("data")

if data_exp:
    print(f"📦 Loading preprocessed data from dependency {data_exp.id}")
    # Show which dataset we're training on from the dependency's params
    dep_params = data_exp.get_params()
    if dep_params:
        print(f"  Dependency dataset: {dep_params.get('dataset', 'unknown')}")

# Load preprocessed data artifact from dependency
data = yanex.load_artifact("processed_data.pkl")
if data:
    print(f"  Dataset: {data['dataset']}")
    print(f"  Training samples: {data['train_size']}")
    print(f"  Features: {data['features']}")
else:
    print("  (Using simulated data - artifact not found)")
    data = {"dataset": "unknown", "train_size": 800, "features": 784}

# Get training parameters
params = yanex.get_params()
learning_rate = params.get("learning_rate", 0.01)
epochs = params.get("epochs", 10)

print(f"\\n🤖 Training model with lr={learning_rate}")

# Simulate training
final_loss = 0.5  # Starting loss
for epoch in range(1, epochs + 1):
    pass  # Simulate epoch duration (the sleep removed)

    # Simulate loss decrease
    final_loss = final_loss * 0.85

    if epoch in [1, epochs // 2, epochs]:
        print(f"  Epoch {epoch}/{epochs}: loss={final_loss:.4f}")

# Simulate final accuracy based on learning rate
# (In reality this would come from actual model performance)
accuracy = min(0.95, 0.7 + (0.01 / learning_rate) * 0.1)

# Log training metrics
metrics = {
    "learning_rate": learning_rate,
    "epochs": epochs,
    "final_loss": final_loss,
    "train_accuracy": accuracy,
    "dataset": data["dataset"],
}
if data_exp:
    metrics["preprocessing_id"] = data_exp.id

yanex.log_metrics(metrics)

# Save simulated trained model
model_info = {
    "learning_rate": learning_rate,
    "epochs": epochs,
    "final_loss": final_loss,
    "accuracy": accuracy,
}

yanex.save_artifact(model_info, "trained_model.pkl")
print("✓ Trained model saved")
'''


# examples/cli/10_dependencies/evaluate_model.py (0.6.1), its sleep removed
V06_EVALUATE = '''"""
Model evaluation simulation with dependency on training.

Usage:
    yanex run evaluate_model.py -D model=<training-id>
    yanex run evaluate_model.py -D "model=<id1>,<id2>,<id3>" --parallel 3
"""

import time

import yanex

# Assert that we have a training dependency
# This will fail the experiment if the dependency is missing
yanex.assert_dependency("train_model.py", slot="model")

# Get specific dependency by slot name (recommended approach)
model_exp = yanex.get_dependency("model")

if model_exp:
    print(f"📦 Loading trained model from dependency {model_exp.id}")
    # Show training info from the dependency's params
    dep_params = model_exp.get_params()
    if dep_params:
        print(f"  Model trained with lr={dep_params.get('learning_rate', 'unknown')}")

# Load trained model artifact from dependency
model = yanex.load_artifact("trained_model.pkl")
if model:
    print(f"  Model learning rate: {model['learning_rate']}")
    print(f"  Training epochs: {model['epochs']}")
    print(f"  Training loss: {model['final_loss']:.4f}")
else:
    print("  (Using simulated model - artifact not found)")
    model = {"learning_rate": 0.01, "epochs": 10, "final_loss": 0.15}

# Can also access transitive dependencies (preprocessing)
all_deps = yanex.get_dependencies(transitive=True)
print(f"\\n📊 Full pipeline: {len(all_deps)} dependencies")
for i, dep in enumerate(all_deps, 1):
    print(f"  {i}. {dep.id} ({dep.name or 'unnamed'})")

print("\\n📈 Evaluating model...")

# Simulate evaluation
pass  # Simulate evaluation time (the sleep removed)

# Simulate test metrics (based on training metrics)
test_accuracy = model.get("accuracy", 0.90) * 0.95  # Slightly lower than training
test_loss = model["final_loss"] * 1.1  # Slightly higher than training

# Simulate confusion matrix values
tp = int(test_accuracy * 100)
fp = int((1 - test_accuracy) * 50)
fn = int((1 - test_accuracy) * 50)
tn = 100 - tp

print(f"  Test accuracy: {test_accuracy * 100:.1f}%")
print(f"  Test loss: {test_loss:.4f}")
print(f"  Precision: {tp / (tp + fp):.3f}")
print(f"  Recall: {tp / (tp + fn):.3f}")

# Log evaluation metrics
eval_metrics = {
    "test_accuracy": test_accuracy,
    "test_loss": test_loss,
    "precision": tp / (tp + fp),
    "recall": tp / (tp + fn),
    "true_positives": tp,
    "false_positives": fp,
    "false_negatives": fn,
    "true_negatives": tn,
}
if model_exp:
    eval_metrics["training_id"] = model_exp.id

yanex.log_metrics(eval_metrics)

# Save evaluation report
eval_report = {
    "test_accuracy": test_accuracy,
    "test_loss": test_loss,
    "confusion_matrix": {"tp": tp, "fp": fp, "fn": fn, "tn": tn},
}

yanex.save_artifact(eval_report, "evaluation_report.pkl")
print("✓ Evaluation complete")
'''


@pytest.mark.slow
def test_yanex_0_6_dependencies_example(project: Project) -> None:
    """0.6's three scripts, unchanged, run with the example's commands (0.6's -D spellings;
    its bare-comma -p sweeps and --parallel in today's spelling: -m / list(), -j)."""
    project.write("prepare_data.py", V06_PREPARE)
    project.write("train_model.py", V06_TRAIN)
    project.write("evaluate_model.py", V06_EVALUATE)
    project.commit("example 10")
    # Linear pipeline
    prep = run(project, "prepare_data.py", "-p", "dataset=mnist", "-p", "samples=1000")
    train = run(project, "train_model.py", "-D", f"data={prep}", "-p", "learning_rate=0.01")
    out = stdout_of(project, train)
    assert f"📦 Loading preprocessed data from dependency {prep}" in out
    assert "  Dependency dataset: mnist\n  Dataset: mnist\n  Training samples: 800\n" in out
    evaluated = run(project, "evaluate_model.py", "-D", f"model={train}")
    out = stdout_of(project, evaluated)
    assert f"📦 Loading trained model from dependency {train}" in out
    assert "  Model trained with lr=0.01\n  Model learning rate: 0.01\n" in out
    assert f"📊 Full pipeline: 2 dependencies\n  1. {prep} (unnamed)\n  2. {train} (unnamed)" in out
    # Short IDs, and the dependency sweep (0.6's -D "data=ID1,ID2", with -m)
    cifar = run(project, "prepare_data.py", "-p", "dataset=cifar10")
    r = project.yanex("run", "train_model.py", "-D", f"data={prep[:4]},{cifar[:5]}",
                      "-p", "learning_rate=0.01", "-m")  # fmt: skip
    assert r.returncode == 0 and "2 completed" in r.stderr, r.stderr
    # Cartesian product: 2 dependencies x 3 learning rates = 6
    r = project.yanex("run", "train_model.py", "-D", f"data={prep},{cifar}",
                      "-p", "learning_rate=0.001,0.01,0.1", "-m", "-j", "2")  # fmt: skip
    assert r.returncode == 0 and "6 completed" in r.stderr, r.stderr
    # Incremental pipeline staging, then one --staged run, upstream first
    preps = stage(project, "prepare_data.py", "-p", "dataset=mnist,cifar10", "-m",
                  "--name", "preprocessing")  # fmt: skip
    trains = stage(project, "train_model.py", "-D", f"data={','.join(preps)}",
                   "-p", "learning_rate=0.001,0.01,0.1", "-m", "--name", "training")  # fmt: skip
    evals = stage(project, "evaluate_model.py", "-D", f"model={','.join(trains)}", "-m")
    assert (len(preps), len(trains), len(evals)) == (2, 6, 6)
    r = project.yanex("run", "--staged", "-j", "2")
    assert r.returncode == 0 and "14 completed" in r.stderr, r.stderr
    for dependent in [*trains, *evals]:
        ((_, upstream),) = meta(project, dependent)["dependencies"].items()
        assert when(meta(project, dependent)["started_at"]) >= when(
            meta(project, upstream)["ended_at"]
        )
    shown = project.yanex("show", evals[0]).stdout
    assert f"model        {trains[0]}  completed  train_model.py  training-" in shown
    assert meta(project, trains[0])["name"] == f"training-data={preps[0]},learning_rate=0.001"
