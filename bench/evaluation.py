"""S9, evaluation on a dataset: a two-call definition evaluated on N rows (`starter.py eval`'s
machinery: one evaluation run, shards of child runs, one child run per row) against the fake
provider limited to 600 requests and 60,000 tokens a minute. Is the wall time near the
rate-limit minimum, with few 429s? What does the evaluation cost per row beside the same
calls run as a plain `for_each` of `workflow` steps, and how much memory does a worker need
for 1,000 and 10,000 rows?

    python bench/evaluation.py [--rows 1000] [--overhead-rows 300] [--memory-rows 1000,10000]

Writes bench/results/results-S9.json; `python bench/run.py --only S9` runs it too."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from temporalio.client import Client

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.rate_limited import counted  # noqa: E402
from bench.stack import DevServer, Provider, worker_process  # noqa: E402
from engine.client import EngineClient  # noqa: E402
from engine.connection import connect  # noqa: E402
from engine.evals.command import EvalRequest, evaluate  # noqa: E402
from engine.settings import Settings  # noqa: E402
from workflows.contracts import LoadedDefinition, RunInput  # noqa: E402
from workflows.interpreter import YamlWorkflow  # noqa: E402
from workflows.validation import load_definition  # noqa: E402

REQUESTS_PER_MINUTE, TOKENS_PER_MINUTE = 600, 60_000
LATENCY, MAX_TOKENS = 0.05, 20
CONCURRENCY = 10
"""Rows at once (`--concurrency`): ten lanes cannot keep 600 requests a minute busy when a
row's own run costs more than a second of workflow tasks (bench/RESULTS.md, S9)."""
TEXT = "item {n}: the red fox ran far"
DEFINITION = f"""
workflow:
  name: TwoCalls
  variables: {{text: {{type: string, required: true}}}}
  defaults: {{model: gpt-4o-mini, max_tokens: {MAX_TOKENS}, timeout: "30s"}}
  steps:
    - {{id: first, type: llm_call, prompt: "{{{{ text }}}}", outputs: [a]}}
    - {{id: second, type: llm_call, prompt: "again {{{{ text }}}}", outputs: [b]}}
"""
EVALUATORS = """
evaluators:
  - {name: answered, type: contains, output: b, expected: "ok"}
"""


def minimum_seconds(rows: int) -> float:
    """Two calls a row: max(N/r, N*c/t) less the one second a full bucket lets through, plus
    one call's latency (as S6)."""
    calls = 2 * rows
    cost = len(TEXT.format(n=0).split()) + 1 + MAX_TOKENS  # "again" on the second: at most
    return (
        max(calls / (REQUESTS_PER_MINUTE / 60), calls * cost / (TOKENS_PER_MINUTE / 60))
        - 1
        + LATENCY
    )


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def run_evaluation(
    client: Client,
    address: str,
    queue: str,
    folder: Path,
    rows: int,
    concurrency: int,
    cache: bool = False,
    text: str = TEXT,
) -> dict[str, Any]:
    data = folder / f"rows-{rows}-{abs(hash(text))}.jsonl"
    data.write_text("".join(json.dumps({"text": text.format(n=n)}) + "\n" for n in range(rows)))
    (folder / "two_calls.yaml").write_text(DEFINITION)
    (folder / "evaluators.yaml").write_text(EVALUATORS)
    settings = dataclasses.replace(Settings.from_env({}), address=address, task_queue=queue)
    # The project's converter: a large status (10,000 rows) comes back from external storage.
    engine = EngineClient(await connect(settings), settings, start_worker=False)
    request = EvalRequest(
        str(folder / "two_calls.yaml"), str(data), str(folder / "evaluators.yaml"),
        concurrency=concurrency, cache=cache,
    )  # fmt: skip
    began = time.perf_counter()
    report = await evaluate(engine, request, note=lambda line: None)
    wall = time.perf_counter() - began
    base = report["variants"]["base"]
    return {
        "wall_s": wall,
        "rows_failed": base["rows_failed"],
        "answered": report["metrics"]["answered"]["mean"],
        "latency_ms": base["latency_ms"],
        "cost_usd": report["usage"]["cost_usd"],
        "reused": report["cache"],
    }


