"""The workbench's pages over HTTP (engine/web.py): sign-in, the session cookie and CSRF, a
read-only token, escaping, and the approval form refused and accepted by the run itself.
The same in a real browser: tests/test_workbench_browser.py."""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import httpx
import pytest

from engine.client import EngineClient
from engine.rest import create_app
from engine.web import SIGN_IN_TRIES_PER_MINUTE
from engine.web_security import COOKIE
from tests.fake_llm import Fault, Request, ToolUse
from tests.test_rest_api import factory, live
from tests.workbench import APPROVAL, CONFIG, HOSTILE, READER, WRITER, Bench, bench_server  # noqa: F401 (fixture)
from workflows.errors import RunFailed


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found, "the page has no CSRF token"
    return found.group(1)


async def test_a_page_without_a_session_goes_to_sign_in_and_the_token_becomes_a_cookie(
    bench: Bench,
):
    async with bench.http(token=None) as anyone:
        answer = await anyone.get("/runs/some-run/approve/review")
        assert answer.status_code == 303
        assert answer.headers["location"] == "/sign-in?next=%2Fruns%2Fsome-run%2Fapprove%2Freview"
        assert (await anyone.get("/workflows")).status_code == 401  # the API: no redirect
        wrong = await anyone.post("/sign-in", data={"token": "nope", "next": "/runs"})
        assert wrong.status_code == 401 and "not valid" in wrong.text
        assert COOKIE not in wrong.cookies
        signed = await anyone.post("/sign-in", data={"token": WRITER, "next": "//evil.example/"})
        assert signed.status_code == 303 and signed.headers["location"] == "/runs"
        cookie = signed.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
        assert "Secure" not in cookie  # plain HTTP (over TLS it is: test below)
        assert WRITER not in signed.headers["location"]
        anyone.cookies.set(COOKIE, WRITER)
        page = await anyone.get("/runs")
        assert page.status_code == 200 and "<h1>Runs</h1>" in page.text
        policy = page.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy
        # the session cookie is for pages only: the JSON API still asks for the header
        assert (await anyone.get("/workflows")).status_code == 401


async def test_run_page_shows_steps_prompts_and_replies_as_text(bench: Bench):
    bench.llm.reply = lambda request: f"A reply with {HOSTILE}"
    try:
        run_id = await bench.waiting_run(topic=HOSTILE)
    finally:
        bench.llm.reply = lambda request: f"Hello from {request.body.get('model')}"
    async with bench.http() as http:
        page = await http.get(f"/runs/{run_id}")
    html = page.text
    assert page.status_code == 200, html
    assert "<script>window.pwned" not in html and 'onerror="window' not in html
    assert "Write about &lt;script&gt;window.pwned = 1&lt;/script&gt;" in html  # the prompt
    assert "A reply with &lt;script&gt;" in html  # the reply
    assert re.search(r'state-done">done</span>\s*<strong>draft</strong>', html)
    assert re.search(r'state-running">running</span>\s*<strong>review</strong>', html)
    assert f'href="/runs/{run_id}/approve/review"' in html
    assert "waits for draft" in html
    await bench.engine.cancel(run_id)


async def test_approval_refused_beside_its_field_then_accepted(bench: Bench):
    run_id = await bench.waiting_run()
    link = f"/runs/{run_id}/approve/review"
    async with bench.session() as browser:
        form = await browser.get(link)
        assert form.status_code == 200
        assert '<option value="true" >yes</option>' in form.text.replace("  ", " ")
        assert '<option value="&#34;high&#34;"' in form.text  # an enum is a select of its values
        token = csrf_of(form.text)
        refused = await browser.post(
            link, data={"csrf": token, "approved": "maybe", "level": '"high"', "comment": "ok"}
        )
        assert refused.status_code == 400
        assert re.search(r"field-error[^>]*>&#39;approved&#39; must be a boolean", refused.text)
        assert "review" in (await bench.engine.status(run_id)).waiting_signals  # still waits
        accepted = await browser.post(
            link, data={"csrf": token, "approved": "true", "level": '"high"', "comment": "ok"}
        )
        assert accepted.status_code == 303, accepted.text
    result = await bench.engine.result(run_id)
    assert result.outputs["shipped"] is True
    assert result.steps["review"].outputs == {"approved": True, "level": "high", "comment": "ok"}


