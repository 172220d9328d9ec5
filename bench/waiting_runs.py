"""S8: many runs waiting at once. N runs each wait for an `approve` signal on one worker
(`python worker.py`, a process of its own, its workflow cache sized to hold them all, as
docs/operations.md says); measured: the time to start them all (until every one is waiting),
the worker's and the server's memory while they wait, and the time from signalling all to
all completed. For 1,000, 5,000 and 10,000 runs, each on a fresh in-memory dev server.

    python bench/run.py --only S8 [--sizes 1000,5000,10000] [--cache N]
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from temporalio.client import Client

from bench.stack import DevServer, cpu_seconds, worker_process
from workflows import search_attributes
from workflows.contracts import RunInput
from workflows.interpreter import YamlWorkflow
from workflows.validation import load_definition

SIZES = (1_000, 5_000, 10_000)
AT_ONCE = 200
"""Starts (and signals) in flight at once from the client."""
CACHE_ENV = "WORKER_MAX_CACHED_WORKFLOWS"


def waiting(name: str) -> str:
    return f"""
workflow:
  name: {name}
  steps:
    - {{id: ok, type: wait_for_signal, signal: approve, outputs: [answer]}}
    - {{id: after, type: set, values: {{line: "approved: {{{{ answer }}}}"}}}}
"""


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def _count(client: Client, name: str, status: str) -> int:
    query = f"{search_attributes.DEFINITION_NAME.name} = '{name}' AND ExecutionStatus = '{status}'"
    return (await client.count_workflows(query)).count


async def _until(client: Client, name: str, status: str, n: int, limit: float) -> float:
    """Seconds until `n` runs of `name` are in `status` (polled twice a second)."""
    started = time.perf_counter()
    while await _count(client, name, status) < n:
        if time.perf_counter() - started > limit:
            raise RuntimeError(f"S8: {n} runs not {status} after {limit:.0f} s")
        await asyncio.sleep(0.5)
    return time.perf_counter() - started


async def _in_batches(work: list[Any]) -> None:
    for at in range(0, len(work), AT_ONCE):
        await asyncio.gather(*(job() for job in work[at : at + AT_ONCE]))


def free_port() -> int:
    """A port nothing listens on: a busy one would connect the bench to another's server."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def one_size(n: int, cache: int | None) -> dict[str, Any]:
    server = DevServer(tuned=True, port=free_port())
    client = await server.start()
    assert server.process.poll() is None, "the dev server exited (its port was taken?)"
    queue = f"s8-{uuid.uuid4().hex[:8]}"
    name = f"S8Wait{n}"
    dev_dir = tempfile.mkdtemp(prefix="s8-")  # the worker's files, out of the project's
    settings = {CACHE_ENV: str(cache or n), "TEMPORAL_DEV_DIR": dev_dir}
    worker = worker_process(server.address, queue, "http://127.0.0.1:9/v1", subprocess.DEVNULL,
                            **settings)  # fmt: skip
    try:
        await asyncio.sleep(3)  # the worker connects and polls
        idle = {"worker": rss_mib(worker.pid), "server": rss_mib(server.process.pid)}
        run_input = RunInput(definition=load_definition(waiting(name), "s8.yaml"))
        ids = [f"{name}-{i}" for i in range(n)]

        def start(run_id: str) -> Any:
            return lambda: client.start_workflow(
                YamlWorkflow.run, run_input, id=run_id, task_queue=queue
            )

        cpu = _cpu(worker.pid, server.process.pid)
        began = time.perf_counter()
        await _in_batches([start(run_id) for run_id in ids])
        accepted = time.perf_counter() - began
        await _until(client, name, "Running", n, 60 + n / 5)
        # every run has upserted its attributes: its first task ran and it now waits
        to_waiting = time.perf_counter() - began
        start_cpu = _spent(cpu, _cpu(worker.pid, server.process.pid))
        await asyncio.sleep(2)
        held = {"worker": rss_mib(worker.pid), "server": rss_mib(server.process.pid)}

        def signal(run_id: str) -> Any:
            handle = client.get_workflow_handle(run_id)
            return lambda: handle.signal("approve", {"answer": "yes"})

        cpu = _cpu(worker.pid, server.process.pid)
        began = time.perf_counter()
        await _in_batches([signal(run_id) for run_id in ids])
        signalled = time.perf_counter() - began
        await _until(client, name, "Completed", n, 60 + n / 5)
        to_completed = time.perf_counter() - began
        signal_cpu = _spent(cpu, _cpu(worker.pid, server.process.pid))
        return {
            "runs": n,
            "cache": cache or n,
            "start_accepted_s": accepted,
            "start_to_all_waiting_s": to_waiting,
            "signals_sent_s": signalled,
            "signal_to_all_completed_s": to_completed,
            "cpu_ms_per_run_start": {k: v * 1000 / n for k, v in start_cpu.items()},
            "cpu_ms_per_run_signal": {k: v * 1000 / n for k, v in signal_cpu.items()},
            "idle_rss_mib": idle,
            "waiting_rss_mib": held,
            "worker_kib_per_waiting_run": (held["worker"] - idle["worker"]) * 1024 / n,
            "server_kib_per_waiting_run": (held["server"] - idle["server"]) * 1024 / n,
        }
    finally:
        worker.terminate()
        worker.wait()
        server.stop()


def _cpu(worker: int, server: int) -> dict[str, float]:
    return {"worker": cpu_seconds(worker), "server": cpu_seconds(server),
            "client": time.process_time()}  # fmt: skip


def _spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: after[name] - before[name] for name in before}


async def measure(sizes: tuple[int, ...] = SIZES, cache: int | None = None) -> dict[str, Any]:
    return {str(n): await one_size(n, cache) for n in sizes}


def table(s8: dict[str, Any]) -> str:
    lines = [
        "| S8 waiting runs | worker cache | start: all waiting | signal: all completed "
        "| ratio | worker RSS waiting (per run) | server RSS waiting (per run) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in s8.values():
        ratio = row["signal_to_all_completed_s"] / row["start_to_all_waiting_s"]
        lines.append(
            f"| {row['runs']:,} | {row['cache']:,} | {row['start_to_all_waiting_s']:.1f} s "
            f"({row['runs'] / row['start_to_all_waiting_s']:.0f} runs/s) "
            f"| {row['signal_to_all_completed_s']:.1f} s | {ratio:.2f}x "
            f"| {row['waiting_rss_mib']['worker']:.0f} MiB "
            f"({row['worker_kib_per_waiting_run']:.0f} KiB) "
            f"| {row['waiting_rss_mib']['server']:.0f} MiB "
            f"({row['server_kib_per_waiting_run']:.0f} KiB) |"
        )
    lines += [
        "",
        "| S8 CPU per run (ms) | start: worker | server | client | signal: worker | server "
        "| client |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in s8.values():
        if "cpu_ms_per_run_start" in row:
            a, b = row["cpu_ms_per_run_start"], row["cpu_ms_per_run_signal"]
            lines.append(
                f"| {row['runs']:,} | {a['worker']:.1f} | {a['server']:.1f} | {a['client']:.1f} "
                f"| {b['worker']:.1f} | {b['server']:.1f} | {b['client']:.1f} |"
            )
    return "\n".join(lines) + "\n"
