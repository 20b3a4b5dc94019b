"""yanex 0.6's command line under today's yanex: 0.6's example scripts run in the shapes of its
examples/cli 01-09 with their documented commands, and each 0.6 flag either keeps its 0.6
meaning or stops with exit 2 naming today's spelling."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import Project, assert_usage_error, metadata, results

# --- 0.6's example scripts (sleeps shortened) -------------------------------------------------

# examples/cli/01_basic_usage/compute.py
COMPUTE = """
import time
import yanex

num_items = yanex.get_param("num_items", default=1000)
delay_ms = yanex.get_param("delay_ms", default=100)
print(f"Processing {num_items} items with {delay_ms}ms delay...")
start_time = time.time()
time.sleep(delay_ms / 100000.0)
total_time = time.time() - start_time
yanex.log_metrics({"num_items": num_items, "total_time_seconds": total_time,
                   "items_per_second": num_items / total_time})
"""

# examples/cli/02_config_files/train.py and train-config.yaml
TRAIN = """
import yanex

learning_rate = yanex.get_param("model.learning_rate", default=0.001)
epochs = yanex.get_param("training.epochs", default=10)
batch_size = yanex.get_param("training.batch_size", default=32)
print(f"Dataset: {yanex.get_param('data.dataset', default='mnist')}")
loss = 1.0 / (learning_rate * 10)
for epoch in range(epochs):
    loss *= 0.92
print(f"Training with lr={learning_rate}, epochs={epochs}, batch_size={batch_size}")
yanex.log_metrics({"final_loss": loss, "final_accuracy": max(0.5, 1.0 - loss),
                   "learning_rate": learning_rate, "epochs": epochs})
"""
TRAIN_CONFIG = """
model:
  learning_rate: 0.001
  hidden_size: 128
training:
  epochs: 10
  batch_size: 32
data:
  dataset: mnist
"""

# examples/cli/03_logging_artifacts/analyze.py (no figure)
ANALYZE = """
import random
import yanex

num_samples = yanex.get_param("num_samples", default=50)
data_points = [(i, random.uniform(10, 100)) for i in range(num_samples)]
avg = sum(v for _, v in data_points) / len(data_points)
yanex.save_artifact([{"index": i, "value": v} for i, v in data_points], "results.csv")
yanex.save_artifact(f"Samples analyzed: {num_samples}\\n", "summary.txt")
yanex.log_metrics({"num_samples": num_samples, "avg_value": avg})
print("All artifacts logged successfully!")
"""

# examples/cli/04_metadata_and_tags/scrape.py
SCRAPE = """
import random
import yanex

num_pages = yanex.get_param("num_pages", default=10)
total_items = sum(random.randint(5, 20) for _ in range(num_pages))
yanex.log_metrics({"pages_scraped": num_pages, "total_items": total_items,
                   "items_per_page": total_items / num_pages})
"""

# examples/cli/05_multi_step_metrics/train_model.py (shortened)
TRAIN_MODEL = """
import yanex

epochs = yanex.get_param("epochs", default=4)
val_frequency = yanex.get_param("val_frequency", default=2)
for epoch in range(1, epochs + 1):
    yanex.log_metrics({"train_loss": 1.0 / epoch, "train_accuracy": 0.5 + epoch / 100},
                      step=epoch)
    if epoch % val_frequency == 0:
        yanex.log_metrics({"val_loss": 1.5 / epoch}, step=epoch)
yanex.log_metrics({"final_train_accuracy": 0.5 + epochs / 100, "total_epochs": epochs})
"""

# examples/cli/07_parameter_sweeps/test_algorithm.py and sweep-config.yaml
TEST_ALGORITHM = """
import yanex

algorithm = yanex.get_param("algorithm", default="quicksort")
data_size = yanex.get_param("data_size", default=1000)
print(f"Testing {algorithm} with {data_size} elements")
yanex.log_metrics({"algorithm": algorithm, "data_size": data_size,
                   "comparisons": data_size * (2 if algorithm == "quicksort" else 3)})
"""
SWEEP_CONFIG = """
algorithm: quicksort
data_size: range(1000, 5000, 1000)
random_seed: 42
"""

# examples/cli/08_script_cli_arguments/validate_data.py
VALIDATE_DATA = """
import argparse
import yanex

parser = argparse.ArgumentParser(description="Data validation tool")
parser.add_argument("--verbose", "-v", action="store_true")
parser.add_argument("--format", choices=["json", "csv", "table"], default="table")
parser.add_argument("--check-type", choices=["basic", "thorough"], default="basic")
args = parser.parse_args()
sample_size = yanex.get_param("sample_size", default=100)
print(f"Running {args.check_type} validation on {sample_size} samples...")
if args.verbose:
    print(f"  Output format: {args.format}")