async def run_for_each(client: Client, queue: str, rows: int) -> float:
    """The same child runs as a plain `for_each` of a `workflow` step, no evaluation."""
    parent = load_definition(
        f"""
workflow:
  name: PlainForEach
  steps:
    - {{id: each, type: workflow, definition: two_calls.yaml,
       for_each: "{{{{ range({rows}) | list }}}}", concurrency: {CONCURRENCY},
       variables: {{text: "item {{{{ item }}}}: the red fox ran far"}}}}
""",
        "plain.yaml",
    )
    loaded = LoadedDefinition(
        definition=parent,
        children={"two_calls.yaml": load_definition(DEFINITION, "two_calls.yaml")},
    )
    began = time.perf_counter()
    await client.execute_workflow(
        YamlWorkflow.run,
        RunInput(definition=loaded.definition, children=loaded.children),
        id=f"s9-plain-{uuid.uuid4()}",
        task_queue=queue,
    )
    return time.perf_counter() - began


async def subject(
    server: DevServer, client: Client, provider: Provider, folder: Path, **env: str
) -> tuple[str, Any]:
    queue = f"s9-{uuid.uuid4()}"
    log = (folder / f"{queue}.log").open("wb")
    process = worker_process(server.address, queue, provider.openai_url, log, **env)
    while b'"worker started"' not in (folder / f"{queue}.log").read_bytes():
        await asyncio.sleep(0.1)
    return queue, process


async def measure(
    rows: int,
    overhead_rows: int,
    memory_rows: list[int],
    port: int,
    concurrency: int = CONCURRENCY,
    save: Callable[[dict[str, Any]], None] = lambda out: None,
    reuse_rows: int = 0,
) -> dict[str, Any]:
    server, provider = DevServer(tuned=True, port=port), Provider(latency=LATENCY)
    out: dict[str, Any] = {
        "rows": rows, "concurrency": concurrency, "latency_s": LATENCY,
        "requests_per_minute": REQUESTS_PER_MINUTE, "tokens_per_minute": TOKENS_PER_MINUTE,
        "minimum_s": minimum_seconds(rows),
    }  # fmt: skip
    try:
        client = await server.start()
        with tempfile.TemporaryDirectory() as name:
            folder = Path(name)
            if rows:
                limit = {"requests_per_minute": REQUESTS_PER_MINUTE,
                         "tokens_per_minute": TOKENS_PER_MINUTE}  # fmt: skip
                provider.control(limits={"*": limit})
                rates = f"openai/gpt-4o-mini: {REQUESTS_PER_MINUTE} rpm, {TOKENS_PER_MINUTE} tpm"
                queue, process = await subject(server, client, provider, folder,
                                               LLM_RATE_LIMITS=rates)  # fmt: skip
                try:
                    async with counted(provider) as tally:
                        result = await run_evaluation(
                            client, server.address, queue, folder, rows, concurrency
                        )
                    counts = tally["counts"]
                    served = sum(counts["served"].values())
                    refused = sum(counts["refused"].values())
                    result |= {
                        "x_minimum": result["wall_s"] / out["minimum_s"],
                        "served": served, "refused": refused,
                        "refused_share": refused / max(1, served + refused),
                        "worker_peak_rss_mib": peak_rss_mib(process.pid),
                    }  # fmt: skip
                    out["rate_limited"] = result
                    save(out)
                finally:
                    process.terminate()
                    process.wait()
                provider.control(limits={})
            provider.control(latency=0.0)
            if overhead_rows:
                queue, process = await subject(server, client, provider, folder)
                try:
                    plain = await run_for_each(client, queue, overhead_rows)
                    evaluated = await run_evaluation(
                        client, server.address, queue, folder, overhead_rows, CONCURRENCY
                    )
                    out["overhead"] = {
                        "rows": overhead_rows,
                        "plain_for_each_ms_per_row": 1000 * plain / overhead_rows,
                        "evaluation_ms_per_row": 1000 * evaluated["wall_s"] / overhead_rows,
                        "ratio": evaluated["wall_s"] / plain,
                    }
                    save(out)
                finally:
                    process.terminate()
                    process.wait()
            if reuse_rows:
                out["reuse"] = await measure_reuse(client, server, provider, folder, reuse_rows)
                save(out)
            out["memory"] = {}
            for count in memory_rows:
                queue, process = await subject(server, client, provider, folder)
                try:
                    result = await run_evaluation(
                        client, server.address, queue, folder, count, concurrency
                    )
                    result["worker_peak_rss_mib"] = peak_rss_mib(process.pid)
                    out["memory"][str(count)] = result
                    save(out)
                finally:
                    process.terminate()
                    process.wait()
    finally:
        server.stop()
        provider.close()
    return out


