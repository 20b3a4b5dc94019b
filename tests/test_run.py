"""`yanex run` end to end: the experiment folder, its metadata, output, and the child process."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import time as _time
from datetime import datetime
from pathlib import Path

import pytest
from conftest import Project, metadata, results

ISO_WITH_ZONE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?[+-]\d\d:\d\d$")

TRAIN = """
    import os, sys
    import yanex

    lr = yanex.get_param("model.lr", 0.1)
    epochs = yanex.get_param("epochs", 3)
    print("argv", sys.argv[1:])
    print("cwd", os.getcwd())
    print("params", yanex.get_params())
    for epoch in range(epochs):
        yanex.log_results({"epoch": epoch, "loss": 1.0 / (epoch + 1), "lr": lr})
    print("to stderr", file=sys.stderr)
"""


def test_run_creates_a_complete_experiment(project: Project) -> None:
    project.write("train.py", TRAIN)
    project.write("config.yaml", "model:\n  lr: 0.01\n  layers: 2\nepochs: 2\n")
    commit = project.commit("add train")

    r = project.yanex(
        "run",
        "train.py",
        "--param",
        "model.lr=0.005",
        "--name",
        "first",
        "--description",
        "a first run",
        "--tag",
        "baseline",
        "--tag",
        "v1",
    )

    assert r.returncode == 0, r.stderr
    folder = project.only_experiment()
    meta = metadata(folder)
    assert meta["id"] == folder.name and re.fullmatch(r"[0-9a-f]{8}", meta["id"])
    assert meta["id"] in r.stderr  # the user is told the ID
    assert meta["name"] == "first"
    assert meta["description"] == "a first run"
    assert meta["tags"] == ["baseline", "v1"]
    assert meta["status"] == "completed"
    assert meta["exit_code"] == 0 and meta["error"] is None
    assert meta["script"] == str(project.path / "train.py")
    assert meta["args"] == []
    assert meta["overrides"] == ["model.lr=0.005"]
    for key in ("created_at", "started_at", "ended_at"):
        assert ISO_WITH_ZONE.match(meta[key]), meta[key]
    started = datetime.fromisoformat(meta["started_at"])
    ended = datetime.fromisoformat(meta["ended_at"])
    assert ended >= started and meta["duration"] >= 0
    assert meta["git"] == {"commit": commit, "branch": "main", "dirty": False, "remote_url": None}
    env = meta["environment"]
    assert env["python"]["executable"] == sys.executable
    assert env["python"]["version"] == ".".join(map(str, sys.version_info[:3]))
    assert env["hostname"] and env["platform"]
    assert "omegaconf" in env["packages"] and "click" in env["packages"]

    # the resolved config, in YAML and JSON
    assert (folder / "config.yaml").read_text() == "model:\n  lr: 0.005\n  layers: 2\nepochs: 2\n"
    assert json.loads((folder / "params.json").read_text()) == {
        "model": {"lr": 0.005, "layers": 2},
        "epochs": 2,
    }
    # output shown in the terminal and kept in files
    assert "params {'model': {'lr': 0.005, 'layers': 2}, 'epochs': 2}" in r.stdout
    assert "to stderr" in r.stderr
    assert (folder / "stdout.txt").read_text() == r.stdout
    assert (folder / "stderr.txt").read_text() == "to stderr\n"
    # results, one line per call, steps from 0
    lines = results(folder)
    assert [line["step"] for line in lines] == [0, 1]
    assert lines[1]["results"] == {"epoch": 1, "loss": 0.5, "lr": 0.005}
    assert ISO_WITH_ZONE.match(lines[0]["timestamp"])
    assert not (folder / "git.patch").exists()


def test_script_args_after_double_dash_and_cwd(project: Project) -> None:
    project.write("sub/train.py", TRAIN)
    project.commit()
    r = project.yanex("run", "sub/train.py", "-p", "epochs=0", "--", "--data", "x y", "-v")
    assert r.returncode == 0, r.stderr
    assert "argv ['--data', 'x y', '-v']" in r.stdout
    assert f"cwd {project.path}" in r.stdout  # cwd is where the user ran yanex
    assert metadata(project.only_experiment())["args"] == ["--data", "x y", "-v"]


def test_short_options_as_yanex_06_users_type_them(project: Project) -> None:
    project.write("train.py", TRAIN)
    project.write("other.yaml", "epochs: 1\n")
    project.commit()
    r = project.yanex(
        "run",
        "train.py",
        "-c",
        "other.yaml",
        "-p",
        "model.lr=2",
        "-n",
        "nm",
        "-d",
        "ds",
        "-t",
        "tg",
    )
    assert r.returncode == 0, r.stderr
    meta = metadata(project.only_experiment())
    assert (meta["name"], meta["description"], meta["tags"]) == ("nm", "ds", ["tg"])
    assert json.loads((project.only_experiment() / "params.json").read_text()) == {
        "epochs": 1,
        "model": {"lr": 2},
    }


def test_child_sees_its_experiment_in_the_environment(project: Project) -> None:
    project.write(
        "env.py",
        """
        import os, sys
        print(os.environ["YANEX_EXPERIMENT_ID"], os.environ["YANEX_EXPERIMENT_DIR"], sys.executable)
        """,
    )
    project.commit()
    r = project.yanex("run", "env.py")
    folder = project.only_experiment()
    assert r.stdout.split() == [folder.name, str(folder), sys.executable]


def test_store_is_private(project: Project) -> None:
    project.write("noop.py", "pass\n")
    project.commit()
    assert project.yanex("run", "noop.py").returncode == 0
    for folder in (project.home, project.home / "experiments", project.only_experiment()):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder


@pytest.mark.slow
def test_runs_get_distinct_ids_and_leave_no_temp_files(project: Project) -> None:
    project.write("noop.py", "pass\n")
    project.commit()
    for _ in range(3):
        assert project.yanex("run", "noop.py").returncode == 0
    folders = project.experiments()
    assert len({f.name for f in folders}) == 3
    for folder in folders:  # .lock serializes metadata changes; nothing else is hidden
        assert [p.name for p in folder.iterdir() if p.name.startswith(".")] == [".lock"]


def test_no_config_and_no_params_gives_an_empty_config(project: Project) -> None:
    project.write("noop.py", "import yanex\nprint(yanex.get_params())\n")
    project.commit()
    r = project.yanex("run", "noop.py")
    assert r.stdout == "{}\n"
    folder = project.only_experiment()
    assert (folder / "config.yaml").read_text() == "{}\n"
    assert metadata(folder)["config_file"] is None


def test_dry_run_prints_config_and_creates_nothing(project: Project) -> None:
    project.write("train.py", TRAIN)
    project.write("config.yaml", "model:\n  lr: 0.01\n")
    project.commit()
    r = project.yanex("run", "train.py", "--dry-run", "-p", "epochs=4", "-p", "model.lr=1e-3")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "model:\n  lr: 0.001\nepochs: 4\n"
    assert "nothing was created" in r.stderr
    assert project.store_entries() == []
    assert not project.home.exists()


def test_dry_run_fails_on_a_dirty_tree_as_the_run_would(project: Project) -> None:
    project.write("train.py", TRAIN)
    project.commit()
    project.write("train.py", TRAIN + "\n# edited\n")
    r = project.yanex("run", "train.py", "--dry-run")
    assert r.returncode == 2 and "--ignore-dirty" in r.stderr
    assert project.store_entries() == []


def test_python_dash_m_yanex_and_version(project: Project) -> None:
    r = project.yanex("--version")
    assert r.returncode == 0 and r.stdout.startswith("yanex, version ")


def test_the_installed_yanex_command_runs_a_script(project: Project) -> None:
    """The console script the install puts beside the interpreter, as the README uses it."""
    command = Path(sys.executable).with_name("yanex")
    assert command.is_file(), f"{command} missing: install with pip install -e '.[dev]'"
    project.write("s.py", "print('from the command')\n")
    project.commit()
    r = subprocess.run(
        [str(command), "run", "s.py"], cwd=project.path, env=project.env(), capture_output=True
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"from the command\n"
    assert metadata(project.only_experiment())["status"] == "completed"


def test_help_explains_the_command(project: Project) -> None:
    r = project.yanex("run", "--help")
    assert r.returncode == 0
    for needle in (
        "--param",
        "--config",
        "--ignore-dirty",
        "--dry-run",
        "YANEX_PARAM_",
        "-- SCRIPT_ARGS",
    ):
        assert needle in r.stdout
    top = project.yanex("--help")
    assert top.returncode == 0 and "run" in top.stdout


def test_environment_of_the_child_is_the_users(project: Project) -> None:
    project.write("env.py", "import os; print(os.environ.get('MY_SETTING'))\n")
    project.commit()
    r = project.yanex("run", "env.py", env=project.env(MY_SETTING="kept"))
    assert r.stdout == "kept\n"
    assert os.environ.get("YANEX_EXPERIMENT_ID") is None


def test_folder_is_written_before_the_script_starts(project: Project) -> None:
    project.write(
        "peek.py",
        """
        import json, os, pathlib
        folder = pathlib.Path(os.environ["YANEX_EXPERIMENT_DIR"])
        meta = json.loads((folder / "metadata.json").read_text())
        print(meta["status"], meta["started_at"] is not None, meta["git"]["dirty"])
        print((folder / "config.yaml").read_text().strip())
        """,
    )
    project.commit()
    r = project.yanex("run", "peek.py", "-p", "lr=0.5")
    assert r.stdout.splitlines() == ["running True False", "lr: 0.5"]


def test_a_line_written_in_pieces_reaches_the_terminal_whole(tmp_path: Path) -> None:
    """Runs sharing a terminal (run_multiple, -j) must not cut into each other's lines: an
    unbuffered print() writes its text and its newline apart, the tee joins them."""
    from yanex import supervise

    class Terminal:  # no fileno: every write the tee makes is seen as one call
        def __init__(self) -> None:
            self.writes: list[bytes] = []

        def write(self, data: bytes) -> None:
            self.writes.append(bytes(data))

        def flush(self) -> None:
            pass

    script = "import sys, time\nfor w in ('part ', 'rest', '\\n'):\n"
    script += "    sys.stdout.write(w); sys.stdout.flush(); time.sleep(0.005)\n"
    script += "sys.stdout.write('progress 1%'); sys.stdout.flush(); time.sleep(0.5)\n"
    terminal = Terminal()
    end = supervise.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout_log=tmp_path / "stdout.txt",
        stderr_log=tmp_path / "stderr.txt",
        stdout=terminal,  # type: ignore[arg-type]
        stderr=None,
        grace=1.0,
        next_signal=lambda wait: _time.sleep(min(wait, 0.05)),  # type: ignore[func-returns-value]
    )
    assert end.exit_code == 0
    # the line in one write; a line without its end still shown before the script ends
    assert terminal.writes == [b"part rest\n", b"progress 1%"]
    assert (tmp_path / "stdout.txt").read_bytes() == b"part rest\nprogress 1%"


def test_output_is_in_the_files_while_the_script_runs(project: Project) -> None:
    project.write(
        "slow.py",
        """
        import pathlib, time
        print("first line")
        while not pathlib.Path("go-on").exists():
            time.sleep(0.05)
        print("second line")
        """,
    )
    project.commit()
    proc = project.popen("run", "slow.py")
    try:
        deadline = _time.monotonic() + 30
        seen = ""
        while _time.monotonic() < deadline and seen != "first line\n":
            folders = project.experiments()
            if folders and (folders[0] / "stdout.txt").exists():
                seen = (folders[0] / "stdout.txt").read_text()
            _time.sleep(0.05)
        assert seen == "first line\n"  # written while the script still runs
        assert metadata(project.only_experiment())["status"] == "running"
    finally:
        (project.path / "go-on").write_text("")
        out, _ = proc.communicate(timeout=30)
    assert out == b"first line\nsecond line\n"
    assert metadata(project.only_experiment())["status"] == "completed"
