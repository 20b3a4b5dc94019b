"""Dotted keys, walked one way for the script API, the results API and `yanex get`."""

from __future__ import annotations

from typing import Any

import pytest

from yanex.dotted import leaves, lookup, nodes

PARAMS = {"model": {"lr": 0.1, "layers": [64, 32, {"drop": 0.5}]}, "seed": 3, "empty": {}}


@pytest.mark.parametrize(
    ("key", "found"),
    [
        ("seed", 3),
        ("model.lr", 0.1),
        ("model.layers.0", 64),
        ("model.layers.-1", {"drop": 0.5}),
        ("model.layers.2.drop", 0.5),
        ("empty", {}),
        ("model.layers.3", "missing"),  # out of range
        ("model.layers.--1", "missing"),  # int() would refuse it: not an index
        ("model.layers.+1", "missing"),
        ("model.layers.\u00b2", "missing"),  # a digit to str.isdigit, not to int()
        ("model.nope", "missing"),
        ("seed.x", "missing"),
    ],
)
def test_a_dotted_key_finds_its_value_or_the_default(key: str, found: Any) -> None:
    assert lookup(PARAMS, key, "missing") == found


def test_leaves_keep_lists_whole_and_nodes_name_every_key() -> None:
    assert list(leaves(PARAMS)) == [
        ("model.lr", 0.1),
        ("model.layers", [64, 32, {"drop": 0.5}]),
        ("seed", 3),
        ("empty", {}),
    ]
    assert [path for path, _ in nodes(PARAMS)] == [
        "model", "model.lr", "model.layers", "seed", "empty",
    ]  # fmt: skip
