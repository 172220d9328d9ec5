"""The command line: a thin skin over the client API (engine/client.py): argparse, one call,
print. Errors a user can act on are printed as one line (or one line per problem), never a
traceback."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from engine.cli_eval import add_eval
from engine.cli_import import add_import_commands
from engine.cli_input import json_input, parse_vars, run_input
from engine.cli_output import (
    as_json,
    budget_line,
    cancelled_line,
    rerun_note,
    result_lines,
    run_line,
    status_lines,
    usage_note,
)
from engine.cli_schedules import add_schedule_commands
from engine.cli_testing import add_testing_commands
from engine.run_states import FILTER_NAMES

if TYPE_CHECKING:  # the heavy imports wait for a command that needs them (`--help` is fast)
    from engine.client import EngineClient
    from engine.settings import Settings


def _note(message: str) -> None:
    print(message, file=sys.stderr)


def _write_now(text: str) -> None:
    """A streamed reply's piece, on the terminal at once (not at the end of the line)."""
    sys.stderr.write(text)
    sys.stderr.flush()


async def _client(settings: Settings) -> EngineClient:
    from engine.client import EngineClient

    return await EngineClient.connect(settings, note=_note)


async def start_run(args: argparse.Namespace, settings: Settings) -> tuple[EngineClient, str]:
    loaded, variables, script = run_input(args.file, args.var, args.replies, settings)
    client = await _client(settings)
    started = await client.start(
        loaded, variables, execution_id=args.id, offline=args.offline or script is not None,
        reuse_id=args.reuse_id, script=script,
    )  # fmt: skip
    _note(f"started {started.execution_id}: {client.ui_link(started.execution_id)}")
    return client, started.execution_id


async def wait_and_print(client: EngineClient, execution_id: str, json_out: bool) -> int:
    from engine.progress import with_progress

    stream = _write_now if sys.stderr.isatty() and not json_out else None
    result = await with_progress(client, execution_id, _note, stream)
    if json_out:
        print(as_json(result))
        return 0
    _print(result_lines(result))
    _note(usage_note(result))
    return 0


def _print(lines: list[str]) -> None:
    for line in lines:
        print(line)


async def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    client, execution_id = await start_run(args, settings)
    return await wait_and_print(client, execution_id, args.json)


async def cmd_start(args: argparse.Namespace, settings: Settings) -> int:
    _, execution_id = await start_run(args, settings)
    print(json.dumps({"execution_id": execution_id}) if args.json else execution_id)
    return 0


async def cmd_result(args: argparse.Namespace, settings: Settings) -> int:
    return await wait_and_print(await _client(settings), args.id, args.json)


async def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    status = await (await _client(settings)).status(args.id)
    _print([as_json(status)] if args.json else status_lines(args.id, status))
    return 0


async def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    runs = await (await _client(settings)).list(args.workflow, args.status, limit=args.limit)
    if not runs and not args.json:  # say so, on stderr: a script reading stdout gets no lines
        kind = f"{args.status} runs" if args.status else "runs"
        of = f" of {args.workflow!r}" if args.workflow else ""
        _note(f"no {kind}{of} in namespace {settings.namespace!r} at {settings.address}")
    _print([as_json(runs)] if args.json else [run_line(run) for run in runs])
    return 0


async def cmd_cancel(args: argparse.Namespace, settings: Settings) -> int:
    print(cancelled_line(args.id, await (await _client(settings)).cancel(args.id)))
    return 0


async def cmd_budget(args: argparse.Namespace, settings: Settings) -> int:
    budget = await (await _client(settings)).raise_budget(
        args.id, max_cost_usd=args.max_cost_usd, max_tokens=args.max_tokens, step=args.step
    )
    print(budget_line(args.id, budget))
    return 0


async def cmd_signal(args: argparse.Namespace, settings: Settings) -> int:
    payload = json_input(args.input)
    answered = await (await _client(settings)).signal(args.id, args.name, payload)
    print(f"{answered.execution_id}: signal {answered.signal!r} {answered.answer}")
    return 0


