"""What `yanex.query` gives every reader (the CLI, `yanex.results`, the dashboard) beyond
filters: a text search, sorting by tags, counts per value, and compare's rules (which
parameters differ, which result is best). Over a store made by real runs."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from conftest import Project, assert_usage_error, clean_env, git

from yanex import query
from yanex.index import Index
from yanex.index_values import param_leaves

JOB = """
import yanex
yanex.log_results({"loss": yanex.get_param("lr", 0.1) * 2, "accuracy": 0.5})
"""


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Project:
    root = tmp_path_factory.mktemp("query")
    path = root / "proj"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    proj = Project(path, root / "home")
    proj.write("job.py", JOB)
    proj.commit("job")
    for args in (
        ["-n", "alpha-run", "-t", "Vision", "-p", "lr=0.1"],
        ["-n", "beta", "-d", "Uses 50%_dropout", "-p", "lr=0.2"],
        ["-n", "gamma", "-t", "a_b", "-t", "Vision", "-p", "lr=0.05"],
    ):
        assert proj.yanex("run", "job.py", *args).returncode == 0
    assert proj.yanex("stage", "job.py", "-p", "lr=list(0.3, 0.4)").returncode == 0
    return proj


@pytest.fixture
def index(store: Project) -> Iterator[Index]:
    opened = Index(store.home, echo=lambda line: None)
    opened.sync()
    yield opened
    opened.close()


def names(index: Index, **options: object) -> list[str]:
    found = query.select(index, query.make_filters(**options))  # type: ignore[arg-type]
    return sorted(rec.name or "" for rec in found)


@pytest.mark.slow
def test_text_search_finds_every_word_in_id_name_description_or_tag(index: Index) -> None:
    assert names(index, text="ALPHA") == ["alpha-run"]  # any case
    assert names(index, text="vision") == ["alpha-run", "gamma"]  # a tag
    assert names(index, text="vision gam") == ["gamma"]  # every word must appear
    assert names(index, text="dropout") == ["beta"]  # the description
    assert names(index, text="50%_") == ["beta"]
    assert names(index, text="a_b") == ["gamma"]
    assert names(index, text="5_%") == names(index, text="alpha%run") == []  # literal % and _
    some = query.select(index, query.make_filters(text="beta"))[0]
    assert names(index, text=some.id[2:7]) == ["beta"]  # part of an ID
    assert names(index, text="  ") == names(index)  # blank: no search
    assert query.make_filters(text="vision").narrows()


@pytest.mark.slow
def test_sort_by_tags(index: Index) -> None:
    ordered = query.select(
        index, query.make_filters(status=["completed"]), (query.parse_sort("tags"),)
    )
    assert [rec.name for rec in ordered] == ["gamma", "alpha-run", "beta"]  # untagged last
    backwards = query.select(
        index, query.make_filters(status=["completed"]), (query.parse_sort("-tags"),)
    )
    assert [rec.name for rec in backwards] == ["alpha-run", "gamma", "beta"]
    with pytest.raises(query.QueryError):
        query.parse_where("tags=='a_b'")  # a sort key, not a field to compare


def test_group_count(index: Index) -> None:
    everything = query.make_filters()
    assert dict(query.group_count(index, everything, "status")) == {"completed": 3, "staged": 2}
    sweeps = query.group_count(index, everything, "sweep")
    assert sweeps[0] == (None, 3)  # the first created first
    assert sweeps[1][1] == 2 and len(sweeps) == 2


def test_compare_rules(index: Index) -> None:
    records = query.select(index, query.make_filters(status=["completed"]), (query.Sort("name"),))
    flat = [dict(param_leaves(rec.params)) for rec in records]
    assert query.differing_keys(flat) == ["lr"]
    assert query.differing_keys([{"a": 1}, {"a": 1, "b": 2}]) == ["b"]  # missing differs
    assert query.differing_keys([{"a": [1, 2]}, {"a": [1, 2]}]) == []
    best = query.best_rows(records, ["loss", "accuracy"])
    assert best == {"loss": {2}}  # gamma's smaller loss; accuracy is the same for all
    assert query.best_rows(records, ["loss"], maximize=["loss"]) == {"loss": {1}}
    assert query.lower_is_better("val/loss") and not query.lower_is_better("accuracy")


def test_an_unreadable_store_is_a_clear_error(project: Project) -> None:
    home = project.path.parent / "home-with-a-file"
    home.mkdir()
    (home / "experiments").write_text("not a folder")
    r = project.yanex("list", env=clean_env(home))
    assert_usage_error(r, "cannot read the store folder", "Not a directory")


@pytest.mark.slow
def test_compare_shows_a_parameter_only_one_experiment_has(project: Project) -> None:
    project.write("job.py", JOB)
    project.commit()
    assert project.yanex("run", "job.py", "-p", "lr=0.1", "-n", "a").returncode == 0
    r = project.yanex("run", "job.py", "-p", "lr=0.1", "-p", "+seed=3", "-n", "b")
    assert r.returncode == 0, r.stderr
    r = project.yanex("compare", "a", "b", "--format", "json")
    assert r.returncode == 0, r.stderr
    rows = {row["name"]: row["params"] for row in json.loads(r.stdout)}
    assert rows == {"a": {"seed": None}, "b": {"seed": 3}}


@pytest.mark.parametrize(
    ("name", "way"),
    [
        ("loss", "min"),
        ("val_loss", "min"),
        ("trainError", "min"),
        ("top1_error", "min"),
        ("epoch_time", "min"),
        ("val/mse", "min"),
        ("val_acc", "max"),
        ("accuracy", "max"),
        ("valF1", "max"),
        ("top1_acc", "max"),
        ("episode_reward", "max"),
        ("speedup", None),  # says neither: whoever asks for a best is asked back
        ("lr", None),
        ("accuracy_loss", None),  # says both
        ("neg_log_likelihood", "min"),  # an NLL
        ("neg_mean_squared_error", "max"),  # scikit-learn's scorers: greater is better
        ("neg_log_loss", "max"),
        ("negative_mse", "max"),
        ("neg", None),
    ],
)
def test_one_rule_says_which_way_is_better(name: str, way: str | None) -> None:
    assert query.better(name) == way
    assert query.direction(name, maximize=[name]) == "max"
    assert query.direction(name, minimize=[name]) == "min"


@pytest.mark.slow
def test_a_result_of_no_known_direction_gets_no_best_mark(project: Project) -> None:
    project.write("job.py", "import yanex\nyanex.log_results({'speedup': yanex.get_param('s')})\n")
    project.commit()
    for value in (1, 2):
        assert project.yanex("run", "job.py", "-p", f"+s={value}").returncode == 0
    r = project.yanex("compare", "--format", "json")
    assert [row["best"] for row in json.loads(r.stdout)] == [[], []]
    r = project.yanex("compare")
    assert "no best marked for speedup" in r.stderr and "--maximize" in r.stderr
    r = project.yanex("compare", "--maximize", "speedup", "--format", "json")
    assert [row["best"] for row in json.loads(r.stdout)] == [["speedup"], []]


@pytest.mark.slow
@pytest.mark.parametrize(
    "text", ["'adam'", "'a, b'", '"x y"', "''", " 'sp ace' ", "'ünï'", "'1.5'", "'null'", '"[1]"']
)
def test_a_plain_quoted_string_is_what_hydra_reads(text: str) -> None:
    """`--where` reads a quoted string without escapes itself (Hydra's parser costs more to
    load than the query): the same string Hydra's grammar gives, checked against it."""
    from yanex.grammar import parse_value

    assert query._PLAIN_QUOTED_RE.match(text)
    ours = query.parse_where(f"params.x=={text}").value
    hydra = parse_value(text, "test")
    assert type(ours) is type(hydra) is str and ours == hydra
