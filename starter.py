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
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the heavy imports wait for a command that needs them (`--help` is fast)
    from engine.client import EngineClient
    from engine.settings import Settings

STATUSES = ["running", "completed", "failed", "cancelled", "canceled", "terminated", "timed_out"]


def _note(message: str) -> None:
    print(message, file=sys.stderr)


def _write_now(text: str) -> None:
    """A streamed reply's piece, on the terminal at once (not at the end of the line)."""
    sys.stderr.write(text)
    sys.stderr.flush()


def parse_vars(pairs: list[str]) -> dict[str, str]:
    """`--var name=value` pairs as text; the definition's declared types decide how each is
    read (workflows.validation.typed_variables)."""
    from workflows.errors import UsageError

    texts: dict[str, str] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--var {pair!r}: write --var name=value")
        texts[key] = raw
    return texts


async def _client(settings: Settings) -> EngineClient:
    from engine.client import EngineClient

    return await EngineClient.connect(settings, note=_note)


async def start_run(args: argparse.Namespace, settings: Settings) -> tuple[EngineClient, str]:
    from engine.client import load_file
    from workflows.validation import typed_variables

    loaded = load_file(args.file, settings)
    variables = typed_variables(loaded.definition, parse_vars(args.var))
    script = None
    if args.replies:  # scripted replies by step id (engine/test_files.py)
        from engine.test_files import load_replies

        script = load_replies(Path(args.replies), loaded)
    client = await _client(settings)
    started = await client.start(
        loaded, variables, execution_id=args.id, offline=args.offline or script is not None,
        reuse_id=args.reuse_id, script=script,
    )  # fmt: skip
    _note(f"started {started.execution_id}: {client.ui_link(started.execution_id)}")
    return client, started.execution_id


async def wait_and_print(client: EngineClient, execution_id: str, as_json: bool) -> int:
    from engine.progress import with_progress

    stream = _write_now if sys.stderr.isatty() and not as_json else None
    result = await with_progress(client, execution_id, _note, stream)
    if as_json:
        print(json.dumps(result.model_dump(mode="json"), indent=2))
        return 0
    outputs = result.outputs or {  # no declared outputs: show what each step gave
        f"{step_id}.{name}": value
        for step_id, step in result.steps.items()
        for name, value in (step.outputs or {}).items()
    }
    for name, value in outputs.items():
        print(f"{name}: {value if isinstance(value, str) else json.dumps(value)}")
    usage = result.usage
    _note(
        f"completed {len(result.steps)} step(s), {usage.input_tokens} input and "
        f"{usage.output_tokens} output tokens, estimated ${usage.cost_usd:.6f}"
    )
    return 0


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
    if args.json:
        print(json.dumps(status.model_dump(mode="json"), indent=2))
        return 0
    from engine.progress import progress_line

    print(f"{args.id} ({status.workflow_name}): {status.execution_status}")
    print(progress_line(status))
    for step_id, step in status.steps.items():
        print(
            f"  {step_id}: {step.status}, {step.attempts} attempt(s), {step.duration_ms} ms"
            + (f" — {step.error}" if step.error else "")
        )
    for name, value in status.outputs.items():
        print(f"  {name} = {value if isinstance(value, str) else json.dumps(value)}")
    return 0


async def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    runs = await (await _client(settings)).list(args.workflow, args.status, limit=args.limit)
    if args.json:
        print(json.dumps([run.model_dump(mode="json") for run in runs], indent=2))
        return 0
    for run in runs:
        steps = run.steps_done if run.steps_done is not None else "-"
        print(
            f"{run.execution_id}  {run.workflow_name or '-'}  {run.status}  "
            f"steps done: {steps}  {run.started_at.isoformat()}"
        )
    return 0


async def cmd_cancel(args: argparse.Namespace, settings: Settings) -> int:
    status = await (await _client(settings)).cancel(args.id)
    finished = [step_id for step_id, step in status.steps.items() if step.status == "completed"]
    print(f"{args.id}: {status.execution_status}; steps finished before: "
          f"{', '.join(finished) or 'none'}")  # fmt: skip
    return 0


