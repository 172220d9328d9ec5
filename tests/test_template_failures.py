"""A template that fails at run time names the step and the field it is in, so the user
knows which of a step's templates to fix (it used to say `calc:` for every `set` value)."""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowFailureError

from tests.conftest import run_offline

HEAD = "workflow:\n  name: t\n  variables: {n: 0, d: {a: 1}, items: [0]}\n  steps:\n"
CASES = {
    "a set value": (
        "    - {id: calc, type: set, values: {ok: '{{ 1 }}', ratio: '{{ 1 / n }}'}}\n",
        "step 'calc', field 'values.ratio': ZeroDivisionError: division by zero",
    ),
    "a prompt": (
        "    - {id: ask, type: llm_call, model: mock, prompt: '{{ d.a.b }}'}\n",
        "step 'ask', field 'prompt': 'int object' has no attribute 'b'",
    ),
    "when": (
        "    - {id: maybe, type: set, when: '{{ 1 / n }}', values: {x: 1}}\n",
        "step 'maybe', field 'when': ZeroDivisionError",
    ),
    "a for_each item": (
        "    - {id: each, type: set, for_each: '{{ items }}', values: {x: '{{ 1 / item }}'}}\n",
        "step 'each' item 0, field 'values.x': ZeroDivisionError",
    ),
    "action params": (
        "    - {id: nap, type: action, action: sleep, params: {duration: '{{ 1 / n }}'}}\n",
        "step 'nap', field 'params': ZeroDivisionError",
    ),
    "a workflow output": (
        "    - {id: s, type: set, values: {x: 1}}\n  outputs:\n    r: '{{ 1 / n }}'\n",
        "workflow output 'r': ZeroDivisionError",
    ),
}


@pytest.mark.parametrize("case", CASES)
async def test_a_run_time_template_error_names_the_step_and_the_field(client, case):
    steps, expected = CASES[case]
    with pytest.raises(WorkflowFailureError) as failed:
        await run_offline(client, HEAD + steps)
    message = failed.value.cause.message
    assert message.startswith(expected), message
    assert "in template '{{" in message  # and still shows the template itself
