"""Building many small objects at once with Python's cyclic garbage collector paused.

Reading 100,000 experiments makes millions of dicts, lists and records, none of them in a
cycle; each batch of allocations sets the collector off to walk every object made so far
(a third of ``find`` + ``to_dataframe``'s time at 100,000). Paused for the build, it runs
again after as it was (a caller who disabled it keeps it disabled).
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic collector off for the ``with`` block (reference counting still frees)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
