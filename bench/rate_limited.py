"""S6, rate-limited fan-out: 300 model calls, 50 at a time, against a provider that allows 600
requests and 60,000 tokens a minute (each call costs 100 tokens, so both limits bind at once).
Does the engine run at the limit rather than into it?

Subjects: the engine with pacing (learned from the provider's headers) on one and on two
worker processes, each starting with nothing remembered, and on two that start from the
limit an earlier worker remembered (LLM_PACING_MEMORY); the engine without pacing
(LLM_PACING=off: each 429 retried by Temporal after the provider's Retry-After); LangGraph
with the OpenAI SDK's default retries. The engine's workers are `python worker.py`
processes configured by their environment, as in production; their JSON logs say which
of their calls were refused, and when.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowFailureError

from activities.endpoints import Endpoint
from activities.pacing_memory import PacingMemory, endpoint_key
from activities.rate_limit_settings import Limit
from bench.baselines import PEER_VENV
from bench.stack import DevServer, Provider, worker_process
from workflows.contracts import RunInput
from workflows.interpreter import YamlWorkflow
from workflows.validation import load_definition

ITEMS, CONCURRENCY, LATENCY = 300, 50, 0.05
REQUESTS_PER_MINUTE, TOKENS_PER_MINUTE = 600, 60_000
MAX_TOKENS = 50
FILLER = " ".join(("red", "fox", "ran", "far", "off", "the", "big", "hat") * 6)
PROMPT = "item {item}: " + FILLER
"""50 words of three letters: the fake provider counts a token a word, the engine estimates
one per four characters, and here the two agree (with longer words the engine would
over-estimate and pace below the limit)."""
COST = len(PROMPT.format(item=0).split()) + MAX_TOKENS
"""Tokens a call is charged: its prompt's words plus max_tokens."""
WINDOW = 5.0
"""Seconds per window of the 429 share over time."""


@dataclass(frozen=True)
class Subject:
    """One way the engine runs the fan-out."""

    label: str
    workers: int
    pacing: bool
    attempts: int | None = None
    """Attempts per call; None keeps the default retry policy's 5."""
    llm_queue: bool = False
    """Model calls on a task queue of their own (TEMPORAL_LLM_TASK_QUEUE). On the run's own
    queue the server hands the calls a workflow task schedules to the worker that completed
    it (eager dispatch), so one of two workers makes most of them; on a queue of their own
    they are matched to both, and the workers really share the limit."""
    configured: bool = False
    """The limit given to each worker (LLM_RATE_LIMITS) instead of learned from headers."""
    remembered: bool = False
    """The workers start from the limit a worker before them learned (its pacing memory
    file); otherwise each subject's workers remember nothing."""


SUBJECTS = (
    Subject("engine, paced, 1 worker", 1, pacing=True),
    Subject("engine, paced, 2 workers", 2, pacing=True),
    Subject("engine, paced, 1 worker, LLM queue", 1, pacing=True, llm_queue=True),
    Subject("engine, paced, 2 workers, LLM queue", 2, pacing=True, llm_queue=True),
    Subject("engine, configured, 1 worker", 1, pacing=True, configured=True),
    Subject("engine, configured, 2 workers, LLM queue", 2, True, llm_queue=True, configured=True),
    Subject("engine, remembered, 2 workers, LLM queue", 2, True, llm_queue=True, remembered=True),
    Subject("engine, not paced, 1 worker", 1, pacing=False),
    Subject("engine, not paced, 2 workers", 2, pacing=False),
    Subject("engine, not paced, 1 worker, 50 attempts", 1, pacing=False, attempts=50),
)
"""Learned limits are the question; configured ones (LLM_RATE_LIMITS) show what learning
costs, and the last what Temporal's retries alone do when they are allowed to finish."""


def minimum_seconds() -> float:
    """The work divided by the limit, less the one second's worth a full bucket lets through
    at once, plus one call's latency: max(N/r, N*c/t) - 1 + latency, with r and t the
    requests and tokens allowed per second and c a call's tokens."""
    requests = ITEMS / (REQUESTS_PER_MINUTE / 60)
    tokens = ITEMS * COST / (TOKENS_PER_MINUTE / 60)
    return max(requests, tokens) - 1 + LATENCY


