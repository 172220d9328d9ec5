"""The definition language on a real dev server: order, parallelism, loops, conditions,
structured outputs, re-asks, signals, child runs, timers and error policies."""

from __future__ import annotations

import asyncio
import json

import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from activities.endpoints import Endpoint
from engine.plugin import workflow_runner
from tests.conftest import definition, new_worker, run_offline, start
from tests.fake_llm import FakeLlmServer, Fault, Request
from workflows.contracts import RunInput, RunResult
from workflows.interpreter import YamlWorkflow

FAST = 'retry: {initial_interval: "10ms", max_attempts: 3}'


def workflow_yaml(steps: str, variables: str = "{}", outputs: str = "{}") -> str:
    return (
        f"workflow:\n  name: T\n  variables: {variables}\n  outputs: {outputs}\n"
        f"  defaults: {{model: gpt-4o-mini, {FAST}}}\n  steps:\n{steps}"
    )


async def run(client: Client, llm: FakeLlmServer, text: str, **kwargs) -> RunResult:
    endpoints = {
        "openai": Endpoint(api_key="k", base_url=llm.openai_url),
        "anthropic": Endpoint(api_key="k", base_url=llm.anthropic_url),
    }
    async with new_worker(client, endpoints) as worker:
        handle = await start(client, worker, RunInput(definition=definition(text), **kwargs))
        return await handle.result()


def by_prompt(request: Request) -> str:
    return request.body["messages"][-1]["content"].upper()


async def test_independent_steps_overlap_and_a_barrier_waits_for_both(client):
    text = workflow_yaml(
        """
    - {id: a, type: llm_call, prompt: "a", depends_on: []}
    - {id: b, type: llm_call, prompt: "b", depends_on: []}
    - {id: c, type: llm_call, prompt: "c"}
"""
    )
    with FakeLlmServer(latency=0.6) as llm:
        await run(client, llm, text)
    a, b, c = sorted(llm.requests, key=lambda r: r.prompt_text)
    assert abs(a.received_at - b.received_at) < 0.4  # a and b ran at the same time
    assert c.received_at - max(a.received_at, b.received_at) >= 0.6  # c waited for both
    assert llm.max_in_flight == 2


async def test_a_reference_makes_a_step_wait_even_with_empty_depends_on(client):
    text = workflow_yaml(
        """
    - {id: first, type: llm_call, prompt: "one", outputs: [one]}
    - {id: second, type: llm_call, prompt: "after {{ one }}", depends_on: []}
"""
    )
    with FakeLlmServer(reply=by_prompt) as llm:
        result = await run(client, llm, text)
    assert [r.prompt_text.strip() for r in llm.requests] == ["one", "after ONE"]
    assert result.steps["second"].outputs == {"text": "AFTER ONE"}


async def test_for_each_keeps_item_order_and_its_concurrency_limit(client):
    text = workflow_yaml(
        """
    - id: shout
      type: llm_call
      for_each: "{{ words }}"
      as: word
      concurrency: 2
      prompt: "{{ word }} {{ loop.index }}"
      outputs: [shouted]
""",
        variables="{words: [x, y, z, w, v]}",
    )
    with FakeLlmServer(reply=by_prompt, latency=0.3) as llm:
        result = await run(client, llm, text)
    assert result.outputs["shouted"] == ["X 1", "Y 2", "Z 3", "W 4", "V 5"]
    assert llm.max_in_flight == 2
    assert result.steps["shout"].attempts == 5


async def test_for_each_over_nothing_gives_empty_lists(client):
    text = workflow_yaml(
        '    - {id: s, type: llm_call, for_each: "{{ [] }}", prompt: "{{ item }}", outputs: [o]}\n'
    )
    with FakeLlmServer() as llm:
        result = await run(client, llm, text)
    assert result.outputs["o"] == []
    assert llm.requests == []


async def test_set_computes_values_without_an_activity(client):
    text = workflow_yaml(
        """
    - id: compute
      type: set
      values:
        total: "{{ a + b }}"
        label: "sum={{ a + b }}"
""",
        variables="{a: 2, b: 3}",
        outputs='{doubled: "{{ total * 2 }}"}',
    )
    handle, result = await run_offline(client, text)
    history = await handle.fetch_history()
    assert result.outputs == {"total": 5, "label": "sum=5", "doubled": 10}
    assert not any(e.HasField("activity_task_scheduled_event_attributes") for e in history.events)


