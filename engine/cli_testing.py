"""`starter.py test` and `starter.py record`: the command line of the test files
(engine/testing/command.py, recorder.py), registered from starter.py with one line."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.settings import Settings


def _note(message: str) -> None:
    print(message, file=sys.stderr)


async def cmd_test(args: argparse.Namespace, settings: Settings) -> int:
    from engine.testing.command import test

    return await test(
        args.paths, settings, pattern=args.k, junit=args.junit, as_json=args.json, note=_note
    )


async def cmd_record(args: argparse.Namespace, settings: Settings) -> int:
    from engine.client import EngineClient
    from engine.testing.recorder import record_command

    return await record_command(await EngineClient.connect(settings, note=_note), args, _note)


def add_testing_commands(commands: Any) -> None:
    """`test` and `record`, on starter.py's subparsers."""
    tests = commands.add_parser("test", help="run *.test.yaml files (scripted replies)")
    tests.set_defaults(handler=cmd_test)
    tests.add_argument("paths", nargs="+", help="test files, or directories to search")
    tests.add_argument("-k", metavar="PATTERN", help="only cases whose FILE::NAME contains it")
    tests.add_argument("--junit", metavar="FILE", help="also write JUnit XML here")
    tests.add_argument("--json", action="store_true", help="machine-readable output")
    rec = commands.add_parser("record", help="write an ended run as a test case (*.test.yaml)")
    rec.set_defaults(handler=cmd_record)
    rec.add_argument("id")
    rec.add_argument("-o", "--output", required=True, help="the test file (new, or added to)")
    rec.add_argument("--definition", help="the definition it tests (default: found by name)")
