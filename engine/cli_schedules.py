"""`starter.py schedule ...`: the command line of engine/schedules.py (create, list, describe,
pause, unpause, trigger, delete), registered from starter.py with one line."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any

from engine.cli_output import as_json

if TYPE_CHECKING:
    from engine.schedules import ScheduleView
    from engine.settings import Settings


def _note(message: str) -> None:
    print(message, file=sys.stderr)


async def _schedules(settings: Settings) -> Any:
    from engine.client import EngineClient

    return (await EngineClient.connect(settings, note=_note)).schedules


async def cmd_create(args: argparse.Namespace, settings: Settings) -> int:
    from engine.cli_input import run_input

    loaded, variables, _ = run_input(args.file, args.var, None, settings)
    schedules = await _schedules(settings)
    view = await schedules.create(
        args.name, loaded, variables, cron=args.cron, every=args.every, overlap=args.overlap,
        catchup_window=args.catchup_window, offline=args.offline, paused=args.paused,
    )  # fmt: skip
    return _show(view, args.json)


async def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    views = await (await _schedules(settings)).list()
    if args.json:
        print(as_json(views))
    elif not views:
        _note(f"no schedules in namespace {settings.namespace!r} at {settings.address}")
    for view in [] if args.json else views:
        state = "paused" if view.paused else f"next {_time(view.next_runs)}"
        print(f"{view.name}  {view.workflow_name}  {view.when}  {state}")
    return 0


async def cmd_describe(args: argparse.Namespace, settings: Settings) -> int:
    return _show(await (await _schedules(settings)).describe(args.name), args.json)


async def cmd_pause(args: argparse.Namespace, settings: Settings) -> int:
    return _show(await (await _schedules(settings)).pause(args.name, args.note), args.json)


async def cmd_unpause(args: argparse.Namespace, settings: Settings) -> int:
    return _show(await (await _schedules(settings)).unpause(args.name, args.note), args.json)


async def cmd_trigger(args: argparse.Namespace, settings: Settings) -> int:
    return _show(await (await _schedules(settings)).trigger(args.name), args.json)


async def cmd_delete(args: argparse.Namespace, settings: Settings) -> int:
    await (await _schedules(settings)).delete(args.name)
    print(f"deleted schedule {args.name} (runs it started go on)")
    return 0


def _show(view: ScheduleView, json_out: bool) -> int:
    if json_out:
        print(as_json(view))
        return 0
    state = "paused" if view.paused else "active"
    print(f"{view.name}: {view.workflow_name}, {view.when}, {state}")
    if view.note:
        print(f"  note: {view.note}")
    if view.overlap:
        print(f"  overlap: {view.overlap}, catch-up window: {view.catchup_window}")
    print(f"  next: {', '.join(t.isoformat() for t in view.next_runs[:3]) or '-'}")
    for run in view.recent_runs[-5:]:
        print(f"  ran {run.execution_id} (due {run.scheduled_at.isoformat()})")
    return 0


def _time(times: list[datetime]) -> str:
    return times[0].isoformat() if times else "-"


def add_schedule_commands(commands: Any) -> None:
    """`schedule` and its subcommands, on starter.py's subparsers."""
    text = "runs on a cron or an interval (Temporal Schedules)"
    group = commands.add_parser("schedule", help=text)
    sub = group.add_subparsers(dest="schedule_command", required=True)

    def add(name: str, handler: Any, text: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = sub.add_parser(name, help=text)
        parser.set_defaults(handler=handler)
        if name != "list":
            parser.add_argument("name", help="the schedule's name")
        if name not in ("delete",):
            parser.add_argument("--json", action="store_true", help="machine-readable output")
        return parser

    create = add("create", cmd_create, "validate FILE and run it on a cron or an interval")
    create.add_argument("file", help="a workflow definition (YAML)")
    when = create.add_mutually_exclusive_group(required=True)
    when.add_argument("--cron", help='five fields, UTC: "0 9 * * 1-5" is 09:00 on weekdays')
    when.add_argument("--every", help="an interval: 30s, 5m, 1h, 1d")
    create.add_argument(
        "-v", "--var", action="append", default=[], metavar="NAME=VALUE",
        help="a variable of every run; text for string variables, else read as YAML",
    )  # fmt: skip
    create.add_argument(
        "--overlap", default="skip",
        help="a run due while the last still runs: skip (default), buffer-one, buffer-all, "
        "cancel-other, terminate-other, allow-all",
    )  # fmt: skip
    create.add_argument(
        "--catchup-window", default="1m", metavar="DURATION",
        help="after downtime, start runs that fell due this long ago at most (default 1m)",
    )  # fmt: skip
    create.add_argument("--offline", action="store_true", help="send every model call to mock")
    create.add_argument("--paused", action="store_true", help="create it paused")
    add("list", cmd_list, "list schedules")
    add("describe", cmd_describe, "a schedule's next and recent runs")
    add("pause", cmd_pause, "start no runs until unpaused").add_argument("--note")
    add("unpause", cmd_unpause, "start runs again").add_argument("--note")
    add("trigger", cmd_trigger, "start a run now")
    add("delete", cmd_delete, "delete a schedule (its runs go on)")
