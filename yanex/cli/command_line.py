"""Reading a ``yanex run`` command line as click will: which arguments are overrides, which
are ``-D`` values, and which are the script's own.

``yanex run`` and shell completion read a line the same way, both through this module.
"""

from __future__ import annotations

import re

import click

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
