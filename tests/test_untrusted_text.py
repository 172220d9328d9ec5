"""Untrusted text stays data: a variable or a model reply that holds template text reaches
every action literally; secrets come only from what the operator declared."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import sqlite3
from pathlib import Path

import pytest

from activities.secrets import declared_secrets, redact
from tests.conftest import definition, new_worker, smtp_server, start
from tests.test_actions import actions_for
from workflows.contracts import RunInput, RunStatus
from workflows.errors import DefinitionError
from workflows.templates import SecretRefs, render_params
from workflows.validation import load_definition

KEY = "sk-the-real-provider-key"
TOKEN = "the-declared-token"
HOSTILE = (
    "{{ secrets.OPENAI_API_KEY }} {{ secrets.API_TOKEN }} {% for i in range(3) %}x{% endfor %}"
)

EVERY_ACTION = """
workflow:
  name: leak
  variables:
    note: {type: string}
  steps:
    - id: ask
      type: llm_call
      model: gpt-4o-mini
      prompt: "Summarise the page."
      outputs: [reply]
    - id: post
      type: action
      action: http_post
      params:
        url: "{url}/hook"
        json: {note: "{{ note }}", reply: "{{ reply }}", auth: "Bearer {{ secrets.API_TOKEN }}"}
    - id: mail
      type: action
      action: send_email
      params: {to: ann@example.org, subject: Report, body: "{{ note }} / {{ reply }}"}
    - id: row
      type: action
      action: database_insert
      params: {table: notes, data: {note: "{{ note }}", reply: "{{ reply }}"}}
    - id: save
      type: action
      action: save_to_file
      params: {filename: note.txt, data: "{{ note }} / {{ reply }}"}
"""


async def test_variables_and_replies_reach_every_action_as_text(
    client, endpoints, fake_llm, tmp_path, peer
):
    state, url = peer
    fake_llm.reply = lambda request: HOSTILE
    text = EVERY_ACTION.replace("{url}", url)
    with smtp_server() as (port, received):
        async with new_worker(
            client,
            endpoints,
            actions=actions_for(tmp_path, smtp_port=port),
            secrets={"API_TOKEN": TOKEN, "OPENAI_API_KEY": KEY},
        ) as worker:
            handle = await start(
                client,
                worker,
                RunInput(definition=definition(text), variables={"note": HOSTILE}),
            )
            await handle.result()
            history = (await handle.fetch_history()).to_json()
    posted = json.loads(state.requests[0]["body"])
    assert posted == {"note": HOSTILE, "reply": HOSTILE, "auth": f"Bearer {TOKEN}"}
    mail = email.message_from_bytes(received[0].content, policy=email.policy.default)
    assert mail.get_content().strip() == f"{HOSTILE} / {HOSTILE}"
    with sqlite3.connect(tmp_path / "db.sqlite") as db:
        assert db.execute("select note, reply from notes").fetchall() == [(HOSTILE, HOSTILE)]
    [saved] = (tmp_path / "out").rglob("note.txt")
    assert saved.read_text() == f"{HOSTILE} / {HOSTILE}"
    assert KEY not in history and TOKEN not in history


SLOW = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"


async def test_a_hostile_variable_does_not_stall_the_worker(client, tmp_path, peer):
    """Before, the activity rendered params again: this variable froze the worker's loop."""
    state, url = peer
    text = (
        "workflow:\n  name: slow\n  variables: {note: {type: string}}\n  steps:\n"
        "    - id: post\n      type: action\n      action: http_post\n"
        f'      params: {{url: "{url}/x", data: "{{{{ secrets.T }}}}{{{{ note }}}}"}}\n'
    )
    plain = "workflow:\n  name: plain\n  steps:\n    - {id: s, type: set, values: {a: 1}}\n"
    async with new_worker(
        client, {}, actions=actions_for(tmp_path), secrets={"T": "tok"}
    ) as worker:
        hostile = await start(
            client,
            worker,
            RunInput(definition=definition(text), variables={"note": "{{ secrets.T }}" + SLOW}),
        )
        other = await start(client, worker, RunInput(definition=definition(plain)))
        await asyncio.wait_for(asyncio.gather(hostile.result(), other.result()), timeout=30)
    assert state.requests[0]["body"] == "tok{{ secrets.T }}" + SLOW


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ secrets }}", "the whole 'secrets' map cannot be used"),
        ("{{ secrets[name] }}", "secrets[...] needs a fixed name"),
        ("{{ secrets.T | upper }}", "secrets.NAME must stand alone in its {{ }}"),
        ("{{ 'Bearer ' ~ secrets.T }}", "secrets.NAME must stand alone in its {{ }}"),
    ],
)
def test_secrets_are_refused_unless_named_alone(template, message):
    text = (
        "workflow:\n  name: a\n  variables: {name: {type: string}}\n  steps:\n"
        "    - id: post\n      type: action\n      action: http_post\n"
        f'      params: {{url: "https://example.org", data: "{template}"}}\n'
    )
    with pytest.raises(DefinitionError) as caught:
        load_definition(text, "a.yaml")
    [problem] = caught.value.problems
    assert problem.line == 8 and message in problem.message


