"""Building many small objects at once with Python's cyclic garbage collector paused.

Reading 100,000 experiments makes millions of dicts, lists and records, none of them in a
cycle; each batch of allocations sets the collector off to walk every object made so far
(a third of ``find`` + ``to_dataframe``'s time at 100,000). Paused for the build, it runs
again after as it was (a caller who disabled it keeps it disabled).
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

_lock = threading.Lock()
_pausing = 0  # blocks inside gc_paused, in every thread
_was_enabled = False  # the collector's state when the first of them began


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic collector off for the ``with`` block (reference counting still frees). The
    dashboard's threads overlap: the last block to end puts back the state the first found."""
    global _pausing, _was_enabled
    with _lock:
        if _pausing == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _pausing += 1
    try:
        yield
    finally:
        with _lock:
            _pausing -= 1
            if _pausing == 0 and _was_enabled:
                gc.enable()
