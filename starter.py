"""The command line: validate a definition, start it on Temporal, wait for and print its result.

Errors a user can act on are printed as one line (or one line per problem), never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any

import yaml
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import CancelledError, TerminatedError, TimeoutError
from temporalio.service import RPCError

from activities.actions import load_custom_actions, params_models
from activities.definitions import load_bundle
from activities.llm import is_configured
from worker import Settings, ensure_server, ensure_worker
from workflows.contracts import LoadedDefinition, RunInput, RunResult
from workflows.definition import LlmCallStep, json_schema
from workflows.errors import DefinitionError, WorkflowError
from workflows.interpreter import YamlWorkflow
from workflows.routing import route
from workflows.validation import resolve_variables


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
        result: RunResult = await handle.result()
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
            f"{usage.output_tokens} output tokens"
        )
    return 0


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
    client = await connect(settings)
    handle = client.get_workflow_handle(args.id, result_type=RunResult)
    try:
        await handle.describe()
    except RPCError as exc:
        raise StarterError(f"no run {args.id!r} in namespace {settings.namespace}: {exc}") from None
    return await wait_and_print(handle, args.json)


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
    validate = commands.add_parser("validate", help="check definition files; exit 1 on problems")
    validate.add_argument("files", nargs="+")
    validate.set_defaults(handler=cmd_validate)
    schema = commands.add_parser("schema", help="print (or write) the definitions' JSON Schema")
    schema.add_argument("-o", "--output", help="write to this file instead of stdout")
    schema.set_defaults(handler=cmd_schema)
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
