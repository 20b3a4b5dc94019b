"""What the dashboard costs at 10,000 experiments: its first page, and the pages after it.

    python benchmarks/bench_ui.py [--size 10000] [--repeat 11]

Real experiments are made by `yanex run`, then copied (fresh IDs and creation times) into a
store of ``--size`` by bench_browse's ``copy_store``. A real `yanex ui --port 0` is started on
it, which builds the index as any first command does (timed: start-up until the URL is
printed), and pages are fetched over HTTP as a browser fetches them: the first request, then
medians of ``--repeat`` of the table's first page, a page deep in the table, a search, a sort
by a result, one experiment, and the live refresh. Goal (issue 14): the first page in under
1 s at 10,000 experiments.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_browse import TRAIN, copy_store, git, make_templates

GOAL = 1.0


def fetch(port: int, path: str) -> tuple[float, int, int]:
    """Seconds for a whole response, its status and size."""
    start = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.request("GET", path)
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return time.perf_counter() - start, response.status, len(body)


def median(port: int, path: str, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        seconds, status, _ = fetch(port, path)
        if status != 200:
            raise SystemExit(f"GET {path}: {status}")
        samples.append(seconds)
    return statistics.median(samples)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=11)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="yanex-bench-ui-"))
    server = None
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
        make_templates(
            [sys.executable, "-m", "yanex"], project, {**env, "YANEX_HOME": str(work / "t")}, 10
        )
        templates = sorted((work / "t" / "experiments").iterdir())
        home = work / "home"
        t = time.perf_counter()
        ids = copy_store(templates, home / "experiments", args.size, "metadata.json")
        print(f"{args.size:,} experiments copied in {time.perf_counter() - t:.0f} s")

        started = time.perf_counter()
        server = subprocess.Popen(
            [sys.executable, "-m", "yanex", "ui", "--port", "0", "--no-token"],
            cwd=project,
            env={**env, "YANEX_HOME": str(home)},
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert server.stdout is not None
        line = server.stdout.readline()
        start_up = time.perf_counter() - started
        found = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        if not found:
            raise SystemExit(f"yanex ui did not start: {line!r}")
        port = int(found.group(1))
        first, status, size = fetch(port, "/")
        assert status == 200, status
        rows = [
            ("start-up, building the index (until the URL is printed)", start_up, None),
            (f"the first page, first request ({size // 1024} KiB)", first, GOAL),
            ("the first page, warm", median(port, "/", args.repeat), GOAL),
            ("page 100 of 200 (50 a page)", median(port, "/?page=100", args.repeat), None),
            ("a search (q=lr)", median(port, "/?q=lr", args.repeat), None),
            ("sorted by a result", median(port, "/?sort=results.loss", args.repeat), None),
            ("the live refresh of the table", median(port, "/rows", args.repeat), None),
            ("one experiment", median(port, f"/e/{ids[len(ids) // 2]}", args.repeat), None),
            ("its curves (JSON)", median(port, f"/api/curves?id={ids[0]}", args.repeat), None),
        ]
        print(f"yanex ui on {args.size:,} experiments (medians of {args.repeat}):")
        for name, seconds, goal in rows:
            verdict = ""
            if goal is not None:
                verdict = f"  (goal < {goal} s: {'met' if seconds < goal else 'not met'})"
            print(f"  {name:58s} {seconds * 1000:8.1f} ms{verdict}")
    finally:
        if server is not None and server.poll() is None:
            server.send_signal(2)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
