"""S2 on its own, side by side: a 100-way fan-out of 200 ms calls on a worker just started
(its first fan-out: what a cold worker costs, pacing included), then the same on that
worker warm; for the engine with pacing, the engine with pacing off (LLM_PACING=off: what
pacing itself costs) and plain Temporal. Rounds alternate the subjects on one tuned dev
server, so load from other processes on the machine falls on all of them alike.

    python bench/run.py --only S2 [--rounds 5] [--forget]
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
from bench.engine_subject import Engine, timed
from bench.stack import DevServer, Provider

ITEMS, LATENCY, WARM_RUNS = 100, 0.2, 2
SUBJECTS = ("engine", "engine_unpaced", "plain_temporal")
LABELS = {"engine": "engine", "engine_unpaced": "engine, pacing off",
          "plain_temporal": "plain Temporal"}  # fmt: skip


async def measure(port: int, rounds: int, remember: bool = True) -> dict[str, Any]:
    """Per subject: every cold and warm wall time (ms), their medians, and how many calls
    each cold fan-out had out before the first was answered. The paced engine's workers
    share one pacing memory file, as workers restarted on one machine do: the first
    worker ever to call the fake learns that it sends no limit and later ones start from
    that; its first fan-out is reported apart (`first_ever_ms`). `remember=False`: every
    paced worker starts knowing nothing, as before the memory."""

    server, slow = DevServer(tuned=True, port=port), Provider(latency=LATENCY)
    walls: dict[str, dict[str, list[float]]] = {name: {"cold": [], "warm": []} for name in SUBJECTS}
    out_at_once: dict[str, list[int]] = {name: [] for name in SUBJECTS}
    first_ever: float | None = None
    try:
        client = await server.start()
        with tempfile.TemporaryDirectory() as folder:
            memory = PacingMemory(Path(folder) / "pacing.json" if remember else None)
            warm_up = PlainTemporal(client, f"s2-{uuid.uuid4()}")
            async with warm_up.worker(slow.openai_url):  # the server's first runs are slow
                await timed(warm_up.start, "fanout", ITEMS)
            for _ in range(rounds):
                for name in SUBJECTS:
                    queue = f"s2-{uuid.uuid4()}"
                    runner: Engine | PlainTemporal
                    if name == "plain_temporal":
                        runner = PlainTemporal(client, queue)
                    else:
                        paced = name == "engine"
                        runner = Engine(client, queue, Pacer(enabled=paced, memory=memory))
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
        "items": ITEMS, "latency_ms": LATENCY * 1000, "rounds": rounds, "remember": remember,
        "first_ever_ms": first_ever,
    }  # fmt: skip
    plain = walls["plain_temporal"]
    for name, runs in walls.items():
        one: dict[str, Any] = {"cold_ms": runs["cold"], "warm_ms": runs["warm"]}
        one["cold_out_before_first_reply"] = out_at_once[name]
        for kind in ("cold", "warm"):
            one[f"{kind}_median_ms"] = statistics.median(runs[kind])
            # Against plain Temporal's run of the same round (load on a shared machine
            # moves all subjects): the median of the ratios.
            base = plain[kind][1:] if kind == "cold" and name == "engine" else plain[kind]
            pairs = [a / b for a, b in zip(runs[kind], base, strict=False)]
            one[f"{kind}_x_plain"] = statistics.median(pairs)
        out[name] = one
    return out


def before_first_reply(provider: Provider) -> int:
    """Calls the provider had received while its first was still being answered: how much
    of the fan-out went out at once (pacing that knows nothing lets 4 out, then waits)."""
    times = [request["received_at"] for request in provider.control()["requests"]]
    return sum(at < min(times) + LATENCY for at in times)


def table(s2: dict[str, Any]) -> str:
    lines = [
        f"S2 alone: {s2['items']}-way fan-out, {s2['latency_ms']:.0f} ms calls, "
        f"{s2['rounds']} rounds (medians; x plain: the median of same-round ratios)"
        + ("" if s2["remember"] else "; paced workers remembering nothing (--forget)"),
        "",
        "| subject | just started (its first fan-out) | x plain | warm | x plain "
        "| calls out before the first reply, just started |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name in SUBJECTS:
        one = s2[name]
        lines.append(
            f"| {LABELS[name]} | {one['cold_median_ms']:.0f} ms | {one['cold_x_plain']:.2f}x "
            f"| {one['warm_median_ms']:.0f} ms | {one['warm_x_plain']:.2f}x "
            f"| {' '.join(map(str, one['cold_out_before_first_reply']))} |"
        )
    lines += ["", f"The paced engine's first worker ever: {s2['first_ever_ms']:.0f} ms."]
    return "\n".join(lines) + "\n"
