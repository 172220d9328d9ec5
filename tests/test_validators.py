"""Custom validators: `validate: [{validator: NAME}]` on an llm_call runs registered Python
code as an activity; its errors re-ask the model like a failed `validate` expression."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.endpoints import Endpoint
from activities.registry import ValidatorSpec, load_custom_validators, validator_spec
from activities.validators import validator_activity
from engine.client import load_yaml
from engine.settings import Settings
from tests.conftest import new_worker, start
from tests.fake_llm import FakeLlmServer
from workflows.actions import ACTION_PARAMS
from workflows.contracts import RunInput, RunResult, ValidatorInput
from workflows.definition import Definition
from workflows.errors import DefinitionError
from workflows.validation import load_definition

EXAMPLES = "activities.example_actions"
ANSWER = """\
workflow:
  name: Validated
  steps:
    - id: answer
      type: llm_call
      model: gpt-4o-mini
      retry: {initial_interval: "50ms", max_attempts: 2}
      prompt: "Answer the customer."
      outputs: [reply]
      validate:
        - validator: no_pii
"""


def answer(validator: str = "no_pii", known: set[str] | None = None) -> Definition:
    text = ANSWER.replace("no_pii", validator)
    return load_definition(text, "answer.yaml", ACTION_PARAMS, known or {validator})


async def run(
    client: Client,
    endpoints: dict[str, Endpoint],
    definition: Definition,
    validators: dict[str, ValidatorSpec],
) -> tuple[RunResult, list[str]]:
    """The run's result and the activity types its history scheduled."""
    async with new_worker(client, endpoints, validators=validators) as worker:
        handle = await start(client, worker, RunInput(definition=definition))
        result = await handle.result()
        history = await handle.fetch_history()
    scheduled = [
        event.activity_task_scheduled_event_attributes.activity_type.name
        for event in history.events
        if event.HasField("activity_task_scheduled_event_attributes")
    ]
    return result, scheduled


async def failure(
    client: Client,
    endpoints: dict[str, Endpoint],
    definition: Definition,
    validators: dict[str, ValidatorSpec],
) -> str:
    with pytest.raises(WorkflowFailureError) as caught:
        await run(client, endpoints, definition, validators)
    cause = caught.value.cause
    assert isinstance(cause, ApplicationError)
    return cause.message


async def test_validator_errors_reask_the_model_until_it_accepts(
    client, endpoints, fake_llm: FakeLlmServer
):
    replies = iter(["Write to ann@example.com any time.", "We will write back within a day."])
    fake_llm.reply = lambda request: next(replies)
    validators = load_custom_validators([EXAMPLES])
    result, scheduled = await run(client, endpoints, answer(), validators)
    assert result.outputs == {"reply": "We will write back within a day."}
    assert result.steps["answer"].attempts == 2
    first, second = fake_llm.requests
    assert "ann@example.com" not in first.prompt_text
    assert "'reply' contains an e-mail address; leave it out" in second.prompt_text
    assert "Your reply was not accepted" in second.prompt_text
    assert scheduled == ["llm_call", "validator.no_pii", "llm_call", "validator.no_pii"]


async def test_a_validator_that_raises_fails_the_step_after_its_retries(
    client, endpoints, fake_llm
):
    calls: list[dict[str, Any]] = []

    async def broken(outputs: dict[str, Any]) -> tuple[bool, list[str]]:
        calls.append(outputs)
        raise RuntimeError("PII service unreachable")

    message = await failure(
        client,
        endpoints,
        answer("pii_service"),
        {"pii_service": validator_spec("pii_service", broken)},
    )
    assert message == (
        "step 'answer': validator 'pii_service' failed after 3 attempt(s): "
        "RuntimeError: PII service unreachable"
    )
    assert len(calls) == 3 and calls[0] == {"reply": "Hello from gpt-4o-mini"}
    assert len(fake_llm.requests) == 1


async def test_a_validator_the_worker_does_not_have_fails_the_run_at_once(
    client, endpoints, fake_llm
):
    # Validated where no_pii is known (the starter), run on a worker without it.
    message = await asyncio.wait_for(failure(client, endpoints, answer(), {}), timeout=30)
    assert message == (
        "step 'answer': validator 'no_pii' failed after 1 attempt(s): no validator 'no_pii' "
        "is registered on this worker: list its module in the worker's ACTION_MODULES"
    )
    assert len(fake_llm.requests) == 1


def test_an_unknown_validator_is_a_located_problem():
    with pytest.raises(DefinitionError) as caught:
        answer("no_pi", known={"no_pii"})
    assert [str(problem) for problem in caught.value.problems] == [
        "answer.yaml:11:22: unknown validator 'no_pi' — did you mean 'no_pii'? (validators: no_pii)"
    ]
    with pytest.raises(DefinitionError, match=r"answer.yaml:11:22: unknown validator 'no_pii' "):
        load_definition(ANSWER, "answer.yaml")  # none known: the default


def test_each_validate_entry_has_expr_or_validator():
    text = ANSWER.replace(
        "        - validator: no_pii\n",
        "        - {message: hi}\n        - {expr: '{{ reply }}', validator: no_pii}\n",
    )
    with pytest.raises(DefinitionError) as caught:
        load_definition(text, "answer.yaml", ACTION_PARAMS, {"no_pii"})
    assert [str(problem) for problem in caught.value.problems] == [
        "answer.yaml:11:11: validate: an entry needs 'expr' (a template) or 'validator' "
        "(a registered validator's name)",
        "answer.yaml:12:11: validate: an entry has 'expr' or 'validator', not both",
    ]


def test_the_starter_knows_the_validators_of_action_modules(tmp_path: Path):
    settings = Settings.from_env({"ACTION_MODULES": EXAMPLES})
    loaded = load_yaml(ANSWER, settings, "answer.yaml", tmp_path)
    assert loaded.definition.workflow.steps[0].validate_[0].validator == "no_pii"
    with pytest.raises(DefinitionError, match="unknown validator 'no_pii'"):
        load_yaml(ANSWER, Settings.from_env({}), "answer.yaml", tmp_path)


async def test_the_activity_takes_sync_or_async_validators_and_refuses_other_answers():
    async def one_text(outputs: dict[str, Any]) -> Any:
        return False, "too long"

    request = ValidatorInput(step_id="s", validator="v", outputs={"reply": "x"})
    env = ActivityEnvironment()
    refused = await env.run(validator_activity("v", one_text), request)
    assert (refused.valid, refused.errors) == (False, ["too long"])
    accepted = await env.run(validator_activity("v", lambda outputs: (True, [])), request)
    assert (accepted.valid, accepted.errors) == (True, [])
    with pytest.raises(ApplicationError, match=r"returned True: it must return") as caught:
        await env.run(validator_activity("v", lambda outputs: True), request)
    assert caught.value.non_retryable
    with pytest.raises(ValueError, match="one word"):
        validator_spec("no pii", lambda outputs: (True, []))