def definition(attempts: int | None = None) -> str:
    """The fan-out; `attempts` overrides the default retry policy's 5 attempts."""
    prompt = PROMPT.format(item="{{ item }}")
    retry = f", retry: {{max_attempts: {attempts}}}" if attempts else ""
    return f"""
workflow:
  name: RateLimitedFanout
  steps:
    - {{id: each, type: llm_call, model: gpt-4o-mini, max_tokens: {MAX_TOKENS},
       for_each: "{{{{ range({ITEMS}) | list }}}}", concurrency: {CONCURRENCY}{retry},
       prompt: "{prompt}"}}
"""


@asynccontextmanager
async def counted(provider: Provider) -> AsyncIterator[dict[str, Any]]:
    """The provider's counters from zero over a subject's run, read every second meanwhile
    (429s over time): yields a dict that holds `samples` during and `counts` after."""
    provider.control(clear=True)
    tally: dict[str, Any] = {"started": time.perf_counter(), "samples": []}

    async def sample() -> None:
        while True:
            counts = provider.control()
            tally["samples"].append(
                {"t": time.perf_counter() - tally["started"],
                 "served": sum(counts["served"].values()),
                 "refused": sum(counts["refused"].values())}
            )  # fmt: skip
            await asyncio.sleep(1.0)

    sampling = asyncio.create_task(sample())
    try:
        yield tally
    finally:
        sampling.cancel()
        tally["counts"] = provider.control()


def windows(points: list[dict[str, float]], every: float) -> list[dict[str, float]]:
    """Served and refused per `every` seconds, from cumulative counts (the last one closes
    the last window)."""
    out, edge, last = [], every, {"t": 0.0, "served": 0, "refused": 0}
    for point in points:
        if point["t"] >= edge or point is points[-1]:
            out.append({"until_s": round(point["t"], 2), "served": point["served"] - last["served"],
                        "refused": point["refused"] - last["refused"]})  # fmt: skip
            last, edge = point, edge + every
    return out


def summary(wall: float, tally: dict[str, Any], failed: int) -> dict[str, Any]:
    counts = tally["counts"]
    served, refused = sum(counts["served"].values()), sum(counts["refused"].values())
    points = [*tally["samples"], {"t": wall, "served": served, "refused": refused}]
    return {
        "wall_s": wall,
        "x_minimum": wall / minimum_seconds(),
        "served": served,
        "refused": refused,
        "refused_share": refused / max(1, served + refused),
        "tokens_refused": sum(counts["tokens_refused"].values()),
        "items_failed": failed,
        "windows": windows(points, WINDOW),
        "per_second": windows(points, 1.0),
    }


