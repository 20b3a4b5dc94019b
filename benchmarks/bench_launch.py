"""What starting a run costs (issue 13's table), as ratios measured in one run: each case
against bare ``python t.py`` (t.py imports yanex, reads a parameter, logs one result), with
yanex 0.6.1 beside it where it can run.

    python benchmarks/bench_launch.py [--old PYTHON] [--repeat N] [--stdout-mib N]

Whole processes, every command run ``--repeat`` times (default 11) after a warm-up,
interleaved so that load on the machine hits all of them alike; medians are reported.
Goals: ``yanex run t.py`` <= +60 ms; with a ``./config.yaml`` <= +100 ms; with the config and
two ``--param`` <= +120 ms; a conf/ tree with a group override <= 0.9x a bare ``@hydra.main``
app's own run of the same tree; staging a 1,000-member grid <= 1 s; a script writing 200 MiB
to stdout <= 1.5x the same script run bare (its stdout to a file, as yanex keeps it).
Measure on a quiet machine (``uptime`` load under 1): under load every figure grows.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_run import env_for, git  # the same helpers, beside this script

# The script every launch case runs: what a tracked script does first.
T_PY = """
import yanex
log = getattr(yanex, "log_results", None) or yanex.log_metrics
log({"x": yanex.get_param("x", 1)})
"""
CONFIG = "x: 1\nmodel:\n  lr: 0.1\n  layers: [64, 64]\ntraining:\n  epochs: 10\n"
TREE = {
    "conf/config.yaml": "defaults:\n  - model: small\n  - _self_\nx: 1\nlr: 0.1\n",
    "conf/model/small.yaml": "width: 8\n",
    "conf/model/large.yaml": "width: 64\n",
}
# A bare @hydra.main app of the same tree: what a Hydra user runs without yanex.
APP = """
import hydra


@hydra.main(version_base=None, config_path="conf", config_name="config")
def main(cfg):
    print(cfg.model.width)


main()
"""
WRITER = """
import sys
block = b"x" * 1023 + b"\\n"
out = sys.stdout.buffer
for _ in range(int(sys.argv[1]) * 1024):
    out.write(block)
