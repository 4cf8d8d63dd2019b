"""
The web view in a real headless Chromium (Debian's ``chromium`` and ``chromium-driver``).

A failing flow ships to a real ``structflow serve`` from another process;
Selenium drives the page as a person would: the runs page, the failed run,
the level filter, search, the live tail, the keyboard, the token prompt.
Under ``CI=true`` a missing Chromium fails the tests instead of skipping them.

The screenshots in ``docs/img/`` come from here: set
``STRUCTFLOW_UPDATE_SCREENSHOTS=1`` to write them there (otherwise they go
to a temporary directory, so the docs do not change on every run).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from needs import require
from servers import (
    Served,
    served_fixture,  # noqa: F401 - pytest finds it as 'served'
    ship_flow,
    ship_record,
)
from storelines import T0, line

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
DOCS_IMG = Path(__file__).resolve().parent.parent / "docs" / "img"
#: Seconds a page change may take to show (a wait with a timeout, not a timing check).
WAIT = 10.0
#: The live tail must show a new record within this many seconds of its delivery.
LIVE_WAIT = 5.0


def _chromium_ready() -> bool:
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        return False
    try:
        import selenium  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless Chromium with a fresh profile, driven by Selenium."""
    require(
        _chromium_ready(), "Chromium and its driver (Debian packages chromium, chromium-driver)"
    )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="structflow-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1366,900",
        "--force-device-scale-factor=1",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def runs(served: Served) -> dict[str, Any]:
    """A successful run, then the failing ETL run, shipped from other processes."""
    ship_flow(served, "daily-report", fail=False)
    ship_flow(served, "nightly-etl", fail=False)
    ship_flow(served, "daily-report", fail=False)
    return ship_flow(served, "nightly-etl")


def wait_for(browser: Any, condition: Callable[[Any], Any], timeout: float = WAIT) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, timeout, poll_frequency=0.1).until(condition)


def css(browser: Any, selector: str) -> list[Any]:
    return list(browser.find_elements("css selector", selector))


def screenshot(browser: Any, name: str, tmp_path: Path) -> None:
    """Save a screenshot of the whole page (docs/img/ when asked to update the docs)."""
    target = DOCS_IMG if os.environ.get("STRUCTFLOW_UPDATE_SCREENSHOTS") == "1" else tmp_path
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1366, max(700, min(int(height) + 20, 2400)))
    try:
        assert browser.save_screenshot(str(target / name))
    finally:
        browser.set_window_size(1366, 900)


def entry_levels(browser: Any) -> list[str]:
    return [row.get_attribute("data-level") for row in css(browser, "table.logs tr.entry")]


def open_run(browser: Any, served: Served, run: dict[str, Any], query: str = "") -> None:
    browser.get(f"{served.url}runs/{run['flow_run_id']}{query}")
    wait_for(browser, lambda b: css(b, "table.logs tr.entry") and css(b, ".timeline li"))


def test_the_runs_page_shows_the_failed_run(
    browser: Any, served: Served, runs: dict[str, Any], tmp_path: Path
) -> None:
    browser.get(served.url)
    row = wait_for(
        browser, lambda b: b.find_elements("css selector", f'tr[data-run="{runs["flow_run_id"]}"]')
    )[0]
    cells = [c.text for c in row.find_elements("css selector", "td")]
    assert (cells[0], cells[1], cells[4], cells[5], cells[6]) == (
        "nightly-etl",
        "Failed",
        "6",
        "1",
        "3",
    )
    assert "state-failed" in row.find_element("css selector", ".badge").get_attribute("class")
    screenshot(browser, "server-runs.png", tmp_path)


def test_the_runs_page_filters_by_state_in_a_shareable_address(
    browser: Any, served: Served, runs: dict[str, Any]
) -> None:
    browser.get(served.url + "?state=Success")
    wait_for(browser, lambda b: css(b, "table.runs tbody tr"))
    states = {b.text for b in css(browser, "table.runs tbody .badge")}
    assert states == {"Success"}


def test_opening_the_run_shows_its_task_runs_on_a_timeline(
    browser: Any, served: Served, runs: dict[str, Any]
) -> None:
    browser.get(served.url)
    link = wait_for(browser, lambda b: b.find_elements("link text", "nightly-etl"))[0]
    link.click()
    wait_for(browser, lambda b: css(b, ".timeline li"))
    assert browser.current_url == f"{served.url}runs/{runs['flow_run_id']}"
    tasks = [li.find_element("css selector", ".task").text for li in css(browser, ".timeline li")]
    assert tasks == ["extract", "transform", "transform[0]", "transform[1]", "transform[2]", "load"]
    bar = css(browser, ".timeline li")[-1].find_element("css selector", ".bar")
    assert "state-failed" in bar.get_attribute("class")


