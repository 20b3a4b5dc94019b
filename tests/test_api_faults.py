"""The script API under faults: forks, a disk that fills up, values and names it cannot store."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from conftest import Project, metadata, results, run_python

from yanex import store


def strict_lines(folder: Path) -> list[dict[str, Any]]:
    """results.jsonl read as a strict JSON reader reads it: no torn line, no NaN, no duplicates."""

    def refuse_constant(name: str) -> Any:
        raise ValueError(f"not strict JSON: {name}")

    def refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [key for key, _ in pairs]
        assert len(keys) == len(set(keys)), f"duplicate keys: {keys}"
        return dict(pairs)

    text = (folder / "results.jsonl").read_text(encoding="utf-8")
    assert text == "" or text.endswith("\n"), "the last line is torn"
    return [
        json.loads(line, parse_constant=refuse_constant, object_pairs_hook=refuse_duplicates)
        for line in text.splitlines()
    ]


# --- forks and spawned children ---------------------------------------------------------------

FORKS = """
import multiprocessing, os, signal, sys, threading, time
import yanex

def child_logs(who):
    yanex.log_results({"who": who})
    yanex.log_results({"who": who})

def wait_for_child(pid):
    deadline = time.monotonic() + 20  # a hang guard: a deadlocked child never exits
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return "hung"

if __name__ == "__main__":
    stop = threading.Event()

    def parent_thread_logs():
        while not stop.is_set():
            yanex.log_results({"who": "thread"})  # in the lock most of the time

    thread = threading.Thread(target=parent_thread_logs)
    thread.start()
    outcomes = []
    for k in range(40):  # forked while the thread logs: often with its lock held
        pid = os.fork()
        if pid == 0:
            child_logs(f"fork{k}")
            os._exit(0)
        outcomes.append(wait_for_child(pid))
        if outcomes[-1] == "hung":
            break
    for method in ("fork", "spawn"):
        proc = multiprocessing.get_context(method).Process(target=child_logs, args=(method,))
        proc.start()
        proc.join(20)  # a hang guard
        if proc.is_alive():
            proc.kill()
            proc.join()
            outcomes.append("hung")
        else:
            outcomes.append(proc.exitcode)
    stop.set()
    thread.join()
    print(outcomes)
"""


@pytest.mark.slow
def test_forked_and_spawned_children_log_while_a_parent_thread_logs(project: Project) -> None:
    project.write("s.py", FORKS)
    project.commit()
    r = project.yanex("run", "s.py", timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str([0] * 42), "a child hung or failed"
    lines = strict_lines(project.only_experiment())  # every line whole
    children = [f"fork{k}" for k in range(40)] + ["fork", "spawn"]
    for who in children:
        # Each child is a process of its own: its steps start at 0, like a spawned child's.
        assert [line["step"] for line in lines if line["results"]["who"] == who] == [0, 1]
    thread_steps = [line["step"] for line in lines if line["results"]["who"] == "thread"]
    assert thread_steps == list(range(len(thread_steps)))  # the parent's count goes on


# --- a disk that fills up -----------------------------------------------------------------------


FILL_THE_DISK = """
import os, yanex

folder = yanex.experiment_dir()
filler = folder / "filler"

def fill_the_disk():
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        while True:
            os.write(fd, b"\\0" * 65536)
    except OSError:
        pass
    finally:
        os.close(fd)
"""


def test_a_line_that_does_not_fit_is_not_torn_and_is_reported_once(
    project: Project, small_disk: Path
) -> None:
    project.write(
        "s.py",
        FILL_THE_DISK
        + """
yanex.log_results({"ok": 0})
fill_the_disk()
os.truncate(filler, os.path.getsize(filler) - 16384)  # room for a warning, not for a line
for _ in range(3):
    yanex.log_results({"big": "x" * 100_000})  # written in part, then the disk is full
