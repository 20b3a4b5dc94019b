"""Every way a run can end is recorded truthfully; concurrency and faults lose nothing."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import time

import pytest
from conftest import Project, assert_usage_error, imported_modules, metadata, process_gone

from yanex.code.secrets import find_secrets

SLEEPER = """
import os, time
open("pid.txt", "w").write(str(os.getpid()))
print("ready", flush=True)
time.sleep(60)
"""


def wait_for(predicate, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_a_killed_launcher_leaves_no_orphan_and_is_recorded_failed(project: Project) -> None:
    project.write("sleepy.py", SLEEPER)
    project.commit()
    launcher = project.popen("run", "sleepy.py", stdin=subprocess.DEVNULL, start_new_session=True)
    assert launcher.stdout is not None and launcher.stdout.readline() == b"ready\n"
    script_pid = int((project.path / "pid.txt").read_text())
    launcher.send_signal(signal.SIGKILL)
    launcher.wait(timeout=30)
    assert wait_for(lambda: process_gone(script_pid)), "the script lived on as an orphan"
    folder = project.only_experiment()
    assert metadata(folder)["status"] == "running"  # nobody could record the end yet

    r = project.yanex("run", "--staged")  # the next command that reads the store
    assert r.returncode == 0, r.stderr
    meta = metadata(folder)
    assert meta["status"] == "failed" and meta["error"].startswith("launcher died")
    assert meta["ended_at"] is not None
    assert "recorded as failed" in r.stderr


def test_a_live_launcher_is_not_reaped(project: Project) -> None:
    project.write("sleepy.py", SLEEPER)
    project.commit()
    launcher = project.popen("run", "sleepy.py", stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        assert launcher.stdout is not None and launcher.stdout.readline() == b"ready\n"
        assert project.yanex("run", "--staged").returncode == 0
        assert metadata(project.only_experiment())["status"] == "running"
    finally:
        launcher.send_signal(signal.SIGTERM)
        launcher.communicate(timeout=30)
    assert metadata(project.only_experiment())["status"] == "cancelled"


def test_a_run_records_its_launchers_start_time_without_importing_psutil(
    project: Project,
) -> None:
    """The launcher's start time (what tells its pid from a reused one) is read as psutil
    reads it, but a run's start does not import psutil: its import costs more than that."""
    import psutil

    from yanex import identity

    assert identity._own_start_time() == round(psutil.Process().create_time(), 2)
    project.write("t.py", "print('ok')\n")
    project.commit()
    modules, r = imported_modules(project, "run", "t.py")
    assert r.returncode == 0, r.stderr
    assert "psutil" not in modules
    started = metadata(project.only_experiment())["launcher"]["started"]
    assert isinstance(started, float) and abs(started - time.time()) < 120


def test_a_launcher_whose_pid_another_process_took_is_reaped(project: Project) -> None:
    """The launcher died and its pid now names another live process: the run is recorded
    failed by the next reader (the pid's start time differs), and can then be deleted."""
    import psutil

    project.write("sleepy.py", SLEEPER)
    project.commit()
    launcher = project.popen("run", "sleepy.py", stdin=subprocess.DEVNULL, start_new_session=True)
    assert launcher.stdout is not None and launcher.stdout.readline() == b"ready\n"
    launcher.send_signal(signal.SIGKILL)
    launcher.wait(timeout=30)
    folder = project.only_experiment()
    meta = metadata(folder)
    assert meta["launcher"]["started"] is not None
    # This test's own process, alive and started well before the launcher, takes its pid.
    other = os.getpid()
    assert psutil.Process(other).create_time() < meta["launcher"]["started"] - 1
    meta["launcher"]["pid"] = other
    (folder / "metadata.json").write_text(json.dumps(meta))

    r = project.yanex("list", "--all")
    assert r.returncode == 0, r.stderr
    meta = metadata(folder)
    assert meta["status"] == "failed" and meta["error"].startswith("launcher died"), r.stderr
    assert project.yanex("delete", folder.name, "--yes").returncode == 0
    assert not folder.exists()


