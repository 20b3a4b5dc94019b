"""Where a store's index lives: in the store on a local disk this user may write; else in a
local cache folder (platformdirs), named after the store's path, when the store is on a network
filesystem (NFS, Lustre, GPFS, ...), where SQLite's locking is unreliable, or read-only (a
shared archive, a mounted snapshot). ``YANEX_INDEX`` names the file explicitly.
"""

from __future__ import annotations

import os
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path

from yanex import store

INDEX_ENV = "YANEX_INDEX"
# Filesystems where SQLite's locks (and WAL's shared memory) cannot be trusted.
NETWORK_FILESYSTEMS = frozenset(
    {
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "smbfs",
        "lustre",
        "gpfs",
        "beegfs",
        "ceph",
        "fuse.ceph",
        "glusterfs",
        "fuse.glusterfs",
        "fuse.sshfs",
        "afs",
        "9p",
        "panfs",
        "wekafs",
    }
)


def _mounts() -> list[tuple[str, str]]:
    """``(mount point, filesystem type)`` of this machine's mounts (psutil; [] if unknown)."""
    import psutil

    try:
        return [(part.mountpoint, part.fstype) for part in psutil.disk_partitions(all=True)]
    except (OSError, RuntimeError):
        return []


def filesystem_type(path: Path, mounts: list[tuple[str, str]] | None = None) -> str | None:
    """The type of the filesystem ``path`` is on (``ext4``, ``nfs4``, ...), None if unknown."""
    mounts = _mounts() if mounts is None else mounts
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    resolved = str(probe.resolve())
    best, kind = -1, None
    for point, fstype in mounts:
        inside = resolved == point or resolved.startswith(point.rstrip("/") + "/")
        if inside and len(point) > best:
            best, kind = len(point), fstype
    return kind


def is_network_filesystem(path: Path, mounts: list[tuple[str, str]] | None = None) -> bool:
    return filesystem_type(path, mounts) in NETWORK_FILESYSTEMS


def _writable(folder: Path, file: Path | None = None) -> bool:
    """Could this user create (or write) ``file`` in ``folder`` (made if missing)? False on a
    read-only filesystem too (``access`` says EROFS even to root)."""
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        return True  # not a folder at all: the store's own error says so
    if not os.access(probe, os.W_OK | os.X_OK):
        return False
    return file is None or not file.exists() or os.access(file, os.R_OK | os.W_OK)


def _cache_dirs() -> Iterator[Path]:
    """Local folders for an index kept out of its store: the user's cache folder first."""
    import platformdirs

    yield Path(platformdirs.user_cache_dir("yanex", appauthor=False))
    yield Path("/var/tmp") / f"yanex-{os.getuid()}"
    yield Path(tempfile.gettempdir()) / f"yanex-{os.getuid()}"


def location(
    name: str, home: Path | None = None, mounts: list[tuple[str, str]] | None = None
) -> Path:
    """The index file ``name`` of the store at ``home``: ``$YANEX_INDEX``; else in the store
    when it is on a local disk this user may write; else in the first local cache folder this
    user may write, named after the store's path."""
    explicit = os.environ.get(INDEX_ENV)
    if explicit:
        return Path(explicit).expanduser().absolute()
    home = home or store.yanex_home()
    mounts = _mounts() if mounts is None else mounts
    if not is_network_filesystem(home, mounts) and _writable(home, home / name):
        return home / name
    key = f"{zlib.crc32(os.fsencode(str(home.resolve()))):08x}"
    for folder in _cache_dirs():
        if not is_network_filesystem(folder, mounts) and _writable(folder):
            return folder / f"store-{key}-{name}"
    return home / name  # nowhere local: the store itself, with a rollback journal
