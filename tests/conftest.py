"""Shared fixtures: a private store, real git repositories, and yanex run as a user runs it."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# Git must not read the developer's own configuration (signing, hooks, templates).
GIT_ENV = {
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}


@pytest.fixture(scope="session", autouse=True)
def _yanex_compiled() -> None:
    """yanex's bytecode, written once: every yanex process the tests start reads it instead
    of compiling yanex (PYTHONDONTWRITEBYTECODE stops writing, not reading)."""
    import compileall

    import yanex

    compileall.compile_dir(Path(yanex.__file__).parent, quiet=1)


@pytest.fixture(autouse=True)
def _own_store(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """What tests do in-process (pipeline.resolve, yanex.launch) uses a store of the test
    session's own, never the machine's ~/.yanex (its caches included)."""
    monkeypatch.setenv("YANEX_HOME", str(tmp_path_factory.getbasetemp() / "in-process-home"))


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a user shell: no YANEX_* left over from the outside, our store."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("YANEX_")}
    # pytest-xdist's workers export COLUMNS=80 and LINES=24, which a shell keeps to itself:
    # rich would take them over the real terminal's size.
    for name in ("COLUMNS", "LINES"):
        env.pop(name, None)
    # No bytecode written for the tests' scripts: a script rewritten within a second at the
    # same size would otherwise run from its stale .pyc. yanex's own is compiled once, below.
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(GIT_ENV)
    env["YANEX_HOME"] = str(home)
    env.update(extra)
    return env


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, **GIT_ENV}
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    ).stdout


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


@dataclass
class Project:
    """A real folder (a git repository unless made with ``git=False``) to run yanex in."""

    path: Path
    home: Path

    def write(self, name: str, text: str) -> Path:
        target = self.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text))
        return target

    def commit(self, message: str = "commit") -> str:
        git(self.path, "add", "-A")
        git(self.path, "commit", "-q", "-m", message)
        return git(self.path, "rev-parse", "HEAD").strip()

    def env(self, **extra: str) -> dict[str, str]:
        return clean_env(self.home, **extra)

    def yanex(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        timeout: float = 120,
        preexec_fn: Any = None,
        **extra: str,
    ) -> Result:
        """Run ``yanex ARGS`` as a user would, and wait for it."""
        proc = subprocess.run(
            [sys.executable, "-m", "yanex", *args],
            cwd=self.path,
            env=env if env is not None else self.env(**extra),
            capture_output=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            preexec_fn=preexec_fn,
        )
        return Result(
            proc.returncode,
            proc.stdout.decode("utf-8", "replace"),
            proc.stderr.decode("utf-8", "replace"),
        )

    def popen(
        self, *args: str, env: dict[str, str] | None = None, **kwargs: Any
    ) -> subprocess.Popen[bytes]:
        """Start ``yanex ARGS`` without waiting, its output on pipes."""
        return subprocess.Popen(
            [sys.executable, "-m", "yanex", *args],
            cwd=self.path,
            env=env if env is not None else self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            **kwargs,
        )

    def experiments(self) -> list[Path]:
        root = self.home / "experiments"
        if not root.exists():
            return []
        return sorted(root.iterdir(), key=lambda p: p.stat().st_mtime)

    def store_entries(self) -> list[str]:
        """Everything under the store's experiments folder (to prove nothing was created)."""
        root = self.home / "experiments"
        return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []

    def only_experiment(self) -> Path:
        found = self.experiments()
        assert len(found) == 1, found
        return found[0]


def runs_of_each_git_state(proj: Project) -> None:
    """Runs of ``proj``'s committed job.py named clean, dirty (an uncommitted change,
    ``--ignore-dirty``) and, from a folder beside it outside git, no-git: git.dirty false,
    true and null, in one store."""

    def run(where: Project, *args: str) -> None:
        r = where.yanex("run", "job.py", *args)
        assert r.returncode == 0, r.stderr

    run(proj, "-n", "clean")
    proj.write("job.py", (proj.path / "job.py").read_text() + "# an uncommitted change\n")
    run(proj, "--ignore-dirty", "-n", "dirty")
    plain = Project(proj.path.parent / "plain", proj.home)
    plain.path.mkdir()
    plain.write("job.py", "print('ran')\n")
    run(plain, "-n", "no-git")


def metadata(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "metadata.json").read_text())


def results(folder: Path) -> list[dict[str, Any]]:
    path = folder / "results.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "yanex-home"


@pytest.fixture
def project(tmp_path: Path, home: Path) -> Project:
    """An empty git repository with one commit (a README), ready for scripts."""
    path = tmp_path / "proj"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    proj = Project(path, home)
    proj.write("README.md", "test project\n")
    proj.commit("init")
    return proj


@pytest.fixture
def plain_dir(tmp_path: Path, home: Path) -> Project:
    """A folder outside any git repository."""
    path = tmp_path / "plain"
    path.mkdir()
    return Project(path, home)


def assert_usage_error(result: Result, *needles: str) -> None:
    """Exit 2, a short ``Error:`` message naming the problem, and never a traceback."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Error" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for needle in needles:
        assert needle in result.stderr, (needle, result.stderr)


def process_gone(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie waiting to be reaped counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] == "Z"
    except FileNotFoundError:
        return True


def same(a: Any, b: Any) -> bool:
    """Equal, with the same types all the way down (1 is not 1.0 or True, nan equals nan)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return a == b


def imported_modules(project: Project, *args: str) -> tuple[set[str], Result]:
    """Run ``yanex ARGS`` with ``-X importtime``: the modules the launcher imported, and what
    it said (its stderr without the import lines)."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "yanex", *args],
        cwd=project.path,
        env=project.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = proc.stderr.splitlines()
    modules = {line.rsplit("|", 1)[1].strip() for line in lines if line.startswith("import time:")}
    shown = "\n".join(line for line in lines if not line.startswith("import time:"))
    return modules, Result(proc.returncode, proc.stdout, shown)


def run_python(code: str, *, cwd: Path, env: dict[str, str], args: Sequence[str] = ()) -> Result:
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=cwd, env=env, capture_output=True, timeout=60
    )
    return Result(proc.returncode, proc.stdout.decode(), proc.stderr.decode())


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 1 MB file system (tmpfs) that a script can fill up."""
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs to fill up needs root")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill up: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)
