"""What the engine is compared with: the physical floor (plain asyncio and the official SDK
calling the same fake server), plain Temporal (bench/plain_workflows.py) and a peer
(LangGraph with its SQLite checkpointer, in its own virtualenv)."""

from __future__ import annotations

import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from openai import AsyncOpenAI
from temporalio import activity
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from bench.plain_workflows import CALL, PlainChain, PlainFanout
from bench.stack import ROOT

PEER_VENV = ROOT / "bench" / ".venv-langgraph"


async def ask(client: AsyncOpenAI, prompt: str) -> str:
    reply = await client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}]
    )
    return reply.choices[0].message.content or ""


async def floor(fast_url: str, slow_url: str, chains: int) -> dict[str, float]:
    """No orchestration at all: the chain's calls one after another, the fan-out's at once,
    through the same SDK the engine uses (its own CPU cost is part of the floor)."""
    client = AsyncOpenAI(base_url=fast_url, api_key="bench", max_retries=0)
    await ask(client, "warm up")
    per_step = []
    for _ in range(chains):
        started = time.perf_counter()
        for index in range(10):
            await ask(client, f"step {index}")
        per_step.append((time.perf_counter() - started) * 100)
    slow = AsyncOpenAI(base_url=slow_url, api_key="bench", max_retries=0)
    fanouts = []
    for _ in range(6):  # the first one warms up
        started = time.perf_counter()
        await asyncio.gather(*(ask(slow, f"item {index}") for index in range(100)))
        fanouts.append((time.perf_counter() - started) * 1000)
    return {"S1_step_ms": statistics.median(per_step), "S2_ms": statistics.median(fanouts[1:])}


class PlainTemporal:
    """Starts plain Temporal runs, and builds the worker that serves them."""

    def __init__(self, client: Client, queue: str):
        self.client = client
        self.queue = queue

    def worker(self, base_url: str) -> Worker:
        provider = AsyncOpenAI(base_url=base_url, api_key="bench", max_retries=0)

        @activity.defn(name=CALL)
        async def plain_call(prompt: str) -> str:
            return await ask(provider, prompt)

        return Worker(
            self.client,
            task_queue=self.queue,
            workflows=[PlainChain, PlainFanout],
            activities=[plain_call],
            max_concurrent_activities=200,
        )

    async def start(self, run_id: str, kind: str, size: int) -> WorkflowHandle[Any, Any]:
        run = PlainChain.run if kind == "chain" else PlainFanout.run
        return await self.client.start_workflow(run, size, id=run_id, task_queue=self.queue)


def ensure_peer_venv() -> None:
    """LangGraph lives in a virtualenv of its own (its dependencies are not the engine's),
    created from PyPI on the first run; without it the peer's column says "not run"."""
    python = PEER_VENV / "bin" / "python"
    if python.exists():
        return
    print(f"creating {PEER_VENV.relative_to(ROOT)} for the LangGraph peer (once)", flush=True)
    requirements = Path(__file__).parent / "peers" / "requirements-langgraph.txt"
    try:
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "-r", str(requirements)], check=True
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        shutil.rmtree(PEER_VENV, ignore_errors=True)
        print(f"LangGraph peer skipped: its virtualenv could not be made ({exc})", flush=True)


def langgraph(fast_url: str, slow_url: str, quick: bool) -> dict[str, Any] | None:
    """The peer, run by its own Python; None when its virtualenv is missing."""
    python = PEER_VENV / "bin" / "python"
    if not python.exists():
        return None
    done = subprocess.run(
        [str(python), str(Path(__file__).parent / "peers" / "langgraph_peer.py"), fast_url,
         slow_url, "5" if quick else "20", "3" if quick else "5"],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1:]}
    data = json.loads(done.stdout)
    return {
        "S1_step_ms": statistics.median(data["chain_step_ms"]),
        "S2_ms": statistics.median(data["fanout_ms"]),
    }
