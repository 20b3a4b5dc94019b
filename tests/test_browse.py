"""`yanex list/show/compare/get`: finding and comparing real runs, as a user types it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Project, assert_usage_error, git, metadata

TRAIN = """
import sys, yanex
lr = yanex.get_param("lr", 0.1)
layers = yanex.get_param("layers", 2)
for step in range(12):
    yanex.log_results({"loss": round(1.0 / (step + 1) + lr, 6), "acc": round(step / 12, 6)})
if yanex.get_param("fail", False):
    print("something went wrong", file=sys.stderr)
    print("ValueError: the data is bad", file=sys.stderr)
    sys.exit(3)
yanex.save_artifact("done", "note.txt")
print("trained")
"""


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """A store made by real runs: three named runs, a failed one, and a grid of four."""
    root = tmp_path_factory.mktemp("browse")
    path = root / "proj"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    proj = Project(path, root / "home")
    proj.write("train.py", TRAIN)
    proj.commit("train")
    for name, lr, tags in (("base", 0.1, ["baseline"]), ("small", 0.01, ["baseline", "small"])):
        args = ["-p", f"lr={lr}", "-n", name] + [a for t in tags for a in ("-t", t)]
        assert proj.yanex("run", "train.py", *args).returncode == 0
    r = proj.yanex("run", "train.py", "-p", "fail=true", "-p", "lr=0.5", "-n", "broken")
    assert r.returncode == 3
    r = proj.yanex("stage", "train.py", "-p", "lr=list(0.2, 0.3)", "-p", "layers=list(1, 4)")
    assert r.returncode == 0, r.stderr
    assert proj.yanex("run", "--staged").returncode == 0
    assert proj.yanex("run", "train.py", "-p", "lr=0.05", "-n", "base").returncode == 0
    return proj


def ids_of(proj: Project, *args: str) -> list[str]:
    r = proj.yanex("list", *args, "--format", "ids")
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


def by_name(proj: Project) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for folder in proj.experiments():
        found.setdefault(metadata(folder)["name"], []).append(folder.name)
    return found


@pytest.mark.slow
def test_list_shows_the_projects_runs_newest_first_with_their_results(store: Project) -> None:
    r = store.yanex("list")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[:6] == ["ID", "NAME", "STATUS", "TAGS", "STARTED", "DURATION"]
    assert lines[0].split()[6:] == ["loss", "acc"]
    assert len(lines) == 1 + 8
    newest = lines[1].split()
    assert newest[1:3] == ["base", "completed"] and newest[-2:] == ["0.1333", "0.9167"]
    broken = next(line for line in lines if "broken" in line)
    assert "failed" in broken and "ago" in broken
    created = [metadata(store.home / "experiments" / i)["created_at"] for i in ids_of(store)]
    assert created == sorted(created, reverse=True)


@pytest.mark.slow
def test_limit_all_and_the_count_of_what_is_left_out(store: Project) -> None:
    r = store.yanex("list", "--limit", "3")
    assert len(r.stdout.splitlines()) == 4
    assert "3 of 8 experiments" in r.stderr and "--all" in r.stderr
    assert len(ids_of(store, "--all")) == 8
    assert len(ids_of(store, "-l", "100")) == 8


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["--status", "failed"], ["broken"]),
        (
            ["--status", "failed", "--status", "completed", "--name", "b*"],
            ["base", "broken", "base"],
        ),
        (["--tag", "baseline"], ["small", "base"]),
        (["--tag", "baseline", "--tag", "small"], ["small"]),
        (["--name", "sm?ll"], ["small"]),
        (["--where", "params.lr<=0.05"], ["base", "small"]),
        (["--where", "params.lr==0.1"], ["base"]),
        (["--where", "params.lr!=0.1", "--where", "params.lr<0.2"], ["base", "small"]),
        (["--where", "results.loss>0.5"], ["broken"]),
        (["--where", "status==failed"], ["broken"]),
        (["--where", "exit_code==3"], ["broken"]),
        (["--where", "params.fail==true"], ["broken"]),
        (["--where", "name=='small'"], ["small"]),
        (["--where", "params.lr=='0.1'"], []),  # a string never equals a number
    ],
)
def test_filters(store: Project, args: list[str], names: list[str]) -> None:
    r = store.yanex("list", *args, "--format", "json")
    assert r.returncode == 0, r.stderr
    assert [e["name"] for e in json.loads(r.stdout)] == names


def test_a_null_metadata_number_is_found_with_null(project: Project) -> None:
    """exit_code==null finds what has not ended (it never matched: the number test came
    first and compared with NULL)."""
    project.write("job.py", "print('done')\n")
    project.commit()
    assert project.yanex("run", "job.py", "-n", "ran").returncode == 0
    assert project.yanex("stage", "job.py", "-n", "waiting").returncode == 0
    for where, names in (
        ("exit_code==null", ["waiting"]),
        ("exit_code!=null", ["ran"]),
        ("exit_code==0", ["ran"]),
        ("exit_code!=0", []),  # a run without an exit code is not one with another
        ("ended==null", ["waiting"]),
        ("ended!=null", ["ran"]),
    ):
        r = project.yanex("list", "--where", where, "--format", "json")
        assert r.returncode == 0, r.stderr
        assert [e["name"] for e in json.loads(r.stdout)] == names, where


def test_dirty_null_finds_the_runs_without_git(project: Project, tmp_path: Path) -> None:
    project.write("job.py", "print('x')\n")
    project.commit()
    assert project.yanex("run", "job.py", "-n", "git").returncode == 0
    nogit = tmp_path / "nogit"
    nogit.mkdir()
    (nogit / "job.py").write_text("print('x')\n")
    ran = subprocess.run(
        [sys.executable, "-m", "yanex", "run", "job.py", "-n", "nogit"],
        cwd=nogit, env=project.env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    r = project.yanex("list", "-A", "--where", "dirty==null", "--format", "json")
    assert [e["name"] for e in json.loads(r.stdout)] == ["nogit"], r.stderr
    # null in any case, as the grammar reads it (NULL was "dirty is true or false").
    r = project.yanex("list", "-A", "--where", "dirty==NULL", "--format", "json")
    assert [e["name"] for e in json.loads(r.stdout)] == ["nogit"], r.stderr
    assert_usage_error(project.yanex("list", "--where", "ended<null"), "not null")
    assert_usage_error(
        project.yanex("list", "--where", "dirty==unknown"),
        "dirty is true or false (null: unknown)",
        "dirty==null",
    )


@pytest.mark.slow
def test_sweep_script_and_time_filters(store: Project) -> None:
    sweep = next(metadata(f)["sweep"] for f in store.experiments() if metadata(f)["sweep"])
    members = ids_of(store, "--sweep", sweep[:4])
    assert len(members) == 4
    assert ids_of(store, "--script", "train.py") == ids_of(store)
    assert ids_of(store, "--script", str(store.path / "train.py")) == ids_of(store)
    assert ids_of(store, "--script", "other.py") == []
    assert len(ids_of(store, "--since", "1h")) == 8
    assert ids_of(store, "--until", "2h") == []
    assert ids_of(store, "--since", "2000-01-01", "--until", "2999-01-01") == ids_of(store)


def test_sort_ascending_descending_and_missing_last(store: Project) -> None:
    r = store.yanex("list", "--sort", "results.loss", "--format", "json")
    losses = [e["results"]["loss"] for e in json.loads(r.stdout)]
    assert losses == sorted(losses)
    r = store.yanex("list", "--sort", "-params.layers", "--format", "json")
    layers = [e["params"].get("layers") for e in json.loads(r.stdout)]
    assert layers[:4] == [4, 4, 1, 1] and layers[4:] == [None] * 4


def test_formats_json_csv_ids(store: Project) -> None:
    data = json.loads(store.yanex("list", "--format", "json", "--name", "small").stdout)
    assert data[0]["params"] == {"lr": 0.01} and data[0]["tags"] == ["baseline", "small"]
    assert data[0]["results"] == {"loss": 0.093333, "acc": 0.916667}
    csv_lines = store.yanex("list", "--format", "csv", "--name", "small").stdout.splitlines()
    header = csv_lines[0].split(",")
    assert header[:3] == ["id", "name", "status"] and "params.lr" in header
    assert header[-2:] == ["results.loss", "results.acc"]
    assert csv_lines[1].split(",")[header.index("params.lr")] == "0.01"
    assert ids_of(store, "--name", "small") == [data[0]["id"]]


@pytest.mark.slow
def test_all_projects_and_the_project_column(store: Project, tmp_path: Path) -> None:
    other = Project(tmp_path / "other", store.home)
    other.path.mkdir()
    git(other.path, "init", "-q", "-b", "main")
    other.write("job.py", "print('other')\n")
    other.commit()
    assert other.yanex("run", "job.py", "-n", "elsewhere").returncode == 0
    assert "elsewhere" not in store.yanex("list").stdout
    assert other.yanex("list", "--format", "ids").stdout.split() == ids_of(other)
    r = store.yanex("list", "-A", "--all")
    assert "PROJECT" in r.stdout.splitlines()[0]
    assert "elsewhere" in r.stdout and "other" in r.stdout and "proj" in r.stdout
    # An ID from another project is found from here.
    experiment_id = ids_of(other)[0]
    assert store.yanex("show", experiment_id[:5]).returncode == 0
    shutil.rmtree(store.home / "experiments" / experiment_id)


def test_show_a_failure_with_its_reason_and_stderr(store: Project) -> None:
    r = store.yanex("show", "broken")
    assert r.returncode == 0, r.stderr
    text = r.stdout
    assert "status       failed (exit code 3)" in text
    assert "reason       exited with code 3" in text
    assert "ValueError: the data is bad" in text
    assert "lr: 0.5" in text and "fail: true" in text
    assert "loss" in text and "steps" in text


def test_show_sections(store: Project) -> None:
    experiment_id = by_name(store)["small"][0]
    r = store.yanex("show", experiment_id[:6])
    text = r.stdout
    for needle in (
        f"experiment {experiment_id}",
        "name         small",
        "tags         baseline, small",
        "config\n  lr: 0.01",
        "results",
        "note.txt  (4 B)",
        "branch       main",
        "dirty        no",
        "python",
        str(store.home / "experiments" / experiment_id),
    ):
        assert needle in text, needle
    # Results: last, min, max and steps; then the last 10 steps.
    loss_row = next(line.split() for line in text.splitlines() if line.strip().startswith("loss"))
    assert loss_row == ["loss", "0.09333", "0.09333", "1.01", "12"]
    table = text.split("last steps:")[1].splitlines()
    assert table[1].split() == ["step", "loss", "acc"]
    assert [line.split()[0] for line in table[2:12]] == [str(s) for s in range(2, 12)]
    assert table[12] == ""


def test_show_json_holds_the_whole_record(store: Project) -> None:
    r = store.yanex("show", "small", "--format", "json")
    data = json.loads(r.stdout)
    assert data["name"] == "small" and data["config"] == {"lr": 0.01}
    assert data["results"]["loss"]["count"] == 12 and data["results"]["loss"]["max"] == 1.01
    assert [line["step"] for line in data["last_steps"]] == list(range(2, 12))
    assert data["artifacts"] == [{"name": "note.txt", "size": 4}]
    assert data["git"]["branch"] == "main"


def test_a_name_means_the_newest_with_it(store: Project) -> None:
    newest = json.loads(store.yanex("show", "base", "--format", "json").stdout)
    assert newest["config"] == {"lr": 0.05}


def test_compare_shows_differing_params_and_marks_the_best(store: Project) -> None:
    names = by_name(store)
    r = store.yanex("compare", names["small"][0], *names["base"])
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["ID", "NAME", "STATUS", "lr", "loss", "acc"]
    small = next(line for line in lines if "small" in line)
    assert "0.09333 *" in small  # the lowest loss is the best
    assert not any("0.9167 *" in line for line in lines)  # equal values: no best
    r = store.yanex("compare", names["small"][0], *names["base"], "--all-params", "--format", "csv")
    assert r.stdout.splitlines()[0] == "id,name,status,params.lr,results.loss,results.acc"


def test_compare_a_sweep_as_json_sorted(store: Project) -> None:
    sweep = next(metadata(f)["sweep"] for f in store.experiments() if metadata(f)["sweep"])
    r = store.yanex("compare", "--sweep", sweep, "--sort", "-results.loss", "--format", "json")
    rows = json.loads(r.stdout)
    assert [row["params"] for row in rows] == [
        {"lr": 0.3, "layers": 1},
        {"lr": 0.3, "layers": 4},
        {"lr": 0.2, "layers": 1},
        {"lr": 0.2, "layers": 4},
    ] or [row["params"]["lr"] for row in rows] == [0.3, 0.3, 0.2, 0.2]
    assert rows[-1]["best"] == ["loss"]


@pytest.mark.slow
def test_get_prints_one_value_per_line(store: Project) -> None:
    names = by_name(store)
    small, broken = names["small"][0], names["broken"][0]
    r = store.yanex("get", "status", small, broken)
    assert r.stdout.splitlines() == ["completed", "failed"]
    assert store.yanex("get", "dir", "small").stdout.strip() == str(
        store.home / "experiments" / small
    )
    assert store.yanex("get", "params.lr", "small").stdout == "0.01\n"
    assert store.yanex("get", "results.loss", "small").stdout == "0.093333\n"
    assert store.yanex("get", "params.missing", "small").stdout == "\n"
    values = store.yanex("get", "params.lr", "--tag", "baseline").stdout.split()
    assert values == ["0.01", "0.1"]


@pytest.mark.slow
def test_run_command_rebuilds_the_same_config(store: Project) -> None:
    """Every member of the grid: its run-command, run again, gives a byte-identical config."""
    sweep = next(metadata(f)["sweep"] for f in store.experiments() if metadata(f)["sweep"])
    for experiment_id in ids_of(store, "--sweep", sweep):
        command = store.yanex("get", "run-command", experiment_id).stdout.strip()
        assert command.startswith("yanex run train.py -p ")
        assert "list(" not in command  # the member's own values, not the sweep
        import shlex

        r = store.yanex(*shlex.split(command)[1:], "--dry-run")
        assert r.returncode == 0, r.stderr
        original = (store.home / "experiments" / experiment_id / "config.yaml").read_text()
        assert r.stdout == original


@pytest.mark.slow
def test_user_text_is_escaped(project: Project) -> None:
    project.write("job.py", "print('x')\n")
    project.commit()
    evil = "evil\x1b[2J\x07name"
    assert project.yanex("run", "job.py", "-n", evil, "-t", "t\x1b]0;x").returncode == 0
    for args in (["list"], ["show", "evil*"[:4]], ["compare", "--name", "evil*"]):
        if args[0] == "show":
            args = ["show", project.only_experiment().name]
        r = project.yanex(*args)
        assert r.returncode == 0, r.stderr
        assert "\x1b" not in r.stdout + r.stderr and "\x07" not in r.stdout
        assert "evil\\x1b[2J\\x07name" in r.stdout


def test_unreadable_folders_are_skipped_with_one_warning_each(project: Project) -> None:
    project.write("job.py", "print('x')\n")
    project.commit()
    assert project.yanex("run", "job.py", "-n", "good").returncode == 0
    good = project.only_experiment()
    root = project.home / "experiments"
    bad = {
        "aaaa0001": "{not json",
        "aaaa0002": "[1, 2]",
        "aaaa0003": json.dumps({**metadata(good), "id": "aaaa0003", "tags": "oops"}),
        "aaaa0004": json.dumps({**metadata(good), "id": "aaaa0004", "status": 7}),
    }
    for name, text in bad.items():
        shutil.copytree(good, root / name)
        (root / name / "metadata.json").write_text(text)
    r = project.yanex("list")
    assert r.returncode == 0 and "Traceback" not in r.stderr
    assert r.stdout.count("good") == 1
    for name in bad:
        assert r.stderr.count(f"skipped experiment folder {name}") == 1
    assert "is not valid JSON" in r.stderr and "not an object" in r.stderr


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["list", "--where", "foo.bar<1"], ["unknown key 'foo.bar'", "params.<dotted key>"]),
        (["list", "--where", "params.lr~=1"], ["unknown operator '~='", "<="]),
        (["list", "--where", "params.lr"], ["has no comparison"]),
        (["list", "--where", "params.lr=1"], ["'=' is not a comparison", "=="]),
        (["list", "--where", "params.lr<true"], ["compares numbers or text"]),
        (["list", "--where", "params.lr<[1,"], ["cannot be parsed"]),
        (["list", "--sort", "bogus"], ["unknown key 'bogus'"]),
        (["list", "--where", "params.nothing==1"], ["no experiment has a parameter 'nothing'"]),
        (["list", "--where", "params.lrr<1"], ["no experiment has", "Did you mean params.lr?"]),
        (["list", "--sort", "-results.los"], ["no experiment has a result", "results.loss"]),
        (["list", "--since", "someday"], ["neither a date nor a duration", "3d"]),
        (["list", "--since", "3y"], ["neither a date nor a duration"]),
        (["list", "--format", "xml"], ["'xml' is not one of"]),
        (["list", "--status", "done"], ["'done' is not one of"]),
        (["get", "bogus", "small"], ["unknown field 'bogus'", "run-command"]),
        (["get", "status"], ["name the experiments"]),
        (["show", "ffffffff"], ["no experiment has the ID, ID prefix or name 'ffffffff'"]),
        (["show", "nosuchname"], ["no experiment has the ID"]),
        (["show", "ab"], ["too short"]),
    ],
)
def test_bad_input_is_refused(store: Project, args: list[str], needles: list[str]) -> None:
    before = sorted(p.name for p in (store.home / "experiments").iterdir())
    assert_usage_error(store.yanex(*args), *needles)
    assert sorted(p.name for p in (store.home / "experiments").iterdir()) == before


def test_an_ambiguous_prefix_lists_the_candidates(store: Project) -> None:
    source = store.home / "experiments" / by_name(store)["small"][0]
    root = store.home / "experiments"
    for name in ("abcd0001", "abcd0002"):
        shutil.copytree(source, root / name)
        meta = metadata(root / name) | {"id": name}
        (root / name / "metadata.json").write_text(json.dumps(meta))
    try:
        r = store.yanex("show", "abcd")
        assert_usage_error(r, "'abcd' is the prefix of 2 experiments", "abcd0001", "abcd0002")
        assert store.yanex("show", "abcd0002").returncode == 0
    finally:
        for name in ("abcd0001", "abcd0002"):
            shutil.rmtree(root / name)


def in_terminal(project: Project, *args: str, columns: int = 80) -> str:
    """Run ``yanex ARGS`` on a real terminal (a pty) of that width; its output as text."""
    import fcntl
    import os
    import pty
    import struct
    import sys
    import termios

    pid, fd = pty.fork()
    if pid == 0:
        # The size is set by the child itself, before yanex starts (set by the parent after
        # the fork, it could race with yanex reading it).
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
        os.chdir(project.path)
        os.execve(sys.executable, [sys.executable, "-m", "yanex", *args], project.env())
    output = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    os.waitpid(pid, 0)
    return output.decode("utf-8", "replace")


@pytest.mark.slow
def test_a_terminal_gets_a_rich_table_that_fits_and_escaped_text(project: Project) -> None:
    many = ", ".join(f"'metric_number_{i}': {i}" for i in range(12))
    project.write("job.py", f"import yanex\nyanex.log_results({{{many}}})\n")
    project.commit()
    r = project.yanex("run", "job.py", "-n", "evil\x1b[2Jname", "-t", "t")
    assert r.returncode == 0, r.stderr
    text = in_terminal(project, "list", columns=100)
    assert "evil\\x1b[2Jname" in text  # shown as text...
    assert "\x1b[2J" not in text  # ...never sent to the terminal
    header = next(line for line in text.splitlines() if "STATUS" in line)
    assert "metric_number_0" in header and "metric_number_11" not in header
    assert "did not fit" in text and "--format csv" in text
    wide = in_terminal(project, "list", columns=400)
    assert "metric_number_11" in wide and "did not fit" not in wide
