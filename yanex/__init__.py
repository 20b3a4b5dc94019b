"""yanex: run Python scripts as tracked, reproducible experiments.

In a script::

    import yanex
    lr = yanex.get_param("model.lr", 0.001)
    yanex.log_results({"loss": 0.3})

``import yanex`` is paid by every tracked script, so it loads the standard library only.
"""

from __future__ import annotations

from yanex import api
from yanex.api import *  # noqa: F403  (the script API; its names are listed in api.__all__)
from yanex.errors import YanexError as YanexError

__all__ = ["Result", "YanexError", "launch", "results", *api.__all__]

TYPE_CHECKING = False  # typing itself costs more to import than yanex
if TYPE_CHECKING:
    from typing import Any

    from yanex import results
    from yanex.launcher import Result, launch


def __getattr__(name: str) -> Any:
    # The launcher (and what it imports) is loaded only by scripts that launch runs.
    if name in ("launch", "Result"):
        from yanex import launcher

        return getattr(launcher, name)
    if name == "results":  # yanex.results.find(...): the store's experiments, from Python
        from importlib import import_module

        return import_module("yanex.results")
    if name == "__version__":
        from importlib.metadata import version

        return version("yanex")
    raise AttributeError(f"module 'yanex' has no attribute {name!r}")
