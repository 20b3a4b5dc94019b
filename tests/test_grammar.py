"""The fast path of the override grammar (in yanex.config.overrides) against Hydra's own
parser, at test time: every override and value it accepts is typed exactly as Hydra types it,
and what it declines goes to Hydra's parser as before. A plain run never imports Hydra."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from typing import Any

import pytest
from conftest import Project, imported_modules
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from yanex import grammar
from yanex.config import overrides

hydra_parser = pytest.importorskip("hydra.core.override_parser.overrides_parser")
PARSER = hydra_parser.OverridesParser.create()


def same(ours: Any, theirs: Any) -> bool:
    """Equal values of the same type (True is not 1; NaN is NaN)."""
    if type(ours) is not type(theirs):
        return False
    if isinstance(ours, float) and math.isnan(ours):
        return math.isnan(theirs)
    return ours == theirs


def hydra_value(text: str) -> Any:
    from hydra.core.override_parser.types import Override

    return Override._convert_value(PARSER.parse_rule(text, "value"))


PREFIXES = {"": "CHANGE", "+": "ADD", "++": "FORCE_ADD", "~": "DEL"}


def check_override(text: str) -> bool:
    """If the fast path takes ``text``, Hydra reads it the same; True when it was taken."""
    ours = overrides.plain_override(text)
    if ours is None:
        return False
    prefix, key, value, has_value = ours
    theirs = PARSER.parse_override(text)
    assert theirs.type.name == PREFIXES[prefix], text
    assert theirs.key_or_group == key and theirs.package is None, text
    if has_value:
        assert theirs.value_type is not None and theirs.value_type.name == "ELEMENT", text
        assert same(value, theirs.value()), (text, value, theirs.value())
    else:
        assert theirs.value_type is None, text
    return True


VALUES = [
    # ints, in every spelling the lexer has
    "0", "7", "-1", "+42", "1_000", "-1_000_000", "10", "99999999999999999999",
    # floats
    "1.5", "-0.25", "+.5", ".5", "5.", "1e3", "1E-3", "-2.5e+10", "1_0.5_5", "1e5_0", "0.0",
    "inf", "-inf", "+INF", "Inf", "nan", "NaN", "-nan", "1.", "0e0",
    # bools and null in any case
    "true", "false", "True", "FALSE", "tRuE", "null", "NULL", "Null",
    # plain strings: words, paths, versions, odd mixes that stay text
    "adam", "resnet-50", "a_b", "_x", "x1", "truex", "nullable", "infinity", "nan1", "inf-x",
    "models/resnet", "/abs/path/file.txt", "./rel", "../up", "a.b.c", "v2.1.0", "1.2.3",
    "01", "007", "1__0", "1_", "1e", "1e-", "--1", "+-1", "1-2", "+true", "-null", ".", "-",
    "+", "$x", "a$b", "50%", "a*b", "x@y", "what?", "a|b", "e5", "E", "0x10", "1.5.5e3",
    "yes", "no", "on", "off", "None", "tru", "fals",
]  # fmt: skip

DECLINED = [
    "", " 1", "1 ", "a b", "'quoted'", '"q"', "[1,2]", "{a:1}", "list(1,2)", "a,b", "${x}",
    "a:b", "a=b", "\\,", "é", "ü1", "x\ty", "(1)",
]  # fmt: skip


@pytest.mark.parametrize("text", VALUES)
def test_plain_values_are_typed_as_hydra_types_them(text: str) -> None:
    accepted, value = grammar.plain_value(text)
    assert accepted, text
    assert same(value, hydra_value(text)), (text, value, hydra_value(text))


@pytest.mark.parametrize("text", DECLINED)
def test_anything_else_is_left_to_hydra(text: str) -> None:
    assert grammar.plain_value(text) == (False, None)


KEYS = ["lr", "model.lr", "layers.0", "a.b.c", "_private", "$special", "x-y", "a1.b2.10", "a.$b"]


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("prefix", list(PREFIXES))
@pytest.mark.parametrize("text", ["1", "1e-3", "true", "null", "adam", "/a/b", "-x"])
def test_plain_overrides_are_read_as_hydra_reads_them(prefix: str, key: str, text: str) -> None:
    assert check_override(f"{prefix}{key}={text}")
    assert check_override(f"{prefix}{key}=  {text}")  # '=' takes the whitespace after it


def test_deletions_without_a_value() -> None:
    assert check_override("~model.lr")
    assert (
        overrides.plain_override("model.lr") is None
    )  # no '=': not an override, the parser says so


@pytest.mark.parametrize(
    "text",
    ["model=linear,poly", "db/mysql=x", "opt@second=adam", "a..b=1", "1a=1", "layers.01=1",
     "x=", "+x=", "key =1", "=1", "x=[1]", "x='a b'", "x=${y}", "x=list(1, 2)"],
)  # fmt: skip
def test_other_overrides_are_left_to_hydra(text: str) -> None:
    assert overrides.plain_override(text) is None


ALPHABET = "abefilnrstuxAEFINTU019_-/+.$%*@?|~=:,'\"[]{}() \\\t"


@pytest.mark.slow
@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=ALPHABET, max_size=12))
def test_random_values_either_agree_with_hydra_or_are_declined(text: str) -> None:
    accepted, value = grammar.plain_value(text)
    if accepted:
        assert same(value, hydra_value(text)), (text, value)


PLAIN_ALPHABET = "aefilnrstuxAEFINLTU0123_-/+.$%*@?|"


@pytest.mark.slow
@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=PLAIN_ALPHABET, min_size=1, max_size=10))
def test_random_plain_text_is_typed_as_hydra_types_it(text: str) -> None:
    """Text of the plain characters only: the fast path takes all of it."""
    accepted, value = grammar.plain_value(text)
    assert accepted
    assert same(value, hydra_value(text)), (text, value, hydra_value(text))


@pytest.mark.slow
@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=ALPHABET, max_size=14))
def test_random_overrides_either_agree_with_hydra_or_are_declined(text: str) -> None:
    check_override(text)


@pytest.mark.slow
def test_plain_params_never_import_hydra(project: Project) -> None:
    """The fast path is what keeps Hydra's parser off a run: plain overrides (with a config
    file) do not import it, and a value only Hydra's parser reads does."""
    project.write("t.py", "import yanex\nyanex.log_results({'x': yanex.get_param('x')})\n")
    project.write("config.yaml", "x: 1\nmodel:\n  lr: 0.1\n  drop: 0.5\n")
    project.commit()
    args = ["run", "t.py", "-p", "x=2", "-p", "model.lr=1e-2", "+seed=3", "~model.drop"]
    modules, r = imported_modules(project, *args)
    assert r.returncode == 0, r.stderr
    assert not {m for m in modules if m == "hydra" or m.startswith("hydra.")}
    folder = project.experiments()[-1]
    assert json.loads((folder / "params.json").read_text()) == {
        "x": 2,
        "model": {"lr": 0.01},
        "seed": 3,
    }
    modules, r = imported_modules(project, "run", "t.py", "-p", "x=[1, 2]")
    assert r.returncode == 0, r.stderr
    assert "hydra.core.override_parser.overrides_parser" in modules


