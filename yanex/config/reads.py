"""Which keys a script reads: its ``get_param("key", ...)`` calls, read from its source, and the
guard built on them. With no config found, the script's own defaults are the whole config, so
``key=value`` must name a key the script reads: a typo (``lrr=0.1``) is refused, not run.
"""

from __future__ import annotations

from pathlib import Path

from yanex.config.overrides import ParamOverride, suggest
from yanex.errors import ParamError

_NO_CONFIG_HINT = (
    "yanex looks for a conf/ folder, then config.yaml, next to the script and in the current "
    "folder; run from the project's folder, or give --config-dir DIR or --config FILE."
)
_GET_PARAM = ("get_param", "get_params")


def script_reads(script: Path) -> set[str] | None:
    """The keys a script reads with ``get_param("key", ...)`` (its own defaults, read from
    its source), or None when it may read any key: ``get_params()``, a computed key, or no
    such call at all (it may read them in a module of its own)."""
    import ast

    try:
        tree = ast.parse(script.read_bytes(), filename=str(script))
    except (OSError, SyntaxError, ValueError):
        return None
    keys: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name not in _GET_PARAM:
            continue
        first = node.args[0] if node.args else None
        if name == "get_params" or not (
            isinstance(first, ast.Constant) and isinstance(first.value, str)
        ):
            return None
        keys.add(first.value)
    return keys or None


def check_script_reads(script: Path, overrides: list[ParamOverride]) -> None:
    """With no config found, the script's own defaults are the whole config: ``key=value``
    must name a key the script reads (``+key=value`` adds one anyway). A script that reads
    all its parameters (``get_params()``) or computes a key takes any key."""
    reads = script_reads(script)
    if reads is None:
        return
    nodes = {key.rsplit(".", i)[0] for key in reads for i in range(1, key.count(".") + 1)}
    for ov in overrides:
        if ov.op != "set" or ov.key in reads or any(ov.key.startswith(f"{k}.") for k in reads):
            continue
        values = ov.sweep.values if ov.sweep is not None else (ov.value,)
        if ov.key in nodes and all(isinstance(value, dict) for value in values):
            continue
        if ov.key in nodes:
            example = next(key for key in sorted(reads) if key.startswith(f"{ov.key}."))
            raise ParamError(
                f"{ov.shown}: {script.name} reads {example}, so '{ov.key}' holds parameters, "
                "not one value, and no config was found to choose it from",
                hint=_NO_CONFIG_HINT,
            )
        raise ParamError(
            f"{ov.shown}: no config was found, and {script.name} does not read "
            f"'{ov.key}'{suggest(ov.key, sorted(reads))}",
            hint=f"To add it anyway, write +{ov.text}. {_NO_CONFIG_HINT}",
        )