@pytest.mark.slow
def test_eight_runs_started_at_once(project: Project) -> None:
    project.write("quick.py", "import yanex\nyanex.log_results({'ok': True})\n")
    project.commit()
    procs = [project.popen("run", "quick.py", stdin=subprocess.DEVNULL) for _ in range(8)]
    for proc in procs:
        proc.communicate(timeout=120)
        assert proc.returncode == 0
    folders = project.experiments()
    assert len(folders) == 8 and len({f.name for f in folders}) == 8
    assert {metadata(f)["status"] for f in folders} == {"completed"}


def test_four_processes_log_fifty_results_each(project: Project) -> None:
    project.write(
        "many.py",
        """
        import multiprocessing, yanex

        def work(worker):
            for i in range(50):
                yanex.log_results({"worker": worker, "i": i})

        if __name__ == "__main__":
            procs = [multiprocessing.Process(target=work, args=(w,)) for w in range(4)]
            for p in procs:
                p.start()
            for p in procs:
                p.join()
        """,
    )
    project.commit()
    assert project.yanex("run", "many.py").returncode == 0
    import json

    lines = (project.only_experiment() / "results.jsonl").read_text().splitlines()
    assert len(lines) == 200
    pairs = {(json.loads(x)["results"]["worker"], json.loads(x)["results"]["i"]) for x in lines}
    assert len(pairs) == 200


def limited_files(max_bytes: int):
    """What a full disk looks like to a process: writes past ``max_bytes`` fail (EFBIG)."""

    def setup() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))

    return setup


def test_a_full_disk_at_creation_leaves_no_half_experiment(project: Project) -> None:
    project.write("s.py", "print('ran')\n")
    project.commit()
    assert project.yanex("run", "s.py").returncode == 0
    (first,) = project.experiments()
    before = {p.name: p.read_bytes() for p in first.iterdir() if p.is_file()}
    r = project.yanex("run", "s.py", preexec_fn=limited_files(1000))  # metadata.json is larger
    assert_usage_error(r, "cannot write experiment")
    assert "ran" not in r.stdout
    assert project.experiments() == [first]  # no half-written experiment
    assert {p.name: p.read_bytes() for p in first.iterdir() if p.is_file()} == before


def test_a_full_disk_during_the_run_is_reported_and_the_run_recorded(project: Project) -> None:
    project.write("loud.py", "print('x' * 200_000)\n")
    project.commit()
    r = project.yanex("run", "loud.py", preexec_fn=limited_files(100_000))  # too much for a log
    assert r.returncode == 0
    assert len(r.stdout) == 200_001  # the terminal still got everything
    meta = metadata(project.only_experiment())
    assert meta["status"] == "completed"
    assert meta["warnings"] == ["stdout.txt is incomplete: File too large"]
    assert "stdout.txt is incomplete" in r.stderr


def added(path: str, line: str) -> bytes:
    """A patch that adds ``line`` to ``path`` as its line 2."""
    return (
        f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n@@ -1,2 +1,3 @@\n"
        f" x = 1\n+{line}\n y = 2\n"
    ).encode()


@pytest.mark.parametrize(
    ("line", "what"),
    [
        ("-----BEGIN OPENSSH PRIVATE KEY-----", "a private key"),
        ("-----BEGIN RSA PRIVATE KEY-----", "a private key"),
        ("aws_key = AKIAABCDEFGHIJKLMNOP", "an AWS key"),
        ("token: ghp_" + "a" * 36, "a GitHub token"),
        ("GITLAB=glpat-abcdefghijklmnopqrst", "a GitLab token"),
        ('API_KEY = "sk-live-1234567890"', "a password, token or key"),
        ("password: 'hunter2hunter2'", "a password, token or key"),
    ],
)
def test_secret_patterns(line: str, what: str) -> None:
    assert find_secrets(added("cfg.py", line)) == [("cfg.py", 2, what)]


@pytest.mark.parametrize(
    ("path", "line"),
    [
        ("train.py", "lr = 0.01"),
        ("train.py", "token_count = 5"),
        ("train.py", "token_count = len(tokens)"),
        ("train.py", "token = tokenizer.eos_token"),
        ("train.py", "# fixed in 4b825dc642cb6eb9a060e54bf8d69288fbee4904"),
        ("train.py", 'commit = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"'),
        ("train.py", 'api_key = os.environ["OPENAI_API_KEY"]'),
        ("train.py", "password = getpass.getpass()"),
        ("conf/config.yaml", "max_tokens: 4096"),
        ("conf/config.yaml", "tokenizer: bert-base-uncased"),
        ("conf/config.yaml", "use_secret_manager: false"),
        ("conf/config.yaml", "api_key: ${oc.env:OPENAI_API_KEY}"),
        ("run.sh", "export TOKENIZERS_PARALLELISM=false"),
        ("run.sh", "export API_KEY=$VAULT_API_KEY"),
        ("run.sh", "export HF_TOKEN=$(cat ~/.hf_token)"),
    ],
)
def test_ordinary_changes_are_not_secrets(path: str, line: str) -> None:
    assert find_secrets(added(path, line)) == []


