"""The script side: `import yanex` in a tracked run and in a plain `python script.py`."""

from __future__ import annotations

import json
import sys

import pytest
from conftest import Project, metadata, results, run_python


def test_standalone_every_call_works(plain_dir: Project) -> None:
    plain_dir.write(
        "s.py",
        """
        import warnings
        warnings.simplefilter("default")
        import yanex
        from yanex import experiment
        print(yanex.get_param("lr", 0.1), yanex.get_param("model.depth", 3))
        print(yanex.get_params())
        print(yanex.is_standalone(), yanex.experiment_id(), yanex.experiment_dir())
        print(yanex.get_experiment_id(), yanex.get_experiment_dir())
        yanex.log_results({"a": 1})
        experiment.log_results({"a": 2}, step=5)
        yanex.log_metrics({"a": 3})
        yanex.save_artifact({"x": 1}, "x.json")
        yanex.log_artifact(__file__)
        yanex.copy_artifact(__file__, "copy.py")
        print(yanex.load_artifact("x.json"))
        """,
    )
    r = run_python(
        "import runpy; runpy.run_path('s.py', run_name='__main__')",
        cwd=plain_dir.path,
        env=plain_dir.env(),
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "0.1 3",
        "{}",
        "True None None",
        "None None",
        "None",
    ]
    assert r.stderr.count("not running under `yanex run`") == 1  # warns once
    assert not (plain_dir.path / "artifacts").exists()
    assert not plain_dir.home.exists()


def test_standalone_params_come_from_the_environment_typed_by_the_grammar(
    plain_dir: Project,
) -> None:
    code = (
        "import json, yanex\n"
        "print(json.dumps(yanex.get_params()))\n"
        "print(yanex.get_param('model.lr'))\n"
    )
    env = plain_dir.env(YANEX_PARAM_model__lr="1e-3", YANEX_PARAM_tags="[a, b]", YANEX_PARAM_n="3")
    r = run_python(code, cwd=plain_dir.path, env=env)
    assert r.returncode == 0, r.stderr
    first, second = r.stdout.splitlines()
    assert json.loads(first) == {"model": {"lr": 0.001}, "n": 3, "tags": ["a", "b"]}
    assert second == "0.001"


def test_get_param_dotted_keys_lists_and_copies(project: Project) -> None:
    project.write("config.yaml", "model:\n  layers: [16, 32]\n  opt: {name: adam}\n")
    project.write(
        "s.py",
        """
        import yanex
        print(yanex.get_param("model.layers.1"), yanex.get_param("model.opt.name"))
        print(yanex.get_param("model.missing", "dflt"), yanex.get_param("model.layers.9", "none"))
        params = yanex.get_params()
        params["model"]["opt"]["name"] = "changed"
        print(yanex.get_param("model.opt.name"))
        """,
    )
    project.commit()
    r = project.yanex("run", "s.py")
    assert r.stdout.splitlines() == ["32 adam", "dflt none", "adam"]


def test_log_results_steps(project: Project) -> None:
    project.write(
        "s.py",
        """
        import yanex
        from yanex import experiment
        yanex.log_results({"a": 0})
        yanex.log_results({"a": 1})
        experiment.log_results({"a": 10}, step=10)
        yanex.log_metrics({"a": 11})
        """,
    )
    project.commit()
    assert project.yanex("run", "s.py").returncode == 0
    lines = results(project.only_experiment())
    assert [(line["step"], line["results"]["a"]) for line in lines] == [
        (0, 0),
        (1, 1),
        (10, 10),
        (11, 11),
    ]


def test_log_results_rejects_what_it_cannot_store(project: Project) -> None:
    project.write(
        "s.py",
        """
        import yanex
        for bad in ([1, 2], "text"):
            try:
                yanex.log_results(bad)
            except TypeError as exc:
                print("TypeError", exc)
        try:
            yanex.log_results({"x": object()})
        except TypeError as exc:
            print("TypeError", exc)
        """,
    )
    project.commit()
    r = project.yanex("run", "s.py")
    assert r.stdout.count("TypeError") == 3
    assert results(project.only_experiment()) == []


