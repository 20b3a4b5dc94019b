"""yanex 0.6's Python names under today's yanex: its example programs (the run API's and the
script API's, in the shapes of 0.6's examples/), its keywords, and what each name means."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
from conftest import Project, metadata, process_gone, results, run_python

# --- 0.6's examples/run-api -----------------------------------------------------------------

# examples/run-api/01_creating_experiments/process_data.py (the sleep shortened)
PROCESS_DATA = """
import time
from pathlib import Path

import yanex


def process_dataset(dataset_size, chunk_size):
    num_chunks = dataset_size // chunk_size
    processed_items = 0
    print(f"Processing {dataset_size} items in chunks of {chunk_size}...")
    for i in range(num_chunks):
        time.sleep(0.01)
        processed_items += chunk_size
        yanex.log_metrics({"chunk": i + 1, "items_processed": processed_items}, step=i + 1)
        print(f"  Chunk {i + 1}/{num_chunks}: processed {processed_items} items")
    return processed_items


def main():
    with yanex.create_experiment(
        script_path=Path(__file__),
        name="data-processing-example",
        config={"dataset_size": 1000, "chunk_size": 200, "output_format": "json"},
        tags=["data-processing", "example"],
        description="Example demonstrating programmatic experiment creation",
    ):
        exp_id = yanex.get_experiment_id()
        exp_dir = yanex.get_experiment_dir()
        print(f"Started experiment: {exp_id}")
        print(f"Experiment directory: {exp_dir}")
        dataset_size = yanex.get_param("dataset_size")
        chunk_size = yanex.get_param("chunk_size")
        output_format = yanex.get_param("output_format")
        total_processed = process_dataset(dataset_size, chunk_size)
        yanex.log_metrics(
            {
                "total_processed": total_processed,
                "num_chunks": dataset_size // chunk_size,
                "output_format": output_format,
            }
        )
        print(f"Total items processed: {total_processed}")
    print("after:", yanex.get_experiment_id(), yanex.is_standalone())


if __name__ == "__main__":
    main()
"""


@pytest.mark.slow
def test_creating_experiments_example(project: Project) -> None:
    project.write("process_data.py", PROCESS_DATA)
    project.commit()
    r = run_python(
        "import runpy; runpy.run_path('process_data.py', run_name='__main__')",
        cwd=project.path,
        env=project.env(),
    )
    assert r.returncode == 0, r.stderr
    folder = project.only_experiment()
    lines = r.stdout.splitlines()
    assert lines[0] == f"Started experiment: {folder.name}"
    assert lines[1] == f"Experiment directory: {folder}"
    assert lines[2:] == [
        "Processing 1000 items in chunks of 200...",
        *(f"  Chunk {i}/5: processed {i * 200} items" for i in range(1, 6)),
        "Total items processed: 1000",
        "after: None True",  # the block ended: the process is standalone again
    ]
    meta = metadata(folder)
    assert meta["status"] == "completed" and meta["exit_code"] == 0 and meta["error"] is None
    assert meta["name"] == "data-processing-example"
    assert meta["tags"] == ["data-processing", "example"]
    assert meta["description"] == "Example demonstrating programmatic experiment creation"
    assert meta["script"] == str(project.path / "process_data.py")
    assert meta["git"]["dirty"] is False and meta["duration"] >= 0.05
    assert json.loads((folder / "params.json").read_text()) == {
        "dataset_size": 1000,
        "chunk_size": 200,
        "output_format": "json",
    }
    assert [(x["step"], x["results"]) for x in results(folder)] == [
        *((i, {"chunk": i, "items_processed": i * 200}) for i in range(1, 6)),
        (6, {"total_processed": 1000, "num_chunks": 5, "output_format": "json"}),
    ]
    assert f"yanex: experiment {folder.name} completed" in r.stderr
    shown = project.yanex("show", "data-processing-example")
    assert shown.returncode == 0 and "completed" in shown.stdout


# examples/run-api/02_batch_execution/train.py and grid_search.py (no sleep, fixed numbers)
BATCH_TRAIN = """
import yanex

learning_rate = yanex.get_param("learning_rate", default=0.001)
batch_size = yanex.get_param("batch_size", default=32)
epochs = yanex.get_param("epochs", default=5)
print(f"Training with lr={learning_rate}, batch_size={batch_size}, epochs={epochs}")
accuracy = round(0.5 + epochs * 0.04 - abs(learning_rate - 0.01) * 2, 4)
yanex.log_metrics({"learning_rate": learning_rate, "batch_size": batch_size,
                   "epochs": epochs, "accuracy": accuracy})
"""

GRID_SEARCH = """
from pathlib import Path

import yanex


