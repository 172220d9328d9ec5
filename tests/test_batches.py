"""A `for_each` of llm_calls with `batch: true`: one provider batch for every item, waited
for durably, priced at the batch price, and items the batch fails sent the normal way."""

from __future__ import annotations

import asyncio
import signal
import uuid

import pytest

from activities.pricing import DEFAULT_PRICES
from tests.conftest import definition, new_worker, start
from tests.fake_llm import FakeLlmServer
from tests.test_durability import spawn_worker, wait_for
from workflows.contracts import ModelPrice, RunInput, RunResult
from workflows.errors import DefinitionError
from workflows.interpreter import YamlWorkflow
from workflows.validation import load_definition

BATCHED = """
workflow:
  name: batched
  steps:
    - id: label
      type: llm_call
      model: "{model}"
      batch: true
      max_tokens: 20
      for_each: "{{{{ range({items}) | list }}}}"
      prompt: "Label item {{{{ item }}}}"
      outputs:
        - {{name: label, type: string}}
        - {{name: score, type: integer}}
"""


def labelled(request) -> str:
    """A JSON answer naming the item the prompt asked about."""
    item = request.prompt_text.rsplit(" ", 1)[-1]
    return f'{{"label": "item {item}", "score": {item}}}'


@pytest.mark.parametrize("model", ["openai/gpt-4o-mini", "anthropic/claude-haiku-4-5"])
async def test_a_batched_fan_out_is_one_batch_at_half_price(client, endpoints, fake_llm, model):
    fake_llm.reply = labelled
    text = BATCHED.format(model=model, items=6)
    async with new_worker(client, endpoints) as worker:
        handle = await start(client, worker, RunInput(definition=definition(text)))
        result = await handle.result()
        status = await handle.query("status")
    assert len(fake_llm.batches.created) == 1
    assert len(fake_llm.batches.created[0].requests) == 6
    assert fake_llm.requests == []  # nothing went realtime
    step = result.steps["label"]
    assert step.outputs["label"] == [f"item {n}" for n in range(6)]  # back in item order
    assert step.outputs["score"] == list(range(6))
    price = DEFAULT_PRICES[model.split("/")[1]]
    usage = step.usage
    full = (usage.input_tokens * price.input + usage.output_tokens * price.output) / 1e6
    assert usage.cost_usd == pytest.approx(full / 2, rel=0.01)  # each call rounded to 1e-8
    assert "answered 6 of 6 items" in status["batches"]["label"]


async def test_items_the_batch_fails_go_the_normal_way_with_the_reason(client, endpoints, fake_llm):
    fake_llm.reply = labelled
    fake_llm.batches.item_error = lambda custom_id: (
        "malformed request" if custom_id in ("2", "4") else None
    )
    text = BATCHED.format(model="openai/gpt-4o-mini", items=5)
    async with new_worker(client, endpoints) as worker:
        handle = await start(client, worker, RunInput(definition=definition(text)))
        result = await handle.result()
        status = await handle.query("status")
    assert result.steps["label"].outputs["score"] == [0, 1, 2, 3, 4]
    realtime = sorted(r.prompt_text.rsplit(" ", 1)[-1] for r in fake_llm.requests)
    assert realtime == ["2", "4"]
    assert "2 run realtime (item 2: malformed request)" in status["batches"]["label"]


@pytest.mark.parametrize(
    ("step", "message"),
    [
        (
            "model: ollama/llama3\n      for_each: [1]\n      batch: true",
            "ollama, which has no batch API",
        ),
        ("model: gpt-4o\n      batch: true", "add for_each"),
    ],
)
def test_a_batch_that_cannot_be_sent_is_refused_with_its_line(step, message):
    text = f"""
workflow:
  name: t
  steps:
    - id: a
      type: llm_call
      {step}
      prompt: hi
"""
    with pytest.raises(DefinitionError) as refused:
        load_definition(text, "t.yaml")
    assert "t.yaml:" in str(refused.value)
    assert message in str(refused.value)


