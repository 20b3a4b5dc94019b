"""K-fold cross-validation driven from Python with yanex.launch.

    python examples/kfold.py [--folds 5] [--model poly] [--jobs 2]

Each fold is a tracked experiment of examples/train.py (parameters composed from conf/, the
fold and model set here), run --jobs at a time; this script prints the mean validation loss
over the folds.
"""

import argparse
import statistics

import yanex

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--folds", type=int, default=5)
parser.add_argument("--model", default="linear", help="an option of conf/model/")
parser.add_argument("--jobs", type=int, default=1, help="folds run at once (0: one per CPU)")
options = parser.parse_args()

runs = yanex.launch(
    {"model": options.model, "data": {"fold": f"range({options.folds})", "n_folds": options.folds}},
    "examples/train.py",
    name=f"kfold-{options.model}",
    tags=["kfold"],
    jobs=options.jobs,
)
val_losses = [run.results[-1]["results"]["val_loss"] for run in runs if run.status == "completed"]
print(f"{len(val_losses)}/{options.folds} folds completed: " + ", ".join(run.id for run in runs))
if val_losses:
    mean, sd = statistics.mean(val_losses), statistics.pstdev(val_losses)
    print(f"mean val_loss {mean:.4f} (sd {sd:.4f})")
