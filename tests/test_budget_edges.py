"""Budgets at their edges, against the dev server: a 50-wide fan-out that reaches its budget
ends (fail) or says it waits for the budget and goes on once raised (pause), and text a
naive estimate under-counts (short words, emoji, CJK) never spends past the budget."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from engine.client import EngineClient
from tests.conftest import new_worker, starter
from tests.fake_llm import FakeLlmServer, utf8_bytes, words
from tests.test_budgets import _details, engine_for
from workflows.errors import RunFailed

WIDE = """
workflow:
  name: wide
  budget: {budget}
  steps:
    - id: label
      type: llm_call
      model: openai/gpt-4o-mini
      max_tokens: {max_tokens}
      for_each: "{{{{ range(50) | list }}}}"
      concurrency: {concurrency}
      prompt: "{prompt}"
      outputs: [label]
"""
RESULT_TIMEOUT = 60
"""A run that hangs fails the test here instead of stalling the suite."""


def wide(budget: str, prompt: str = "Label item {{ item }} in one word", **fields: int) -> str:
    fields = {"max_tokens": 40, "concurrency": 50} | fields
    return WIDE.format(budget=budget, prompt=prompt, **fields)


def provider_counted(fake_llm: FakeLlmServer) -> int:
    """The tokens the fake provider reported for every request it answered."""
    return sum(
        fake_llm.tokens_of(request.prompt_text)
        + fake_llm.hidden_prompt_tokens
        + fake_llm.tokens_of(str(fake_llm.reply(request)))
        for request in fake_llm.requests
    )


async def run_to_end(engine: EngineClient, text: str) -> tuple[RunFailed | None, str]:
    started = await engine.start(engine.load_yaml(text), execution_id=f"b-{uuid.uuid4()}")
    try:
        await asyncio.wait_for(engine.result(started.execution_id), RESULT_TIMEOUT)
    except RunFailed as failed:
        return failed, started.execution_id
    return None, started.execution_id


async def test_a_50_wide_fan_out_that_reaches_its_budget_fails(client, endpoints, fake_llm):
    """The red team's case: 10 calls fit, the rest wait for them, then the run fails once
    they have settled, instead of waiting forever on a budget that can no longer fit them."""
    fake_llm.tokens_of = utf8_bytes  # replies use about what was reserved: the hard case
    fake_llm.reply = lambda request: "x" * 30
    async with new_worker(client, endpoints) as worker:
        engine = engine_for(client, worker)
        failed, run_id = await run_to_end(engine, wide("{max_cost_usd: 0.0003}"))
        status = await engine.status(run_id)
    assert failed is not None
    assert "budget exceeded: the run's budget is $0.0003" in str(failed)
    budget = status.budgets["run"]
    assert budget.spent_usd <= 0.0003
    assert budget.reserved_usd == 0 and budget.waiting is None
    assert 10 <= len(fake_llm.requests) < 50
    assert budget.spent_tokens == provider_counted(fake_llm)


async def test_a_paused_50_wide_fan_out_waits_for_its_budget_and_completes_once_raised(
    client, endpoints, fake_llm
):
    fake_llm.tokens_of = utf8_bytes
    fake_llm.reply = lambda request: "x" * 30
    async with new_worker(client, endpoints) as worker:
        engine = engine_for(client, worker)
        text = wide("{max_cost_usd: 0.0003, on_exceed: pause}")
        started = await engine.start(engine.load_yaml(text), execution_id=f"b-{uuid.uuid4()}")
        run_id = started.execution_id
        for _ in range(300):
            status = await engine.status(run_id)
            if status.budgets["run"].waiting:
                break
            await asyncio.sleep(0.1)
        waiting = status.budgets["run"].waiting or ""
        assert waiting.startswith("paused: budget exceeded: the run's budget is $0.0003")
        assert status.budgets["run"].reserved_usd == 0  # nothing in flight: it waits for you
        assert status.budgets["run"].spent_usd <= 0.0003
        env = {"TEMPORAL_ADDRESS": client.service_client.config.target_host, "PATH": ""}
        raised = await asyncio.to_thread(starter, env, "budget", run_id, "--max-cost-usd", "0.01")
        assert raised.returncode == 0, raised.stderr
        result = await asyncio.wait_for(engine.result(run_id), RESULT_TIMEOUT)
    assert len(result.steps["label"].outputs["label"]) == 50
    assert result.budgets["run"].waiting is None
    assert result.budgets["run"].spent_tokens == provider_counted(fake_llm)


TWO_PAUSED = """
workflow:
  name: two-paused
  budget: {max_tokens: 50, on_exceed: pause}
  steps:
    - {id: small, type: llm_call, model: openai/gpt-4o-mini, max_tokens: 100, prompt: hi,
       depends_on: []}
    - {id: big, type: llm_call, model: openai/gpt-4o-mini, max_tokens: 1000, prompt: hi,
       depends_on: []}
