"""The command line: validate a definition, start it on Temporal, wait for and print its result.

Errors a user can act on are printed as one line (or one line per problem), never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
import uuid
from pathlib import Path
from typing import Any

import yaml
from temporalio.client import (
    Client,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowHistory,
    WorkflowQueryFailedError,
)
from temporalio.exceptions import CancelledError, TerminatedError, TimeoutError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Replayer

from activities.codec import codec_from_key, codec_server, new_key
from activities.definitions import load_bundle
from activities.endpoints import is_configured
from activities.registry import load_custom_actions, params_models
from worker import Settings, ensure_server, ensure_worker, stop_local_stack, workflow_runner
from workflows import search_attributes
from workflows.contracts import LoadedDefinition, RunInput, RunResult, RunStatus
from workflows.definition import LlmCallStep, json_schema
from workflows.errors import DefinitionError, WorkflowError
from workflows.interpreter import YamlWorkflow
from workflows.rerun import rerun_plan
from workflows.routing import route
from workflows.validation import resolve_variables

PROGRESS_EVERY_SECONDS = 0.5
RECONNECT_EVERY_SECONDS = 1.0


class StarterError(WorkflowError):
    """A problem the user can fix, reported as one line."""


def read_definition(file: str, settings: Settings) -> LoadedDefinition:
    """The file and the definitions its `workflow` steps run, all validated (custom actions
    from ACTION_MODULES included)."""
    actions = params_models(load_custom_actions(settings.action_modules))
    return load_bundle(Path(file), file, actions)


def parse_vars(pairs: list[str]) -> dict[str, Any]:
    """`--var key=value`; the value is read as YAML, so numbers stay numbers."""
    variables: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise StarterError(f"--var {pair!r}: write --var name=value")
        try:
            variables[key] = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError:
            variables[key] = raw
    return variables


def mock_providers(loaded: LoadedDefinition, settings: Settings, offline: bool) -> list[str]:
    """Providers the run sends to the offline mock, saying why on stderr."""
    names: list[str | None] = []
    for definition in [loaded.definition, *loaded.children.values()]:
        spec = definition.workflow
        for step in spec.steps:
            if isinstance(step, LlmCallStep):
                names += [step.model or spec.defaults.model, *step.fallback_models]
    providers = sorted({route(name).provider for name in names if name} - {"mock"})
    if offline:
        if providers:
            _note("--offline: every model call goes to the offline mock provider")
        return providers
    missing = [p for p in providers if not is_configured(p, settings.endpoints.get(p))]
    for provider in missing:
        _note(
            f"no key configured for provider {provider}: its calls go to the offline mock "
            f"provider (replies are labelled). To call it, set {_key_hint(provider)}."
        )
    return missing


def _key_hint(provider: str) -> str:
    if provider == "openai":
        return "OPENAI_API_KEY (and OPENAI_BASE_URL for a compatible server)"
    if provider == "anthropic":
        return "ANTHROPIC_API_KEY"
    return f"{provider.upper()}_BASE_URL to its OpenAI-compatible endpoint"


async def start_run(args: argparse.Namespace, settings: Settings) -> WorkflowHandle[Any, Any]:
    loaded = read_definition(args.file, settings)
    definition = loaded.definition
    variables = parse_vars(args.var)
    resolve_variables(definition, variables)  # refuse a bad run before it starts
    mocked = mock_providers(loaded, settings, args.offline)
    client = await connect(settings)
    await ensure_worker(client, settings, _note)
    run_id = f"{definition.workflow.name}-{uuid.uuid4().hex[:12]}"
    handle = await client.start_workflow(
        YamlWorkflow.run,
        RunInput(
            definition=definition,
            children=loaded.children,
            variables=variables,
            mock_providers=mocked,
            llm_task_queue=settings.llm_task_queue,
            action_task_queue=settings.action_task_queue,
        ),
        id=run_id,
        task_queue=settings.task_queue,
    )
    _note(f"started {run_id}: {ui_link(settings, run_id)}")
    return handle


async def connect(settings: Settings) -> Client:
    return await ensure_server(settings, _note)


async def wait_and_print(handle: WorkflowHandle[Any, Any], as_json: bool) -> int:
    try:
        result: RunResult = await with_progress(handle)
    except WorkflowFailureError as exc:
        raise StarterError(f"run {handle.id} {failure_reason(exc)}") from None
    if as_json:
        print(json.dumps(result.model_dump(mode="json"), indent=2))
    else:
        for name, value in result.outputs.items():
            print(f"{name}: {value if isinstance(value, str) else json.dumps(value)}")
        usage = result.usage
        _note(
            f"completed {len(result.steps)} step(s), {usage.input_tokens} input and "
            f"{usage.output_tokens} output tokens, estimated ${usage.cost_usd:.6f}"
        )
    return 0


async def with_progress(handle: WorkflowHandle[Any, Any]) -> RunResult:
    """Wait for the result, printing a line whenever the `status` query shows progress."""
    result = asyncio.ensure_future(_result_through_restarts(handle))
    shown = ""
    while not result.done():
        await asyncio.wait({result}, timeout=PROGRESS_EVERY_SECONDS)
        if result.done():
            break
        try:
            status: RunStatus = await handle.query("status", result_type=RunStatus)
        except (RPCError, WorkflowQueryFailedError):
            continue
        line = progress_line(status)
        if line != shown:
            _note(line)
            shown = line
    return result.result()


UNREACHABLE = {RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED}


async def _result_through_restarts(handle: WorkflowHandle[Any, Any]) -> RunResult:
    """The run lives in the server, not in this process: when the server goes away (a
    restart, a deploy), wait for it to come back and go on waiting for the result."""
    lost = False
    while True:
        try:
            result = await handle.result()
        except RPCError as exc:
            if exc.status not in UNREACHABLE and "connect" not in exc.message:
                raise
            if not lost:
                _note(f"lost the Temporal server ({exc.message}); waiting for it to come back")
                lost = True
            await asyncio.sleep(RECONNECT_EVERY_SECONDS)
            continue
        if lost:
            _note("the Temporal server is back")
        return result


def progress_line(status: RunStatus) -> str:
    done = sum(1 for step in status.steps.values() if step.status != "failed")
    running = (
        ", ".join(
            f"{step_id} ({len(status.items[step_id])} items done)"
            if step_id in status.items
            else step_id
            for step_id in status.running
        )
        or "-"
    )
    paused = " (paused)" if status.paused else ""
    return (
        f"[{done}/{status.total_steps} steps]{paused} running: {running}; tokens "
        f"{status.usage.input_tokens} in / {status.usage.output_tokens} out; "
        f"${status.usage.cost_usd:.6f}"
    )


def failure_reason(exc: WorkflowFailureError) -> str:
    cause = exc.cause
    if isinstance(cause, CancelledError):
        return "was cancelled"
    if isinstance(cause, TerminatedError):
        return f"was terminated: {cause.message}"
    if isinstance(cause, TimeoutError):
        return "timed out"
    return f"failed: {cause.message if cause else exc}"


def ui_link(settings: Settings, run_id: str) -> str:
    return f"{settings.ui_url}/namespaces/{settings.namespace}/workflows/{run_id}"


async def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    handle = await start_run(args, settings)
    return await wait_and_print(handle, args.json)


async def cmd_start(args: argparse.Namespace, settings: Settings) -> int:
    handle = await start_run(args, settings)
    print(json.dumps({"execution_id": handle.id}) if args.json else handle.id)
    return 0


async def cmd_result(args: argparse.Namespace, settings: Settings) -> int:
    _, handle = await existing(settings, args.id)
    return await wait_and_print(handle, args.json)


async def existing(
    settings: Settings, run_id: str
) -> tuple[Client, WorkflowHandle[Any, RunResult]]:
    client = await connect(settings)
    handle = client.get_workflow_handle(run_id, result_type=RunResult)
    try:
        await handle.describe()
    except RPCError as exc:
        raise StarterError(f"no run {run_id!r} in namespace {settings.namespace}: {exc}") from None
    return client, handle


async def run_status(handle: WorkflowHandle[Any, Any]) -> RunStatus:
    """The run's own account of its steps (answered by a worker, for ended runs too)."""
    try:
        return await handle.query("status", result_type=RunStatus)
    except (RPCError, WorkflowQueryFailedError) as exc:
        raise StarterError(f"run {handle.id} did not answer the status query: {exc}") from None