def test_the_level_filter_shows_only_errors(
    browser: Any, served: Served, runs: dict[str, Any]
) -> None:
    from selenium.webdriver.support.ui import Select

    open_run(browser, served, runs)
    Select(browser.find_element("id", "log-level")).select_by_value("error")
    wait_for(
        browser, lambda b: "level=error" in b.current_url and set(entry_levels(b)) == {"error"}
    )
    assert len(entry_levels(browser)) == 3


def test_the_task_filter_offers_the_runs_tasks_and_keeps_the_one_in_the_address(
    browser: Any, served: Served, runs: dict[str, Any]
) -> None:
    from selenium.webdriver.support.ui import Select

    open_run(browser, served, runs)
    choices = wait_for(
        browser,
        lambda b: (
            [o.get_attribute("value") for o in Select(b.find_element("id", "log-task")).options]
            if len(Select(b.find_element("id", "log-task")).options) > 1
            else None
        ),
    )
    assert choices == ["", "extract", "load", "transform"]
    Select(browser.find_element("id", "log-task")).select_by_value("transform")
    wait_for(
        browser,
        lambda b: (
            "task=transform" in b.current_url
            and {t.text.split("[")[0] for t in css(b, "table.logs tr.entry td.task")}
            == {"transform"}
        ),
    )
    # Opened from the address, the filter shows in the select, and the level
    # filter chosen next keeps it.
    open_run(browser, served, runs, "?task=transform")
    wait_for(
        browser,
        lambda b: (
            Select(b.find_element("id", "log-task")).first_selected_option.get_attribute("value")
            == "transform"
        ),
    )
    Select(browser.find_element("id", "log-level")).select_by_value("warning")
    wait_for(
        browser,
        lambda b: (
            "level=warning" in b.current_url
            and "task=transform" in b.current_url
            and entry_levels(b) == ["warning"]
        ),
    )


def test_search_finds_the_entries_with_a_word(
    browser: Any, served: Served, runs: dict[str, Any]
) -> None:
    from selenium.webdriver.common.keys import Keys

    open_run(browser, served, runs)
    box = browser.find_element("id", "log-search")
    box.send_keys("warehouse", Keys.ENTER)
    # The table is emptied while the new page of entries loads: wait for rows.
    wait_for(
        browser, lambda b: "search=warehouse" in b.current_url and 0 < len(entry_levels(b)) < 5
    )
    messages = [m.text for m in css(browser, "table.logs tr.entry td.msg")]
    assert "Loading 3 values into the warehouse" in messages
    assert all("warehouse" in m for m in messages), messages


def test_an_error_row_expands_to_its_preformatted_traceback(
    browser: Any, served: Served, runs: dict[str, Any], tmp_path: Path
) -> None:
    open_run(browser, served, runs, "?task=load")
    # The task's own record of its exception: its traceback has only the flow's frames.
    row = wait_for(
        browser,
        lambda b: [r for r in css(b, "tr.entry") if "Could not load the batch" in r.text],
    )[0]
    toggle = row.find_element("css selector", "td.toggle button")
    toggle.click()
    details = browser.find_element("id", toggle.get_attribute("aria-controls"))
    traceback = details.find_element("css selector", "pre.traceback")
    assert toggle.get_attribute("aria-expanded") == "true"
    assert "ConnectionError: warehouse dwh-1 refused the connection" in traceback.text
    screenshot(browser, "server-run.png", tmp_path)


def test_the_live_tail_appends_a_record_logged_afterwards(
    browser: Any, served: Served, runs: dict[str, Any]
) -> None:
    open_run(browser, served, runs)
    browser.find_element("id", "live-tail").click()
    wait_for(browser, lambda b: b.find_element("id", "live-status").text.startswith("Live"))
    assert "live=1" in browser.current_url
    ship_record(served.ingest_url, runs["flow_run_id"], "load", "retry scheduled for the warehouse")
    wait_for(
        browser,
        lambda b: [
            m for m in css(b, "tr.entry td.msg") if m.text == "retry scheduled for the warehouse"
        ],
        LIVE_WAIT,
    )