"""


async def test_a_raise_that_lets_one_paused_call_go_on_still_shows_the_other_waiting(
    client, endpoints, fake_llm
):
    """Two steps pause on one budget; raised enough for the small one only, the run still
    says it waits for the budget (status and the UI's details line), naming the big one."""
    async with new_worker(client, endpoints) as worker:
        engine = engine_for(client, worker)
        started = await engine.start(engine.load_yaml(TWO_PAUSED), execution_id=f"b-{uuid.uuid4()}")
        run_id = started.execution_id
        for _ in range(300):
            status = await engine.status(run_id)
            if status.budgets["run"].waiting:
                break
            await asyncio.sleep(0.1)
        assert "step 'small'" in (status.budgets["run"].waiting or "")  # the oldest first
        await engine.raise_budget(run_id, max_tokens=400)  # ~120 for small, ~1020 for big
        for _ in range(300):
            status = await engine.status(run_id)
            if "small" in status.steps:
                break
            await asyncio.sleep(0.1)
        assert "small" in status.steps and "big" not in status.steps
        waiting = status.budgets["run"].waiting or ""
        assert waiting.startswith("paused: budget exceeded") and "step 'big'" in waiting
        assert (await _details(client, run_id)).startswith("paused: budget exceeded")
        await engine.raise_budget(run_id, max_tokens=5000)
        result = await asyncio.wait_for(engine.result(run_id), RESULT_TIMEOUT)
    assert set(result.steps) == {"small", "big"}
    assert result.budgets["run"].waiting is None


@pytest.mark.parametrize(
    ("prompt", "tokenizer"),
    [
        ("a " * 200 + "{{ item }}", words),  # a word a token: 3 characters a token under-counts
        ("😀" * 60 + "{{ item }}", utf8_bytes),  # 4 bytes each, as many tokens at worst
        ("漢字" * 50 + "{{ item }}", utf8_bytes),  # 3 bytes each
    ],
    ids=["short-words", "emoji", "cjk"],
)
async def test_text_that_estimates_under_count_stays_within_the_budget(
    client, endpoints, fake_llm, prompt, tokenizer
):
    """The bound stated in docs/language.md: with no provider counting more than a token a
    UTF-8 byte, 50 calls at once never pass a token budget, counted by the provider."""
    limit = 4000
    fake_llm.tokens_of = tokenizer
    async with new_worker(client, endpoints) as worker:
        engine = engine_for(client, worker)
        text = wide(f"{{max_tokens: {limit}}}", prompt=prompt, max_tokens=20)
        failed, run_id = await run_to_end(engine, text)
        status = await engine.status(run_id)
    assert provider_counted(fake_llm) == status.budgets["run"].spent_tokens <= limit
    assert failed is not None and "budget exceeded" in str(failed)
    assert len(fake_llm.requests) > 1


async def test_a_model_counted_over_the_bound_is_reserved_more_after_its_first_reply(
    client, endpoints, fake_llm
):
    """A provider's hidden prompt makes every call count 300 tokens more than its bound:
    the first replies teach the run the model's ratio, and the budget holds from then on."""
    limit = 3000
    fake_llm.hidden_prompt_tokens = 300
    async with new_worker(client, endpoints) as worker:
        engine = engine_for(client, worker)
        text = wide(f"{{max_tokens: {limit}}}", max_tokens=20, concurrency=5)
        failed, run_id = await run_to_end(engine, text)
        status = await engine.status(run_id)
    assert failed is not None and "budget exceeded" in str(failed)
    assert len(fake_llm.requests) > 5  # past the first calls, which taught the ratio
    assert provider_counted(fake_llm) == status.budgets["run"].spent_tokens <= limit


async def test_a_child_run_reserves_at_the_ratio_its_parent_learned(
    client, endpoints, fake_llm, tmp_path
):
    """The parent's first reply taught it the model's ratio; its child's fan-out of 10 at
    once reserves at that ratio from its first call, so the parent's budget holds."""
    limit = 1500
    fake_llm.hidden_prompt_tokens = 300
    (tmp_path / "child.yaml").write_text(
        wide("null", max_tokens=20, concurrency=10).replace("  budget: null\n", "")
    )
    parent = f"""
workflow:
  name: parent
  budget: {{max_tokens: {limit}}}
  steps:
    - {{id: first, type: llm_call, model: openai/gpt-4o-mini, max_tokens: 20, prompt: hello}}
    - {{id: sub, type: workflow, definition: child.yaml, depends_on: [first]}}
"""
    async with new_worker(client, endpoints) as worker:
        engine = engine_for(client, worker)
        loaded = engine.load_yaml(parent, base=tmp_path)
        started = await engine.start(loaded, execution_id=f"b-{uuid.uuid4()}")
        with pytest.raises(RunFailed, match="what the parent run allowed this child run"):
            await asyncio.wait_for(engine.result(started.execution_id), RESULT_TIMEOUT)
    assert len(fake_llm.requests) > 2
    assert provider_counted(fake_llm) <= limit
