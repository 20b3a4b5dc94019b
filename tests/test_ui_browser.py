"""The dashboard in a real browser: Debian's headless Chromium, driven by Playwright, against a
real `yanex ui` over a store made by real runs. One server and one browser for the module.

It opens the table and filters it, opens an experiment and sees its curve drawn, selects two
and compares them, tags one, watches a running one finish, and deletes one after confirming.
No page may log an error (a refused script or style, a failed request) meanwhile.

The screenshots in the README are taken here: set YANEX_SCREENSHOTS to a folder to keep them
(``YANEX_SCREENSHOTS=docs/screenshots python -m pytest tests/test_ui_browser.py``).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Project, git, metadata
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
random.seed(round(lr * 1000) + width)
for step in range(40):
    loss = 0.12 + 2.0 * math.exp(-3 * lr * step) + random.uniform(-0.03, 0.03)
    if yanex.get_param("fail", False):
        loss = 0.3 * 1.6**step
    yanex.log_results({"loss": round(loss, 4), "accuracy": round(max(0.0, 1 - loss / 2.2), 4)})
    if yanex.get_param("fail", False) and step == 12:
        print("epoch 12: loss is nan", file=sys.stderr)
        raise RuntimeError("loss is NaN at step 12: lower the learning rate")
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
    proj.write(".gitignore", "go\n")
    proj.commit("train")
    run_ok(proj, "run", "train.py", "-p", "lr=0.1", "-p", "plot=true", "-n", "baseline",
           "-t", "baseline", "-d", "the reference run")  # fmt: skip
    run_ok(proj, "run", "train.py", "-p", "lr=0.03", "-n", "slow", "-t", "baseline")
    failed = proj.yanex("run", "train.py", "-p", "lr=0.9", "-p", "fail=true", "-n", "diverged")
    assert failed.returncode == 1, failed.stderr
    run_ok(proj, "stage", "train.py", "-p", "lr=list(0.05, 0.2)", "-p", "width=list(64, 256)")
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
    base = f"http://{server.host}:{server.port}"
    context = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=base)
    tab = context.new_page()
    tab.set_default_timeout(WAIT_MS)
    tab.goto(server.url)  # the printed URL, as a user opens it: its token becomes a cookie
    problems: list[str] = []
    tab.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda error: problems.append(str(error)))
    yield tab
    context.close()
    assert problems == []


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
    page.get_by_label("log scale").check()
    page.wait_for_function("() => document.querySelector('.plot')._fullLayout.yaxis.type == 'log'")
    page.get_by_label("log scale").uncheck()
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
    expect(page.locator("td.best")).to_have_count(2)  # the best loss and the best accuracy
    page.get_by_role("button", name="Overlay curves").click()
    page.wait_for_function(
        "() => document.querySelectorAll('#compare-plots .plot .scatterlayer .trace').length >= 4"
    )
    assert drawn_traces(page, "#compare-plots .plot") == [2, 2]
    shot(page, "compare", tmp_path, full_page=True)


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
