"""Text yanex writes to a terminal: user text (names, tags, descriptions, parameter values)
with its control characters shown as escapes, so a name holding ``\\x1b[2J`` cannot clear the
screen or retitle the window. The script's own output is never changed: it is not yanex's.
"""

from __future__ import annotations

import re

# C0 and C1 control characters, DEL, and the invisible Unicode controls that reorder or hide
# text (bidirectional overrides, zero-width characters, line separators).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
# The same, but keeping line breaks and tabs: for messages of several lines.
_CONTROL_IN_LINES = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)


def _escape(match: re.Match[str]) -> str:
    return match.group().encode("unicode_escape").decode("ascii")


def safe(text: object) -> str:
    """``text`` on one line, every control character shown as an escape (``\\x1b``, ``\\n``)."""
    return _CONTROL.sub(_escape, "" if text is None else str(text))


def safe_lines(text: str) -> str:
    """A message of several lines: control characters escaped, line breaks and tabs kept."""
    return _CONTROL_IN_LINES.sub(_escape, text)
