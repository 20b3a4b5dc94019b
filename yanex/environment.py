"""The software environment a run used: Python, platform, host and installed package versions.

Listing installed distributions takes a few hundred milliseconds on a large environment, and
every run pays for it, so the list is cached per interpreter and refreshed whenever a
site-packages folder changes (installing or removing a package changes its mtime).
"""

from __future__ import annotations

import os
import sys
import zlib
from pathlib import Path
from typing import Any

from yanex import store


def _package_dirs() -> list[str]:
    return [p for p in sys.path if p and ("site-packages" in p or "dist-packages" in p)]


def _cache_key() -> str:
    """Changes when the interpreter or any site-packages folder changes (crc32: hashlib's
    OpenSSL costs more to import than this whole lookup)."""
    parts = [sys.executable]
    for folder in _package_dirs():
        try:
            parts.append(f"{folder}:{os.stat(folder).st_mtime_ns}")
        except OSError:
            parts.append(f"{folder}:-")
    key = os.fsencode("\n".join(parts))
    return f"{zlib.crc32(key):08x}"


def _scan_packages() -> dict[str, str]:
    from importlib.metadata import distributions

    found: dict[str, str] = {}
    for dist in distributions():
        name = dist.metadata["Name"]
        if name and name not in found:  # the first on sys.path is the one imported
            found[name] = dist.version
    return dict(sorted(found.items(), key=lambda kv: kv[0].lower()))


def installed_packages(cache_dir: Path) -> dict[str, str]:
    """``{name: version}`` of the distributions this interpreter sees, from the cache if fresh."""
    cache = cache_dir / f"packages-{_cache_key()}.json"
    try:
        return store.read_json(cache)
    except (OSError, ValueError):
        pass
    packages = _scan_packages()
    try:
        cache_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        store.write_json_atomic(cache, packages)
    except OSError:
        pass  # a cache that cannot be written only costs time
    return packages


_IMPLEMENTATIONS = {"cpython": "CPython", "pypy": "PyPy", "ironpython": "IronPython"}


def snapshot(cache_dir: Path) -> dict[str, Any]:
    uname = os.uname()  # platform.uname() would also probe the processor; this is enough
    return {
        "python": {
            # What platform.python_version() and python_implementation() say, without
            # importing platform on every run.
            "version": sys.version.split()[0],
            "implementation": _IMPLEMENTATIONS.get(
                sys.implementation.name, sys.implementation.name
            ),
            "executable": sys.executable,
        },
        "platform": f"{uname.sysname}-{uname.release}-{uname.machine}",
        "hostname": uname.nodename,
        "packages": installed_packages(cache_dir),
    }
