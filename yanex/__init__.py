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


def _standalone_params(environ: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
    """YANEX_PARAM_* typed as under ``yanex run``: the config pipeline (Hydra's grammar,
    OmegaConf), imported only by a standalone script that has such variables."""
    from yanex.config.pipeline import env_params

    return env_params(environ)


api.standalone_params = _standalone_params

# yanex 0.6's names that today's API does not have under another name: loaded with yanex.v06
# the first time one is used (``yanex.run_multiple``), never by ``import yanex``.
V06_NAMES = frozenset(
    {
        "ExperimentContext",
        "ExperimentResult",
        "ExperimentSpec",
        "artifact_exists",
        "assert_dependency",
        "cancel",
        "completed",
        "create_context",
        "create_experiment",
        "execute_bash_script",
        "fail",
        "get_artifacts_dir",
        "get_cli_args",
        "get_dependencies",
        "get_dependency",
        "get_graph",
        "get_metadata",
        "get_status",
        "has_context",
        "list_artifacts",
        "register_format",
        "run_multiple",
    }
)

__all__ = [
    "Experiment",
    "Result",
    "YanexError",
    "launch",
    "results",
    *api.__all__,
    *sorted(V06_NAMES),
]

TYPE_CHECKING = False  # typing itself costs more to import than yanex
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from yanex import results
    from yanex.launching import Result, launch
    from yanex.results import Experiment
    from yanex.v06 import *  # noqa: F403


def __getattr__(name: str) -> Any:
    # The launcher (and what it imports) is loaded only by scripts that launch runs.
    if name in ("launch", "Result"):
        from yanex import launching

        return getattr(launching, name)
    if name in V06_NAMES:
        from yanex import v06

        return getattr(v06, name)
    if name == "Experiment":  # yanex 0.6's results object: yanex.Experiment("3f9a")
        from yanex.results import Experiment

        return Experiment
    if name == "results":  # yanex.results.find(...): the store's experiments, from Python
        from importlib import import_module

        return import_module("yanex.results")
    if name == "__version__":
        from importlib.metadata import version

        return version("yanex")
    raise AttributeError(f"module 'yanex' has no attribute {name!r}")
