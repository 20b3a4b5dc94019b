"""The script API under faults: forks, a disk that fills up, values and names it cannot store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conftest import Project


def strict_lines(folder: Path) -> list[dict[str, Any]]:
    """results.jsonl read as a strict JSON reader reads it: no torn line, no NaN, no duplicates."""

    def refuse_constant(name: str) -> Any:
        raise ValueError(f"not strict JSON: {name}")

    def refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [key for key, _ in pairs]
        assert len(keys) == len(set(keys)), f"duplicate keys: {keys}"
        return dict(pairs)

    text = (folder / "results.jsonl").read_text(encoding="utf-8")
    assert text == "" or text.endswith("\n"), "the last line is torn"
    return [
        json.loads(line, parse_constant=refuse_constant, object_pairs_hook=refuse_duplicates)
        for line in text.splitlines()
    ]


# --- forks and spawned children ---------------------------------------------------------------

FORKS = """
import multiprocessing, os, signal, sys, threading, time
import yanex

def child_logs(who):
    yanex.log_results({"who": who})
    yanex.log_results({"who": who})

def wait_for_child(pid):
    deadline = time.monotonic() + 20  # a hang guard: a deadlocked child never exits
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return "hung"

if __name__ == "__main__":
    stop = threading.Event()

    def parent_thread_logs():
        while not stop.is_set():
            yanex.log_results({"who": "thread", "pad": "x" * 20_000})

    thread = threading.Thread(target=parent_thread_logs)
    thread.start()
    outcomes = []
    for k in range(40):  # forked while the thread logs: often with its lock held
        pid = os.fork()
        if pid == 0:
            child_logs(f"fork{k}")
            os._exit(0)
        outcomes.append(wait_for_child(pid))
        if outcomes[-1] == "hung":
            break
    for method in ("fork", "spawn"):
        proc = multiprocessing.get_context(method).Process(target=child_logs, args=(method,))
        proc.start()
        proc.join(20)  # a hang guard
        if proc.is_alive():
            proc.kill()
            proc.join()
            outcomes.append("hung")
        else:
            outcomes.append(proc.exitcode)
    stop.set()
    thread.join()
    print(outcomes)
"""


def test_forked_and_spawned_children_log_while_a_parent_thread_logs(project: Project) -> None:
    project.write("s.py", FORKS)
    project.commit()
    r = project.yanex("run", "s.py", timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str([0] * 42), "a child hung or failed"
    lines = strict_lines(project.only_experiment())  # every line whole
    children = [f"fork{k}" for k in range(40)] + ["fork", "spawn"]
    for who in children:
        # Each child is a process of its own: its steps start at 0, like a spawned child's.
        assert [line["step"] for line in lines if line["results"]["who"] == who] == [0, 1]
    thread_steps = [line["step"] for line in lines if line["results"]["who"] == "thread"]
    assert thread_steps == list(range(len(thread_steps)))  # the parent's count goes on
