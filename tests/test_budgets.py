"""Budgets: a run stops (or pauses) before it spends past its budget, counting calls in
flight, and goes on when an operator raises it."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

import pytest
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import WorkflowFailureError

from engine.client import EngineClient
from engine.definition_files import load_yaml
from engine.progress import progress_line
from engine.settings import Settings
from tests.conftest import new_worker, starter
from workflows.contracts import RunInput
from workflows.errors import DefinitionError, RunFailed, UsageError

FAN_OUT = """
workflow:
  name: budgeted
  budget: {{max_cost_usd: {limit}, on_exceed: {on_exceed}}}
  steps:
    - id: label
      type: llm_call
      model: openai/gpt-4o-mini
      max_tokens: 50
      for_each: "{{{{ range({items}) | list }}}}"
      concurrency: 20
      prompt: "Label item {{{{ item }}}} in one word"
      outputs: [label]
"""


def engine_for(client, worker) -> EngineClient:
    settings = dataclasses.replace(
        Settings.from_env({}),
        address=client.service_client.config.target_host,
        task_queue=worker.task_queue,
    )
    return EngineClient(client, settings, start_worker=False)


async def test_a_fan_out_stops_before_it_spends_past_its_budget(client, endpoints, fake_llm):
    limit = 0.0001
    async with new_worker(client, endpoints) as worker:
        engine = engine_for(client, worker)
        text = FAN_OUT.format(limit=limit, on_exceed="fail", items=50)
        started = await engine.start(engine.load_yaml(text), execution_id=f"b-{uuid.uuid4()}")
        with pytest.raises(RunFailed) as failed:
            await engine.result(started.execution_id)
        status = await engine.status(started.execution_id)
    message = str(failed.value)
    assert "budget exceeded: the run's budget is $0.0001" in message
    assert "the call of step 'label' (item" in message
    budget = status.budgets["run"]
    # one call: at most 50 output and ~20 input tokens at gpt-4o-mini's price
    worst = (20 * 0.15 + 50 * 0.60) / 1_000_000
    assert budget.spent_usd <= limit + worst
    assert 0 < len(fake_llm.requests) < 50  # stopped before the work was done, not after
    per_call = budget.spent_usd / len(fake_llm.requests)
    assert budget.spent_usd + per_call > limit - worst  # and not long before it either


async def test_a_paused_run_goes_on_when_its_budget_is_raised(client, endpoints, fake_llm):
    async with new_worker(client, endpoints) as worker:
        engine = engine_for(client, worker)
        text = FAN_OUT.format(limit=0.00005, on_exceed="pause", items=30)
        started = await engine.start(engine.load_yaml(text), execution_id=f"b-{uuid.uuid4()}")
        run_id = started.execution_id
        for _ in range(100):
            status = await engine.status(run_id)
            if status.budgets["run"].waiting:
                break
            await asyncio.sleep(0.1)
        waiting = status.budgets["run"].waiting or ""
        assert waiting.startswith("paused: budget exceeded: the run's budget is $0.00005")
        calls = len(fake_llm.requests)
        await asyncio.sleep(1)
        assert len(fake_llm.requests) == calls  # paused: nothing more is spent
        assert (await _details(client, run_id)).startswith("paused: budget exceeded")
        with pytest.raises(UsageError, match="no budget 'nope'"):
            await engine.raise_budget(run_id, max_cost_usd=1, step="nope")
        assert "run budget: $0" in progress_line(status)
        assert "(paused: budget exceeded" in progress_line(status)
        env = {"TEMPORAL_ADDRESS": client.service_client.config.target_host, "PATH": ""}
        raised = await asyncio.to_thread(starter, env, "budget", run_id, "--max-cost-usd", "0.01")
        assert raised.returncode == 0, raised.stderr
        assert raised.stdout.startswith(f"{run_id}: run budget now $")
        assert raised.stdout.rstrip().endswith("of $0.01")
        result = await engine.result(run_id)
    assert len(result.steps["label"].outputs["label"]) == 30
    assert result.budgets["run"].spent_usd == pytest.approx(result.usage.cost_usd)
    assert result.budgets["run"].waiting is None


async def _details(client, run_id: str) -> str:
    """The details line the Temporal UI shows for the run."""
    handle = client.get_workflow_handle(run_id)
    metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    return metadata.current_details


async def test_a_child_run_spends_from_its_parent_budget(client, endpoints, fake_llm, tmp_path):
    (tmp_path / "child.yaml").write_text(
        "workflow:\n  name: child\n  steps:\n"
        "    - {id: a, type: llm_call, model: openai/gpt-4o-mini, max_tokens: 20, prompt: hi}\n"
        "    - {id: b, type: llm_call, model: openai/gpt-4o-mini, max_tokens: 20, prompt: again}\n"
    )
    parent = """
