"""The workbench in a real browser: the operating system's Chromium (`apt-get install
chromium`; .ci/run installs it) driven by Playwright, one browser for the module. An
approver with a link and a token answers a waiting run (refused, then accepted, the page
following the run to its end without a reload); a read-only token sees no buttons; a reply
holding a script stays text; pause, cancel and rerun from the page. Screenshots of the run
page and the approval form go to test-results/workbench/ for a person to look at."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.conftest import ROOT
from tests.workbench import (  # noqa: F401 (fixture)
    APPROVAL,
    HOSTILE,
    READER,
    WRITER,
    Bench,
    bench_server,
    evaluation,
)

SHOTS = ROOT / "test-results" / "workbench"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium (apt-get install chromium)")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        await launched.close()


async def signed_in(browser: Browser, bench: Bench, path: str, token: str = WRITER) -> Page:
    """A new browser session that opens `path`, is sent to sign in, and comes back."""
    page = await (await browser.new_context(base_url=bench.url)).new_page()
    page.set_default_timeout(15_000)
    await page.goto(path)
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert token not in page.url
    await page.get_by_label("Token").fill(token)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"**{path}")
    return page


async def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


async def test_an_approver_with_a_link_and_a_token_approves_and_watches_the_run_end(
    browser: Browser, bench: Bench
):
    run_id = await bench.waiting_run()
    page = await signed_in(browser, bench, f"/runs/{run_id}/approve/review")
    approved = page.get_by_label("approved")
    assert await approved.locator("option").all_inner_texts() == ["choose", "yes", "no"]
    assert await page.get_by_label("level").locator("option").all_inner_texts() == [
        "choose",
        "low",
        "high",
    ]
    await shot(page, "approval-form")
    # a value the form does not offer (sent by hand) is refused by the run, beside its field
    await approved.evaluate("s => s.add(new Option('maybe', 'maybe', true, true))")
    await page.get_by_label("level").select_option("high")
    await page.get_by_role("button", name="Send").click()
    await expect(page.locator(".field-error")).to_have_text(
        "'approved' must be a boolean, not 'maybe'"
    )
    await page.get_by_label("approved").select_option("true")
    await page.get_by_label("level").select_option("high")
    await page.get_by_label("comment").fill("ship it")
    await page.get_by_role("button", name="Send").click()
    await page.wait_for_url(f"**/runs/{run_id}?done=approved")
    await page.evaluate("window.stillThisPage = true")
    await expect(page.locator("#run-state")).to_have_text("completed")  # live, no reload
    assert await page.evaluate("window.stillThisPage") is True
    await expect(page.locator("#run-outputs")).to_contain_text('"shipped": true')
    await shot(page, "run-completed")


async def test_a_reply_holding_a_script_is_shown_as_text_and_never_runs(
    browser: Browser, bench: Bench
):
    bench.llm.reply = lambda request: f"Reply: {HOSTILE}"
    try:
        run_id = await bench.waiting_run(topic=HOSTILE)
    finally:
        bench.llm.reply = lambda request: f"Hello from {request.body.get('model')}"
    page = await signed_in(browser, bench, f"/runs/{run_id}")
    await expect(page.locator("#step-draft .reply")).to_have_text(f"Reply: {HOSTILE}")
    await expect(page.locator("#step-draft .prompt")).to_have_text(f"Write about {HOSTILE}")
    await expect(page.locator("#step-review")).to_contain_text("running")
    await expect(page.locator("#step-publish")).to_contain_text("waiting")
    assert await page.evaluate("window.pwned") is None
    assert await page.locator("#live img").count() == 0
    await shot(page, "run-waiting")
    await bench.engine.cancel(run_id)


async def test_a_read_only_token_sees_the_run_and_no_buttons(browser: Browser, bench: Bench):
    run_id = await bench.waiting_run()
    page = await signed_in(browser, bench, f"/runs/{run_id}", token=READER)
    await expect(page.locator("#step-review")).to_contain_text("running")
    assert await page.locator("main button").count() == 0
    await page.goto(f"/runs/{run_id}/approve/review")
    await expect(page.get_by_text("This token may only read")).to_be_visible()
    assert await page.locator("main form").count() == 0
    await bench.engine.cancel(run_id)


async def test_pause_resume_cancel_and_rerun_from_the_page(browser: Browser, bench: Bench):
    run_id = await bench.waiting_run()
    page = await signed_in(browser, bench, f"/runs/{run_id}")
    await page.get_by_role("button", name="Pause").click()
    await expect(page.locator(".state-paused")).to_be_visible()
    await page.get_by_role("button", name="Resume").click()
    await expect(page.get_by_role("button", name="Pause")).to_be_visible()
    page.once("dialog", lambda dialog: dialog.dismiss())
    await page.get_by_role("button", name="Cancel").click()
    assert await bench.engine.state(run_id) == "running"  # not confirmed: nothing happened
    page.once("dialog", lambda dialog: dialog.accept())
    await page.get_by_role("button", name="Cancel").click()
    await expect(page.locator("#run-state")).to_have_text("cancelled")
    await page.locator("summary", has_text="Rerun").click()
    await page.get_by_label("From step").select_option("review")
    await page.get_by_role("button", name="Show what is reused").click()
    await expect(page.locator(".plan")).to_contain_text("Reused as they are: draft;")
    await page.get_by_label("topic").fill("coffee")
    page.once("dialog", lambda dialog: dialog.accept())
    await page.get_by_role("button", name="Rerun").click()
    await page.wait_for_url("**-resumed-*")
    new_id = Path(page.url.split("?")[0]).name
    await expect(page.locator("#step-review")).to_contain_text("running")
    await expect(page.locator("#step-draft")).to_contain_text("done")  # taken as it was
    status = await bench.engine.status(new_id)
    assert status.variables["topic"] == "coffee"
    await bench.engine.cancel(new_id)


async def test_an_evaluation_report_shows_rows_side_by_side_and_links_their_runs(
    browser: Browser, bench: Bench, tmp_path: Path
):
    run_id = await evaluation(bench, tmp_path)
    page = await signed_in(browser, bench, f"/runs/{run_id}")
    await page.locator("#eval-report").click()
    await expect(page.locator(".report-metrics")).to_contain_text("accuracy")
    rows = page.locator("ol.disagree > li")
    await expect(rows).to_have_count(2)
    second = rows.nth(1)
    script = "<script>window.pwned = 1</script>"  # shown as JSON text: quotes escaped
    await expect(second.locator(".row-input")).to_contain_text(f"refund {script}")
    await expect(second.locator('[data-variant="big"] .row-output')).to_contain_text(script)
    assert await page.evaluate("window.pwned") is None
    assert await page.locator("main img").count() == 0
    await shot(page, "evaluation-report")
    await second.locator('[data-variant="big"]').get_by_role("link", name="its run").click()
    await expect(page.locator("h1")).to_have_text(f"{run_id}/shard0/row1_v1")
    await expect(page.locator("#step-classify")).to_contain_text("done")


@pytest.mark.slow
async def test_a_streamed_reply_appears_on_the_page_as_it_arrives(browser: Browser, bench: Bench):
    alphabet = " ".join("abcdefghijklmnopqrstuvwxyz")
    bench.llm.reply = lambda request: alphabet
    bench.llm.stream_pieces, bench.llm.stream_delay = 8, 0.5
    try:
        loaded = bench.engine.load_yaml(APPROVAL)
        run_id = (await bench.engine.start(loaded, {"topic": "letters"})).execution_id
        page = await signed_in(browser, bench, f"/runs/{run_id}")
        stream = page.locator('pre[data-stream="draft"]')
        await expect(stream).to_contain_text("a b c")
        assert await page.locator("#step-draft .reply").count() == 0  # still arriving
        await expect(page.locator("#step-draft .reply")).to_have_text(alphabet)
    finally:
        bench.llm.reply = lambda request: f"Hello from {request.body.get('model')}"
        bench.llm.stream_pieces, bench.llm.stream_delay = 5, 0.0
    await bench.engine.cancel(run_id)