@pytest.mark.slow  # real worker processes: ~40 s on a loaded machine
async def test_a_batch_of_100_completes_through_a_worker_killed_mid_wait_submitted_once(
    temporal_env,
):
    client = temporal_env.client
    task_queue = f"batch-crash-{uuid.uuid4()}"
    address = client.service_client.config.target_host
    with FakeLlmServer(reply=labelled) as llm:
        llm.batches.delay = 4.0  # the batch is in flight when the worker dies
        first = spawn_worker(address, task_queue, llm)
        handle = await client.start_workflow(
            YamlWorkflow.run,
            RunInput(definition=definition(BATCHED.format(model="openai/gpt-4o-mini", items=100))),
            id=f"batch-crash-{uuid.uuid4()}",
            task_queue=task_queue,
        )
        await wait_for(lambda: len(llm.batches.created) == 1)
        await asyncio.sleep(0.5)  # the submission's result is in history: the run waits
        first.send_signal(signal.SIGKILL)
        first.wait()
        second = spawn_worker(address, task_queue, llm)
        try:
            result: RunResult = await asyncio.wait_for(handle.result(), 60)
        finally:
            second.terminate()
            second.wait()
    assert len(llm.batches.created) == 1  # exactly one batch submitted
    assert result.steps["label"].outputs["score"] == list(range(100))
    assert llm.requests == []  # and no item paid for again in realtime


async def test_a_batched_reply_that_does_not_fit_is_re_asked_the_normal_way(
    client, endpoints, fake_llm
):
    def answer(request) -> str:
        if "Your reply was not accepted" in request.prompt_text:
            return '{"label": "item 3", "score": 3}'
        return "no JSON here" if request.prompt_text.endswith(" 3") else labelled(request)

    fake_llm.reply = answer
    text = BATCHED.format(model="anthropic/claude-haiku-4-5", items=5)
    async with new_worker(client, endpoints) as worker:
        handle = await start(client, worker, RunInput(definition=definition(text)))
        result = await handle.result()
    assert result.steps["label"].outputs["score"] == [0, 1, 2, 3, 4]
    assert len(fake_llm.batches.created) == 1
    assert len(fake_llm.requests) == 1  # only the re-ask went realtime


async def test_a_budget_counts_a_batch_at_what_it_cost(client, endpoints, fake_llm):
    fake_llm.reply = labelled
    text = BATCHED.format(model="openai/gpt-4o-mini", items=5).replace(
        "  steps:", "  budget: {max_cost_usd: 1.0}\n  steps:"
    )
    price = ModelPrice(input=0.15, output=0.60, tier_factors={"batch": 0.5})
    run_input = RunInput(definition=definition(text), prices={"openai/gpt-4o-mini": price})
    async with new_worker(client, endpoints) as worker:
        handle = await start(client, worker, run_input)
        result = await handle.result()
        status = await handle.query("status")
    assert len(fake_llm.batches.created) == 1
    spent = status["budgets"]["run"]["spent_usd"]
    assert spent == pytest.approx(result.steps["label"].usage.cost_usd)
    assert status["budgets"]["run"]["reserved_usd"] == 0


async def test_an_expired_batch_sends_every_item_the_normal_way(client, endpoints, fake_llm):
    fake_llm.reply = labelled
    fake_llm.batches.outcome = "expired"
    text = BATCHED.format(model="anthropic/claude-haiku-4-5", items=3)
    async with new_worker(client, endpoints) as worker:
        handle = await start(client, worker, RunInput(definition=definition(text)))
        result = await handle.result()
        status = await handle.query("status")
    assert result.steps["label"].outputs["score"] == [0, 1, 2]
    assert len(fake_llm.requests) == 3
    assert "3 run realtime (item 0: the batch's request was expired)" in status["batches"]["label"]


async def test_a_batch_past_its_deadline_is_cancelled_and_its_items_run_realtime(
    client, endpoints, fake_llm
):
    fake_llm.reply = labelled
    fake_llm.batches.delay = 600.0  # never ends by itself
    text = BATCHED.format(model="openai/gpt-4o-mini", items=3).replace(
        "batch: true", 'batch: {deadline: "2s"}'
    )
    async with new_worker(client, endpoints) as worker:
        handle = await start(client, worker, RunInput(definition=definition(text)))
        result = await handle.result()
    assert fake_llm.batches.created[0].cancelled
    assert result.steps["label"].outputs["score"] == [0, 1, 2]
    assert len(fake_llm.requests) == 3


async def test_an_offline_run_of_a_batched_step_calls_item_by_item(client, fake_llm):
    text = BATCHED.format(model="openai/gpt-4o-mini", items=3)
    run_input = RunInput(definition=definition(text), mock_providers=["openai"])
    async with new_worker(client, {}) as worker:
        result = await (await start(client, worker, run_input)).result()
    assert len(result.steps["label"].outputs["score"]) == 3
    assert fake_llm.batches.created == []
