"""Hostile input: each case gives a clear error and exit 2 (or a clean run), never a
traceback and never a partial experiment."""

from __future__ import annotations

import math
import string
from pathlib import Path

import pytest
from conftest import Project, assert_usage_error
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from yanex.config import sweeps
from yanex.config.overrides import parse_override
from yanex.config.sources import MAX_CONFIG_BYTES
from yanex.errors import ParamError

# 1,000 levels, one space of indentation each: deep enough to overflow the parser's stack,
# small enough (0.5 MB) to stay under the size limit.
DEEP_YAML = "".join(" " * i + f"k{i}:\n" for i in range(1000)) + " " * 1000 + "v: 1\n"
LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 10) + "]\n"
    for i in range(8)
)

# (what, config.yaml text or None, --param values, extra env, text the error must contain)
REFUSED = [
    ("deeply nested YAML", DEEP_YAML, [], {}, "nests too deeply"),
    ("deep flow YAML", "a: " + "[" * 5000 + "]" * 5000 + "\n", [], {}, "nests too deeply"),
    ("billion laughs", LAUGHS, [], {}, "more than 1,000,000 values"),
    ("interpolation cycle", "a: ${b}\nb: ${a}\n", [], {}, "Recursive interpolation"),
    ("python object tag", "a: !!python/object/apply:os.system ['echo pwned']\n", [], {}, "YAML"),
    ("binary value", "a: !!binary aGVsbG8=\n", [], {}, "bytes values"),
    ("tab indentation", "a:\n\tb: 1\n", [], {}, "not valid YAML"),
    ("null key", "null: 1\n", [], {}, "cannot be loaded"),
    ("unhashable key", "? [1, 2]\n: v\n", [], {}, "unhashable"),
    ("missing env var", "x: ${oc.env:YANEX_TEST_NOT_SET}\n", [], {}, "YANEX_TEST_NOT_SET"),
    ("duplicate keys", "a: 1\na: 2\n", [], {}, "duplicate key"),
    ("deep key", None, ["a" + ".a" * 300 + "=1"], {}, "more than 100 levels"),
    ("deep value", None, ["x=" + "[" * 3000 + "]" * 3000], {}, "nests too deeply"),
    ("nested sweep", None, ["x=list(list(1, 2))"], {}, "whole value"),
    ("sweep in a list", None, ["x=[list(1, 2)]"], {}, "whole value"),
    ("sweep in a string", "name: run-${list:a,b}\n", [], {}, "'name': a sweep must be the whole"),
    ("param sweep in a string", None, ["name=run-${list:a,b}"], {}, "must be the whole value"),
    ("env sweep in a string", None, [], {"YANEX_PARAM_n": "a${range:2}"}, "must be the whole"),
    ("two sweeps in a string", "name: ${list:a}-${list:b}\n", [], {}, "must be the whole value"),
    ("sweep in a grid's string", "x: list(1, 2)\nn: a${range:2}\n", [], {}, "must be the whole"),
    ("sweep in a resolver", "x: ${oc.select:${list:a,b}}\n", [], {}, "must be the whole value"),
    ("sweep in a sweep", "x: ${list:1,${range:3}}\n", [], {}, "not a value of another sweep"),
    ("empty key part", None, ["a..b=1"], {}, "cannot be parsed"),
    ("leading dot", None, [".a=1"], {}, "cannot be parsed"),
    ("unknown resolver", None, ["x=${nope:1}"], {}, "nope"),
    ("unquoted url", None, ["u=http://h/?a=b"], {}, "Quote"),
    ("shell metacharacters", None, ["x=$(rm -rf /)"], {}, "cannot be parsed"),
    ("tiny step", None, ["x=range(0, 1, 1e-20)"], {}, "at most"),
    ("infinite bound", None, ["x=range(1e308, 1e309)"], {}, "finite"),
    ("huge linspace", None, ["x=linspace(0, 1, 1000000000)"], {}, "at most"),
    ("grid too large", None, ["a=range(100)", "b=range(100)", "c=range(100)"], {}, "100,000"),
    ("string bounds", None, ["x=range('a', 'z')"], {}, "cannot be parsed"),
    ("env deep key", None, [], {"YANEX_PARAM_" + "a__" * 150 + "b": "1"}, "100 levels"),
    ("env bad value", None, [], {"YANEX_PARAM_x": "{a: [1,"}, "YANEX_PARAM_x"),
    ("env unknown function", None, [], {"YANEX_PARAM_x": "evil(1)"}, "Unknown function"),
    ("env sweep too large", None, [], {"YANEX_PARAM_x": "range(10**9)"}, "cannot be parsed"),
    ("huge value text", None, ["x=[" + "1," * 40000 + "]"], {}, "cannot be parsed"),
]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("config", "params", "env", "needle"),
    [case[1:] for case in REFUSED],
    ids=[case[0] for case in REFUSED],
)
def test_hostile_input_is_refused_cleanly(
    project: Project, config: str | None, params: list[str], env: dict[str, str], needle: str
) -> None:
    project.write("s.py", "print('ran')\n")
    if config is not None:
        (project.path / "config.yaml").write_text(config)
    project.commit()
    args = [arg for p in params for arg in ("--param", p)]
    r = project.yanex("run", "s.py", *args, "--stage", env=project.env(**env), timeout=120)
    assert_usage_error(r, needle)
    assert project.store_entries() == []


