"""`starter.py record ID -o FILE`: a finished run's history as a test case. Its variables,
every model reply and action result (as the case's script), its signals, and what it ended
with (status, outputs, step statuses, calls) as expectations; running the case replays the
run without a provider or the world."""

from __future__ import annotations

import argparse
import json
import os
import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from temporalio.exceptions import ApplicationError, TimeoutError

from engine.client import EngineClient
from engine.definition_files import load_file
from engine.run_history import Call, RunHistory, read_runs
from engine.settings import ROOT
from engine.testing.files import SUFFIX, TIMEOUT, all_steps, load_tests
from workflows.contracts import ActionResult, LlmCallResult
from workflows.definition import Step, WaitForSignalStep
from workflows.errors import FailureType, RunFailed, UsageError
from workflows.scripts import item_of

WAIT_TIMED_OUT = "signal within"
"""What a wait_for_signal step's error says when its wait timed out (workflows/steps.py)."""


@dataclass
class Recorded:
    path: Path
    name: str
    notes: list[str] = field(default_factory=list)
    """What the case could not capture as the run had it."""


async def record(
    client: EngineClient,
    execution_id: str,
    output: Path,
    *,
    definition: str | None = None,
    name: str | None = None,
) -> Recorded:
    """Write the run as a case into `output` (a new test file, or appended to its cases)."""
    status = await client.status(execution_id)
    if status.execution_status == "running":
        raise UsageError(f"run {execution_id} is still running: record it once it has ended")
    runs = await read_runs(client.temporal, execution_id)
    existing = _existing(output)
    target = _definition(definition, existing, output, runs[0], status.workflow_name, client)
    loaded = load_file(target, client.settings)
    steps = all_steps(loaded)
    recorded = Recorded(output, name or f"recorded {execution_id}")
    case: dict[str, Any] = {"name": recorded.name}
    variables = runs[0].run_input.variables if runs[0].run_input else {}
    if variables:
        case["variables"] = variables
    replies, actions = _script(runs, steps, recorded.notes)
    if replies:
        case["replies"] = replies
    if actions:
        case["actions"] = actions
    signals = _signals(runs[0], steps, status.steps)
    if signals:
        case["signals"] = signals
    expect: dict[str, Any] = {"status": _status(status.execution_status)}
    if status.execution_status == "completed":
        expect["outputs"] = (await client.result(execution_id)).outputs
    else:
        try:
            await client.result(execution_id)
        except RunFailed as exc:
            expect["error"] = _error_text(exc.reason)
    expect["steps"] = {step_id: step.status for step_id, step in status.steps.items()}
    calls: dict[str, int] = {}
    for run in runs:
        for call in run.calls:
            if call.is_model_call:
                calls[call.step_id] = calls.get(call.step_id, 0) + 1
    if calls:
        expect["calls"] = calls
    case["expect"] = expect
    if existing is None:
        _write_new(output, target, case, execution_id)
    else:
        taken = {c.get("name") for c in existing.get("cases") or [] if isinstance(c, dict)}
        while case["name"] in taken:
            case["name"] = recorded.name = f"{case['name']} (again)"
        _append(output, case)
    load_tests(output, client.settings)  # the file reads back (DefinitionError if not)
    return recorded


async def record_command(
    client: EngineClient, args: argparse.Namespace, note: Callable[[str], None]
) -> int:
    """`starter.py record ID -o FILE [--definition FILE]`."""
    done = await record(client, args.id, Path(args.output), definition=args.definition)
    for text in done.notes:
        note(f"note: {text}")
    note(f"recorded run {args.id} as case {done.name!r} in {done.path}")
    return 0


