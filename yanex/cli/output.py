"""How the reading commands print: tables with rich on a terminal, plain aligned text or the
chosen format (json, csv) when piped, and user text always with its control characters
escaped, so a name holding ``\\x1b[2J`` cannot clear the terminal.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import click

from yanex.display import ago, cell, csv_cell, duration, full_value, local_time, size, value
from yanex.terminal import safe

__all__ = [
    "Table", "ago", "cell", "csv_cell", "duration", "full_value", "is_terminal",
    "local_time", "print_csv", "print_json", "print_markdown", "safe", "size", "value",
]  # fmt: skip


def is_terminal() -> bool:
    return sys.stdout.isatty()


@dataclass
class Table:
    """Rows of cells under headers; ``best`` marks (row, column) cells as the best value."""

    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)
    best: set[tuple[int, int]] = field(default_factory=set)
    styles: dict[int, str] = field(default_factory=dict)  # column -> rich style
    numeric: set[int] = field(default_factory=set)  # right-aligned columns
    optional_from: int | None = None  # columns from here on are dropped when they do not fit

    def print(self, title: str | None = None) -> None:
        if is_terminal():
            self._print_rich(title)
        else:
            self._print_plain()

    def _fitting_columns(self, width: int) -> list[int]:
        """Indexes of the columns that fit in ``width`` (optional ones dropped from the end)."""
        widths = [
            max([len(h)] + [len(row[i]) for row in self.rows]) + 3
            for i, h in enumerate(self.headers)
        ]
        keep = list(range(len(self.headers)))
        if self.optional_from is None:
            return keep
        while sum(widths[i] for i in keep) > width and len(keep) > self.optional_from:
            keep.pop()
        return keep

    def _print_rich(self, title: str | None) -> None:
        from rich import box
        from rich.console import Console
        from rich.table import Table as RichTable
        from rich.text import Text

        console = Console()
        keep = self._fitting_columns(console.width)
        table = RichTable(title=title, box=box.SIMPLE_HEAD, pad_edge=False, highlight=False)
        for i in keep:
            table.add_column(
                self.headers[i],
                justify="right" if i in self.numeric else "left",
                style=self.styles.get(i),
                overflow="fold",
            )
        for r, row in enumerate(self.rows):
            cells = []
            for i in keep:
                text = Text(row[i])  # Text, not markup: user text is never interpreted
                if (r, i) in self.best:
                    text.stylize("bold green")
                    text.append(" *")
                cells.append(text)
            table.add_row(*cells)
        console.print(table)
        dropped = len(self.headers) - len(keep)
        if dropped:
            console.print(
                f"({dropped} more column{'s' if dropped > 1 else ''} did not fit: "
                "widen the terminal or use --format csv)",
                style="dim",
                highlight=False,
                markup=False,
            )

    def _print_plain(self) -> None:
        columns = list(range(len(self.headers)))
        cells = [self.headers] + [
            [row[i] + (" *" if (r, i) in self.best else "") for i in columns]
            for r, row in enumerate(self.rows)
        ]
        widths = [max(len(line[i]) for line in cells) for i in columns]
        for line in cells:
            parts = [
                line[i].rjust(widths[i]) if i in self.numeric else line[i].ljust(widths[i])
                for i in columns
            ]
            click.echo("  ".join(parts).rstrip())


def print_json(data: Any) -> None:
    """Strict JSON (a NaN as the string "NaN", as results.jsonl holds it: bare NaN is not
    JSON, and strict readers refuse it)."""
    from yanex.json_policy import encode_value

    click.echo(
        json.dumps(encode_value(data), indent=2, ensure_ascii=False, default=str, allow_nan=False)
    )


def print_csv(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(headers)
    writer.writerows(rows)


def print_markdown(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A GitHub-flavoured markdown table (``--format markdown``); cells are already escaped
    user text, ``|`` and line breaks made safe for the table."""

    def cell(text: Any) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    click.echo("| " + " | ".join(cell(h) for h in headers) + " |")
    click.echo("|" + "|".join(" --- " for _ in headers) + "|")
    for row in rows:
        click.echo("| " + " | ".join(cell(c) for c in row) + " |")