def test_numpy_values_are_logged_as_plain_numbers(project: Project) -> None:
    project.write(
        "s.py",
        """
        import numpy as np, yanex
        yanex.log_results({"f": np.float32(0.5), "i": np.int64(3), "a": np.arange(3)})
        """,
    )
    project.commit()
    assert project.yanex("run", "s.py").returncode == 0
    assert results(project.only_experiment())[0]["results"] == {"f": 0.5, "i": 3, "a": [0, 1, 2]}


def test_concurrent_threads_and_processes_lose_nothing(project: Project) -> None:
    project.write(
        "s.py",
        """
        import multiprocessing, threading, yanex

        def work(worker):
            for i in range(50):
                yanex.log_results({"worker": worker, "i": i, "pad": "x" * 2000}, step=i)

        if __name__ == "__main__":
            procs = [multiprocessing.Process(target=work, args=(w,)) for w in range(4)]
            threads = [threading.Thread(target=work, args=(10 + w,)) for w in range(4)]
            for t in procs + threads:
                t.start()
            for t in procs + threads:
                t.join()
        """,
    )
    project.commit()
    r = project.yanex("run", "s.py")
    assert r.returncode == 0, r.stderr
    lines = (project.only_experiment() / "results.jsonl").read_text().splitlines()
    assert len(lines) == 400
    seen = {
        (json.loads(line)["results"]["worker"], json.loads(line)["results"]["i"]) for line in lines
    }
    assert seen == {(w, i) for w in [0, 1, 2, 3, 10, 11, 12, 13] for i in range(50)}


def test_artifacts_round_trip_in_every_format(project: Project) -> None:
    project.write("data.bin", "raw bytes\n")
    project.write(
        "s.py",
        """
        import numpy as np, yanex
        yanex.save_artifact("hello", "note.txt")
        yanex.save_artifact({"a": [1, 2]}, "d.json")
        yanex.save_artifact([{"x": 1, "y": 2}, {"x": 3, "y": 4}], "rows.csv")
        yanex.save_artifact([[1, 2], [3, 4]], "grid.csv")
        yanex.save_artifact(np.arange(4), "a.npy")
        yanex.save_artifact({"w": np.ones(2)}, "w.npz")
        yanex.save_artifact({"any": ("python", 1)}, "obj.pkl")
        yanex.log_artifact("data.bin")
        yanex.log_artifact("data.bin", "nested/renamed.bin")
        print(yanex.load_artifact("note.txt"))
        print(yanex.load_artifact("d.json"))
        print(yanex.load_artifact("rows.csv"))
        print(yanex.load_artifact("a.npy").tolist())
        print(yanex.load_artifact("w.npz")["w"].tolist())
        print(yanex.load_artifact("obj.pkl"))
        print(yanex.load_artifact("nested/renamed.bin"))
        print(yanex.load_artifact("missing.txt"))
        try:
            yanex.save_artifact(1, "model.weird")
        except ValueError as exc:
            print("ValueError", ".weird" in str(exc))
        """,
    )
    project.commit()
    r = project.yanex("run", "s.py")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "hello",
        "{'a': [1, 2]}",
        "[{'x': '1', 'y': '2'}, {'x': '3', 'y': '4'}]",
        "[0, 1, 2, 3]",
        "[1.0, 1.0]",
        "{'any': ('python', 1)}",
        "b'raw bytes\\n'",
        "None",
        "ValueError True",
    ]
    art = project.only_experiment() / "artifacts"
    assert (art / "grid.csv").read_text().splitlines() == ["1,2", "3,4"]
    assert sorted(p.name for p in art.iterdir()) == [
        "a.npy",
        "d.json",
        "data.bin",
        "grid.csv",
        "nested",
        "note.txt",
        "obj.pkl",
        "rows.csv",
        "w.npz",
    ]