def main():
    experiments = []
    train_script = Path(__file__).parent / "train.py"
    for lr in [0.001, 0.01, 0.1]:
        for bs in [16, 32]:
            lr_str = str(lr).replace(".", "_")
            experiments.append(
                yanex.ExperimentSpec(
                    script_path=train_script,
                    config={"learning_rate": lr, "batch_size": bs, "epochs": 10},
                    name=f"grid-lr{lr_str}-bs{bs}",
                    tags=["grid-search", "batch-execution"],
                    description=f"Grid search: lr={lr}, batch_size={bs}",
                )
            )
    results = yanex.run_multiple(experiments, parallel=3, verbose=False)
    completed = [r for r in results if r.status == "completed"]
    failed = [r for r in results if r.status == "failed"]
    print(f"Total: {len(results)}")
    print(f"Completed: {len(completed)}")
    print(f"Failed: {len(failed)}")
    for result in completed:
        duration_str = f"{result.duration:.2f}s" if result.duration else "N/A"
        print(f"  ok {result.name}: {result.experiment_id} ({duration_str})")


if __name__ == "__main__":
    main()
"""


@pytest.mark.slow
def test_batch_execution_example(project: Project) -> None:
    project.write("batch/train.py", BATCH_TRAIN)
    project.write("batch/grid_search.py", GRID_SEARCH)
    project.commit()
    r = run_python(
        "import runpy; runpy.run_path('grid_search.py', run_name='__main__')",
        cwd=project.path / "batch",
        env=project.env(),
    )
    assert r.returncode == 0, r.stderr
    summary = [line for line in r.stdout.splitlines() if not line.startswith("Training with")]
    assert summary[:3] == ["Total: 6", "Completed: 6", "Failed: 0"]
    names = [f"grid-lr{lr}-bs{bs}" for lr in ("0_001", "0_01", "0_1") for bs in (16, 32)]
    listed = [line.split()[1:] for line in summary[3:]]
    assert [row[0].rstrip(":") for row in listed] == names  # in the order given
    by_id = {folder.name: folder for folder in project.experiments()}
    assert sorted(row[1] for row in listed) == sorted(by_id)
    for (name, experiment_id, _), (lr, bs) in zip(
        listed, [(lr, bs) for lr in (0.001, 0.01, 0.1) for bs in (16, 32)], strict=True
    ):
        meta = metadata(by_id[experiment_id])
        assert meta["name"] == name.rstrip(":") and meta["status"] == "completed"
        assert meta["tags"] == ["grid-search", "batch-execution"]
        assert meta["description"] == f"Grid search: lr={lr}, batch_size={bs}"
        (line,) = results(by_id[experiment_id])
        assert line["results"]["learning_rate"] == lr and line["results"]["batch_size"] == bs
        assert line["results"]["epochs"] == 10


# examples/run-api/03_kfold_training/train_kfold.py: orchestrator and executor in one script
KFOLD = """
from pathlib import Path

import yanex


def orchestrate_kfold(n_folds, learning_rate, parallel_workers=None):
    if parallel_workers is None:
        parallel_workers = yanex.get_cli_args().get("parallel")
    experiments = [
        yanex.ExperimentSpec(
            script_path=Path(__file__),
            config={"_fold_idx": i, "learning_rate": learning_rate, "n_folds": n_folds},
            name=f"kfold-{i}",
            tags=["kfold", "cross-validation"],
            description=f"K-fold cross-validation fold {i}",
        )
        for i in range(n_folds)
    ]
    results = yanex.run_multiple(experiments, parallel=parallel_workers, verbose=False)
    completed = [r for r in results if r.status == "completed"]
    print(f"Completed: {len(completed)}/{n_folds}")
    import yanex.results as yr

    fold_metrics = []
    for result in completed:
        try:
            exp = yr.get_experiment(result.experiment_id)
            fold_metrics.append({"val_accuracy": exp.get_metric("val_accuracy")})
        except Exception as e:
            print(f"  Warning: Could not load metrics for {result.name}: {e}")
    if fold_metrics:
        avg = sum(m["val_accuracy"] for m in fold_metrics) / len(fold_metrics)
        print(f"Aggregated Results (n={len(fold_metrics)} folds): {avg:.4f}")
        if yanex.has_context():
            yanex.log_metrics({"n_folds": len(fold_metrics), "avg_val_accuracy": avg})
            print(f"Top-level experiment: {yanex.get_experiment_id()}")


def execute_single_fold(fold_idx, learning_rate, n_folds):
    print(f"EXECUTOR MODE: Training fold {fold_idx}/{n_folds - 1}")
    yanex.log_metrics({"fold_idx": fold_idx, "val_accuracy": 0.8 + fold_idx / 100})


