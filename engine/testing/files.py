"""Test files (`*.test.yaml`): a definition and its cases, read and checked against the
definition, every problem located as FILE:LINE:COL, and each case's script built for the run
(workflows/scripts.py)."""

from __future__ import annotations

import dataclasses
import importlib.util
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from jsonschema import Draft202012Validator
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from activities.definitions import read_text
from engine.definition_files import load_file
from engine.settings import Settings
from workflows.contracts import LoadedDefinition
from workflows.definition import (
    ActionStep,
    LlmCallStep,
    Step,
    WaitForSignalStep,
)
from workflows.errors import DefinitionError, Problem
from workflows.scripts import Script, Scripted, ScriptedToolCall, StepScript
from workflows.source import Source, parse_yaml
from workflows.structured import is_structured, outputs_schema

SUFFIX = ".test.yaml"
TIMEOUT = "timeout"
"""A signal's value that makes the wait for it time out at once."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Expect(_Strict):
    status: Literal["completed", "failed", "cancelled"] = "completed"
    outputs: dict[str, Any] = {}
    """Exact values, or `{contains: TEXT}` / `{matches: REGEX}`."""
    steps: dict[str, Literal["completed", "skipped", "failed"]] = {}
    calls: dict[str, int] = {}
    """Model calls (not attempts) per step id."""
    prompts: dict[str, str | list[str]] = {}
    """Text the step's calls must have sent (system, messages, tool results and re-asks
    included)."""
    error: str | None = None
    """Text the run's failure must contain."""
    budget: dict[Literal["max_cost_usd", "max_tokens"], float] = {}
    """The most the run may have spent."""


class Case(_Strict):
    name: str = Field(min_length=1)
    variables: dict[str, Any] = {}
    replies: dict[str, Any] = {}
    actions: dict[str, Any] = {}
    run_actions: list[str] = []
    """Action steps that run for real in this case (the others are stubbed)."""
    signals: dict[str, Any] = {}
    expect: Expect = Expect()
    timeout: float = Field(default=60, gt=0)
    """Seconds the case may take before it fails."""


class TestFile(_Strict):
    __test__ = False  # not a pytest class
    definition: str
    action_modules: list[str] = []
    """Modules of the custom actions the definition uses, as ACTION_MODULES names them: the
    test command loads them, and so does the local worker it starts."""
    cases: list[Case] = Field(min_length=1)


@dataclass
class LoadedCase:
    case: Case
    script: Script
    signals: list[tuple[str, Any]]
    """Payloads to send, by signal name, in order."""


@dataclass
class LoadedTests:
    __test__ = False
    path: Path
    loaded: LoadedDefinition
    cases: list[LoadedCase]
    action_modules: list[str]


def find_test_files(paths: list[str]) -> list[Path]:
    """The test files named, and every `*.test.yaml` under the directories named."""
    found: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            found += sorted(path.rglob(f"*{SUFFIX}"))
        else:
            found.append(path)
    return found


def read_yaml(path: Path, kind: str) -> Source:
    """A YAML file of ours parsed, its problems located as a definition's are (size, UTF-8,
    unreadable: activities/definitions.py's read_text)."""
    shown = str(path)
    return parse_yaml(read_text(path, shown, kind), shown)


def load_tests(path: Path, settings: Settings) -> LoadedTests:
    """Read a test file and its definition; DefinitionError lists every problem, located."""
    source = read_yaml(path, "a test file")
    try:
        tests = TestFile.model_validate(source.data)
    except ValidationError as exc:
        raise DefinitionError(model_problems(source, exc)) from None
    target = path.parent / tests.definition
    if not target.is_file():
        where = source.problem(("definition",), f"no definition file {tests.definition!r} here")
        raise DefinitionError([where])
    missing = [
        source.problem(("action_modules", n), f"no module {name!r} to import here")
        for n, name in enumerate(tests.action_modules)
        if not _importable(name)
    ]
    if missing:
        raise DefinitionError(missing)
    loaded = load_file(target, with_action_modules(settings, tests.action_modules))
    problems: list[Problem] = list(source.problems)
    cases = [_case(source, index, case, loaded, problems) for index, case in enumerate(tests.cases)]
    if problems:
        raise DefinitionError(problems)
    return LoadedTests(path, loaded, cases, tests.action_modules)


