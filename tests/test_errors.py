"""One error hierarchy: every error a user can cause is a YanexError defined in errors.py."""

from __future__ import annotations

import importlib
import pkgutil

import yanex
from yanex.errors import YanexError


def _all_subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub, *_all_subclasses(sub)}
    return found


def test_every_yanex_error_is_defined_in_errors_py() -> None:
    for module in pkgutil.walk_packages(yanex.__path__, "yanex."):
        if module.name != "yanex.__main__":
            importlib.import_module(module.name)
    elsewhere = {
        f"{cls.__module__}.{cls.__qualname__}"
        for cls in _all_subclasses(YanexError)
        if cls.__module__.startswith("yanex.") and cls.__module__ != "yanex.errors"
    }
    assert not elsewhere, "define these in yanex/errors.py"


def test_an_ending_that_cannot_be_recorded_is_logged_not_printed(tmp_path, caplog) -> None:
    """The launcher is library code: what it cannot record goes to logging (which, with no
    logging set up, Python writes to stderr as is), so a program embedding yanex decides."""
    import logging
    import subprocess
    import sys
    import time

    from yanex.ending import Ending
    from yanex.launcher import Experiment, _finish

    gone = Experiment("abcd1234", tmp_path / "gone" / "abcd1234", {})
    with caplog.at_level(logging.ERROR, logger="yanex.launcher"):
        end = _finish(gone, Ending("abcd1234", "completed", 0), time.monotonic())
    assert end.status == "completed"
    assert [r.getMessage() for r in caplog.records] == [
        "yanex: error: cannot record that experiment abcd1234 completed: No such file or directory"
    ]
    code = (
        "import pathlib, time; from yanex.ending import Ending; "
        "from yanex.launcher import Experiment, _finish; "
        f"_finish(Experiment('abcd1234', pathlib.Path({str(gone.dir)!r}), {{}}), "
        "Ending('abcd1234', 'failed', 1), time.monotonic())"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout == ""
    assert (
        r.stderr == "yanex: error: cannot record that experiment abcd1234 failed: "
        "No such file or directory\n"
    )
