"""Actions against real peers on loopback: HTTP and SMTP servers, SQLite, the filesystem."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from pydantic import BaseModel
from temporalio.client import Client, WorkflowFailureError

from activities.actions import builtin_actions
from activities.database import DatabaseActions
from activities.email import EmailActions, SmtpSettings
from activities.files import FileActions
from activities.http import AddressGuard, HttpActions
from activities.registry import action, params_models
from engine.activity_catalog import build_actions
from engine.settings import Settings
from tests.conftest import definition, free_port, new_worker, smtp_server, start
from tests.postgres import postgres_server
from workflows.actions import DatabaseInsertParams, HttpFetchParams, SendEmailParams
from workflows.contracts import ActionInput, RunInput, RunResult
from workflows.errors import DefinitionError
from workflows.validation import load_definition


def actions_for(tmp_path: Path, allow: tuple[str, ...] = ("127.0.0.1",), smtp_port: int = 25):
    return builtin_actions(
        HttpActions(httpx.AsyncClient(), AddressGuard.from_list(allow), max_body_bytes=64),
        FileActions(tmp_path / "out"),
        EmailActions(SmtpSettings(host="127.0.0.1", port=smtp_port)),
        DatabaseActions({"default": f"sqlite:///{tmp_path}/db.sqlite"}),
    )


def fetch(url: str, extra: str = "") -> str:
    return steps(
        "    - id: get\n      type: action\n      action: http_fetch\n"
        f'      params: {{url: "{url}"{extra}}}\n      outputs: [page]'
    )


def steps(text: str) -> str:
    return (
        "workflow:\n  name: A\n  steps:\n"
        + text
        + '\n      retry: {initial_interval: "10ms", max_attempts: 3}\n'
    )


async def run(client: Client, text: str, actions, secrets=None) -> RunResult:
    async with new_worker(client, {}, actions=actions, secrets=secrets) as worker:
        handle = await start(client, worker, RunInput(definition=definition(text)))
        return await handle.result()


async def test_http_fetch_returns_status_headers_and_parsed_json(client, tmp_path, peer):
    state, url = peer
    text = fetch(f"{url}/item")
    result = await run(client, text, actions_for(tmp_path))
    page = result.outputs["page"]
    assert (page["status"], page["json"], page["truncated"]) == (200, {"ok": True}, False)
    assert state.requests[0]["path"] == "/item"


async def test_http_post_retries_5xx_with_one_idempotency_key(client, tmp_path, peer):
    state, url = peer
    state.statuses = [503, 200]
    text = steps(
        f"    - id: post\n      type: action\n      action: http_post\n"
        f'      params: {{url: "{url}/hook", json: {{a: 1}}}}'
    )
    result = await run(client, text, actions_for(tmp_path))
    assert result.steps["post"].attempts == 2
    keys = {request["headers"]["idempotency-key"] for request in state.requests}
    assert len(state.requests) == 2 and len(keys) == 1
    assert json.loads(state.requests[0]["body"]) == {"a": 1}


async def test_http_4xx_fails_at_once_with_status_and_body(client, tmp_path, peer):
    state, url = peer
    state.statuses = [404]
    state.body = b'{"error": "no such item"}'
    text = fetch(f"{url}/x")
    with pytest.raises(WorkflowFailureError) as caught:
        await run(client, text, actions_for(tmp_path))
    message = str(caught.value.cause)
    assert "after 1 attempt(s)" in message and "HTTP 404" in message and "no such item" in message


async def test_loopback_is_refused_unless_allowlisted(client, tmp_path, peer):
    state, url = peer
    text = fetch(f"{url}/")
    with pytest.raises(WorkflowFailureError) as caught:
        await run(client, text, actions_for(tmp_path, allow=()))
    assert "non-public address (127.0.0.1)" in str(caught.value.cause)
    assert "HTTP_ALLOWLIST" in str(caught.value.cause)
    assert state.requests == []


async def test_a_host_name_is_checked_then_reached_at_the_checked_address(tmp_path, peer):
    """The request goes to an address the guard checked (DNS is not asked again, so a
    second answer cannot swap in a private address), still naming the host it was for."""
    state, url = peer
    port = url.rsplit(":", 1)[1]
    guard = AddressGuard.from_list(["127.0.0.0/8", "::1/128"])
    addresses = await guard.check(f"http://localhost:{port}/")
    assert addresses and addresses[0] == "127.0.0.1"  # IPv4 first; the peer listens there
    http = HttpActions(httpx.AsyncClient(), guard, max_body_bytes=64)
    request = ActionInput(step_id="get", action="http_fetch", params={}, idempotency_key="k")
    page = await http.fetch(HttpFetchParams(url=f"http://localhost:{port}/named"), request)
    assert page["status"] == 200
    assert state.requests[0]["headers"]["host"] == f"localhost:{port}"


async def test_large_bodies_are_truncated_with_a_marker(client, tmp_path, peer):
    state, url = peer
    state.body = b"x" * 1000
    text = fetch(f"{url}/big")
    page = (await run(client, text, actions_for(tmp_path))).outputs["page"]
    assert page["truncated"] is True
    assert page["text"].startswith("x" * 64) and "[truncated: body over 64 bytes]" in page["text"]


async def test_secrets_reach_the_peer_but_never_the_history(client, tmp_path, peer):
    state, url = peer
    token = "s3cr3t-token-value"
    state.statuses = [401]
    state.body = f'{{"error": "bad token {token}"}}'.encode()
    text = fetch(f"{url}/", ', headers: {Authorization: "Bearer {{ secrets.API_TOKEN }}"}')
    async with new_worker(
        client, {}, actions=actions_for(tmp_path), secrets={"API_TOKEN": token}
    ) as worker:
        handle = await start(client, worker, RunInput(definition=definition(text)))
        with pytest.raises(WorkflowFailureError) as caught:
            await handle.result()
        history = (await handle.fetch_history()).to_json()
    assert state.requests[0]["headers"]["authorization"] == f"Bearer {token}"
    assert token not in history
    assert "secrets.API_TOKEN" in history
    assert token not in str(caught.value.cause) and "bad token secrets.API_TOKEN" in str(
        caught.value.cause
    )


async def test_save_to_file_writes_pretty_json_in_the_runs_folder(client, tmp_path):
    text = steps(
        "    - id: save\n      type: action\n      action: save_to_file\n"
        "      params: {path: reports, filename: r.json, data: {a: [1, 2]}}\n      outputs: [saved]"
    )
    result = await run(client, text, actions_for(tmp_path))
    [written] = (tmp_path / "out" / "runs").glob("test-*/reports/r.json")
    saved = written.relative_to(tmp_path / "out").as_posix()
    assert result.outputs["saved"] == {"path": saved, "bytes": written.stat().st_size}
    assert written.read_text() == '{\n  "a": [\n    1,\n    2\n  ]\n}'
    assert not [p for p in written.parent.iterdir() if p.name.startswith(".")]  # no temp file left


@pytest.mark.parametrize("path", ["../escape", "/etc"])
async def test_save_to_file_refuses_escapes(client, tmp_path, path):
    text = steps(
        "    - id: save\n      type: action\n      action: save_to_file\n"
        f"      params: {{path: '{path}', filename: x.txt, data: hi}}"
    )
    with pytest.raises(WorkflowFailureError) as caught:
        await run(client, text, actions_for(tmp_path))
    assert "refusing path" in str(caught.value.cause)
    assert not (tmp_path / "escape").exists()


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
async def test_database_insert_returns_keys_and_skips_rows_on_retry(tmp_path, engine):
    if engine == "sqlite":
        await _insert_twice(f"sqlite:///{tmp_path}/db.sqlite")
    else:
        with postgres_server() as url:
            await _insert_twice(url)


async def _insert_twice(url: str) -> None:
    database = DatabaseActions({"default": url})
    params = DatabaseInsertParams(
        table="tickets", data=[{"title": "a", "n": 1}, {"title": "b", "n": 2}]
    )
    request = ActionInput(step_id="s", action="database_insert", params={}, idempotency_key="wf/s")
    first = await database.insert(params, request)
    again = await database.insert(params, request)  # what a retried activity does
    assert first == {"table": "tickets", "inserted_ids": [1, 2], "skipped": 0}
    assert again == {"table": "tickets", "inserted_ids": [1, 2], "skipped": 2}


async def test_send_email_reaches_a_real_smtp_server(client, tmp_path):
    text = steps(
        "    - id: mail\n      type: action\n      action: send_email\n"
        "      params: {to: ann@example.org, subject: Report, body: All done.}"
    )
    with smtp_server() as (port, received):
        await run(client, text, actions_for(tmp_path, smtp_port=port))
    [envelope] = received
    assert envelope.rcpt_tos == ["ann@example.org"]
    assert b"Subject: Report" in envelope.content and b"All done." in envelope.content


class Slug(BaseModel):
    text: str


@action("slugify", Slug)
def slugify(params: Slug, request: ActionInput) -> str:
    return "-".join(params.text.lower().split())


async def test_custom_action_runs_and_its_params_are_checked(client, tmp_path):
    actions = {"slugify": slugify.__action__}  # type: ignore[attr-defined]
    text = steps(
        "    - id: slug\n      type: action\n      action: slugify\n"
        "      params: {text: Hello Big World}\n      outputs: [slug]"
    )
    parsed = load_definition(text, "a.yaml", params_models(actions))
    async with new_worker(client, {}, actions=actions) as worker:
        handle = await start(client, worker, RunInput(definition=parsed))
        assert (await handle.result()).outputs == {"slug": "hello-big-world"}


def test_custom_action_modules_are_loaded_from_the_environment(tmp_path):
    settings = Settings.from_env(
        {"ACTION_MODULES": "activities.example_actions", "OUTPUT_DIR": str(tmp_path)}
    )
    actions = build_actions(settings)
    assert "word_count" in actions and "http_fetch" in actions
    text = steps(
        "    - id: count\n      type: action\n      action: word_count\n      params: {txt: hi}"
    )
    with pytest.raises(DefinitionError, match="unknown param 'txt' for action word_count"):
        load_definition(text, "a.yaml", params_models(actions))


async def _send(port: int, **params) -> dict:
    from temporalio.testing import ActivityEnvironment

    email = EmailActions(SmtpSettings(host="127.0.0.1", port=port))
    request = ActionInput(step_id="m", action="send_email", params={}, idempotency_key="wf/m")
    return await ActivityEnvironment().run(email.send, SendEmailParams(**params), request)


async def test_send_email_refuses_header_injection_and_too_many_recipients_without_retry():
    from temporalio.exceptions import ApplicationError

    with smtp_server() as (port, received):
        with pytest.raises(ApplicationError) as injected:
            await _send(port, to="a@example.org", subject="Hi\r\nBcc: all@example.org", body="x")
        with pytest.raises(ApplicationError) as many:
            await _send(port, to=[f"u{i}@example.org" for i in range(51)], subject="s", body="x")
    assert injected.value.non_retryable and many.value.non_retryable
    assert "1 to 50 recipients" in str(many.value) and received == []


async def test_send_email_fails_when_a_recipient_is_refused():
    from aiosmtpd.controller import Controller
    from temporalio.exceptions import ApplicationError

    class Picky:
        async def handle_RCPT(self, server, session, envelope, address, options):  # noqa: N802
            if address.startswith("nobody"):
                return "550 no such user"
            envelope.rcpt_tos.append(address)
            return "250 OK"

    controller = Controller(Picky(), hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        with pytest.raises(ApplicationError) as some:
            await _send(
                controller.port, to=["ann@example.org", "nobody@example.org"], subject="s", body="x"
            )
        with pytest.raises(ApplicationError) as every:
            await _send(controller.port, to="nobody@example.org", subject="s", body="x")
    finally:
        controller.stop()
    assert some.value.non_retryable and "refused for nobody@example.org (550" in str(some.value)
    assert every.value.non_retryable and "every recipient was refused" in str(every.value)
