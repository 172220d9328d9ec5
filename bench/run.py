"""The benchmark: scenarios S1-S5 on a local dev server against a fake OpenAI-compatible server,
beside plain Temporal, the physical floor (plain asyncio) and a peer (LangGraph + SQLite);
then S6, a fan-out against a rate-limited provider (bench/rate_limited.py).

    python bench/run.py [--quick] [--only S6|S2|V1|S7|S8|S9] [--out bench/results]

Writes results.json and results.md under --out (results-S6.* with --only S6, results-S2.*
with --only S2: the fan-out alone, engine and plain Temporal side by side, bench/fan_out.py;
results-V1.* with --only V1: validating 2,000-16,000 steps, bench/validation.py;
results-S7.* with --only S7: the cost of one job in each way of paying, bench/cost.py;
results-S8.* with --only S8: 1,000-10,000 runs waiting for a signal, bench/waiting_runs.py;
results-S9.* with --only S9: an evaluation on a dataset, bench/evaluation.py) and prints the
tables.
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import structlog  # noqa: E402
from temporalio.client import Client  # noqa: E402
from temporalio.contrib.pydantic import pydantic_data_converter  # noqa: E402

from bench import baselines, cost, evaluation, rate_limited, validation, waiting_runs  # noqa: E402
from bench import fan_out as s2_alone  # noqa: E402
from bench.engine_subject import Engine, Start, chain, timed  # noqa: E402
from bench.report import markdown  # noqa: E402
from bench.stack import CpuMeter, DevServer, Provider, worker_process  # noqa: E402
from workflows.contracts import RunInput, RunResult  # noqa: E402
from workflows.interpreter import YamlWorkflow  # noqa: E402
from workflows.validation import load_definition  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def chain_and_throughput(
    start: Start, meter: Callable[[], CpuMeter], fast: Provider, quick: bool
) -> dict[str, Any]:
    """S1 (a 10-step chain, 0 ms calls) and S3 (many 3-step runs at once, 50 ms calls)."""
    await timed(start, "chain", 2)  # warm up
    chains = 5 if quick else 20
    cpu = meter()
    per_step = [await timed(start, "chain", 10) / 10 for _ in range(chains)]
    s1_cpu = {name: seconds * 1000 / (chains * 10) for name, seconds in cpu.spent().items()}
    results: dict[str, Any] = {
        "S1": {
            "median_ms": statistics.median(per_step),
            "p95_ms": percentile(per_step, 0.95),
            "cpu_ms_per_step": s1_cpu,
        }
    }
    fast.control(latency=0.05)
    runs = 200 if quick else 1000
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cpu = meter()
    started = time.perf_counter()
    handles = await asyncio.gather(*(start(f"s3-{uuid.uuid4()}", "chain", 3) for _ in range(runs)))
    await asyncio.gather(*(handle.result() for handle in handles))
    elapsed = time.perf_counter() - started
    spent = cpu.spent()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    fast.control(latency=0.0)
    results["S3"] = {
        "runs": runs,
        "runs_per_s": runs / elapsed,
        "steps_per_s": 3 * runs / elapsed,
        "peak_rss_mib": peak / 1024,
        "rss_growth_mib": (peak - before) / 1024,
        "cpu_ms_per_run": {name: seconds * 1000 / runs for name, seconds in spent.items()},
    }
    return results


async def fan_out(start: Start, quick: bool) -> dict[str, float]:
    """S2: one run, 100 calls of 200 ms at once."""
    await timed(start, "fanout", 10)  # warm up
    walls = [await timed(start, "fanout", 100) for _ in range(3 if quick else 5)]
    median = statistics.median(walls)
    return {"median_ms": median, "beyond_ideal_ms": median - 200}


async def long_run(engine: Engine, fast: Provider, quick: bool) -> dict[str, float]:
    """S4: per-step cost at the start and at the end of a long run."""
    steps = 200 if quick else 500
    fast.control(clear=True)
    await timed(engine.start, "chain", steps)
    times = [request["received_at"] for request in fast.control(clear=True)["requests"]]
    gaps = [(b - a) * 1000 for a, b in zip(times, times[1:], strict=False)]
    first, last = statistics.mean(gaps[:50]), statistics.mean(gaps[-50:])
    return {"steps": steps, "first50_ms": first, "last50_ms": last, "ratio": last / first}


async def subject(
    kind: str, client: Client, server: DevServer, fast: Provider, slow: Provider, quick: bool
) -> dict[str, Any]:
    """S1-S4 (S4 for the engine only) on one worker in this process."""
    queue = f"bench-{uuid.uuid4()}"
    runner = Engine(client, queue) if kind == "engine" else baselines.PlainTemporal(client, queue)
    async with runner.worker(fast.openai_url):
        results = await chain_and_throughput(
            runner.start, lambda: CpuMeter(server, fast), fast, quick
        )
        if isinstance(runner, Engine):
            results["S4"] = await long_run(runner, fast, quick)
    async with runner.worker(slow.openai_url):
        results["S2"] = await fan_out(runner.start, quick)
    return results


async def recovery(address: str, fast: Provider) -> dict[str, Any]:
    """S5: a worker process killed mid-call; time until the run makes progress again."""
    queue = f"s5-{uuid.uuid4()}"

    def spawn() -> subprocess.Popen[bytes]:
        return worker_process(address, queue, fast.openai_url, subprocess.DEVNULL)

    def calls() -> list[str]:
        return [request["prompt"] for request in fast.control()["requests"]]

    client = await Client.connect(address, data_converter=pydantic_data_converter)
    fast.control(clear=True, latency=5.0)
    first = spawn()
    handle = await client.start_workflow(
        YamlWorkflow.run, RunInput(definition=load_definition(chain(3), "b.yaml")),
        id=f"s5-{uuid.uuid4()}", task_queue=queue,
    )  # fmt: skip
    while len(calls()) < 1:
        await asyncio.sleep(0.01)
    first.send_signal(signal.SIGKILL)
    first.wait()
    fast.control(latency=0.0)
    restarted = time.perf_counter()
    second = spawn()
    while len(calls()) < 2:
        await asyncio.sleep(0.01)
    moved = time.perf_counter() - restarted
    result: RunResult = await handle.result()
    second.terminate()
    second.wait()
    prompts = calls()
    return {"seconds_to_progress": moved, "heartbeat_timeout_s": 30,
            "completed_steps_called_again": len(prompts) - len(set(prompts)) - 1,
            "status": result.status}  # fmt: skip


async def measure(quick: bool, port: int, peer: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"cores": os.cpu_count() or 1, "quick": quick}
    fast, slow = Provider(), Provider(latency=0.2)
    try:
        for label, tuned in (("stock", False), ("tuned", True)):
            server = DevServer(tuned=tuned, port=port + tuned)  # nothing carries over
            client = await server.start()
            try:
                out[label] = await subject("engine", client, server, fast, slow, quick)
                if tuned:
                    out["plain_temporal"] = await subject(
                        "plain", client, server, fast, slow, quick
                    )
                    out[label]["S5"] = await recovery(server.address, fast)
            finally:
                server.stop()
        out["floor"] = await baselines.floor(fast.openai_url, slow.openai_url, 20)
        if peer:
            out["peer_langgraph"] = baselines.langgraph(fast.openai_url, slow.openai_url, quick)
    finally:
        fast.close()
        slow.close()
    out["S6"] = await rate_limited.measure(port + 2, peer)
    out["V1"] = validation.measure()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    parser.add_argument("--port", type=int, default=17633, help="the dev servers' first port")
    parser.add_argument(
        "--no-peer", action="store_true", help="skip LangGraph (and creating its virtualenv)"
    )
    parser.add_argument(
        "--only",
        choices=["S6", "S2", "V1", "S7", "S8", "S9"],
        help="run this scenario alone (S1-S5 share their setup)",
    )
    parser.add_argument("--rounds", type=int, default=5, help="--only S2: rounds of each")
    parser.add_argument("--sizes", default="1000,5000,10000", help="--only S8: runs waiting")
    parser.add_argument("--cache", type=int, help="--only S8: the worker's workflow cache")
    parser.add_argument(
        "--forget", action="store_true",
        help="--only S2: engine workers remember no limit (each starts as the first ever)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.rounds < 2:  # the engine's first cold fan-out is reported apart from the rest
        parser.error("--rounds: at least 2")
    if not args.no_peer:
        baselines.ensure_peer_venv()
    # The in-process worker logs every call; the bench prints only its tables.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    if args.only == "S6":
        s6 = asyncio.run(rate_limited.measure(args.port + 2, peer=not args.no_peer))
        results, name = {"cores": os.cpu_count() or 1, "S6": s6}, "results-S6"
    elif args.only == "S7":
        s7 = asyncio.run(cost.measure(args.port + 4, args.quick))
        results, name = {"cores": os.cpu_count() or 1, "S7": s7}, "results-S7"
    elif args.only == "S9":  # evaluation on a dataset: bench/evaluation.py (its options too)
        s9 = asyncio.run(evaluation.measure(1000, 300, [1000, 10_000], args.port + 5))
        results, name = {"cores": os.cpu_count() or 1, "S9": s9}, "results-S9"
    elif args.only == "V1":
        results, name = {"cores": os.cpu_count() or 1, "V1": validation.measure()}, "results-V1"
    elif args.only == "S8":
        sizes = tuple(int(size) for size in args.sizes.split(","))
        s8 = asyncio.run(waiting_runs.measure(sizes, args.cache))
        results, name = {"cores": os.cpu_count() or 1, "S8": s8}, "results-S8"
    elif args.only == "S2":
        s2 = asyncio.run(s2_alone.measure(args.port + 3, args.rounds, remember=not args.forget))
        results, name = {"cores": os.cpu_count() or 1, "S2": s2}, "results-S2"
    else:
        results = asyncio.run(measure(args.quick, args.port, peer=not args.no_peer))
        name = "results"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")
    tables = cost.table(results["S7"]) if args.only == "S7" else markdown(results)
    (out / f"{name}.md").write_text(tables)
    print(tables)
    sys.stdout.flush()
    os._exit(0)  # skip teardown of the client's Rust threads (temporalio/sdk-python#300)


if __name__ == "__main__":
    main()