async def test_the_random_filter_picks_the_same_items_on_replay(client):
    """`| random` inside a run draws from the workflow's seeded generator: ten coin flips
    each choose a model call or a timer, all at once, and a replay of the history flips
    them the same way (a different flip would put a timer where the history holds an
    activity)."""
    coin = "{{ [true, false] | random }}"
    flips = "".join(
        f'    - {{id: coin{i}, type: set, depends_on: [], values: {{flip{i}: "{coin}"}}}}\n'
        f"    - {{id: call{i}, type: llm_call, depends_on: [coin{i}], when: "
        f'"{{{{ flip{i} }}}}", prompt: p{i}}}\n'
        f"    - {{id: nap{i}, type: action, action: sleep, depends_on: [coin{i}], when: "
        f'"{{{{ not flip{i} }}}}", params: {{duration: 1ms}}}}\n'
        for i in range(10)
    )
    with FakeLlmServer() as llm:
        endpoints = {"openai": Endpoint(api_key="k", base_url=llm.openai_url)}
        async with new_worker(client, endpoints) as worker:
            handle = await start(
                client, worker, RunInput(definition=definition(workflow_yaml(flips)))
            )
            result = await handle.result()
            history = await handle.fetch_history()
    flipped = [result.outputs[f"flip{i}"] for i in range(10)]
    assert len(llm.requests) == flipped.count(True)
    replayer = Replayer(
        workflows=[YamlWorkflow],
        data_converter=pydantic_data_converter,
        workflow_runner=workflow_runner(),
    )
    await replayer.replay_workflow(history)  # raises NondeterminismError if a flip differs


async def test_when_skips_with_null_outputs_and_later_steps_see_it(client):
    text = workflow_yaml(
        """
    - {id: maybe, type: llm_call, when: "{{ go }}", prompt: "p", outputs: [answer]}
    - id: report
      type: set
      values: {seen: "{{ answer is none and steps.maybe.status == 'skipped' }}"}
""",
        variables="{go: false}",
    )
    with FakeLlmServer() as llm:
        result = await run(client, llm, text)
    assert result.steps["maybe"].status == "skipped"
    assert result.outputs == {"answer": None, "seen": True}
    assert llm.requests == []


STRUCTURED = """
    - id: triage
      type: llm_call
      model: {model}
      prompt: "Classify: printer on fire"
      outputs:
        - {{name: category, enum: [billing, bug, other]}}
        - {{name: urgency, type: integer}}
      validate:
        - {{expr: "{{{{ urgency >= 1 and urgency <= 5 }}}}", message: "urgency must be 1..5"}}
"""


@pytest.mark.parametrize("model", ["gpt-4o-mini", "anthropic/claude-haiku-4-5"])
async def test_structured_outputs_are_reasked_until_they_fit(client, model):
    replies = iter(
        [
            "not json at all",
            json.dumps({"category": "fire", "urgency": 3}),
            json.dumps({"category": "bug", "urgency": 9}),
            json.dumps({"category": "bug", "urgency": 5}),
        ]
    )
    text = workflow_yaml(STRUCTURED.format(model=model)).replace(
        "validate:", "max_reasks: 3\n      validate:"
    )
    with FakeLlmServer(reply=lambda request: next(replies)) as llm:
        result = await run(client, llm, text)
    assert result.outputs == {"category": "bug", "urgency": 5}
    assert result.steps["triage"].attempts == 4
    first, second, third, last = llm.requests
    if model.startswith("anthropic"):
        assert first.body["tool_choice"] == {"type": "tool", "name": "step_outputs"}
        schema = first.body["tools"][0]["input_schema"]
    else:
        schema = first.body["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["category"] == {
        "type": "string",
        "enum": ["billing", "bug", "other"],
    }
    assert second.body["messages"][-2] == {"role": "assistant", "content": "not json at all"}
    assert "not JSON" in second.body["messages"][-1]["content"]
    assert "'fire' is not one of" in third.body["messages"][-1]["content"]
    assert "urgency must be 1..5" in last.body["messages"][-1]["content"]


async def test_reasks_run_out_and_the_step_fails_with_the_reason(client):
    text = workflow_yaml(STRUCTURED.format(model="gpt-4o-mini"))
    with (
        FakeLlmServer(reply=lambda request: '{"category": "bug"}') as llm,
        pytest.raises(WorkflowFailureError) as caught,
    ):
        await run(client, llm, text)
    assert len(llm.requests) == 3  # the call and max_reasks (default 2) re-asks
    message = str(caught.value.cause)
    assert (
        "not accepted after 2 re-ask(s)" in message
        and "'urgency' is a required property" in message
    )


