"""What finding experiments costs at scale: `yanex list/show/compare` and `yanex.results`.

    python benchmarks/bench_browse.py [--old PYTHON] [--sizes 10000 100000] [--repeat N]

Real experiments are made by `yanex run` (and by yanex 0.6.1's, with ``--old``), then copied
(with fresh IDs and creation times) into stores of each size. Each command is timed as a
whole process: once cold (the first command after the copy, which builds the index) and then
warm (medians of ``--repeat``), beside `python -c pass` in the same run. Goals (issues 9, 24):
`yanex list` <= 0.3 s at 10,000 and at 100,000 experiments (0.6.1: 1.73 s at 10,000), its
memory flat in the store's size; `show` <= 0.1 s over the CLI's start (`yanex --version`);
`compare` of 1,000 experiments <= 0.5 s; `yanex.results.find()` of 100,000 into a DataFrame
<= 2 s; every kind of filter and sort (numeric, string, bool, null, nested results and
params, combined) and `get_best` <= 0.5 s; the cold build (with its progress) <= 30 s;
`unarchive` changes its rows only (it rebuilt the whole index: 217 s at 100,000).

Figures are taken on a quiet machine (`uptime` load under 1); a smoke run at small sizes
(`--sizes 300 --repeat 1`) only checks that every case runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TRAIN = """
import yanex
lr = yanex.get_param("lr", 0.1)
for step in range(20):
    yanex.log_results(
        {"loss": 1.0 / (step + 1) + lr, "accuracy": step / 20, "val": {"f1": step / 40 + lr}}
    )
"""
GOALS = {
    "list": 0.3,
    "show over start": 0.1,
    "compare 1,000": 0.5,
    "find -> DataFrame": 2.0,
    "query": 0.5,
    "cold": 30.0,
    "unarchive": 1.0,
}
FIND = (
    "import time, yanex.results as yr; t = time.perf_counter(); "
    "df = yr.to_dataframe(yr.find(all_projects=True)); "
    "print(len(df), time.perf_counter() - t)"
)
BEST = (
    "import time, yanex.results as yr; t = time.perf_counter(); "
    "best = yr.get_best('loss', tags=['baseline'], all_projects=True); "
    "print(best.id, time.perf_counter() - t)"
)
# Every kind of condition and sort, each a whole `yanex list -A` process.
QUERIES = {
    "numeric": ["-w", "params.lr<=0.05"],
    "numeric on a result": ["-w", "results.loss<0.2"],
    "string": ["-w", "params.opt.name=='adam'"],
    "bool": ["-w", "params.flag==true"],
    "null": ["-w", "params.note==null"],
    "nested result": ["-w", "results.val.f1>0.3"],
    "combined, with a tag": ["-t", "baseline", "-w", "params.lr<=0.05", "-w", "results.loss<0.5"],
    "sort by a nested result": ["--sort", "-results.val.f1"],
    "sort by an int parameter": ["--sort", "params.seed"],
    "text search": ["--name", "run-1*"],
}


def git(cwd: Path, *args: str) -> None:
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull}
    env |= {
        f"GIT_{who}_{what}": "b@b" for who in ("AUTHOR", "COMMITTER") for what in ("NAME", "EMAIL")
    }
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, int]:
    """Seconds, and the peak memory (KiB) of the command's own process."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{err.decode(errors='replace')}")
    return elapsed, usage.ru_maxrss


def make_templates(
    yanex: list[str], project: Path, env: dict[str, str], count: int, typed: bool = True
) -> None:
    """``count`` real runs; with ``typed``, parameters of every type (int, str, bool, null,
    nested), half of them tagged."""
    for i in range(count):
        args = [*yanex, "run", "train.py", "--param", f"lr={round(0.01 * (i + 1), 4)}"]
        if typed:
            args += ["-p", f"+seed={i}", "-p", f"+opt.name={'adam' if i % 2 else 'sgd'}"]
            args += ["-p", f"+flag={'true' if i % 3 else 'false'}", "-p", "+note=null"]
            args += ["-n", f"run-{i}"] + (["-t", "baseline"] if i % 2 else [])
        run(args, project, env)


def copy_store(templates: list[Path], target: Path, size: int, meta_name: str) -> list[str]:
    """Fill ``target`` with ``size`` copies of the template folders, fresh IDs and times."""
    files = []
    for folder in templates:
        content = {}
        for path in folder.rglob("*"):
            if path.is_file() and not path.name.startswith("."):
                content[path.relative_to(folder).as_posix()] = path.read_bytes()
        files.append(content)
    target.mkdir(parents=True, exist_ok=True)
    ids = []
    base = time.time() - size
    taken: set[str] = set()
    for i in range(size):
        experiment_id = os.urandom(4).hex()
        while experiment_id in taken:  # 100,000 random 8-digit IDs do collide
            experiment_id = os.urandom(4).hex()
        taken.add(experiment_id)
        folder = target / experiment_id
        folder.mkdir()
        for name, data in files[i % len(files)].items():
            path = folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if name == meta_name:
                meta = json.loads(data)
                meta["id"] = experiment_id
                stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(base + i))
                for key in ("created_at", "started_at", "start_time", "created"):
                    if isinstance(meta.get(key), str):
                        meta[key] = stamp + meta[key][19:]
                if i < 1000:
                    meta["sweep"] = "bench000"  # the 1,000 that `compare` compares
                    meta["sweep_index"] = i
                data = json.dumps(meta).encode()
            path.write_bytes(data)
        ids.append(experiment_id)
    return ids


