"""The actions issue's acceptance: fetch a page, summarise it, save, insert, post and mail it,
with every action forced to fail once AFTER its effect; each peer still shows one effect."""

from __future__ import annotations

import inspect
import json
import sqlite3
from pathlib import Path
from typing import Any

from temporalio import activity

from activities.endpoints import Endpoint
from activities.registry import ActionSpec
from tests.conftest import definition, new_worker, smtp_server, start
from tests.fake_llm import FakeLlmServer
from tests.test_actions import actions_for
from workflows.contracts import ActionInput, RunInput


def fail_once_after_effect(spec: ActionSpec) -> ActionSpec:
    """The worker 'loses' the first attempt's result after the effect happened."""

    async def run(params: Any, request: ActionInput) -> Any:
        value = spec.run(params, request)
        if inspect.isawaitable(value):
            value = await value
        if activity.info().attempt == 1:
            raise RuntimeError("connection to Temporal lost before the result was recorded")
        return value

    return ActionSpec(spec.name, spec.params, run)


RETRY = '\n      retry: {initial_interval: "10ms"}'
PIPELINE = f"""
workflow:
  name: FetchSummariseStore
  defaults:
    model: gpt-4o-mini
  steps:
    - id: fetch
      type: action
      action: http_fetch
      params: {{url: "URL/article"}}
      outputs: [page]{RETRY}
    - id: summarise
      type: llm_call
      prompt: "Summarise: {{{{ page.text }}}}"
      outputs: [summary]
    - id: save
      type: action
      action: save_to_file
      params: {{filename: summary.txt, data: "{{{{ summary }}}}"}}{RETRY}
    - id: store
      type: action
      action: database_insert
      params: {{table: summaries, data: {{summary: "{{{{ summary }}}}"}}}}{RETRY}
    - id: post
      type: action
      action: http_post
      params: {{url: "URL/hook", json: {{summary: "{{{{ summary }}}}"}}}}{RETRY}
    - id: mail
      type: action
      action: send_email
      params: {{to: ann@example.org, subject: Summary, body: "{{{{ summary }}}}"}}{RETRY}
"""


async def test_each_peer_shows_one_effect_despite_a_retry(client, tmp_path: Path, peer):
    state, url = peer
    state.body = b"Durable execution keeps finished work."
    reply = "Finished work is kept."
    with smtp_server() as (smtp_port, received), FakeLlmServer(reply=lambda r: reply) as llm:
        actions = {
            name: fail_once_after_effect(spec)
            for name, spec in actions_for(tmp_path, smtp_port=smtp_port).items()
        }
        endpoints = {"openai": Endpoint(api_key="k", base_url=llm.openai_url)}
        async with new_worker(client, endpoints, actions=actions) as worker:
            run_input = RunInput(definition=definition(PIPELINE.replace("URL", url)))
            handle = await start(client, worker, run_input)
            result = await handle.result()

    assert all(result.steps[s].attempts == 2 for s in ("fetch", "save", "store", "post", "mail"))
    assert len(llm.requests) == 1 and "Durable execution" in llm.requests[0].prompt_text
    posts = [r for r in state.requests if r["method"] == "POST"]
    assert len(posts) == 2  # the retry reached the peer ...
    assert len({r["headers"]["idempotency-key"] for r in posts}) == 1  # ... with the same key
    assert json.loads(posts[0]["body"]) == {"summary": "Finished work is kept."}
    run_folder = tmp_path / "out" / "runs" / handle.id
    assert (run_folder / "summary.txt").read_text() == "Finished work is kept."
    assert [p.name for p in run_folder.iterdir() if p.is_file()] == ["summary.txt"]
    with sqlite3.connect(tmp_path / "db.sqlite") as database:
        rows = database.execute("select summary from summaries").fetchall()
    assert rows == [("Finished work is kept.",)]
    assert len(received) == 1
