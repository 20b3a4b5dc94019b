"""How yanex shows a value as text: numbers short or exact, times as how long ago, durations,
a column's cell in a table or a csv file; user text always escaped.

The CLI's tables (``cli.output``) and the dashboard (``ui``) show values the same way, both
through this module.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any

from yanex.terminal import safe


def ago(when: datetime | None, now: datetime | None = None) -> str:
    """``3m ago``, ``2h ago``, ``5d ago``; ``-`` for never."""
    if when is None:
        return "-"
    seconds = ((now or datetime.now().astimezone()) - when).total_seconds()
    if seconds < 60:
        return f"{max(0, int(seconds))}s ago"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return "-"  # pragma: no cover


def duration(seconds: float | None) -> str:
    """``0.4s``, ``12.3s``, ``3m 05s``, ``2h 03m``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def value(item: Any) -> str:
    """A parameter or result as a table cell: numbers short (4 significant digits), text
    escaped, lists and dicts as compact JSON; empty for missing."""
    if item is None:
        return ""
    if isinstance(item, bool):
        return "true" if item else "false"
    if isinstance(item, float):
        if math.isnan(item) or math.isinf(item):
            return str(item)
        return f"{item:.4g}"
    if isinstance(item, (int, str)):
        return safe(item)
    return safe(json.dumps(item, ensure_ascii=False, default=str))


def full_value(item: Any) -> str:
    """A value for ``yanex get`` and csv: exact (floats by repr), text escaped."""
    if item is None:
        return ""
    if isinstance(item, bool):
        return "true" if item else "false"
    if isinstance(item, (int, float)):
        return repr(item)
    if isinstance(item, str):
        return safe(item)
    return safe(json.dumps(item, ensure_ascii=False, default=str))


def cell(key: str, item: Any) -> str:
    """A column's value (``yanex.columns``) as a table shows it: times as how long ago,
    durations short, a commit by its first 10 digits, paths by their last part, text
    escaped; a parameter a run lacks as ``-``."""
    if key.startswith("params."):
        return "-" if item is None else value(item)
    if key.startswith("results."):
        return value(item)
    if item is None:
        return ""
    if key in ("created", "started", "ended"):
        return ago(datetime.fromtimestamp(item).astimezone())
    if key == "duration":
        return duration(item)
    if key == "tags":
        return safe(", ".join(item))
    if key == "commit":
        return safe(item[:10])
    if key == "dirty":
        return "yes" if item else "no"
    if key in ("project", "script"):
        return safe(str(item).rstrip("/").rsplit("/", 1)[-1])
    return safe(str(item))


def csv_cell(key: str, item: Any) -> str:
    """A column's value in a csv file: exact (floats by repr), times in ISO 8601 with their
    offset, tags joined by ``;``, text escaped."""
    if item is None:
        return ""
    if key in ("created", "started", "ended"):
        return datetime.fromtimestamp(item).astimezone().isoformat()
    if key == "tags":
        return safe(";".join(item))
    return full_value(item)


def local_time(stamp: float | None, *, date: bool = True) -> str:
    """A moment in this machine's time zone: ``2024-05-01 13:02:11`` (``13:02:11`` without
    ``date``); ``-`` for never."""
    if stamp is None:
        return "-"
    return (
        datetime.fromtimestamp(stamp)
        .astimezone()
        .strftime("%Y-%m-%d %H:%M:%S" if date else "%H:%M:%S")
    )


def size(n: int) -> str:
    """A file's size: ``512 B``, ``3.4 KiB``, ``12.0 MiB``, ``1.5 GiB``."""
    if n < 1024:
        return f"{n} B"
    shown = n / 1024
    for unit in ("KiB", "MiB"):
        if shown < 1024:
            return f"{shown:.1f} {unit}"
        shown /= 1024
    return f"{shown:.1f} GiB"