def test_a_run_without_config_or_params_loads_no_config_machinery(project: Project) -> None:
    project.write("t.py", "import yanex\nyanex.log_results({'x': yanex.get_param('x', 1)})\n")
    project.commit()
    modules, r = imported_modules(project, "run", "t.py")
    assert r.returncode == 0, r.stderr
    assert not modules & {"omegaconf", "yaml", "hydra", "numpy"}
    # The package list is built once (importlib.metadata), then read from its cache.
    modules, r = imported_modules(project, "run", "t.py")
    assert r.returncode == 0, r.stderr
    assert not modules & {"omegaconf", "yaml", "hydra", "importlib.metadata", "numpy"}
    for folder in project.experiments():
        assert json.loads((folder / "results.jsonl").read_text())["results"] == {"x": 1}


def test_a_where_value_is_typed_without_the_config_package() -> None:
    """`--where` types its values by the override grammar (yanex.grammar), below both the
    config package and the readers: typing one loads no part of yanex.config."""
    code = (
        "import sys; from yanex import query; "
        "c = query.parse_where(\"params.x==[1, 'a b']\"); "
        "print(c.value, sorted(m for m in sys.modules if m.startswith('yanex.config')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert out.strip() == "[1, 'a b'] []"


@pytest.mark.parametrize("text", ["list(1, 2)", "linspace(0, 1, 3)", "choice(1, 2)", "1,2"])
def test_a_sweep_is_no_where_value(text: str) -> None:
    from yanex import query
    from yanex.errors import YanexError

    with pytest.raises(YanexError, match="a value here is one value, not several"):
        query.parse_where(f"params.x=={text}")