def calls_by_worker(log: Path, started_at: float) -> dict[str, Any]:
    """One worker's calls from its JSON log: answered and refused per WINDOW seconds (by
    when the call ended), and when each refusal came."""
    ended: dict[str, list[float]] = {"ok": [], "refused": [], "other": []}
    for line in log.read_text().splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if entry.get("event") not in ("llm call", "llm call failed"):
            continue
        kind = "ok" if entry["event"] == "llm call" else "other"
        if "HTTP 429" in entry.get("error", ""):
            kind = "refused"
        ended[kind].append(datetime.fromisoformat(entry["timestamp"]).timestamp() - started_at)

    def per_window(times: list[float]) -> list[int]:
        counts = [0] * (int(max(times, default=0) // WINDOW) + 1)
        for at in times:
            counts[int(at // WINDOW)] += 1
        return counts

    return {
        "ok": len(ended["ok"]),
        "refused": len(ended["refused"]),
        "other_failures": len(ended["other"]),
        "ok_per_window": per_window(ended["ok"]),
        "refused_per_window": per_window(ended["refused"]),
        "refused_at_s": [round(at, 2) for at in sorted(ended["refused"])],
    }


@asynccontextmanager
async def workers(
    address: str, queue: str, openai_url: str, count: int, env: dict[str, str], folder: Path
) -> AsyncIterator[list[Path]]:
    """`count` worker processes on `queue` with `env` added, ready (they said "worker
    started"); yields their log files."""
    logs = [folder / f"worker-{n}.log" for n in range(count)]
    files = [log.open("wb") for log in logs]
    processes = [worker_process(address, queue, openai_url, f, **env) for f in files]
    try:
        while not all(b'"worker started"' in log.read_bytes() for log in logs):
            for process, log in zip(processes, logs, strict=True):
                if process.poll() is not None:  # it failed to start: say why, don't wait
                    last = log.read_text().strip().splitlines()[-1:]
                    raise RuntimeError(f"a worker exited on start: {' '.join(last)}")
            await asyncio.sleep(0.1)
        yield logs
    finally:
        for process in processes:
            process.terminate()
            process.wait()
        for f in files:
            f.close()


async def engine(
    server: DevServer, client: Client, provider: Provider, subject: Subject
) -> dict[str, Any]:
    """One run of the fan-out on fresh worker processes."""
    queue = f"s6-{uuid.uuid4()}"
    llm_queue = f"{queue}-llm" if subject.llm_queue else None
    env = {"LLM_PACING": "on" if subject.pacing else "off"}
    env |= {"TEMPORAL_LLM_TASK_QUEUE": llm_queue} if llm_queue else {}
    if subject.configured:
        rates = f"{REQUESTS_PER_MINUTE} rpm, {TOKENS_PER_MINUTE} tpm"
        env["LLM_RATE_LIMITS"] = f"openai/gpt-4o-mini: {rates}"
    run_input = RunInput(
        definition=load_definition(definition(subject.attempts), "s6.yaml"),
        llm_task_queue=llm_queue,
    )
    with tempfile.TemporaryDirectory() as folder:
        memory = Path(folder) / "pacing.json"
        env["LLM_PACING_MEMORY"] = str(memory)
        if subject.remembered:
            where = endpoint_key(Endpoint(api_key="k", base_url=provider.openai_url))
            limit = Limit(REQUESTS_PER_MINUTE, TOKENS_PER_MINUTE)
            PacingMemory(memory).remember(f"openai/gpt-4o-mini@{where}", limit)
        async with workers(server.address, queue, provider.openai_url, subject.workers,
                           env, Path(folder)) as logs:  # fmt: skip
            started_at = time.time()
            async with counted(provider) as tally:
                handle = await client.start_workflow(
                    YamlWorkflow.run, run_input, id=f"s6-{uuid.uuid4()}", task_queue=queue
                )
                outcome = "completed"
                try:
                    await asyncio.wait_for(handle.result(), timeout=10 * minimum_seconds())
                except WorkflowFailureError as exc:
                    outcome = f"failed: {exc.cause}"
                except TimeoutError:  # e.g. every call failing and retried: stop the run
                    outcome = "failed: timed out"
                    await handle.terminate("S6 timed out")
                wall = time.perf_counter() - tally["started"]
        served = sum(tally["counts"]["served"].values())
        result = summary(wall, tally, max(0, ITEMS - served))  # a failed run stops them all
        result["outcome"] = outcome
        result["workers"] = [calls_by_worker(log, started_at) for log in logs]
    return result


async def langgraph(provider: Provider) -> dict[str, Any] | None:
    """The peer, run by its own Python; None when its virtualenv is missing."""
    python = PEER_VENV / "bin" / "python"
    if not python.exists():
        return None
    script = Path(__file__).parent / "peers" / "langgraph_rate_limited.py"
    async with counted(provider) as tally:
        peer = await asyncio.create_subprocess_exec(
            str(python), str(script), provider.openai_url, str(ITEMS), str(CONCURRENCY),
            str(MAX_TOKENS), PROMPT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        out, err = await peer.communicate()
    if peer.returncode != 0:
        return {"error": err.decode().strip().splitlines()[-1:]}
    data = json.loads(out)
    result = summary(data["wall_s"], tally, data["failed"])
    result |= {"first_failure_s": data["first_failure_s"], "failures": data["failures"]}
    return result


async def measure(port: int, peer: bool) -> dict[str, Any]:
    """Every subject on one tuned dev server and one limited fake provider; a subject starts
    with the provider's buckets full and its counters at zero."""
    server, provider = DevServer(tuned=True, port=port), Provider(latency=LATENCY)
    limit = {"requests_per_minute": REQUESTS_PER_MINUTE, "tokens_per_minute": TOKENS_PER_MINUTE}
    provider.control(limits={"*": limit})
    out: dict[str, Any] = {
        "items": ITEMS, "concurrency": CONCURRENCY, "latency_s": LATENCY, "cost_tokens": COST,
        "requests_per_minute": REQUESTS_PER_MINUTE, "tokens_per_minute": TOKENS_PER_MINUTE,
        "minimum_s": minimum_seconds(), "subjects": {},
    }  # fmt: skip
    try:
        client = await server.start()
        for subject in SUBJECTS:
            out["subjects"][subject.label] = await engine(server, client, provider, subject)
            await asyncio.sleep(1.0)  # let a failed run's last calls land before the next
        if peer:
            out["subjects"]["LangGraph, SDK retries"] = await langgraph(provider)
    finally:
        server.stop()
        provider.close()
    return out
