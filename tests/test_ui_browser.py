"""The dashboard in a real browser: Debian's headless Chromium, driven by Playwright, against a
real `yanex ui` over a store made by real runs. One server and one browser for the module.

It opens the table and filters it, chooses its columns, opens an experiment and sees its curve
drawn, sees a sweep at a glance (parallel coordinates, a scatter, brushing that filters its
table), overlays a sweep's curves (a style per run, smoothing, time axes, a log scale per
chart, CSV downloads), selects two and compares them, tags one, watches a running one grow and
finish, and deletes one after confirming. A store of its own holds values at the doubles'
edges (±1e308, subnormals, ints past 2**53, which the sweep view draws apart) and a run of
each dirty state (the table's Dirty filter). No page may log an error (a refused script or
style, a failed request) meanwhile.

The screenshots in the README are taken here: set YANEX_SCREENSHOTS to a folder to keep them
(``YANEX_SCREENSHOTS=docs/screenshots python -m pytest tests/test_ui_browser.py``).
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Project, git, metadata, results, runs_of_each_git_state
from uiserver import Server

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="headless Chromium is not installed (apt-get install chromium; .ci/run installs it)",
    ),
]
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WAIT_MS = 30_000  # a hang guard for what happens in another process, not a speed goal

TRAIN = """
import math, random, sys, yanex
lr = yanex.get_param("lr", 0.1)
width = yanex.get_param("width", 128)
speed = 1.5 if yanex.get_param("optimizer", "sgd") == "adam" else 1.0
random.seed(round(lr * 1000) + width)
for step in range(40):
    loss = 0.12 + 2.0 * math.exp(-3 * lr * speed * step) + 20 / width + random.uniform(-0.03, 0.03)
    if yanex.get_param("fail", False):
        loss = 0.3 * 1.6**step
    yanex.log_results({"loss": round(loss, 4), "accuracy": round(max(0.0, 1 - loss / 2.2), 4)})
    if yanex.get_param("fail", False) and step == 12:
        print("epoch 12: loss is nan", file=sys.stderr)
        raise RuntimeError("loss is NaN at step 12: lower the learning rate")
yanex.log_results({"test_acc": round(max(0.0, 1 - loss / 2.0), 4)})  # once, at the end
if yanex.get_param("plot", False):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.imshow([[math.sin(x / 3) * math.cos(y / 3) for x in range(24)] for y in range(24)])
    ax.set_title("filters")
    yanex.save_artifact(fig, "filters.png")
yanex.save_artifact({"lr": lr, "width": width}, "summary.json")
print(f"trained: lr={lr} width={width}")
"""

GROW = """
import os, time, yanex
yanex.log_results({"loss": 1.0}, step=0)
while not os.path.exists("more"):
    time.sleep(0.05)
yanex.log_results({"loss": 0.6}, step=1)
yanex.log_results({"loss": 0.4}, step=2)
while not os.path.exists("go"):
    time.sleep(0.05)
"""

WAIT = """
import os, time, yanex
yanex.log_results({"loss": 1.0}, step=0)
print("waiting for go", flush=True)
while not os.path.exists("go"):
    time.sleep(0.05)