def write_big_yaml(path: Path, size: int) -> None:
    """A real YAML config of ``size`` bytes: one long list (``values: [- 1, - 1, ...]``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    head = b"values:\n"
    path.write_bytes(head + b"- 1\n" * ((size - len(head)) // 4))


@pytest.mark.parametrize(
    ("big", "args"),
    [
        ("big.yaml", ["--config", "big.yaml"]),
        ("config.yaml", []),
        ("conf/config.yaml", []),
        ("conf/model/big.yaml", ["-p", "model=big"]),
    ],
    ids=["--config", "./config.yaml", "primary config of conf/", "option of conf/"],
)
def test_a_35_mb_config_is_refused_at_once_by_its_size(
    project: Project, big: str, args: list[str]
) -> None:
    """Parsing 35 MB of YAML takes minutes and gigabytes: the size alone refuses it."""
    project.write("s.py", "print('ran')\n")
    if big.startswith("conf/model/"):
        project.write("conf/config.yaml", "defaults:\n  - model: small\n  - _self_\n")
        project.write("conf/model/small.yaml", "width: 8\n")
    project.commit()
    write_big_yaml(project.path / big, 35 * 2**20)
    r = project.yanex("run", "s.py", *args, timeout=60)  # the timeout guards a long parse
    assert_usage_error(r, f"{big} is 36.7 MB (36,700,160 bytes)", "at most 2 MB")
    assert project.store_entries() == []


@pytest.mark.slow
def test_a_config_at_the_size_limit_is_read_and_one_byte_more_is_not(project: Project) -> None:
    project.write("s.py", "print('ran')\n")
    project.commit()
    config = project.path / "config.yaml"
    # A long comment parses fast: the size, not the parsing, is what is tested.
    head = b"a: 1\n#"
    config.write_bytes(head + b"x" * (MAX_CONFIG_BYTES - len(head) - 1) + b"\n")
    assert config.stat().st_size == MAX_CONFIG_BYTES
    project.commit()  # an untracked config would make the tree dirty
    r = project.yanex("run", "s.py")
    assert r.returncode == 0, r.stderr
    assert (project.only_experiment() / "config.yaml").read_text() == "a: 1\n"
    with config.open("ab") as f:
        f.write(b"\n")
    assert_usage_error(project.yanex("run", "s.py"), "at most 2 MB")
    assert len(project.experiments()) == 1


@pytest.mark.slow
@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ("1: a\n2: b\n", "'1': a\n'2': b\n"),  # keys as params.json holds them
        ("a: 123456789012345678901234567890\n", "a: 123456789012345678901234567890\n"),
        ("base: &b {x: 1}\nd:\n  <<: *b\n  y: 2\n", "base:\n  x: 1\nd:\n  x: 1\n  y: 2\n"),
        ('text: "caf\\u00e9 \\U0001F600"\n', "text: café 😀\n"),
    ],
    ids=["int keys", "huge int", "merge key", "unicode"],
)
def test_odd_but_valid_configs_run_cleanly(project: Project, config: str, expected: str) -> None:
    project.write("s.py", "print('ran')\n")
    (project.path / "config.yaml").write_text(config)
    project.commit()
    r = project.yanex("run", "s.py")
    assert r.returncode == 0, r.stderr
    assert (project.only_experiment() / "config.yaml").read_text() == expected


@pytest.mark.parametrize(
    "experiment_id", ["../../etc", "/etc/passwd", "deadbeef/../..", "DEADBEEF", "deadbee", ""]
)
def test_experiment_ids_cannot_address_paths_outside_the_store(
    project: Project, experiment_id: str
) -> None:
    """The worker entry point (what a Dask worker runs) and `yanex show` refuse such IDs."""
    from yanex.errors import StoreError
    from yanex.executors.member import CodeCheck, run_member

    with pytest.raises(StoreError):
        run_member(project.home, experiment_id, "token", code=CodeCheck(False))
    r = project.yanex("show", experiment_id)
    assert_usage_error(r)
    assert "Traceback" not in r.stderr


def test_a_nul_byte_in_the_script_path_or_config_is_refused(project: Project) -> None:
    project.write("s.py", "print('ran')\n")
    (project.path / "config.yaml").write_bytes(b"a: 1\x00\n")
    project.commit()
    assert_usage_error(project.yanex("run", "s.py"), "NUL")
    assert project.store_entries() == []


# --- property tests: the parser and the sweep functions never fail in another way ---------

TEXT = st.text(alphabet=st.sampled_from(string.printable + "éü😀\u00a0"), min_size=0, max_size=40)


@pytest.mark.slow
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TEXT)
def test_any_override_text_parses_or_gives_a_param_error(text: str) -> None:
    for candidate in (text, f"x={text}", f"x=list({text})", f"x=range({text})"):
        try:
            ov = parse_override(candidate)
        except ParamError as exc:
            assert exc.format_message()
        else:
            assert ov.key


NUMBER = st.one_of(
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.text(max_size=3),
    st.booleans(),
)


@pytest.mark.slow
@settings(max_examples=400, deadline=None)
@given(st.lists(NUMBER, max_size=4), st.sampled_from(sorted(sweeps.FUNCTIONS)))
def test_sweep_functions_give_values_or_a_sweep_error(args: list, name: str) -> None:
    try:
        sweep = sweeps.make(name, tuple(args))
    except sweeps.SweepValueError as exc:
        assert str(exc)
    else:
        assert 1 <= len(sweep.values) <= sweeps.MAX_GRID
        if name != "list":
            assert all(isinstance(v, (int, float)) and math.isfinite(v) for v in sweep.values)


@pytest.mark.parametrize(
    "value",
    ["plain", "caf\u00e9 \U0001f600", "tab\there", "a\x07b", "x" * 200 + " \\ y", "'q' \"d\" #c"],
)
def test_config_yaml_reads_back_as_the_params(tmp_path: Path, value: str) -> None:
    """config.yaml is written by libyaml or PyYAML, whichever writes this text as PyYAML does;
    either way it reads back as params.json's values."""
    import yaml

    from yanex import record

    config = {"k": value, "n": {"l": [value, 1, None]}, value: 1.5}
    text = record.config_yaml(config)
    assert yaml.safe_load(text) == config
    assert text == yaml.safe_dump(config, sort_keys=False, allow_unicode=True)


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.text(alphabet=string.printable, max_size=150),
        st.one_of(st.text(alphabet=string.printable, max_size=200), st.integers(), st.none()),
        max_size=4,
    )
)
def test_config_yaml_is_pyyamls_text_whichever_emitter_writes_it(config: dict) -> None:
    import yaml

    from yanex import record

    text = record.config_yaml({"c": config})
    assert text == yaml.safe_dump({"c": config}, sort_keys=False, allow_unicode=True)