async def test_a_failure_cancels_running_siblings_but_not_continue_ones(client):
    text = workflow_yaml(
        """
    - {id: breaks, type: llm_call, prompt: "break", depends_on: []}
    - {id: slow, type: wait_for_signal, signal: never, depends_on: []}
    - {id: tolerant, type: llm_call, prompt: "tolerant", depends_on: [], on_error: continue}
"""
    )

    with FakeLlmServer() as llm:
        llm.fault_for = lambda request: Fault(401, "no") if "break" in request.prompt_text else None
        with pytest.raises(WorkflowFailureError) as caught:
            await asyncio.wait_for(run(client, llm, text), timeout=20)
    assert "step 'breaks'" in str(caught.value.cause)
    assert any("tolerant" in request.prompt_text for request in llm.requests)


async def test_on_error_continue_uses_output_defaults(client):
    text = workflow_yaml(
        """
    - id: guess
      type: llm_call
      prompt: "p"
      on_error: continue
      outputs: [{name: guess, default: "unknown"}]
"""
    )
    with FakeLlmServer() as llm:
        llm.fail_next(Fault(403, "forbidden"))
        result = await run(client, llm, text)
    assert result.steps["guess"].status == "failed"
    assert result.outputs == {"guess": "unknown"}


async def test_wait_for_signal_takes_the_payload_as_outputs(client):
    text = workflow_yaml(
        """
    - id: approval
      type: wait_for_signal
      signal: approve
      outputs: [{name: approved, type: boolean}, by]
    - {id: after, type: set, values: {msg: "{{ by }} said {{ approved }}"}}
"""
    )
    async with new_worker(client, {}) as worker:
        handle = await start(client, worker, RunInput(definition=definition(text)))
        await handle.signal("approve", {"approved": True, "by": "Ann"})
        result = await handle.result()
    assert result.outputs == {"approved": True, "by": "Ann", "msg": "Ann said True"}


async def test_wait_for_signal_times_out(client):
    text = workflow_yaml(
        '    - {id: w, type: wait_for_signal, signal: go, timeout: "300ms", on_error: continue}\n'
    )
    _, result = await run_offline(client, text)
    assert result.steps["w"].status == "failed"
    assert "no 'go' signal within 300ms" in (result.steps["w"].error or "")


async def test_child_workflow_returns_its_outputs(client):
    child = workflow_yaml(
        '    - {id: c, type: set, values: {doubled: "{{ n * 2 }}"}}\n', variables="{n: 1}"
    )
    parent = workflow_yaml(
        """
    - id: call
      type: workflow
      definition: child.yaml
      for_each: "{{ [1, 2, 3] }}"
      variables: {n: "{{ item }}"}
      outputs: [doubled]
"""
    )
    async with new_worker(client, {}) as worker:
        handle = await start(
            client,
            worker,
            RunInput(definition=definition(parent), children={"child.yaml": definition(child)}),
        )
        result = await handle.result()
    assert result.outputs == {"doubled": [2, 4, 6]}


async def test_sleep_is_a_durable_timer_not_an_activity(client):
    text = workflow_yaml(
        '    - {id: nap, type: action, action: sleep, params: {duration: "200ms"}}\n'
    )
    handle, result = await run_offline(client, text)
    history = await handle.fetch_history()
    assert result.steps["nap"].status == "completed"
    assert any(e.HasField("timer_started_event_attributes") for e in history.events)
    assert not any(e.HasField("activity_task_scheduled_event_attributes") for e in history.events)


async def test_a_template_that_gives_a_method_fails_its_step_in_one_line(client):
    """`{{ d.keys }}` (for `d.keys()`) used to give a method no history can hold: the run
    retried its workflow task forever. Now the step fails saying why; views become lists."""
    text = workflow_yaml(
        """
    - {id: views, type: set, values: {pairs: "{{ {'a': 1}.items() }}", n: "{{ range(2) }}"}}
    - {id: method, type: set, values: {keys: "{{ {'a': 1}.keys }}"}}
"""
    )
    with FakeLlmServer() as llm, pytest.raises(WorkflowFailureError) as caught:
        await asyncio.wait_for(run(client, llm, text), timeout=20)
    message = str(caught.value.cause)
    assert "step 'method'" in message and "a function or method" in message
    assert "Traceback" not in message
