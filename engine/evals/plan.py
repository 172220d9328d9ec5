"""An evaluation compiled to what the interpreter already runs: one evaluation run whose
`workflow` steps are shards, each shard a child run whose steps run the definition under
test once per row and variant (child runs too), and the `llm_judge` and `workflow`
evaluators after them. So it is durable, paced, budgeted and visible in the UI like any run,
and no history holds more than one shard's rows (SHARD_ROWS).

Rows travel as the runs' variables and reach each row run through templates written here
(`{{ rows[3]['vars'][0]['text'] }}`): a row's own text is data, never rendered."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from activities.registry import AGGREGATOR_PREFIX, EVALUATOR_PREFIX
from engine.evals.evaluators import IN_RUN, Evaluator, LlmJudge, PythonEvaluator, WorkflowEvaluator
from workflows.contracts import LoadedDefinition
from workflows.definition import Definition, LlmCallStep

SHARD_ROWS = 250
"""Rows per shard run: its history holds their outputs (and judges' replies), far below
Temporal's 51,200 events and 50 MiB, while the evaluation run holds only shard results."""
EVALUATION = "Evaluation"
SHARD = "EvaluationShard"
SHARD_FILE = "evaluation-shard-{size}.yaml"
CACHED_SHARD_FILE = "evaluation-shard{number}-reusing.yaml"
"""A shard some of whose steps an earlier evaluation finished: its own definition."""


@dataclass
class Variant:
    name: str
    loaded: LoadedDefinition
    rows: list[dict[str, Any]]
    """Each row's run variables for this variant's definition."""


@dataclass
class Plan:
    loaded: LoadedDefinition
    variables: dict[str, Any]


def row_step(index: int, variant: int) -> str:
    return f"row{index}_v{variant}"


def judge_step(index: int, variant: int, evaluator: int) -> str:
    return f"row{index}_v{variant}_e{evaluator}"


def shard_step(shard: int) -> str:
    return f"shard{shard}"


def aggregate_step(variant: int, evaluator: int) -> str:
    """The evaluation run's step that runs an evaluator's aggregator over a variant's rows."""
    return f"aggregate_v{variant}_e{evaluator}"


def verdicts_output(variant: int, evaluator: int) -> str:
    """The shard run's output listing an aggregated evaluator's verdicts on its rows."""
    return f"verdicts_v{variant}_e{evaluator}"


def aggregated(evaluators: list[Evaluator]) -> list[tuple[int, str]]:
    """The in-run evaluators that name an aggregator: (index, aggregator)."""
    return [
        (number, evaluator.aggregate)
        for number, evaluator in enumerate(evaluators)
        if isinstance(evaluator, IN_RUN) and evaluator.aggregate
    ]


def variant_file(variant: int) -> str:
    return f"evaluation-variant-{variant}.yaml"


def evaluator_file(evaluator: int) -> str:
    return f"evaluation-evaluator-{evaluator}.yaml"


def with_model(definition: Definition, model: str) -> Definition:
    """The definition with every model call (and its defaults) on `model`."""
    spec = definition.workflow
    steps = [
        step.model_copy(update={"model": model, "fallback_models": []})
        if isinstance(step, LlmCallStep)
        else step
        for step in spec.steps
    ]
    defaults = spec.defaults.model_copy(update={"model": model})
    workflow = spec.model_copy(update={"steps": steps, "defaults": defaults})
    return definition.model_copy(update={"workflow": workflow})


def plan(
    variants: list[Variant],
    raw_rows: list[dict[str, Any]],
    evaluators: list[Evaluator],
    judges: dict[str, LoadedDefinition],
    meta: dict[str, Any],
    concurrency: int,
    budget_usd: float | None = None,
    shard_rows: int = SHARD_ROWS,
    reused: dict[tuple[int, int, int | None], dict[str, Any]] | None = None,
) -> Plan:
    """The evaluation run's definition, children and variables. `judges`: the loaded
    definitions of `workflow` evaluators, by evaluator name. `reused`: what earlier
    evaluations finished (engine/evals/cache.py), by (row, variant, evaluator or None)."""
    children: dict[str, Definition] = {}
    for number, variant in enumerate(variants):
        children.update(variant.loaded.children)
        children[variant_file(number)] = variant.loaded.definition
    for number, evaluator in enumerate(evaluators):
        if isinstance(evaluator, WorkflowEvaluator):
            children.update(judges[evaluator.name].children)
            children[evaluator_file(number)] = judges[evaluator.name].definition
    rows: list[dict[str, Any]] = [
        {"row": raw, "vars": [variant.rows[index] for variant in variants]}
        for index, raw in enumerate(raw_rows)
    ]
    for (index, number, judged), found in (reused or {}).items():
        place = index % shard_rows
        step_id = row_step(place, number) if judged is None else judge_step(place, number, judged)
        rows[index].setdefault("cached", {})[step_id] = found
    shards = [rows[start : start + shard_rows] for start in range(0, len(rows), shard_rows)]
    outputs = [default_output(v.loaded.definition) for v in variants]
    names = [list(v.loaded.definition.workflow.variables) for v in variants]
    files = []
    for number, shard_of in enumerate(shards):
        reusing = any("cached" in row for row in shard_of)
        file = (
            CACHED_SHARD_FILE.format(number=number)
            if reusing
            else SHARD_FILE.format(size=len(shard_of))
        )
        files.append(file)
        if file not in children:
            built = _shard(len(shard_of), names, evaluators, outputs, concurrency, shard_of)
            children[file] = Definition.model_validate(built)
    parent: dict[str, Any] = {
        "name": EVALUATION,
        "variables": {
            "shards": {"type": "array"},
            "rubrics": {"type": "array", "default": []},
            "evaluation": {"type": "object", "default": {}},
        },
        "steps": [
            {
                "id": shard_step(number),
                "type": "workflow",
                "definition": files[number],
                "variables": {
                    "rows": f"{{{{ shards[{number}] }}}}",
                    "rubrics": "{{ rubrics }}",
                    "first": number * shard_rows,
                },
                "depends_on": [shard_step(number - 1)] if number else [],
                "on_error": "continue",
            }
            for number, shard in enumerate(shards)
        ],
    }
    parent["steps"] += _aggregates(evaluators, len(variants), len(shards))
    if budget_usd is not None:
        parent["budget"] = {"max_cost_usd": budget_usd, "on_exceed": "fail"}
    rubrics = [e.rubric if isinstance(e, LlmJudge) else "" for e in evaluators]
    return Plan(
        LoadedDefinition(
            definition=Definition.model_validate({"workflow": parent}), children=children
        ),
        {"shards": shards, "rubrics": rubrics, "evaluation": meta},
    )


def _aggregates(evaluators: list[Evaluator], variants: int, shards: int) -> list[dict[str, Any]]:
    """After the last shard, each aggregator once per variant over every shard's verdicts
    (a shard that failed gives none); its failure fails no other step."""
    steps = []
    for number, function in aggregated(evaluators):
        for variant in range(variants):
            name = verdicts_output(variant, number)
            found = " + ".join(
                f"((steps.{shard_step(shard)}.outputs or {{}}).get({name!r}) or [])"
                for shard in range(shards)
            )
            steps.append(
                {
                    "id": aggregate_step(variant, number),
                    "type": "action",
                    "action": AGGREGATOR_PREFIX + function,
                    "params": {"verdicts": f"{{{{ {found} }}}}"},
                    "depends_on": [shard_step(shards - 1)],
                    "on_error": "continue",
                    "outputs": [{"name": f"metrics_v{variant}_e{number}", "type": "object"}],
                }
            )
    return steps


def default_output(definition: Definition) -> str | None:
    """The output an evaluator judges when it names none: the definition's only workflow
    output, else the last step's only output; None: all outputs, as an object."""
    named = list(definition.workflow.outputs)
    if len(named) == 1:
        return named[0]
    if named:
        return None
    last = definition.workflow.steps[-1].output_names()
    return last[0] if len(last) == 1 else None


def _shard(
    size: int,
    names: list[list[str]],
    evaluators: list[Evaluator],
    outputs: list[str | None],
    concurrency: int,
    rows: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Row runs in `concurrency` lanes (each waits for the one `concurrency` places before
    it), each followed by its in-run evaluators; a failure stops nothing. A step an earlier
    evaluation finished (in the row's `cached`) is a `set` step of what it returned."""
    steps: list[dict[str, Any]] = []
    order = [(index, variant) for index in range(size) for variant in range(len(names))]
    for place, (index, variant) in enumerate(order):
        run_id = row_step(index, variant)
        before = order[place - concurrency] if place >= concurrency else None
        cached = rows[index].get("cached", {}) if rows else {}
        after = [row_step(*before)] if before else []
        if run_id in cached:
            steps.append(_reuse(index, run_id, cached[run_id], after))
        else:
            steps.append(
                {
                    "id": run_id,
                    "type": "workflow",
                    "definition": variant_file(variant),
                    "variables": {
                        name: f"{{{{ rows[{index}]['vars'][{variant}][{name!r}] }}}}"
                        for name in names[variant]
                    },
                    "depends_on": after,
                    "on_error": "continue",
                }
            )
        for number, evaluator in enumerate(evaluators):
            judge_id = judge_step(index, variant, number)
            if judge_id in cached:
                steps.append(_reuse(index, judge_id, cached[judge_id], [run_id]))
            elif isinstance(evaluator, IN_RUN):
                output = evaluator.output or outputs[variant]
                steps.append(_judge(evaluator, number, index, variant, run_id, output))
    workflow: dict[str, Any] = {
        "name": SHARD,
        "variables": {
            "rows": {"type": "array"},
            "rubrics": {"type": "array", "default": []},
            "first": {"type": "integer", "default": 0},
        },
        "steps": steps,
    }
    verdicts = {  # what aggregators need: at most the verdicts on this shard's rows
        verdicts_output(variant, number): "{{ "
        + "[" + ", ".join(f"steps.{judge_step(index, variant, number)}" for index in range(size))
        + "] | selectattr('status', 'equalto', 'completed') | map(attribute="
        + ("'outputs.result'" if isinstance(evaluators[number], PythonEvaluator) else "'outputs'")
        + ") | list }}"
        for number, _ in aggregated(evaluators)
        for variant in range(len(names))
    }  # fmt: skip
    if verdicts:
        workflow["outputs"] = verdicts
    return {"workflow": workflow}


def _reuse(index: int, step_id: str, found: dict[str, Any], after: list[str]) -> dict[str, Any]:
    """A step that returns what an earlier evaluation's step returned, read from the row."""
    source = f"rows[{index}]['cached'][{step_id!r}]['outputs']"
    return {
        "id": step_id,
        "type": "set",
        "values": {name: f"{{{{ {source}[{name!r}] }}}}" for name in found["outputs"]},
        "depends_on": after,
    }


def _judge(
    evaluator: Evaluator, number: int, index: int, variant: int, run_id: str, output: str | None
) -> dict[str, Any]:
    judged = f"steps.{run_id}.outputs" + (f"[{output!r}]" if output else "")
    step: dict[str, Any] = {
        "id": judge_step(index, variant, number),
        "depends_on": [run_id],
        "when": f"{{{{ steps.{run_id}.status == 'completed' }}}}",
        "on_error": "continue",
    }
    if isinstance(evaluator, PythonEvaluator):
        return step | {
            "type": "action",
            "action": EVALUATOR_PREFIX + evaluator.function,
            "params": {
                "row": f"{{{{ rows[{index}]['row'] }}}}",
                "outputs": f"{{{{ steps.{run_id}.outputs }}}}",
            },
            "outputs": [{"name": "result", "type": "object"}],
        }
    if isinstance(evaluator, WorkflowEvaluator):
        return step | {
            "type": "workflow",
            "definition": evaluator_file(number),
            "variables": {
                "row": f"{{{{ rows[{index}]['row'] }}}}",
                "outputs": f"{{{{ steps.{run_id}.outputs }}}}",
            },
        }
    assert isinstance(evaluator, LlmJudge)
    low, high = evaluator.scale
    return step | {
        "type": "llm_call",
        "model": evaluator.model,
        "temperature": 0,
        "max_reasks": evaluator.max_reasks,
        "system": (
            f"You grade an output against a rubric, on a scale from {low} (worst) to "
            f"{high} (best). Give the score and your reasons."
        ),
        "prompt": (
            f"Rubric:\n{{{{ rubrics[{number}] }}}}\n\n"
            f"Input (a dataset row, JSON):\n{{{{ rows[{index}]['row'] | tojson }}}}\n\n"
            f"Output to grade (JSON):\n{{{{ {judged} | tojson }}}}"
        ),
        "outputs": [
            {"name": "score", "type": "number", "schema": {"type": "number", "minimum": low,
                                                          "maximum": high}},
            {"name": "reasons", "type": "string"},
        ],
    }  # fmt: skip
