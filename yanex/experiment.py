"""``from yanex import experiment``: the script API under the name early yanex docs used.

``experiment.log_results(...)`` is ``yanex.log_results(...)``; every name of ``yanex`` works
here, yanex 0.6's ones included (loaded when first used, as from ``yanex``).
"""

from __future__ import annotations

from yanex import api
from yanex.api import *  # noqa: F403

__all__ = api.__all__

TYPE_CHECKING = False  # typing itself costs more to import than yanex
if TYPE_CHECKING:
    from typing import Any


def __getattr__(name: str) -> Any:
    import yanex

    return getattr(yanex, name)