def main():
    fold_idx = yanex.get_param("_fold_idx", default=None)
    if fold_idx is None:
        orchestrate_kfold(3, 0.001)
    else:
        execute_single_fold(fold_idx, yanex.get_param("learning_rate"), yanex.get_param("n_folds"))


if __name__ == "__main__":
    main()
"""


@pytest.mark.slow
def test_kfold_example_runs_its_folds_from_a_tracked_orchestrator(project: Project) -> None:
    project.write("train_kfold.py", KFOLD)
    project.commit()
    r = project.yanex("run", "train_kfold.py", "-n", "orchestrator")
    assert r.returncode == 0, r.stderr
    assert "Completed: 3/3" in r.stdout
    folds = {metadata(f)["name"]: f for f in project.experiments()}
    assert sorted(folds) == ["kfold-0", "kfold-1", "kfold-2", "orchestrator"]
    for i in range(3):
        folder = folds[f"kfold-{i}"]
        assert metadata(folder)["status"] == "completed"
        assert json.loads((folder / "params.json").read_text()) == {
            "_fold_idx": i,
            "learning_rate": 0.001,
            "n_folds": 3,
        }
        assert [x["results"] for x in results(folder)] == [
            {"fold_idx": i, "val_accuracy": 0.8 + i / 100}
        ]
    assert metadata(folds["orchestrator"])["status"] == "completed"


@pytest.mark.slow
def test_kfold_example_aggregates_its_folds(project: Project) -> None:
    project.write("train_kfold.py", KFOLD)
    project.commit()
    r = project.yanex("run", "train_kfold.py", "-n", "orchestrator")
    assert "Aggregated Results (n=3 folds): 0.8100" in r.stdout, r.stdout
    (top,) = [f for f in project.experiments() if metadata(f)["name"] == "orchestrator"]
    (line,) = results(top)  # the orchestrator logged the aggregate
    assert line["results"]["n_folds"] == 3


# --- 0.6's examples/cli/06_bash_integration ---------------------------------------------------

RUN_BENCHMARK = """
from pathlib import Path

import yanex

exp_dir = yanex.get_experiment_dir()
duration = yanex.get_param("duration", default=5)
threads = yanex.get_param("threads", default=2)
script_path = Path(__file__).parent / "linkbench.sh"
result = yanex.execute_bash_script(f"{script_path} --workload mixed --verbose", stream_output=True)
yanex.log_metrics({"exit_code": result["exit_code"], "duration": duration, "threads": threads})
print("returned", sorted(result), repr(result["stdout"].splitlines()[-1]))
print("cwd", result["working_directory"] == str(exp_dir), result["execution_time"] > 0)
"""

LINKBENCH = """#!/bin/bash
echo "Experiment ID: $YANEX_EXPERIMENT_ID"
echo "Duration: $YANEX_PARAM_duration seconds"
echo "Threads: $YANEX_PARAM_threads"
echo "Layers: $YANEX_PARAM_layers"
echo "Script args: $@"
echo "a warning" >&2
cat > linkbench_results.csv << EOF
metric,value
threads,${YANEX_PARAM_threads:-2}
EOF
echo "=== LinkBench Complete ==="
"""


def test_bash_integration_example(project: Project) -> None:
    project.write("run_benchmark.py", RUN_BENCHMARK)
    script = project.write("linkbench.sh", LINKBENCH)
    script.chmod(0o755)
    project.commit()
    r = project.yanex(
        "run", "run_benchmark.py", "duration=0", "threads=4", "+layers=[16, 32]", "+flag=true"
    )
    assert r.returncode == 0, r.stderr
    folder = project.only_experiment()
    expected = [
        f"Experiment ID: {folder.name}",
        "Duration: 0 seconds",
        "Threads: 4",
        "Layers: [16, 32]",  # lists and dicts as JSON, as 0.6 passed them
        "Script args: --workload mixed --verbose",
        "=== LinkBench Complete ===",
    ]
    assert r.stdout.splitlines()[:6] == expected  # streamed as it ran
    assert "a warning" in r.stderr
    assert r.stdout.splitlines()[-2:] == [
        "returned ['command', 'execution_time', 'exit_code', 'stderr', 'stdout', "
        "'working_directory'] '=== LinkBench Complete ==='",
        "cwd True True",
    ]
    # It ran in the experiment's folder, and what it printed is kept as artifacts.
    assert (folder / "linkbench_results.csv").read_text() == "metric,value\nthreads,4\n"
    assert (folder / "artifacts" / "script_stdout.txt").read_text() == "\n".join(expected)
    assert (folder / "artifacts" / "script_stderr.txt").read_text() == "a warning"
    assert results(folder)[0]["results"] == {"exit_code": 0, "duration": 0, "threads": 4}


@pytest.mark.slow
def test_execute_bash_script_stops_what_it_started_on_timeout(plain_dir: Project) -> None:
    code = """