if args.format == "json":
    print(f'{{"errors": 0, "total": {sample_size}}}')
yanex.log_metrics({"sample_size": sample_size, "errors_found": 0})
"""

# examples/cli/09_staged_experiments/monitor_system.py
MONITOR = """
import yanex

duration = yanex.get_param("duration", default=5)
metric_type = yanex.get_param("metric_type", default="cpu")
print(f"Monitoring {metric_type} for {duration} seconds")
yanex.log_metrics({"metric_type": metric_type, "duration": duration})
"""


def names(project: Project, *args: str) -> list[str]:
    """The names of the experiments ``yanex list ARGS`` shows, newest first."""
    r = project.yanex("list", "-F", "json", "--all", *args)
    assert r.returncode == 0, r.stderr
    return [row["name"] for row in json.loads(r.stdout)]


def ids(project: Project, *args: str) -> list[str]:
    r = project.yanex("list", "--format", "ids", "--all", *args)
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


def by_name(project: Project) -> dict[str, Path]:
    return {metadata(folder)["name"]: folder for folder in project.experiments()}


def shell(project: Project, command: str) -> subprocess.CompletedProcess[str]:
    """``command`` run by bash with ``yanex`` on PATH, as a 0.6 doc line is typed."""
    bin_dir = project.path.parent / "bin"
    bin_dir.mkdir(exist_ok=True)
    shim = bin_dir / "yanex"
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m yanex "$@"\n')
    shim.chmod(0o755)
    env = project.env()
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    return subprocess.run(
        ["bash", "-c", command],
        cwd=project.path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


# --- examples/cli, one by one -----------------------------------------------------------------


@pytest.mark.slow
def test_01_basic_usage(project: Project) -> None:
    project.write("compute.py", COMPUTE)
    project.commit()
    for args in (
        [],
        ["--param", "num_items=5000"],
        ["-p", "num_items=2000", "-p", "delay_ms=50"],
        ["--name", "quick-test", "--tag", "benchmark"],
    ):
        r = project.yanex("run", "compute.py", *args)
        assert r.returncode == 0, r.stderr
    runs = project.experiments()
    assert [results(f)[0]["results"]["num_items"] for f in runs] == [1000, 5000, 2000, 1000]
    assert metadata(runs[-1])["name"] == "quick-test" and metadata(runs[-1])["tags"] == [
        "benchmark"
    ]
    assert "Processing 2000 items with 50ms delay" in (runs[2] / "stdout.txt").read_text()


@pytest.mark.slow
def test_02_config_files(project: Project) -> None:
    project.write("train.py", TRAIN)
    project.write("train-config.yaml", TRAIN_CONFIG)
    project.commit()
    r = project.yanex("run", "train.py", "--config", "train-config.yaml")
    assert r.returncode == 0 and "lr=0.001, epochs=10, batch_size=32" in r.stdout, r.stderr
    r = project.yanex(
        "run", "train.py", "--config", "train-config.yaml", "-p", "model.learning_rate=0.005",
        "-p", "training.epochs=20", "-p", "training.batch_size=64",
    )  # fmt: skip
    assert "lr=0.005, epochs=20, batch_size=64" in r.stdout, r.stderr
    last = project.experiments()[-1]
    assert json.loads((last / "params.json").read_text())["model"]["hidden_size"] == 128
    r = project.yanex("get", "params.model.learning_rate", last.name)
    assert r.stdout.strip() == "0.005"


@pytest.mark.slow
def test_03_logging_artifacts_show_and_open(project: Project) -> None:
    project.write("analyze.py", ANALYZE)
    project.commit()
    r = project.yanex("run", "analyze.py", "-p", "num_samples=200", "--name", "large")
    assert r.returncode == 0 and "All artifacts logged successfully!" in r.stdout, r.stderr
    folder = project.only_experiment()
    r = project.yanex("show", "large")
    assert "results.csv" in r.stdout and "summary.txt" in r.stdout
    # `yanex open ID`: the folder (in a file manager when there is a desktop; here none)
    r = project.yanex("open", folder.name[:6], DISPLAY="", WAYLAND_DISPLAY="")
    assert r.returncode == 0 and r.stdout.strip() == str(folder), r.stderr
    r = project.yanex("open", "--latest", "-t", "nothing")
    assert_usage_error(r, "no experiments match")
    r = project.yanex("get", "artifacts", "large")
    assert r.stdout.split() == [
        str(folder / "artifacts" / "results.csv"),
        str(folder / "artifacts" / "summary.txt"),
    ]
    assert project.yanex("get", "artifacts-dir", "large").stdout.strip() == str(
        folder / "artifacts"
    )
    assert project.yanex("get", "experiment-dir", "large").stdout.strip() == str(folder)


@pytest.mark.slow
def test_04_metadata_tags_and_0_6_filters(project: Project) -> None:
    project.write("scrape.py", SCRAPE)
    project.write("other.py", SCRAPE)
    project.commit()
    for args in (
        ["--name", "baseline-scraper"],
        ["--name", "fast-scraper", "--description", "Testing with reduced delays"],
        ["-t", "scraping", "-t", "production", "-t", "v2", "--name", "prod"],
        ["-t", "testing", "--name", "baseline-testing"],
    ):
        assert project.yanex("run", "scrape.py", "-p", "num_pages=3", *args).returncode == 0
    assert project.yanex("run", "other.py", "-n", "other").returncode == 0
    assert names(project, "-t", "scraping", "-t", "production") == ["prod"]
    assert names(project, "--name", "baseline-*") == ["baseline-testing", "baseline-scraper"]
    assert names(project, "-n", "*scraper*") == ["fast-scraper", "baseline-scraper"]
    assert names(project, "-s", "completed", "-t", "production") == ["prod"]
    # -c/--script: a glob of the script's name, ".py" optional (as in 0.6)
    assert len(names(project, "-c", "scrape.py")) == 4
    assert names(project, "--script", "oth*") == ["other"]
    assert names(project, "-c", "other") == ["other"]
    # -i/--ids: comma lists of IDs, prefixes or names
    assert sorted(names(project, "-i", "prod,other")) == ["other", "prod"]
    r = project.yanex("compare", "--tag", "scraping", "--no-interactive")
    assert r.returncode == 0 and "prod" in r.stdout, r.stderr
    # delete by script with 0.6's --force (no prompt)
    r = project.yanex("delete", "-c", "scrape.py", "--tag", "testing", "--force")
    assert r.returncode == 0 and "deleted 1 experiment" in r.stderr, r.stderr
    assert "baseline-testing" not in names(project)
    r = project.yanex("delete", "--tag", "dev")
    assert r.returncode == 0 and "no experiments match" in r.stderr


@pytest.mark.slow
def test_05_multi_step_metrics_read_back_as_0_6_did(project: Project) -> None:
    project.write("train_model.py", TRAIN_MODEL)
    project.commit()
    r = project.yanex("run", "train_model.py", "-p", "epochs=4", "--name", "lr-0.01")
    assert r.returncode == 0, r.stderr
    code = """