workflow:
  name: parent
  budget: {max_tokens: 43}
  steps:
    - {id: first, type: llm_call, model: openai/gpt-4o-mini, max_tokens: 20, prompt: hello}
    - {id: sub, type: workflow, definition: child.yaml}
"""
    async with new_worker(client, endpoints) as worker:
        engine = engine_for(client, worker)
        loaded = engine.load_yaml(parent, base=tmp_path)
        started = await engine.start(loaded, execution_id=f"b-{uuid.uuid4()}")
        with pytest.raises(RunFailed, match="what the parent run allowed this child run"):
            await engine.result(started.execution_id)
        status = await engine.status(started.execution_id)
    # each call reserves ~40 tokens (its bytes, 16 framing, 20 out) and uses 4: the first and the
    # child's first fit in 43; the child's second would pass what it was allowed
    assert len(fake_llm.requests) == 2
    assert status.budgets["run"].spent_tokens <= 43


def test_a_model_without_a_price_is_refused_before_the_run_starts():
    text = """
workflow:
  name: unpriced
  budget: {max_cost_usd: 1}
  steps:
    - {id: a, type: llm_call, model: openai/brand-new-model, prompt: hi}
"""
    with pytest.raises(DefinitionError) as refused:
        load_yaml(text, Settings.from_env({}, connection=False), name="unpriced.yaml")
    assert str(refused.value).startswith("unpriced.yaml:6:")
    assert "'openai/brand-new-model' has no known price" in str(refused.value)
    # without a budget, the same model needs no price
    load_yaml(text.replace("  budget: {max_cost_usd: 1}\n", ""), Settings.from_env({}))


async def test_a_run_started_by_file_name_keeps_its_budget_at_the_workers_prices(
    client, endpoints, fake_llm, tmp_path
):
    """Temporal's CLI or UI starts a run with `definition_file` and no prices: the worker
    that reads the file prices its models, and refuses a model it has no price for."""
    (tmp_path / "fan.yaml").write_text(FAN_OUT.format(limit=0.0001, on_exceed="fail", items=50))
    unpriced = FAN_OUT.format(limit=1, on_exceed="fail", items=1).replace("4o-mini", "4o-next")
    (tmp_path / "unpriced.yaml").write_text(unpriced)
    async with new_worker(client, endpoints, definitions_dir=tmp_path) as worker:
        outcomes = []
        for name in ("fan.yaml", "unpriced.yaml"):
            handle = await client.start_workflow(
                "YamlWorkflow",
                RunInput(definition_file=name),
                id=f"b-{uuid.uuid4()}",
                task_queue=worker.task_queue,
            )
            with pytest.raises(WorkflowFailureError) as failed:
                await asyncio.wait_for(handle.result(), timeout=60)
            outcomes.append(str(failed.value.cause))
    assert "budget exceeded: the run's budget is $0.0001" in outcomes[0]
    assert 0 < len(fake_llm.requests) < 50
    assert "unpriced.yaml:8:14:" in outcomes[1] and "has no known price" in outcomes[1]
