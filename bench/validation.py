"""V1: validating a long definition, as `POST /workflows/validate` does. Each step reads
the one before (so every step's order is checked). Needs no server.

A 16,000-step file took 45 s before validation was made linear (it is over the 12,000-step
limit: validation still checks all of it and reports that problem with its line)."""

from __future__ import annotations

import statistics
import time
from typing import Any

from workflows.errors import DefinitionError
from workflows.validation import load_definition

SIZES = (2_000, 12_000, 16_000)


def chain(steps: int) -> str:
    lines = ["workflow:", "  name: Long", "  steps:", "  - {id: s0, type: set, values: {v0: 0}}"]
    lines += [
        f"  - {{id: s{i}, type: set, values: {{v{i}: '{{{{v{i - 1}}}}}'}}}}"
        for i in range(1, steps)
    ]
    return "\n".join(lines) + "\n"


def _once(text: str) -> tuple[float, float, int]:
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        load_definition(text, "long.yaml")
        problems = 0
    except DefinitionError as exc:
        problems = len(exc.problems)
    return time.perf_counter() - wall, time.process_time() - cpu, problems


def measure(repeats: int = 3) -> dict[str, Any]:
    """Median wall and CPU seconds per size, and a reference: a 10-million-step Python loop
    on the same machine, so a busy machine's numbers can be read against an idle one's."""
    started = time.process_time()
    total = 0
    for i in range(10_000_000):
        total += i
    out: dict[str, Any] = {"reference_loop_cpu_s": time.process_time() - started}
    for steps in SIZES:
        text = chain(steps)
        runs = [_once(text) for _ in range(repeats)]
        out[str(steps)] = {
            "characters": len(text),
            "wall_s": statistics.median(run[0] for run in runs),
            "cpu_s": statistics.median(run[1] for run in runs),
            "problems": runs[0][2],
        }
    return out


def table(v1: dict[str, Any]) -> str:
    lines = [
        "| V1 validation | characters | wall | CPU | problems reported | target |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for steps in SIZES:
        row = v1[str(steps)]
        target = "well under 1 s" if steps == 16_000 else ""
        lines.append(
            f"| {steps:,} steps | {row['characters']:,} | {row['wall_s']:.2f} s "
            f"| {row['cpu_s']:.2f} s | {row['problems']} | {target} |"
        )
    lines.append(
        f"\nReference: a 10-million-step Python loop took "
        f"{v1['reference_loop_cpu_s']:.2f} s of CPU.\n"
    )
    return "\n".join(lines)