import subprocess, yanex
try:
    yanex.execute_bash_script("sleep 60 & echo $! > bg.pid; sleep 60", timeout=0.5)
except subprocess.TimeoutExpired as exc:
    print("timeout", exc.timeout)
r = yanex.execute_bash_script("echo out; exit 3", stream_output=False)
print(r["exit_code"], repr(r["stdout"]), r["working_directory"] == __import__("os").getcwd())
try:
    yanex.execute_bash_script("exit 4", raise_on_error=True)
except subprocess.CalledProcessError as exc:
    print("raised", exc.returncode)
"""
    r = run_python(code, cwd=plain_dir.path, env=plain_dir.env())
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["timeout 0.5", "3 'out' True", "raised 4"]
    background = int((plain_dir.path / "bg.pid").read_text())
    deadline = time.monotonic() + 10
    while not process_gone(background) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process_gone(background)  # the command's own child was stopped too
    assert not (plain_dir.path / "artifacts").exists()  # standalone: nothing saved


# --- 0.6's examples/cli: the script side ---------------------------------------------------

# examples/cli/03_logging_artifacts/analyze.py (no sleep, fixed data)
ANALYZE = """
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import yanex

num_samples = yanex.get_param("num_samples", default=50)
data_points = [(i, float(10 + i % 7)) for i in range(num_samples)]
avg = sum(v for _, v in data_points) / len(data_points)
yanex.save_artifact([{"index": i, "value": v} for i, v in data_points], "results.csv")
yanex.save_artifact(f"Samples analyzed: {num_samples}\\nAverage value: {avg:.2f}\\n", "summary.txt")
fig, ax = plt.subplots()
ax.plot([i for i, _ in data_points], [v for _, v in data_points])
yanex.save_artifact(fig, "analysis_plot.png")
plt.close(fig)
yanex.log_metrics({"num_samples": num_samples, "avg_value": avg})
print("standalone" if yanex.is_standalone() else "All artifacts logged successfully!")
"""


@pytest.mark.slow
def test_logging_artifacts_example(project: Project) -> None:
    project.write("analyze.py", ANALYZE)
    project.commit()
    r = project.yanex("run", "analyze.py", "-p", "num_samples=14", "--name", "large-dataset")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["All artifacts logged successfully!"]
    folder = project.only_experiment()
    art = folder / "artifacts"
    assert sorted(p.name for p in art.iterdir()) == [
        "analysis_plot.png",
        "results.csv",
        "summary.txt",
    ]
    assert (art / "results.csv").read_text().splitlines()[:3] == ["index,value", "0,10.0", "1,11.0"]
    assert (art / "summary.txt").read_text() == "Samples analyzed: 14\nAverage value: 13.00\n"
    assert (art / "analysis_plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [x["results"] for x in results(folder)] == [{"num_samples": 14, "avg_value": 13.0}]
    alone = run_python(ANALYZE, cwd=project.path, env=project.env())
    assert alone.returncode == 0, alone.stderr
    assert alone.stdout.splitlines() == ["standalone"]
    assert not (project.path / "artifacts").exists()  # standalone writes nothing (0.6 did)


# examples/cli/05_multi_step_metrics/train_model.py (no sleep, no randomness)
MULTI_STEP = """
import yanex

epochs = yanex.get_param("epochs", default=10)
val_frequency = yanex.get_param("val_frequency", default=2)
for epoch in range(1, epochs + 1):
    yanex.log_metrics({"train_loss": 1.0 / epoch}, step=epoch)
    if epoch % val_frequency == 0:
        yanex.log_metrics({"val_loss": 1.5 / epoch}, step=epoch)  # the same epoch
