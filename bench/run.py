"""The benchmark: scenarios S1-S5 on a local dev server against a fake OpenAI-compatible server,
beside the physical floor (plain asyncio) and a peer (LangGraph + SQLite checkpointer).

    python bench/run.py [--quick] [--out bench/results]

Writes results.json and results.md under --out and prints the table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import resource
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import structlog  # noqa: E402
from openai import AsyncOpenAI  # noqa: E402
from temporalio.client import Client  # noqa: E402
from temporalio.contrib.pydantic import pydantic_data_converter  # noqa: E402
from temporalio.testing import WorkflowEnvironment  # noqa: E402

from activities.endpoints import Endpoint  # noqa: E402
from activities.llm import build_providers  # noqa: E402
from tests.fake_llm import FakeLlmServer  # noqa: E402
from worker import build_worker, search_attribute_flags, temporal_cli  # noqa: E402
from workflows.contracts import RunInput, RunResult  # noqa: E402
from workflows.interpreter import YamlWorkflow  # noqa: E402
from workflows.validation import load_definition  # noqa: E402

TUNED = ["--dynamic-config-value", "history.transferProcessorMaxPollRPS=10000"]
PEER_VENV = ROOT / "bench" / ".venv-langgraph"


def chain(steps: int) -> str:
    lines = ["workflow:", "  name: Chain", "  defaults: {model: gpt-4o-mini}", "  steps:"]
    lines += [f"    - {{id: s{i}, type: llm_call, prompt: 'step {i}'}}" for i in range(steps)]
    return "\n".join(lines) + "\n"


FANOUT = """
workflow:
  name: Fanout
  steps:
    - {id: each, type: llm_call, model: gpt-4o-mini, for_each: "{{ range(100) | list }}",
       concurrency: 100, prompt: "item {{ item }}"}
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run_one(client: Client, queue: str, text: str) -> float:
    started = time.perf_counter()
    await client.execute_workflow(
        YamlWorkflow.run,
        RunInput(definition=load_definition(text, "bench.yaml")),
        id=f"bench-{uuid.uuid4()}",
        task_queue=queue,
    )
    return (time.perf_counter() - started) * 1000


async def engine(client: Client, fast: FakeLlmServer, slow: FakeLlmServer, quick: bool) -> dict:
    """S1-S4 on one worker in this process."""
    results: dict[str, Any] = {}
    queue = f"bench-{uuid.uuid4()}"
    providers = build_providers({"openai": Endpoint(api_key="k", base_url=fast.openai_url)})
    async with build_worker(client, queue, providers, ROOT, max_concurrent_activities=200):
        await run_one(client, queue, chain(2))  # warm up
        per_step = [await run_one(client, queue, chain(10)) / 10 for _ in range(5 if quick else 20)]
        results["S1"] = {
            "median_ms": statistics.median(per_step),
            "p95_ms": percentile(per_step, 0.95),
        }

        fast.latency = 0.05
        runs = 200 if quick else 1000
        text = load_definition(chain(3), "bench.yaml")
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        handles = await asyncio.gather(
            *(
                client.start_workflow(
                    YamlWorkflow.run, RunInput(definition=text), id=f"s3-{uuid.uuid4()}",
                    task_queue=queue,
                )
                for _ in range(runs)
            )
        )  # fmt: skip
        await asyncio.gather(*(handle.result() for handle in handles))
        elapsed = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        results["S3"] = {
            "runs": runs,
            "runs_per_s": runs / elapsed,
            "steps_per_s": 3 * runs / elapsed,
            "peak_rss_mib": peak / 1024,
            "rss_growth_mib": (peak - before) / 1024,
        }
        fast.latency = 0.0

        steps = 200 if quick else 500
        fast.requests.clear()
        await run_one(client, queue, chain(steps))
        times = [request.received_at for request in fast.requests]
        gaps = [(b - a) * 1000 for a, b in zip(times, times[1:], strict=False)]
        first, last = statistics.mean(gaps[:50]), statistics.mean(gaps[-50:])
        results["S4"] = {
            "steps": steps,
            "first50_ms": first,
            "last50_ms": last,
            "ratio": last / first,
        }

    slow_queue = f"bench-{uuid.uuid4()}"
    providers = build_providers({"openai": Endpoint(api_key="k", base_url=slow.openai_url)})
    async with build_worker(client, slow_queue, providers, ROOT, max_concurrent_activities=200):
        walls = [await run_one(client, slow_queue, FANOUT) for _ in range(3 if quick else 5)]
        results["S2"] = {
            "median_ms": statistics.median(walls),
            "beyond_ideal_ms": statistics.median(walls) - 200,
        }
    return results


