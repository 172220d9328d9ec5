"""`starter.py eval` and the REST API's evaluations: read the definition, its variants, the
dataset and the evaluators, all checked before anything is paid; start the evaluation run;
wait for it; report. The pieces: data, evaluators, cache, plan, run, report, output."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from temporalio.common import TypedSearchAttributes

from engine.client import EngineClient
from engine.connection import register_search_attributes
from engine.definition_files import load_file
from engine.evals.cache import (
    Keys,
    Reused,
    evaluator_key,
    find,
    python_sources,
    variant_key,
)
from engine.evals.data import pick, read_rows, row_variables
from engine.evals.evaluators import Evaluator, PythonEvaluator, WorkflowEvaluator, load_evaluators
from engine.evals.plan import SHARD_ROWS, Plan, Variant, default_output, plan, with_model
from engine.evals.report import report
from engine.evals.run import start, wait
from engine.settings import Settings
from engine.temporal_errors import Where, temporal_errors
from workflows.contracts import LoadedDefinition
from workflows.definition import Definition
from workflows.errors import UsageError, VariablesError, WorkflowError
from workflows.routing import route
from workflows.validation import has_type, typed_variables

BASE = "base"
"""The variant name of the definition under test itself."""


@dataclass
class EvalRequest:
    definition: str
    data: str
    evaluators: str | None = None
    maps: dict[str, str] = field(default_factory=dict)
    """Variable name to column name, where they differ."""
    variants: list[str] = field(default_factory=list)
    """`NAME=FILE`, `NAME:model=MODEL` or `NAME:var.X=VALUE` (repeatable per NAME)."""
    limit: int | None = None
    sample: int | None = None
    seed: int = 0
    concurrency: int = 10
    budget_usd: float | None = None
    execution_id: str | None = None
    shard_rows: int = SHARD_ROWS
    cache: bool = True
    """Reuse rows (and verdicts) earlier evaluations finished (engine/evals/cache.py)."""


@dataclass
class Prepared:
    """An evaluation checked and ready to start: its plan is built once the rows earlier
    evaluations finished are known."""

    execution_id: str
    keys: Keys
    variables: list[list[dict[str, Any]]]
    """Each row's run variables, per variant."""
    data: list[dict[str, Any]]
    """The dataset rows, as evaluators see them."""
    build: Callable[[Reused | None], Plan]
    cache: bool
    evaluators: list[Evaluator] = field(default_factory=list)

    def unknown_gate(self, names: Iterable[str]) -> str | None:
        """A `--fail-under` name that can name nothing, known before anything is paid: no
        evaluator has it, and no evaluator has an aggregator whose metrics could."""
        if any(getattr(e, "aggregate", None) for e in self.evaluators):
            return None  # an aggregator's metric names are known once it has run
        known = {e.name for e in self.evaluators}
        return next((name for name in names if name not in known), None)


Load = Callable[[str], LoadedDefinition]
"""Reads a definition file by name: the CLI's reads any, the REST API's only its own."""


def prepare(
    request: EvalRequest,
    settings: Settings,
    load: Load | None = None,
    place: Callable[[str], Path] = Path,
) -> Prepared:
    """The evaluation, checked: every problem is raised before anything starts. `place`
    turns the data and evaluator file names into paths (the REST API confines them)."""
    if request.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    load = load or (lambda name: load_file(name, settings))
    base = load(request.definition)
    loaded: list[tuple[str, LoadedDefinition, dict[str, Any]]] = [(BASE, base, {})]
    loaded += _variants(request, base, load)
    data = place(request.data)
    rows = pick(read_rows(data), request.limit, request.sample, request.seed)
    if not rows:
        raise UsageError(f"{request.data}: no rows to evaluate")
    variants = []
    for name, bundle, overrides in loaded:
        typed = row_variables(rows, str(data), bundle.definition, request.maps)
        variants.append(Variant(name, bundle, [{**row, **overrides} for row in typed]))
    evaluators: list[Evaluator] = []
    judges: dict[str, LoadedDefinition] = {}
    if request.evaluators:
        path = place(request.evaluators)
        evaluators = load_evaluators(path, *_python_functions(settings))
        for evaluator in evaluators:
            _check_output(evaluator, variants)
            if isinstance(evaluator, WorkflowEvaluator):
                file = str(Path(request.evaluators).parent / evaluator.definition)
                judges[evaluator.name] = load(file)
    name = base.definition.workflow.name
    sources = python_sources(
        settings.action_modules,
        [e.function for e in evaluators if isinstance(e, PythonEvaluator)],
    )
    keys = Keys(
        [variant_key(v.loaded, settings) for v in variants],
        [evaluator_key(e, judges.get(e.name), sources, settings) for e in evaluators],
    )
    meta = {
        "definition": request.definition,
        "dataset": request.data,
        "lines": [row.line for row in rows],
        "variants": [variant.name for variant in variants],
        "evaluators": [evaluator.model_dump(mode="json") for evaluator in evaluators],
        "outputs": [default_output(v.loaded.definition) for v in variants],
        "cache": keys.dump(),
    }

    dataset = [row.values for row in rows]

    def build(reused: Reused | None) -> Plan:
        return plan(
            variants,
            dataset,
            evaluators,
            judges,
            meta,
            request.concurrency,
            request.budget_usd,
            request.shard_rows,
            reused.steps if reused else None,
        )

    execution_id = request.execution_id or f"eval-{name}-{uuid.uuid4().hex[:8]}"
    variables = [[variant.rows[index] for variant in variants] for index in range(len(rows))]
    return Prepared(execution_id, keys, variables, dataset, build, request.cache, evaluators)


