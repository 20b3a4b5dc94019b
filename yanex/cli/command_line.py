"""A ``yanex run`` command line: read as click will (which arguments are overrides, which are
``-D`` values, which are the script's own), and rebuilt from an experiment's record.

``yanex run`` and shell completion read a line the same way, both through this module;
``yanex get command`` and ``show`` print the line that runs an experiment again.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from yanex.record import Record

# An argument that reads as a Hydra override: `model=linear`, `+seed=3`, `~data.noise`,
# `db@backup=mysql`, `model/encoder=small`. Any other argument stays the script's.
_OVERRIDE = re.compile(
    r"^(?:~|\+\+|\+)?[A-Za-z_$][\w$\-]*(?:[./](?:[A-Za-z_$][\w$\-]*|\d+))*"
    r"(?:@[\w$\-.:]*)?(?:=|$)"
)


def is_override(arg: str) -> bool:
    """Does a positional argument read as an override (``~key`` alone only with its ``~``)?"""
    return bool(_OVERRIDE.match(arg)) and ("=" in arg or arg.startswith("~"))


def scan_args(command: click.Command, args: list[str]) -> tuple[list[tuple[str, str]], int | None]:
    """Read ``args`` as click will: ``("param", text)`` for each ``--param``, ``("dep",
    text)`` for each ``-D``, ``("arg", text)`` for each positional argument, ``("flag",
    text)`` for an option yanex does not have (the script's), in order, and where ``--`` ends
    the options."""
    takes_value: dict[str, str] = {}
    known = {"-h", "--help"}
    for param in command.params:
        if isinstance(param, click.Option):
            known.update([*param.opts, *param.secondary_opts])
        if isinstance(param, click.Option) and not param.is_flag and not param.count:
            for opt in [*param.opts, *param.secondary_opts]:
                takes_value[opt] = param.name or ""
    items: list[tuple[str, str]] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            return items, i
        step, value, name = 1, None, ""
        if arg.startswith("--"):
            option, eq, attached = arg.partition("=")
            if option in takes_value:
                name = takes_value[option]
                value, step = (attached, 1) if eq else (_at(args, i + 1), 2)
            elif option not in known:
                items.append(("flag", arg))
        elif arg.startswith("-") and len(arg) > 1:
            for j in range(1, len(arg)):
                if f"-{arg[j]}" in takes_value:
                    name = takes_value[f"-{arg[j]}"]
                    rest = arg[j + 1 :]
                    value, step = (rest, 1) if rest else (_at(args, i + 1), 2)
                    break
                if f"-{arg[j]}" not in known:
                    items.append(("flag", arg))
                    break
        else:
            items.append(("arg", arg))
        if name == "params" and value is not None:
            items.append(("param", value))
        if name == "depends_on" and value is not None:
            items.append(("dep", value))
        i += step
    return items, None


def _at(args: list[str], index: int) -> str | None:
    return args[index] if index < len(args) else None


def run_command(rec: Record) -> str:
    """The ``yanex run`` command line that rebuilds this experiment (run from its folder)."""
    import shlex

    meta = rec.metadata
    cwd = Path(meta.get("cwd") or ".")
    script = Path(meta.get("script") or "")
    try:
        script_text = str(script.relative_to(cwd))
    except ValueError:
        script_text = str(script)
    argv = ["yanex", "run", script_text]
    config_file = meta.get("config_file")
    files = config_file if isinstance(config_file, list) else [config_file] if config_file else []
    defaults = (cwd / "config.yaml", script.parent / "config.yaml")
    if files and (len(files) > 1 or Path(files[0]) not in defaults):
        for path in files:  # several --config files are merged in order
            argv += ["-c", path]
    hydra = meta.get("hydra") or {}
    app = hydra.get("app") or {}
    found = [cwd / "conf", script.parent / "conf"]  # where yanex looks, or the app's own
    if app.get("config_path") is not None:
        found.append((script.parent / app["config_path"]).resolve())
    if hydra.get("config_dir") and Path(hydra["config_dir"]) not in found:
        argv += ["--config-dir", hydra["config_dir"]]
    if hydra.get("config_name") and hydra["config_name"] != "config":
        argv += ["--config-name", hydra["config_name"]]
    for text in meta.get("overrides") or []:
        argv += ["-p", text]
    for slot, eid in (meta.get("dependencies") or {}).items():
        argv += ["-D", f"{slot}={eid}"]
    if meta.get("name"):
        argv += ["-n", meta["name"]]
    if meta.get("description"):
        argv += ["-d", meta["description"]]
    for tag in meta.get("tags") or []:
        argv += ["-t", tag]
    if meta.get("args"):
        argv += ["--", *meta["args"]]
    return " ".join(shlex.quote(str(arg)) for arg in argv)


def cli_command(rec: Record) -> str:
    """The command line as it was typed (``cli_args`` in the metadata: sweeps as given),
    else the one that rebuilds the run (:func:`run_command`)."""
    import shlex

    given = rec.metadata.get("cli_args")
    if not isinstance(given, dict) or not given.get("script"):
        return run_command(rec)
    argv = ["yanex", "run", str(given["script"])]
    for flag, key in (("-c", "config"), ("-p", "param"), ("-D", "depends_on")):
        for value in given.get(key) or []:
            argv += [flag, str(value)]
    for flag, key in (("-n", "name"), ("-d", "description"), ("--clone-from", "clone_from")):
        if given.get(key) is not None:
            argv += [flag, str(given[key])]
    for tag in given.get("tag") or []:
        argv += ["-t", str(tag)]
    meta = rec.metadata
    if meta.get("sweep") and not given.get("stage") and given.get("parallel") is None:
        argv.append("-m")  # a member of a grid run at once
    if given.get("parallel") is not None:
        argv += ["-j", str(given["parallel"])]
    if given.get("stage"):
        argv.append("--stage")
    if meta.get("args"):
        argv += ["--", *map(str, meta["args"])]
    return " ".join(shlex.quote(arg) for arg in argv)
