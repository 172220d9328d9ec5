"""Reuse across evaluations: a row's run that an earlier evaluation finished with the same
definition (as loaded, its model and child definitions included), the same variables and the
same providers answering, is copied into the new evaluation instead of paid for again; so is
an in-run evaluator's verdict on it, when the evaluator is the same too. So re-running an
evaluation after changing one evaluator pays for that evaluator only.

No store of our own: earlier evaluation runs are found through Temporal's visibility (the
search attribute EVAL_KEYS holds their definitions' digests), what they were asked is read
from their first history event, and what their rows did from their shard runs' results.
What is reused travels in the new evaluation's variables, so its report needs nothing else."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from temporalio.client import WorkflowExecutionStatus
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from activities.definitions import called_models
from activities.endpoints import is_configured
from engine.evals.evaluators import (
    IN_RUN,
    Evaluator,
    LlmJudge,
    PythonEvaluator,
    WorkflowEvaluator,
)
from engine.evals.plan import judge_step, row_step, shard_step
from engine.settings import Settings
from workflows import search_attributes
from workflows.contracts import LoadedDefinition, RunInput, RunResult, StepResult
from workflows.definition import ActionStep
from workflows.providers import MOCK
from workflows.routing import route

LOOKBACK = 20
"""Earlier evaluations read at most, newest first."""


def digest(*parts: Any) -> str:
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def definition_key(
    loaded: LoadedDefinition, answering: Sequence[str], code: Mapping[str, str] | None = None
) -> str:
    """A variant's digest: its definition and children as loaded (so a comment does not
    miss the cache, a changed model or prompt does), who answers its model calls, and the
    code of the custom actions it calls (`code`: digests by action name)."""
    children = {name: child.model_dump(mode="json") for name, child in loaded.children.items()}
    definition = loaded.definition.model_dump(mode="json")
    if not code:  # a definition without custom actions keeps the key it always had
        return digest("definition", definition, children, sorted(answering))
    return digest("definition", definition, children, sorted(answering), dict(code))


def variant_key(loaded: LoadedDefinition, settings: Settings) -> str:
    """`definition_key` as this machine runs the bundle: its answering providers, and the
    text of the ACTION_MODULES modules that define the custom actions it calls (a Prompt
    flow's tools), so changing a tool's code runs its rows again."""
    return definition_key(
        loaded,
        answering(loaded, settings),
        action_sources(settings.action_modules, called_actions(loaded)),
    )


def called_actions(loaded: LoadedDefinition) -> list[str]:
    definitions = [loaded.definition, *loaded.children.values()]
    steps = [step for definition in definitions for step in definition.workflow.steps]
    return sorted({step.action for step in steps if isinstance(step, ActionStep)})


def answering(loaded: LoadedDefinition, settings: Settings) -> list[str]:
    """Who answers the bundle's model calls, as this machine's settings say: a provider's
    base URL, or the offline mock where no key is set (a mock's reply is never reused as a
    model's, nor one server's as another's). Never a key."""
    return answering_models(called_models(loaded), settings)


def answering_models(models: Iterable[str], settings: Settings) -> list[str]:
    found = []
    for provider in sorted({route(name).provider for name in models}):
        endpoint = settings.endpoints.get(provider)
        if provider != MOCK and not is_configured(provider, endpoint):
            found.append(f"{provider}: {MOCK}")
        else:
            found.append(f"{provider}: {endpoint.base_url if endpoint else None}")
    return found


def evaluator_key(
    evaluator: Evaluator,
    judge: LoadedDefinition | None,
    sources: dict[str, str],
    settings: Settings,
) -> str | None:
    """An in-run evaluator's digest (its settings but its aggregator, which runs afresh
    every time; who answers its model calls, as for a row's run; its evaluation definition
    or Python module's text); None for the comparisons, which cost nothing and are not kept."""
    if not isinstance(evaluator, IN_RUN):
        return None
    extra: Any = None
    if isinstance(evaluator, WorkflowEvaluator) and judge is not None:
        extra = variant_key(judge, settings)
    elif isinstance(evaluator, LlmJudge):
        extra = answering_models([evaluator.model], settings)
    elif isinstance(evaluator, PythonEvaluator):
        extra = sources.get(evaluator.function)
    fields = evaluator.model_dump(mode="json", exclude={"name", "aggregate"})
    return digest("evaluator", fields, extra)


def row_key(definition: str, variables: dict[str, Any]) -> str:
    return digest("row", definition, variables)


def row_data_key(row: Any) -> str:
    """A dataset row as evaluators see it (its labels and references too)."""
    return digest("data", row)


def python_sources(module_names: Iterable[str], functions: Iterable[str]) -> dict[str, str]:
    """The text of the module defining each named Python evaluator (empty when unreadable:
    then the key still changes with the evaluator's settings)."""
    from activities.registry import EVALUATOR_PREFIX

    found = action_sources(module_names, [EVALUATOR_PREFIX + name for name in functions])
    return {name.removeprefix(EVALUATOR_PREFIX): text for name, text in found.items()}


def action_sources(module_names: Iterable[str], actions: Iterable[str]) -> dict[str, str]:
    """The digest of the module text defining each named custom action (built-in actions
    have none; empty when unreadable)."""
    from activities.registry import action_modules

    wanted = set(actions)
    found: dict[str, str] = {}
    for name, module in action_modules(module_names).items():
        if name in wanted:
            try:
                found[name] = digest(inspect.getsource(module))
            except (OSError, TypeError):
                found[name] = ""
    return found


@dataclass
class Keys:
    """What an evaluation stores (in its `evaluation` variable) for later ones to match."""

    variants: list[str]
    evaluators: list[str | None]

    def dump(self) -> dict[str, Any]:
        return {"variants": self.variants, "evaluators": self.evaluators}

    def search_attributes(self) -> TypedSearchAttributes:
        keys = sorted(set(self.variants))
        return TypedSearchAttributes([SearchAttributePair(search_attributes.EVAL_KEYS, keys)])


Place = tuple[int, int, int | None]
"""A row of the new evaluation (its index in the dataset), a variant, and an in-run
evaluator (None: the row's own run)."""


@dataclass
class Reused:
    """Steps earlier evaluations finished, by the new evaluation's place for them."""

    steps: dict[Place, dict[str, Any]] = field(default_factory=dict)

    @property
    def runs(self) -> int:
        """How many of them are rows' runs (the rest are verdicts)."""
        return sum(evaluator is None for _, _, evaluator in self.steps)


Wanted = dict[tuple[str, str], list[tuple[int, int]]]
"""(variant key, row key) to the new evaluation's (row, variant) places that want it."""


@dataclass
class _Hit:
    index: int
    variant: int
    place: int
    """The row's place in the earlier evaluation's shard."""
    their_variant: int
    row: dict[str, Any]


async def find(
    client: Any, keys: Keys, rows: list[list[dict[str, Any]]], data: list[dict[str, Any]]
) -> Reused:
    """Earlier finished steps for these rows (each row's variables per variant; `data`: the
    dataset rows themselves). `client` is the EngineClient. Rows come with the verdicts given
    on them in the same evaluation, so a verdict always judged the outputs it is copied
    with; and only on the same dataset row, since an evaluator sees the whole row (a label
    corrected since is judged again)."""
    wanted, seen = await asyncio.to_thread(_wanted, keys, rows, data)  # CPU: off the loop
    reused = Reused()
    temporal = client.temporal
    names = ", ".join(f"'{key}'" for key in sorted(set(keys.variants)))
    query = f"{search_attributes.EVAL_KEYS.name} IN ({names}) AND ExecutionStatus != 'Running'"
    earlier = [found async for found in temporal.list_workflows(query, limit=LOOKBACK * 5)]
    earlier.sort(key=lambda found: found.start_time, reverse=True)
    runs = sum(len(places) for places in wanted.values())
    for execution in earlier[:LOOKBACK]:
        if reused.runs >= runs:
            break  # every row's run is found
        run_input = await _first_input(temporal, execution.id, execution.run_id)
        if run_input is not None:
            await _take(temporal, execution.id, run_input, keys, wanted, seen, reused)
    return reused


def _wanted(
    keys: Keys, rows: list[list[dict[str, Any]]], data: list[dict[str, Any]]
) -> tuple[Wanted, list[str]]:
    """Each row run this evaluation would pay for, by its keys; each dataset row's digest."""
    wanted: Wanted = {}
    for index, per_variant in enumerate(rows):
        for variant, variables in enumerate(per_variant):
            key = keys.variants[variant]
            wanted.setdefault((key, row_key(key, variables)), []).append((index, variant))
    return wanted, [row_data_key(row) for row in data]


async def _take(
    temporal: Any,
    evaluation: str,
    run_input: RunInput,
    keys: Keys,
    wanted: Wanted,
    data: list[str],
    reused: Reused,
) -> None:
    meta = run_input.variables.get("evaluation") or {}
    theirs = meta.get("cache") or {}
    their_variants: list[str] = theirs.get("variants") or []
    their_evaluators: list[str | None] = theirs.get("evaluators") or []
    # matching every earlier row is CPU work: off the event loop (the REST API serves on it)
    found = await asyncio.to_thread(_hits, run_input, their_variants, wanted, reused)
    for number, hits in found.items():
        shard_id = f"{evaluation}/{shard_step(number)}"
        steps = await _shard_steps(temporal, shard_id)
        for hit in hits:
            their_run = row_step(hit.place, hit.their_variant)
            done = _reusable(steps.get(their_run), hit.row, their_run, f"{shard_id}/{their_run}")
            if done is None or (hit.index, hit.variant, None) in reused.steps:
                continue
            reused.steps[(hit.index, hit.variant, None)] = done
            if row_data_key(hit.row.get("row")) != data[hit.index]:
                continue  # the evaluators would see another row: they judge again
            for evaluator, wanted_key in enumerate(keys.evaluators):
                if wanted_key is None or wanted_key not in their_evaluators:
                    continue
                judge = judge_step(hit.place, hit.their_variant, their_evaluators.index(wanted_key))
                judged = _reusable(steps.get(judge), hit.row, judge, f"{shard_id}/{judge}")
                if judged is not None:
                    reused.steps[(hit.index, hit.variant, evaluator)] = judged


def _hits(
    run_input: RunInput, their_variants: list[str], wanted: Wanted, reused: Reused
) -> dict[int, list[_Hit]]:
    """By shard of an earlier evaluation: its row runs this evaluation wants and has not
    found yet."""
    found: dict[int, list[_Hit]] = {}
    for number, shard in enumerate(run_input.variables.get("shards") or []):
        for place, row in enumerate(shard):
            for their_variant, variables in enumerate(row.get("vars") or []):
                if their_variant >= len(their_variants):
                    break
                key = their_variants[their_variant]
                for index, variant in wanted.get((key, row_key(key, variables)), []):
                    if (index, variant, None) not in reused.steps:
                        hit = _Hit(index, variant, place, their_variant, row)
                        found.setdefault(number, []).append(hit)
    return found


def _reusable(
    step: StepResult | None, row: dict[str, Any], step_id: str, source: str
) -> dict[str, Any] | None:
    """What a new evaluation copies of a completed step: its outputs, and what running it
    cost when it really ran (an earlier reuse passes on the first run's usage and source)."""
    if step is None or step.status != "completed" or step.outputs is None:
        return None
    earlier = (row.get("cached") or {}).get(step_id)
    if earlier is not None:
        return {**earlier, "outputs": step.outputs}
    return {
        "outputs": step.outputs,
        "usage": step.usage.model_dump(),
        "duration_ms": step.duration_ms,
        "from": source,
    }


async def _first_input(temporal: Any, workflow_id: str, run_id: str | None) -> RunInput | None:
    handle = temporal.get_workflow_handle(workflow_id, run_id=run_id)
    try:
        async for event in handle.fetch_history_events(page_size=1):
            attributes = event.workflow_execution_started_event_attributes
            payloads = attributes.input.payloads
            [run_input] = await temporal.data_converter.decode(payloads, [RunInput])
            return run_input  # type: ignore[no-any-return]
    except Exception:  # deleted by retention, or not an evaluation we can read: skip it
        return None
    return None


async def _shard_steps(temporal: Any, workflow_id: str) -> dict[str, StepResult]:
    handle = temporal.get_workflow_handle(workflow_id, result_type=RunResult)
    try:
        described = await handle.describe()
        if described.status != WorkflowExecutionStatus.COMPLETED:
            return {}
        result: RunResult = await handle.result()
    except Exception:  # gone, or ended another way: nothing to reuse from it
        return {}
    return result.steps