async def start_prepared(client: EngineClient, prepared: Prepared) -> str:
    """Find what earlier evaluations finished (unless the cache is refused), then start."""
    settings = client.settings
    keys: TypedSearchAttributes | None = prepared.keys.search_attributes()
    try:  # a server whose workers predate the attribute: declare it here
        with temporal_errors(Where(settings.address, settings.namespace)):
            await register_search_attributes(client.temporal, settings.namespace)
    except WorkflowError:  # not allowed to (a cloud namespace without it): nothing is reused
        keys = None
    reused = None
    if prepared.cache and keys is not None:
        reused = await find(client, prepared.keys, prepared.variables, prepared.data)
    return await start(client, prepared.build(reused), prepared.execution_id, keys)


async def evaluate(
    client: EngineClient,
    request: EvalRequest,
    note: Callable[[str], None] = print,
    progress: Callable[[str], None] | None = None,
    prepared: Prepared | None = None,
) -> dict[str, Any]:
    """Run the evaluation and report; `prepared`: the request already checked (the CLI
    checks it before connecting), so the files are not read twice."""
    prepared = prepared or prepare(request, client.settings)
    execution_id = await start_prepared(client, prepared)
    note(f"started evaluation {execution_id}: {client.ui_link(execution_id)}")
    return report(await wait(client, execution_id, progress))


async def resume(
    client: EngineClient, execution_id: str, progress: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """An evaluation run started before (running or ended): its report, once it has ended."""
    status = await client.status(execution_id)
    if status.workflow_name != "Evaluation":
        raise UsageError(f"run {execution_id!r} is not an evaluation ({status.workflow_name})")
    return report(await wait(client, execution_id, progress))


def _variants(
    request: EvalRequest, base: LoadedDefinition, load: Load
) -> list[tuple[str, LoadedDefinition, dict[str, Any]]]:
    found: dict[str, tuple[LoadedDefinition, dict[str, Any]]] = {}
    for given in request.variants:
        name, colon, change = given.partition(":")
        if not colon:
            name, equals, file = given.partition("=")
            if not equals or not name or name in found or name == BASE:
                raise UsageError(f"--variant {given!r}: write NAME=FILE or NAME:model=MODEL")
            found[name] = (load(file), {})
            continue
        key, equals, value = change.partition("=")
        bundle, overrides = found.get(name, (base, {}))
        if not equals or not name or name == BASE:
            raise UsageError(f"--variant {given!r}: write NAME:model=MODEL or NAME:var.X=VALUE")
        if key == "model":
            try:
                route(value)
            except ValueError as exc:
                raise UsageError(f"--variant {given!r}: {exc}") from None
            definition = with_model(bundle.definition, value)
            bundle = bundle.model_copy(update={"definition": definition})
        elif key.startswith("var.") and key[4:] in bundle.definition.workflow.variables:
            overrides = {**overrides, **_fixed(given, bundle.definition, key[4:], value)}
        else:
            known = ", ".join(f"var.{v}" for v in bundle.definition.workflow.variables)
            raise UsageError(f"--variant {given!r}: {key!r} is not model or one of: {known}")
        found[name] = (bundle, overrides)
    return [(name, bundle, overrides) for name, (bundle, overrides) in found.items()]


def _fixed(given: str, definition: Definition, name: str, text: str) -> dict[str, Any]:
    """A variant's `var.NAME=VALUE`, read as `--var` reads it and checked against the
    declared type, so a wrong one is one line before any row runs."""
    try:
        value = typed_variables(definition, {name: text})[name]
    except VariablesError as exc:
        raise UsageError(f"--variant {given!r}: {exc}") from None
    wanted = definition.workflow.variables[name].type
    if wanted and not has_type(value, wanted):
        raise UsageError(f"--variant {given!r}: {name} must be of type {wanted}, got {value!r}")
    return {name: value}


def _check_output(evaluator: Evaluator, variants: list[Variant]) -> None:
    for variant in variants:
        workflow = variant.loaded.definition.workflow
        names = {n for step in workflow.steps for n in step.output_names()} | set(workflow.outputs)
        if evaluator.output is not None and evaluator.output not in names:
            raise UsageError(
                f"evaluator {evaluator.name!r}: no output {evaluator.output!r} in variant "
                f"{variant.name!r} (its outputs: {', '.join(sorted(names)) or 'none'})"
            )


def _python_functions(settings: Settings) -> tuple[set[str], set[str]]:
    """The Python evaluators and aggregators of ACTION_MODULES, by the names an evaluator
    file gives them."""
    from activities.registry import (
        AGGREGATOR_PREFIX,
        EVALUATOR_PREFIX,
        load_custom_actions,
        marked_functions,
    )

    actions = load_custom_actions(settings.action_modules)
    return marked_functions(actions, EVALUATOR_PREFIX), marked_functions(actions, AGGREGATOR_PREFIX)