def test_the_live_tail_of_a_long_run_brings_the_rest_of_it_in_order_once(
    browser: Any, served: Served
) -> None:
    # 1,200 entries: the page shows the first 500; the tail brings the other
    # 700 (a backlog arriving in large reads), then what comes after.
    run = f"long-{uuid.uuid4()}"
    body = b"\n".join(
        line(f"step {i}", seconds=i / 1000, flow_run_id=run, flow_name="long", task_name="work")
        for i in range(1200)
    )
    assert served.post("api/logs", data=body + b"\n").json()["stored"] == 1200
    browser.get(f"{served.url}runs/{run}")
    wait_for(browser, lambda b: len(css(b, "table.logs tr.entry")) == 500)
    # Lines without lifecycle records: when the run ended is not known.
    ended = browser.find_element("xpath", "//dt[text()='Ended']/following-sibling::dd")
    assert ended.text == "not known (no lifecycle records)"
    browser.find_element("id", "live-tail").click()
    wait_for(browser, lambda b: len(css(b, "table.logs tr.entry")) == 1200, 60)
    served.post(
        "api/logs", data=line("after", seconds=5, flow_run_id=run, flow_name="long") + b"\n"
    )
    wait_for(browser, lambda b: len(css(b, "table.logs tr.entry")) == 1201, LIVE_WAIT)
    messages = browser.execute_script(
        "return [...document.querySelectorAll('table.logs tr.entry td.msg')]"
        ".map(cell => cell.textContent)"
    )
    assert messages == [f"step {i}" for i in range(1200)] + ["after"]


def test_on_a_phone_wide_screen_the_pages_do_not_scroll_sideways(
    browser: Any, served: Served, runs: dict[str, Any], tmp_path: Path
) -> None:
    browser.set_window_size(375, 800)
    try:
        width = browser.execute_script("return window.innerWidth")
        browser.get(served.url)
        wait_for(browser, lambda b: css(b, f'tr[data-run="{runs["flow_run_id"]}"]'))
        page = "return document.documentElement.scrollWidth"
        assert browser.execute_script(page) <= width
        open_run(browser, served, runs)
        assert browser.execute_script(page) <= width
        # The message column stays readable: the log table scrolls in its own box.
        message = css(browser, "table.logs tr.entry td.msg")[0]
        assert message.size["width"] >= 200
        browser.save_screenshot(str(tmp_path / "narrow-run.png"))
    finally:
        browser.set_window_size(1366, 900)


def test_a_run_still_running_shows_how_long_it_has_run_so_far(browser: Any, served: Served) -> None:
    run = f"going-{uuid.uuid4()}"
    ago = (dt.datetime.now(dt.UTC) - T0).total_seconds() - 90
    started = line(
        "Beginning Flow run for 'still-going'",
        seconds=ago,
        logger="structflow.FlowRunner",
        flow_run_id=run,
        flow_name="still-going",
        lifecycle="flow_run_started",
    )
    assert served.post("api/logs", data=started + b"\n").json()["stored"] == 1
    browser.get(f"{served.url}runs/{run}")
    duration = wait_for(
        browser,
        lambda b: b.find_elements("xpath", "//dt[text()='Duration']/following-sibling::dd"),
    )[0]
    assert re.fullmatch(r"1 min (2[89]|3\d|4\d) s so far", duration.text), duration.text


def test_the_page_works_from_the_keyboard_with_a_visible_focus(
    browser: Any, served: Served, runs: dict[str, Any]
) -> None:
    from selenium.webdriver.common.keys import Keys

    browser.get(served.url)
    link = wait_for(browser, lambda b: b.find_elements("link text", "nightly-etl"))[0]
    browser.find_element("css selector", "body").send_keys(Keys.TAB)
    outline = browser.execute_script("return getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"
    link.send_keys(Keys.ENTER)
    wait_for(browser, lambda b: "/runs/" in b.current_url and css(b, ".timeline li"))


def test_a_server_with_a_token_asks_for_it_once(
    browser: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    server = Served(f"sqlite:///{tmp_path_factory.mktemp('web-token') / 'logs.db'}", "tok-123")
    try:
        browser.get(server.url)
        dialog = wait_for(browser, lambda b: b.find_element("id", "token-dialog").is_displayed())
        assert dialog
        browser.find_element("id", "token-input").send_keys("tok-123\n")
        wait_for(browser, lambda b: b.find_element("id", "runs-status").text.startswith("Updated"))
        browser.refresh()
        wait_for(browser, lambda b: b.find_element("id", "runs-status").text.startswith("Updated"))
        assert not browser.find_element("id", "token-dialog").is_displayed()
    finally:
        browser.execute_script("sessionStorage.clear()")
        server.stop()
