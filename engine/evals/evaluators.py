"""Evaluator files (`--evaluators FILE`: a list under `evaluators:`), checked like
definitions (every problem located), and the comparisons that score one row's outputs:
`exact_match`, `contains`, `regex`, `json_match`, `numeric`. `llm_judge` and `workflow`
evaluators run inside the evaluation run as its steps (engine/evals/plan.py); their scores
are read here from what those steps returned."""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from engine.testing.files import model_problems, read_yaml
from workflows.errors import DefinitionError, Problem, WorkflowError
from workflows.source import Source
from workflows.suggest import suggest
from workflows.templates import render

NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


class _Evaluator(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=NAME, description="The metric's name in reports and gates.")
    output: str | None = Field(
        default=None, description="The workflow output judged (default: the only one)."
    )


class _Compares(_Evaluator):
    expected: Any = Field(description='A template over the dataset row: "{{ row.label }}".')


class ExactMatch(_Compares):
    type: Literal["exact_match"]
    case_sensitive: bool = True


class Contains(_Compares):
    type: Literal["contains"]
    case_sensitive: bool = True


class Regex(_Compares):
    type: Literal["regex"]
    """`expected` renders to the pattern the output's text must match (re.search)."""


class JsonMatch(_Compares):
    type: Literal["json_match"]
    fields: list[str] = Field(default=[], description="Fields compared (default: all).")


class Numeric(_Compares):
    type: Literal["numeric"]
    tolerance: float = Field(default=0.0, ge=0)


class _InRun(_Evaluator):
    aggregate: str | None = Field(
        default=None,
        pattern=NAME,
        description="A function marked @aggregator(NAME) in ACTION_MODULES: it gets this "
        "evaluator's outputs on every row, per output name, and returns metrics.",
    )


class LlmJudge(_InRun):
    type: Literal["llm_judge"]
    model: str
    rubric: str = Field(min_length=1, description="What a good output is; not a template.")
    scale: tuple[int, int] = (1, 5)
    pass_at: float | None = Field(default=None, description="A score at or above passes.")
    max_reasks: int = Field(default=2, ge=0, le=5)


class WorkflowEvaluator(_InRun):
    type: Literal["workflow"]
    definition: str = Field(
        description="A definition, relative to the evaluator file, with variables `row` and "
        "`outputs`; its output `score` (and `passed`, if any) is kept; without `score` its "
        "rows are not scored (an `aggregate` gives its metrics)."
    )


class PythonEvaluator(_InRun):
    type: Literal["python"]
    function: str = Field(
        pattern=NAME, description="A function marked @evaluator(NAME) in ACTION_MODULES."
    )


Evaluator = Annotated[
    ExactMatch
    | Contains
    | Regex
    | JsonMatch
    | Numeric
    | LlmJudge
    | WorkflowEvaluator
    | PythonEvaluator,
    Field(discriminator="type"),
]
IN_RUN = (LlmJudge, WorkflowEvaluator, PythonEvaluator)
"""Evaluators that run as steps of the evaluation run (they call models or definitions)."""


class EvaluatorFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    evaluators: list[Evaluator] = Field(min_length=1)


def load_evaluators(
    path: Path,
    functions: Collection[str] | None = None,
    aggregators: Collection[str] | None = None,
) -> list[Evaluator]:
    """The evaluators of a file; DefinitionError lists every problem as FILE:LINE:COL.
    `functions`, `aggregators`: the Python evaluators and aggregators the worker has (None:
    not checked)."""
    source = read_yaml(path, "an evaluator file")
    if source.problems:
        raise DefinitionError(list(source.problems))
    problems = _unknown_types(source)
    if problems:
        raise DefinitionError(problems)
    try:
        evaluators = EvaluatorFile.model_validate(source.data).evaluators
    except ValidationError as exc:
        raise DefinitionError(model_problems(source, exc)) from None
    seen: set[str] = set()
    problems = []
    for index, evaluator in enumerate(evaluators):
        if evaluator.name in seen:
            at = ("evaluators", index, "name")
            problems.append(source.problem(at, f"a second evaluator named {evaluator.name!r}"))
        seen.add(evaluator.name)
        if (
            isinstance(evaluator, WorkflowEvaluator)
            and not (path.parent / evaluator.definition).is_file()
        ):
            at = ("evaluators", index, "definition")
            problems.append(source.problem(at, f"no definition file {evaluator.definition!r}"))
        if (
            isinstance(evaluator, PythonEvaluator)
            and functions is not None
            and evaluator.function not in functions
        ):
            at = ("evaluators", index, "function")
            known = ", ".join(sorted(functions)) or "none: mark one @evaluator in ACTION_MODULES"
            near = suggest(evaluator.function, set(functions))
            message = f"no Python evaluator {evaluator.function!r}{near} (there are: {known})"
            problems.append(source.problem(at, message))
        aggregate = getattr(evaluator, "aggregate", None)
        if aggregate is not None and aggregators is not None and aggregate not in aggregators:
            at = ("evaluators", index, "aggregate")
            known = ", ".join(sorted(aggregators)) or "none: mark one @aggregator in ACTION_MODULES"
            near = suggest(aggregate, set(aggregators))
            message = f"no aggregator {aggregate!r}{near} (there are: {known})"
            problems.append(source.problem(at, message))
    if problems:
        raise DefinitionError(problems)
    return evaluators


