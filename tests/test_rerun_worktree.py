"""`yanex rerun --worktree` runs the recorded code, all of it: packages of the repository
reached through PYTHONPATH or an editable install (both of setuptools' kinds), submodules at
their recorded commits, and an import from the live repository is reported. Submodules are
part of every run's code state. With real git repositories, a real submodule and a real
`pip install -e` into a venv of the test's own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from conftest import Project, Result, assert_usage_error, git, metadata, results

# --- submodules -------------------------------------------------------------------------------

USES_LIB = """
import os, sys, yanex
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from libmod import VALUE
yanex.log_results({"value": VALUE})
"""


def with_submodule(project: Project, tmp_path: Path) -> Path:
    """A repository `lib` (libmod.VALUE = 1) added to the project as the submodule lib."""
    lib = tmp_path / "lib-upstream"
    lib.mkdir()
    git(lib, "init", "-q", "-b", "main")
    (lib / "libmod.py").write_text("VALUE = 1\n")
    git(lib, "add", "-A")
    git(lib, "commit", "-q", "-m", "lib v1")
    git(project.path, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(lib), "lib")
    project.write("run.py", USES_LIB)
    project.commit("with lib")
    return project.path / "lib"


def commit_in(repo: Path, name: str, text: str, message: str) -> str:
    (repo / name).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD").strip()


def test_a_run_records_its_submodules_and_a_dirty_one_is_refused(
    project: Project, tmp_path: Path
) -> None:
    lib = with_submodule(project, tmp_path)
    r = project.yanex("run", "run.py")
    assert r.returncode == 0, r.stderr
    meta = metadata(project.only_experiment())
    assert meta["git"]["submodules"] == {"lib": git(lib, "rev-parse", "HEAD").strip()}
    (lib / "libmod.py").write_text("VALUE = 2\n")
    r = project.yanex("run", "run.py")
    assert_usage_error(r, "lib (a submodule with uncommitted changes)", "--ignore-dirty")
    assert len(project.experiments()) == 1


@pytest.mark.slow
def test_a_dirty_submodules_changes_are_kept_and_rebuild_the_code(
    project: Project, tmp_path: Path
) -> None:
    """A changed submodule gave a patch holding only `Subproject commit ...-dirty`."""
    lib = with_submodule(project, tmp_path)
    (lib / "libmod.py").write_text("VALUE = 2\n")
    r = project.yanex("run", "run.py", "-n", "dirty-lib", "--ignore-dirty")
    assert r.returncode == 0, r.stderr
    folder = project.only_experiment()
    patch = (folder / "git.patch").read_text()
    assert "+++ b/lib/libmod.py" in patch and "+VALUE = 2" in patch
    assert "Subproject commit" not in patch
    # today the submodule moves on: a new commit, recorded in the project
    git(lib, "checkout", "-q", "libmod.py")
    commit_in(lib, "libmod.py", "VALUE = 3\n", "lib v3")
    project.commit("lib v3")
    r = project.yanex("rerun", "dirty-lib", "--worktree")
    assert r.returncode == 0, r.stderr
    assert results(project.experiments()[-1])[0]["results"] == {"value": 2}
    assert (lib / "libmod.py").read_text() == "VALUE = 3\n"  # today's code untouched


@pytest.mark.slow
def test_a_worktree_rerun_checks_out_submodules_at_their_recorded_commits(
    project: Project, tmp_path: Path
) -> None:
    """The worktree of a rerun checked out no submodule (ModuleNotFoundError)."""
    lib = with_submodule(project, tmp_path)
    recorded = commit_in(lib, "libmod.py", "VALUE = 4\n", "lib v4, not yet in the project")
    r = project.yanex("run", "run.py", "-n", "ahead", "--ignore-dirty")  # lib at another commit
    assert r.returncode == 0, r.stderr
    assert metadata(project.only_experiment())["git"]["submodules"] == {"lib": recorded}
    commit_in(lib, "libmod.py", "VALUE = 5\n", "lib v5")
    project.commit("lib v5")
    r = project.yanex("rerun", "ahead", "--worktree")
    assert r.returncode == 0, r.stderr
    rerun = project.experiments()[-1]
    assert results(rerun)[0]["results"] == {"value": 4}
    assert metadata(rerun)["git"]["submodules"] == {"lib": recorded}
    assert "worktree" not in git(project.path, "worktree", "list").split("\n", 1)[-1]


def test_a_submodule_that_is_no_longer_checked_out_is_a_clear_error(
    project: Project, tmp_path: Path
) -> None:
    with_submodule(project, tmp_path)
    assert project.yanex("run", "run.py", "-n", "r").returncode == 0
    git(project.path, "submodule", "deinit", "-q", "--force", "lib")
    r = project.yanex("rerun", "r", "--worktree")
    assert_usage_error(r, "submodule lib", "is not checked out", "git submodule update --init")
    assert len(project.experiments()) == 1
    assert "worktree" not in git(project.path, "worktree", "list").split("\n", 1)[-1]


@pytest.mark.slow
def test_a_member_that_edits_a_submodule_gets_the_next_ones_refused(
    project: Project, tmp_path: Path
) -> None:
    lib = with_submodule(project, tmp_path)
    project.write(
        "edit.py",
        USES_LIB + "if yanex.get_param('x') == 0:\n"
        f"    open({str(lib / 'libmod.py')!r}, 'a').write('VALUE = 9\\n')\n",
    )
    project.commit("edit")
    r = project.yanex("run", "edit.py", "x=range(2)", "-m", "-j", "1")
    assert r.returncode == 1, r.stderr
    assert "lib" in r.stderr and "refused" in r.stderr
    statuses = sorted(metadata(f)["status"] for f in project.experiments())
    assert statuses == ["completed", "staged"]


# --- the live repository ----------------------------------------------------------------------

IMPORTS_LIVE = """
import os, sys, yanex
sys.path.insert(0, os.path.join(os.environ["LIVE_REPO"], "extra"))
import extramod
yanex.log_results({"value": extramod.VALUE})
"""


@pytest.mark.slow
def test_an_import_from_the_live_repository_is_reported(project: Project) -> None:
    project.write("extra/extramod.py", "VALUE = 1\n")
    project.write("live.py", IMPORTS_LIVE)
    project.commit()
    env = project.env(LIVE_REPO=str(project.path))
    assert project.yanex("run", "live.py", "-n", "l", env=env).returncode == 0
    r = project.yanex("rerun", "l", "--worktree", env=env)
    assert r.returncode == 0, r.stderr
    said = "module extramod was imported from the live repository"
    assert said in r.stderr
    assert any(said in w for w in metadata(project.experiments()[-1])["warnings"])


@pytest.mark.slow
def test_a_sitecustomize_of_the_users_own_still_runs(project: Project, tmp_path: Path) -> None:
    site = tmp_path / "user-site"
    site.mkdir()
    (site / "sitecustomize.py").write_text("import builtins\nbuiltins.USER_SITE = 'ran'\n")
    project.write("s.py", "import builtins, yanex\nprint('user site', builtins.USER_SITE)\n")
    project.commit()
    env = project.env(PYTHONPATH=str(site))
    assert project.yanex("run", "s.py", "-n", "s", env=env).returncode == 0
    r = project.yanex("rerun", "s", "--worktree", env=env)
    assert r.returncode == 0, r.stderr
    assert "user site ran" in r.stdout


# --- editable installs, PYTHONPATH, and the round trip ----------------------------------------

PYPROJECT = """
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"
[project]
name = "{name}"
version = "0.1"
"""

TRAIN = """
import yanex
import srcpkg, flatpkg, helper
yanex.log_results({
    "src": srcpkg.VALUE, "flat": flatpkg.VALUE, "helper": helper.VALUE,
    "scale": yanex.get_param("scale"),
})
"""


def write_packages(project: Project, value: int) -> None:
    project.write("packages/srcpkg/src/srcpkg/__init__.py", f"VALUE = {value}\n")
    project.write("packages/flatpkg/flatpkg/__init__.py", f"VALUE = {value}\n")
    project.write("libs/helper/__init__.py", f"VALUE = {value}\n")


def venv_with_editable_installs(project: Project, tmp_path: Path) -> Path:
    """A venv that sees the test's packages (yanex among them) and has the project's two
    packages installed with `pip install -e`: srcpkg as a .pth path entry (a src layout),
    flatpkg through setuptools' editable finder (a flat layout)."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    ours = sysconfig.get_paths()["purelib"]
    Path(site, "zz-test-venv.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
         "--no-build-isolation", "--no-deps", "--no-index",
         "-e", str(project.path / "packages" / "srcpkg"),
         "-e", str(project.path / "packages" / "flatpkg")],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    files = sorted(p.name for p in Path(site).iterdir())
    assert any(f.startswith("__editable___flatpkg") and f.endswith("_finder.py") for f in files)
    assert (Path(site) / "__editable__.srcpkg-0.1.pth").read_text().strip().endswith("src")
    return python


