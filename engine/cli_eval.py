"""`starter.py eval`: its arguments and its handler (the work: engine/evals/command.py)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from engine.settings import Settings


def add_eval(add: Callable[..., argparse.ArgumentParser]) -> None:
    """Register `eval` with starter.py's command table."""
    sub = add("eval", cmd_eval, "evaluate a definition on a dataset (rows run durably)")
    sub.add_argument("definition", nargs="?", help="the definition under test (YAML)")
    sub.add_argument("--data", metavar="FILE", help="the dataset: JSONL, CSV or a JSON list")
    sub.add_argument("--evaluators", metavar="FILE", help="a YAML list under `evaluators:`")
    sub.add_argument("--map", action="append", default=[], metavar="VARIABLE=COLUMN")
    sub.add_argument(
        "--variant", action="append", default=[],
        metavar="NAME=FILE|NAME:model=M|NAME:var.X=V", help="also run this variant on the rows",
    )  # fmt: skip
    sub.add_argument("--limit", type=int, help="only the first N rows (after --sample)")
    sub.add_argument("--sample", type=int, help="N rows drawn at random (--seed)")
    sub.add_argument("--seed", type=int, default=0)
    sub.add_argument("--concurrency", type=int, default=10, help="rows run at once")
    sub.add_argument("--budget", type=float, metavar="USD", help="the most it may spend")
    sub.add_argument("--id", help="the evaluation run's id")
    sub.add_argument(
        "--no-cache", action="store_true",
        help="run every row again, reusing nothing earlier evaluations finished",
    )  # fmt: skip
    sub.add_argument("--resume", metavar="ID", help="wait for (or re-read) an evaluation run")
    sub.add_argument(
        "--fail-under", action="append", default=[], metavar="EVALUATOR=VALUE",
        help="exit 1 when the evaluator's mean (or an aggregate metric) is below VALUE",
    )  # fmt: skip
    sub.add_argument("--json", action="store_true", help="print the report as JSON")
    sub.add_argument("--report", metavar="FILE", help="also write the report (.md, .html, .json)")
    sub.add_argument("--junit", metavar="FILE", help="also write JUnit XML (row x evaluator)")


async def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    from engine.cli_input import name_values
    from engine.client import EngineClient
    from engine.evals.command import EvalRequest, evaluate, prepare, resume
    from engine.evals.output import (
        gate_failures,
        gate_value,
        html_page,
        junit,
        markdown,
        terminal,
    )
    from engine.testing.report import write
    from workflows.errors import UsageError

    def note(message: str) -> None:
        print(message, file=sys.stderr)

    gates: dict[str, float] = {}
    for name, value in name_values(args.fail_under, "--fail-under", empty=False).items():
        try:
            gates[name] = float(value)
        except ValueError:
            raise UsageError(f"--fail-under {name}={value}: VALUE is a number") from None
    tty = sys.stderr.isatty()

    def progress(line: str) -> None:
        sys.stderr.write(f"\r{line}" if tty else f"{line}\n")
        sys.stderr.flush()

    if args.resume:
        client = await EngineClient.connect(settings, note=note)
        result: dict[str, Any] = await resume(client, args.resume, progress)
    else:
        if not args.definition or not args.data:
            raise UsageError("eval needs DEFINITION and --data FILE (or --resume ID)")
        maps = name_values(args.map, "--map", empty=False)
        request = EvalRequest(
            args.definition, args.data, args.evaluators, maps,
            args.variant, args.limit, args.sample, args.seed, args.concurrency, args.budget,
            args.id, cache=not args.no_cache,
        )  # fmt: skip
        prepared = prepare(request, settings)  # every problem before connecting or paying
        unknown = prepared.unknown_gate(gates)
        if unknown:
            raise UsageError(f"--fail-under {unknown}: no such evaluator")
        client = await EngineClient.connect(settings, note=note)
        result = await evaluate(client, request, note, progress, prepared)
    if tty:
        sys.stderr.write("\n")
    shown = json.dumps(result, indent=2, default=str) + "\n" if args.json else terminal(result)
    print(shown, end="")
    if args.report:
        kinds = {".md": markdown, ".html": html_page, ".htm": html_page}
        kind = next((f for s, f in kinds.items() if args.report.endswith(s)), None)
        text = kind(result) if kind else json.dumps(result, indent=2, default=str) + "\n"
        write(args.report, text)
        note(f"wrote {args.report}")
    if args.junit:
        write(args.junit, junit(result))
        note(f"wrote {args.junit}")
    missing = sorted(name for name in gates if not gate_value(result, name)[0])
    if missing:  # an aggregator's metrics are known only now: the report is out first
        raise UsageError(f"--fail-under {missing[0]}: no such evaluator or aggregate metric")
    failed = gate_failures(result, gates)
    for line in failed:
        note(f"gate failed: {line}")
    return 1 if failed else 0