os.remove(filler)
yanex.log_results({"ok": 1})
print("script went on")
""",
    )
    project.commit()
    on_disk = Project(project.path, small_disk)
    r = on_disk.yanex("run", "s.py")
    assert r.returncode == 0, r.stderr
    assert "script went on" in r.stdout
    folder = on_disk.only_experiment()
    # The lines that did not fit are gone whole, and used no step: the next line takes it.
    assert [(x["step"], x["results"]) for x in strict_lines(folder)] == [
        (0, {"ok": 0}),
        (1, {"ok": 1}),
    ]
    problem = "results.jsonl is incomplete: No space left on device (from step 1)"
    assert r.stderr.count("results.jsonl is incomplete") == 1, r.stderr  # once, not per call
    assert f"yanex: warning: experiment {folder.name}: {problem}\n" in r.stderr
    assert store.read_warnings(folder) == [problem]
    assert metadata(folder)["warnings"] == [problem]  # merged when the run ended
    (record,) = [json.loads(x) for x in (folder / "warnings.jsonl").read_text().splitlines()]
    assert record["warning"] == problem and record["at"][:4].isdigit()
    assert "metadata.json" not in r.stderr and "Traceback" not in r.stderr


def test_a_loss_is_recorded_even_when_the_disk_has_no_room_for_the_warning(
    project: Project, small_disk: Path
) -> None:
    """The warning is written into room taken from what the launcher keeps for the ending."""
    project.write(
        "s.py",
        FILL_THE_DISK
        + """
yanex.log_results({"ok": 0})
fill_the_disk()
for _ in range(3):
    yanex.log_results({"big": "x" * 100_000})
os.remove(filler)
yanex.log_results({"ok": 1})
""",
    )
    project.commit()
    on_disk = Project(project.path, small_disk)
    r = on_disk.yanex("run", "s.py")
    assert r.returncode == 0, r.stderr
    folder = on_disk.only_experiment()
    assert [(x["step"], x["results"]) for x in strict_lines(folder)] == [
        (0, {"ok": 0}),
        (1, {"ok": 1}),
    ]
    problem = "results.jsonl is incomplete: No space left on device (from step 1)"
    assert r.stderr.count("results.jsonl is incomplete: No space left on device") == 1
    recorded = metadata(folder)["warnings"]
    assert recorded[0] == problem
    # stderr.txt may miss the warning too (the tee wrote it while the disk was full): said so
    assert set(recorded[1:]) <= {"stderr.txt is incomplete: No space left on device"}
    assert metadata(folder)["status"] == "completed"


def test_an_artifact_the_full_disk_cannot_take_raises_and_is_recorded(
    project: Project, small_disk: Path
) -> None:
    project.write(
        "s.py",
        FILL_THE_DISK
        + """
yanex.save_artifact("small", "before.txt")
fill_the_disk()
for name in ("model.pkl", "plots/curve.json"):
    try:
        yanex.save_artifact({"weights": "w" * 200_000}, name)
    except OSError as exc:
        print("raised", exc.strerror)