def with_action_modules(settings: Settings, modules: list[str]) -> Settings:
    """The settings with these custom action modules loaded too."""
    added = [name for name in modules if name not in settings.action_modules]
    if not added:
        return settings
    return dataclasses.replace(settings, action_modules=(*settings.action_modules, *added))


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def script_of(
    loaded: LoadedDefinition,
    replies: dict[str, Any],
    actions: dict[str, Any] | None = None,
    *,
    complete: bool = True,
    real_actions: list[str] | None = None,
) -> Script:
    """The run's script. `complete`: every model call and action is scripted, so one the
    case did not give fails instead of reaching a provider (or the world)."""
    script = Script()
    acts, real = actions or {}, real_actions or []
    for step_id, step in all_steps(loaded).items():
        if isinstance(step, LlmCallStep) and step_id in replies:
            script.replies[step_id] = _step_script(step, replies[step_id])
        elif isinstance(step, LlmCallStep) and complete:
            script.replies[step_id] = StepScript()  # its calls fail: the case gives no reply
        if not (isinstance(step, ActionStep) or isinstance(step, LlmCallStep) and step.tools):
            continue
        if step_id in acts:
            script.actions[step_id] = _step_script(step, acts[step_id])
        elif complete and step_id not in real:
            script.actions[step_id] = StepScript()
    return script


def entry(value: Any) -> Scripted:
    """One scripted answer as a case writes it: text, an object, `{tool_calls: [...]}`,
    or `{error: 429}` (`{error: timeout}`, `{error: "message"}` for an action)."""
    if isinstance(value, dict) and "error" in value and set(value) <= {"error"}:
        return Scripted(error=value["error"])
    if isinstance(value, dict) and "tool_calls" in value and set(value) <= {"tool_calls", "text"}:
        calls = [ScriptedToolCall.model_validate(call) for call in value["tool_calls"] or []]
        return Scripted(value=value.get("text"), tool_calls=calls)
    return Scripted(value=value)


def _step_script(step: Step, given: Any) -> StepScript:
    if not isinstance(given, list):
        return StepScript(every=entry(given))
    if step.for_each is None:
        return StepScript(by_item=[[entry(value) for value in given]])
    return StepScript(
        by_item=[
            [entry(v) for v in item] if isinstance(item, list) else [entry(item)] for item in given
        ]
    )


def all_steps(loaded: LoadedDefinition) -> dict[str, Step]:
    """Every step of the definition and of the child definitions its runs start."""
    steps: dict[str, Step] = {}
    for definition in [*loaded.children.values(), loaded.definition]:
        steps.update({step.id: step for step in definition.workflow.steps})
    return steps


def _case(
    source: Source, index: int, case: Case, loaded: LoadedDefinition, problems: list[Problem]
) -> LoadedCase:
    at = ("cases", index)
    steps = all_steps(loaded)
    definition = loaded.definition

    def problem(path: tuple[str | int, ...], message: str, at_key: bool = True) -> None:
        problems.append(source.problem(at + path, message, at_key=at_key))

    for step_id, given in case.replies.items():
        step = steps.get(step_id)
        if not isinstance(step, LlmCallStep):
            problem(("replies", step_id), _not_a(step_id, "an llm_call step", steps))
            continue
        values = given if isinstance(given, list) else [given]
        for n, value in enumerate(values):
            for item in value if isinstance(value, list) and step.for_each else [value]:
                shape = _reply_problem(step, entry(item))
                if shape:
                    where: tuple[str | int, ...] = (
                        ("replies", step_id, n) if isinstance(given, list) else ("replies", step_id)
                    )
                    problem(where, shape, at_key=False)
    for step_id in [*case.actions, *case.run_actions]:
        step = steps.get(step_id)
        if not (isinstance(step, ActionStep) or (isinstance(step, LlmCallStep) and step.tools)):
            part = "actions" if step_id in case.actions else "run_actions"
            where = (part, step_id) if part == "actions" else (part,)
            problem(where, _not_a(step_id, "an action step (or an llm_call with tools)", steps))
    waited = {s.signal for s in steps.values() if isinstance(s, WaitForSignalStep)}
    signals: list[tuple[str, Any]] = []
    timeouts: dict[str, list[int]] = {}
    for name, given in case.signals.items():
        if name not in waited:
            known = ", ".join(sorted(waited)) or "none"
            problem(("signals", name), f"no step waits for signal {name!r} (it waits for: {known})")
        for n, value in enumerate(given if isinstance(given, list) else [given]):
            if value == TIMEOUT:
                timeouts.setdefault(name, []).append(n)
            else:
                signals.append((name, value))
    expect = case.expect
    expected: list[tuple[str, Collection[str]]] = [
        ("steps", expect.steps),
        ("calls", expect.calls),
        ("prompts", expect.prompts),
    ]
    for part, names in expected:
        for step_id in names:
            if step_id not in steps:
                problem(("expect", part, step_id), _not_a(step_id, "a step", steps))
    outputs = {name for step in definition.workflow.steps for name in step.output_names()}
    outputs |= set(definition.workflow.outputs)
    for name in expect.outputs:
        if name not in outputs:
            known = ", ".join(sorted(outputs)) or "none"
            problem(("expect", "outputs", name), f"no output {name!r} (the outputs: {known})")
    for name in case.variables:
        if name not in definition.workflow.variables:
            known = ", ".join(definition.workflow.variables) or "none"
            problem(("variables", name), f"no variable {name!r} (the variables: {known})")
    script = script_of(loaded, case.replies, case.actions, real_actions=case.run_actions)
    script.timeouts = timeouts
    return LoadedCase(case, script, signals)


