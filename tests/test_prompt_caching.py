"""Paying less for the same work: a shared prefix cached by the provider and billed at the
cache price from the second call on, and cheaper service tiers, declared in YAML."""

from __future__ import annotations

import json

import pytest

from activities.pricing import DEFAULT_PRICES, priced
from engine.cli_output import usage_note
from tests.conftest import definition, new_worker, start
from tests.fake_llm import Fault
from workflows.contracts import RunInput, RunResult, Usage
from workflows.errors import DefinitionError
from workflows.validation import load_definition

SHARED = " ".join(f"rule{n}" for n in range(2000))
"""A 2,000-token instruction (the fake counts words) every item shares."""

FAN_OUT = """
workflow:
  name: cached
  defaults: {{model: "{model}", cache: system, max_tokens: 20}}
  steps:
    - id: classify
      type: llm_call
      for_each: ["a", "b", "c", "d"]
      concurrency: 1
      system: "{shared}"
      prompt: "Classify {{{{ item }}}}"
      outputs: [label]
"""


async def run_fan_out(client, endpoints, model: str) -> dict:
    text = FAN_OUT.format(model=model, shared=SHARED)
    async with new_worker(client, endpoints) as worker:
        handle = await start(client, worker, RunInput(definition=definition(text)))
        result = await handle.result()
    return result.steps["classify"].usage


@pytest.mark.parametrize("model", ["anthropic/claude-haiku-4-5", "openai/gpt-4o"])
async def test_a_shared_system_prompt_is_billed_at_the_cache_price_from_the_second_call(
    client, endpoints, fake_llm, model
):
    usage = await run_fan_out(client, endpoints, model)
    prefix = fake_llm.tokens_of(SHARED)
    assert usage.cache_read_tokens == 3 * prefix  # items b, c, d read what a cached
    price = DEFAULT_PRICES[model.split("/")[1]]
    writes = prefix if model.startswith("anthropic") else 0  # OpenAI caches for free
    assert usage.cache_write_tokens == writes
    plain = usage.input_tokens - usage.cache_read_tokens - usage.cache_write_tokens
    expected = (
        plain * price.input
        + usage.cache_read_tokens * price.cache_read
        + writes * (price.cache_write or price.input)
        + usage.output_tokens * price.output
    ) / 1_000_000
    assert usage.cost_usd == pytest.approx(expected, rel=1e-6)
    full = (usage.input_tokens * price.input + usage.output_tokens * price.output) / 1e6
    assert usage.saved_usd == pytest.approx(full - usage.cost_usd, rel=1e-6)
    assert usage.saved_usd > 0.3 * full  # four calls of one prefix: a third off at least


async def test_anthropic_is_sent_a_cache_breakpoint_where_the_step_says(
    client, endpoints, fake_llm
):
    await run_fan_out(client, endpoints, "anthropic/claude-haiku-4-5")
    system = fake_llm.requests[0].body["system"]
    assert system == [{"type": "text", "text": SHARED, "cache_control": {"type": "ephemeral"}}]


async def test_openai_calls_of_a_caching_step_share_a_cache_key(client, endpoints, fake_llm):
    await run_fan_out(client, endpoints, "openai/gpt-4o")
    assert {r.body.get("prompt_cache_key") for r in fake_llm.requests} == {"classify"}


async def test_a_flex_step_is_sent_the_tier_and_priced_at_it(client, endpoints, fake_llm):
    text = """
workflow:
  name: flexed
  steps:
    - id: ask
      type: llm_call
      model: openai/gpt-4o
      service_tier: flex
      prompt: "one two three"
"""
    async with new_worker(client, endpoints) as worker:
        handle = await start(client, worker, RunInput(definition=definition(text)))
        result = await handle.result()
    assert fake_llm.requests[0].body["service_tier"] == "flex"
    usage = result.steps["ask"].usage
    standard = priced(
        Usage(input_tokens=usage.input_tokens, output_tokens=usage.output_tokens),
        "openai",
        "gpt-4o",
        DEFAULT_PRICES,
    )
    assert usage.cost_usd == pytest.approx(standard.cost_usd / 2)


def test_a_cache_write_costs_more_and_a_read_less_than_plain_input():
    usage = Usage(input_tokens=1000, output_tokens=0, cache_write_tokens=1000)
    written = priced(usage, "anthropic", "claude-haiku-4-5", DEFAULT_PRICES)
    read = priced(
        usage.model_copy(update={"cache_write_tokens": 0, "cache_read_tokens": 1000}),
        "anthropic",
        "claude-haiku-4-5",
        DEFAULT_PRICES,
    )
    assert written.cost_usd == pytest.approx(0.00125)
    assert written.saved_usd == pytest.approx(-0.00025)
    assert read.cost_usd == pytest.approx(0.0001)