async def recovery(address: str, fast: FakeLlmServer) -> dict:
    """S5: a worker process killed mid-call; time until the run makes progress again."""
    queue = f"s5-{uuid.uuid4()}"
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
    env |= {"TEMPORAL_ADDRESS": address, "TEMPORAL_TASK_QUEUE": queue,
            "OPENAI_BASE_URL": fast.openai_url, "OPENAI_API_KEY": "k"}  # fmt: skip
    spawn = lambda: subprocess.Popen(  # noqa: E731
        [sys.executable, "worker.py"], cwd=ROOT, env=env, stderr=subprocess.DEVNULL
    )
    client = await Client.connect(address, data_converter=pydantic_data_converter)
    fast.requests.clear()
    fast.latency = 5.0
    first = spawn()
    handle = await client.start_workflow(
        YamlWorkflow.run, RunInput(definition=load_definition(chain(3), "b.yaml")),
        id=f"s5-{uuid.uuid4()}", task_queue=queue,
    )  # fmt: skip
    while len(fast.requests) < 1:
        await asyncio.sleep(0.01)
    first.send_signal(signal.SIGKILL)
    first.wait()
    fast.latency = 0.0
    restarted = time.perf_counter()
    second = spawn()
    while len(fast.requests) < 2:
        await asyncio.sleep(0.01)
    moved = time.perf_counter() - restarted
    result: RunResult = await handle.result()
    second.terminate()
    second.wait()
    prompts = [r.body["messages"][-1]["content"] for r in fast.requests]
    return {"seconds_to_progress": moved, "heartbeat_timeout_s": 30,
            "completed_steps_called_again": len(prompts) - len(set(prompts)) - 1,
            "status": result.status}  # fmt: skip


async def ask(client: AsyncOpenAI, prompt: str) -> None:
    await client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}]
    )


async def floor(fast: FakeLlmServer, slow: FakeLlmServer) -> dict:
    """The physical floor: plain asyncio calling the same fake server, no orchestration."""
    client = AsyncOpenAI(base_url=fast.openai_url, api_key="k", max_retries=0)
    per_step = []
    for _ in range(20):
        started = time.perf_counter()
        for i in range(10):
            await client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": f"step {i}"}]
            )
        per_step.append((time.perf_counter() - started) * 100)
    slow_client = AsyncOpenAI(base_url=slow.openai_url, api_key="k", max_retries=0)
    started = time.perf_counter()
    await asyncio.gather(
        *(
            slow_client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": f"item {i}"}]
            )
            for i in range(100)
        )
    )
    fanout = (time.perf_counter() - started) * 1000
    return {"S1_step_ms": statistics.median(per_step), "S2_ms": fanout}


def peer(fast: FakeLlmServer, slow: FakeLlmServer, quick: bool) -> dict | None:
    python = PEER_VENV / "bin" / "python"
    if not python.exists():
        return None
    done = subprocess.run(
        [str(python), str(ROOT / "bench/peers/langgraph_peer.py"), fast.openai_url,
         slow.openai_url, "5" if quick else "20", "3" if quick else "5"],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1:]}
    data = json.loads(done.stdout)
    return {
        "S1_step_ms": statistics.median(data["chain_step_ms"]),
        "S2_ms": statistics.median(data["fanout_ms"]),
    }