os.remove(filler)
print(sorted(p.name for p in (folder / "artifacts").rglob("*")))
""",
    )
    project.commit()
    on_disk = Project(project.path, small_disk)
    r = on_disk.yanex("run", "s.py")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "raised No space left on device",
        "raised No space left on device",
        "['before.txt', 'plots']",  # no temp file is left behind
    ], r.stdout + r.stderr
    folder = on_disk.only_experiment()
    recorded = metadata(folder)["warnings"]
    assert recorded[:2] == [
        "artifact 'model.pkl' was not saved: No space left on device (save_artifact)",
        "artifact 'plots/curve.json' was not saved: No space left on device (save_artifact)",
    ]
    logs = {f"{log} is incomplete: No space left on device" for log in ("stdout.txt", "stderr.txt")}
    assert set(recorded[2:]) <= logs  # what the script printed while the disk was full


# --- values that cannot be stored -----------------------------------------------------------------


def test_a_refused_call_uses_up_no_step(project: Project) -> None:
    project.write(
        "s.py",
        """
        import yanex
        yanex.log_results({"a": 0})
        for bad in ({"x": object()}, {1: "int", "1": "str"}, {"text": "a\\udc80b"}):
            try:
                yanex.log_results(bad)
            except (TypeError, ValueError) as exc:
                print(type(exc).__name__)
        try:
            yanex.log_results({"nested": {"deep": ["\\ud800"]}}, step=7)
        except ValueError as exc:
            print(exc)
        yanex.log_results({"a": 1})
        """,
    )
    project.commit()
    r = project.yanex("run", "s.py")
    assert r.stdout.splitlines() == [
        "TypeError",
        "ValueError",
        "ValueError",
        "log_results: a string holds the lone surrogate '\\ud800', which UTF-8 (and so a "
        "JSON file) cannot hold; decode the text it came from with errors='replace', or log "
        "it as bytes.hex()",
    ], r.stderr
    assert [(x["step"], x["results"]) for x in results(project.only_experiment())] == [
        (0, {"a": 0}),
        (1, {"a": 1}),
    ]


def test_nan_and_infinity_are_written_as_strict_json_strings(project: Project) -> None:
    project.write(
        "s.py",
        """
        import math, numpy as np, yanex
        nan, inf = math.nan, math.inf
        yanex.log_results({
            "nan": nan, "inf": inf, "ninf": -inf, "ok": 0.5,
            "nested": {"list": [nan, 1.0, (inf,)], "deeper": {"x": -inf}},
            "np32": np.float32("nan"), "np64": np.float64("inf"), "array": np.array([1.0, nan]),
        })
        """,
    )
    project.commit()
    r = project.yanex("run", "s.py")
    assert r.returncode == 0, r.stderr
    (line,) = strict_lines(project.only_experiment())
    assert line["results"] == {
        "nan": "NaN",
        "inf": "Infinity",
        "ninf": "-Infinity",
        "ok": 0.5,
        "nested": {"list": ["NaN", 1.0, ["Infinity"]], "deeper": {"x": "-Infinity"}},
        "np32": "NaN",
        "np64": "Infinity",
        "array": [1.0, "NaN"],
    }


@pytest.mark.parametrize(
    ("results_text", "first", "second", "written"),
    [
        ('{1: "a", "1": "b"}', "1", "'1'", "1"),
        ('{"m": {None: 1, "null": 2}}', "None", "'null'", "null"),
        ('{"rows": [{True: 1, "true": 2}]}', "True", "'true'", "true"),
    ],
)
def test_keys_written_alike_are_refused(
    project: Project, results_text: str, first: str, second: str, written: str
) -> None:
    project.write(
        "s.py",
        f"""
        import yanex
        try:
            yanex.log_results({results_text})
        except ValueError as exc:
            print(exc)
        """,
    )
    project.commit()
    r = project.yanex("run", "s.py")
    assert r.stdout.strip() == (
        f'log_results: the keys {first} and {second} would both be written as "{written}"; '
        "give them distinct names"
    ), r.stdout + r.stderr
    assert results(project.only_experiment()) == []


# --- artifact names -----------------------------------------------------------------------------

BAD_NAMES = [".", "sub/..", "..", "", "a//b.txt", "plots/", "./x.txt", "a/./b.txt", "é" * 128]


def test_artifact_names_work_or_are_refused_clearly(project: Project) -> None:
    project.write("data.bin", "raw\n")
    project.write(
        "s.py",
        f"""
        import yanex
        yanex.save_artifact("kept", "keep.txt")
        for name in {BAD_NAMES!r}:
            for call in (
                lambda: yanex.log_artifact("data.bin", name),
                lambda: yanex.save_artifact("x", name),
                lambda: yanex.load_artifact(name),
            ):
                try:
                    call()
                    print("accepted", repr(name))
                except ValueError as exc:
                    print("refused", exc)
        """,
    )
    project.commit()
    r = project.yanex("run", "s.py")
    assert r.returncode == 0, r.stderr
    outcomes = r.stdout.splitlines()
    assert len(outcomes) == 3 * len(BAD_NAMES)
    for outcome in outcomes:
        assert outcome.startswith("refused invalid artifact name"), outcome
        assert "a valid name is a relative path like 'model.pt' or 'plots/loss.png'" in outcome
    art = project.only_experiment() / "artifacts"
    assert art.is_dir()
    assert [p.name for p in art.iterdir()] == ["keep.txt"]  # no stray or temp file


def test_long_artifact_names_up_to_the_file_system_limit_work(project: Project) -> None:
    project.write("data.bin", "raw\n")
    project.write(
        "s.py",
        """
        import yanex
        yanex.log_artifact("data.bin", "a" * 240)
        yanex.save_artifact("text", "deep/" + "b" * 251 + ".txt")  # 255 bytes
        print(yanex.load_artifact("a" * 240), yanex.load_artifact("deep/" + "b" * 251 + ".txt"))
        """,
    )
    project.commit()
    r = project.yanex("run", "s.py")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "b'raw\\n' text"


def test_an_artifact_name_in_the_way_of_a_folder_or_file_is_refused(project: Project) -> None:
    project.write("data.bin", "raw\n")
    project.write(
        "s.py",
        """
        import yanex
        yanex.save_artifact("x", "plots/a.txt")
        try:
            yanex.log_artifact("data.bin", "plots")
        except ValueError as exc:
            print(exc)
        try:
            yanex.save_artifact("y", "plots/a.txt/b.txt")
        except ValueError as exc:
            print(exc)
        print(yanex.load_artifact("plots/a.txt"))
        """,
    )
    project.commit()
    r = project.yanex("run", "s.py")
    assert r.stdout.splitlines() == [
        "log_artifact: 'plots' is a folder in artifacts/; name a file inside it",
        "save_artifact: cannot write 'plots/a.txt/b.txt': 'plots/a.txt' is a file in "
        "artifacts/, not a folder",
        "x",
    ], r.stdout + r.stderr


def listed_artifacts(project: Project, folder: Path) -> list[str]:
    """What ``yanex get artifacts`` shows, relative to the artifacts folder."""
    r = project.yanex("get", "artifacts", folder.name)
    assert r.returncode == 0, r.stderr
    return [str(Path(line).relative_to(folder / "artifacts")) for line in r.stdout.splitlines()]


def test_a_custom_saver_leaves_nothing_behind_whatever_it_wrote(project: Project) -> None:
    """A saver that makes a folder (and fails, or not), writes beside the path it is given
    (numpy adds ".npy" to a name without it) or writes several files: the artifact is the one
    file it wrote, under the name asked for, or the save fails; no temp file or folder stays."""
    project.write(
        "s.py",
        """
        import os
        import numpy as np
        import yanex

        def folder_then_fail(obj, path):
            os.mkdir(path)
            with open(os.path.join(path, "part.bin"), "w") as f:
                f.write("x")
            raise RuntimeError("the saver broke")

        def folder(obj, path):
            os.mkdir(path)
            with open(os.path.join(path, "part.bin"), "w") as f:
                f.write("x")

        def two_files(obj, path):
            for name in (path, f"{path}.meta"):
                with open(name, "w") as f:
                    f.write("x")

        def other_name(obj, path):
            with open(path.with_suffix(".pt"), "w") as f:
                f.write("x")

        mine = os.path.abspath("mine.bin")  # a file of the user's, outside the experiment
        with open(mine, "w") as f:
            f.write("the user's")
        os.chmod(mine, 0o644)
        for name, saver in [
            ("broken.ckpt", folder_then_fail),
            ("dir.ckpt", folder),
            ("pair.ckpt", two_files),
            ("model.ckpt", other_name),
            ("m", lambda obj, path: open(f"{path}_final", "w").close()),
            ("link.bin", lambda obj, path: os.symlink(mine, path)),
            ("hard.bin", lambda obj, path: os.link(mine, path)),
            ("pipe.bin", lambda obj, path: os.mkfifo(path)),
            ("weights", lambda obj, path: np.save(path, obj)),
            ("w.dat", lambda obj, path: np.save(path, obj)),
        ]:
            try:
                yanex.save_artifact(np.arange(3), name, saver=saver)
                print("saved", name, yanex.load_artifact(name, loader=np.load).tolist())
            except (RuntimeError, ValueError) as exc:
                print("raised", exc)
        print(sorted(os.listdir(yanex.experiment_dir() / "artifacts")))
        print(oct(os.stat(mine).st_mode & 0o777), open(mine).read())
        """,
    )
    project.commit()
    r = project.yanex("run", "s.py")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "raised the saver broke",
        "raised save_artifact: the saver made a folder at the path it was given, not a file; "
        "save one file (an archive of the folder), or each of its files with log_artifact",
        "raised save_artifact: the saver wrote 'pair.ckpt', 'pair.ckpt.meta', not one file at "
        "the path it was given; save each file as an artifact of its own",
        "raised save_artifact: the saver wrote 'model.pt', not the path it was given "
        "('model.ckpt'); write to that path as it is",
        "raised save_artifact: the saver wrote 'm_final', not the path it was given ('m'); "
        "write to that path as it is",
        *2
        * [
            "raised save_artifact: the saver made a link at the path it was given, not a file "
            "of its own; write the data there, or copy a file in with log_artifact(path)"
        ],
        "raised save_artifact: the saver made something that is not a file at the path it "
        "was given (a FIFO, socket or device); write a regular file there",
        "saved weights [0, 1, 2]",
        "saved w.dat [0, 1, 2]",
        "['w.dat', 'weights']",  # nothing hidden
        "0o644 the user's",  # the user's file as it was
    ], r.stdout + r.stderr
    folder = project.only_experiment()
    assert listed_artifacts(project, folder) == ["w.dat", "weights"]


def test_a_save_killed_midway_leaves_nothing_once_the_run_has_ended(project: Project) -> None:
    """The temp file and folder of a save whose process was killed are removed when the
    run's end is recorded; the artifacts saved before stay."""
    project.write(
        "s.py",
        """
        import os, signal, yanex
        yanex.save_artifact("kept", "plots/a.txt")
        def killed(obj, path):
            path.write_bytes(b"x" * 1000)
            os.kill(os.getpid(), signal.SIGKILL)
        yanex.save_artifact(None, "plots/k.bin", saver=killed)
        """,
    )
    project.commit()
    r = project.yanex("run", "s.py")
    assert r.returncode != 0 and "killed by signal SIGKILL" in r.stderr, r.stderr
    artifacts = project.only_experiment() / "artifacts"
    assert sorted(str(p.relative_to(artifacts)) for p in artifacts.rglob("*")) == [
        "plots",
        "plots/a.txt",
    ]