@pytest.mark.parametrize(
    ("fields", "where", "message"),
    [
        (
            "model: ollama/llama3\n      cache: system",
            "8:14",
            "ollama, which has no prompt caching",
        ),
        (
            "model: claude-haiku-4-5\n      service_tier: flex",
            "8:21",
            "anthropic does not offer service_tier 'flex' (it offers: auto, standard_only)",
        ),
        ("model: gpt-4o\n      cache: everything", "8:14", "'system' or 'messages'"),
    ],
)
def test_what_a_provider_does_not_offer_is_refused_with_its_line(fields, where, message):
    text = f"""
workflow:
  name: t
  steps:
    - id: a
      type: llm_call
      {fields}
      prompt: hi
"""
    with pytest.raises(DefinitionError) as refused:
        load_definition(text, "t.yaml")
    assert f"t.yaml:{where}" in str(refused.value)
    assert message in str(refused.value)


def test_an_offline_run_of_a_caching_definition_is_not_refused():
    load_definition(FAN_OUT.format(model="mock", shared="short"), "t.yaml")


def test_the_run_line_tells_tokens_read_from_cache_and_what_they_saved():
    usage = Usage(
        input_tokens=8000, output_tokens=20, cost_usd=0.0025, cache_read_tokens=6000,
        saved_usd=0.0075,
    )  # fmt: skip
    result = RunResult(
        execution_id="r", workflow_name="w", status="completed", outputs={}, steps={},
        usage=usage,
    )  # fmt: skip
    assert usage_note(result) == (
        "completed 0 step(s), 8000 input (6000 read from cache) and 20 output tokens, "
        "estimated $0.002500, saved $0.007500"
    )


async def test_a_flex_call_without_capacity_goes_standard_after_the_stated_wait(
    client, endpoints, fake_llm
):
    text = """
workflow:
  name: flexed
  steps:
    - id: ask
      type: llm_call
      model: openai/gpt-4o
      service_tier: {tier: flex, standard_after: "2s"}
      retry: {initial_interval: "200ms", backoff: 1.0}
      prompt: "one two three"
"""
    unavailable = Fault(status=429, message="Resource unavailable")
    fake_llm.fault_for = lambda r: unavailable if r.body.get("service_tier") == "flex" else None
    async with new_worker(client, endpoints) as worker:
        handle = await start(client, worker, RunInput(definition=definition(text)))
        result = await handle.result()
    tiers = [r.body.get("service_tier") for r in fake_llm.requests]
    assert tiers[0] == "flex" and len(tiers) > 2  # flex was retried for the stated wait
    # then the call was made at the standard tier (a flex attempt cancelled in flight may
    # still reach the provider after it, so not necessarily last)
    assert None in tiers and tiers.index(None) > 1
    usage = result.steps["ask"].usage
    standard = priced(
        Usage(input_tokens=usage.input_tokens, output_tokens=usage.output_tokens),
        "openai",
        "gpt-4o",
        DEFAULT_PRICES,
    )
    assert usage.cost_usd == pytest.approx(standard.cost_usd)


async def test_a_marked_message_is_the_cached_prefix_of_every_item(client, endpoints, fake_llm):
    text = f"""
workflow:
  name: marked
  steps:
    - id: ask
      type: llm_call
      model: anthropic/claude-haiku-4-5
      for_each: ["who", "when", "where"]
      concurrency: 1
      messages:
        - {{role: user, content: "Read this: {SHARED}", cache: true}}
        - {{role: assistant, content: "Read."}}
        - {{role: user, content: "{{{{ item }}}}?"}}
"""
    async with new_worker(client, endpoints) as worker:
        handle = await start(client, worker, RunInput(definition=definition(text)))
        result = await handle.result()
    first = fake_llm.requests[0].body["messages"][0]["content"]
    assert first[-1]["cache_control"] == {"type": "ephemeral"}
    assert "cache_control" not in json.dumps(fake_llm.requests[0].body["messages"][1:])
    usage = result.steps["ask"].usage
    marked = fake_llm.tokens_of(f"Read this: {SHARED}")
    assert (usage.cache_write_tokens, usage.cache_read_tokens) == (marked, 2 * marked)


def test_a_marked_message_for_a_provider_that_cannot_cache_is_refused():
    text = """
workflow:
  name: t
  steps:
    - id: a
      type: llm_call
      model: ollama/llama3
      messages:
        - {role: user, content: "doc", cache: true}
"""
    with pytest.raises(DefinitionError, match="ollama, which has no prompt caching"):
        load_definition(text, "t.yaml")