yanex.log_metrics({"total_epochs": epochs})  # no step: the next one
"""


def test_multi_step_metrics_example(project: Project) -> None:
    project.write("train_model.py", MULTI_STEP)
    project.commit()
    r = project.yanex("run", "train_model.py", "-p", "epochs=4", "-p", "val_frequency=2")
    assert r.returncode == 0, r.stderr
    assert [(x["step"], x["results"]) for x in results(project.only_experiment())] == [
        (1, {"train_loss": 1.0}),
        (2, {"train_loss": 0.5}),
        (2, {"val_loss": 0.75}),
        (3, {"train_loss": 1.0 / 3}),
        (4, {"train_loss": 0.25}),
        (4, {"val_loss": 0.375}),
        (5, {"total_epochs": 4}),
    ]


# --- the script API's 0.6 keywords and names --------------------------------------------------


@pytest.mark.slow
def test_0_6_keywords_of_the_script_api(project: Project) -> None:
    project.write("data.txt", "raw\n")
    project.write(
        "s.py",
        """
        import json
        import yanex

        yanex.log_metrics(data={"loss": 0.5}, step=3)
        yanex.log_results(data={"loss": 0.4})
        yanex.save_artifact({"b": 1, "a": 2}, filename="cfg.json", indent=4, sort_keys=True)
        yanex.save_artifact([{"x": 1}, {"x": 2}], filename="rows.jsonl")
        yanex.save_artifact([{"a": 1, "b": 2}], "t.csv", delimiter=";")
        yanex.copy_artifact(src_path="data.txt", filename="copy.txt")

        def save_custom(obj, path, **kwargs):
            print("saver got", path.suffix, kwargs)
            path.write_text(obj.upper())

        yanex.save_artifact("custom", filename="thing.custom", saver=save_custom, level=2)
        print(yanex.load_artifact(filename="cfg.json"))
        print(yanex.load_artifact("rows.jsonl"), yanex.load_artifact("t.csv"))
        print(yanex.load_artifact("thing.custom", loader=lambda p: p.read_text()))
        print(type(yanex.load_artifact("t.csv", format="csv-pandas")).__name__)
        print(yanex.artifact_exists("copy.txt"), yanex.artifact_exists("nope.txt"))
        print(yanex.list_artifacts())
        print(yanex.load_artifact("missing.json"))
        """,
    )
    project.commit()
    r = project.yanex("run", "s.py")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "saver got .custom {'level': 2}",
        "{'a': 2, 'b': 1}",
        "[{'x': 1}, {'x': 2}] [{'a;b': '1;2'}]",
        "CUSTOM",
        "DataFrame",
        "True False",
        "['cfg.json', 'copy.txt', 'rows.jsonl', 't.csv', 'thing.custom']",
        "None",
    ]
    folder = project.only_experiment()
    assert [(x["step"], x["results"]) for x in results(folder)] == [
        (3, {"loss": 0.5}),
        (4, {"loss": 0.4}),
    ]
    assert (folder / "artifacts" / "cfg.json").read_text() == '{\n    "a": 2,\n    "b": 1\n}\n'
    assert (folder / "artifacts" / "t.csv").read_bytes() == b"a;b\r\n1;2\r\n"
    assert (folder / "artifacts" / "thing.custom").stat().st_mode & 0o777 == 0o600


def test_register_format_saves_and_loads_by_type_and_name(project: Project) -> None:
    project.write(
        "s.py",
        """
        import yanex

        class Workload:
            def __init__(self, ops):
                self.ops = ops

        yanex.register_format(
            name="workload",
            extensions=[".jsonl"],
            type_check=lambda obj: isinstance(obj, Workload),
            saver=lambda obj, path: path.write_text("\\n".join(obj.ops)),
            loader=lambda path: Workload(path.read_text().split("\\n")),
        )
        yanex.save_artifact(Workload(["get", "put"]), "w.jsonl")  # the registered format
        yanex.save_artifact([{"plain": 1}], "plain.jsonl")  # not a Workload: the built-in one
        print(yanex.load_artifact("w.jsonl", format="workload").ops)
        print(yanex.load_artifact("plain.jsonl", format="jsonl"))
        for bad in (dict(name="workload", extensions=[".x"]), dict(name="other", extensions=[])):
            try:
                yanex.register_format(type_check=bool, saver=print, loader=print, **bad)
            except ValueError as exc:
                print(exc)
        try:
            yanex.load_artifact("w.jsonl", format="nope")
        except ValueError as exc:
            print(str(exc).split(";")[0])
        """,
    )
    project.commit()
    r = project.yanex("run", "s.py")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "['get', 'put']",
        "[{'plain': 1}]",
        "register_format: a format named 'workload' is already registered",
        "register_format: give at least one extension, such as ['.jsonl']",
        "load_artifact: unknown format 'nope'",
    ]
    folder = project.only_experiment()
    assert (folder / "artifacts" / "w.jsonl").read_text() == "get\nput"


def test_context_names_in_a_tracked_script_and_standalone(project: Project) -> None:
    script = """
