"""The index is a cache of the folders: rebuilt when missing, corrupt or stale, never hiding or
losing an experiment, correct while runs write, and kept off network filesystems."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import Project, metadata

from yanex import index, index_location

JOB = """
import sys, time, yanex
for step in range(int(yanex.get_param("steps", 3))):
    yanex.log_results({"loss": 1.0 / (step + 1)})
    time.sleep(float(yanex.get_param("pause", 0)))
print("done")
"""


def setup(project: Project, runs: int = 3) -> list[str]:
    project.write("job.py", JOB)
    project.commit()
    for i in range(runs):
        assert project.yanex("run", "job.py", "-n", f"run{i}").returncode == 0
    return listed(project)


def listed(project: Project, *args: str) -> list[str]:
    r = project.yanex("list", "--all", "--format", "ids", *args)
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


def index_file(project: Project) -> Path:
    return project.home / f"index-v{index.SCHEMA_VERSION}.sqlite3"


@pytest.mark.slow
def test_a_missing_index_is_rebuilt_with_one_line(project: Project) -> None:
    ids = setup(project)
    index_file(project).unlink()
    r = project.yanex("list", "--format", "ids")
    assert r.stdout.split() == ids
    assert r.stderr.count("\n") == 1 and "indexing 3 experiments (there was none)" in r.stderr
    assert project.yanex("list").stderr == ""  # once rebuilt, nothing more to say


@pytest.mark.slow
def test_a_corrupt_index_is_rebuilt_with_one_line(project: Project) -> None:
    ids = setup(project)
    index_file(project).write_bytes(b"this is not a database" * 100)
    r = project.yanex("list", "--format", "ids")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ids
    assert "indexing 3 experiments (it was unreadable" in r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


@pytest.mark.slow
def test_an_index_of_another_schema_is_rebuilt(project: Project) -> None:
    ids = setup(project)
    with sqlite3.connect(index_file(project)) as conn:
        conn.execute("PRAGMA user_version = 99")
    r = project.yanex("list", "--format", "ids")
    assert r.stdout.split() == ids and f"it has schema 99, not {index.SCHEMA_VERSION}" in r.stderr


def test_a_folder_the_build_cannot_take_leaves_the_others_of_its_batch_whole(
    project: Project,
) -> None:
    """Results holding text that is not Unicode (a lone surrogate) skip that folder, named,
    once; the folders built beside it are not left half-written (every later command then
    said they were in both experiments/ and archived/)."""
    ids = setup(project, runs=4)
    bad = sorted(ids)[-1]
    with open(project.home / "experiments" / bad / "results.jsonl", "a") as f:
        f.write('{"step": 9, "results": {"note": "\\ud800"}}\n')
    index_file(project).unlink()
    first = project.yanex("list", "--all", "--format", "ids")
    assert first.returncode == 0 and sorted(first.stdout.split()) == sorted(set(ids) - {bad})
    assert bad in first.stderr and "not valid Unicode" in first.stderr, first.stderr
    for _ in range(2):
        again = project.yanex("list", "--all", "--format", "ids")
        assert "in both" not in again.stderr, again.stderr
        assert sorted(again.stdout.split()) == sorted(set(ids) - {bad})


@pytest.mark.parametrize("wait", ["inf", "nan", "-3", "0", "soon", "1e300"])
def test_any_index_wait_setting_is_taken_or_left(project: Project, wait: str) -> None:
    """YANEX_INDEX_WAIT that is not a finite number of seconds is the default (10 s), one
    under 0.5 is 0.5: never a traceback."""
    ids = setup(project)
    r = project.yanex("list", "--format", "ids", env=project.env(YANEX_INDEX_WAIT=wait))
    assert r.returncode == 0 and r.stdout.split() == ids, r.stderr


def test_an_older_yanexs_index_files_are_removed_when_ours_is_built(project: Project) -> None:
    """After an upgrade the older schema's index (over 100 MB at 100,000 experiments) is not
    left beside the new one; a newer yanex's, its lock (an old process may hold it), a
    backup and other files are kept."""
    ids = setup(project)
    index_file(project).unlink()
    old = f"index-v{index.SCHEMA_VERSION - 1}.sqlite3"
    older = [old, f"{old}-wal", f"{old}-journal"]
    kept = [f"index-v{index.SCHEMA_VERSION + 1}.sqlite3", "index-notes.txt", f"{old}.bak",
            f"{old}.lock", f"index-v0{index.SCHEMA_VERSION - 1}.sqlite3"]  # fmt: skip
    for name in older + kept:
        (project.home / name).write_bytes(b"x" * 1000)
    r = project.yanex("list", "--format", "ids")
    assert r.returncode == 0 and r.stdout.split() == ids, r.stderr
    left = {path.name for path in project.home.iterdir()}
    assert not left & set(older) and set(kept) <= left and index_file(project).name in left


@pytest.mark.slow
def test_folders_copied_in_removed_or_edited_by_hand_are_seen(
    project: Project, tmp_path: Path
) -> None:
    ids = setup(project)
    root = project.home / "experiments"
    # Copied in from another machine (a store of its own, made by real runs).
    elsewhere = Project(project.path, tmp_path / "other-home")
    for i in range(2):
        assert elsewhere.yanex("run", "job.py", "-n", f"remote{i}").returncode == 0
    for folder in elsewhere.experiments():
        shutil.copytree(folder, root / folder.name)
    now = listed(project)
    assert len(now) == 5 and set(ids) < set(now)
    # Removed by hand.
    shutil.rmtree(root / ids[0])
    assert ids[0] not in listed(project)
    # Edited by hand, in place (the same inode, as an editor writing over the file does).
    target = root / ids[1] / "metadata.json"
    meta = json.loads(target.read_text())
    meta["name"] = "renamed-by-hand"
    with open(target, "r+") as f:
        f.write(json.dumps(meta))
        f.truncate()
    assert listed(project, "--name", "renamed-by-hand") == [ids[1]]


@pytest.mark.slow
def test_reindex_rebuilds_everything(project: Project) -> None:
    ids = setup(project)
    r = project.yanex("reindex")
    assert r.returncode == 0 and "indexed 3 experiments" in r.stderr
    assert listed(project) == ids


@pytest.mark.slow
def test_list_while_runs_and_a_staged_batch_write(project: Project) -> None:
    """Readers never fail and never lose an experiment while launchers write the store."""
    project.write("job.py", JOB)
    project.commit()
    staged = project.yanex("stage", "job.py", "-p", "steps=list(2, 3, 4, 5)", "-p", "pause=0.05")
    assert staged.returncode == 0, staged.stderr
    runners = [project.popen("run", "--staged", "-j", "2")]
    runners += [project.popen("run", "job.py", "-p", "pause=0.05", "-n", f"d{i}") for i in range(3)]
    try:
        for _ in range(40):
            r = project.yanex("list", "--all", "--format", "json")
            assert r.returncode == 0, r.stderr
            assert "Traceback" not in r.stderr and "skipped" not in r.stderr
            assert len(json.loads(r.stdout)) >= 4  # the staged ones are never out of sight
            if all(p.poll() is not None for p in runners):
                break
    finally:
        for p in runners:
            p.communicate(timeout=120)
    assert all(p.returncode == 0 for p in runners)
    final = json.loads(project.yanex("list", "--all", "--format", "json").stdout)
    assert len(final) == 7 and {e["status"] for e in final} == {"completed"}
    for entry in final:  # results are indexed at the end of each run
        assert entry["results"]["loss"] == pytest.approx(1.0 / entry["params"].get("steps", 3))


@pytest.mark.slow
def test_results_of_a_running_experiment_are_read_as_they_grow(project: Project) -> None:
    project.write(
        "slow.py",
        """
        import time, yanex
        for step in range(1000):
            yanex.log_results({"loss": 100 - step})
            print("logged", step, flush=True)
            time.sleep(0.2)
        """,
    )
    project.commit()
    proc = project.popen("run", "slow.py", "-n", "slow", start_new_session=True)
    try:
        assert proc.stdout is not None
        while b"logged 2" not in proc.stdout.readline():
            pass
        first = json.loads(project.yanex("list", "--format", "json").stdout)[0]
        assert first["status"] == "running" and first["results"]["loss"] <= 98
        while b"logged 6" not in proc.stdout.readline():
            pass
        later = json.loads(project.yanex("list", "--format", "json").stdout)[0]
        assert later["results"]["loss"] <= 94
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)


def test_every_reading_command_records_a_dead_launcher(project: Project) -> None:
    project.write(
        "sleepy.py",
        "import os, time\nprint('ready', flush=True)\ntime.sleep(60)\n",
    )
    project.commit()
    launcher = project.popen("run", "sleepy.py", "-n", "orphaned", start_new_session=True)
    assert launcher.stdout is not None and launcher.stdout.readline() == b"ready\n"
    launcher.send_signal(signal.SIGKILL)
    launcher.wait(timeout=30)
    folder = project.only_experiment()
    r = project.yanex("show", folder.name)
    assert "recorded as failed" in r.stderr
    assert "status       failed" in r.stdout and "launcher died" in r.stdout
    assert metadata(folder)["status"] == "failed"


def test_the_index_is_kept_off_network_filesystems(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    mounts = [("/", "ext4"), (str(tmp_path), "nfs4")]
    assert index_location.is_network_filesystem(store, mounts)
    name = index.FILE_NAME
    where = index_location.location(name, store, mounts)
    assert not str(where).startswith(str(tmp_path)) and where.name.endswith(name)
    assert index_location.location(name, store, [("/", "ext4")]) == store / name
    other = index_location.location(name, tmp_path / "other", mounts)
    assert other != where  # keyed by the store's path
    lustre = [("/", "ext4"), (str(tmp_path), "lustre")]
    assert index_location.location(name, store, lustre) == where


def test_the_mount_table_is_read_from_this_machine(tmp_path: Path) -> None:
    kind = index_location.filesystem_type(tmp_path)
    assert kind is not None and kind == index_location.filesystem_type(tmp_path / "not-there-yet")


def test_yanex_index_names_the_file(project: Project, tmp_path: Path) -> None:
    setup(project, runs=1)
    elsewhere = tmp_path / "cache" / "my-index.sqlite3"
    r = project.yanex("list", YANEX_INDEX=str(elsewhere))
    assert r.returncode == 0 and "run0" in r.stdout
    assert elsewhere.exists()


def test_an_unwritable_index_is_a_clear_error(project: Project, tmp_path: Path) -> None:
    setup(project, runs=1)
    blocked = tmp_path / "ro"
    blocked.mkdir()
    (blocked / "f").write_text("a file where the index folder should be")
    r = project.yanex("list", YANEX_INDEX=str(blocked / "f" / "index.sqlite3"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "index" in r.stderr and "YANEX_INDEX" in r.stderr


@pytest.mark.slow
def test_two_readers_building_the_index_at_once(project: Project) -> None:
    ids = setup(project, runs=2)
    index_file(project).unlink()
    procs = [project.popen("list", "--format", "ids") for _ in range(4)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outs]
    assert all(sorted(o[0].decode().split()) == sorted(ids) for o in outs)


@pytest.mark.slow
def test_a_folder_being_created_is_indexed_once_it_is_whole(project: Project) -> None:
    ids = setup(project, runs=1)
    root = project.home / "experiments"
    # A folder whose metadata is not written yet (a launcher between mkdir and its writes).
    source = root / ids[0]
    half = root / "0123abcd"
    half.mkdir(mode=0o700)
    assert listed(project) == ids
    time.sleep(0.01)
    for item in source.iterdir():
        if item.name != "metadata.json" and item.is_file():
            shutil.copy2(item, half / item.name)
    meta = metadata(source) | {"id": "0123abcd", "name": "late"}
    tmp = half / ".metadata.json.tmp"
    tmp.write_text(json.dumps(meta))
    os.replace(tmp, half / "metadata.json")
    assert "0123abcd" in listed(project)


def test_python_reader_on_a_store_without_the_extra(project: Project) -> None:
    """`yanex.results` DataFrames name the missing extra when pandas is absent."""
    setup(project, runs=1)
    code = (
        "import sys; sys.modules['pandas'] = None\n"
        "import yanex, yanex.results as yr\n"
        "try:\n    yr.to_dataframe(yr.find())\n"
        "except yanex.YanexError as e:\n    print(e.format_message())\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=project.path, env=project.env(),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert 'pip install "yanex[analysis]"' in r.stdout, r.stderr


@pytest.mark.slow
def test_a_grid_a_killed_staging_committed_is_listed_whole_by_the_next_reader(
    project: Project,
) -> None:
    """A staging SIGKILLed after its commit, while it showed its members one by one: the next
    command finishes showing them before it looks at the store, never listing part of it."""
    from yanex import staging

    setup(project, runs=0)
    r = project.yanex("stage", "job.py", "-p", "steps=range(4)")
    grid = r.stdout.split()
    assert len(grid) == 4, r.stderr
    past = time.time() - 60  # staged a while ago (no folder changed within a clock tick)
    os.utime(project.home / "experiments", (past, past))
    assert sorted(listed(project, "--status", "staged")) == sorted(grid)
    # As the killed staging left it: committed, two members shown, two not yet.
    journals = project.home / staging.JOURNALS
    journals.mkdir(exist_ok=True)
    owner = json.dumps({"pid": 999999, "hostname": os.uname().nodename, "started": 1.0})
    (journals / "0123456789abcdef.committed").write_text(owner + "\n" + "\n".join(grid) + "\n")
    for experiment_id in grid[2:]:
        folder = project.home / "experiments" / experiment_id
        os.rename(folder / "metadata.json", folder / staging.PENDING)
    assert sorted(listed(project, "--status", "staged")) == sorted(grid)
    assert not any(journals.glob("*.committed"))


HOLD_INDEX = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA locking_mode = EXCLUSIVE")  # as the last connection's checkpoint holds it
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("COMMIT")
conn.close()
"""


