"""Load: 500 concurrent runs of a 3-step definition against a provider with 50 ms latency,
on one worker process with its back-pressure settings. Slow: `pytest -m slow`."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import ROOT, definition, worker_env
from tests.fake_llm import FakeLlmServer, Request
from workflows.contracts import RunInput, RunResult
from workflows.interpreter import YamlWorkflow

RUNS = 500
THREE_STEPS = """
workflow:
  name: Load
  variables: {n: 0}
  defaults: {model: gpt-4o-mini}
  steps:
    - {id: one, type: llm_call, prompt: "one {{ n }}", outputs: [a]}
    - {id: two, type: llm_call, prompt: "two {{ a }}", outputs: [b]}
    - {id: three, type: llm_call, prompt: "three {{ b }}", outputs: [c]}
"""


def last_word(request: Request) -> str:
    return request.body["messages"][-1]["content"].split()[-1]


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@pytest.mark.slow
@pytest.mark.timeout(900)
async def test_five_hundred_concurrent_runs_complete_with_bounded_memory(temporal_env):
    client = temporal_env.client
    task_queue = f"load-{uuid.uuid4()}"
    with FakeLlmServer(reply=last_word, latency=0.05) as llm:
        env = worker_env(client.service_client.config.target_host, task_queue, llm)
        worker = subprocess.Popen([sys.executable, "worker.py"], cwd=ROOT, env=env,
                                  stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            parsed = definition(THREE_STEPS)
            started = time.monotonic()
            handles = await asyncio.gather(
                *(
                    client.start_workflow(
                        YamlWorkflow.run,
                        RunInput(definition=parsed, variables={"n": i}),
                        id=f"load-{i}-{uuid.uuid4().hex[:6]}",
                        task_queue=task_queue,
                    )
                    for i in range(RUNS)
                )
            )
            results: list[RunResult] = await asyncio.gather(*(h.result() for h in handles))
            elapsed = time.monotonic() - started
            rss = peak_rss_mib(worker.pid)
        finally:
            worker.terminate()
            worker.wait()
    assert [r.outputs["c"] for r in results] == [str(i) for i in range(RUNS)]
    assert len(llm.requests) == 3 * RUNS  # nothing paid twice under load
    rate = RUNS / elapsed
    print(f"\n{RUNS} runs in {elapsed:.1f} s ({rate:.1f} runs/s); worker peak RSS {rss:.0f} MiB")
    assert rss < 1024