def _reply_problem(step: LlmCallStep, scripted: Scripted) -> str | None:
    """Why a reply cannot answer this step, or None (text always can: a re-ask test)."""
    if scripted.error is not None:
        if isinstance(scripted.error, int) or scripted.error == TIMEOUT:
            return None
        status = "an HTTP status (429, 500, ...) or 'timeout'"
        return f"a reply's error is {status}, not {scripted.error!r}"
    if scripted.tool_calls:
        if not step.tools:
            return f"step '{step.id}' offers no tools: a reply cannot call one"
        return None
    value = scripted.value
    if isinstance(value, str) or value is None and not scripted.tool_calls:
        return None if value is not None else f"step '{step.id}': a reply cannot be empty"
    if not is_structured(step):
        return f"step '{step.id}' answers text: give a string, not {type(value).__name__}"
    errors = list(Draft202012Validator(outputs_schema(step)).iter_errors(value))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.path) or "the reply"
        return f"the reply does not fit step '{step.id}''s outputs: {where}: {first.message}"
    return None


def _not_a(step_id: str, kind: str, steps: dict[str, Step]) -> str:
    if step_id not in steps:
        return f"no step {step_id!r} in the definition (its steps: {', '.join(steps)})"
    return f"step {step_id!r} is not {kind}"


def model_problems(source: Source, exc: ValidationError) -> list[Problem]:
    problems = []
    for error in exc.errors():
        path = tuple(part for part in error["loc"] if isinstance(part, str | int))
        unknown = error["type"] == "extra_forbidden"
        message = f"unknown key {path[-1]!r}" if unknown and path else error["msg"]
        where = ".".join(str(part) for part in path)
        text = message if unknown or not where else f"{where}: {message}"
        problems.append(source.problem(path, text, at_key=unknown))
    return problems


def load_replies(path: Path, loaded: LoadedDefinition) -> Script:
    """A replies file for `run --replies`: replies by step id, as a case's `replies` has
    them. Steps it does not name are not scripted (they call their provider, or the mock)."""
    source = read_yaml(path, "a replies file")
    shown = source.file
    if not isinstance(source.data, dict):
        raise DefinitionError([Problem(shown, 1, 1, "write replies as a mapping: STEP_ID: reply")])
    problems: list[Problem] = []
    steps = all_steps(loaded)
    for step_id, given in source.data.items():
        step = steps.get(step_id)
        if not isinstance(step, LlmCallStep):
            message = _not_a(str(step_id), "an llm_call step", steps)
            problems.append(source.problem((step_id,), message, at_key=True))
            continue
        for n, value in enumerate(given if isinstance(given, list) else [given]):
            for item in value if isinstance(value, list) and step.for_each else [value]:
                shape = _reply_problem(step, entry(item))
                if shape:
                    where = (step_id,) + ((n,) if isinstance(given, list) else ())
                    problems.append(source.problem(where, shape))
    if problems:
        raise DefinitionError(problems)
    return script_of(loaded, source.data, complete=False)
