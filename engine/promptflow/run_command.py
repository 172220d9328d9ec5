"""A Prompt flow run (engine/promptflow/run_spec.py) as the `starter.py eval` command that
does the same here:

- a batch run: `eval DEFINITION --data FILE`, each `${data.col}` feeding a differently
  named input becoming `--map input=col` (same names need none: `eval` matches by name);
- an evaluation run (`run:` names the batch run it evaluates): the same command for the
  evaluated run, plus `--evaluators FILE` naming a `workflow` evaluator that runs the
  evaluation flow on each row, its inputs templates over the evaluator's variables `row`
  and `outputs` (`${data.answer}` is `{{ row.answer }}`, `${run.outputs.category}` is
  `{{ outputs.category }}`). Prompt flow runs the two one after the other; `eval` runs
  both in one durable evaluation run.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict

from engine.promptflow.run_spec import ColumnValue, RunSpec, VariantChoice

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class EvaluationFlow(BaseModel):
    """What an evaluation run becomes: a `workflow` evaluator running the evaluation flow on
    every row, its inputs given as templates over the evaluator's `row` and `outputs`."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str
    """The evaluator's name: the evaluation flow's folder, as an identifier."""
    flow: Path
    variables: dict[str, str]
    evaluators_file: str
    """The file `--evaluators` names, which the importer writes."""


@dataclass(frozen=True)
class EvalCommand:
    argv: list[str]
    """starter.py's arguments: `eval DEFINITION --data FILE ...`."""
    evaluation: EvaluationFlow | None = None
    environment: dict[str, str] = field(default_factory=dict)
    """The run's environment_variables: Python tools read them on the worker, so they are
    set for the command, whose local stack starts its worker with them."""

    def shell(self, program: str = "python starter.py") -> str:
        """The command as one line a reader can paste into a POSIX shell."""
        env = [f"{key}={shlex.quote(value)}" for key, value in self.environment.items()]
        return " ".join([*env, program, shlex.join(self.argv)])


Definitions = Callable[[Path, VariantChoice | None], str]
"""The definition the importer writes for a flow directory (and variant), as the printed
command names it."""


def eval_command(
    spec: RunSpec,
    definition: Definitions,
    cwd: Path | None = None,
    evaluators_file: str | None = None,
) -> EvalCommand:
    """The `starter.py eval` command that does what the run does. Paths are shown relative
    to `cwd`; `evaluators_file` is where the importer writes an evaluation run's evaluator
    (default: NAME.evaluators.yaml, NAME being the evaluation flow's folder)."""
    here = (cwd or Path.cwd()).absolute()
    target = spec.run or spec  # the run whose flow is under test
    data = spec.data or target.data
    assert data is not None  # _checked: a run has data, or takes its evaluated run's
    argv = ["eval", definition(target.flow, target.variant), "--data", _shown(data, here)]
    for variable, value in target.column_mapping.items():
        if value.source == "data" and value.name != variable:
            argv += ["--map", f"{variable}={value.name}"]
    evaluation = None
    if spec.run is not None:
        name = _identifier(spec.flow.name)
        variables = {k: _template(v, spec.run) for k, v in spec.column_mapping.items()}
        file = evaluators_file or f"{name}.evaluators.yaml"
        evaluation = EvaluationFlow(
            name=name, flow=spec.flow, variables=variables, evaluators_file=file
        )
        argv += ["--evaluators", file]
    if spec.name:
        argv += ["--id", spec.name]
    environment = {**target.environment_variables, **spec.environment_variables}
    return EvalCommand(argv, evaluation, environment)


def evaluators_yaml(
    evaluation: EvaluationFlow, row_definition: str, aggregate: str | None = None
) -> str:
    """The evaluators file: one `workflow` evaluator running `row_definition` (the file
    `row_definition_yaml` gives, relative to the evaluators file) on every row, and the
    evaluation flow's aggregation nodes (`aggregate`) once over them all."""
    entry = {"name": evaluation.name, "type": "workflow", "definition": row_definition}
    if aggregate:
        entry["aggregate"] = aggregate
    comment = f"# The evaluation flow {evaluation.flow.name}, per row" + (
        ", and its aggregation nodes over every row." if aggregate else "."
    )
    return _dump({"evaluators": [entry]}, comment)


def row_definition_yaml(
    evaluation: EvaluationFlow, flow_definition: str, outputs: list[str], score: str | None = None
) -> str:
    """The definition a `workflow` evaluator runs on each row: the evaluation flow's own
    definition (`flow_definition`, relative to this one) as a child run, its inputs mapped
    from `row` and `outputs`; its outputs passed on (what an aggregator reads), and `score`,
    a template over them, when the flow gives one per row."""
    name = "".join(part.capitalize() for part in evaluation.name.split("_")) + "Row"
    document = {
        "workflow": {
            "name": name,
            "description": f"The evaluation flow {evaluation.flow.name} on one row.",
            "variables": {
                "row": {"type": "object", "required": True},
                "outputs": {"type": "object", "required": True},
            },
            "steps": [
                {
                    "id": "evaluate",
                    "type": "workflow",
                    "definition": flow_definition,
                    "variables": evaluation.variables,
                    "outputs": [{"name": output} for output in outputs],
                }
            ],
            "outputs": {
                **{output: f"{{{{ {output} }}}}" for output in outputs},
                **({"score": score} if score else {}),
            },
        }
    }
    return _dump(document, "# Written by `starter.py import promptflow`.")


def _template(value: ColumnValue, evaluated: RunSpec) -> str:
    """A column mapping's value as a template over the `workflow` evaluator's variables."""
    if value.source == "run.outputs":
        return _field("outputs", value.name)
    if value.source == "run.inputs":  # the column that fed that input, as the row has it
        fed = evaluated.column_mapping.get(value.name)
        return _field("row", fed.name if fed is not None else value.name)
    if value.source == "data":
        return _field("row", value.name)
    return "{{ " + json.dumps(value.name) + " }}"  # a text, never a template of its own


def _field(variable: str, name: str) -> str:
    return (
        f"{{{{ {variable}.{name} }}}}"
        if _IDENTIFIER.match(name)
        else f"{{{{ {variable}[{json.dumps(name)}] }}}}"
    )


def _shown(path: Path, cwd: Path) -> str:
    return os.path.relpath(path, cwd)


def _identifier(name: str) -> str:
    cleaned = re.sub(r"\W", "_", name).strip("_") or "evaluation"
    return f"_{cleaned}" if cleaned[0].isdigit() else cleaned


def _dump(document: Mapping[str, Any], comment: str) -> str:
    body = yaml.safe_dump(dict(document), sort_keys=False, allow_unicode=True, width=100)
    return f"{comment}\n{body}"
