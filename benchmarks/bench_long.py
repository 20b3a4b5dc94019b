"""What a long run costs its readers: `yanex show` and the dashboard's experiment page on a
results.jsonl of 1,000,000 steps (about 120 MB).

    python benchmarks/bench_long.py [--steps 1000000] [--repeat 5]

A real `yanex run` logs ``--steps`` steps with ``yanex.log_results`` (two results, one of
them nested), as a long training run would; its launcher keeps the summary of the growing
file beside it (``.results-summary.json``). Timed as whole processes: `yanex show ID` the
first time (the index reads what the summary does not cover), then the first time again on
the same file without the summary (a file yanex's launcher did not see grow: written by
0.6, or copied in), then warm (medians of ``--repeat``), with the peak memory of each
process; then a real `yanex ui` serving the experiment's page and its curves (JSON), with
the server's peak memory. Goal (issue 20): `show` and the dashboard's experiment page under
2 s and 200 MB.

Figures are taken on a quiet machine (`uptime` load under 1); ``--steps 20000 --repeat 1``
only checks that every case runs.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_browse import git, run
from bench_ui import fetch

SCRIPT = """
import os, yanex
steps = int(os.environ["BENCH_STEPS"])
for step in range(steps):
    yanex.log_results({"loss": 1.0 / (step + 1), "val": {"f1": step / steps}}, step=step)
"""
SECONDS, MIB = 2.0, 200  # the goal


def server_peak_kib(pid: int) -> int:
    """The peak resident memory of a running process (VmHWM), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def verdict(seconds: float, kib: int) -> str:
    ok = seconds < SECONDS and kib < MIB * 1024
    return f"(goal < {SECONDS:.0f} s and {MIB} MB: {'met' if ok else 'not met'})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="yanex-bench-long-"))
    project, home = work / "project", work / "home"
    project.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env |= {"YANEX_HOME": str(home), "HOME": str(work), "GIT_CONFIG_GLOBAL": os.devnull}
    git(project, "init", "-q")
    (project / "long.py").write_text(SCRIPT)
    git(project, "add", ".")
    git(project, "commit", "-q", "-m", "long")
    yanex = [sys.executable, "-m", "yanex"]
    ran, _ = run([*yanex, "run", "long.py"], project, env | {"BENCH_STEPS": str(args.steps)})
    (folder,) = (home / "experiments").iterdir()
    results = folder / "results.jsonl"
    size = results.stat().st_size / 2**20
    print(f"results.jsonl of {args.steps:,} steps: {size:.0f} MiB, logged in {ran:.1f} s "
          f"({ran / args.steps * 1e6:.1f} us a step); load {os.getloadavg()[0]:.2f}")  # fmt: skip
    show = [*yanex, "show", folder.name]
    first, first_kib = run(show, project, env)
    print(f"  yanex show, first (summary kept)    {first:6.2f} s {first_kib / 1024:6.0f} MB "
          f"{verdict(first, first_kib)}")  # fmt: skip
    kept = folder / ".results-summary.json"
    if kept.exists():
        kept.unlink()
        for index in home.glob("index-v*"):  # as a new machine meets the store
            index.unlink()
        whole, whole_kib = run(show, project, env)
        print(f"  yanex show, first (no summary)      {whole:6.2f} s {whole_kib / 1024:6.0f} MB "
              f"(the file read whole)")  # fmt: skip
    samples = [run(show, project, env) for _ in range(args.repeat)]
    warm = statistics.median(s[0] for s in samples)
    warm_kib = max(s[1] for s in samples)
    print(f"  yanex show, warm (median)           {warm:6.2f} s {warm_kib / 1024:6.0f} MB "
          f"{verdict(warm, warm_kib)}")  # fmt: skip
    server = subprocess.Popen(
        [*yanex, "ui", "--port", "0", "--no-token"],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert server.stdout is not None
        found = re.search(r"http://127\.0\.0\.1:(\d+)/", server.stdout.readline())
        if not found:
            raise SystemExit("yanex ui did not start")
        port = int(found.group(1))
        for name, path in (("its page", f"/e/{folder.name}"),
                           ("its curves (JSON)", f"/api/curves?id={folder.name}")):  # fmt: skip
            times = []
            for _ in range(args.repeat):
                seconds, status, _ = fetch(port, path)
                if status != 200:
                    raise SystemExit(f"GET {path}: {status}")
                times.append(seconds)
            kib = server_peak_kib(server.pid)
            print(f"  dashboard, {name:24s} {statistics.median(times):6.2f} s {kib / 1024:6.0f} MB"
                  f" (server's peak) {verdict(statistics.median(times), kib)}")  # fmt: skip
    finally:
        server.send_signal(2)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        import shutil

        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
