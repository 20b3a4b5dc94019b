"""Shell completion, as Hydra's ``--shell-completion`` gives it: besides commands and options
(click's own completion), overrides complete the config's keys (``model.<TAB>``) and each
config group's options (``model=<TAB>``), from the same config ``yanex run`` would compose.

Set up once in the shell's start-up file:

    eval "$(_YANEX_COMPLETE=bash_source yanex)"      # ~/.bashrc
    eval "$(_YANEX_COMPLETE=zsh_source yanex)"       # ~/.zshrc
    _YANEX_COMPLETE=fish_source yanex | source       # ~/.config/fish/completions/yanex.fish

Bash splits a word at ``=`` and ``:`` before completing it; click's bash script would then
see ``model``, ``=``, ``po`` for ``model=po``. The bash script here hands yanex the line
itself, offers each completion relative to bash's word, and adds no space after a key
(``model.lr=``) so that its value can follow.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click
from click.shell_completion import BashComplete, CompletionItem, split_arg_string

_SOURCE_BASH = """\
%(complete_func)s() {
    local IFS=$'\\n'
    local response

    response=$(env COMP_WORDS="${COMP_WORDS[*]}" COMP_CWORD=$COMP_CWORD \
YANEX_COMP_LINE="${COMP_LINE:0:$COMP_POINT}" YANEX_COMP_CUR="${COMP_WORDS[COMP_CWORD]}" \
%(complete_var)s=bash_complete $1)

    for completion in $response; do
        IFS=',' read type value <<< "$completion"

        if [[ $type == 'dir' ]]; then
            COMPREPLY=()
            compopt -o dirnames
        elif [[ $type == 'file' ]]; then
            COMPREPLY=()
            compopt -o default
        elif [[ $type == 'plain' ]]; then
            COMPREPLY+=($value)
            if [[ $value == *= || $value == *. ]]; then
                compopt -o nospace
            fi
        fi
    done

    return 0
}

%(complete_func)s_setup() {
    complete -o nosort -F %(complete_func)s %(prog_name)s
}

%(complete_func)s_setup;
"""


class OverrideBash(BashComplete):
    """Bash completion that reads the line as the user typed it (``model=po`` is one word)."""

    source_template = _SOURCE_BASH

    def get_completion_args(self) -> tuple[list[str], str]:
        line = os.environ.get("YANEX_COMP_LINE")
        if line is None:  # a script sourced before yanex had its own
            return super().get_completion_args()
        words = split_arg_string(line)
        if not line or line[-1].isspace():
            return words[1:], ""
        return words[1:-1], words[-1] if words else ""

    def format_completion(self, item: CompletionItem) -> str:
        value = str(item.value)
        typed = self._typed()
        current = os.environ.get("YANEX_COMP_CUR", typed)
        if item.type == "plain" and typed.endswith(current) and value.startswith(typed):
            value = value[len(typed) - len(current) :]  # bash replaces only its own word
        return f"{item.type},{value}"

    def _typed(self) -> str:
        line = os.environ.get("YANEX_COMP_LINE", "")
        words = split_arg_string(line) if line else []
        return "" if not words or line[-1].isspace() else words[-1]


def register() -> None:
    """Use this bash completion for yanex (zsh and fish keep click's: they do not split)."""
    from click.shell_completion import add_completion_class

    add_completion_class(OverrideBash, "bash")


def _script_typed(command: click.Command) -> str | None:
    """SCRIPT as typed on the line being completed (click leaves it unparsed when the line
    ends in an option that waits for its value, ``-p <TAB>``)."""
    from yanex.cli.command_line import scan_args

    line = os.environ.get("YANEX_COMP_LINE") or os.environ.get("COMP_WORDS", "")
    words = split_arg_string(line)
    if command.name not in words:
        return None
    items, _ = scan_args(command, words[words.index(command.name) + 1 : -1])
    return next((text for kind, text in items if kind == "arg"), None)


def complete_override(ctx: click.Context, incomplete: str) -> list[CompletionItem]:
    """Keys (``model.lr=``) and group options (``model=poly``) for an override being typed."""
    from yanex.config import pipeline

    script = ctx.params.get("script") or _script_typed(ctx.command)
    if script is None:
        return []
    given = [
        *(ctx.params.get("params") or ()),
        *(arg for arg in ctx.params.get("script_args") or () if "=" in arg),
    ]
    try:
        keys, options = pipeline.completions(
            cwd=Path.cwd(),
            script=Path(script),
            config_paths=list(ctx.params.get("config_paths") or ()),
            config_dir=ctx.params.get("config_dir"),
            config_name=ctx.params.get("config_name"),
            given=given,
        )
    except Exception:  # completion never fails: it offers nothing instead
        return []
    prefix = incomplete[: len(incomplete) - len(incomplete.lstrip("+~"))]
    typed = incomplete[len(prefix) :]
    found: list[Any] = []
    if "=" in typed:
        key, _, start = typed.partition("=")
        found = [f"{key}={option}" for option in options.get(key, []) if option.startswith(start)]
    else:
        found = [f"{group}=" for group in options] + [
            key for key in keys if key[:-1] not in options
        ]
        if prefix == "~":  # a key to remove takes no value
            found = [text.rstrip("=.") for text in found]
        found = [text for text in found if text.startswith(typed)]
    return [CompletionItem(f"{prefix}{text}") for text in dict.fromkeys(found)]