import json, yanex, yanex.results as yr
exp = yr.get_experiment("lr-0.01")
steps = exp.get_metrics(as_dataframe=False)
print(json.dumps({
    "loss": exp.get_metric("train_loss"),
    "val": exp.get_metric("val_loss"),
    "final": exp.get_metric("final_train_accuracy"),
    "steps": [s["step"] for s in steps],
    "step2": sorted(exp.get_metrics(step=2, as_dataframe=False)),
    "epochs": exp.get_param("epochs"),
    "params": exp.get_params(),
    "frame": list(exp.get_metrics().columns),
    "index": list(exp.get_metrics().index),
    "script": exp.script_path.name,
    "ended": exp.completed_at is not None and exp.started_at <= exp.completed_at,
    "same": yanex.Experiment(exp.id).id == exp.id,
}))
exp.add_tags(["reviewed"])
exp.set_name("lr-0.01-best")
exp.remove_tags(["reviewed"])
exp.add_tags(["kept"])
try:
    exp.set_status("failed")
except yanex.YanexError as e:
    print(json.dumps([exp.name, exp.tags, e.format_message().splitlines()[0]]))
"""
    r = subprocess.run(
        [sys.executable, "-c", code],
        cwd=project.path,
        env=project.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    got, changed = map(json.loads, r.stdout.splitlines())
    assert changed == [
        "lr-0.01-best",
        ["kept"],
        "set_status: a status records how a run ended and is never set by hand",
    ]
    assert metadata(project.only_experiment())["tags"] == ["kept"]
    assert got["loss"] == [1.0, 0.5, 1 / 3, 0.25]
    assert got["val"] == [0.75, 0.375]  # logged at steps 2 and 4, merged into those steps
    assert got["final"] == 0.54  # logged once: the value, not a list
    assert got["steps"] == [1, 2, 3, 4, 5]
    assert got["step2"] == ["step", "timestamp", "train_accuracy", "train_loss", "val_loss"]
    assert got["epochs"] == 4 and got["params"] == {"epochs": 4}
    assert got["frame"][:3] == ["timestamp", "train_loss", "train_accuracy"]
    assert got["index"] == [1, 2, 3, 4, 5]
    assert got["script"] == "train_model.py" and got["ended"] and got["same"]


@pytest.mark.slow
def test_07_parameter_sweeps(project: Project) -> None:
    project.write("test_algorithm.py", TEST_ALGORITHM)
    project.write("sweep-config.yaml", SWEEP_CONFIG)
    project.commit()
    # 0.6 ran a sweep at once; today a sweep runs with -m (Hydra's --multirun): the error
    # says so, and names 0.6.
    r = project.yanex("run", "test_algorithm.py", "-p", "data_size=range(1000, 5000, 1000)")
    assert_usage_error(r, "-m", "yanex 0.6 ran them without it")
    r = project.yanex("run", "test_algorithm.py", "-p", "algorithm=quicksort,mergesort,heapsort")
    assert_usage_error(r, "bare comma", "-m", "yanex 0.6")
    assert project.experiments() == []
    # --parallel N (0.6's) runs the grid at once, N at a time: -m -j N
    r = project.yanex(
        "run", "test_algorithm.py", "-p", "algorithm=quicksort,mergesort,heapsort",
        "-p", "data_size=range(1000, 3000, 1000)", "--parallel", "2", "--tag", "sweep",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "running 6 experiments, 2 at a time" in r.stderr
    assert "6 completed" in r.stderr
    swept = {(metadata(f)["sweep_values"]["algorithm"], metadata(f)["sweep_values"]["data_size"])
             for f in project.experiments()}  # fmt: skip
    assert len(swept) == 6
    r = project.yanex("run", "test_algorithm.py", "--config", "sweep-config.yaml", "-j", "0")
    assert r.returncode == 0 and "4 completed" in r.stderr, r.stderr
    r = project.yanex("compare", "--tag", "sweep", "-F", "csv")
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert len(rows) == 6 and {"params.algorithm", "params.data_size"} <= set(rows[0])
    # -j with --stage: the grid runs later
    r = project.yanex("run", "test_algorithm.py", "-p", "x=list(1, 2)", "--stage", "-j", "2")
    assert_usage_error(r, "yanex run --staged -j N")


@pytest.mark.slow
def test_08_script_flags_without_the_separator(project: Project) -> None:
    project.write("validate_data.py", VALIDATE_DATA)
    project.commit()
    # 0.6 passed the script's own flags bare; so does today's yanex when that is unambiguous
    r = project.yanex(
        "run", "validate_data.py", "-p", "sample_size=1000", "--format", "json",
        "--check-type", "thorough", "--verbose",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "Running thorough validation on 1000 samples...",
        "  Output format: json",
        '{"errors": 0, "total": 1000}',
    ]
    folder = project.experiments()[-1]
    assert metadata(folder)["args"] == ["--format", "json", "--check-type", "thorough", "--verbose"]
    # the same after `--`, and both together
    r = project.yanex("run", "validate_data.py", "-p", "sample_size=500", "--format", "csv",
                      "--", "--verbose")  # fmt: skip
    assert r.returncode == 0 and "Output format: csv" in r.stdout, r.stderr
    r = project.yanex("run", "validate_data.py", "--format", "json", "--", "--help")
    assert r.returncode == 0 and "Data validation tool" in r.stdout, r.stderr
    # what could be a mistake is refused, naming `--`; nothing is created
    before = project.experiments()
    for args, needles in (
        (["--tags", "x"], ["did you mean --tag?", "after --"]),
        (["--nmae", "x"], ["did you mean --name?"]),
        (["--out", "a=b"], ["is 'a=b' the value of the script's --out, or an override?", "--"]),
    ):
        assert_usage_error(project.yanex("run", "validate_data.py", *args), *needles)
    assert_usage_error(project.yanex("run", "--verbose", "validate_data.py"), "--verbose")
    r = project.yanex("stage", "validate_data.py", "-j", "2")
    assert_usage_error(r, "-j is an option of yanex run, not of yanex stage")
    assert project.experiments() == before


@pytest.mark.slow
def test_09_staged_experiments(project: Project) -> None:
    project.write("monitor_system.py", MONITOR)
    project.commit()
    r = project.yanex(
        "run", "monitor_system.py", "--stage", "-p", "duration=10", "-p", "metric_type=cpu",
        "--name", "cpu-run", "--tag", "monitoring",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    r = project.yanex("run", "monitor_system.py", "--stage", "-p", "metric_type=list(memory, disk)")
    assert r.returncode == 0, r.stderr
    assert len(names(project, "--status", "staged")) == 3
    assert names(project, "-s", "staged", "--since", "1 hour ago", "-t", "monitoring") == [
        "cpu-run"
    ]
    # --id (0.6's): one staged experiment, now
    r = project.yanex("run", "--id", "cpu-run")
    assert r.returncode == 0 and "Monitoring cpu for 10 seconds" in r.stdout, r.stderr
    assert names(project, "-s", "completed") == ["cpu-run"]
    assert_usage_error(project.yanex("run", "--id", "cpu-run"), "completed, not staged")
    # --parallel with --staged: -j
    r = project.yanex("run", "--staged", "--parallel", "2")
    assert r.returncode == 0 and "2 completed" in r.stderr, r.stderr
    meta = metadata(by_name(project)["metric_type=disk"])
    assert meta["cli_args"]["stage"] is True and meta["cli_args"]["param"] == [
        "metric_type=list(memory, disk)"
    ]
    r = project.yanex("delete", "-s", "completed", "-t", "monitoring", "--force")
    assert r.returncode == 0 and names(project, "-t", "monitoring") == []


# --- the silent one ---------------------------------------------------------------------------


@pytest.mark.slow
def test_a_substituted_value_from_get_is_exact_or_loud(project: Project) -> None:
    project.write("t.py", "import yanex\nprint('lr', repr(yanex.get_param('lr')))\n")
    project.commit()
    for lr, tag in ((0.1, "best"), (0.2, "best"), (0.3, "other")):
        assert project.yanex("run", "t.py", "-p", f"lr={lr}", "-t", tag).returncode == 0
    # 0.6's line: get's -s/-t/-F sweep select and join the values, -m sweeps over them
    r = shell(
        project, 'yanex run t.py -m -p "lr=$(yanex get params.lr -s completed -t best -F sweep)"'
    )
    assert r.returncode == 0, r.stderr
    assert sorted(line for line in r.stdout.splitlines()) == ["lr 0.1", "lr 0.2"]
    # values are written as Hydra's grammar reads them back: a comma in a string is quoted
    assert project.yanex("run", "t.py", "-p", "lr='a,b'", "-t", "text").returncode == 0
    r = shell(project, 'yanex run t.py -m -p "lr=$(yanex get params.lr -s completed -F sweep)"')
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.splitlines()) == sorted(
        ["lr 0.1", "lr 0.2", "lr 0.3", "lr 'a,b'", "lr 0.1", "lr 0.2"]
    )
    # an option get does not have fails before anything is printed (stdout stays empty)
    r = shell(project, "yanex get params.lr -s completed --bogus -F sweep")
    assert r.returncode == 2 and r.stdout == "" and "--bogus" in r.stderr
    # a substitution that printed nothing leaves `lr=`: the run says so
    r = shell(project, 'yanex run t.py -p "lr=$(yanex get params.lr -t nothing -F sweep)"')
    assert "no experiments match" in r.stderr
    assert "warning: lr= sets lr to an empty string" in r.stderr
    assert "lr ''" in r.stdout


# --- get ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_get_fields_and_formats_of_0_6(project: Project) -> None:
    project.write("t.py", TRAIN_MODEL.replace("epochs=4", "epochs=2"))
    project.commit()
    assert project.yanex("run", "t.py", "-n", "one", "-t", "a", "-p", "epochs=2").returncode == 0
    assert project.yanex("run", "t.py", "-n", "two", "-t", "a", "-p", "epochs=3").returncode == 0
    one, two = project.experiments()

    def get(*args: str) -> str:
        r = project.yanex("get", *args)
        assert r.returncode == 0, r.stderr
        return r.stdout

    assert get("metrics.train_loss", "one") == "0.5\n"
    assert get("metric:train_loss", "one") == get("results.train_loss", "one")
    assert get("param:epochs", "two") == "3\n"
    assert get("params", "one") == "epochs\n"
    assert (
        get("metrics", "one")
        == "train_loss, train_accuracy, val_loss, final_train_accuracy, total_epochs\n"
    )
    assert get("script_path", "one").strip().endswith("/t.py")
    assert get("completed_at", "one") == get("ended", "one") != "\n"
    assert get("git.commit_hash", "one") == get("git.commit", "one") != "\n"
    assert get("environment.python.version", "one").strip().count(".") == 2
    assert get("meta:status", "one") == "completed\n"
    assert get("cli-command", "one") == "yanex run t.py -p epochs=2 -n one -t a\n"
    # formats: sweep joins, json pairs (an object for one ID), csv, markdown
    assert get("params.epochs", "-t", "a", "-F", "sweep") == "3,2\n"
    assert json.loads(get("status", "one", "-F", "json")) == {"id": one.name, "value": "completed"}
    assert json.loads(get("params.epochs", "-s", "completed", "-F", "json")) == [
        {"id": two.name, "value": 3},
        {"id": one.name, "value": 2},
    ]
    assert get("params.epochs", "-t", "a", "-F", "csv").splitlines() == [
        "id,params.epochs",
        f"{two.name},3",
        f"{one.name},2",
    ]
    assert get("params.epochs", "-t", "a", "-F", "markdown", "-l", "1").splitlines() == [
        "| ID | params.epochs |",
        "| --- | --- |",
        f"| {two.name} | 3 |",
    ]
    assert get("results.nothing", "one", "--default", "[not_found]") == "[not_found]\n"
    # stdout/stderr, --head/--tail, -f on an ended run prints and returns
    (one / "stdout.txt").write_text("a\nb\nc\nd\n")
    assert get("stdout", "one", "--tail", "2") == "c\nd\n"
    assert get("stdout", "one", "--head", "1") == "a\n"
    assert get("stdout", "one", "--head", "1", "--tail", "1") == "a\nd\n"
    assert get("stdout", "one", "-f") == "a\nb\nc\nd\n"
    # refusals
    assert_usage_error(project.yanex("get", "bogus", "one"), "unknown field 'bogus'")
    assert_usage_error(project.yanex("get", "status", "one", "--tail", "2"), "stdout and stderr")
    assert_usage_error(project.yanex("get", "id", "-F", "yaml", "one"), "yaml")
    # -F sweep leaves out (and names) the experiments without the value: no empty items
    assert project.yanex("run", "t.py", "-n", "short", "-t", "a", "-p", "epochs=1").returncode == 0
    r = project.yanex("get", "results.val_loss", "-t", "a", "-F", "sweep")
    assert r.stdout == "0.75,0.75\n" and "1 of them have no results.val_loss, left out" in r.stderr


@pytest.mark.slow
def test_get_follows_a_running_experiments_output(project: Project) -> None:
    project.write(
        "slow.py",
        "import time\nprint('first', flush=True)\ntime.sleep(1.5)\nprint('second', flush=True)\n",
    )
    project.commit()
    run = project.popen("run", "slow.py", "-n", "slow")
    deadline = time.monotonic() + 30
    while not (project.experiments() and "first" in _read(project.experiments()[0], "stdout.txt")):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    r = project.yanex("get", "stdout", "slow", "--follow")
    assert r.returncode == 0 and r.stdout == "first\nsecond\n", r.stderr
    assert run.wait(timeout=30) == 0


def _read(folder: Path, name: str) -> str:
    path = folder / name
    return path.read_text() if path.exists() else ""


# --- filters: time words, -g, -a, -p, --name '' ----------------------------------------------


@pytest.mark.slow
def test_time_filters_in_0_6_words(project: Project) -> None:
    project.write("t.py", "print('x')\n")
    project.commit()
    assert project.yanex("run", "t.py", "-n", "old").returncode == 0
    assert project.yanex("run", "t.py", "-n", "new").returncode == 0
    old = project.experiments()[0]
    day = 86400
    meta = metadata(old)
    for key in ("created_at", "started_at", "ended_at"):  # two days ago, edited by hand
        stamp = time.time() - 2 * day
        meta[key] = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(stamp))
    (old / "metadata.json").write_text(json.dumps(meta))
    assert project.yanex("reindex").returncode == 0
    assert names(project, "--started-after", "1 hour ago") == ["new"]
    assert names(project, "--started-after", "yesterday") == ["new"]
    assert names(project, "--started-before", "yesterday") == ["old"]
    assert names(project, "--ended-before", "1 day ago") == ["old"]
    assert names(project, "--ended-after", "3 days ago") == ["new", "old"]
    assert names(project, "--since", "today") == ["new"]
    assert names(project, "--started-after", "2 weeks ago", "--started-before", "today") == ["old"]
    today = time.strftime("%Y-%m-%d")
    assert names(project, "--started-after", today) == ["new"]
    r = project.yanex("archive", "--started-before", "1 day ago", "--force")
    assert r.returncode == 0, r.stderr
    assert names(project) == ["new"]
    assert names(project, "-a") == ["new", "old"]  # 0.6's -a: archived ones too
    assert names(project, "--archived") == ["old"]
    assert_usage_error(project.yanex("list", "--started-after", "the other day"), "3 days ago")


@pytest.mark.slow
def test_projects_unnamed_runs_and_scope_flags(project: Project, tmp_path: Path) -> None:
    project.write("t.py", "print('x')\n")
    project.commit()
    assert project.yanex("run", "t.py", "-n", "named").returncode == 0
    assert project.yanex("run", "t.py").returncode == 0
    assert names(project, "--name", "") == [None]  # 0.6: '' selects the unnamed ones
    other = Project(tmp_path / "elsewhere", project.home)
    other.path.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=other.path, check=True)
    other.write("t.py", "print('y')\n")
    other.commit()
    assert other.yanex("run", "t.py", "-n", "theirs").returncode == 0
    assert names(project) == [None, "named"]
    assert set(names(project, "-g")) == set(names(project, "--global")) == {None, "named", "theirs"}
    assert names(project, "-p", "elsewhere") == ["theirs"]
    assert names(project, "--project", str(other.path)) == ["theirs"]
    assert names(project, "-p", "no-such-project") == []
    assert_usage_error(project.yanex("list", "-p", "elsewhere", "-A"), "give one of them")


# --- list / show / compare formats -----------------------------------------------------------


@pytest.mark.slow
def test_list_show_and_compare_in_0_6s_formats(project: Project, tmp_path: Path) -> None:
    project.write("t.py", TRAIN_MODEL + "yanex.get_param('seed', 0)\n")
    project.commit()
    for epochs, name in ((2, "small"), (3, "large")):
        r = project.yanex("run", "t.py", "-p", f"epochs={epochs}", "-p", "seed=1", "-n", name,
                          "-t", "baseline")  # fmt: skip
        assert r.returncode == 0, r.stderr
    r = project.yanex("list", "-s", "completed", "-F", "markdown")
    lines = r.stdout.splitlines()
    assert lines[0].startswith("| ID | NAME | STATUS | TAGS |") and lines[1].startswith("| --- |")
    assert len(lines) == 4 and "| large |" in lines[2]
    assert_usage_error(project.yanex("list", "-s", "results.loss"), "'results.loss'")
    # show: --latest with filters, -F markdown, --metrics
    r = project.yanex("show", "--latest", "-t", "baseline", "-F", "markdown", "--metrics",
                      "train_loss")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("## Experiment ") and ": large" in r.stdout.splitlines()[0]
    assert "| train_loss |" in r.stdout and "val_loss" not in r.stdout
    r = project.yanex("show", "small", "--metrics", "val_loss")
    assert "val_loss" in r.stdout and "train_accuracy" not in r.stdout
    assert_usage_error(project.yanex("show", "small", "--metrics", "nope"), "logged no 'nope'")
    assert_usage_error(project.yanex("show", "small", "-t", "x"), "--latest")
    assert project.yanex("show", "small", "--archived").returncode == 0  # 0.6: a no-op here
    r = project.yanex("show", "small", "-F", "csv")
    assert "params.epochs,2" in r.stdout
    # compare: 0.6's column choices, --max-rows, --export, markdown
    r = project.yanex("compare", "-t", "baseline", "--params", "epochs", "--metrics",
                      "train_loss,total_epochs", "-F", "csv")  # fmt: skip
    assert (
        r.stdout.splitlines()[0]
        == "id,name,status,params.epochs,results.train_loss,results.total_epochs"
    )
    r = project.yanex("compare", "-t", "baseline", "--params", "all", "-F", "csv")
    assert "params.seed" in r.stdout.splitlines()[0]
    r = project.yanex("compare", "-t", "baseline", "--only-different", "-F", "csv")
    header = r.stdout.splitlines()[0]
    assert "params.epochs" in header and "params.seed" not in header
    assert "results.val_loss" not in header  # 0.75 in both
    r = project.yanex("compare", "-t", "baseline", "--max-rows", "1", "-F", "markdown")
    assert len(r.stdout.splitlines()) == 3 and "the first 1 of 2" in r.stderr
    export = tmp_path / "prod_results.csv"
    r = project.yanex("compare", "--tag", "baseline", "--only-different", "--export", str(export))
    assert r.returncode == 0 and r.stdout == "", r.stderr
    assert len(list(csv.DictReader(export.open()))) == 2
    assert_usage_error(project.yanex("compare", "--params", "nope"), "--params 'nope'")
    r = project.yanex("compare", "-n", "nothing*")  # as list: an empty answer, not an error
    assert r.returncode == 0 and r.stdout == "" and "no experiments match" in r.stderr


# --- update, archive, delete -----------------------------------------------------------------


@pytest.mark.slow
def test_update_and_the_changes_in_0_6s_spellings(project: Project) -> None:
    project.write("t.py", "print('x')\n")
    project.commit()
    for name in ("a", "b", "c"):
        assert project.yanex("run", "t.py", "-n", name, "-t", "batch").returncode == 0
    r = project.yanex("update", "a", "--set-name", "New Name", "--set-description", "d2")
    assert r.returncode == 0, r.stderr
    meta = metadata(by_name(project)["New Name"])
    assert meta["description"] == "d2"
    # by filters: listed and confirmed (no terminal: --force/--yes)
    r = project.yanex("update", "-t", "batch", "--add-tag", "reviewed")
    assert_usage_error(r, "add --yes")
    r = project.yanex("update", "-t", "batch", "--add-tag", "reviewed", "--force", "-F", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["count"] == 3 and json.loads(r.stdout)["operation"] == "update"
    r = project.yanex("update", "-t", "batch", "--remove-tag", "reviewed", "--dry-run")
    assert "would update 3" in r.stderr and len(names(project, "-t", "reviewed")) == 3
    assert_usage_error(project.yanex("update", "b", "--set-status", "failed"), "never set by hand")
    assert_usage_error(project.yanex("update", "b", "--set-project", "x"), "repository")
    r = project.yanex("archive", "-n", "b", "-F", "csv", "--force")
    assert r.returncode == 0 and r.stdout.splitlines()[0] == "id,status,error"
    r = project.yanex("unarchive", "-n", "b", "-F", "json", "--force")
    assert json.loads(r.stdout)["operation"] == "unarchive"
    r = project.yanex("delete", "-s", "completed", "-n", "c", "--force", "-F", "json")
    assert json.loads(r.stdout)["count"] == 1 and names(project, "-n", "c") == []


# --- run's other 0.6 flags --------------------------------------------------------------------


@pytest.mark.slow
def test_clone_from_project_parallel_and_cli_args(project: Project) -> None:
    project.write(
        "t.py", "import yanex\nprint(yanex.get_params(), yanex.get_cli_args()['parallel'])\n"
    )
    project.write("u.py", "import yanex\nprint('u', yanex.get_params())\n")
    project.commit()
    assert (
        project.yanex("run", "t.py", "-p", "lr=0.1", "-p", "depth=3", "-n", "src").returncode == 0
    )
    # --clone-from ID: that run's parameters, overrides on top, for the script given
    r = project.yanex("run", "u.py", "--clone-from", "src", "-p", "lr=0.5", "-n", "clone")
    assert r.returncode == 0, r.stderr
    assert "u {'lr': 0.5, 'depth': 3}" in r.stdout
    meta = metadata(by_name(project)["clone"])
    assert meta["cloned_from"] == metadata(by_name(project)["src"])["id"]
    assert meta["cli_args"]["clone_from"] == "src"
    assert_usage_error(project.yanex("run", "u.py", "--clone-from", "nope"), "nope")
    # --parallel N on one run: recorded for the script (0.6's kfold example reads it)
    r = project.yanex("run", "t.py", "--parallel", "3")
    assert r.returncode == 0 and r.stdout.strip().endswith("3"), r.stderr
    # --project NAME: refused, saying why
    assert_usage_error(project.yanex("run", "t.py", "--project", "x"), "git repository")


@pytest.mark.slow
def test_gone_commands_say_what_to_do(project: Project) -> None:
    for verb in ("push", "pull"):
        r = project.yanex(verb, "myserver", "--dry-run")
        assert_usage_error(r, f"yanex {verb}", "rsync")
    r = project.yanex("ui", "--no-browser", "--help")
    assert r.returncode == 0


@pytest.mark.slow
def test_ui_takes_no_browser_as_0_6_did(project: Project) -> None:
    pytest.importorskip("uvicorn")
    proc = project.popen("ui", "--no-browser", "--port", "0", "--no-token")
    try:
        deadline = time.monotonic() + 60
        line = b""
        assert proc.stdout is not None
        while b"http://" not in line:
            assert time.monotonic() < deadline and proc.poll() is None
            line = proc.stdout.readline()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
