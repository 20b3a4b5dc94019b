"""Git state: what is recorded, what is refused, and that commit + patch rebuild a dirty run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Project, assert_usage_error, git, metadata, run_python

from yanex.code.state import strip_credentials

SCRIPT = "print('hello')\n"


@pytest.mark.parametrize(
    ("url", "stored"),
    [
        ("https://user:token@github.com/org/repo.git", "https://github.com/org/repo.git"),
        ("https://ghp_abc123@github.com/org/repo.git", "https://github.com/org/repo.git"),
        ("http://u:p@host:8080/r", "http://host:8080/r"),
        ("ssh://git:secret@host/r.git", "ssh://git@host/r.git"),
        ("ssh://git@host/r.git", "ssh://git@host/r.git"),
        ("git@github.com:org/repo.git", "git@github.com:org/repo.git"),
        ("https://github.com/org/repo.git", "https://github.com/org/repo.git"),
        ("/srv/git/repo.git", "/srv/git/repo.git"),
    ],
)
def test_credentials_are_stripped_from_remote_urls(url: str, stored: str) -> None:
    assert strip_credentials(url) == stored


def test_clean_run_records_commit_branch_and_remote(project: Project) -> None:
    project.write("s.py", SCRIPT)
    commit = project.commit()
    git(project.path, "remote", "add", "origin", "https://alice:s3cret@example.com/lab/proj.git")
    r = project.yanex("run", "s.py")
    assert r.returncode == 0, r.stderr
    folder = project.only_experiment()
    assert metadata(folder)["git"] == {
        "commit": commit,
        "branch": "main",
        "dirty": False,
        "remote_url": "https://example.com/lab/proj.git",
    }
    for path in folder.rglob("*"):
        if path.is_file():
            assert "s3cret" not in path.read_text(errors="replace"), path


def test_origin_is_the_recorded_remote_else_the_first(project: Project) -> None:
    project.write("s.py", SCRIPT)
    project.commit()
    git(project.path, "remote", "add", "fork.old", "https://example.com/fork.git")
    assert project.yanex("run", "s.py").returncode == 0
    git(project.path, "remote", "add", "origin", "git@example.com:lab/proj.git")
    assert project.yanex("run", "s.py").returncode == 0
    urls = [metadata(folder)["git"]["remote_url"] for folder in project.experiments()]
    assert sorted(urls) == ["git@example.com:lab/proj.git", "https://example.com/fork.git"]


def test_script_in_a_subfolder_is_found_in_the_repository(project: Project) -> None:
    project.write("jobs/s.py", SCRIPT)
    commit = project.commit()
    r = project.yanex("run", "jobs/s.py")
    assert r.returncode == 0, r.stderr
    recorded = metadata(project.only_experiment())["git"]
    assert recorded["commit"] == commit and recorded["dirty"] is False


def test_branch_names_are_recorded_as_written(project: Project) -> None:
    project.write("s.py", SCRIPT)
    project.commit()
    git(project.path, "checkout", "-q", "-b", "expérience/lr-sweep")
    assert project.yanex("run", "s.py").returncode == 0
    assert metadata(project.only_experiment())["git"]["branch"] == "expérience/lr-sweep"


def test_detached_head_records_commit_without_branch(project: Project) -> None:
    project.write("s.py", SCRIPT)
    commit = project.commit()
    git(project.path, "checkout", "-q", "--detach", "HEAD")
    assert project.yanex("run", "s.py").returncode == 0
    recorded = metadata(project.only_experiment())["git"]
    assert recorded["branch"] is None and recorded["commit"] == commit


@pytest.mark.parametrize(
    "change",
    ["modified", "staged", "untracked_script", "deleted", "renamed", "in_subfolder", "non_ascii"],
)
def test_dirty_tree_is_refused_naming_files_and_the_flag(project: Project, change: str) -> None:
    project.write("s.py", SCRIPT)
    project.write("lib.py", "X = 1\n")
    project.commit()
    script = "s.py"
    if change == "modified":
        project.write("lib.py", "X = 2\n")
        named = "lib.py"
    elif change == "staged":
        project.write("lib.py", "X = 3\n")
        git(project.path, "add", "lib.py")
        named = "lib.py"
    elif change == "deleted":
        (project.path / "lib.py").unlink()
        named = "lib.py"
    elif change == "renamed":
        git(project.path, "mv", "lib.py", "renamed lib.py")  # a space in the name, too
        named = "renamed lib.py"
    elif change == "non_ascii":
        project.write("données.py", "X = 1\n")
        project.commit()
        project.write("données.py", "X = 2\n")
        named = "données.py"
    elif change == "in_subfolder":
        project.write("data/prep.py", "X = 1\n")
        project.commit()
        project.write("data/prep.py", "X = 2\n")
        named = "data/prep.py"  # named from the repository's root
    else:
        project.write("new.py", SCRIPT)
        script = named = "new.py"
    r = project.yanex("run", script)
    assert_usage_error(r, named, "--ignore-dirty", "uncommitted changes")
    assert project.store_entries() == []


def test_untracked_files_other_than_the_script_do_not_make_it_dirty(project: Project) -> None:
    project.write("s.py", SCRIPT)
    project.commit()
    project.write("notes.txt", "scratch\n")
    assert project.yanex("run", "s.py").returncode == 0
    assert metadata(project.only_experiment())["git"]["dirty"] is False


def test_an_untracked_script_is_found_even_when_its_name_is_a_glob(project: Project) -> None:
    project.write("exp1.py", SCRIPT)
    project.commit()
    project.write("exp[1].py", SCRIPT)  # as a pathspec glob this would match exp1.py
    assert_usage_error(project.yanex("run", "exp[1].py"), "exp[1].py", "not tracked")
    glob_env = project.env(GIT_GLOB_PATHSPECS="1")  # a user's own pathspec setting
    assert_usage_error(project.yanex("run", "exp[1].py", env=glob_env), "not tracked")


def test_ignore_dirty_runs_and_commit_plus_patch_rebuild_the_code(
    project: Project, tmp_path
) -> None:
    project.write("s.py", "from lib import X\nprint('X is', X)\n")
    project.write("lib.py", "X = 1\n")
    commit = project.commit()
    project.write("lib.py", "X = 2\n")  # modified tracked file
    project.write("tool.py", "from lib import X\nprint('tool', X)\n")  # untracked script
    r = project.yanex("run", "tool.py", "--ignore-dirty")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "tool 2\n"
    folder = project.only_experiment()
    recorded = metadata(folder)["git"]
    assert recorded["dirty"] is True and recorded["commit"] == commit
    patch = (folder / "git.patch").read_bytes()
    assert b"lib.py" in patch and b"tool.py" in patch

    # rebuild: a fresh clone at the recorded commit, plus the patch, gives the code that ran
    rebuilt = tmp_path / "rebuilt"
    git(tmp_path, "clone", "-q", str(project.path), str(rebuilt))
    git(rebuilt, "checkout", "-q", commit)
    git(rebuilt, "apply", str(folder / "git.patch"))
    assert (rebuilt / "lib.py").read_text() == "X = 2\n"
    assert (rebuilt / "tool.py").read_text() == (project.path / "tool.py").read_text()
    out = subprocess.run([sys.executable, "tool.py"], cwd=rebuilt, capture_output=True, text=True)
    assert out.stdout == "tool 2\n"


def test_repository_without_commits(tmp_path, home) -> None:
    from conftest import Project

    path = tmp_path / "fresh"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    proj = Project(path, home)
    proj.write("s.py", SCRIPT)
    assert_usage_error(proj.yanex("run", "s.py"), "s.py", "--ignore-dirty")
    r = proj.yanex("run", "s.py", "--ignore-dirty")
    assert r.returncode == 0, r.stderr
    folder = proj.only_experiment()
    recorded = metadata(folder)["git"]
    assert recorded["commit"] is None and recorded["dirty"] is True
    assert b"s.py" in (folder / "git.patch").read_bytes()


def test_outside_a_repository_runs_with_one_warning(plain_dir: Project) -> None:
    plain_dir.write("s.py", SCRIPT)
    r = plain_dir.yanex("run", "s.py")
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("warning:") == 1 and "not in a git repository" in r.stderr
    assert metadata(plain_dir.only_experiment())["git"] is None


def test_without_a_git_executable_the_run_proceeds_with_one_warning(project: Project) -> None:
    project.write("s.py", SCRIPT)
    project.commit()
    bin_dir = project.path.parent / "bin-without-git"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    r = project.yanex("run", "s.py", env=project.env(PATH=str(bin_dir)))
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("warning:") == 1 and "git cannot be run" in r.stderr
    assert metadata(project.only_experiment())["git"] is None


def hostile_git_config(tools: Path, *, quote_path: bool) -> dict[str, str]:
    """Settings users really have that change what `git diff` and `git status` print.

    Colours, no or mnemonic prefixes, an external diff tool and a textconv filter (through a
    diff driver that an attributes file gives every path, as nbdime's set-up does), rename and
    copy detection, more context, another algorithm, blank context lines written empty, paths
    quoted or not, longer abbreviated hashes, untracked files listed and paths made relative.
    """
    tools.mkdir()
    external = tools / "external-diff"
    external.write_text('#!/bin/sh\necho "external diff of $1"\n')
    textconv = tools / "textconv"
    textconv.write_text('#!/bin/sh\ntr a-z A-Z < "$1"\n')
    for tool in (external, textconv):
        tool.chmod(0o755)
    (tools / "attributes").write_text("* diff=hostile\n")
    (tools / "order").write_text("tool.py\n*.py\n")
    return {
        "color.ui": "always",
        "color.diff": "always",
        "color.status": "always",
        "diff.noprefix": "true",
        "diff.mnemonicPrefix": "true",
        "diff.external": str(external),
        "diff.hostile.command": str(external),
        "diff.hostile.textconv": str(textconv),
        "core.attributesFile": str(tools / "attributes"),
        "diff.relative": "true",
        "diff.renames": "copies",
        "diff.suppressBlankEmpty": "true",
        "diff.algorithm": "patience",
        "diff.indentHeuristic": "false",
        "diff.context": "8",
        "diff.interHunkContext": "10",
        "diff.orderFile": str(tools / "order"),
        "core.quotePath": "true" if quote_path else "false",
        "core.abbrev": "12",
        "status.showUntrackedFiles": "all",
        "status.relativePaths": "true",
        "status.renames": "false",
        "status.short": "true",
        "status.branch": "true",
    }


def hostile_env(project: Project, tmp_path: Path, scope: str) -> dict[str, str]:
    """The environment of a user whose git config (``scope``: global, local) is hostile."""
    settings = hostile_git_config(tmp_path / "git-tools", quote_path=scope == "global")
    if scope == "global":
        config = tmp_path / "user.gitconfig"
        for key, value in settings.items():
            git(project.path, "config", "--file", str(config), key, value)
        return project.env(GIT_CONFIG_GLOBAL=str(config))
    if scope == "local":
        for key, value in settings.items():
            git(project.path, "config", "--local", key, value)
        return project.env()
    # no config at all, but the variables git reads for diffs
    return project.env(GIT_EXTERNAL_DIFF=settings["diff.external"], GIT_DIFF_OPTS="--unified=1")


def make_dirty_project(project: Project) -> str:
    """A commit, then changes of every kind a patch must carry; the untracked script tool.py."""
    body = "".join(f"def f{i}():\n    return {i}\n\n" for i in range(12))
    project.write("lib.py", body)
    project.write("données.py", "X = 1\n")
    project.write("old name.py", "Y = 1\n")
    commit = project.commit()
    project.write(
        "lib.py", body.replace("return 2\n", "return 20\n").replace("return 8\n", "return 80\n")
    )
    project.write("données.py", "X = 2\n")
    git(project.path, "mv", "old name.py", "new name.py")
    project.write("tool.py", "import lib\nprint('tool', lib.f2(), lib.f8())\n")
    return commit


def run_for_patch(project: Project, env: dict[str, str]) -> bytes:
    """Run the untracked script with --ignore-dirty; the git.patch its experiment saved."""
    before = set(project.experiments())
    r = project.yanex("run", "tool.py", "--ignore-dirty", env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "tool 20 80\n"
    (folder,) = set(project.experiments()) - before
    return (folder / "git.patch").read_bytes()


@pytest.mark.slow
@pytest.mark.parametrize("scope", ["global", "local", "environment"])
def test_the_patch_is_the_same_whatever_the_users_git_config(
    project: Project, tmp_path: Path, scope: str
) -> None:
    commit = make_dirty_project(project)
    expected = run_for_patch(project, project.env())  # made under an empty git config
    patch = run_for_patch(project, hostile_env(project, tmp_path, scope))
    assert patch == expected

    # and it rebuilds the code that ran, on a fresh clone at the recorded commit
    rebuilt = tmp_path / "rebuilt"
    git(tmp_path, "clone", "-q", str(project.path), str(rebuilt))
    git(rebuilt, "checkout", "-q", commit)
    (tmp_path / "git.patch").write_bytes(patch)
    git(rebuilt, "apply", str(tmp_path / "git.patch"))
    for name in ("lib.py", "données.py", "new name.py", "tool.py"):
        assert (rebuilt / name).read_bytes() == (project.path / name).read_bytes(), name
    assert not (rebuilt / "old name.py").exists()
    out = subprocess.run([sys.executable, "tool.py"], cwd=rebuilt, capture_output=True, text=True)
    assert out.stdout == "tool 20 80\n"


@pytest.mark.parametrize("scope", ["global", "local"])
def test_the_users_git_config_does_not_change_the_state_read(
    project: Project, tmp_path: Path, scope: str
) -> None:
    project.write("s.py", SCRIPT)
    project.write("données.py", "X = 1\n")
    commit = project.commit()
    env = hostile_env(project, tmp_path, scope)
    project.write("notes/scratch.txt", "not the script, so not dirty\n")
    r = project.yanex("run", "s.py", env=env)
    assert r.returncode == 0, r.stderr
    assert metadata(project.only_experiment())["git"] == {
        "commit": commit,
        "branch": "main",
        "dirty": False,
        "remote_url": None,
    }
    project.write("données.py", "X = 2\n")
    r = project.yanex("run", "s.py", env=env)
    assert_usage_error(r, "\n  données.py\n", "--ignore-dirty")
    assert "notes" not in r.stderr


def test_only_a_dirty_run_loads_the_secret_scanner(project: Project) -> None:
    """detect-secrets (with requests) takes longer to import than a clean run's git state
    takes to read; no run needs GitPython."""
    project.write("s.py", SCRIPT)
    project.write("lib.py", "X = 1\n")
    project.commit()
    code = (
        "import atexit, sys\n"
        "from yanex.__main__ import main\n"
        "heavy = ('git', 'detect_secrets')\n"
        "atexit.register(lambda: print('loaded', [m for m in heavy if m in sys.modules]))\n"
        "sys.argv = ['yanex', 'run', 's.py', *sys.argv[1:]]\n"
        "main()\n"
    )
    clean = run_python(code, cwd=project.path, env=project.env())
    assert clean.stdout.splitlines()[-1] == "loaded []", clean.stderr
    project.write("lib.py", "X = 2\n")
    dirty = run_python(code, cwd=project.path, env=project.env(), args=["--ignore-dirty"])
    assert dirty.stdout.splitlines()[-1] == "loaded ['detect_secrets']", dirty.stderr