TYPES = {
    get_args(kind.model_fields["type"].annotation)[0]
    for kind in (
        ExactMatch,
        Contains,
        Regex,
        JsonMatch,
        Numeric,
        LlmJudge,
        WorkflowEvaluator,
        PythonEvaluator,
    )  # fmt: skip
}


def _unknown_types(source: Source) -> list[Problem]:
    """An unknown `type` named with its line and the nearest known type."""
    listed = source.data.get("evaluators") if isinstance(source.data, dict) else None
    problems = []
    for index, given in enumerate(listed if isinstance(listed, list) else []):
        kind = given.get("type") if isinstance(given, dict) else None
        if isinstance(kind, str) and kind not in TYPES:
            known = ", ".join(sorted(TYPES))
            message = f"unknown evaluator type {kind!r}{suggest(kind, TYPES)} (the types: {known})"
            problems.append(source.problem(("evaluators", index, "type"), message))
    return problems


@dataclass
class Score:
    value: float | None
    """1.0/0.0 for pass/fail comparisons, the judge's number for judges; None: not scored."""
    passed: bool | None = None
    detail: str | None = None
    """What the judge said, or what the comparison saw."""
    error: str | None = None
    """Why the row could not be scored (the evaluator failed, not the output)."""


def compare(evaluator: Evaluator, actual: Any, row: dict[str, Any]) -> Score:
    """Score one output against the row; a bad `expected` template is the row's error."""
    assert not isinstance(evaluator, IN_RUN)
    try:
        expected = render(evaluator.expected, {"row": row})
    except WorkflowError as exc:
        return Score(None, error=f"expected: {exc}")
    if isinstance(evaluator, ExactMatch | Contains):
        got, want = _text(actual), _text(expected)
        if not evaluator.case_sensitive:
            got, want = got.casefold(), want.casefold()
        ok = got == want if isinstance(evaluator, ExactMatch) else want in got
    elif isinstance(evaluator, Regex):
        try:
            ok = re.search(str(expected), _text(actual)) is not None
        except re.error as exc:
            return Score(None, error=f"expected is not a regular expression: {exc}")
    elif isinstance(evaluator, JsonMatch):
        return _json_match(evaluator, actual, expected)
    else:
        try:
            ok = abs(float(actual) - float(expected)) <= evaluator.tolerance
        except (TypeError, ValueError):
            return Score(0.0, False, f"not a number: {_text(actual)[:80]!r}")
    detail = None if ok else f"expected {_text(expected)[:80]!r}"
    return Score(1.0 if ok else 0.0, ok, detail)


def _json_match(evaluator: JsonMatch, actual: Any, expected: Any) -> Score:
    """The share of the expected object's fields the output has equal."""
    if isinstance(actual, str):
        try:
            actual = json.loads(actual)
        except json.JSONDecodeError:
            return Score(0.0, False, "the output is not JSON")
    if not isinstance(expected, dict) or not isinstance(actual, dict):
        return Score(None, error="json_match compares objects: expected and output")
    fields = evaluator.fields or list(expected)
    wrong = [f for f in fields if _text(actual.get(f)) != _text(expected.get(f))]
    share = 1 - len(wrong) / len(fields) if fields else 1.0
    return Score(share, not wrong, f"differs in: {', '.join(wrong)}" if wrong else None)


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else json.dumps(value, sort_keys=True)