def yanex_in(python: Path, project: Project, env: dict[str, str], *args: str) -> Result:
    proc = subprocess.run(
        [str(python), "-m", "yanex", *args],
        cwd=project.path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.mark.slow
def test_round_trip_a_rerun_runs_the_recorded_packages_and_config(
    project: Project, tmp_path: Path
) -> None:
    """Run; change and commit the repository's packages and its config; rerun plain and with
    --worktree: the worktree rerun gives the original's results, the plain one today's code
    (said, and recorded) with the recorded config."""
    write_packages(project, 1)
    project.write("packages/srcpkg/pyproject.toml", PYPROJECT.format(name="srcpkg"))
    project.write(
        "packages/flatpkg/pyproject.toml",
        PYPROJECT.format(name="flatpkg") + '[tool.setuptools]\npackages = ["flatpkg"]\n',
    )
    project.write("config.yaml", "scale: 1\n")
    project.write("train.py", TRAIN)
    project.write(".gitignore", "*.egg-info/\nbuild/\n")
    project.commit("v1")
    python = venv_with_editable_installs(project, tmp_path)
    env = project.env(PYTHONPATH=str(project.path / "libs"))
    r = yanex_in(python, project, env, "run", "train.py", "-n", "orig")
    assert r.returncode == 0, r.stderr
    original = project.only_experiment()
    assert results(original)[0]["results"] == {"src": 1, "flat": 1, "helper": 1, "scale": 1}

    write_packages(project, 2)
    project.write("config.yaml", "scale: 2\n")
    v2 = project.commit("v2")

    r = yanex_in(python, project, env, "rerun", "orig", "--worktree")
    assert r.returncode == 0, r.stderr
    assert "live repository" not in r.stderr
    rerun = project.experiments()[-1]
    assert results(rerun)[0]["results"] == results(original)[0]["results"]
    meta = metadata(rerun)
    assert meta["git"]["commit"] == metadata(original)["git"]["commit"]
    assert meta["script"] == str(project.path / "train.py") and not meta.get("warnings")

    r = yanex_in(python, project, env, "rerun", "orig")
    assert r.returncode == 0, r.stderr
    assert "ran at commit" in r.stderr and "--worktree" in r.stderr
    plain = project.experiments()[-1]
    assert results(plain)[0]["results"] == {"src": 2, "flat": 2, "helper": 2, "scale": 1}
    assert metadata(plain)["git"]["commit"] == v2  # the code it ran
    assert json.loads((plain / "params.json").read_text()) == {"scale": 1}
    assert os.environ.get("YANEX_WORKTREE") is None


# --- config trees read from the worktree ------------------------------------------------------

APP = """
import hydra, yanex


@hydra.main(version_base=None, config_path="conf", config_name="config")
def main(cfg):
    yanex.log_results({"noise": cfg.noise, "epochs": cfg.epochs})


if __name__ == "__main__":
    main()
"""


@pytest.mark.slow
def test_an_apps_config_path_is_read_from_the_worktree(project: Project) -> None:
    """A @hydra.main app rerun with --worktree after a committed change of conf/config.yaml
    composed today's tree (Hydra's config source pointed at the project's conf/)."""
    project.write("app.py", APP)
    project.write("conf/config.yaml", "noise: 0.25\nepochs: 40\n")
    project.commit("v1")
    assert project.yanex("run", "app.py", "-n", "app").returncode == 0
    project.write("conf/config.yaml", "noise: 0.35\nepochs: 30\n")
    project.commit("v2")
    r = project.yanex("rerun", "app", "--worktree")
    assert r.returncode == 0, r.stderr
    assert results(project.experiments()[-1])[0]["results"] == {"noise": 0.25, "epochs": 40}
    assert "differ" not in r.stderr


@pytest.mark.slow
def test_a_config_group_option_is_composed_from_the_worktrees_tree(project: Project) -> None:
    project.write("conf/config.yaml", "defaults:\n  - model: small\n  - _self_\nseed: 1\n")
    project.write("conf/model/small.yaml", "width: 8\n")
    project.write("conf/model/large.yaml", "width: 64\n")
    project.write("show.py", "import json, yanex\nprint(json.dumps(yanex.get_params()))\n")
    project.commit("v1")
    assert project.yanex("run", "show.py", "-n", "h").returncode == 0
    project.write("conf/model/large.yaml", "width: 128\n")
    project.commit("v2")
    r = project.yanex("rerun", "h", "-p", "model=large", "--worktree")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"model": {"width": 64}, "seed": 1}  # as at the commit
    # the worktree is gone: a rerun of this rerun finds the tree in the project again
    r = project.yanex("rerun", "h-rerun-1", "-p", "model=small", "--worktree")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"model": {"width": 8}, "seed": 1}
    r = project.yanex("rerun", "h", "-p", "model=large")  # today's tree
    assert json.loads(r.stdout) == {"model": {"width": 128}, "seed": 1}
