"""Claims on staged experiments: who may start one, as a lease that holds across hosts.

A runner takes an experiment before starting it by creating its ``claim.json`` (an atomic
create: of two runners, one gets it). The claim names its holder (host, pid, the process's
start time) and is renewed while the holder waits to start it. A claim whose holder is gone
can be taken over:

- on the same host, when the process no longer exists, or the pid now belongs to another
  process (its start time differs);
- from another host, when the lease has not been renewed for :func:`lease_seconds` (300 s
  by default, ``YANEX_CLAIM_LEASE``); a holder renews it every third of that. Until then,
  :func:`describe` says who holds it and when it expires.

A takeover is race-free: the claim has a generation, and taking over generation ``g`` means
creating the marker ``.claim-g+1`` first, which only one runner can do.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from yanex import store
from yanex.display import local_time
from yanex.identity import ProcessId

LEASE_ENV = "YANEX_CLAIM_LEASE"
DEFAULT_LEASE = 300.0  # seconds a claim holds without renewal, for other hosts
_MARKER = ".claim-generation-"


def lease_seconds() -> float:
    """How long a claim holds for other hosts without renewal (``YANEX_CLAIM_LEASE``)."""
    return store.env_number(LEASE_ENV, DEFAULT_LEASE, 1.0)


def renewal_seconds() -> float:
    """How often a holder renews its claims: three times per lease."""
    return lease_seconds() / 3


@dataclass(frozen=True)
class Claim:
    """One runner's hold on one staged experiment."""

    token: str  # unique to this claim: the holder checks it before starting the experiment
    host: str
    pid: int
    started: float | None  # the holder process's start time (see identity)
    generation: int
    renewed: float  # seconds since the epoch, as the holder's clock says

    @classmethod
    def new(cls, generation: int = 0) -> Claim:
        me = ProcessId.current()
        return cls(
            token=os.urandom(8).hex(),
            host=me.host,
            pid=me.pid,
            started=me.started,
            generation=generation,
            renewed=time.time(),
        )

    @property
    def holder(self) -> ProcessId:
        return ProcessId(self.host, self.pid, self.started)

    def is_stale(self, lease: float | None = None) -> bool:
        """Is the holder gone (same host), or its lease expired (another host)?"""
        if self.holder.is_here():
            return self.holder.is_gone()
        return time.time() - self.renewed > (lease if lease is not None else lease_seconds())


def describe(claim: Claim) -> str:
    """Who holds ``claim``, and, for another host's, when it can be taken over: a runner on
    another host cannot be asked whether it still runs, so its claim holds until its lease
    runs out (a runner whose machine died included)."""
    if claim.holder.is_here():
        return f"another runner holds it (pid {claim.pid} on this host, running)"
    lease = lease_seconds()
    ago = max(0.0, time.time() - claim.renewed)
    expires = claim.renewed + lease
    at = local_time(expires, date=False)
    return (
        f"a runner on {claim.host} (pid {claim.pid}) holds it, its claim last renewed "
        f"{ago:.0f} s ago (every {renewal_seconds():g} s while it holds it); if that runner "
        f"is gone, the claim expires at {at} (in {max(0.0, expires - time.time()):.0f} s; "
        f"{LEASE_ENV}={lease:g} s) and the next `yanex run --staged` takes it over"
    )


class BadClaim(Exception):
    """A ``claim.json`` that is not a file (a FIFO, a device, a folder): never opened, never
    taken; the member cannot be run until it is removed."""


# What a claim file may hold at most (a claim is a hundred bytes or so).
_MAX_CLAIM_BYTES = 65536


def _read_claim_file(path: Path) -> bytes:
    """The bytes of a claim file, never opening what is not a regular file (a FIFO would
    block, deaf to signals). FileNotFoundError when there is none."""
    kind = _not_a_file(os.lstat(path).st_mode)
    if kind is None:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_NOFOLLOW", 0))
        try:
            info = os.fstat(fd)  # what was opened: it may have been swapped since the lstat
            kind = _not_a_file(info.st_mode)
            if kind is None:
                return os.read(fd, _MAX_CLAIM_BYTES)
        finally:
            os.close(fd)
    raise BadClaim(f"its {store.CLAIM} is {kind}, not a file (remove it to run the member)")


def _not_a_file(mode: int) -> str | None:
    if stat.S_ISREG(mode):
        return None
    for test, kind in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return kind
    return "not a regular file"


def read(folder: Path) -> Claim | None:
    """The experiment's claim; None when there is none, or it is being written. BadClaim when
    ``claim.json`` is not a file."""
    try:
        data: Any = json.loads(_read_claim_file(folder / store.CLAIM))
        return Claim(**{k: data[k] for k in Claim.__dataclass_fields__})
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_new(folder: Path, claim: Claim) -> bool:
    """Create claim.json holding ``claim`` whole, only if there is none (link is atomic)."""
    tmp = folder / f".claim-new-{claim.token}"
    store.write_bytes_atomic(tmp, json.dumps(asdict(claim)).encode(), durable=False)
    try:
        os.link(tmp, folder / store.CLAIM)
        return True
    except FileExistsError:
        return False
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def take(folder: Path) -> Claim | None:
    """Claim the experiment for this process; None when a live holder has it (or another
    runner took over the same stale claim first). BadClaim: its claim.json is not a file."""
    claim = Claim.new()
    if _write_new(folder, claim):
        return claim
    held = read(folder)
    if held is None or not held.is_stale():
        return None
    generation = held.generation + 1
    try:  # only one runner creates the marker of the next generation
        fd = os.open(folder / f"{_MARKER}{generation}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return None
    os.close(fd)
    claim = Claim.new(generation)
    store.write_json_atomic(folder / store.CLAIM, asdict(claim), durable=False)
    return claim


def renew(folder: Path, claim: Claim) -> Claim | None:
    """Renew a held claim's lease; None when it is no longer this claim (taken over)."""
    held = _read_quietly(folder)
    if held is None or held.token != claim.token:
        return None
    renewed = Claim(**{**asdict(claim), "renewed": time.time()})
    store.write_json_atomic(folder / store.CLAIM, asdict(renewed), durable=False)
    return renewed


def _read_quietly(folder: Path) -> Claim | None:
    try:
        return read(folder)
    except BadClaim:
        return None


def holds(folder: Path, token: str) -> bool:
    held = _read_quietly(folder)
    return held is not None and held.token == token


def release(folder: Path, claim: Claim | None = None) -> None:
    """Give the claim back (``claim``: only if it is still this one), with its markers."""
    if claim is not None and not holds(folder, claim.token):
        return
    with contextlib.suppress(FileNotFoundError):
        (folder / store.CLAIM).unlink()
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            if entry.name.startswith(_MARKER):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