def _script(
    runs: list[RunHistory], steps: dict[str, Step], notes: list[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Replies and action results by step id, as a case writes them. Child runs follow the
    same script, from its start: a step several runs called is scripted from the first."""
    kinds: dict[str, dict[str, Any]] = {"replies": {}, "actions": {}}
    for run in runs:
        mine: dict[str, dict[str, dict[int, list[Any]]]] = {"replies": {}, "actions": {}}
        for call in run.calls:
            kind = "replies" if call.is_model_call else "actions"
            entries = _entries(call)
            if entries:
                items = mine[kind].setdefault(call.step_id, {})
                items.setdefault(item_of(call.step_id, call.key), []).extend(entries)
        for kind, by_step in mine.items():
            for step_id, items in by_step.items():
                written = _written(steps.get(step_id), items)
                earlier = kinds[kind].get(step_id)
                if earlier is None:
                    kinds[kind][step_id] = written
                elif earlier != written:
                    notes.append(
                        f"child runs answered step '{step_id}' differently: every run of the "
                        "case gets the first one's answers"
                    )
    return kinds["replies"], kinds["actions"]


def _entries(call: Call) -> list[Any]:
    """What each attempt of the call answered, as script entries."""
    if call.result is None and call.failure is None:
        return []  # never finished (the run was cancelled meanwhile)
    if not call.is_model_call:  # an action's every attempt gets one entry
        if isinstance(call.result, ActionResult):
            return [call.result.value]
        return [{"error": str(getattr(call.failure, "message", None) or call.failure)}]
    earlier = [_model_error(call.earlier_failure)] * (call.attempts - 1)
    if isinstance(call.result, LlmCallResult):
        return [*earlier, _reply(call.result)]
    return [*earlier, _model_error(call.failure)]


def _reply(result: LlmCallResult) -> Any:
    if result.tool_calls:
        turn: dict[str, Any] = {
            "tool_calls": [{"name": c.name, "arguments": c.arguments} for c in result.tool_calls]
        }
        return {**turn, "text": result.text} if result.text else turn
    if result.parsed is not None and result.invalid is None:
        return result.parsed
    return result.text


def _model_error(failure: BaseException | None) -> dict[str, Any]:
    """A provider's failure as a scripted one: its HTTP status, a timeout, or a status that
    is retried (500) or not (400) as the failure was."""
    if isinstance(failure, TimeoutError):
        return {"error": TIMEOUT}
    if isinstance(failure, ApplicationError):
        status = re.fullmatch(r"ProviderHTTP(\d{3})", failure.type or "")
        if status:
            return {"error": int(status.group(1))}
        if failure.type == FailureType.PROVIDER_TIMEOUT:
            return {"error": TIMEOUT}
        return {"error": 400 if failure.non_retryable else 500}
    return {"error": 500}


def _written(step: Step | None, items: dict[int, list[Any]]) -> Any:
    """A step's entries as a case writes them: one value, a list in call order, or (for a
    for_each step) one value or list per item, in item order."""
    if step is not None and step.for_each is not None:
        return [_one_or_list(items.get(index, [])) for index in range(max(items) + 1)]
    return _one_or_list(items.get(0, []))


def _one_or_list(entries: list[Any]) -> Any:
    return entries[0] if len(entries) == 1 else entries


def _signals(run: RunHistory, steps: dict[str, Step], results: dict[str, Any]) -> dict[str, Any]:
    """Payloads by signal name in the order received, then `timeout` for a wait that timed
    out; only signals a step waits for."""
    waits = {s.signal for s in steps.values() if isinstance(s, WaitForSignalStep)}
    sent: dict[str, list[Any]] = {}
    for name, payload in run.signals:
        if name in waits:
            sent.setdefault(name, []).append(payload)
    for step_id, step in steps.items():
        error = getattr(results.get(step_id), "error", None) or ""
        if isinstance(step, WaitForSignalStep) and WAIT_TIMED_OUT in error:
            sent.setdefault(step.signal, []).append(TIMEOUT)
    return {name: _one_or_list(values) for name, values in sent.items()}


def _status(state: str) -> str:
    return {"completed": "completed", "cancelled": "cancelled"}.get(state, "failed")


def _error_text(reason: str) -> str:
    """The failure's words that do not depend on the provider: the step and its attempts."""
    found = re.search(r"step '[^']+'[^:]*", reason)
    return found.group(0).strip() if found else reason


def _existing(output: Path) -> dict[str, Any] | None:
    if not output.exists():
        return None
    data = yaml.safe_load(output.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or list(data)[-1:] != ["cases"]:
        raise UsageError(f"{output}: cannot add a case: its last key is not 'cases'")
    return data


def _definition(
    given: str | None,
    existing: dict[str, Any] | None,
    output: Path,
    run: RunHistory,
    workflow_name: str,
    client: EngineClient,
) -> Path:
    """The definition file the case tests: as given, as the test file names it, as the run
    was started by file name, or the one beside the test file with the run's workflow name."""
    if given:
        return Path(given)
    named = existing.get("definition") if existing is not None else None
    if isinstance(named, str):
        return output.parent / named
    if run.run_input is not None and run.run_input.definition_file:
        return client.settings.definitions_dir / run.run_input.definition_file
    found = []
    for path in sorted(output.parent.glob("*.yaml")):
        if path.name.endswith(SUFFIX):
            continue
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(data, dict) and (data.get("workflow") or {}).get("name") == workflow_name:
            found.append(path)
    if len(found) != 1:
        raise UsageError(
            f"which definition does run {workflow_name!r} test? give --definition FILE "
            f"({'none' if not found else len(found)} beside {output} has its name)"
        )
    return found[0]


class _Dumper(yaml.SafeDumper):
    """Lists indented under their key, as the project's YAML files write them."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        return super().increase_indent(flow, False)


class _Block(dict[str, Any]):
    """A mapping written as a block, however short (the file and each case)."""


FLOW_WIDTH = 70
"""A mapping or list shorter than this on one line is written on one line."""


def _fits(data: dict[str, Any] | list[Any]) -> bool:
    inner = data.values() if isinstance(data, dict) else data
    if any(isinstance(value, _Block) for value in inner):
        return False
    return len(json.dumps(data, ensure_ascii=False, default=str)) <= FLOW_WIDTH


def _mapping(dumper: yaml.SafeDumper, data: dict[str, Any]) -> yaml.Node:
    flow = not isinstance(data, _Block) and _fits(data)
    return dumper.represent_mapping("tag:yaml.org,2002:map", data, flow_style=flow)


def _sequence(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=_fits(data))


_Dumper.add_representer(dict, _mapping)
_Dumper.add_representer(_Block, _mapping)
_Dumper.add_representer(list, _sequence)


def _dump(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


def _write_new(output: Path, definition: Path, case: dict[str, Any], execution_id: str) -> None:
    where = output.parent.resolve()
    schema = ROOT / "schema" / "test.schema.json"
    shown = os.path.relpath(schema, where) if where.is_relative_to(ROOT) else str(schema)
    header = (
        f"# yaml-language-server: $schema={shown}\n"
        f"# Recorded from run {execution_id} (python starter.py record).\n"
    )
    body = _Block(definition=os.path.relpath(definition.resolve(), where), cases=[_Block(case)])
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(header + _dump(body), encoding="utf-8")


def _append(output: Path, case: dict[str, Any]) -> None:
    text = output.read_text(encoding="utf-8")
    items = re.findall(r"^( *)- ", text.split("\ncases:", 1)[-1], re.MULTILINE)
    indent = items[0] if items else "  "
    case_text = textwrap.indent(_dump([_Block(case)]), indent)
    output.write_text(text.rstrip("\n") + "\n\n" + case_text, encoding="utf-8")
