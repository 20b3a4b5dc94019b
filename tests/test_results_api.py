"""`yanex.results`: the same experiments and filters as the CLI, from Python."""

from __future__ import annotations

import json

import pytest
from conftest import Project, run_python

JOB = """
import yanex
lr = yanex.get_param("lr")
for step in range(3):
    yanex.log_results({"loss": round(lr * (3 - step), 6), "acc": round(1 - lr, 6)})
"""


@pytest.fixture
def runs(project: Project) -> Project:
    project.write("job.py", JOB)
    project.commit()
    for lr in (0.3, 0.1, 0.2):
        args = ["-p", f"lr={lr}", "-p", "+model.depth=2", "-n", f"lr{lr}"]
        r = project.yanex("run", "job.py", *args)
        assert r.returncode == 0, r.stderr
    assert project.yanex("update", "lr0.1", "--add-tag", "best").returncode == 0
    return project


def py(project: Project, code: str) -> object:
    r = run_python(
        "import json, yanex\nimport yanex.results as yr\n" + code,
        cwd=project.path,
        env=project.env(),
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.mark.slow
def test_find_filters_sorts_and_limits(runs: Project) -> None:
    assert py(runs, "print(json.dumps([r.name for r in yr.find()]))") == ["lr0.2", "lr0.1", "lr0.3"]
    found = py(runs, "print(json.dumps([r.name for r in yr.find(where='params.lr>=0.2', "
                     "sort='-results.loss')]))")  # fmt: skip
    assert found == ["lr0.3", "lr0.2"]
    assert py(runs, "print(json.dumps([r.name for r in yr.find(tags='best')]))") == ["lr0.1"]
    assert py(runs, "print(json.dumps(len(yr.find(limit=2))))") == 2
    assert py(runs, "print(json.dumps(len(yr.find(status=['failed']))))") == 0


@pytest.mark.slow
def test_a_record_holds_params_results_and_metadata(runs: Project) -> None:
    record = py(
        runs,
        "r = yr.get('lr0.2')\n"
        "print(json.dumps({'id': r.id, 'params': r.params, 'last': r.last, 'n': len(r.results),"
        " 'step': r.results[-1]['step'], 'status': r.status, 'tags': r.tags,"
        " 'script': r.metadata['script'], 'dir': str(r.dir), 'artifacts': r.artifacts,"
        " 'created': r.created.isoformat()}))",
    )
    assert record["params"] == {"lr": 0.2, "model": {"depth": 2}}
    assert record["last"] == {"loss": 0.2, "acc": 0.8} and record["n"] == 3 and record["step"] == 2
    assert record["status"] == "completed" and record["script"].endswith("job.py")
    assert record["dir"].endswith(record["id"]) and record["artifacts"] == []


@pytest.mark.slow
def test_get_best_takes_the_direction_compare_and_the_dashboard_take(runs: Project) -> None:
    """acc is higher-is-better everywhere: get_best picks the run compare marks best (the
    oracle: the last values in each run's results.jsonl), never the worst."""
    last = {}
    for folder in runs.experiments():
        lines = (folder / "results.jsonl").read_text().splitlines()
        last[json.loads((folder / "metadata.json").read_text())["name"]] = json.loads(lines[-1])
    best_acc = max(last, key=lambda name: last[name]["results"]["acc"])
    best_loss = min(last, key=lambda name: last[name]["results"]["loss"])
    assert py(runs, "print(json.dumps(yr.get_best('acc').name))") == best_acc == "lr0.1"
    assert py(runs, "print(json.dumps(yr.get_best('loss').name))") == best_loss == "lr0.1"
    compared = json.loads(runs.yanex("compare", "--format", "json").stdout)
    marked = {row["name"] for row in compared if "acc" in row["best"]}
    assert marked == {best_acc}
    # Explicit directions, yanex 0.6's keyword included.
    assert py(runs, "print(json.dumps(yr.get_best('loss', maximize=True).name))") == "lr0.3"
    assert py(runs, "print(json.dumps(yr.get_best('loss', minimize=False).name))") == "lr0.3"
    assert py(runs, "print(json.dumps(yr.get_best('acc', minimize=True).name))") == "lr0.3"
    assert py(runs, "print(json.dumps(yr.get_best('loss', where='params.lr>0.1').name))") == "lr0.2"
    assert py(runs, "print(json.dumps(yr.get_best('loss', tags='nope')))") is None


@pytest.mark.slow
def test_get_best_asks_when_it_cannot_tell(runs: Project) -> None:
    def error(call: str) -> str:
        return str(
            py(
                runs,
                f"try:\n    {call}\nexcept yanex.YanexError as e:\n"
                "    print(json.dumps(e.format_message()))",
            )
        )

    # A name that says neither way: an error that asks, not a guess.
    runs.write("other.py", "import yanex\nyanex.log_results({'thing': 1})\n")
    runs.commit()
    assert runs.yanex("run", "other.py").returncode == 0
    assert "maximize=True" in error("yr.get_best('thing')")
    assert py(runs, "print(json.dumps(yr.get_best('thing', maximize=True).params))") == {}
    # A result no experiment logged: named, with the close ones.
    assert "Did you mean results.loss" in error("yr.get_best('los')")
    assert "disagree" in error("yr.get_best('loss', maximize=True, minimize=True)")


@pytest.mark.slow
def test_dataframes(runs: Project) -> None:
    frame = py(
        runs,
        "df = yr.to_dataframe(yr.find(sort='params.lr'))\n"
        "print(json.dumps({'cols': list(df.columns), 'lr': df['params.lr'].tolist(),"
        " 'loss': df['results.loss'].tolist(), 'depth': df['params.model.depth'].tolist()}))",
    )
    assert frame["lr"] == [0.1, 0.2, 0.3] and frame["loss"] == [0.1, 0.2, 0.3]
    assert frame["depth"] == [2, 2, 2]
    assert frame["cols"][:3] == ["id", "name", "status"]
    steps = py(
        runs,
        "df = yr.metrics_dataframe(yr.get('lr0.3'))\n"
        "print(json.dumps({'cols': list(df.columns), 'loss': df['results.loss'].tolist()}))",
    )
    assert steps["cols"] == ["step", "timestamp", "results.loss", "results.acc"]
    assert steps["loss"] == [0.9, 0.6, 0.3]
    compared = py(runs, "print(json.dumps(list(yr.compare(tags=None).columns)))")
    assert "params.lr" in compared and "params.model.depth" not in compared


@pytest.mark.slow
def test_yanex_06_names_and_errors(runs: Project) -> None:
    assert py(runs, "print(json.dumps(yr.get_experiment('lr0.3').params['lr']))") == 0.3
    assert py(runs, "print(json.dumps(len(yr.get_experiments(name='lr0.*'))))") == 3
    assert py(runs, "print(json.dumps(len(yanex.results.find(all_projects=True))))") == 3
    message = py(
        runs,
        "try:\n    yr.find(where='params.lr<<1')\n"
        "except yanex.YanexError as e:\n    print(json.dumps(e.format_message()))",
    )
    assert "unknown operator '<<'" in message
    message = py(
        runs,
        "try:\n    yr.get('nope')\n"
        "except yanex.YanexError as e:\n    print(json.dumps(e.format_message()))",
    )
    assert "no experiment has the ID, ID prefix or name 'nope'" in message
