"""A grid search driven from Python: yanex.launch runs the grid, yanex.results finds the best.

    python examples/grid_search.py [--jobs 2]

Every combination of three learning rates and two models is a tracked experiment of
examples/train.py, run --jobs at a time; the best by final validation loss is printed with the
command line that runs it again.
"""

import argparse

import yanex
import yanex.results

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--jobs", type=int, default=2, help="experiments run at once")
options = parser.parse_args()

runs = yanex.launch(
    {"optimizer": {"lr": "logspace(-3, -1, 3)"}, "model": "list(linear, poly)"},
    "examples/train.py",
    name="grid",
    tags=["grid-search"],
    jobs=options.jobs,
)
for run in runs:
    print(f"{run.id}  {run.status:<9}  {run.name}  {run.duration or 0:.1f}s")
best = yanex.results.get_best("val_loss", tags=["grid-search"], ids=[run.id for run in runs])
if best is not None:
    print(f"best: {best.id} {best.name}: val_loss {best.last['val_loss']:.4f}")
