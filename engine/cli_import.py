"""`starter.py import promptflow DIR`: its arguments and its handler (the work:
engine/promptflow/), registered from starter.py with one line."""

from __future__ import annotations

import argparse
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
    flow.add_argument("folder", metavar="DIR", help="the flow's folder, with flow.dag.yaml")
    flow.add_argument("-o", "--output", metavar="FILE", help="default: DIR/../<flow>.yaml")
    flow.add_argument(
        "--model-map", action="append", default=[], metavar="NAME=MODEL",
        help="the model for llm nodes whose deployment_name, model or connection is NAME",
    )  # fmt: skip
    flow.add_argument(
        "--partial", action="store_true",
        help="write the definition even if some nodes cannot be imported (those steps fail)",
    )  # fmt: skip
    flow.set_defaults(handler=cmd_import_promptflow)


async def cmd_import_promptflow(args: argparse.Namespace, settings: Settings) -> int:
    from engine.promptflow import ImportRequest, import_flow
    from workflows.errors import UsageError

    model_map: dict[str, str] = {}
    for text in args.model_map:
        name, equals, model = text.partition("=")
        if not equals or not name or not model:
            raise UsageError(f"--model-map {text!r}: write NAME=MODEL")
        model_map[name] = model
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
    print(f"run it with:\n  {imported.command}")
    return 0
