"""S2 on its own, engine and plain Temporal side by side: a 100-way fan-out of 200 ms calls on
a worker just started (its first fan-out: what a cold worker costs, pacing included), then
the same on that worker warm. Rounds alternate the subjects on one tuned dev server, so
load from other processes on the machine falls on both alike.

    python bench/run.py --only S2 [--rounds 5]
"""

from __future__ import annotations

import statistics
import tempfile
import uuid
from pathlib import Path
from typing import Any

from activities.pacing_memory import PacingMemory
from activities.rate_limits import Pacer
from bench.baselines import PlainTemporal
from bench.stack import DevServer, Provider

ITEMS, LATENCY, WARM_RUNS = 100, 0.2, 2


async def measure(port: int, rounds: int, remember: bool = True) -> dict[str, Any]:
    """Per subject: every cold and warm wall time (ms) and their medians. The engine's
    workers share one pacing memory file, as workers restarted on one machine do: the
    first worker ever to call the fake learns that it sends no limit, later ones start
    from that (its first fan-out is reported apart, as `first_ever_ms`)."""
    from bench.run import Engine, timed  # run.py imports this module

    server, slow = DevServer(tuned=True, port=port), Provider(latency=LATENCY)
    walls: dict[str, dict[str, list[float]]] = {
        name: {"cold": [], "warm": []} for name in ("engine", "plain_temporal")
    }
    first_ever: float | None = None
    out_at_once: dict[str, list[int]] = {name: [] for name in walls}
    try:
        client = await server.start()
        with tempfile.TemporaryDirectory() as folder:
            memory = PacingMemory(Path(folder) / "pacing.json" if remember else None)
            warm_up = PlainTemporal(client, f"s2-{uuid.uuid4()}")
            async with warm_up.worker(slow.openai_url):  # the server's first runs are slow
                await timed(warm_up.start, "fanout", ITEMS)
            for _ in range(rounds):
                for name in walls:
                    queue = f"s2-{uuid.uuid4()}"
                    runner: Engine | PlainTemporal
                    if name == "engine":
                        runner = Engine(client, queue, Pacer(memory=memory))
                    else:
                        runner = PlainTemporal(client, queue)
                    async with runner.worker(slow.openai_url):
                        slow.control(clear=True)
                        cold = await timed(runner.start, "fanout", ITEMS)
                        out_at_once[name].append(before_first_reply(slow))
                        if name == "engine" and first_ever is None:
                            first_ever = cold
                        else:
                            walls[name]["cold"].append(cold)
                        for _ in range(WARM_RUNS):
                            walls[name]["warm"].append(await timed(runner.start, "fanout", ITEMS))
    finally:
        server.stop()
        slow.close()
    out: dict[str, Any] = {
        "items": ITEMS, "latency_ms": LATENCY * 1000, "rounds": rounds, "remember": remember
    }  # fmt: skip
    for name, runs in walls.items():
        out[name] = {
            "cold_ms": runs["cold"],
            "warm_ms": runs["warm"],
            "cold_median_ms": statistics.median(runs["cold"]),
            "warm_median_ms": statistics.median(runs["warm"]),
        }
    out["engine"]["first_ever_ms"] = first_ever
    for name, counts in out_at_once.items():
        out[name]["cold_out_before_first_reply"] = counts
    for kind in ("cold", "warm"):
        plain = out["plain_temporal"][f"{kind}_median_ms"]
        out[f"{kind}_x_plain"] = out["engine"][f"{kind}_median_ms"] / plain
        # Each engine run against plain Temporal's of the same round (load on a shared
        # machine moves both): the median of these ratios.
        engine_runs, plain_runs = walls["engine"][kind], walls["plain_temporal"][kind]
        if kind == "cold":
            plain_runs = plain_runs[1:]  # round 1's engine run is the first ever, apart
        pairs = [a / b for a, b in zip(engine_runs, plain_runs, strict=False)]
        out[f"{kind}_paired_x_plain"] = statistics.median(pairs)
    return out


def before_first_reply(provider: Provider) -> int:
    """Calls the provider had received while its first was still being answered: how much
    of the fan-out went out at once (pacing that knows nothing lets 4 out, then waits)."""
    times = [request["received_at"] for request in provider.control()["requests"]]
    return sum(at < min(times) + LATENCY for at in times)


def table(s2: dict[str, Any]) -> str:
    engine, plain = s2["engine"], s2["plain_temporal"]
    lines = [
        f"S2 alone: {s2['items']}-way fan-out, {s2['latency_ms']:.0f} ms calls, "
        f"{s2['rounds']} rounds (medians)"
        + ("" if s2["remember"] else "; engine workers remembering nothing (--forget)"),
        "",
        "| worker | engine | plain Temporal | engine / plain | same round, engine / plain |",
        "| --- | --- | --- | --- | --- |",
        f"| just started (its first fan-out) | {engine['cold_median_ms']:.0f} ms "
        f"| {plain['cold_median_ms']:.0f} ms | {s2['cold_x_plain']:.2f}x "
        f"| {s2['cold_paired_x_plain']:.2f}x |",
        f"| warm | {engine['warm_median_ms']:.0f} ms | {plain['warm_median_ms']:.0f} ms "
        f"| {s2['warm_x_plain']:.2f}x | {s2['warm_paired_x_plain']:.2f}x |",
        f"| the engine's first worker ever (nothing remembered) | "
        f"{engine['first_ever_ms']:.0f} ms | | | |",
        "",
        "Calls out before the first was answered, on each just-started worker (round by "
        f"round): engine {engine['cold_out_before_first_reply']}, plain Temporal "
        f"{plain['cold_out_before_first_reply']}.",
    ]
    return "\n".join(lines) + "\n"
