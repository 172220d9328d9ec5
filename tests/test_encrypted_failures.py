"""With PAYLOAD_KEY set, failure messages and stack traces are encrypted too: they quote
variables (here, in a refused URL). Read with the key, the failure still says what happened."""

from __future__ import annotations

import base64
import uuid

import httpx
import pytest
from temporalio.client import Client, WorkflowFailureError

from activities.actions import builtin_actions
from activities.codec import codec_from_key, data_converter, new_key
from activities.database import DatabaseActions
from activities.email import EmailActions, SmtpSettings
from activities.files import FileActions
from activities.http import AddressGuard, HttpActions
from tests.conftest import definition, new_worker
from workflows.contracts import RunInput
from workflows.interpreter import YamlWorkflow

CANARY = "plaintext-canary-7f3"
FETCH = """\
workflow:
  name: LeakyFailure
  variables:
    note: ""
  steps:
    - id: get
      type: action
      action: http_fetch
      params: {url: "http://127.0.0.1:1/{{ note }}"}
      outputs: [page]
"""


async def test_a_failure_quoting_a_variable_is_stored_encrypted(temporal_env, tmp_path):
    target = temporal_env.client.service_client.config.target_host
    converter = data_converter(codec_from_key(new_key()))
    encrypted = await Client.connect(target, data_converter=converter)
    actions = builtin_actions(
        HttpActions(httpx.AsyncClient(), AddressGuard(), max_body_bytes=64),
        FileActions(tmp_path / "out"),
        EmailActions(SmtpSettings()),
        DatabaseActions({"default": f"sqlite:///{tmp_path}/db.sqlite"}),
    )
    async with new_worker(encrypted, {}, actions=actions) as worker:
        handle = await encrypted.start_workflow(
            YamlWorkflow.run,
            RunInput(definition=definition(FETCH), variables={"note": CANARY}),
            id=f"encrypted-failure-{uuid.uuid4()}",
            task_queue=worker.task_queue,
        )
        # Read with the key: the failure says what happened, URL and all.
        with pytest.raises(WorkflowFailureError) as caught:
            await handle.result()
    messages = []
    error: BaseException | None = caught.value
    while error is not None:
        messages.append(str(error))
        error = error.__cause__
    assert any(CANARY in message and "refusing" in message for message in messages)

    # What the server stores, read without the key: the run failed, the canary is nowhere.
    history = await temporal_env.client.get_workflow_handle(handle.id).fetch_history()
    stored = history.to_json()
    assert history.events[-1].HasField("workflow_execution_failed_event_attributes")
    assert CANARY not in stored
    assert not any(form in stored for form in base64_forms(CANARY))  # nor in a clear payload
    failed = history.events[-1].workflow_execution_failed_event_attributes.failure
    assert failed.message == "Encoded failure" and failed.stack_trace == ""
    assert failed.encoded_attributes.metadata["encoding"] == b"binary/encrypted"


def base64_forms(text: str) -> set[str]:
    """How `text` looks inside base64 (the JSON form of payload bytes) wherever it starts."""
    return {base64.b64encode(b"\0" * k + text.encode()).decode()[4:-4] for k in range(3)}