import yanex
print(yanex.has_context(), yanex.get_status())
meta = yanex.get_metadata()
print(meta.get("id") == yanex.get_experiment_id(), meta.get("name"))
d = yanex.get_artifacts_dir()
print(d is not None and d == yanex.get_experiment_dir() / "artifacts")
print(yanex.get_cli_args())
"""
    project.write("s.py", script)
    project.write("config.yaml", "lr: 0.1\nmodel: {depth: 2}\n")
    project.commit()
    r = project.yanex("run", "s.py", "lr=0.2", "-p", "model.depth=3", "-n", "nm", "-t", "a")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[:3] == ["True running", "True nm", "True"]
    assert eval(lines[3]) == {  # as yanex 0.6 gives them: the flags as given
        "script": "s.py",
        "config": [],
        "clone_from": None,
        "param": ["lr=0.2", "model.depth=3"],
        "name": "nm",
        "tag": ["a"],
        "description": None,
        "depends_on": [],
        "dry_run": False,
        "stage": False,
        "staged": False,
        "parallel": None,
        "project": None,
    }
    alone = run_python(script, cwd=project.path, env=project.env())
    assert alone.returncode == 0, alone.stderr
    assert alone.stdout.splitlines() == ["False None", "True None", "False", "{}"]


ENDINGS = """
import sys, yanex
how = sys.argv[1]
print("start", flush=True)
if how == "completed":
    yanex.completed()
elif how == "fail":
    yanex.fail("the data is bad")
elif how == "cancel":
    yanex.cancel("not needed")
print("not reached")
"""


@pytest.mark.parametrize(
    ("how", "status", "exit_code", "reason"),
    [
        ("completed", "completed", 0, None),
        ("fail", "failed", 1, "yanex: failed: the data is bad"),
        ("cancel", "cancelled", 1, "cancelled by the script: not needed"),
    ],
)
def test_ending_a_tracked_script_from_inside(
    project: Project, how: str, status: str, exit_code: int, reason: str | None
) -> None:
    project.write("s.py", ENDINGS)
    project.commit()
    r = project.yanex("run", "s.py", "--", how)
    assert r.stdout.splitlines() == ["start"]
    meta = metadata(project.only_experiment())
    assert (meta["status"], meta["exit_code"]) == (status, exit_code)
    if reason is None:
        assert meta["error"] is None
    else:
        assert reason in meta["error"]


def test_ending_needs_an_experiment(plain_dir: Project) -> None:
    code = """
import yanex
from yanex.errors import ExperimentContextError
for end in (yanex.completed, lambda: yanex.fail("x"), lambda: yanex.cancel("y")):
    try:
        end()
    except ExperimentContextError as exc:
        print(exc.format_message().splitlines()[0])
"""
    r = run_python(code, cwd=plain_dir.path, env=plain_dir.env())
    assert r.stdout.splitlines() == [
        "completed() needs an experiment, and this script runs standalone",
        "failed() needs an experiment, and this script runs standalone",
        "cancelled() needs an experiment, and this script runs standalone",
    ], r.stderr


# --- create_experiment: a tracked experiment inside the calling process -----------------------

IN_PROCESS = """
import sys
from pathlib import Path
import yanex

how = sys.argv[1]
try:
    with yanex.create_experiment(Path(__file__), name=how, config={"lr": 0.1}) as ctx:
        yanex.log_metrics({"lr": yanex.get_param("lr")})
        print("status", yanex.get_status(), ctx.experiment_id == yanex.get_experiment_id())
        launcher = yanex.get_metadata()["launcher"]  # this process, by pid and start time
        beating = (yanex.get_experiment_dir() / ".heartbeat").is_file()
        print("beating", beating and sorted(launcher) == ["hostname", "pid", "started"])
        try:
            if how == "completed":
                yanex.completed()
            elif how == "fail":
                yanex.fail("the data is bad")
            elif how == "cancel":
                yanex.cancel("not needed")
        except Exception:
            print("an except Exception in the block does not stop the ending")
            raise
        if how == "raise":
            raise ValueError("boom")
        if how == "interrupt":
            raise KeyboardInterrupt
        print("end of block")
except ValueError as exc:
    print("propagated", exc)
except KeyboardInterrupt:
    print("propagated KeyboardInterrupt")
