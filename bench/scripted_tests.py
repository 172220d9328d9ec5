"""T1, tests with scripted replies: 50 cases over the examples in definitions/ (their own test
files' cases, repeated) on a tuned dev server that is already up, with a worker already
warm; through `starter.py test` as a user runs it (a new process: imports, connect, checks)
and through the runner in this process. Then each example's first case against a plain run
of the same definition (the offline mock provider, same variables), one at a time, rounds
alternating, so load from other processes falls on both alike.

    python bench/scripted_tests.py [--cases 50] [--rounds 3] [--port 7655]

Prints a markdown report (and the machine's load average, which other jobs share).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from bench.stack import DevServer, Provider, worker_process  # noqa: E402
from engine.client import EngineClient  # noqa: E402
from engine.connection import connect  # noqa: E402
from engine.settings import Settings  # noqa: E402
from engine.testing.command import load_all  # noqa: E402
from engine.testing.files import LoadedTests  # noqa: E402
from engine.testing.runner import run_all, run_case  # noqa: E402

PLAIN = ("hello_world", "ticket_triage", "summarize_translate", "label_tickets",
         "research_brief", "batch_greetings")  # fmt: skip
"""Examples a plain run finishes alone (no signal, no timer, no network): the per-case
comparison. The others' cases skip what a plain run waits for (a 1 s sleep, a human)."""


def write_cases(directory: Path, total: int) -> int:
    """Test files under `directory` holding `total` cases: the examples' cases in turn."""
    files = sorted((ROOT / "definitions").glob("*.test.yaml"))
    sources = {path: yaml.safe_load(path.read_text()) for path in files}
    pool = [(path, case) for path, data in sources.items() for case in data["cases"]]
    chosen: dict[Path, list[dict[str, Any]]] = {}
    for n in range(total):
        path, case = pool[n % len(pool)]
        chosen.setdefault(path, []).append({**case, "name": f"{case['name']} #{n}"})
    for path, cases in chosen.items():
        definition = str(ROOT / "definitions" / sources[path]["definition"])
        data = {**sources[path], "definition": definition, "cases": cases}
        (directory / path.name).write_text(yaml.safe_dump(data))
    return sum(len(cases) for cases in chosen.values())


async def main(total: int, rounds: int, port: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-t1-"))
    (work / "cases").mkdir()
    write_cases(work / "cases", total)
    server, provider = DevServer(tuned=True, port=port), Provider()
    await server.start()
    env = {
        "TEMPORAL_ADDRESS": server.address, "TEMPORAL_TASK_QUEUE": "bench-t1",
        "TEMPORAL_DEV_DIR": str(work / "dev"), "OUTPUT_DIR": str(work / "out"),
        "ACTION_MODULES": "activities.example_actions",
    }  # fmt: skip
    settings_env = {k: v for k, v in env.items() if not k.startswith("TEMPORAL_")}
    worker = worker_process(
        server.address, "bench-t1", provider.openai_url, subprocess.DEVNULL,
        TEMPORAL_DEV_DIR=env["TEMPORAL_DEV_DIR"], **settings_env,
    )  # fmt: skip
    try:
        settings = Settings.from_env(env)
        client = EngineClient(await connect(settings), settings, start_worker=False)
        files = load_all([str(work / "cases")], settings)
        load = [os.getloadavg()[0]]
        await _check(await run_all(client, files))  # warms the worker up; every case passes
        inside, cli = [], []
        for _ in range(rounds):
            began = time.monotonic()
            await _check(await run_all(client, files))
            inside.append(time.monotonic() - began)
            cli.append(_cli(work / "cases", env))
            load.append(os.getloadavg()[0])
        pairs = await _per_case(client, settings, rounds)
        load.append(os.getloadavg()[0])
    finally:
        worker.terminate()
        worker.wait()
        provider.close()
        server.stop()
    print(_report(total, inside, cli, pairs, load))


async def _check(results: list[Any]) -> None:
    failed = [f"{r.file}::{r.name}: {r.problem or r.mismatches}" for r in results if not r.passed]
    if failed:
        raise SystemExit("cases failed:\n" + "\n".join(failed))


def _cli(directory: Path, env: dict[str, str]) -> float:
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "starter.py", "test", str(directory)], cwd=ROOT,
        env={**os.environ, **env}, capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"starter.py test failed:\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}")
    return time.monotonic() - began


async def _per_case(
    client: EngineClient, settings: Settings, rounds: int
) -> dict[str, tuple[list[float], list[float]]]:
    """Per example: seconds of a plain offline run and of its first test case, alternating."""
    paths = [str(ROOT / "definitions" / f"{name}.test.yaml") for name in PLAIN]
    tests: list[LoadedTests] = load_all(paths, settings)
    pairs: dict[str, tuple[list[float], list[float]]] = {}
    for name, loaded in zip(PLAIN, tests, strict=True):
        case = loaded.cases[0]
        plain, scripted = [], []
        for _ in range(rounds + 1):  # the first round warms the definition up
            began = time.monotonic()
            started = await client.start(loaded.loaded, case.case.variables, offline=True)
            await client.result(started.execution_id)
            plain.append(time.monotonic() - began)
            began = time.monotonic()
            await _check([await run_case(client, loaded, case)])
            scripted.append(time.monotonic() - began)
        pairs[name] = (plain[1:], scripted[1:])
    return pairs


def _report(
    total: int,
    inside: list[float],
    cli: list[float],
    pairs: dict[str, tuple[list[float], list[float]]],
    load: list[float],
) -> str:
    ms = lambda seconds: f"{seconds * 1000:.0f}"  # noqa: E731
    lines = [
        f"{total} cases, {os.cpu_count()} cores, load average (1 min) "
        f"{min(load):.1f}-{max(load):.1f} during the run",
        "",
        "| how | seconds per round | median |",
        "| --- | --- | --- |",
        f"| `starter.py test DIR` (new process) | {', '.join(f'{s:.2f}' for s in cli)} | "
        f"{statistics.median(cli):.2f} |",
        f"| runner in process (`run_all`) | {', '.join(f'{s:.2f}' for s in inside)} | "
        f"{statistics.median(inside):.2f} |",
        "",
        "| example | plain run, ms (median) | its first case, ms (median) | ratio |",
        "| --- | --- | --- | --- |",
    ]
    ratios = []
    for name, (plain, scripted) in pairs.items():
        ratio = statistics.median(scripted) / statistics.median(plain)
        ratios.append(ratio)
        lines.append(
            f"| {name} | {ms(statistics.median(plain))} | {ms(statistics.median(scripted))} | "
            f"{ratio:.2f}x |"
        )
    lines.append(f"| median | | | {statistics.median(ratios):.2f}x |")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--port", type=int, default=7655)
    args = parser.parse_args()
    asyncio.run(main(args.cases, args.rounds, args.port))