def median_of(cmd: list[str], cwd: Path, env: dict[str, str], repeat: int) -> tuple[float, int]:
    samples = [run(cmd, cwd, env) for _ in range(repeat)]
    return statistics.median(s[0] for s in samples), max(s[1] for s in samples)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old", help="python with yanex 0.6.1 installed")
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--old-sizes", type=int, nargs="+", default=[10_000])
    ap.add_argument("--repeat", type=int, default=11)
    args = ap.parse_args()
    ours = sys.executable
    work = Path(tempfile.mkdtemp(prefix="yanex-bench-browse-"))
    try:
        project = work / "proj"
        project.mkdir()
        git(project, "init", "-q")
        (project / "train.py").write_text(TRAIN)
        git(project, "add", "-A")
        git(project, "commit", "-q", "-m", "bench")
        # As users run it: with bytecode caches (this machine's PYTHONDONTWRITEBYTECODE would
        # make every process compile every module it imports).
        env = {k: v for k, v in os.environ.items() if not k.startswith("YANEX_")}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env_ours = {**env, "YANEX_HOME": str(work / "templates")}
        make_templates([ours, "-m", "yanex"], project, env_ours, 10)
        templates = sorted((work / "templates" / "experiments").iterdir())
        bare = median_of([ours, "-c", "pass"], project, env, args.repeat)[0]
        start = median_of([ours, "-m", "yanex", "--version"], project, env, args.repeat)[0]
        print(f"python -c pass: {bare * 1000:.0f} ms; yanex --version (the CLI's start): "
              f"{start * 1000:.0f} ms")  # fmt: skip
        rows = []
        for size in args.sizes:
            home = work / f"home-{size}"
            t = time.perf_counter()
            ids = copy_store(templates, home / "experiments", size, "metadata.json")
            print(f"\n{size:,} experiments copied in {time.perf_counter() - t:.0f} s")
            e = {**env, "YANEX_HOME": str(home)}
            y = [ours, "-m", "yanex"]
            cold, _ = run([*y, "list"], project, e)
            warm, peak = median_of([*y, "list"], project, e, args.repeat)
            queries = [
                (f"  list -A {' '.join(q)}", median_of([*y, "list", "-A", *q], project, e,
                                                       args.repeat)[0], "query")
                for q in QUERIES.values()
            ]  # fmt: skip
            best = subprocess.run([ours, "-c", BEST], cwd=project, env=e, capture_output=True)
            best_s = float(best.stdout.split()[1])
            # show and compare before the archive: for a second after a change of the store's
            # folder (its mtime too recent to trust), each command lists the folder again
            show, _ = median_of([*y, "show", ids[size // 2]], project, e, args.repeat)
            compare, _ = median_of([*y, "compare", "--sweep", "bench000"], project, e, 5)
            finds = [
                subprocess.run([ours, "-c", FIND], cwd=project, env=e, capture_output=True)
                for _ in range(3)
            ]  # (before the archive too; the median of 3)
            found = finds[0].stdout.split()[0]
            find_s = statistics.median(float(f.stdout.split()[1]) for f in finds)
            victim = ids[size // 3]
            run([*y, "archive", victim, "--yes"], project, e)
            unarchive, _ = run([*y, "unarchive", victim, "--yes"], project, e)
            table = [
                (f"list at {size:,}, cold (builds the index)", cold, "cold"),
                (f"list at {size:,}, warm", warm, "list"),
                (f"  peak memory of list at {size:,}", peak / 1024, None),
                (f"show at {size:,}, over the CLI's start", show - start, "show over start"),
                (f"compare 1,000 at {size:,}", compare, "compare 1,000"),
                (f"find -> DataFrame of {int(found):,}", float(find_s), "find -> DataFrame"),
                *queries,
                ("get_best('loss', tags=['baseline']) in Python", best_s, "query"),
                (f"unarchive one of {size:,}", unarchive, "unarchive"),
            ]
            rows += table
            for name, value, goal in table:
                unit = "MiB" if "memory" in name else "s"
                verdict = ""
                if goal:
                    met = "met" if value <= GOALS[goal] else "not met"
                    verdict = f"  (goal <= {GOALS[goal]} s: {met})"
                print(f"  {name:60s} {value:8.3f} {unit}{verdict}")
            shutil.rmtree(home)
        if args.old:
            print("\nyanex 0.6.1, on stores of its own experiments:")
            env_old = {**env, "YANEX_EXPERIMENTS_DIR": str(work / "old-templates")}
            old_yanex = [str(Path(args.old).parent / "yanex")]  # its console script
            make_templates(old_yanex, project, env_old, 10, typed=False)
            old_templates = sorted((work / "old-templates").iterdir())
            for size in args.old_sizes:
                store = work / f"old-{size}"
                copy_store(old_templates, store, size, "metadata.json")
                e = {**env, "YANEX_EXPERIMENTS_DIR": str(store)}
                old_list, _ = median_of([*old_yanex, "list"], project, e, 3)
                print(f"  list at {size:,}: {old_list:.3f} s")
                shutil.rmtree(store)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