async def cmd_resume(args: argparse.Namespace, settings: Settings) -> int:
    """A new run of the same input that takes the old run's finished steps as they are."""
    client = await _client(settings)
    texts = parse_vars(args.var)
    rerun = await client.rerun(args.id, from_step=args.from_step, variable_texts=texts)
    _note(rerun_note(args.id, rerun))
    _note(client.ui_link(rerun.execution_id))
    return await wait_and_print(client, rerun.execution_id, args.json)


async def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    from engine.client import EngineClient

    client = EngineClient.offline(settings) if args.file else await _client(settings)
    name, events = await client.replay_checked(args.id, args.file)
    print(f"replay of {name}: OK ({events} events)")
    return 0


async def cmd_codec_server(args: argparse.Namespace, settings: Settings) -> int:
    from engine.codec_server import serve

    await serve(settings, args.port, args.origin, _note)
    return 0


async def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from engine.rest import serve
    from engine.rest_auth import ApiConfig

    await serve(settings, ApiConfig.from_env(os.environ), args.host, args.port)
    return 0


async def cmd_validate(args: argparse.Namespace, settings: Settings) -> int:
    from engine.definition_files import load_file
    from workflows.errors import WorkflowError

    failed = 0
    for file in args.files:
        try:
            loaded = load_file(file, settings)
        except WorkflowError as exc:
            print(exc, file=sys.stderr)
            failed += 1
        else:
            for warning in loaded.warnings:
                _note(str(warning))
            print(f"{file}: valid")
    return 1 if failed else 0


async def cmd_schema(args: argparse.Namespace, settings: Settings) -> int:
    from workflows.definition import json_schema

    text = json.dumps(json_schema(), indent=2) + "\n"
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text, encoding="utf-8")
        _note(f"wrote {args.output}")
    else:
        print(text, end="")
    return 0


async def cmd_stop(args: argparse.Namespace, settings: Settings) -> int:
    from engine.local_stack import stop_local_stack

    await stop_local_stack(settings, _note)
    return 0


def _var_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-v", "--var", action="append", default=[], metavar="NAME=VALUE",
        help="a run variable; text for string variables, else read as YAML (3, true, [a, b])",
    )  # fmt: skip


