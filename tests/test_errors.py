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