async def measure(quick: bool) -> dict:
    out: dict[str, Any] = {"machine": f"{os.cpu_count()} cores", "quick": quick}
    with (
        FakeLlmServer(reply=lambda r: "ok") as fast,
        FakeLlmServer(reply=lambda r: "ok", latency=0.2) as slow,
    ):
        for label, extra in (("stock", []), ("tuned", TUNED)):
            env = await WorkflowEnvironment.start_local(
                dev_server_existing_path=temporal_cli(), data_converter=pydantic_data_converter,
                dev_server_extra_args=[*extra, *search_attribute_flags()],
            )  # fmt: skip
            try:
                out[label] = await engine(env.client, fast, slow, quick)
                if label == "tuned":
                    out[label]["S5"] = await recovery(
                        env.client.service_client.config.target_host, fast
                    )
            finally:
                await env.shutdown()
        out["floor"] = await floor(fast, slow)
        out["peer_langgraph"] = peer(fast, slow, quick)
    return out


def markdown(r: dict) -> str:
    """One row per scenario: engine on a stock and a tuned dev server, floor, peer, target."""
    floor_, peer_ = r["floor"], r.get("peer_langgraph") or {}
    stock, tuned = r["stock"], r["tuned"]

    def vs_floor(value: float, base: float) -> str:
        return f"{value:.1f} ms ({value / base:.1f}x floor)"

    def peer_cell(key: str, base: float) -> str:
        return vs_floor(peer_[key], base) if key in peer_ else "not run"

    s1f, s2f = floor_["S1_step_ms"], floor_["S2_ms"]
    s3, s4, s5 = tuned["S3"], tuned["S4"], tuned["S5"]
    rows = [
        ("S1 chain, per step (median)", vs_floor(stock["S1"]["median_ms"], s1f),
         vs_floor(tuned["S1"]["median_ms"], s1f), f"{s1f:.1f} ms", peer_cell("S1_step_ms", s1f),
         "≤ 10 ms"),
        ("S1 chain, per step (p95)", f"{stock['S1']['p95_ms']:.1f} ms",
         f"{tuned['S1']['p95_ms']:.1f} ms", "", "", "≤ 15 ms"),
        ("S2 100-way fan-out, 200 ms calls", vs_floor(stock["S2"]["median_ms"], s2f),
         vs_floor(tuned["S2"]["median_ms"], s2f), f"{s2f:.0f} ms", peer_cell("S2_ms", s2f),
         "≤ 350 ms"),
        (f"S3 {s3['runs']} runs x 3 steps, 50 ms calls", f"{stock['S3']['runs_per_s']:.1f} runs/s",
         f"{s3['runs_per_s']:.1f} runs/s, {s3['steps_per_s']:.0f} steps/s, "
         f"peak RSS {s3['peak_rss_mib']:.0f} MiB", "", "", "≥ 40 runs/s"),
        (f"S4 {s4['steps']}-step run, last 50 / first 50", f"{stock['S4']['ratio']:.2f}x",
         f"{s4['ratio']:.2f}x ({s4['first50_ms']:.1f} → {s4['last50_ms']:.1f} ms)", "", "",
         "≤ 1.1x"),
        ("S5 killed worker: restart to progress", "",
         f"{s5['seconds_to_progress']:.1f} s; completed steps called again: "
         f"{s5['completed_steps_called_again']}", "", "", "≤ 31 s; 0"),
    ]  # fmt: skip
    header = (
        "| scenario | engine, stock server | engine, tuned server | floor | LangGraph | target |"
    )
    lines = [header, "| --- | --- | --- | --- | --- | --- |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = parser.parse_args()
    # The in-process worker logs every call; the bench prints only its table.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    results = asyncio.run(measure(args.quick))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    table = markdown(results)
    (out / "results.md").write_text(table)
    print(table)
    sys.stdout.flush()
    os._exit(0)  # skip teardown of the client's Rust threads (temporalio/sdk-python#300)


if __name__ == "__main__":
    main()