async def measure_reuse(
    client: Client, server: DevServer, provider: Provider, folder: Path, rows: int
) -> dict[str, Any]:
    """The same evaluation twice (no limit, 0 ms calls): the second reuses every row."""
    queue, process = await subject(server, client, provider, folder)
    text = "reuse " + TEXT
    found: dict[str, Any] = {"rows": rows}
    try:
        for name in ("first", "again"):
            async with counted(provider) as tally:
                result = await run_evaluation(
                    client, server.address, queue, folder, rows, CONCURRENCY, True, text
                )
            result["calls"] = sum(tally["counts"]["served"].values())
            found[name] = result
    finally:
        process.terminate()
        process.wait()
    return found


def table(r: dict[str, Any]) -> str:
    """S9 as a Markdown table (bench/RESULTS.md)."""
    lines = ["| S9 | measured | target |", "| --- | --- | --- |"]
    limited = r.get("rate_limited")
    if limited:
        lines.append(
            f"| {r['rows']} rows x 2 calls at 600 rpm / 60k tpm | {limited['wall_s']:.1f} s "
            f"({limited['x_minimum']:.2f}x the {r['minimum_s']:.1f} s minimum), "
            f"{100 * limited['refused_share']:.2f}% 429 | ≤ 1.15x, ≤ 1% 429 |"
        )
    overhead = r.get("overhead")
    if overhead:
        lines.append(
            f"| per row beside a plain for_each ({overhead['rows']} rows, no limit) | "
            f"{overhead['evaluation_ms_per_row']:.1f} ms vs "
            f"{overhead['plain_for_each_ms_per_row']:.1f} ms ({overhead['ratio']:.2f}x) | ≤ 1.2x |"
        )
    reuse = r.get("reuse")
    if reuse:
        first, again = reuse["first"], reuse["again"]
        lines.append(
            f"| the same {reuse['rows']} rows evaluated again (no limit) | {again['wall_s']:.1f} s "
            f"and {again['calls']} calls (first: {first['wall_s']:.1f} s, {first['calls']} calls); "
            f"{again['reused']['rows']} rows reused, ${again['reused']['saved_usd']:.4f} saved | |"
        )
    for rows, found in r.get("memory", {}).items():
        lines.append(
            f"| worker peak RSS, {rows} rows (no limit) | {found['worker_peak_rss_mib']:.0f} MiB "
            f"({found['wall_s']:.0f} s) | |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1000, help="rate-limited rows (0: skip)")
    parser.add_argument("--overhead-rows", type=int, default=300)
    parser.add_argument("--memory-rows", default="1000,10000")
    parser.add_argument("--port", type=int, default=17653)
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY)
    parser.add_argument("--reuse-rows", type=int, default=0, help="evaluate N rows twice")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = parser.parse_args()
    memory = [int(n) for n in args.memory_rows.split(",") if n]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    def save(results: dict[str, Any]) -> None:
        results["cores"] = os.cpu_count() or 1
        (out / "results-S9.json").write_text(json.dumps(results, indent=2) + "\n")

    results = asyncio.run(
        measure(
            args.rows,
            args.overhead_rows,
            memory,
            args.port,
            args.concurrency,
            save,
            args.reuse_rows,
        )  # fmt: skip
    )
    save(results)
    print(table(results))
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