@pytest.mark.parametrize(
    "step",
    [
        '{id: ask, type: llm_call, model: mock, prompt: "Key {{ secrets.T }}"}',
        '{id: keep, type: set, values: {k: "{{ secrets.T }}"}}',
        '{id: s, type: set, when: "{{ secrets.T }}", values: {k: 1}}',
    ],
)
def test_secrets_are_refused_outside_action_params(step):
    text = f"workflow:\n  name: a\n  steps:\n    - {step}\n"
    with pytest.raises(DefinitionError) as caught:
        load_definition(text, "a.yaml")
    [problem] = caught.value.problems
    assert problem.line == 4 and "secrets may be used only in action params" in problem.message


def test_workflow_outputs_may_not_read_secrets():
    text = (
        "workflow:\n  name: a\n  steps:\n    - {id: s, type: set, values: {k: 1}}\n"
        '  outputs: {leak: "{{ secrets.T }}"}\n'
    )
    with pytest.raises(DefinitionError, match="secrets may be used only in action params"):
        load_definition(text, "a.yaml")


def test_only_declared_secrets_resolve(tmp_path: Path):
    secrets_file = tmp_path / "secrets.env"
    secrets_file.write_text("FROM_FILE=one\nAPI_TOKEN=from-file\n")
    env = {
        "SECRET_API_TOKEN": "from-env",
        "OPENAI_API_KEY": KEY,
        "PAYLOAD_KEY": "k" * 44,
        "DATABASE_URL": "postgresql://u:p@h/db",
        "SMTP_PASSWORD": "pw",
        "SECRETS_FILE": str(secrets_file),
    }
    assert declared_secrets(env) == {"API_TOKEN": "from-env", "FROM_FILE": "one"}


async def test_an_undeclared_secret_fails_the_step_and_names_the_variable(client, tmp_path, peer):
    state, url = peer
    text = (
        "workflow:\n  name: a\n  steps:\n"
        "    - id: post\n      type: action\n      action: http_post\n"
        f'      params: {{url: "{url}/x", data: "{{{{ secrets.OPENAI_API_KEY }}}}"}}\n'
    )
    async with new_worker(
        client, {}, actions=actions_for(tmp_path), secrets=declared_secrets({"OPENAI_API_KEY": KEY})
    ) as worker:
        handle = await start(client, worker, RunInput(definition=definition(text)))
        with pytest.raises(Exception) as caught:
            await handle.result()
    assert "SECRET_OPENAI_API_KEY" in str(caught.value.cause) and state.requests == []


def test_data_cannot_forge_a_secret_slot():
    """Params that use a secret are split by markers; data with the marker text (NUL
    bytes around a name) is escaped, so it stays literal text."""
    forged = "\x00API_TOKEN\x00 and \x00\x00API_TOKEN\x00\x00 {{ secrets.API_TOKEN }}"
    context = {"note": forged, "secrets": SecretRefs()}
    params, slots = render_params({"h": {"a": "{{ note }}|{{ secrets.T }}|{{ note }}"}}, context)
    assert slots == [(("h", "a"), [f"{forged}|", "T", f"|{forged}"])]
    assert params == {"h": {"a": f"{forged}|{{{{ secrets.T }}}}|{forged}"}}


HOST_SECRET = "MyS3cretHost"


async def test_a_secret_in_a_url_host_is_redacted_from_the_dns_error(client, tmp_path):
    """The DNS error names the host lower-cased: history, status and the result say
    `secrets.HOST` in its place."""
    text = (
        "workflow:\n  name: a\n  steps:\n"
        "    - id: get\n      type: action\n      action: http_fetch\n"
        '      params: {url: "http://{{ secrets.HOST }}.invalid/x"}\n'
        "      retry: {max_attempts: 1}\n      on_error: continue\n"
    )
    actions = actions_for(tmp_path, allow=())
    async with new_worker(client, {}, actions=actions, secrets={"HOST": HOST_SECRET}) as worker:
        handle = await start(client, worker, RunInput(definition=definition(text)))
        result = await handle.result()
        status = await handle.query("status", result_type=RunStatus)
    history = (await handle.fetch_history()).to_json()
    error = result.steps["get"].error or ""
    assert "cannot resolve secrets.HOST.invalid" in error
    assert status.steps["get"].error == error
    for seen in (error, history, status.model_dump_json()):
        assert HOST_SECRET.lower() not in seen.lower()


@pytest.mark.parametrize(
    "shown",
    [
        'Token-With Space/and+"quote"',  # as it is
        'TOKEN-WITH SPACE/AND+"QUOTE"',  # upper-cased
        "Token-With%20Space%2Fand%2B%22quote%22",  # percent-encoded
        "token-with%20space/and%2b%22quote%22",  # lower-cased, '/' kept
        "Token-With+Space%2Fand%2B%22quote%22",  # as a form field
        'Token-With Space/and+\\"quote\\"',  # JSON-escaped
    ],
)
def test_redaction_covers_the_forms_a_secret_takes_in_error_text(shown):
    secret = 'Token-With Space/and+"quote"'
    assert redact(f"GET http://x/{shown}?q=1 failed", {"T": secret}) == (
        "GET http://x/secrets.T?q=1 failed"
    )


def test_a_secret_in_an_international_host_is_redacted_as_punycode():
    assert redact("cannot resolve xn--bcher-geheim-dlb.example", {"H": "bücher-geheim"}) == (
        "cannot resolve secrets.H.example"
    )