@pytest.mark.slow
def test_a_reader_waits_for_an_index_locked_a_moment(project: Project) -> None:
    """Every statement waits for a lock held a moment (the last connection's checkpoint as it
    closes, a first connection's recovery, a slow disk under load), not only a write: two
    first commands on a fresh store both work."""
    ids = setup(project, runs=1)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_INDEX, str(index_file(project)), "2"],
        stdout=subprocess.PIPE,
    )
    assert holder.stdout is not None and holder.stdout.readline() == b"locked\n"
    started = time.monotonic()
    assert listed(project) == ids
    assert time.monotonic() - started > 1  # it waited
    holder.wait(timeout=30)


@pytest.mark.slow
def test_first_commands_at_once_on_a_fresh_store_all_work(project: Project) -> None:
    project.write("job.py", JOB)
    project.commit()
    r = project.yanex("stage", "job.py", "-p", "steps=range(6)")
    assert r.returncode == 0, r.stderr
    runners = [project.popen("run", "--staged", "-j", "2") for _ in range(3)]
    lister = project.popen("list", "--all")
    for proc in [*runners, lister]:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
        assert b"locked" not in err and b"Traceback" not in err
    assert all(metadata(f)["status"] == "completed" for f in project.experiments())


def _running(home: Path) -> Path:
    """A run in progress, made by hand: its launcher is this very process (never reaped)."""
    from yanex.identity import ProcessId

    folder = home / "experiments" / "0123abcd"
    folder.mkdir(parents=True)
    meta = {
        "id": "0123abcd",
        "status": "running",
        "script": "train.py",
        "created_at": "2026-01-01T00:00:00+00:00",
        "launcher": ProcessId.current().to_metadata(),
    }
    (folder / "metadata.json").write_text(json.dumps(meta))
    return folder


