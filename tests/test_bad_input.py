"""Bad input: a short message naming the problem, exit code 2, no traceback, nothing created."""

from __future__ import annotations

import os

import pytest
from conftest import Project, assert_usage_error

CASES = [
    # (what, args, extra files, extra env, text the message must contain)
    ("missing script", ["run", "nope.py"], {}, {}, "nope.py"),
    ("script is a folder", ["run", "pkg"], {"pkg/__init__.py": ""}, {}, "pkg"),
    ("no script", ["run"], {}, {}, "SCRIPT"),
    ("param without =", ["run", "s.py", "--param", "lr"], {}, {}, "neither KEY=VALUE nor ~KEY"),
    ("param without key", ["run", "s.py", "-p", "=3"], {}, {}, "no key"),
    ("unclosed list", ["run", "s.py", "-p", "x=[1,2"], {}, {}, "x=[1,2"),
    ("unclosed dict", ["run", "s.py", "-p", "x={a: 1"], {}, {}, "cannot be parsed"),
    ("unquoted special chars", ["run", "s.py", "-p", "u=http://h/?a=b"], {}, {}, "Quote"),
    ("sweep without staging", ["run", "s.py", "-p", "x=choice(1,2)"], {}, {}, "sweeps"),
    ("remove a missing key", ["run", "s.py", "-p", "~nothere"], {}, {}, "nothere"),
    (
        "add an existing key",
        ["run", "s.py", "-p", "+a=2"],
        {"config.yaml": "a: 1\n"},
        {},
        "already set",
    ),
    ("missing config", ["run", "s.py", "--config", "nope.yaml"], {}, {}, "nope.yaml"),
    ("config is a folder", ["run", "s.py", "-c", "conf"], {"conf/x.yaml": "a: 1\n"}, {}, "conf"),
    ("invalid YAML", ["run", "s.py"], {"config.yaml": "a: [1\n"}, {}, "not valid YAML"),
    ("YAML list at top", ["run", "s.py"], {"config.yaml": "- 1\n- 2\n"}, {}, "mapping"),
    ("YAML scalar at top", ["run", "s.py"], {"config.yaml": "just text\n"}, {}, "mapping"),
    ("NUL in config", ["run", "s.py"], {"config.yaml": "a: 1\x00\n"}, {}, "NUL"),
    (
        "bad interpolation",
        ["run", "s.py"],
        {"config.yaml": "a: ${missing}\n"},
        {},
        "cannot be resolved",
    ),
    ("bad env value", ["run", "s.py"], {}, {"YANEX_PARAM_x": "[1,"}, "YANEX_PARAM_x"),
    ("env without key", ["run", "s.py"], {}, {"YANEX_PARAM_": "1"}, "names no parameter"),
    ("unknown option", ["run", "--bogus", "s.py"], {}, {}, "--bogus"),
    ("script flag like yanex's", ["run", "s.py", "--tags", "x"], {}, {}, "did you mean --tag"),
    ("unknown command", ["launch-rockets"], {}, {}, "launch-rockets"),
    ("empty tag", ["run", "s.py", "--tag", ""], {}, {}, "tag"),
    (
        "dotted into a scalar",
        ["run", "s.py", "-p", "a.b=1"],
        {"config.yaml": "a: [1]\n"},
        {},
        "a.b=1",
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "files", "env", "needle"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_bad_input_is_refused_cleanly(
    project: Project, args: list[str], files: dict[str, str], env: dict[str, str], needle: str
) -> None:
    project.write("s.py", "print('ran')\n")
    for name, text in files.items():
        project.write(name, text)
    project.commit()
    r = project.yanex(*args, env=project.env(**env))
    assert_usage_error(r, needle)
    assert "ran" not in r.stdout
    assert project.store_entries() == []


def test_unwritable_store_is_a_clear_error(project: Project) -> None:
    project.write("s.py", "print('ran')\n")
    project.commit()
    blocker = project.path.parent / "not-a-folder"
    blocker.write_text("a file where the store should be\n")
    r = project.yanex("run", "s.py", env=project.env(YANEX_HOME=str(blocker)))
    assert_usage_error(r, "cannot create an experiment folder")
    assert "ran" not in r.stdout


@pytest.mark.parametrize(
    ("fifo", "args"),
    [
        ("pipe.yaml", ["--config", "pipe.yaml"]),
        ("config.yaml", []),
        ("conf/config.yaml", []),
        ("conf/model/pipe.yaml", ["-p", "model=pipe"]),
        ("conf/model/unused.yaml", []),
    ],
    ids=["--config", "./config.yaml", "primary config of conf/", "option of conf/", "in conf/"],
)
def test_a_fifo_as_a_config_is_named_and_never_read(
    project: Project, fifo: str, args: list[str]
) -> None:
    """A FIFO is refused for what it is; reading it would block until a writer came."""
    project.write("s.py", "print('ran')\n")
    if fifo.startswith("conf/") and fifo != "conf/config.yaml":
        project.write("conf/config.yaml", "defaults:\n  - model: small\n  - _self_\n")
        project.write("conf/model/small.yaml", "width: 8\n")
    project.commit()
    (project.path / fifo).parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(project.path / fifo)
    r = project.yanex("run", "s.py", *args, timeout=60)  # the timeout guards against a hang
    assert_usage_error(r, f"{fifo} is a FIFO (named pipe), not a file")
    assert "ran" not in r.stdout
    assert project.store_entries() == []


def test_a_device_as_the_config_is_named_and_never_read(project: Project) -> None:
    """/dev/zero never ends: it is refused as a device, not read until memory runs out."""
    project.write("s.py", "print('ran')\n")
    project.commit()
    r = project.yanex("run", "s.py", "--config", "/dev/zero", timeout=60)
    assert_usage_error(r, "config file /dev/zero is a character device, not a file")
    assert project.store_entries() == []


@pytest.mark.slow
def test_user_text_never_steers_the_terminal(project: Project) -> None:
    """Names and values with control characters are shown escaped in every message."""
    project.write("job.py", "import sys\nsys.exit(0)\n")
    project.commit()
    evil = "x\x1b[2J\x07"
    r = project.yanex("stage", "job.py", "-p", f"title=list('{evil}', b)", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "\x1b" not in r.stdout + r.stderr and "title='x\\x1b[2J\\x07'" in r.stdout
    r = project.yanex("stage", "job.py", "-n", evil, "-p", "k=list(1, 2)")
    assert r.returncode == 0, r.stderr
    r = project.yanex("run", "--staged", "-j", "2")
    assert r.returncode == 0, r.stderr
    assert "\x1b" not in r.stderr and "x\\x1b[2J\\x07-k=1" in r.stderr
    r = project.yanex("run", "job.py", "--param", f"bad{evil}")
    assert_usage_error(r, "is neither KEY=VALUE")
    assert "\x1b" not in r.stderr


def test_a_failure_summary_names_the_reason(project: Project) -> None:
    project.write("fail.py", "import sys\nprint('noise', file=sys.stderr)\nsys.exit('bad data')\n")
    project.commit()
    r = project.yanex("run", "fail.py")
    assert r.returncode == 1
    last = r.stderr.strip().splitlines()[-1]
    assert last.endswith("failed (exited with code 1: bad data)"), last


def test_staged_refuses_other_options_by_the_names_users_type(project: Project) -> None:
    for args, named in (
        (["-t", "x"], "--tag"),
        (["-p", "a=1"], "--param"),
        (["-c", "README.md"], "--config"),
        (["--stage"], "--stage"),
    ):
        r = project.yanex("run", "--staged", *args)
        assert r.returncode == 2 and f"it takes no {named}" in r.stderr, r.stderr


@pytest.mark.parametrize("form", ["x={}", "x=[{}]", "x=list({}, 1)"])
def test_a_number_too_long_for_python_is_a_usage_error(project: Project, form: str) -> None:
    project.write("job.py", "import yanex\nyanex.get_param('x')\n")
    project.commit()
    r = project.yanex("run", "job.py", "-p", form.format("1" * 5000), "--stage")
    assert_usage_error(r, "more digits than Python reads", "Quote it")
    assert project.store_entries() == []