def test_only_yanex_temp_names_are_hidden_from_the_artifacts(project: Project) -> None:
    """A user's dotfiles with ".tmp" in them are artifacts like any other; yanex's own temp
    names (a file or a folder a crash left) are never listed, and cannot be taken by one."""
    project.write(
        "s.py",
        """
        import yanex
        for name in (".tmp_notes.txt", ".cache.tmp.json", "sub/.lock", "sub/.x.tmp"):
            yanex.save_artifact("mine", name, saver=lambda obj, path: path.write_text(obj))
        try:
            yanex.save_artifact("x", ".yanex-0123456789ab.tmp.txt")
        except ValueError as exc:
            print(exc)
        """,
    )
    project.commit()
    r = project.yanex("run", "s.py")
    assert r.returncode == 0, r.stderr
    folder = project.only_experiment()
    left = folder / "artifacts" / ".yanex-0123456789ab.tmp.ckpt"  # what a killed save leaves
    left.mkdir()
    (left / "part.bin").write_text("half")
    (folder / "artifacts" / "sub" / ".yanex-ba9876543210.tmp").write_text("half")
    mine = [".cache.tmp.json", ".tmp_notes.txt", "sub/.lock", "sub/.x.tmp"]
    assert listed_artifacts(project, folder) == mine
    code = f"import yanex.results as r; print(r.get({folder.name!r}).list_artifacts())"
    shown = run_python(code, cwd=project.path, env=project.env())
    assert shown.stdout.strip() == repr(mine), shown.stderr
    assert r.stdout.startswith(
        "invalid artifact name '.yanex-0123456789ab.tmp.txt': '.yanex-0123456789ab.tmp.txt' is "
        "a name yanex keeps for its temp files"
    ), r.stdout + r.stderr


