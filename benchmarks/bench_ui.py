"""What the dashboard costs at 10,000 and 100,000 experiments: the table's pages, and the
sweep view of 1,000 runs.

    python benchmarks/bench_ui.py [--sizes 10000 100000] [--repeat 11]

Real experiments are made by `yanex run`, then copied (fresh IDs and creation times) into a
store of each size by bench_browse's ``copy_store`` (its first 1,000 copies are the members of
one sweep, ``bench000``, differing in lr, seed, opt.name and flag). A real `yanex ui --port 0`
is started on it, which builds the index as any first command does (timed: start-up until the
URL is printed), and pages are fetched over HTTP as a browser fetches them: the first
request, then medians of ``--repeat`` of the table's first page, a page deep in the table, a
search, a sort by a result and by a parameter, chosen columns, a filter on a column, the
sweep's members as a table (its swept parameters found), the live refresh, one experiment,
its curves, and the sweep view of the 1,000 (its data, and, when Playwright and Chromium are
installed, the page drawn in a real browser: from the request until its parallel
coordinates, scatter and table are drawn). Goals (issues 14, 22): the table's first page in
under 1 s at 10,000 and at 100,000 experiments; the sweep view over 1,000 runs in under 1 s.

Figures are taken on a quiet machine (`uptime` load under 1); a smoke run at small sizes
(`--sizes 1200 --repeat 1`) only checks that every case runs.
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

GOAL = 1.0  # seconds: the table's first page, and the sweep view of 1,000 runs
SWEEP = "/sweep?sweep=bench000&scope=all&result=results.loss"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


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


def drawn_in_browser(port: int, repeat: int) -> dict[str, float] | None:
    """Median seconds from asking for the sweep view until it is drawn in headless Chromium,
    and of each part of its drawing (the page's performance entries); None without
    Playwright or Chromium."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    if CHROMIUM is None:
        return None
    samples: dict[str, list[float]] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        tab = browser.new_page(viewport={"width": 1280, "height": 900})
        for round_ in range(repeat + 1):  # the first loads plotly.js into the cache
            start = time.perf_counter()
            tab.goto(f"http://127.0.0.1:{port}{SWEEP}")
            tab.wait_for_selector("#sweep[data-drawn]", state="attached", timeout=120_000)
            whole = time.perf_counter() - start
            lines = tab.eval_on_selector("#sweep-parcoords", "p => Number(p.dataset.lines)")
            if lines != 1000:
                raise SystemExit(f"the sweep view drew {lines} lines, not 1,000")
            parts = tab.evaluate(
                "() => performance.getEntriesByType('measure')"
                ".filter(m => m.name.startsWith('yanex sweep: '))"
                ".map(m => [m.name.slice(13), m.duration / 1000])"
            )
            if round_:
                samples.setdefault("whole", []).append(whole)
                for name, seconds in parts:
                    samples.setdefault(name, []).append(seconds)
        browser.close()
    return {name: statistics.median(values) for name, values in samples.items()}


def measure(size: int, repeat: int, templates: list[Path], work: Path, project: Path,
            env: dict[str, str]) -> None:  # fmt: skip
    home = work / f"home-{size}"
    t = time.perf_counter()
    ids = copy_store(templates, home / "experiments", size, "metadata.json")
    print(f"\n{size:,} experiments copied in {time.perf_counter() - t:.0f} s")
    server = None
    try:
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
        first, status, size_bytes = fetch(port, "/?scope=all")
        assert status == 200, status
        pages = max(1, size // 50)
        rows = [
            ("start-up, building the index (until the URL is printed)", start_up, None),
            (f"the first page, first request ({size_bytes // 1024} KiB)", first, GOAL),
            ("the first page, warm", median(port, "/?scope=all", repeat), GOAL),
            (f"page {pages // 2:,} of {pages:,} (50 a page)",
             median(port, f"/?scope=all&page={pages // 2}", repeat), None),
            ("a search (q=lr)", median(port, "/?scope=all&q=lr", repeat), None),
            ("sorted by a result", median(port, "/?scope=all&sort=results.loss", repeat), None),
            ("sorted by a parameter", median(port, "/?scope=all&sort=-params.seed", repeat), None),
            ("chosen columns",
             median(port, "/?scope=all&col=name,params.lr,commit,error,results.val.f1", repeat),
             None),
            ("the where box (params.lr<=0.05, a nested result)",
             median(port, "/?scope=all&where=params.lr%3C%3D0.05%0Aresults.val.f1%3E0.3", repeat),
             0.5),
            ("a column's filter (loss < 0.5)",
             median(port, "/?scope=all&f.results.loss=%3C0.5", repeat), None),
            ("the sweep's 1,000 members as a table (swept parameters)",
             median(port, "/?scope=all&sweep=bench000", repeat), None),
            ("the live refresh of the table", median(port, "/rows?scope=all", repeat), None),
            ("one experiment", median(port, f"/e/{ids[len(ids) // 2]}", repeat), None),
            ("its curves (JSON)", median(port, f"/api/curves?id={ids[0]}", repeat), None),
            ("the sweep view of 1,000 runs: its page", median(port, SWEEP, repeat), None),
            ("the sweep view of 1,000 runs: its data (JSON)",
             median(port, "/api/sweep?sweep=bench000&scope=all", repeat), None),
        ]  # fmt: skip
        drawn = drawn_in_browser(port, min(repeat, 5))
        if drawn is not None:
            rows.append(("the sweep view of 1,000 runs, drawn in Chromium", drawn["whole"], GOAL))
            # Its parts, as the page measures them: the data, the parallel coordinates (SVG:
            # no GPU needed, which headless Chromium would emulate in software), the
            # scatter, the table.
            rows += [(f"  of which: {name}", seconds, None)
                     for name, seconds in drawn.items() if name != "whole"]  # fmt: skip
        else:
            print("  (no Playwright or Chromium: the sweep view is not drawn in a browser)")
        print(f"yanex ui on {size:,} experiments (medians of {repeat}):")
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
        shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--repeat", type=int, default=11)
    args = ap.parse_args()
    if min(args.sizes) < 1000:
        raise SystemExit("--sizes: at least 1,000 (the sweep view draws the first 1,000)")
    work = Path(tempfile.mkdtemp(prefix="yanex-bench-ui-"))
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
        for size in args.sizes:
            measure(size, args.repeat, templates, work, project, env)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
