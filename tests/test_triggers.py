"""Webhook triggers (`POST /triggers/NAME`, engine/triggers.py) and the REST API's schedules,
on the session's dev server: a signed delivery starts one run, a redelivery none, a bad
signature is a 401 with nothing started, and a wrong body or trigger file is one line."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from engine.client import EngineClient
from engine.rest import create_app
from engine.rest_auth import ApiConfig, ApiToken
from engine.settings import Settings
from engine.triggers import load_triggers
from tests.conftest import new_worker
from workflows.errors import RunNotFound, UsageError

KEY = "hook-key-0123456789"
TOKEN = "ci-0123456789abcdef"
TICKET = """
workflow:
  name: ticket
  variables: {title: {type: string}, votes: {type: integer, default: 0}}
  steps:
    - {id: file, type: set, values: {line: "{{ title }} ({{ votes }})"}}
"""
TRIGGERS = """
triggers:
  ticket-opened:
    definition: ticket.yaml
    hmac_secret: HOOK_KEY
    delivery_header: X-GitHub-Delivery
    variables: {title: issue.title, votes: issue.reactions.total}
  form:
    definition: ticket.yaml
    token_secret: HOOK_KEY
    variables: {title: subject}
"""


def signed(body: bytes, key: str = KEY) -> str:
    return "sha256=" + hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


def settings_in(folder: Path, address: str, task_queue: str) -> Settings:
    (folder / "ticket.yaml").write_text(TICKET)
    (folder / "triggers.yaml").write_text(TRIGGERS)
    return dataclasses.replace(
        Settings.from_env({}),
        address=address,
        task_queue=task_queue,
        definitions_dir=folder,
        triggers_file=folder / "triggers.yaml",
        secrets={"HOOK_KEY": KEY},
    )


def api_for(engine: EngineClient) -> httpx.AsyncClient:
    async def connect() -> EngineClient:
        return engine

    config = ApiConfig(tokens=(ApiToken("ci", TOKEN),), rate_per_minute=100_000)
    app = create_app(engine.settings, config, connect)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")


async def test_a_signed_delivery_starts_one_run_and_a_redelivery_none(
    client: Client, tmp_path: Path
):
    async with new_worker(client, {}) as worker:
        address = client.service_client.config.target_host
        settings = settings_in(tmp_path, address, worker.task_queue)
        engine = EngineClient(client, settings, start_worker=False)
        delivery = uuid.uuid4().hex
        body = json.dumps({"issue": {"title": "Printer on fire", "reactions": {"total": 3}}})
        headers = {"X-GitHub-Delivery": delivery, "Content-Type": "application/json"}
        async with api_for(engine) as http:
            forged = await http.post(
                "/triggers/ticket-opened",
                content=body,
                headers={**headers, "X-Hub-Signature-256": signed(body.encode(), "wrong")},
            )
            assert forged.status_code == 401, forged.text
            assert forged.json()["message"] == "trigger ticket-opened: the signature does not match"
            unsigned = await http.post("/triggers/ticket-opened", content=body, headers=headers)
            assert unsigned.status_code == 401
            with pytest.raises(RunNotFound):  # neither started anything
                await engine.state(f"ticket-opened-{delivery}")

            good = {**headers, "X-Hub-Signature-256": signed(body.encode())}
            first = await http.post("/triggers/ticket-opened", content=body, headers=good)
            assert first.status_code == 200, first.text
            assert first.json()["started"] is True
            run_id = first.json()["execution_id"]
            assert run_id == f"ticket-opened-{delivery}"
            result = await engine.result(run_id)
            assert result.outputs["line"] == "Printer on fire (3)"

            again = await http.post("/triggers/ticket-opened", content=body, headers=good)
            assert again.status_code == 200, again.text
            assert again.json() == {
                "execution_id": run_id,
                "started": False,
                "message": f"delivery {delivery} was started before",
            }
            runs = [
                execution async for execution in client.list_workflows(f"WorkflowId = '{run_id}'")
            ]
            assert len(runs) == 1

            # a form with its own token, and bodies that do not fit: one line, nothing started
            form = {"X-Delivery-Id": "f-" + delivery, "X-Trigger-Token": KEY}
            answer = await http.post("/triggers/form", json={"subject": "Hi"}, headers=form)
            assert answer.status_code == 200 and answer.json()["started"], answer.text
            wrong_token = {**form, "X-Trigger-Token": "nope"}
            assert (await http.post("/triggers/form", json={}, headers=wrong_token)).json() == {
                "error": "unauthorized",
                "message": "trigger form: the token does not match",
                "problems": [],
            }
            for payload, words in [
                ({"title": "no subject"}, "the body has no 'subject' (mapped to variable 'title')"),
                ({"subject": ["a", "list"]}, "title"),
                ([1, 2], "the body must be a JSON object"),
            ]:
                fresh = {**form, "X-Delivery-Id": uuid.uuid4().hex}
                refused = await http.post("/triggers/form", json=payload, headers=fresh)
                assert refused.status_code == 400, refused.text
                assert words in refused.json()["message"]
                with pytest.raises(RunNotFound):
                    await engine.state(f"form-{fresh['X-Delivery-Id']}")
            missing = await http.post("/triggers/form", json={"subject": "x"}, headers={
                "X-Trigger-Token": KEY})  # fmt: skip
            assert missing.status_code == 400
            assert "send the delivery's id in X-Delivery-Id" in missing.json()["message"]
            assert (await http.post("/triggers/nope", json={})).status_code == 404


async def test_schedules_over_rest_need_a_token_and_refuse_bad_input_with_400(
    client: Client, tmp_path: Path
):
    address = client.service_client.config.target_host
    settings = settings_in(tmp_path, address, f"unused-{uuid.uuid4()}")
    engine = EngineClient(client, settings, start_worker=False)
    name = f"rest-{uuid.uuid4().hex[:8]}"
    create: dict[str, Any] = {"name": name, "workflow_file": "ticket.yaml", "every": "1h"}
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with api_for(engine) as http:
        assert (await http.post("/schedules", json=create)).status_code == 401
        changes: list[tuple[dict[str, Any], str]] = [
            ({"variables": {"title": "x", "votes": "many"}}, "votes"),
            ({"variables": {"titel": "x"}}, "did you mean 'title'"),
            ({"variables": {"title": "x"}, "cron": "0 9 * *", "every": None}, "does not parse"),
        ]
        for change, words in changes:
            answer = await http.post("/schedules", json={**create, **change}, headers=auth)
            assert answer.status_code == 400 and words in answer.json()["message"], answer.text
        ok = {**create, "variables": {"title": "daily"}, "paused": True}
        made = await http.post("/schedules", json=ok, headers=auth)
        assert made.status_code == 200, made.text
        assert made.json()["paused"] and made.json()["workflow_name"] == "ticket"
        taken = await http.post("/schedules", json=ok, headers=auth)
        assert taken.status_code == 400 and "exists already" in taken.json()["message"]
        shown = await http.get(f"/schedules/{name}", headers=auth)
        assert shown.json()["when"] == "every 1h"
        assert (await http.delete(f"/schedules/{name}", headers=auth)).status_code == 200
        assert (await http.get(f"/schedules/{name}", headers=auth)).status_code == 404


def test_a_wrong_trigger_file_is_one_line(tmp_path: Path):
    settings = settings_in(tmp_path, "localhost:7233", "q")
    for text, words in [
        ("triggers: {a: {definition: ticket.yaml}}", "give hmac_secret or token_secret"),
        ("triggers: {a: {definition: ticket.yaml, hmac_secret: NOPE}}", "no secret 'NOPE'"),
        (
            "triggers: {a: {definition: ticket.yaml, hmac_secret: HOOK_KEY, variables: {x: y}}}",
            "maps 'x', which ticket.yaml does not declare (it has title, votes)",
        ),
        ("triggers: {a: {definition: ticket.yaml, token_secret: HOOK_KEY, typo: 1}}", "typo"),
        ("[1]", "write `triggers:`"),
    ]:
        (tmp_path / "triggers.yaml").write_text(text)
        with pytest.raises(UsageError) as caught:
            load_triggers(settings)
        assert words in str(caught.value) and "\n" not in str(caught.value), caught.value