async def test_forged_posts_and_read_only_tokens_change_nothing(bench: Bench):
    run_id = await bench.waiting_run()
    async with bench.session() as browser:
        forged = await browser.post(f"/runs/{run_id}/act/cancel", data={"csrf": "0" * 64})
        assert forged.status_code == 403 and "not sent by this site" in forged.text
        missing = await browser.post(f"/runs/{run_id}/approve/review", data={"approved": "true"})
        assert missing.status_code == 403
    async with bench.session(READER) as reader:
        page = await reader.get(f"/runs/{run_id}")
        assert page.status_code == 200 and "<button" not in page.text.split("<main>")[1]
        form = await reader.get(f"/runs/{run_id}/approve/review")
        assert "may only read" in form.text and "<select" not in form.text
        refused = await reader.post(f"/runs/{run_id}/act/cancel", data={"csrf": csrf_of(page.text)})
        assert refused.status_code == 403 and "may only read" in refused.text
    async with bench.http() as other_site:  # a browser says so: refused, the API's too
        cross = {"sec-fetch-site": "cross-site"}
        for path in (f"/workflows/{run_id}/pause", f"/runs/{run_id}/act/cancel"):
            answer = await other_site.post(path, headers=cross)
            assert answer.status_code == 403 and "another site" in answer.text
    await asyncio.sleep(0.1)
    assert (await bench.engine.state(run_id)) == "running"
    assert not (await bench.engine.status(run_id)).paused
    async with bench.http() as script:  # a script's own header needs no CSRF token
        cancelled = await script.post(f"/runs/{run_id}/act/cancel")
        assert cancelled.status_code == 303
    assert (await bench.engine.state(run_id)) == "cancelled"


async def test_runs_list_filters_and_links_each_run_and_a_budget_is_raised_from_its_page(
    bench: Bench,
):
    run_id = await bench.waiting_run()
    async with bench.session() as browser:
        listed = await browser.get("/runs", params={"workflow": "wb-approval", "status": "running"})
        assert f'<a href="/runs/{run_id}">{run_id}</a>' in listed.text
        table = await browser.get(
            "/runs", params={"workflow": "nothing-by-this-name", "part": "table"}
        )
        assert "No runs." in table.text and "<html" not in table.text
        page = await browser.get(f"/runs/{run_id}")
        assert "Budget run: $0.0000, 6 of 100000 tokens" in page.text
        raised = await browser.post(
            f"/runs/{run_id}/act/budget",
            data={"csrf": csrf_of(page.text), "scope": "run", "max_tokens": "200000"},
        )
        assert raised.status_code == 303, raised.text
        preview = await browser.get(f"/runs/{run_id}", params={"rerun_from": "review"})
        assert "Reused as they are: draft;" in preview.text
    status = await bench.engine.status(run_id)
    assert status.budgets["run"].max_tokens == 200000
    await bench.engine.cancel(run_id)


async def test_definitions_checked_at_their_lines_and_started_with_typed_variables(bench: Bench):
    broken = "workflow:\n  name: broken\n  steps:\n    - id: one\n      type: set\n"
    broken += "      valuez: {a: 1}\n"
    typed = (
        "workflow:\n  name: wb-typed\n  variables:\n    count: {type: integer, default: 2}\n"
        "    note: {type: string, required: true, description: '<b>for people</b>'}\n"
        "  steps:\n    - {id: one, type: set, values: {twice: '{{ count * 2 }}'}}\n"
    )
    async with bench.session() as browser:
        listing = await browser.get("/definitions")
        assert 'href="/definitions?file=definitions/hello_world.yaml"' in listing.text
        for outside in ("../../etc/passwd", "/etc/passwd"):
            page = await browser.get("/definitions", params={"file": outside})
            assert page.status_code == 400 and "DEFINITIONS_DIR" in page.text
        token = csrf_of(listing.text)
        checked = await browser.post("/definitions", data={"csrf": token, "yaml": broken})
        assert re.search(
            r'<li class="bad" id="line-6">.*line 6, column \d+: unknown field', checked.text
        )
        assert "Start a run" not in checked.text
        valid = await browser.post("/definitions", data={"csrf": token, "yaml": typed})
        assert 'name="var.count" type="number" step="1" value="2"' in valid.text
        assert "note (required)" in valid.text and "&lt;b&gt;for people&lt;/b&gt;" in valid.text
        refused = await browser.post(
            "/definitions/start", data={"csrf": token, "yaml": typed, "var.count": "3"}
        )
        assert refused.status_code == 400 and "note" in refused.text
        started = await browser.post(
            "/definitions/start",
            data={"csrf": token, "yaml": typed, "var.count": "3", "var.note": "hi"},
        )
        assert started.status_code == 303, started.text
    run_id = started.headers["location"].split("/runs/")[1].split("?")[0]
    result = await bench.engine.result(run_id)
    assert result.outputs["twice"] == 6


class CountingClient(EngineClient):
    reads = 0

    async def status(self, execution_id: str) -> Any:
        self.reads += 1
        return await super().status(execution_id)


