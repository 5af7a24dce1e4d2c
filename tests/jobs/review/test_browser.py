"""The review page in a real browser (Playwright driving Debian's Chromium).

Skips with a message when Playwright or Chromium is missing (`make chromium` installs
Chromium from Debian; `playwright install` cannot download browsers here).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from jobs.review.app import create_app
from jobs.review.server import bind, serving_in_thread
from tests.jobs.review.runs import build_run

EDITED = "An edited answer, written by the reviewer in the browser."


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')"
    )
    executable = chromium_path()
    if executable is None:
        pytest.skip("Chromium is absent: `make chromium` (apt-get install chromium) installs it")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=executable, args=["--no-sandbox", "--disable-gpu"]
        )
        yield browser
        browser.close()


@contextmanager
def serving(run_dir: Path) -> Iterator[str]:
    with serving_in_thread(create_app(run_dir, api_key=""), bind("127.0.0.1", 0)) as url:
        yield url


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    yield page
    context.close()


def test_html_in_a_row_shows_as_text_and_never_runs(tmp_path, page):
    run_dir = build_run(tmp_path / "run")
    with serving(run_dir) as url:
        page.goto(f"{url}/#row=c1-p0")
        page.wait_for_selector("#card[data-id='c1-p0']")
        card = page.locator("#card")
        # The payloads would set this flag if the browser ran them.
        assert page.evaluate("window.__xss") is None
        assert "<script>window.__xss = 1</script>" in card.inner_text()
        assert '<img src="x" onerror="window.__xss = 1">' in card.inner_text()
        assert card.locator("script").count() == 0 and card.locator("img").count() == 0
        assert "**bold** `code`" in card.inner_text()  # markdown stays as typed
        assert "null" not in card.inner_text().split("\n")  # no absent part shown as "null"
        # The queue shows it as text too, and search finds it.
        page.fill("#f-search", "onerror")
        page.wait_for_selector("body[data-queue='1']")
        assert "<script>" in page.locator("#queue li").first.inner_text()
        assert page.evaluate("window.__xss") is None
    assert page.errors == []


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory, ray_session) -> Path:
    """A curate run over a small demo-data input (embed.model=hashing)."""
    from infra.config import load_config
    from jobs.curation.config import CurateConfig
    from jobs.curation.curate import run
    from jobs.demo.generator import generate, write_jsonl

    root = tmp_path_factory.mktemp("review-demo")
    write_jsonl(generate(300, seed=3), root / "noisy.jsonl")
    cfg = load_config(
        CurateConfig,
        None,
        ["embed.model=hashing", "selection.budget=24", "report=false"],
        inputs=(str(root / "noisy.jsonl"),),
        out=str(root / "curated"),
    )
    run(cfg)
    return root / "curated"


def queue_item(page, row_id: str):
    return page.locator(f"#queue li[data-id='{row_id}']")


def current_id(page) -> str:
    return page.locator("#card").get_attribute("data-id")


def next_card(page, previous: str) -> str:
    page.wait_for_function(
        "id => document.querySelector('#card').dataset.id !== id "
        "&& document.body.dataset.busy === '0'",
        arg=previous,
    )
    return current_id(page)


def review_three_rows(page, url: str) -> dict[str, str]:
    """Accept, reject (with a reason) and edit three rows with the keyboard, reload, and
    check the verdicts and the refill on the page; export with the button."""
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']")
    page.fill("#reviewer", "tester")
    page.locator("#card h2").click()  # leave the name field: keys are shortcuts again

    accepted = current_id(page)
    page.keyboard.press("a")
    rejected = next_card(page, accepted)
    cluster = queue_item(page, rejected).get_attribute("data-cluster")
    page.keyboard.press("r")
    page.wait_for_selector("#reject-panel")
    page.keyboard.press("2")  # unclear_instruction
    page.keyboard.press("Enter")
    next_card(page, rejected)
    # The refill joins the queue, maybe right after the rejected row: edit an original pick
    # that nobody has reviewed, chosen explicitly, so the test does not race the refill.
    page.wait_for_selector(f"#queue li[data-replaces='{rejected}']")
    target = page.locator("#queue li[data-state='unreviewed'][data-replaces='']").first
    edited = target.get_attribute("data-id")
    target.click()
    # The card may already show this row (the reject moved on to it): wait for the click's
    # own fetch, or its answer would replace the edit panel (the page ignores "e" until then).
    page.wait_for_selector(f"body[data-loading='0'][data-busy='0'] #card[data-id='{edited}']")
    page.keyboard.press("e")
    page.locator("#edit-panel textarea").last.fill(EDITED)
    assert page.locator("#card").get_attribute("data-id") == edited
    page.keyboard.press("Control+Enter")
    next_card(page, edited)

    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    states = {
        row_id: queue_item(page, row_id).get_attribute("data-state")
        for row_id in (accepted, rejected, edited)
    }
    assert states == {accepted: "accepted", rejected: "rejected", edited: "edited"}
    refill = page.locator(f"#queue li[data-replaces='{rejected}']")
    assert refill.count() == 1
    assert refill.get_attribute("data-cluster") == cluster
    assert refill.get_attribute("data-state") == "unreviewed"
    refill_id = refill.get_attribute("data-id")
    queue_item(page, rejected).click()
    page.wait_for_selector(f"#card[data-id='{rejected}']")
    status = page.locator("#status").inner_text()
    assert "unclear_instruction" in status and f"replaced by {refill_id}" in status
    assert "by tester" in status
    assert page.locator("#progress").get_attribute("data-verified") == "2"

    page.click("#export")
    page.wait_for_selector("body[data-exported='2']")
    return {"accepted": accepted, "rejected": rejected, "edited": edited, "refill": refill_id}


def check_outputs(run_dir: Path, ids: dict[str, str]) -> None:
    """verified.jsonl holds the accepted and edited rows; the ledger has every verdict."""
    selected_keys = set(json.loads((run_dir / "selected.jsonl").open().readline()))
    verified = [json.loads(line) for line in (run_dir / "verified.jsonl").read_text().splitlines()]
    by_id = {r["id"]: r for r in verified}
    assert set(by_id) == {ids["accepted"], ids["edited"]}
    assert all(set(r) == selected_keys for r in verified)
    assert by_id[ids["edited"]]["messages"][-1]["content"] == EDITED
    review = {
        r["id"]: r["review"]
        for r in pq.read_table(run_dir / "ledger.parquet", columns=["id", "review"]).to_pylist()
    }
    accepted, rejected = review[ids["accepted"]], review[ids["rejected"]]
    assert accepted["verdict"] == "accepted" and accepted["reviewer"] == "tester"
    assert rejected["verdict"] == "rejected" and rejected["reason"] == "unclear_instruction"
    assert review[ids["edited"]]["verdict"] == "edited"
    assert review[ids["refill"]] | {"time": None} == {
        "verdict": "unreviewed",
        "reason": None,
        "reviewer": None,
        "time": None,
        "replaces": ids["rejected"],
    }


def test_review_with_the_keyboard_on_a_planted_run(tmp_path, page):
    run_dir = build_run(tmp_path / "run")
    with serving(run_dir) as url:
        ids = review_three_rows(page, url)
    assert page.errors == []
    check_outputs(run_dir, ids)


@pytest.mark.ray
def test_review_a_demo_run_in_the_browser(demo_run, page):
    with serving(demo_run) as url:
        ids = review_three_rows(page, url)
    assert page.errors == []
    check_outputs(demo_run, ids)


def test_keys_wait_for_a_row_that_is_still_loading(tmp_path, page):
    """The key "e" pressed while a clicked row loads opens no panel (the row's card would replace
    it); once the card is in, "e" opens the panel and typing into it survives."""
    run_dir = build_run(tmp_path / "run")
    with serving(run_dir) as url:
        page.goto(url)
        page.wait_for_selector("body[data-ready='1'][data-loading='0']")
        held = []
        page.route("**/api/rows/*", lambda route: held.append(route))  # answered below
        other = page.locator("#queue li:not(.current)").first
        target = other.get_attribute("data-id")
        other.click()
        page.wait_for_selector("body[data-loading='1']")
        while not held:  # the route handler runs once the request reaches Playwright
            page.wait_for_timeout(20)
        page.keyboard.press("e")
        assert page.locator("#edit-panel").count() == 0
        for route in held:
            route.continue_()
        page.unroute("**/api/rows/*")
        page.wait_for_selector(f"body[data-loading='0'] #card[data-id='{target}']")
        page.keyboard.press("e")
        page.locator("#edit-panel textarea").last.fill(EDITED)
        assert page.locator("#edit-panel textarea").last.input_value() == EDITED
    assert page.errors == []
