"""yanex 0.6's results API under today's yanex: its results-api notebooks, cell by cell,
against the store its README makes with 0.6's examples/cli/05_multi_step_metrics script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Project

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("pandas")
pytest.importorskip("matplotlib")

NOTEBOOKS = Path(__file__).parent / "v06_notebooks"

# examples/cli/05_multi_step_metrics/train_model.py (its 0.3 s per epoch shortened)
TRAIN_MODEL = """
import random
import time

import yanex

epochs = yanex.get_param("epochs", default=10)
learning_rate = yanex.get_param("learning_rate", default=0.01)
batch_size = yanex.get_param("batch_size", default=32)
val_frequency = yanex.get_param("val_frequency", default=2)

for epoch in range(1, epochs + 1):
    time.sleep(0.001)
    base_loss = 2.0 * (1 - epoch / (epochs + 5))
    base_accuracy = 0.5 + 0.45 * (epoch / epochs)
    train_loss = base_loss + random.uniform(-0.1, 0.1)
    train_accuracy = base_accuracy + random.uniform(-0.05, 0.05)
    yanex.log_metrics(
        {"train_loss": train_loss, "train_accuracy": train_accuracy,
         "learning_rate": learning_rate},
        step=epoch,
    )
    if epoch % val_frequency == 0:
        val_loss = train_loss + random.uniform(0, 0.2)
        val_accuracy = train_accuracy - random.uniform(0, 0.1)
        yanex.log_metrics({"val_loss": val_loss, "val_accuracy": val_accuracy}, step=epoch)

yanex.log_metrics({"final_train_accuracy": train_accuracy, "total_epochs": epochs})
"""

# Runs each code cell in one namespace, as a notebook kernel would; a cell's error is kept.
RUNNER = r"""
import json, sys
cells = json.loads(sys.stdin.read())
namespace = {"display": print, "__name__": "__main__"}
outcomes = []
for source in cells:
    try:
        exec(compile(source, "<cell>", "exec"), namespace)
        outcomes.append(None)
    except BaseException as exc:
        outcomes.append(f"{type(exc).__name__}: {exc}"[:300])
print("@@" + json.dumps(outcomes))
"""

# The cells that run, per notebook. yanex 0.6.1 itself (with pandas and matplotlib) runs 24
# of the 54 as well: 01's cell 5 treats get_metrics()' DataFrame as a list, and 02's cells
# from 4 on index compare()'s DataFrame by (group, name) pairs, both of an older 0.6; 02's
# cell 3 imports 0.6's yanex.results.dataframe (flatten_dataframe_columns for its "param:lr"
# columns), which 0.6.1 passes and today's yanex has not; 03's cell 1 passes 0.6.0's
# get_metrics(include_params=), which 0.6.1 refuses and today's yanex takes; 04 needs a
# pipeline of experiments with dependencies (its cell 1 names a placeholder ID).
EXPECTED = {
    "01_reading_experiments.ipynb": [0, 1, 2, 3, 4, 6, 7, 8, 9],
    "02_filtering_comparing.ipynb": [0, 1, 2],
    "03_metrics_visualization.ipynb": list(range(11)),
    "04_experiment_graphs.ipynb": [0],
}


@pytest.mark.slow
def test_results_api_notebooks_run_against_0_6s_example_store(project: Project) -> None:
    project.write("train_model.py", TRAIN_MODEL)
    project.commit()
    # The notebooks' README makes their 12 experiments so (a 0.6 sweep run at once).
    r = project.yanex(
        "run", "train_model.py", "--param", "epochs=10,20,30",
        "--param", "learning_rate=logspace(-4, -1, 4)", "--param", "batch_size=32",
        "--tag", "results-demo", "--parallel", "0",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "12 completed" in r.stderr
    passed: dict[str, list[int]] = {}
    errors: dict[str, list[str | None]] = {}
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        cells = [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
        proc = subprocess.run(
            [sys.executable, "-c", RUNNER],
            input=json.dumps(cells),
            cwd=project.path,
            env=project.env(MPLBACKEND="Agg"),
            capture_output=True,
            text=True,
            timeout=300,
        )
        (line,) = [x for x in proc.stdout.splitlines() if x.startswith("@@")] or [proc.stderr]
        outcomes = json.loads(line[2:])
        passed[path.name] = [i for i, outcome in enumerate(outcomes) if outcome is None]
        errors[path.name] = outcomes
    assert passed == EXPECTED, errors
    assert sum(map(len, passed.values())) == 24
