"""`starter.py import promptflow DIR`: its arguments and its handler (the work:
engine/promptflow/), registered from starter.py with one line."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.settings import Settings


def add_import_commands(commands: Any) -> None:
    """`import` and its one source so far, `promptflow`."""
    top = commands.add_parser("import", help="write a definition from another tool's files")
    sources = top.add_subparsers(dest="source", required=True)
    flow = sources.add_parser(
        "promptflow", help="a Prompt flow folder (flow.dag.yaml): a definition and its actions"
    )
    flow.add_argument(
        "folder", metavar="DIR", nargs="?", help="the flow's folder, with flow.dag.yaml"
    )
    flow.add_argument("-o", "--output", metavar="FILE", help="default: DIR/../<flow>.yaml")
    flow.add_argument(
        "--model-map", action="append", default=[], metavar="NAME=MODEL",
        help="the model for llm nodes whose deployment_name, model or connection is NAME",
    )  # fmt: skip
    flow.add_argument(
        "--partial", action="store_true",
        help="write the definition even if some nodes cannot be imported (those steps fail)",
    )  # fmt: skip
    run = flow.add_argument_group(
        "a run", "pf run create's own flags: import what the run needs and print the `eval` "
        "command that does the same (DIR is its --flow)",
    )  # fmt: skip
    run.add_argument("-f", "--file", metavar="RUN_YML", help="a run file (run.yml)")
    run.add_argument("--data", metavar="FILE", help="the lines the run runs on")
    run.add_argument("--column-mapping", nargs="+", action="extend", default=[],
                     metavar="INPUT=${data.COLUMN}")  # fmt: skip
    run.add_argument("--run", metavar="RUN", help="the run an evaluation run evaluates")
    run.add_argument("--variant", metavar="${NODE.VARIANT}", help="the variant that runs")
    run.add_argument("--name", metavar="NAME", help="the run's name: the evaluation's id")
    run.add_argument("--environment-variables", nargs="+", action="extend", default=[],
                     metavar="NAME=VALUE")  # fmt: skip
    flow.set_defaults(handler=cmd_import_promptflow)


RUN_FLAGS = ("file", "data", "column_mapping", "run", "variant", "name", "environment_variables")


def _run_argv(args: argparse.Namespace) -> list[str]:
    """The run flags given, as `pf run create` would read them (DIR as --flow)."""
    argv = ["--flow", args.folder] if args.folder else []
    for key in RUN_FLAGS:
        value = getattr(args, key)
        flag = "-f" if key == "file" else "--" + key.replace("_", "-")
        if isinstance(value, list) and value:
            argv += [flag, *value]
        elif isinstance(value, str):
            argv += [flag, value]
    return argv


async def cmd_import_promptflow(args: argparse.Namespace, settings: Settings) -> int:
    from engine.promptflow import ImportRequest, import_flow
    from workflows.errors import UsageError

    model_map: dict[str, str] = {}
    for text in args.model_map:
        name, equals, model = text.partition("=")
        if not equals or not name or not model:
            raise UsageError(f"--model-map {text!r}: write NAME=MODEL")
        model_map[name] = model
    if any(getattr(args, key) for key in RUN_FLAGS):
        return _import_run(args, model_map)
    if not args.folder:
        raise UsageError("import promptflow needs DIR, the flow's folder (or -f run.yml)")
    request = ImportRequest(
        Path(args.folder),
        args.folder,
        Path(args.output) if args.output else None,
        model_map,
        args.partial,
    )
    imported = import_flow(request)
    for line in imported.notes:
        print(f"note: {line}", file=sys.stderr)
    for problem in imported.limits:
        print(f"not imported: {problem}", file=sys.stderr)
    print(f"wrote {imported.definition}")
    if imported.module is not None:
        print(f"wrote {imported.module}")
    if imported.secrets:
        names = " ".join(f"SECRET_{name}" for name in imported.secrets)
        print(f"the worker needs these secrets (environment or SECRETS_FILE): {names}")
    for choice, path in imported.variants.items():
        print(f"wrote {path} (the variant {choice})")
    if imported.aggregate:
        print(
            f"its aggregation nodes run as `aggregate: {imported.aggregate}` in an evaluators "
            "file (import an evaluation run, -f eval_run.yml, to have it written)"
        )
    print(f"run it with:\n  {imported.command}")
    return 0


def _import_run(args: argparse.Namespace, model_map: dict[str, str]) -> int:
    from engine.promptflow.run_import import import_run
    from engine.promptflow.run_spec import parse_flags

    spec = parse_flags(_run_argv(args))
    output = Path(args.output) if args.output else None
    done = import_run(spec, output, model_map, args.partial)
    for imported in done.imported:
        for line in imported.notes:
            print(f"note: {line}", file=sys.stderr)
        for problem in imported.limits:
            print(f"not imported: {problem}", file=sys.stderr)
    for path in done.written:
        print(f"wrote {os.path.relpath(path)}")
    secrets = [name for imported in done.imported for name in imported.secrets]
    if secrets:
        names = " ".join(f"SECRET_{name}" for name in dict.fromkeys(secrets))
        print(f"the worker needs these secrets (environment or SECRETS_FILE): {names}")
    print(f"run it with:\n  {done.command.shell()}")
    if done.compare is not None:
        print(f"compare its variants side by side with:\n  {done.compare.shell()}")
    return 0