async def cmd_budget(args: argparse.Namespace, settings: Settings) -> int:
    from engine.progress import budget_text

    client = await _client(settings)
    budget = await client.raise_budget(
        args.id, max_cost_usd=args.max_cost_usd, max_tokens=args.max_tokens, step=args.step
    )
    print(f"{args.id}: {budget.scope} budget now {budget_text(budget)}")
    return 0


async def cmd_signal(args: argparse.Namespace, settings: Settings) -> int:
    from workflows.errors import UsageError

    try:
        payload = json.loads(args.input) if args.input is not None else {}
    except json.JSONDecodeError as exc:
        raise UsageError(f"--input is not JSON: {exc}") from None
    except RecursionError:  # thousands of levels
        raise UsageError("--input nests too many levels of JSON to read") from None
    answered = await (await _client(settings)).signal(args.id, args.name, payload)
    print(f"{args.id}: signal {args.name!r} {answered.answer}")
    return 0


async def cmd_resume(args: argparse.Namespace, settings: Settings) -> int:
    """A new run of the same input that takes the old run's finished steps as they are."""
    from engine.client import rerun_variables

    client = await _client(settings)
    variables = rerun_variables(parse_vars(args.var))
    rerun = await client.rerun(args.id, from_step=args.from_step, variables=variables)
    saved = rerun.saved
    _note(
        f"resumed {args.id} as {rerun.execution_id}: reused "
        f"{', '.join(rerun.reused_steps) or 'no steps'}"
        + (f" and {rerun.reused_items} finished for_each item(s)" if rerun.reused_items else "")
        + f" ({saved.input_tokens} input and {saved.output_tokens} output tokens not spent again)"
    )
    _note(client.ui_link(rerun.execution_id))
    return await wait_and_print(client, rerun.execution_id, args.json)


async def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    from workflows.errors import UsageError

    if not (args.file or args.id):
        raise UsageError("replay needs a run id or --file HISTORY.json")
    name = Path(args.file).stem if args.file else args.id
    client = _offline_client(settings) if args.file else await _client(settings)
    try:
        events = await (client.replay_file(args.file) if args.file else client.replay(args.id))
    except UsageError:  # the file is not a history
        raise
    except Exception as exc:  # a replay failure is the answer the user asked for
        raise UsageError(f"replay of {name} failed: {exc}") from None
    print(f"replay of {name}: OK ({events} events)")
    return 0


def _offline_client(settings: Settings) -> EngineClient:
    from engine.client import EngineClient

    return EngineClient(None, settings)  # type: ignore[arg-type]


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
            load_file(file, settings)
        except WorkflowError as exc:
            print(exc, file=sys.stderr)
            failed += 1
        else:
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


async def cmd_test(args: argparse.Namespace, settings: Settings) -> int:
    from engine.test_command import test

    return await test(
        args.paths, settings, pattern=args.k, junit=args.junit, as_json=args.json, note=_note
    )


async def cmd_record(args: argparse.Namespace, settings: Settings) -> int:
    from engine.test_recorder import record

    done = await record(
        await _client(settings), args.id, Path(args.output), definition=args.definition
    )
    for note in done.notes:
        _note(f"note: {note}")
    _note(f"recorded run {args.id} as case {done.name!r} in {done.path}")
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