"""
GOALS_MS = {"run": 60.0, "run+config": 100.0, "run+config+params": 120.0}


def make_project(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True)
    git(root, "init", "-q")
    for name, text in {"t.py": T_PY, **files}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "bench")
    return root


def timed(cmd: list[str], cwd: Path, env: dict[str, str], stdout: Path | None = None) -> float:
    env = env_for(cmd, env)
    with open(stdout or os.devnull, "wb") as out:
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.PIPE)
        elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stderr.decode(errors='replace')}")
    return elapsed


def medians(
    cases: dict[str, tuple[list[str], Path, Path | None]],
    env: dict[str, str],
    repeat: int,
    between: dict[str, object] | None = None,
) -> dict[str, float]:
    """Each case run once to warm up, then ``repeat`` times interleaved; medians in ms."""
    samples: dict[str, list[float]] = {key: [] for key in cases}
    for cmd, cwd, out in cases.values():
        timed(cmd, cwd, env, out)
    for _ in range(repeat):
        for key, (cmd, cwd, out) in cases.items():
            samples[key].append(timed(cmd, cwd, env, out))
            if between and key in between:
                between[key]()  # type: ignore[operator]
    return {key: statistics.median(values) * 1000 for key, values in samples.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old", help="python with yanex 0.6.1 installed")
    ap.add_argument("--repeat", type=int, default=11)
    ap.add_argument("--stdout-mib", type=int, default=200)
    args = ap.parse_args()
    load = os.getloadavg()[0]
    quiet = "" if load < 1 else "  (not quiet: figures run high)"
    print(f"load average now: {load:.2f}{quiet}")

    work = Path(tempfile.mkdtemp(prefix="yanex-bench-launch-"))
    try:
        plain = make_project(work / "plain", {"writer.py": WRITER})
        config = make_project(work / "config", {"config.yaml": CONFIG})
        tree = make_project(work / "tree", {**TREE, "app.py": APP})
        # As users run it: with bytecode caches (this machine's PYTHONDONTWRITEBYTECODE would
        # make every process compile every module it imports).
        env = {k: v for k, v in os.environ.items() if not k.startswith("YANEX_")}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env.update(YANEX_HOME=str(work / "home"), YANEX_EXPERIMENTS_DIR=str(work / "old-home"))
        ours = sys.executable
        old = str(Path(args.old).absolute()) if args.old else None
        params = ["--param", "x=2", "--param", "model.lr=0.01"]

        pythons = {"ours": ours, "0.6.1": old} if old else {"ours": ours}
        rows = {
            "bare": "python t.py",
            "run": "yanex run t.py",
            "run+config": "  with ./config.yaml",
            "run+config+params": "  with config.yaml + 2 --param",
        }
        cases: dict[str, tuple[list[str], Path, Path | None]] = {}
        for label, py in pythons.items():
            cases[f"{label} bare"] = ([py, "t.py"], plain, None)
            cases[f"{label} run"] = ([py, "-m", "yanex", "run", "t.py"], plain, None)
            cases[f"{label} run+config"] = ([py, "-m", "yanex", "run", "t.py"], config, None)
            run_params = [py, "-m", "yanex", "run", "t.py", *params]
            cases[f"{label} run+config+params"] = (run_params, config, None)
        cases["app"] = ([ours, "app.py", "model=large", "hydra.run.dir=out"], tree, None)
        cases["tree"] = ([ours, "-m", "yanex", "run", "t.py", "model=large"], tree, None)
        med = medians(cases, env, args.repeat)

        print(f"\nMedian of {args.repeat} runs, ms, and the overhead over bare python t.py:")
        print(f"  {'':34s}" + "".join(f"{label:>18s}" for label in pythons) + "   goal")
        for kind, name in rows.items():
            line = f"  {name:34s}"
            for label in pythons:
                total = med[f"{label} {kind}"]
                over = total - med[f"{label} bare"]
                line += f"{total:9.1f}" + (f" {over:+7.1f}" if kind != "bare" else " " * 8)
            if kind in GOALS_MS:
                over = med[f"ours {kind}"] - med["ours bare"]
                verdict = "met" if over <= GOALS_MS[kind] else "not met"
                line += f"   <= +{GOALS_MS[kind]:.0f} ({verdict})"
            print(line)
        ratio = med["tree"] / med["app"]
        print(
            f"\n  conf/ tree, group override: yanex run t.py model=large {med['tree']:.1f} ms, "
            f"a bare @hydra.main app {med['app']:.1f} ms: {ratio:.2f}x "
            f"(goal <= 0.9x: {'met' if ratio <= 0.9 else 'not met'})"
        )

        stage_bench(ours, old, tree.parent / "stage", env, max(3, args.repeat // 2))
        stdout_bench(ours, plain, env, args.stdout_mib, max(3, args.repeat // 2), work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def stage_bench(ours: str, old: str | None, root: Path, env: dict[str, str], repeat: int) -> None:
    """``--stage`` of a 1,000-member grid, whole process; the store emptied between runs."""
    project = make_project(root, {"config.yaml": CONFIG})
    home = Path(env["YANEX_HOME"])
    cases = {"ours": ([ours, "-m", "yanex", "run", "t.py", "-p", "x=range(1000)", "--stage"],)}
    if old:
        cases["0.6.1"] = ([old, "-m", "yanex", "run", "t.py", "-p", "x=range(1000)", "--stage"],)

    def empty() -> None:
        for folder in (home, Path(env["YANEX_EXPERIMENTS_DIR"])):
            shutil.rmtree(folder, ignore_errors=True)

    print(f"\nStaging a 1,000-member grid (median of {repeat}):")
    for label, (cmd,) in cases.items():
        times = []
        runs = repeat if label == "ours" else min(repeat, 2)  # 0.6.1 takes half a minute
        for _ in range(runs + 1):
            empty()
            try:
                times.append(timed(cmd, project, env))
            except SystemExit as exc:
                print(f"  {label}: could not stage ({str(exc).splitlines()[-1][:100]})")
                break
        if len(times) == runs + 1:
            seconds = statistics.median(times[1:])
            verdict = "met" if seconds <= 1 else "not met"
            goal = f"  (goal <= 1 s: {verdict})" if label == "ours" else ""
            print(f"  {label:8s}{seconds:8.2f} s{goal}")
    empty()


def stdout_bench(
    ours: str, project: Path, env: dict[str, str], mib: int, repeat: int, work: Path
) -> None:
    """A script writing ``mib`` MiB to stdout: bare (stdout to a file, and to /dev/null) and
    under yanex (which keeps it in stdout.txt and passes it on, here to /dev/null)."""
    home = Path(env["YANEX_HOME"])
    out = work / "bare-stdout.txt"
    cases = {
        "bare, stdout to a file": ([ours, "writer.py", str(mib)], project, out),
        "bare, stdout to /dev/null": ([ours, "writer.py", str(mib)], project, None),
        "yanex run (to stdout.txt and /dev/null)": (
            [ours, "-m", "yanex", "run", "writer.py", "--", str(mib)],
            project,
            None,
        ),
    }

    def drop() -> None:  # each run's 200 MiB, gone before the next
        shutil.rmtree(home / "experiments", ignore_errors=True)
        out.unlink(missing_ok=True)

    med = medians(cases, env, repeat, between={key: drop for key in cases})
    print(f"\nA script writing {mib} MiB to stdout (median of {repeat}):")
    for name, ms in med.items():
        print(f"  {name:42s}{ms / 1000:8.2f} s")
    yanex_ms = med["yanex run (to stdout.txt and /dev/null)"]
    ratio = yanex_ms / med["bare, stdout to a file"]
    print(
        f"  yanex / bare to a file: {ratio:.2f}x "
        f"(goal <= 1.5x: {'met' if ratio <= 1.5 else 'not met'}); "
        f"yanex / bare to /dev/null: {yanex_ms / med['bare, stdout to /dev/null']:.2f}x"
    )


if __name__ == "__main__":
    main()