def _lines(values: list[dict]) -> str:
    return "".join(
        json.dumps({"step": i, "timestamp": "t", "results": v}) + "\n" for i, v in enumerate(values)
    )


def _indexed(home: Path) -> tuple[dict, str, int]:
    """What the index says of the run (brought up to date as `yanex list` does)."""
    idx = index.Index(home, echo=lambda line: None)
    try:
        idx.sync()
        last, series, steps = idx.conn.execute(
            "SELECT last, series, steps FROM experiments WHERE id = '0123abcd'"
        ).fetchone()
    finally:
        idx.close()
    return json.loads(last), series, steps


@pytest.mark.parametrize("how", ["longer", "the same size", "longer, a big file"])
def test_a_running_results_file_rewritten_in_place_is_read_again_from_its_start(
    tmp_path: Path, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A script that reopens results.jsonl with "w" and logs more: the index reads the new
    file from its start, not on from where it had read the old one (whose lines are gone)."""
    from yanex import results_file

    home = tmp_path / "home"
    folder = _running(home)
    results = folder / "results.jsonl"
    pad = "x" * 200 if "big" in how else ""  # past the bytes checked at both ends
    before = [{"loss": 1.0 * i, "acc": 0.5, "pad": pad} for i in range(1000 if pad else 3)]
    results.write_text(_lines(before))
    assert _indexed(home)[0]["loss"] == before[-1]["loss"]
    if pad:
        assert results.stat().st_size > 2 * results_file.CHECK_BYTES
    after = [{"loss": -1.0 * i, "acc": 0.9, "pad": pad} for i in range(len(before))]
    after[-1]["pad"] = pad + "y" * (1 if how == "the same size" else 5000)
    text = _lines(after)
    if how == "the same size":
        text = text[: results.stat().st_size]
        text = text[: text.rfind("\n") + 1]
        text += "#" * (results.stat().st_size - len(text) - 1) + "\n"  # a bad line, skipped
        assert len(text) == results.stat().st_size
    with open(results, "w") as f:  # the same inode, truncated, then written past the offset
        f.write(text)
    oracle = results_file.Summary()
    oracle.add(results_file.read_results(folder))
    last, series, steps = _indexed(home)
    assert last == oracle.last and json.loads(series) == oracle.stats and steps == oracle.lines
    # Growing on, as runs do: only what was appended is parsed.
    with open(results, "a") as f:
        f.write(_lines([{"loss": 42.0}]))
    parsed: list[int] = []
    real = results_file.parse_results
    monkeypatch.setattr(results_file, "parse_results", lambda b: parsed.append(len(b)) or real(b))
    assert _indexed(home)[0]["loss"] == 42.0
    assert sum(parsed) == len(_lines([{"loss": 42.0}]))