print("after", yanex.is_standalone())
"""


@pytest.mark.parametrize(
    ("how", "printed", "status", "error"),
    [
        ("plain", ["end of block"], "completed", None),
        ("completed", [], "completed", None),
        ("fail", [], "failed", "the data is bad"),
        ("cancel", [], "cancelled", "not needed"),
        ("raise", ["propagated boom"], "failed", "ValueError: boom"),
        (
            "interrupt",
            ["propagated KeyboardInterrupt"],
            "cancelled",
            "cancelled by SIGINT (Ctrl-C)",
        ),
    ],
)
def test_create_experiment_records_how_the_block_ended(
    project: Project, how: str, printed: list[str], status: str, error: str | None
) -> None:
    project.write("p.py", IN_PROCESS)
    project.commit()
    r = run_python(
        "import runpy, sys; runpy.run_path('p.py', run_name='__main__')",
        cwd=project.path,
        env=project.env(),
        args=[how],
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["status running True", "beating True", *printed, "after True"]
    folder = project.only_experiment()
    meta = metadata(folder)
    assert (meta["name"], meta["status"], meta["error"]) == (how, status, error)
    assert meta["ended_at"] >= meta["started_at"] >= meta["created_at"]
    assert [x["results"] for x in results(folder)] == [{"lr": 0.1}]
    assert not (folder / "claim.json").exists() and not (folder / ".reserve").exists()
    assert not (folder / ".heartbeat").exists()  # ended: no longer beating
    assert f"yanex: experiment {folder.name} {status}" in r.stderr


@pytest.mark.slow
def test_create_experiment_is_refused_where_it_cannot_work(project: Project) -> None:
    project.write(
        "p.py",
        """
        from pathlib import Path
        import yanex
        from yanex.errors import YanexError
        for config in ({"lr": "list(0.1, 0.2)"}, {"opt": {"lr": "range(3)"}}):
            try:
                yanex.create_experiment(Path(__file__), config=config)
            except YanexError as exc:
                print(exc.message)
        """,
    )
    project.commit()
    run_p = "import runpy; runpy.run_path('p.py')"
    r = run_python(run_p, cwd=project.path, env=project.env())
    assert r.stdout.splitlines() == [
        "create_experiment() runs one experiment, and the config holds sweeps: lr=list(0.1, 0.2)",
        "create_experiment() runs one experiment, and the config holds sweeps: opt.lr=range(3)",
    ], r.stderr
    assert project.store_entries() == []  # nothing was created
    # A dirty tree is refused as `yanex run` refuses it, naming the way on.
    project.write(
        "p.py",
        """
        import yanex
        try:
            yanex.create_experiment(__file__)
        except yanex.YanexError as exc:
            print(exc.format_message())
        """,
    )
    r = run_python(run_p, cwd=project.path, env=project.env())
    assert "uncommitted changes" in r.stdout and "--ignore-dirty" in r.stdout, r.stderr
    assert project.store_entries() == []
    # Inside a script that `yanex run` tracks, it is refused.
    project.commit()
    r = project.yanex("run", "p.py")
    assert "this script is already tracked by `yanex run`" in r.stdout, r.stderr
    assert len(project.experiments()) == 1  # only the run itself


def test_an_experiment_created_but_never_run_is_not_left_to_a_runner(project: Project) -> None:
    """Created, then the program died before its block: no `run --staged` runs the program
    as a script, and the next reader of the store records it failed."""
    project.write(
        "p.py",
        """
        import os
        from pathlib import Path
        import yanex
        context = yanex.create_experiment(Path(__file__), name="orphan")
        print(yanex.get_status(), flush=True)  # standalone still: None
        os._exit(0)
        """,
    )
    project.commit()
    r = run_python("import runpy; runpy.run_path('p.py')", cwd=project.path, env=project.env())
    assert r.stdout.splitlines() == ["None"], r.stderr
    staged = project.yanex("run", "--staged")
    assert staged.returncode == 0, staged.stderr
    meta = metadata(project.only_experiment())
    assert meta["status"] == "failed" and "launcher died" in meta["error"], meta
    assert results(project.only_experiment()) == []


def test_create_context_runs_a_staged_experiment_in_process(project: Project) -> None:
    project.write("s.py", "import yanex\nyanex.log_metrics({'x': yanex.get_param('x', 0)})\n")
    project.commit()
    staged = project.yanex("stage", "s.py", "+x=5", "-n", "later")
    assert staged.returncode == 0, staged.stderr
    code = """
import yanex
from yanex.errors import YanexError
with yanex.create_context("later"):
    yanex.log_metrics({"x": yanex.get_param("x")})
try:
    yanex.create_context("later").__enter__()
except YanexError as exc:
    print(exc.message)