@pytest.mark.slow
def test_figures_are_saved_by_extension(project: Project) -> None:
    pytest.importorskip("matplotlib")
    project.write(
        "s.py",
        """
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt, yanex
        fig, ax = plt.subplots()
        ax.plot([1, 2, 3])
        for ext in ("png", "svg", "pdf"):
            yanex.save_artifact(fig, f"curve.{ext}")
        """,
    )
    project.commit()
    assert project.yanex("run", "s.py").returncode == 0
    art = project.only_experiment() / "artifacts"
    assert (art / "curve.png").read_bytes().startswith(b"\x89PNG")
    assert b"<svg" in (art / "curve.svg").read_bytes()
    assert (art / "curve.pdf").read_bytes().startswith(b"%PDF")


@pytest.mark.parametrize(
    "name", ["../escape.txt", "/tmp/abs.txt", "a/../../escape.txt", "link/x.txt"]
)
def test_artifact_names_cannot_leave_the_folder(project: Project, name: str) -> None:
    project.write(
        "s.py",
        f"""
        import os, yanex
        os.makedirs(yanex.experiment_dir() / "artifacts", exist_ok=True)
        os.symlink("/tmp", yanex.experiment_dir() / "artifacts" / "link")
        try:
            yanex.save_artifact("x", {name!r})
        except ValueError as exc:
            print("refused", exc)
        """,
    )
    project.commit()
    r = project.yanex("run", "s.py")
    assert r.stdout.startswith("refused"), r.stdout + r.stderr
    assert not (project.only_experiment() / "escape.txt").exists()
    assert not (project.home / "experiments" / "escape.txt").exists()


def test_experiment_dir_from_the_environment_must_be_in_the_store(plain_dir: Project) -> None:
    env = plain_dir.env(YANEX_EXPERIMENT_DIR=str(plain_dir.path))
    r = run_python("import yanex; yanex.log_results({'a': 1})", cwd=plain_dir.path, env=env)
    assert r.returncode == 1 and "is not an experiment folder of the store" in r.stderr


def test_metadata_untouched_by_the_script_api(project: Project) -> None:
    project.write("s.py", "import yanex\nyanex.log_results({'a': 1})\n")
    project.commit()
    project.yanex("run", "s.py")
    assert metadata(project.only_experiment())["status"] == "completed"


def test_import_yanex_stays_cheap(plain_dir: Project) -> None:
    code = (
        "import sys, yanex\n"
        "from yanex import experiment\n"
        "yanex.get_params(); yanex.log_results({'a': 1})\n"
        "heavy = ('hydra', 'omegaconf', 'git', 'numpy', 'yaml', 'click')\n"
        "heavy = [m for m in heavy if m in sys.modules]\n"
        "print(heavy)\n"
    )
    r = run_python(code, cwd=plain_dir.path, env=plain_dir.env())
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_import_yanex_alone_loads_nothing_but_yanex(plain_dir: Project) -> None:
    """json, pathlib and the store come with the first call: a bare import costs ~nothing."""
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import yanex\n"
        "print(sorted(set(sys.modules) - before))\n"
    )
    r = run_python(code, cwd=plain_dir.path, env=plain_dir.env())
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "['yanex', 'yanex.api', 'yanex.errors']"


def test_help_loads_no_heavy_library(plain_dir: Project) -> None:
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from yanex.cli import main\n"
        "for args in (['--help'], ['run', '--help'], ['stage', '--help']):\n"
        "    assert CliRunner().invoke(main, args).exit_code == 0\n"
        "print([m for m in ('hydra', 'omegaconf', 'git', 'numpy') if m in sys.modules])\n"
    )
    r = run_python(code, cwd=plain_dir.path, env=plain_dir.env())
    assert r.stdout.strip() == "[]", r.stderr


def test_version_attribute() -> None:
    import yanex

    assert isinstance(yanex.__version__, str) and yanex.__version__
    assert sys.modules["yanex"] is yanex


def test_timestamps_match_the_clock_and_zone() -> None:
    from datetime import datetime

    from yanex import store

    before = datetime.now().astimezone()
    stamp = datetime.fromisoformat(store.now_iso())
    after = datetime.now().astimezone()
    assert stamp.utcoffset() == before.utcoffset()
    assert before.replace(microsecond=before.microsecond // 1000 * 1000) <= stamp <= after