yanex.log_results({"loss": 0.5}, step=1)
print("finished", flush=True)
"""


def run_ok(proj: Project, *args: str) -> None:
    r = proj.yanex(*args)
    assert r.returncode == 0, (args, r.stderr)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Project:
    root = tmp_path_factory.mktemp("browser")
    path = root / "demo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    proj = Project(path, root / "home")
    proj.write("train.py", TRAIN)
    proj.write("wait.py", WAIT)
    proj.write("grow.py", GROW)
    proj.write(".gitignore", "go\nmore\n")
    proj.commit("train")
    run_ok(proj, "run", "train.py", "-p", "lr=0.1", "-p", "plot=true", "-n", "baseline",
           "-t", "baseline", "-d", "the reference run")  # fmt: skip
    run_ok(proj, "run", "train.py", "-p", "lr=0.03", "-n", "slow", "-t", "baseline")
    failed = proj.yanex("run", "train.py", "-p", "lr=0.9", "-p", "fail=true", "-n", "diverged")
    assert failed.returncode == 1, failed.stderr
    run_ok(proj, "stage", "train.py", "-p", "lr=list(0.02, 0.05, 0.2)", "-p", "width=list(64, 256)",
           "-p", "optimizer=list(sgd, adam)", "-t", "grid")  # fmt: skip
    run_ok(proj, "run", "--staged", "-j", "2")
    run_ok(proj, "stage", "train.py", "-p", "lr=list(0.4, 0.6)", "-n", "next")
    run_ok(proj, "run", "train.py", "-n", "old-try")
    return proj


@pytest.fixture(scope="module")
def server(store: Project) -> Iterator[Server]:
    srv = Server.start(store)
    yield srv
    srv.stop()
    assert "Traceback" not in "".join(srv.stderr), "".join(srv.stderr)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=WAIT_MS)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, server: Server) -> Iterator[Any]:
    """A fresh tab (no cookies, no stored selection) whose errors fail the test."""
    with tab_of(browser, server) as tab:
        yield tab


@contextlib.contextmanager
def tab_of(browser: Any, server: Server, allowed: tuple[str, ...] = ()) -> Iterator[Any]:
    """A fresh tab on ``server``; an error it logs fails the test (but those ``allowed``)."""
    base = f"http://{server.host}:{server.port}"
    context = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=base)
    tab = context.new_page()
    tab.set_default_timeout(WAIT_MS)
    tab.goto(server.url)  # the printed URL, as a user opens it: its token becomes a cookie
    problems: list[str] = []
    tab.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda error: problems.append(str(error)))
    try:
        yield tab
    finally:
        context.close()
    assert [p for p in problems if not any(a in p for a in allowed)] == []


def shot(tab: Any, name: str, tmp_path: Path, **options: Any) -> None:
    """A screenshot, kept in $YANEX_SCREENSHOTS when set (the README's)."""
    folder = Path(os.environ.get("YANEX_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{name}.png"
    tab.screenshot(path=str(target), **options)
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and target.stat().st_size > 10_000


def visit(tab: Any, path: str) -> None:
    """Open a page and wait until its script has wired it up (plotly.js is large)."""
    tab.goto(path)
    tab.wait_for_selector("html[data-ready]", state="attached")


def ids(proj: Project, name: str) -> str:
    folders = [f for f in proj.experiments() if (f / "metadata.json").exists()]
    found = [f.name for f in folders if metadata(f)["name"] == name]
    assert len(found) == 1, found
    return found[0]


def drawn_traces(tab: Any, plot: str = ".plot") -> list[int]:
    """How many curves each plot drew (a path with points in it)."""
    return tab.eval_on_selector_all(
        plot,
        """plots => plots.map(p => [...p.querySelectorAll('.scatterlayer .trace path.js-line')]
                                 .filter(line => (line.getAttribute('d') || '').length > 10)
                                 .length)""",
    )


def test_open_the_table_and_filter_it(page: Any, store: Project, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    visit(page, "/")
    rows = page.locator("table.experiments tbody tr")
    expect(rows).to_have_count(len(store.experiments()))
    expect(page.locator("tr", has_text="diverged").locator(".status")).to_have_text("failed")
    shot(page, "table", tmp_path)
    page.locator("label.status-pick", has_text="failed").locator("input").check()
    page.get_by_role("button", name="Apply").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("diverged")
    page.get_by_role("link", name="Reset").click()
    page.get_by_label("Search").fill("slow")
    page.get_by_label("Search").press("Enter")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("slow")
    page.get_by_role("link", name="Reset").click()
    page.get_by_role("link", name="loss").click()  # sort by the last loss, best (smallest) first
    expect(rows.first).not_to_contain_text("diverged")
    page.get_by_role("link", name="loss").click()  # again: the other way, largest first
    expect(rows.first).to_contain_text("diverged")


def test_open_an_experiment_and_see_its_curves(page: Any, store: Project, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    experiment_id = ids(store, "baseline")
    visit(page, "/")
    page.get_by_role("link", name=experiment_id).click()
    expect(page).to_have_url(re.compile(f"/e/{experiment_id}$"))
    expect(page.locator("h1")).to_contain_text("baseline")
    page.wait_for_function(
        "() => document.querySelectorAll('.plot .scatterlayer .trace path.js-line').length >= 2"
    )
    assert drawn_traces(page) == [1, 1]  # loss and accuracy, one curve each
    expect(page.locator(".plot").first).to_contain_text("loss")
    expect(page.locator(".gallery img")).to_have_count(1)  # the image artifact, shown
    assert page.eval_on_selector(".gallery img", "img => img.naturalWidth") > 0
    page.locator(".plot").first.hover(position={"x": 250, "y": 150})
    expect(page.locator(".plot").first.locator(".hoverlayer")).to_contain_text(
        re.compile(r"\d\.\d")
    )  # the value under the pointer
    page.get_by_label("log scale of loss").check()  # this chart's, not the others'
    page.wait_for_function("() => document.querySelector('.plot')._fullLayout.yaxis.type == 'log'")
    assert page.eval_on_selector_all(".plot", "ps => ps.map(p => p._fullLayout.yaxis.type)") == [
        "log",
        "linear",
    ]
    page.get_by_label("log scale of loss").uncheck()
    # test_acc was logged once: a value, not a chart of one dot.
    expect(page.locator("table.values")).to_contain_text("test_acc")
    expect(page.locator('.chart[data-name="test_acc"]')).to_have_count(0)
    # Its results table, and every step of it, download as CSV.
    with page.expect_download() as download:
        page.get_by_role("link", name="CSV of this table").click()
    table = list(csv.reader(io.StringIO(Path(download.value.path()).read_text())))
    assert table[0] == ["result", "last", "min", "max", "steps", "last step"]
    assert [row[0] for row in table[1:]] == ["loss", "accuracy", "test_acc"]
    with page.expect_download() as download:
        page.get_by_role("link", name="CSV of every step").click()
    steps = list(csv.reader(io.StringIO(Path(download.value.path()).read_text())))
    assert steps[0] == ["id", "name", "step", "timestamp", "results.loss", "results.accuracy",
                        "results.test_acc"]  # fmt: skip
    assert len(steps) == 1 + 41  # 40 steps, and test_acc's own
    page.mouse.move(0, 0)
    shot(
        page,
        "experiment",
        tmp_path,
        full_page=True,
        clip={"x": 0, "y": 0, "width": 1280, "height": 1160},
    )
    failed = ids(store, "diverged")
    visit(page, f"/e/{failed}")
    expect(page.locator("#failure")).to_contain_text("RuntimeError: loss is NaN at step 12")


def test_select_two_and_compare_them(page: Any, store: Project, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    baseline, slow = ids(store, "baseline"), ids(store, "slow")
    visit(page, "/")
    compare = page.get_by_role("button", name="Compare")
    expect(compare).to_be_disabled()
    page.get_by_label(f"select {baseline}").check()
    page.get_by_label(f"select {slow}").check()
    expect(page.locator("#picked-count")).to_have_text("2")
    compare.click()
    expect(page.locator("h1")).to_have_text("Compare 2 experiments")
    differ = page.locator("tbody.differ tr.param")
    expect(differ).to_have_count(2)  # lr and plot; width is the same
    expect(differ.first).to_contain_text("lr")
    expect(page.locator("td.best")).to_have_count(3)  # the best loss, accuracy and test_acc
    page.get_by_role("button", name="Overlay curves").click()
    page.wait_for_function(
        "() => document.querySelectorAll('#compare-plots .plot .scatterlayer .trace').length >= 4"
    )
    assert drawn_traces(page, "#compare-plots .chart:not(.once) .plot") == [2, 2]
    expect(page.locator("#compare-plots .chart.once .bars .point")).to_have_count(2)  # test_acc
    shot(page, "compare", tmp_path, full_page=True)


def grid(store: Project) -> str:
    """The sweep of 12 (3 lr x 2 width x 2 optimizer)."""
    sweeps = {metadata(f)["sweep"] for f in store.experiments() if "grid" in metadata(f)["tags"]}
    assert len(sweeps) == 1, sweeps
    return sweeps.pop()


def header_texts(tab: Any) -> list[str]:
    return tab.eval_on_selector_all(
        "table.experiments thead tr:first-child th[data-key]",
        "ths => ths.map(th => th.querySelector('a').textContent)",
    )


def column(tab: Any, title: str) -> list[str]:
    """The cells of the table's column ``title``, top to bottom."""
    return tab.eval_on_selector(
        "table.experiments",
        """(t, title) => {
             const ths = [...t.querySelectorAll('thead tr:first-child th')];
             const at = ths.findIndex(th => th.textContent.trim().startsWith(title));
             return [...t.querySelectorAll('tbody tr')].map(r => r.cells[at].textContent.trim());
           }""",
        title,
    )


def test_choose_the_tables_columns_sort_and_filter_them(page: Any, store: Project) -> None:
    from playwright.sync_api import expect

    visit(page, f"/?sweep={grid(store)}")
    rows = page.locator("table.experiments tbody tr")
    expect(rows).to_have_count(12)
    # A sweep's members: the parameters it varies, beside the results.
    assert header_texts(page) == [
        "ID", "Name", "Status", "Tags", "Started", "Duration", "lr", "width", "optimizer",
        "loss", "accuracy", "test_acc",
    ]  # fmt: skip
    page.get_by_role("link", name="lr", exact=True).click()  # sort by a parameter
    expect(page).to_have_url(re.compile(r"sort=params.lr"))
    assert column(page, "lr") == ["0.02"] * 4 + ["0.05"] * 4 + ["0.2"] * 4
    # The picker: no width, the exit code.
    page.locator("details.picker summary").click()
    page.locator('.picker-form input[value="params.width"]').uncheck()
    page.locator('.picker-form input[value="exit_code"]').check()
    page.get_by_role("button", name="Show these columns").click()
    expect(page).to_have_url(re.compile(r"col=[^&]*exit_code"))
    assert "width" not in header_texts(page) and "Exit code" in header_texts(page)
    assert column(page, "lr")[0] == "0.02"  # the sort is kept
    # A filter per column, kept with the columns in the address: a view to bookmark.
    page.get_by_label("filter optimizer").fill("adam")
    page.get_by_label("filter optimizer").press("Enter")
    expect(rows).to_have_count(6)
    page.get_by_label("filter loss").fill("<0.3")
    page.get_by_label("filter loss").press("Enter")
    low = [f for f in store.experiments() if "grid" in metadata(f)["tags"]]
    wanted = [f for f in low if metadata(f)["sweep_values"]["optimizer"] == "adam"
              and results(f)[-2]["results"]["loss"] < 0.3]  # fmt: skip
    expect(rows).to_have_count(len(wanted))
    assert 0 < len(wanted) < 6
    bookmark = page.url
    visit(page, bookmark)
    expect(rows).to_have_count(len(wanted))
    assert "width" not in header_texts(page) and "Exit code" in header_texts(page)
    assert page.get_by_label("filter optimizer").input_value() == "adam"
    page.locator("details.picker summary").click()
    page.get_by_role("link", name="Default columns").click()
    assert "width" in header_texts(page)


def test_a_sweep_at_a_glance(page: Any, store: Project, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    visit(page, f"/sweep?sweep={grid(store)}")
    page.wait_for_selector("#sweep[data-drawn]", state="attached")
    # Parallel coordinates of the three parameters and the chosen result, a line per run.
    labels = page.locator("#sweep-parcoords .annotation-text").all_text_contents()
    assert labels == ["lr", "width", "optimizer", "loss"]
    assert drawn_lines(page) == {"bright": 12, "faint": 0}
    expect(page.locator("#sweep-result")).to_have_value("results.loss")  # a result said better
    rows = page.locator("#sweep-table tbody tr")
    expect(rows).to_have_count(12)
    expect(page.locator("#sweep-count")).to_have_text("12 of 12 runs kept")
    # Brushing: drag along the lr axis over its top value (0.2, on a log axis).
    brush_axis(page, 0, 0.0, 0.2)
    expect(page.locator("#sweep-count")).to_have_text("4 of 12 runs kept")
    expect(rows).to_have_count(4)
    assert column_texts(page, "lr") == ["0.2"] * 4
    selected = page.eval_on_selector("#sweep-scatter", "p => p.data[0].selectedpoints.length")
    assert selected == 4  # the scatter shows the same runs
    assert drawn_lines(page) == {"bright": 4, "faint": 8}  # the others faint behind them
    assert brushes(page) == 1
    shot(page, "sweep", tmp_path, full_page=True)
    # The rows kept download as CSV.
    with page.expect_download() as download:
        page.locator("#sweep-csv").click()
    table = list(csv.reader(io.StringIO(Path(download.value.path()).read_text())))
    assert table[0][:6] == ["id", "name", "status", "params.lr", "params.width",
                            "params.optimizer"]  # fmt: skip
    assert len(table) == 5 and all(row[3] == "0.2" for row in table[1:])
    # A second brush, on width's top value (256): both hold.
    brush_axis(page, 1, 0.0, 0.2)
    expect(page.locator("#sweep-count")).to_have_text("2 of 12 runs kept")
    assert column_texts(page, "lr") == ["0.2"] * 2 and column_texts(page, "width") == ["256"] * 2
    assert drawn_lines(page) == {"bright": 2, "faint": 10}
    assert brushes(page) == 2
    # A click on the width axis, no drag, clears its brush alone.
    brush_axis(page, 1, 0.5, 0.5)
    expect(page.locator("#sweep-count")).to_have_text("4 of 12 runs kept")
    assert brushes(page) == 1
    page.get_by_role("button", name="Clear the brushing").click()
    expect(rows).to_have_count(12)
    expect(page.locator("#sweep-count")).to_have_text("12 of 12 runs kept")
    assert brushes(page) == 0 and drawn_lines(page) == {"bright": 12, "faint": 0}
    # Another result and parameter: kept in the address.
    page.locator("#sweep-result").select_option("results.accuracy")
    page.locator("#sweep-x").select_option("params.width")
    expect(page).to_have_url(re.compile(r"result=results.accuracy.*x=params.width"))
    labels = page.locator("#sweep-parcoords .annotation-text").all_text_contents()
    assert labels == ["lr", "width", "optimizer", "accuracy"]
    assert page.eval_on_selector("#sweep-scatter", "p => p._fullLayout.xaxis.title.text") == (
        "width"
    )


# The sweep view's parallel coordinates are plotly scatter traces and shapes in SVG: the
# axes are its first shapes (lines), the brushes the filled rectangles after them.
SHAPES = "#sweep-parcoords .shapelayer path"


def drawn_lines(tab: Any) -> dict[str, int]:
    """The runs' lines drawn in the parallel coordinates (a subpath each, "M" starting it),
    bright (in colour) or faint (grey)."""
    return tab.eval_on_selector_all(
        "#sweep-parcoords .scatterlayer path.js-line",
        """paths => {
            const counts = {bright: 0, faint: 0};
            for (const path of paths) {
                const runs = ((path.getAttribute('d') || '').match(/M/g) || []).length;
                const [r, g, b] = getComputedStyle(path).stroke.match(/[0-9]+/g);
                const faint = r === g && g === b;
                counts[faint ? 'faint' : 'bright'] += runs;
            }
            return counts;
        }""",
    )


def brushes(tab: Any) -> int:
    return tab.eval_on_selector_all(
        SHAPES, "ps => ps.filter(p => Number(getComputedStyle(p).fillOpacity) > 0).length"
    )


def brush_axis(tab: Any, axis: int, top: float, bottom: float) -> None:
    """Drag along a parallel coordinates' axis from `top` to `bottom` (fractions of its
    height from the top); the same twice is a click."""
    box = axis_box(tab, axis)
    x = box["x"] + box["width"] / 2
    tab.mouse.move(x, box["y"] + top * box["height"])
    tab.mouse.down()
    tab.mouse.move(x, box["y"] + bottom * box["height"], steps=6)
    tab.mouse.up()


def axis_box(tab: Any, axis: int) -> dict[str, float]:
    """Where an axis is drawn. Plotly redraws its shapes on a resize (a full-page screenshot
    resizes the window), and a shape being redrawn has no box for a moment: wait it out."""
    shape = tab.locator(f"{SHAPES}[data-index='{axis}']")
    for _ in range(50):
        shape.wait_for(state="attached", timeout=5_000)
        box = shape.bounding_box()
        if box is not None:
            return box
        tab.wait_for_timeout(100)
    raise AssertionError(f"axis {axis} of the parallel coordinates is never drawn")


def column_texts(tab: Any, title: str) -> list[str]:
    at = header_index(tab, "#sweep-table", title)
    return tab.eval_on_selector_all(
        "#sweep-table tbody tr", f"rs => rs.map(r => r.cells[{at}].textContent)"
    )


def header_index(tab: Any, table: str, title: str) -> int:
    return tab.eval_on_selector(
        table,
        "(t, title) => [...t.tHead.rows[0].cells].findIndex(c => c.textContent.trim() == title)",
        title,
    )


def test_a_sweeps_curves_one_style_per_run_and_the_tools(page: Any, store: Project) -> None:
    from playwright.sync_api import expect

    visit(page, f"/curves?sweep={grid(store)}")
    page.wait_for_selector(".plot-group[data-drawn]", state="attached")
    legend = page.locator("ul.run-legend li")
    expect(legend).to_have_count(12)
    styles = legend.evaluate_all("items => items.map(i => [i.dataset.color, i.dataset.dash])")
    assert len({tuple(style) for style in styles}) == 12  # no two runs look alike
    drawn = page.evaluate("() => [...Array(200).keys()].map(n => JSON.stringify(runStyle(n)))")
    assert len(set(drawn)) == 200  # nor two of any number of runs
    loss = '.chart[data-name="loss"] .plot'
    lines = page.eval_on_selector(loss, "p => p._fullData.map(t => [t.line.color, t.line.dash])")
    assert [list(style) for style in lines] == [list(style) for style in styles]
    # test_acc, logged once per run: a bar per run, not twelve dots.
    expect(page.locator('.chart.once[data-name="test_acc"]')).to_have_count(1)
    # Time axes: wall time, then seconds since each run started.
    page.get_by_label("x axis").select_option("wall")
    page.wait_for_function(
        f"() => document.querySelector('{loss}')._fullLayout.xaxis.type == 'date'"
    )
    page.get_by_label("x axis").select_option("relative")
    page.wait_for_function(
        f"() => document.querySelector('{loss}')._fullLayout.xaxis.type == 'linear'"
    )
    first = page.eval_on_selector(loss, "p => p._fullData.map(t => t.x[0])")
    assert all(0 <= x < 30 for x in first)
    # Smoothing: each curve smoothed, the raw one faint behind it.
    page.get_by_label("smoothing").fill("0.9")
    page.wait_for_function(f"() => document.querySelector('{loss}')._fullData.length == 24")
    raw, smoothed = page.eval_on_selector(loss, "p => [p._fullData[0].y, p._fullData[1].y]")
    assert raw[0] == smoothed[0] and raw[5] != smoothed[5]
    # One chart's log scale leaves the others alone.
    page.get_by_label("log scale of accuracy").check()
    page.wait_for_function(
        "() => document.querySelector('.chart[data-name=\"accuracy\"] .plot')"
        "._fullLayout.yaxis.type == 'log'"
    )
    assert page.eval_on_selector(loss, "p => p._fullLayout.yaxis.type") == "linear"
    # Each chart downloads as CSV: every step of every run, whole.
    with page.expect_download() as download:
        page.locator('.chart[data-name="loss"] a.csv').click()
    lines = Path(download.value.path()).read_text().splitlines()
    assert lines[0] == "id,name,step,timestamp,results.loss"
    assert len(lines) == 1 + 12 * 40


def test_a_running_experiments_curve_grows_without_a_reload(page: Any, store: Project) -> None:
    from playwright.sync_api import expect

    for name in ("more", "go"):
        (store.path / name).unlink(missing_ok=True)
    proc = store.popen("run", "grow.py", "-n", "growing")
    try:
        visit(page, "/?q=growing")
        row = page.locator("table.experiments tbody tr", has_text="growing")
        expect(row.locator(".status")).to_have_text("running")
        row.get_by_role("link").first.click()
        page.wait_for_function(
            "() => document.querySelector('.plot') && document.querySelector('.plot')._fullData"
        )
        page.evaluate("() => { window.notReloaded = true; }")
        (store.path / "more").write_text("")
        page.wait_for_function(
            "() => document.querySelector('.plot')._fullData[0].x.length == 3", timeout=WAIT_MS
        )
        xs = page.eval_on_selector(".plot", "p => p._fullData[0].x")
        assert list(xs) == [0, 1, 2]
        expect(page.locator("#results-table tbody tr").first).to_contain_text("0.4")
        assert page.evaluate("() => window.notReloaded") is True  # it grew in place
        (store.path / "go").write_text("")
        assert proc.wait(timeout=60) == 0
        expect(page.locator(".status.big")).to_have_text("completed")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for name in ("more", "go"):
            (store.path / name).unlink(missing_ok=True)


def test_the_staged_queue_downloads_as_csv(page: Any, store: Project) -> None:
    visit(page, "/staged")
    with page.expect_download() as download:
        page.get_by_role("link", name="CSV of this table").first.click()
    table = list(csv.reader(io.StringIO(Path(download.value.path()).read_text())))
    assert table[0] == ["#", "ID", "Name", "Values", "Staged", ""]
    assert sorted(row[2] for row in table[1:]) == ["next-lr=0.4", "next-lr=0.6"]


def test_tag_one(page: Any, store: Project) -> None:
    from playwright.sync_api import expect

    experiment_id = ids(store, "slow")
    visit(page, f"/e/{experiment_id}")
    page.get_by_label("Add tags").fill("promising")
    page.get_by_role("button", name="Add tag").click()
    expect(page.locator(".flash")).to_have_text("Saved.")
    expect(page.locator(".tag-edit")).to_contain_text("promising")
    folder = store.home / "experiments" / experiment_id
    assert metadata(folder)["tags"] == ["baseline", "promising"]
    page.get_by_role("button", name="remove tag baseline").click()
    expect(page.locator(".flash")).to_have_text("Saved.")
    assert metadata(folder)["tags"] == ["promising"]
    visit(page, "/?tag=promising")
    expect(page.locator("table.experiments tbody tr")).to_have_count(1)


def test_a_running_experiment_finishes_before_your_eyes(page: Any, store: Project) -> None:
    from playwright.sync_api import expect

    (store.path / "go").unlink(missing_ok=True)
    proc = store.popen("run", "wait.py", "-n", "live")
    try:
        visit(page, "/?q=live")
        row = page.locator("table.experiments tbody tr", has_text="live")
        expect(row.locator(".status")).to_have_text("running")  # the table polls
        row.get_by_role("link").first.click()
        expect(page.locator("#stdout")).to_contain_text("waiting for go")
        (store.path / "go").write_text("")
        assert proc.wait(timeout=60) == 0
        expect(page.locator(".status.big")).to_have_text("completed")  # reloaded when it ended
        expect(page.locator("#stdout")).to_contain_text("finished")
        page.go_back()
        live = page.locator("table.experiments tbody tr", has_text="live")
        expect(live.locator(".status")).to_have_text("completed")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        (store.path / "go").unlink(missing_ok=True)


def test_delete_after_confirming(page: Any, store: Project) -> None:
    from playwright.sync_api import expect

    experiment_id = ids(store, "old-try")
    visit(page, f"/e/{experiment_id}")
    page.get_by_role("link", name="Delete").click()
    expect(page.locator("h1")).to_have_text(f"Delete experiment {experiment_id}?")
    page.get_by_role("link", name="Cancel").click()
    assert (store.home / "experiments" / experiment_id).is_dir()
    page.get_by_role("link", name="Delete").click()
    page.locator("#confirm").click()
    expect(page.locator(".flash")).to_have_text(f"Deleted experiment {experiment_id}.")
    assert not (store.home / "experiments" / experiment_id).exists()


# --- values at the edges: a store of their own ------------------------------------------------

EDGES = """
import yanex
big = yanex.get_param("big")  # 2**60, 2**60 + 1, 2**60 + 2: one double in JavaScript
i = big - 2**60
yanex.log_results({
    "huge": [-1e308, 0.0, 1e308][i],  # hi - lo overflows to Infinity
    "tiny": [5e-324, 1e-322, 1e-320][i],  # subnormal
    "exact": big,
    "vast": [-(10**400), 10**400, 10**400 + 1][i],  # past the doubles' range
    "decades": [1, 1000, big + 5][i],  # decades up to an int past 2**53: a log axis
})
"""
BIG = [2**60, 2**60 + 1, 2**60 + 2]


@pytest.fixture(scope="module")
def edges(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """A sweep over ints a double cannot tell apart whose results span the doubles; a clean
    run, a dirty one and one outside git (its dirty state null)."""
    root = tmp_path_factory.mktemp("edges")
    proj = Project(root / "edges", root / "home")
    proj.path.mkdir()
    git(proj.path, "init", "-q", "-b", "main")
    proj.write("edges.py", EDGES)
    proj.write("job.py", "print('ran')\n")
    proj.commit("edges")
    run_ok(proj, "run", "edges.py", "-m", "-p", f"big=list({', '.join(map(str, BIG))})")
    runs_of_each_git_state(proj)
    return proj


@pytest.fixture(scope="module")
def edges_server(edges: Project) -> Iterator[Server]:
    srv = Server.start(edges, "--all-projects")
    yield srv
    srv.stop()
    assert "Traceback" not in "".join(srv.stderr), "".join(srv.stderr)


def test_the_dirty_filter_takes_null_and_refuses_other_words(
    browser: Any, edges_server: Server
) -> None:
    from playwright.sync_api import expect

    # The error page of a bad filter is a 400, which the browser logs.
    with tab_of(browser, edges_server, allowed=("status of 400",)) as page:
        visit(page, "/?col=name,dirty")
        rows = page.locator("table.experiments tbody tr")
        expect(rows).to_have_count(6)
        for typed, names in [
            ("null", ["no-git"]),
            ("yes", ["dirty"]),
            ("no", [f"big={n}" for n in BIG] + ["clean"]),
        ]:
            page.get_by_label("filter Dirty").fill(typed)
            page.get_by_label("filter Dirty").press("Enter")
            expect(page).to_have_url(re.compile(f"f.dirty={typed}"))
            expect(rows).to_have_count(len(names))
            assert sorted(column(page, "Name")) == names, typed
        page.get_by_label("filter Dirty").fill("unknown")
        page.get_by_label("filter Dirty").press("Enter")
        expect(page.get_by_role("alert")).to_contain_text(
            "the Dirty filter 'unknown' is not yes, no or null"
        )
        expect(rows).to_have_count(0)  # not the clean runs


def edges_sweep(proj: Project) -> str:
    sweeps = {metadata(f)["sweep"] for f in proj.experiments() if metadata(f)["sweep"]}
    assert len(sweeps) == 1, sweeps
    return sweeps.pop()


def tick_labels(tab: Any) -> list[list[str]]:
    """The tick labels each axis of the parallel coordinates shows, bottom to top (the SVG
    text beside it: one column of labels an axis)."""
    found = tab.eval_on_selector_all(
        "#sweep-parcoords .scatterlayer .textpoint text",
        """ts => ts.filter(t => t.textContent).map(t => {
               const box = t.getBoundingClientRect();
               return [Math.round(box.right), box.top, t.textContent];
           })""",
    )
    axes: dict[int, list[tuple[float, str]]] = {}
    for right, top, label in found:
        axes.setdefault(right, []).append((top, label))
    return [[label for _, label in sorted(axes[x], reverse=True)] for x in sorted(axes)]


def line_heights(tab: Any) -> list[list[float]]:
    """Each run's heights on the axes, as its line is drawn (the page's traces: null
    separates runs)."""
    return tab.eval_on_selector(
        "#sweep-parcoords",
        """p => {
            const runs = [];
            for (const t of p._fullData.filter(t => t.mode === 'lines')) {
                let run = [];
                for (const y of t.y) {
                    if (y === null) { runs.push(run); run = []; } else run.push(y);
                }
            }
            return runs;
        }""",
    )


@pytest.mark.parametrize("result", ["huge", "tiny", "exact", "vast", "decades"])
def test_a_sweep_at_the_edges_of_the_doubles_draws(
    browser: Any, edges: Project, edges_server: Server, result: str
) -> None:
    from playwright.sync_api import expect

    with tab_of(browser, edges_server) as page:
        visit(page, f"/sweep?sweep={edges_sweep(edges)}&result=results.{result}&x=params.big")
        page.wait_for_selector("#sweep[data-drawn]", state="attached")
        assert drawn_lines(page) == {"bright": 3, "faint": 0}
        heights = line_heights(page)
        assert len(heights) == 3 and all(len(run) == 2 for run in heights)
        assert all(0 <= y <= 1 for run in heights for y in run)
        # 2**60, +1 and +2 apart on their axis, labelled with their own digits.
        assert sorted(run[0] for run in heights) == [0, 0.5, 1]
        big_ticks, result_ticks = tick_labels(page)
        assert big_ticks == [str(n) for n in BIG]
        assert len(set(result_ticks)) == len(result_ticks) >= 2
        if result != "vast":  # past the doubles, a label is 1.000e+400, and no double
            assert all(math.isfinite(float(label)) for label in result_ticks)
            # Each run at its own height, in its value's order.
            assert sorted(heights, key=lambda run: run[0]) == sorted(heights, key=lambda r: r[1])
            assert len({run[1] for run in heights}) == 3
        if result == "exact":
            assert result_ticks == [str(n) for n in BIG]
        if result == "decades":  # a log axis: 1000 a sixth of the way from 1 to 2**60
            assert sorted(round(run[1], 3) for run in heights) == [0, 0.166, 1]
        # The table and the scatter's hover show each value exactly.
        expect(page.locator("#sweep-table tbody tr")).to_have_count(3)
        assert sorted(column_texts(page, "big")) == [str(n) for n in BIG]
        assert sorted(column_texts(page, "exact")) == [str(n) for n in BIG]
        vast = [-(10**400), 10**400, 10**400 + 1]
        assert sorted(map(int, column_texts(page, "vast"))) == vast
        hover = page.eval_on_selector("#sweep-scatter", "p => p.data[0].customdata.map(c => c[0])")
        assert sorted(hover) == [str(n) for n in BIG]
        with page.expect_download() as download:
            page.locator("#sweep-csv").click()
        table = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
        assert sorted(int(row["params.big"]) for row in table) == BIG
        assert sorted(int(row["results.vast"]) for row in table) == vast