Handler = Callable[[argparse.Namespace, "Settings"], Awaitable[int]]
OFFLINE_COMMANDS = (cmd_validate, cmd_schema)
"""Commands that never connect: their settings skip loading Temporal's configuration."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="starter.py", description="Run YAML-defined LLM workflows durably on Temporal."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def add(
        name: str, handler: Handler, text: str, *args: str, aliases: tuple[str, ...] = ()
    ) -> argparse.ArgumentParser:
        """A command, its handler and its positional arguments (`id`, ...)."""
        sub = commands.add_parser(name, aliases=list(aliases), help=text)
        for arg in args:
            sub.add_argument(arg)
        sub.set_defaults(handler=handler)
        return sub

    for name, aliases, handler, help_text in [
        ("run", ("execute",), cmd_run, "validate FILE, run it and wait for the result"),
        ("start", (), cmd_start, "validate FILE and start it without waiting"),
    ]:
        sub = add(name, handler, help_text, aliases=aliases)
        sub.add_argument("file", help="a workflow definition (YAML)")
        _var_option(sub)
        sub.add_argument("--offline", action="store_true", help="send every model call to mock")
        sub.add_argument("--replies", metavar="FILE", help="a YAML of replies by step id")
        sub.add_argument("--id", help="the run's id (default: the workflow's name and a suffix)")
        sub.add_argument(
            "--reuse-id",
            action="store_true",
            help="start even if an ended run has this --id (the runs share no keys or files)",
        )
        sub.add_argument("--json", action="store_true", help="machine-readable output")
    add("result", cmd_result, "wait for a started run and print its result", "id").add_argument(
        "--json", action="store_true"
    )
    add("status", cmd_status, "a run's status, steps and outputs so far", "id").add_argument(
        "--json", action="store_true"
    )
    listing = add("list", cmd_list, "list runs", aliases=("list-executions",))
    listing.add_argument("--workflow", help="only runs of this definition name")
    listing.add_argument("--status", choices=FILTER_NAMES)
    listing.add_argument("--limit", type=int, default=20)
    listing.add_argument("--json", action="store_true")
    add("cancel", cmd_cancel, "cancel a run (its running activities too)", "id")
    signal = add("signal", cmd_signal, "send a signal (approve, pause, resume, ...)", "id", "name")
    signal.add_argument("--input", help="the signal's payload, as JSON")
    budget = add("budget", cmd_budget, "raise a run's budget (a paused run goes on)", "id")
    budget.add_argument("--max-cost-usd", type=float, help="the new limit, in US dollars")
    budget.add_argument("--max-tokens", type=int, help="the new limit of tokens")
    budget.add_argument("--step", help="a step's own budget (default: the run's)")
    rerun_text = "re-run a failed or cancelled run, reusing the steps it finished"
    resume = add("resume", cmd_resume, rerun_text, "id")
    resume.add_argument(
        "--from",
        dest="from_step",
        metavar="STEP",
        help="re-run this step and every step that waits for it",
    )
    _var_option(resume)
    resume.add_argument("--json", action="store_true")
    replay = add("replay", cmd_replay, "replay a run's history against this code")
    replay.add_argument("id", nargs="?")
    replay.add_argument("--file", help="a history exported with temporal workflow show -o json")
    codec = add(
        "codec-server",
        cmd_codec_server,
        "decrypt payloads for the Temporal UI (token: CODEC_SERVER_TOKEN, else a new one)",
    )
    codec.add_argument("--port", type=int, default=8081)
    codec.add_argument("--origin", help="the UI's origin (default: TEMPORAL_UI_URL)")
    serve_text = 'the REST API (tokens: API_TOKENS or API_TOKENS_FILE; README "REST API")'
    serve = add("serve", cmd_serve, serve_text)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    validate = add("validate", cmd_validate, "check definition files; exit 1 on problems")
    validate.add_argument("files", nargs="+")
    schema = add("schema", cmd_schema, "print (or write) the definitions' JSON Schema")
    schema.add_argument("-o", "--output", help="write to this file instead of stdout")
    add_eval(add)
    add("stop", cmd_stop, "stop the dev server and worker that run/start started in the background")
    add_schedule_commands(commands)
    add_testing_commands(commands)
    add_import_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from engine.settings import Settings
    from workflows.errors import DefinitionError, WorkflowError

    settings = Settings.from_env(os.environ, connection=args.handler not in OFFLINE_COMMANDS)
    try:
        return asyncio.run(args.handler(args, settings))
    except DefinitionError as exc:
        print(exc, file=sys.stderr)
        return 1
    except WorkflowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `starter.py status ID | head -3`: the reader had enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("interrupted: a started run goes on; see it in the Temporal UI", file=sys.stderr)
        return 130
    except Exception as exc:
        from engine.temporal_errors import Where, translate

        ours = translate(exc, Where(settings.address, settings.namespace))
        if ours is not None:  # Temporal's, met outside the client API (connecting, say)
            print(f"error: {ours}", file=sys.stderr)
            return 1
        if os.environ.get("LLM_WORKFLOWS_DEBUG"):  # a bug of ours: one line, traceback on request
            raise
        print(
            f"internal error: {type(exc).__name__}: {exc} (set LLM_WORKFLOWS_DEBUG=1 for the "
            "traceback, and please report it)",
            file=sys.stderr,
        )
        return 2


def cli() -> None:
    """Exit without interpreter teardown: the Temporal client's Rust threads can abort a
    finalizing interpreter (temporalio/sdk-python#300), turning a finished run into a crash."""
    code = main()
    with contextlib.suppress(BrokenPipeError):
        sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    cli()