"""
    r = run_python(code, cwd=project.path, env=project.env())
    assert r.returncode == 0, r.stderr
    folder = project.only_experiment()
    assert r.stdout.splitlines() == [
        f"experiment {folder.name} is completed: only a staged experiment can be run in this "
        "process"
    ]
    assert metadata(folder)["status"] == "completed"
    assert [x["results"] for x in results(folder)] == [{"x": 5}]


# --- run_multiple ---------------------------------------------------------------------------


@pytest.mark.slow
def test_run_multiple_one_after_another_with_refusals_and_cli_args(project: Project) -> None:
    project.write(
        "s.py",
        """
        import sys, yanex
        print("run", yanex.get_param("i"), sys.argv[1:], yanex.get_cli_args().get("parallel"))
        sys.exit(yanex.get_param("code", 0))
        """,
    )
    project.write(
        "driver.py",
        """
        import yanex
        specs = [
            yanex.ExperimentSpec(script_path="s.py", config={"i": 0}, name="a",
                                 script_args=["--fold", 0], cli_args={"parallel": 4}),
            yanex.ExperimentSpec(script_path="missing.py", config={"i": 1}, name="b"),
            yanex.ExperimentSpec(script_path="s.py", config={"i": 2, "code": 3}, name="c"),
        ]
        for r in yanex.run_multiple(specs):
            print(r.name, r.status, r.experiment_id != "unknown", r.error_message)
        """,
    )
    project.commit()
    r = run_python("exec(open('driver.py').read())", cwd=project.path, env=project.env())
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "run 0 ['--fold', '0'] 4",
        "run 2 [] None",
        "a completed True None",
        "b failed False script not found: missing.py",  # 0.6: a failed result, not an error
        "Give the path of a Python file.",
        "c failed True exited with code 3",
    ]
    assert sorted(metadata(f)["name"] for f in project.experiments()) == ["a", "c"]


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        ("[]", "experiments list cannot be empty"),
        ("[yanex.ExperimentSpec()]", "Invalid ExperimentSpec at index 0: Must specify exactly"),
        (
            "[yanex.ExperimentSpec(script_path='s.py'), yanex.ExperimentSpec(function=print)]",
            "Invalid ExperimentSpec at index 1: Inline function execution not yet supported",
        ),
    ],
)
def test_run_multiple_refuses_specs_it_cannot_run(
    project: Project, specs: str, message: str
) -> None:
    project.write("s.py", "print('ran')\n")
    project.commit()
    code = f"import yanex\ntry:\n yanex.run_multiple({specs})\nexcept ValueError as e:\n print(e)"
    r = run_python(code, cwd=project.path, env=project.env())
    assert message in r.stdout, r.stdout + r.stderr
    assert "ran" not in r.stdout and project.store_entries() == []


@pytest.mark.slow
def test_ctrl_c_cancels_the_parallel_runs_and_starts_no_more(project: Project) -> None:
    project.write(
        "s.py",
        """
        import signal, sys, time, yanex
        print("started", yanex.get_param("i"), flush=True)
        time.sleep(60)
        """,
    )
    project.write(
        "driver.py",
        """
        import yanex
        specs = [yanex.ExperimentSpec(script_path="s.py", config={"i": i}) for i in range(4)]
        try:
            yanex.run_multiple(specs, parallel=2)
        except KeyboardInterrupt:
            print("KeyboardInterrupt", flush=True)
        """,
    )
    project.commit()
    proc = subprocess.Popen(
        [sys.executable, "driver.py"],
        cwd=project.path,
        env=project.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    started = [proc.stdout.readline(), proc.stdout.readline()]  # both running
    assert sorted(line.split()[0] for line in started) == ["started", "started"]
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert out.splitlines() == ["KeyboardInterrupt"], err
    assert proc.returncode == 0
    folders = project.experiments()
    assert len(folders) == 2  # the other two never started
    for folder in folders:
        meta = metadata(folder)
        assert meta["status"] == "cancelled", meta
        assert "SIGINT" in meta["error"]


def test_v06_names_cost_nothing_until_used(plain_dir: Project) -> None:
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import yanex\n"
        "assert 'yanex.v06' not in sys.modules\n"
        "yanex.has_context(); yanex.get_cli_args(); yanex.list_artifacts()\n"
        "heavy = ('hydra', 'omegaconf', 'git', 'numpy', 'yaml', 'click', 'yanex.launcher')\n"
        "print([m for m in heavy if m in sys.modules])\n"
    )
    r = run_python(code, cwd=plain_dir.path, env=plain_dir.env())
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_every_0_6_script_name_is_there() -> None:
    """The names 0.6.1 exports from ``yanex`` for scripts and programs (its dependency names
    and the results ``Experiment`` object come with dependencies and the results API)."""
    import yanex

    v06 = [
        "get_params", "get_param", "get_cli_args", "is_standalone", "has_context",
        "log_metrics", "log_results", "copy_artifact", "save_artifact", "load_artifact",
        "artifact_exists", "list_artifacts", "register_format", "execute_bash_script",
        "get_experiment_id", "get_experiment_dir", "get_artifacts_dir", "get_status",
        "get_metadata", "create_experiment", "create_context", "ExperimentContext",
        "completed", "fail", "cancel", "ExperimentSpec", "ExperimentResult", "run_multiple",
        "__version__",
    ]  # fmt: skip
    assert [name for name in v06 if not hasattr(yanex, name)] == []
    assert set(v06) - {"__version__"} <= set(yanex.__all__)
