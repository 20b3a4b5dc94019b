"""What the one code check (yanex.code.check.CodeCheck) costs a staged batch: git commands per
member of a 1,000-member grid, counted (a `git` first on PATH logs each command), and the
in-process cost of one check of unchanged code.

    python benchmarks/bench_code_check.py [--members 1000] [--files 300]

Goal (issue 18 item 5): the staged benchmark gets no worse than +11 ms per member. The check
reads git only when the index, HEAD, refs or a file's stat data changed, so a batch of
unchanged code runs a fixed handful of git commands, not one per member. The counts are exact
on any machine; the time per check is a wall-clock figure: take it on a quiet machine
(`uptime` load < 1).
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TRIVIAL = "import yanex\nyanex.get_param('x', 0)\n"


def git(cwd: Path, *args: str) -> None:
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull}
    env |= {
        f"GIT_{who}_{what}": "b@b" for who in ("AUTHOR", "COMMITTER") for what in ("NAME", "EMAIL")
    }
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


def project(root: Path, files: int) -> Path:
    """A repository with a script and ``files`` more tracked files (a real project's size)."""
    (root / "pkg").mkdir(parents=True)
    git(root, "init", "-q")
    (root / "trivial.py").write_text(TRIVIAL)
    for i in range(files):
        (root / "pkg" / f"m{i}.py").write_text(f"X = {i}\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "bench")
    return root


def counting_git(tools: Path, log: Path) -> dict[str, str]:
    tools.mkdir()
    real = shutil.which("git")
    (tools / "git").write_text(f'#!/bin/sh\necho "$1" >> "{log}"\nexec "{real}" "$@"\n')
    (tools / "git").chmod(0o755)
    return {"PATH": f"{tools}{os.pathsep}{os.environ['PATH']}"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--members", type=int, default=1000)
    ap.add_argument("--files", type=int, default=300)
    ap.add_argument("--checks", type=int, default=1000)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="yanex-bench-code-"))
    try:
        from yanex.code.check import RACY_SECONDS, CodeCheck

        root = project(work / "proj", args.files)
        time.sleep(RACY_SECONDS + 0.1)  # files older than a racily clean one, as in real use
        log = work / "git.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("YANEX_")}
        env |= {"YANEX_HOME": str(work / "home"), **counting_git(work / "tools", log)}
        yanex = [sys.executable, "-m", "yanex"]
        subprocess.run([*yanex, "stage", "trivial.py", f"x=range({args.members})"],
                       cwd=root, env=env, check=True, capture_output=True)  # fmt: skip
        staged = collections.Counter(log.read_text().split())
        log.unlink()
        subprocess.run([*yanex, "run", "--staged", "-j", "2"],
                       cwd=root, env=env, check=True, capture_output=True)  # fmt: skip
        ran = collections.Counter(log.read_text().split())
        print(f"{args.members:,}-member grid, {args.files} tracked files:")
        print(f"  staging: {sum(staged.values())} git commands ({dict(staged)})")
        print(
            f"  run --staged -j 2: {sum(ran.values())} git commands "
            f"({sum(ran.values()) / args.members:.3f} per member; {dict(ran)})"
        )

        check = CodeCheck()
        script = root / "trivial.py"
        check.state(script)
        start = time.perf_counter()
        for _ in range(args.checks):
            check.state(script)
        per_check = (time.perf_counter() - start) / args.checks * 1000
        print(
            f"  one check of unchanged code, in process: {per_check:.3f} ms "
            f"({check.git_reads} git read(s) for {args.checks + 1:,} checks; wall clock: "
            "take it on a quiet machine)"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