async def test_many_pages_following_a_run_cost_one_status_poll(bench: Bench):
    engine = CountingClient(bench.engine.temporal, bench.engine.settings, start_worker=False)
    run_id = await bench.waiting_run()
    app = create_app(bench.engine.settings, CONFIG, factory(engine))
    async with live(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as page:
        page.cookies.set(COOKIE, WRITER)
        async with page.stream("GET", f"/runs/{run_id}/events") as stream:
            async for line in stream.aiter_lines():
                if line.startswith("event: step_started"):
                    break
            engine.reads = 0
            tabs = [page.get(f"/runs/{run_id}", params={"part": "live"}) for _ in range(20)]
            for answer in await asyncio.gather(*tabs):
                assert answer.status_code == 200 and 'id="step-review"' in answer.text
            assert engine.reads <= 2  # the stream's one poll (every 0.5 s), not one per tab
    await bench.engine.cancel(run_id)


async def test_the_session_cookie_is_secure_over_tls(bench: Bench):
    app = create_app(bench.engine.settings, CONFIG, factory(bench.engine))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://workbench") as tls:
        signed = await tls.post("/sign-in", data={"token": WRITER})
    assert signed.status_code == 303 and "Secure" in signed.headers["set-cookie"]


async def test_a_failed_run_shows_the_providers_words_at_its_step(bench: Bench):
    bench.llm.fail_next(Fault(status=400, message="model <gpt-9> does not exist"))
    run_id = f"wb-fail-{uuid.uuid4().hex[:8]}"
    await bench.engine.start(bench.engine.load_yaml(APPROVAL), execution_id=run_id)
    with pytest.raises(RunFailed):
        await bench.engine.result(run_id)
    async with bench.http() as http:
        page = await http.get(f"/runs/{run_id}")
    assert page.status_code == 200
    assert 'id="run-state">failed</span>' in page.text
    assert re.search(r'state-failed">failed</span>\s*<strong>draft</strong>', page.text)
    step = page.text.split('id="step-draft"')[1].split("</li>")[0]
    assert "model &lt;gpt-9&gt; does not exist" in step  # the provider's words, escaped
    assert re.search(r'id="run-error">[^<]*draft[^<]*model &lt;gpt-9&gt;', page.text)
    assert "<button" not in page.text.split('id="live"')[0]  # an ended run: nothing to stop


async def test_a_for_each_of_child_runs_links_each_child(bench: Bench):
    run_id = f"wb-batch-{uuid.uuid4().hex[:8]}"
    batch = bench.engine.load_file("definitions/batch_greetings.yaml")
    await bench.engine.start(batch, {"names": ["Ann", "Bo"]}, execution_id=run_id, offline=True)
    await bench.engine.result(run_id)
    async with bench.http() as http:
        page = await http.get(f"/runs/{run_id}")
        step = page.text.split('id="step-greet_all"')[1].split("</li>")[0]
        for item in (0, 1):
            assert f'<a href="/runs/{run_id}%2Fgreet_all%2F{item}">greet_all/{item}</a>' in step
        child = await http.get(f"/runs/{run_id}%2Fgreet_all%2F1")
    assert child.status_code == 200 and "Hello" in child.text and "Bo" in child.text


async def test_guessing_tokens_is_slowed_down_even_for_the_right_one(bench: Bench):
    app = create_app(bench.engine.settings, CONFIG, factory(bench.engine))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://workbench") as guesser:
        for guess in range(SIGN_IN_TRIES_PER_MINUTE):
            wrong = await guesser.post("/sign-in", data={"token": f"guess-{guess}"})
            assert wrong.status_code == 401
        right = await guesser.post("/sign-in", data={"token": WRITER})
    assert right.status_code == 429 and "too many tries" in right.text
    assert "set-cookie" not in right.headers
    async with bench.http(token=None) as anyone:  # the gate does not cap this path's body
        huge = await anyone.post("/sign-in", content=b"token=" + b"x" * 100_000)
    assert huge.status_code == 413


async def test_tool_calls_and_their_results_are_shown_in_order(bench: Bench):
    agent = """
workflow:
  name: wb-agent
  steps:
    - id: answer
      type: llm_call
      model: gpt-4o-mini
      prompt: "Greet Kim"
      tools: [{workflow: definitions/hello_world.yaml}]
"""

    def reply(request: Request) -> str | list[ToolUse]:
        if not request.offered_tools:  # the child run's own call
            return "<i>Hi Kim</i>"
        if not request.tool_results:
            return [ToolUse("HelloWorld", {"user_name": "Kim"})]
        return "Greeted."

    bench.llm.reply = reply
    try:
        run = await bench.engine.start(bench.engine.load_yaml(agent))
        await bench.engine.result(run.execution_id)
    finally:
        bench.llm.reply = lambda request: f"Hello from {request.body.get('model')}"
    async with bench.http() as http:
        page = (await http.get(f"/runs/{run.execution_id}")).text
    step = page.split('id="step-answer"')[1].split("</li>")[0]
    shown = ["<h4>Prompt</h4>", "<h4>Tool call</h4>", "<h4>Tool result: HelloWorld</h4>"]
    places = [step.index(marker) for marker in [*shown, "Greeted."]]
    assert places == sorted(places)
    assert "&lt;i&gt;Hi Kim&lt;/i&gt;" in step and '"user_name": "Kim"' in step


async def test_unknown_run_is_a_page_that_says_so(bench: Bench):
    async with bench.http() as http:
        page = await http.get("/runs/no-such-run-<b>")
    assert page.status_code == 404
    assert "no-such-run-&lt;b&gt;" in page.text and "content-security-policy" in page.headers
