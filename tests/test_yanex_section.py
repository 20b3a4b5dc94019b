"""The ``yanex:`` section of a config file: the run's name, description, tags and how it
runs, as yanex 0.6 read them (the command line wins), never parameters of the script. The
project is in the shape of 0.6's examples/cli/04_metadata_and_tags."""

from __future__ import annotations

import json

import pytest
from conftest import Project, assert_usage_error, metadata

SCRAPE = """
import yanex

num_pages = yanex.get_param("num_pages", default=10)
delay_ms = yanex.get_param("delay_ms", default=100)
print(f"Scraping {num_pages} pages with {delay_ms}ms delay...")
yanex.log_metrics({"pages_scraped": num_pages})
"""

CONFIG = """
# Scraper configuration
num_pages: 2
delay_ms: 1

# Yanex metadata defaults
# These can be overridden from CLI
yanex:
  name: "web-scraper-test"
  description: "Testing web scraping with different parameters"
  tag:
    - scraping
    - automation
    - dev
"""


def scraper(project: Project, config: str = CONFIG) -> None:
    project.write("scrape.py", SCRAPE)
    project.write("scraper-config.yaml", config)
    project.commit()


@pytest.mark.slow
def test_the_section_names_describes_and_tags_the_run(project: Project) -> None:
    scraper(project)
    r = project.yanex("run", "scrape.py", "--config", "scraper-config.yaml")
    assert r.returncode == 0, r.stderr
    folder = project.only_experiment()
    meta = metadata(folder)
    assert meta["name"] == "web-scraper-test"
    assert meta["description"] == "Testing web scraping with different parameters"
    assert meta["tags"] == ["scraping", "automation", "dev"]
    # Not a parameter: the script's parameters are the rest of the file.
    assert json.loads((folder / "params.json").read_text()) == {"num_pages": 2, "delay_ms": 1}
    assert "yanex" not in (folder / "config.yaml").read_text()
    assert "warnings" not in meta
    # Found as config.yaml next to the script too, and read by `list` as 0.6's users expect.
    (project.path / "scraper-config.yaml").rename(project.path / "config.yaml")
    project.commit()
    r = project.yanex("run", "scrape.py")
    assert r.returncode == 0, r.stderr
    r = project.yanex("list", "--tag", "dev")
    assert r.returncode == 0 and r.stdout.count("web-scraper-test") == 2, r.stdout
    r = project.yanex("delete", "--tag", "dev", "--yes")
    assert r.returncode == 0, r.stderr
    assert project.experiments() == []


def test_the_command_line_wins_over_the_section(project: Project) -> None:
    scraper(project)
    r = project.yanex(
        "run", "scrape.py", "-c", "scraper-config.yaml", "-n", "mine", "-t", "prod", "-t", "x"
    )
    assert r.returncode == 0, r.stderr
    meta = metadata(project.only_experiment())
    # As in 0.6: the name and the tags given replace the file's; the description stays.
    assert meta["name"] == "mine" and meta["tags"] == ["prod", "x"]
    assert meta["description"] == "Testing web scraping with different parameters"


def test_files_merged_in_order_the_last_section_wins(project: Project) -> None:
    scraper(project)
    project.write("more.yaml", "num_pages: 3\nyanex:\n  name: second\n  tag: one\n")
    project.commit()
    r = project.yanex("run", "scrape.py", "-c", "scraper-config.yaml", "-c", "more.yaml")
    assert r.returncode == 0, r.stderr
    folder = project.only_experiment()
    meta = metadata(folder)
    assert meta["name"] == "second" and meta["tags"] == ["one"]
    assert meta["description"] == "Testing web scraping with different parameters"
    assert json.loads((folder / "params.json").read_text()) == {"num_pages": 3, "delay_ms": 1}


def test_the_section_can_stage_or_dry_run(project: Project) -> None:
    scraper(project, CONFIG + "  stage: true\n")
    r = project.yanex("run", "scrape.py", "-c", "scraper-config.yaml")
    assert r.returncode == 0, r.stderr
    folder = project.only_experiment()
    assert metadata(folder)["status"] == "staged" and r.stdout.strip() == folder.name
    project.write("dry.yaml", "num_pages: 1\nyanex:\n  dry_run: true\n")
    project.commit()
    r = project.yanex("run", "scrape.py", "-c", "dry.yaml")
    assert r.returncode == 0, r.stderr
    assert "dry run" in r.stdout + r.stderr
    assert project.experiments() == [folder]


@pytest.mark.slow
def test_keys_yanex_does_not_read_are_said_and_bad_values_refused(project: Project) -> None:
    scraper(project, CONFIG + "  project: my-project\n  scripts: []\n")
    r = project.yanex("run", "scrape.py", "-c", "scraper-config.yaml")
    assert r.returncode == 0, r.stderr
    for key in ("yanex.project is ignored: yanex 0.6's project name", "yanex.scripts is ignored"):
        assert key in r.stderr
        assert any(key in w for w in metadata(project.only_experiment())["warnings"])
    assert "project" not in json.loads((project.only_experiment() / "params.json").read_text())
    for bad, needle in (
        ("yanex: [a]\n", "holds the run's settings"),
        ("yanex:\n  name: 3\n", "yanex.name must be text, not 3"),
        ("yanex:\n  tag: [a, 1]\n", "yanex.tag must be text or a list of text"),
        ("yanex:\n  stage: maybe\n", "yanex.stage must be true or false"),
        ("yanex:\n  tag: a\n  tags: b\n", "gives both tag and tags"),
    ):
        project.write("bad.yaml", bad)
        before = project.store_entries()
        r = project.yanex("run", "scrape.py", "-c", "bad.yaml", "--ignore-dirty")
        assert_usage_error(r, needle)
        assert project.store_entries() == before