def test_only_added_lines_are_scanned() -> None:
    patch = b"+++ b/cfg.py\n@@ -1,2 +1,1 @@\n x = 1\n-password = 'hunter2hunter2'\n"
    assert find_secrets(patch) == []


def test_the_scan_leaves_detect_secrets_as_it_found_it() -> None:
    """yanex.launch scans in the caller's process, which may use detect-secrets itself."""
    from detect_secrets.settings import default_settings, get_settings

    before = get_settings().json()
    token = "hf_" + "AbCdEfGhIjKlMnOpQrStUvWxYzAbCdEfGh"
    assert find_secrets(added(".env", f"HF_TOKEN={token}")) == [(".env", 2, "a Hugging Face token")]
    assert get_settings().json() == before
    with default_settings() as settings:  # every plugin detect-secrets knows
        assert "KeywordDetector" in settings.plugins
        assert "HuggingFaceTokenDetector" not in settings.plugins


def test_a_secret_in_the_patch_is_warned_about_with_file_and_line(project: Project) -> None:
    project.write("s.py", "print('ran')\n")
    project.write("settings.py", "DEBUG = True\n")
    project.commit()
    project.write("settings.py", "DEBUG = True\nAWS = 'AKIAABCDEFGHIJKLMNOP'\n")
    r = project.yanex("run", "s.py", "--ignore-dirty")
    assert r.returncode == 0
    assert "settings.py:2 may hold an AWS key" in r.stderr


OPENAI_KEY = "sk-proj-" + "Ab3dEf6hIj9kLm2nOp5r" + "T3BlbkFJ" + "Zy8xWv5uTs2rQp9oNm6l"


@pytest.mark.parametrize(
    ("path", "line", "what"),
    [
        (".env", f"OPENAI_API_KEY={OPENAI_KEY}", "an OpenAI API key"),
        ("deploy.sh", "export API_KEY=9f8e7d6c5b4a39281706", "a password, token or key"),
        (
            ".env",
            "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "a password, token or key",
        ),
        (
            "aws/credentials",
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "a password, token or key",
        ),
        (
            "settings.py",
            'DATABASE_URL = "postgres://alice:s3cretpw@db.example.com:5432/app"',
            "a password in a URL",
        ),
        (".env", "HF_TOKEN=hf_" + "AbCdEfGhIjKlMnOpQrStUvWxYzAbCdEfGh", "a Hugging Face token"),
        ("conf/db.yaml", "secret: s3cr3t-v4lue", "a password, token or key"),
    ],
)
def test_common_secret_forms_are_warned_about(
    project: Project, path: str, line: str, what: str
) -> None:
    project.write("s.py", "print('ran')\n")
    project.write(path, "# settings\n")
    project.commit()
    project.write(path, f"# settings\n{line}\n")
    r = project.yanex("run", "s.py", "--ignore-dirty")
    assert r.returncode == 0, r.stderr
    assert f"warning: {path}:2 may hold {what};" in r.stderr
    assert r.stderr.count("may hold") == 1  # once, though more than one detector may see it


def test_the_warning_names_the_file_as_in_the_repository(project: Project) -> None:
    """git quotes non-ASCII names and ends names holding a space with a tab; an added line
    that reads ``++ x`` is ``+++ x`` in the patch, which is not the next file's header."""
    project.write("s.py", "print('ran')\n")
    project.write("données/my settings.py", "DEBUG = True\n")
    project.commit()
    project.write(
        "données/my settings.py", "DEBUG = True\n++ not a header\nAWS = 'AKIAABCDEFGHIJKLMNOP'\n"
    )
    r = project.yanex("run", "s.py", "--ignore-dirty")
    assert r.returncode == 0, r.stderr
    assert "warning: données/my settings.py:3 may hold an AWS" in r.stderr
