"""How yanex shows values as text, the one place the CLI and the dashboard share."""

from __future__ import annotations

import time

import pytest

from yanex import display


@pytest.mark.parametrize(
    ("n", "shown"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (1536, "1.5 KiB"),
        (1024**2, "1.0 MiB"),
        (3 * 1024**3 // 2, "1.5 GiB"),
        (1024**4, "1024.0 GiB"),
    ],
)
def test_a_size_is_shown_in_binary_units(n: int, shown: str) -> None:
    assert display.size(n) == shown


def test_a_moment_is_shown_in_local_time() -> None:
    stamp = time.mktime((2024, 5, 1, 13, 2, 11, 0, 0, -1))
    assert display.local_time(stamp) == "2024-05-01 13:02:11"
    assert display.local_time(stamp, date=False) == "13:02:11"
    assert display.local_time(None) == "-"


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(None, "-"), (0.44, "0.4s"), (12.34, "12.3s"), (185, "3m 05s"), (7380, "2h 03m")],
)
def test_a_duration_is_shown_short(seconds: float | None, shown: str) -> None:
    assert display.duration(seconds) == shown
