"""W1: the workbench's pages, measured (not asserted), on a tuned dev server with an
in-process worker and the offline mock provider.

    python bench/workbench_pages.py [--items 1000] [--steps 50] [--runs 300]

- the page of a run with a `for_each` of ITEMS model calls and STEPS steps in all: the
  server's time for the whole page (status query, history read, view, HTML) and its size;
- the runs list with RUNS runs in the namespace: the first page and the next (each asks
  Temporal's visibility for one page, 51 runs, however many there are).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import socket
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from temporalio.client import Client  # noqa: E402
from temporalio.worker import Worker  # noqa: E402

from activities.codec import data_converter  # noqa: E402
from activities.llm import build_providers  # noqa: E402
from bench.stack import DevServer  # noqa: E402
from engine.client import EngineClient  # noqa: E402
from engine.plugin import EnginePlugin  # noqa: E402
from engine.rest import create_app  # noqa: E402
from engine.rest_auth import ApiConfig  # noqa: E402
from engine.settings import Settings  # noqa: E402


def definition(items: int, steps: int) -> str:
    lines = [
        "workflow:",
        "  name: wide",
        "  steps:",
        f"    - id: fan\n      type: llm_call\n      model: mock\n      concurrency: 100"
        f"\n      for_each: {list(range(items))}\n      prompt: 'Item {{{{ item }}}}'",
    ]
    lines += [f"    - {{id: s{i}, type: set, values: {{v{i}: {i}}}}}" for i in range(steps - 1)]
    return "\n".join(lines) + "\n"


def port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def timed(http: httpx.AsyncClient, path: str, repeats: int) -> tuple[float, int]:
    """Median milliseconds of GET path, and the answer's size."""
    times, size = [], 0
    for _ in range(repeats):
        started = time.perf_counter()
        answer = await http.get(path)
        times.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, answer.text[:500]
        size = len(answer.content)
    return statistics.median(times), size


async def main(items: int, steps: int, runs: int) -> None:
    server = DevServer(tuned=True, port=port())
    await server.start()
    try:
        client = await Client.connect(server.address, data_converter=data_converter(None))
        queue = f"bench-{uuid.uuid4().hex[:8]}"
        plugin = EnginePlugin(Settings(definitions_dir=ROOT), providers=build_providers({}))
        settings = dataclasses.replace(
            Settings.from_env({}), address=server.address, task_queue=queue, definitions_dir=ROOT
        )
        engine = EngineClient(client, settings, start_worker=False)

        async def connect() -> EngineClient:
            return engine

        app = create_app(settings, ApiConfig(), connect)
        transport = httpx.ASGITransport(app=app)
        async with (
            Worker(client, task_queue=queue, plugins=[plugin], max_concurrent_activities=200),
            httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http,
        ):
            started = time.perf_counter()
            wide = await engine.start(engine.load_yaml(definition(items, steps)))
            await engine.result(wide.execution_id)
            print(f"run of {items} items and {steps} steps: {time.perf_counter() - started:.1f} s")
            ms, size = await timed(http, f"/runs/{wide.execution_id}", 5)
            print(f"W1 run page: {ms:.0f} ms server-side (median of 5), {size / 1024:.0f} KiB")
            ms, size = await timed(http, f"/runs/{wide.execution_id}?part=live", 5)
            print(f"W1 run page, live part: {ms:.0f} ms, {size / 1024:.0f} KiB")
            small = engine.load_yaml(definition(0, 2).replace("for_each: []", "for_each: [1]"))
            for batch in range(0, runs, 50):
                await asyncio.gather(*(engine.start(small) for _ in range(min(50, runs - batch))))
            ms, size = await timed(http, "/runs", 5)
            print(f"W1 runs list, first page of {runs + 1} runs: {ms:.0f} ms, {size // 1024} KiB")
    finally:
        server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--runs", type=int, default=300)
    options = parser.parse_args()
    asyncio.run(main(options.items, options.steps, options.runs))