async def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    client, handle = await existing(settings, args.id)
    await ensure_worker(client, settings, _note)
    state = (await handle.describe()).status
    status = await run_status(handle)
    execution = state.name.lower() if state else "unknown"
    if args.json:
        print(
            json.dumps(
                {
                    "execution_id": args.id,
                    "execution_status": execution,
                    **status.model_dump(mode="json"),
                },
                indent=2,
            )
        )
        return 0
    print(f"{args.id} ({status.workflow_name}): {execution}")
    print(progress_line(status))
    for step_id, step in status.steps.items():
        print(
            f"  {step_id}: {step.status}, {step.attempts} attempt(s), {step.duration_ms} ms"
            + (f" — {step.error}" if step.error else "")
        )
    for name, value in status.outputs.items():
        print(f"  {name} = {value if isinstance(value, str) else json.dumps(value)}")
    return 0


STATUS_NAMES = {
    "running": "Running",
    "completed": "Completed",
    "failed": "Failed",
    "cancelled": "Canceled",
    "terminated": "Terminated",
    "timed_out": "TimedOut",
}


async def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    client = await connect(settings)
    query = "WorkflowType = 'YamlWorkflow'"
    if args.workflow:
        query += f" AND {search_attributes.DEFINITION_NAME.name} = '{args.workflow}'"
    if args.status:
        query += f" AND ExecutionStatus = '{STATUS_NAMES[args.status]}'"
    rows = []
    async for execution in client.list_workflows(query, limit=args.limit):
        names = execution.typed_search_attributes
        rows.append(
            {
                "execution_id": execution.id,
                "workflow_name": names.get(search_attributes.DEFINITION_NAME),
                "status": execution.status.name.lower() if execution.status else "unknown",
                "steps_done": names.get(search_attributes.STEPS_DONE),
                "started_at": execution.start_time.isoformat(),
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
    for row in [] if args.json else rows:
        print(
            f"{row['execution_id']}  {row['workflow_name'] or '-'}  {row['status']}  "
            f"steps done: {row['steps_done'] if row['steps_done'] is not None else '-'}  "
            f"{row['started_at']}"
        )
    return 0


async def cmd_cancel(args: argparse.Namespace, settings: Settings) -> int:
    client, handle = await existing(settings, args.id)
    await handle.cancel()
    try:
        await handle.result()
    except WorkflowFailureError as exc:
        _note(f"run {args.id} {failure_reason(exc)}")
    await ensure_worker(client, settings, _note)
    status = await run_status(handle)
    finished = [step_id for step_id, step in status.steps.items() if step.status == "completed"]
    print(f"{args.id}: cancelled; steps finished before: {', '.join(finished) or 'none'}")
    return 0


async def cmd_signal(args: argparse.Namespace, settings: Settings) -> int:
    _, handle = await existing(settings, args.id)
    try:
        payload = json.loads(args.input) if args.input is not None else {}
    except json.JSONDecodeError as exc:
        raise StarterError(f"--input is not JSON: {exc}") from None
    await handle.signal(args.name, payload)
    _note(f"sent signal {args.name!r} to {args.id}")
    return 0


async def cmd_resume(args: argparse.Namespace, settings: Settings) -> int:
    """A new run of the same definition that takes the old run's finished steps as they are."""
    client, old = await existing(settings, args.id)
    await ensure_worker(client, settings, _note)
    history = await old.fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    [previous] = await client.data_converter.decode(started.input.payloads, [RunInput])
    status = await run_status(old)
    try:
        plan = rerun_plan(previous, status, args.from_step)
    except ValueError as exc:
        raise StarterError(f"--from {args.from_step}: {exc}") from None
    reuse, items, saved = plan.reuse, plan.reuse_items, plan.saved
    variables = {**previous.variables, **parse_vars(args.var)}
    new_id = f"{args.id}-resumed-{uuid.uuid4().hex[:6]}"
    handle = await client.start_workflow(
        YamlWorkflow.run,
        previous.model_copy(
            update={
                "variables": variables,
                "reuse": reuse,
                "reuse_items": items,
                "signals": {},
                "paused": False,
                "started_at": None,
            }
        ),
        id=new_id,
        task_queue=settings.task_queue,
    )
    _note(
        f"resumed {args.id} as {new_id}: reused {', '.join(reuse) or 'no steps'}"
        + (f" and {plan.item_count} finished for_each item(s)" if plan.item_count else "")
        + f" ({saved.input_tokens} input and {saved.output_tokens} output tokens not spent again)"
    )
    _note(ui_link(settings, new_id))
    return await wait_and_print(handle, args.json)


async def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    if args.file:
        try:
            history = WorkflowHistory.from_json(Path(args.file).stem, Path(args.file).read_text())
        except (OSError, ValueError) as exc:
            raise StarterError(f"{args.file}: cannot read a history: {exc}") from None
    elif args.id:
        history = await (await existing(settings, args.id))[1].fetch_history()
    else:
        raise StarterError("replay needs a run id or --file HISTORY.json")
    replayer = Replayer(
        workflows=[YamlWorkflow],
        data_converter=settings.data_converter,
        workflow_runner=workflow_runner(),
    )
    try:
        await replayer.replay_workflow(history)
    except Exception as exc:  # a replay failure is the answer the user asked for
        raise StarterError(f"replay of {history.workflow_id} failed: {exc}") from None
    print(f"replay of {history.workflow_id}: OK ({len(history.events)} events)")
    return 0


async def cmd_codec_server(args: argparse.Namespace, settings: Settings) -> int:
    codec = codec_from_key(settings.payload_key, settings.payload_key_id)
    if codec is None:
        raise StarterError(f"set PAYLOAD_KEY first (a new one: {new_key()})")
    origin = (args.origin or settings.ui_url).rstrip("/")
    token = settings.codec_server_token or secrets.token_urlsafe(24)
    server = codec_server(codec, args.port, origin, token)
    shown = "$CODEC_SERVER_TOKEN" if settings.codec_server_token else token
    _note(
        f"codec server for {origin}: in the UI's codec settings, set the endpoint to "
        f"http://127.0.0.1:{args.port}/{shown}/ (other clients: Authorization: Bearer {shown})"
    )
    try:
        await asyncio.to_thread(server.serve_forever)
    finally:
        server.server_close()
    return 0


async def cmd_validate(args: argparse.Namespace, settings: Settings) -> int:
    failed = 0
    for file in args.files:
        try:
            read_definition(file, settings)
        except WorkflowError as exc:
            print(exc, file=sys.stderr)
            failed += 1
        else:
            print(f"{file}: valid")
    return 1 if failed else 0


async def cmd_schema(args: argparse.Namespace, settings: Settings) -> int:
    text = json.dumps(json_schema(), indent=2) + "\n"
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text, encoding="utf-8")
        _note(f"wrote {args.output}")
    else:
        print(text, end="")
    return 0


async def cmd_stop(args: argparse.Namespace, settings: Settings) -> int:
    await stop_local_stack(settings, _note)
    return 0


def _note(message: str) -> None:
    print(message, file=sys.stderr)


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
        sub.add_argument("--var", action="append", default=[], metavar="NAME=VALUE")
        sub.add_argument("--offline", action="store_true", help="send every model call to mock")
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
    listing.add_argument("--status", choices=sorted(STATUS_NAMES))
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
    resume.add_argument("--var", action="append", default=[], metavar="NAME=VALUE")
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
    validate = commands.add_parser("validate", help="check definition files; exit 1 on problems")
    validate.add_argument("files", nargs="+")
    validate.set_defaults(handler=cmd_validate)
    schema = commands.add_parser("schema", help="print (or write) the definitions' JSON Schema")
    schema.add_argument("-o", "--output", help="write to this file instead of stdout")
    schema.set_defaults(handler=cmd_schema)
    stop = commands.add_parser(
        "stop", help="stop the dev server and worker that run/start started in the background"
    )
    stop.set_defaults(handler=cmd_stop)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings.from_env(os.environ)
    try:
        return asyncio.run(args.handler(args, settings))
    except DefinitionError as exc:
        print(exc, file=sys.stderr)
        return 1
    except WorkflowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except RPCError as exc:
        print(f"error: Temporal at {settings.address} answered: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: a started run goes on; see it in the Temporal UI", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug of ours: still one line, the traceback on request
        if os.environ.get("LLM_WORKFLOWS_DEBUG"):
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
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    cli()
