"""The job panel in real JupyterLab and chromium: it renders, reaches Completed, shows logs."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

DEMO = Path(__file__).resolve().parents[2] / "notebooks" / "01-remote-process.ipynb"
MARKUP_CELL = (
    "%%remote_process\n"
    "print('<b>not bold</b> <img src=x onerror=\"document.title=1\"> \\x1b[31mnot red\\x1b[0m')\n"
    "markup = 1\n"
)
NO_WAIT_CELL = (
    "%%remote_process --no-wait\n"
    "import time\n"
    "for i in range(120):\n"
    "    print(f'tick {i}', flush=True)\n"
    "    time.sleep(0.5)\n"
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]


def _run_all(page) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()


def test_demo_notebook_panel_reaches_completed_in_jupyterlab(browser, lab, artifacts):
    url, root = lab
    nb = nbformat.read(DEMO, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(MARKUP_CELL))
    nb.cells.append(nbformat.v4.new_code_cell(NO_WAIT_CELL))
    nbformat.write(nb, root / "demo.ipynb")
    page = browser.new_page(viewport={"width": 1280, "height": 1100})
    try:
        page.goto(f"{url}/lab/tree/demo.ipynb?reset", timeout=60_000)
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
        # Idle alone can show before the kernel is connected; the status bar names the kernel.
        page.wait_for_selector(
            '.jp-Notebook-ExecutionIndicator[data-status="idle"]', timeout=60_000
        )
        page.locator(".jp-StatusBar-Widget", has_text="Idle").first.wait_for(timeout=60_000)
        _run_all(page)

        first = page.locator(".jupyter-remote-panel").first
        first.locator('.jr-badge[data-state="Completed"]').wait_for(
            state="attached", timeout=90_000
        )
        # Completed shows first; "written back" once the cell has applied the results.
        first.locator(".jr-status", has_text="written back").wait_for(timeout=30_000)
        first.scroll_into_view_if_needed()
        log = first.locator(".jr-log")
        assert "summarized 1,000,000 rows into 7 groups" in log.inner_text()
        assert first.locator(".jr-progress").count() == 1
        first.screenshot(path=str(artifacts / "lab-job-panel.png"))

        # A log line holding HTML and ANSI codes is shown as text, never as markup.
        marked = page.locator(".jupyter-remote-panel", has_text="not bold")
        marked.locator('.jr-badge[data-state="Completed"]').wait_for(
            state="attached", timeout=90_000
        )
        marked.scroll_into_view_if_needed()
        text = marked.locator(".jr-log").inner_text()
        assert '<b>not bold</b> <img src=x onerror="document.title=1"> not red' in text
        assert marked.locator(".jr-log b, .jr-log img").count() == 0
        assert page.title() != "1"

        jobs = page.locator(".jupyter-remote-jobs")
        jobs.wait_for(state="attached", timeout=30_000)
        assert jobs.locator(".jr-job-row").count() >= 2

        # --no-wait: the panel keeps streaming while the kernel is free, and Stop works.
        running = page.locator(".jupyter-remote-panel", has_text="tick 3")
        running.wait_for(state="attached", timeout=60_000)
        running.scroll_into_view_if_needed()
        assert running.locator('.jr-badge[data-state="InProgress"]').count() == 1
        # The log box scrolls and stays at its end: its <pre> keeps its height (no shrinking).
        shrink = running.locator(".jr-log pre").evaluate("e => getComputedStyle(e).flexShrink")
        assert shrink == "0"
        page.screenshot(path=str(artifacts / "lab-notebook-running.png"))
        running.locator(".jr-stop").click()
        running.locator(".jr-stop-yes").click()
        running.locator('.jr-badge[data-state="Stopped"]').wait_for(
            state="attached", timeout=60_000
        )
        assert "Stop requested" in running.inner_text()
        running.screenshot(path=str(artifacts / "lab-job-panel-stopped.png"))
    except Exception:
        page.screenshot(path=str(artifacts / "lab-failure.png"))
        raise
    finally:
        page.close()