OFFLINE_COMMANDS = (cmd_validate, cmd_schema)
"""Commands that never connect: their settings skip loading Temporal's configuration."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="starter.py", description="Run YAML-defined LLM workflows durably on Temporal."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, aliases, handler, help_text in [
        ("run", ["execute"], cmd_run, "validate FILE, run it and wait for the result"),
        ("start", [], cmd_start, "validate FILE and start it without waiting"),
    ]:
        sub = commands.add_parser(name, aliases=aliases, help=help_text)
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
        sub.set_defaults(handler=handler)
    result = commands.add_parser("result", help="wait for a started run and print its result")
    result.add_argument("id")
    result.add_argument("--json", action="store_true")
    result.set_defaults(handler=cmd_result)
    status = commands.add_parser("status", help="a run's status, steps and outputs so far")
    status.add_argument("id")
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=cmd_status)
    listing = commands.add_parser("list", aliases=["list-executions"], help="list runs")
    listing.add_argument("--workflow", help="only runs of this definition name")
    listing.add_argument("--status", choices=STATUSES)
    listing.add_argument("--limit", type=int, default=20)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_list)
    cancel = commands.add_parser("cancel", help="cancel a run (its running activities too)")
    cancel.add_argument("id")
    cancel.set_defaults(handler=cmd_cancel)
    signal = commands.add_parser("signal", help="send a signal (approve, pause, resume, ...)")
    signal.add_argument("id")
    signal.add_argument("name")
    signal.add_argument("--input", help="the signal's payload, as JSON")
    signal.set_defaults(handler=cmd_signal)
    budget = commands.add_parser("budget", help="raise a run's budget (a paused run goes on)")
    budget.add_argument("id")
    budget.add_argument("--max-cost-usd", type=float, help="the new limit, in US dollars")
    budget.add_argument("--max-tokens", type=int, help="the new limit of tokens")
    budget.add_argument("--step", help="a step's own budget (default: the run's)")
    budget.set_defaults(handler=cmd_budget)
    resume = commands.add_parser(
        "resume", help="re-run a failed or cancelled run, reusing the steps it finished"
    )
    resume.add_argument("id")
    resume.add_argument(
        "--from",
        dest="from_step",
        metavar="STEP",
        help="re-run this step and every step that waits for it",
    )
    _var_option(resume)
    resume.add_argument("--json", action="store_true")
    resume.set_defaults(handler=cmd_resume)
    replay = commands.add_parser("replay", help="replay a run's history against this code")
    replay.add_argument("id", nargs="?")
    replay.add_argument("--file", help="a history exported with temporal workflow show -o json")
    replay.set_defaults(handler=cmd_replay)
    codec = commands.add_parser(
        "codec-server",
        help="decrypt payloads for the Temporal UI (token: CODEC_SERVER_TOKEN, else a new one)",
    )
    codec.add_argument("--port", type=int, default=8081)
    codec.add_argument("--origin", help="the UI's origin (default: TEMPORAL_UI_URL)")
    codec.set_defaults(handler=cmd_codec_server)
    serve = commands.add_parser(
        "serve", help='the REST API (tokens: API_TOKENS or API_TOKENS_FILE; README "REST API")'
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(handler=cmd_serve)
    validate = commands.add_parser("validate", help="check definition files; exit 1 on problems")
    validate.add_argument("files", nargs="+")
    validate.set_defaults(handler=cmd_validate)
    schema = commands.add_parser("schema", help="print (or write) the definitions' JSON Schema")
    schema.add_argument("-o", "--output", help="write to this file instead of stdout")
    schema.set_defaults(handler=cmd_schema)
    tests = commands.add_parser("test", help="run *.test.yaml files (scripted replies)")
    tests.add_argument("paths", nargs="+", help="test files, or directories to search")
    tests.add_argument("-k", metavar="PATTERN", help="only cases whose FILE::NAME contains it")
    tests.add_argument("--junit", metavar="FILE", help="also write JUnit XML here")
    tests.add_argument("--json", action="store_true", help="machine-readable output")
    tests.set_defaults(handler=cmd_test)
    rec = commands.add_parser("record", help="write an ended run as a test case (*.test.yaml)")
    rec.add_argument("id")
    rec.add_argument("-o", "--output", required=True, help="the test file (new, or added to)")
    rec.add_argument("--definition", help="the definition it tests (default: found by name)")
    rec.set_defaults(handler=cmd_record)
    stop = commands.add_parser(
        "stop", help="stop the dev server and worker that run/start started in the background"
    )
    stop.set_defaults(handler=cmd_stop)
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
        from temporalio.service import RPCError

        if isinstance(exc, RPCError):
            print(f"error: Temporal at {settings.address} answered: {exc}", file=sys.stderr)
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