def test_standalone_refuses_the_names_a_tracked_run_would(plain_dir: Project) -> None:
    code = (
        "import yanex\n"
        "try:\n"
        "    yanex.save_artifact('x', 'sub/..')\n"
        "except ValueError as exc:\n"
        "    print('refused', exc)\n"
    )
    r = run_python(code, cwd=plain_dir.path, env=plain_dir.env())
    assert r.stdout.startswith("refused invalid artifact name 'sub/..'"), r.stdout + r.stderr


def test_artifact_folders_and_files_are_user_only(project: Project) -> None:
    project.write("s.py", "import yanex\nyanex.save_artifact('x', 'a/b/c.txt')\n")
    project.commit()
    r = project.yanex("run", "s.py", preexec_fn=lambda: os.umask(0o022))
    assert r.returncode == 0, r.stderr
    art = project.only_experiment() / "artifacts"
    for folder in (art, art / "a", art / "a" / "b"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    assert stat.S_IMODE((art / "a" / "b" / "c.txt").stat().st_mode) == 0o600


# --- parameters ---------------------------------------------------------------------------------


def test_get_param_index_parts_that_are_not_indexes_give_the_default(project: Project) -> None:
    project.write("config.yaml", "layers: [16, 32]\n")
    project.write(
        "s.py",
        """
        import yanex
        for key in ("layers.--1", "layers.-1", "layers.-3", "layers.\\u00b2", "layers.+1"):
            print(key, yanex.get_param(key, "dflt"))
        """,
    )
    project.commit()
    r = project.yanex("run", "s.py")
    assert r.stdout.splitlines() == [
        "layers.--1 dflt",
        "layers.-1 32",
        "layers.-3 dflt",
        "layers.\u00b2 dflt",
        "layers.+1 dflt",
    ], r.stderr


def test_standalone_skips_a_malformed_variable_with_one_warning(plain_dir: Project) -> None:
    code = "import yanex\nprint(yanex.get_param('lr'), yanex.get_param('lr'), yanex.get_params())\n"
    env = plain_dir.env(
        YANEX_PARAM_lr="0.1",
        YANEX_PARAM_model__depth="3",
        YANEX_PARAM_bad="[1,2",
        YANEX_PARAM_sweep="list(1, 2)",
        YANEX_PARAM_path="${nowhere}/data",
        YANEX_PARAM_="x",
    )
    r = run_python(code, cwd=plain_dir.path, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "0.1 0.1 {'lr': 0.1, 'model': {'depth': 3}}"
    for name in ("YANEX_PARAM_bad", "YANEX_PARAM_sweep", "YANEX_PARAM_path", "YANEX_PARAM_"):
        assert r.stderr.count(f"yanex: ignoring {name}: ") == 1, (name, r.stderr)
    assert "cannot be parsed" in r.stderr and "is a sweep" in r.stderr
    assert "nowhere" in r.stderr and "names no parameter" in r.stderr
