"""S7, the cost of one job: a classification of N items (1,000) that all share one
2,000-token instruction, run by the engine in each way of paying (realtime, realtime with
prompt caching, OpenAI's flex tier, a provider batch, a batch with caching), priced with the
built-in table from the usage the provider reported. Dollars are measured, not asserted.

The provider is the fake (tests/fake_llm.py, in this process): it counts a token per word,
answers realtime calls after `LATENCY`, caches prefixes as the providers do (1,024 tokens at
least) and ends a batch `BATCH_SECONDS` after it was submitted. A real batch ends within
minutes to 24 hours, so its wall time here says what the engine adds, not what a provider
takes.

    python bench/run.py --only S7 [--quick]
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from activities.endpoints import Endpoint
from activities.providers.clients import build_providers
from bench.stack import DevServer
from engine.plugin import EnginePlugin
from engine.settings import Settings
from tests.fake_llm import FakeLlmServer, Request
from workflows.contracts import RunInput
from workflows.interpreter import YamlWorkflow
from workflows.validation import load_definition

ITEMS, QUICK_ITEMS = 1000, 200
LATENCY = 0.2
BATCH_SECONDS = 5.0
INSTRUCTION = " ".join(f"rule{n}" for n in range(2000))
"""2,000 tokens as the fake counts them."""


@dataclass(frozen=True)
class Mode:
    label: str
    model: str
    options: str = ""


MODES = (
    Mode("realtime", "anthropic/claude-haiku-4-5"),
    Mode("realtime, cached", "anthropic/claude-haiku-4-5", "cache: system"),
    Mode("batch", "anthropic/claude-haiku-4-5", "batch: true"),
    Mode("batch, cached", "anthropic/claude-haiku-4-5", "batch: true\n      cache: system"),
    Mode("realtime (cached by OpenAI itself)", "openai/gpt-4o-mini"),
    Mode("flex", "openai/gpt-4o-mini", "service_tier: flex"),
    Mode("batch", "openai/gpt-4o-mini", "batch: true"),
)


def job(mode: Mode, items: int) -> str:
    options = f"\n      {mode.options}" if mode.options else ""
    return f"""
workflow:
  name: classify
  steps:
    - id: classify
      type: llm_call
      model: "{mode.model}"
      max_tokens: 5
      concurrency: 100
      for_each: "{{{{ range({items}) | list }}}}"
      system: "{INSTRUCTION}"
      prompt: "Ticket {{{{ item }}}}: billing, bug or other?"{options}
"""


def answer(request: Request) -> str:
    return "billing"


async def measure(port: int, quick: bool) -> dict[str, Any]:
    items = QUICK_ITEMS if quick else ITEMS
    server = DevServer(tuned=True, port=port)
    out: dict[str, Any] = {"items": items, "latency_s": LATENCY, "batch_s": BATCH_SECONDS}
    runs: list[dict[str, Any]] = []
    try:
        client = await server.start()
        for mode in MODES:
            with FakeLlmServer(reply=answer, latency=LATENCY) as llm:
                llm.batches.delay = BATCH_SECONDS
                runs.append(await _run(client, llm, mode, items))
    finally:
        server.stop()
    out["runs"] = runs
    return out


async def _run(client: Client, llm: FakeLlmServer, mode: Mode, items: int) -> dict[str, Any]:
    endpoints = {
        "openai": Endpoint(api_key="k", base_url=llm.openai_url),
        "anthropic": Endpoint(api_key="k", base_url=llm.anthropic_url),
    }
    plugin = EnginePlugin(Settings(), providers=build_providers(endpoints))
    queue = f"s7-{uuid.uuid4()}"
    async with Worker(client, task_queue=queue, plugins=[plugin]):
        started = time.perf_counter()
        result = await client.execute_workflow(
            YamlWorkflow.run,
            RunInput(definition=load_definition(job(mode, items), "s7.yaml")),
            id=f"s7-{uuid.uuid4()}",
            task_queue=queue,
        )
        wall = time.perf_counter() - started
    usage = result.steps["classify"].usage
    return {
        "mode": mode.label,
        "model": mode.model,
        "wall_s": round(wall, 2),
        "cost_usd": usage.cost_usd,
        "saved_usd": usage.saved_usd,
        "input_tokens": usage.input_tokens,
        "cache_read_tokens": usage.cache_read_tokens,
        "cache_write_tokens": usage.cache_write_tokens,
        "output_tokens": usage.output_tokens,
        "realtime_calls": len(llm.requests),
        "batches": len(llm.batches.created),
    }


def table(s7: dict[str, Any]) -> str:
    lines = [
        f"S7: {s7['items']} items sharing a 2,000-token instruction; realtime calls answer "
        f"after {s7['latency_s'] * 1000:.0f} ms, a batch ends {s7['batch_s']:.0f} s after "
        "it is submitted.",
        "",
        "| model | mode | $ per run | vs realtime | wall | input tokens (cache read / written) "
        "| realtime calls | batches |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    base: dict[str, float] = {}
    for run in s7["runs"]:
        base.setdefault(run["model"], run["cost_usd"])
        ratio = run["cost_usd"] / base[run["model"]] if base[run["model"]] else 0
        lines.append(
            f"| {run['model']} | {run['mode']} | ${run['cost_usd']:.4f} | {ratio:.2f}x "
            f"| {run['wall_s']:.1f} s | {run['input_tokens']:,} ({run['cache_read_tokens']:,} / "
            f"{run['cache_write_tokens']:,}) | {run['realtime_calls']} | {run['batches']} |"
        )
    return "\n".join(lines) + "\n"
