"""Sessions: `nox -s tests`, `nox -s lint`, `nox -s bench` (see benchmarks/)."""

from pathlib import Path

import nox

nox.options.sessions = ["tests", "lint"]


@nox.session
def tests(session: nox.Session) -> None:
    session.install("-e", ".[dev]")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def bench(session: nox.Session) -> None:
    """What yanex costs (start-up, logging, staged batches locally and on Dask, finding
    experiments at 10,000 and 100,000, the dashboard's pages), against bare Python and yanex
    0.6.1 in its own venv, a results file of 1,000,000 steps. `nox -s bench -- run` (or
    `launch`, `browse`, `staged`, `ui`, `long`) runs one of them."""
    which = session.posargs or ["run", "launch", "browse", "staged", "ui", "long"]
    # As users install it: an editable install adds an import hook.
    session.install(".[analysis,dask,ui]")
    old = Path(session.create_tmp()).resolve() / "yanex-0.6.1"
    if not (old / "bin" / "python").exists():
        session.run("python", "-m", "venv", str(old))
        session.run(str(old / "bin" / "pip"), "install", "-q", "yanex==0.6.1", external=True)
    for name in which:
        against = [] if name in ("ui", "long") else ["--old", str(old / "bin" / "python")]
        session.run("python", f"benchmarks/bench_{name}.py", *against)
