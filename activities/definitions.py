"""Loading definition files: a file and every file its `workflow` steps run, validated together.

The worker's ``load_definition`` activity (activities/load_definition.py) uses it for runs
started by file name, and the
starter for runs it starts; either way the run's input (and so its history) holds the exact
definitions it runs, whatever later happens to the files.

A file name in a run's input is untrusted text: the worker confines it, and every child file,
to its definitions directory, and refuses anything else with one message that says nothing
about what lies outside. The starter runs whatever file its local user names.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from pathlib import Path

from pydantic import BaseModel

from activities.pricing import TIER_FACTORS, Price, price_of
from workflows.actions import ACTION_PARAMS
from workflows.contracts import LoadedDefinition, ModelPrice
from workflows.definition import Definition, LlmCallStep, WorkflowStep
from workflows.dropped_settings import dropped_settings
from workflows.errors import DefinitionError, Problem
from workflows.providers import MOCK, provider_spec
from workflows.routing import route
from workflows.source import Source
from workflows.validation import load_with_source

MAX_DEFINITION_BYTES = 1_000_000
MAX_CHILD_FILES = 100
MAX_NAME_BYTES = 255
"""Of one path component, as on most file systems."""
MAX_PATH_BYTES = 4096
OUTSIDE = "must name a file inside the worker's definitions directory"


def usable_name(name: str) -> bool:
    """Whether a file name can be handed to the OS as it is: no NUL, no over-long parts."""
    encoded = name.encode("utf-8", "surrogatepass")
    return (
        b"\0" not in encoded
        and len(encoded) <= MAX_PATH_BYTES
        and all(len(part) <= MAX_NAME_BYTES for part in encoded.split(b"/"))
    )


def confined(path: Path, root: Path) -> bool:
    """Whether `path`, every symlink followed, stays inside `root`."""
    try:
        return path.resolve().is_relative_to(root.resolve())
    except (OSError, ValueError, RuntimeError):  # RuntimeError: a symlink loop
        return False


def quoted(name: str) -> str:
    return repr(name) if len(name) <= 200 else f"{name[:200]!r}..."


def read_text(path: Path, shown: str, kind: str = "a definition") -> str:
    """A YAML file's text, or one located problem: too large, not UTF-8, unreadable."""
    try:
        if path.stat().st_size > MAX_DEFINITION_BYTES:
            raise DefinitionError(
                [Problem(shown, 1, 1, f"larger than {MAX_DEFINITION_BYTES} bytes")]
            )
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        reason = f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x}); {kind} is a YAML file"
        raise DefinitionError([Problem(shown, line, 1, reason)]) from None
    except OSError as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise DefinitionError([Problem(shown, 1, 1, f"cannot read: {reason}")]) from None


def load_bundle(
    path: Path,
    shown: str,
    actions: Mapping[str, type[BaseModel]] = ACTION_PARAMS,
    root: Path | None = None,
    validators: Collection[str] = (),
    priced: Callable[[str, str], bool] | None = None,
) -> LoadedDefinition:
    """Load a definition and, transitively, the definitions its `workflow` steps name.

    With `root`, a child file that resolves outside it is a problem, not a file to read.
    `actions` and `validators` are what the worker runs (see `load_with_source`). With
    `priced(provider, model)`, a bundle with a budget must call only priced models."""
    text = read_text(path, shown)
    return load_text_bundle(text, shown, path, actions, root, validators, priced)


def load_text_bundle(
    text: str,
    shown: str,
    path: Path,
    actions: Mapping[str, type[BaseModel]] = ACTION_PARAMS,
    root: Path | None = None,
    validators: Collection[str] = (),
    priced: Callable[[str, str], bool] | None = None,
) -> LoadedDefinition:
    """Like `load_bundle`, for a definition given as text, as if it were the file at `path`
    (its children are looked up beside it)."""
    top = load_with_source(text, shown, actions, validators)
    children: dict[str, Definition] = {}
    resolved: dict[str, Path] = {}
    queue = [(path, shown, *top)]
    problems: list[Problem] = []
    loaded: list[tuple[Source, Definition]] = []
    while queue:
        current, current_shown, source, definition = queue.pop(0)
        loaded.append((source, definition))
        for where, name, step in _child_files(definition):
            if not usable_name(name):
                problems.append(source.problem(where, f"{quoted(name)} is not a usable file name"))
                continue
            if root is not None and not confined(current.parent / name, root):
                problems.append(source.problem(where, f"{quoted(name)} {OUTSIDE}"))
                continue
            child_path = (current.parent / name).resolve()
            known = resolved.get(name)
            if known is not None:
                if known != child_path:
                    problems.append(source.problem(where, f"{name!r} names two different files"))
                elif isinstance(step, WorkflowStep):
                    problems += _child_variable_problems(source, where, step, children[name])
                continue
            if not child_path.is_file():
                problems.append(source.problem(where, f"no definition file {name!r}"))
                continue
            if len(resolved) >= MAX_CHILD_FILES:
                problems.append(source.problem(where, f"more than {MAX_CHILD_FILES} child files"))
                continue
            child_shown = str(Path(current_shown).parent / name)
            try:
                child_text = read_text(child_path, child_shown)
                child = load_with_source(child_text, child_shown, actions, validators)
            except DefinitionError as exc:
                problems += exc.problems
                continue
            resolved[name] = child_path
            children[name] = child[1]
            queue.append((child_path, child_shown, *child))
            if isinstance(step, WorkflowStep):
                problems += _child_variable_problems(source, where, step, child[1])
    if priced is not None:
        problems += unpriced_models(loaded, priced)
    if problems:
        raise DefinitionError(problems)
    warnings = [warning for pair in loaded for warning in dropped_settings(*pair)]
    return LoadedDefinition(definition=top[1], children=children, warnings=warnings)


def called_models(loaded: LoadedDefinition) -> list[str]:
    """Every model the bundle's llm_calls name: each call's model (else its file's default)
    and its fallbacks."""
    names: list[str] = []
    for definition in [loaded.definition, *loaded.children.values()]:
        spec = definition.workflow
        for step in spec.steps:
            if isinstance(step, LlmCallStep):
                named = [step.model or spec.defaults.model, *step.fallback_models]
                names += [name for name in named if name]
    return names


def budget_prices(loaded: LoadedDefinition, prices: Mapping[str, Price]) -> dict[str, ModelPrice]:
    """The price of every model a run with a budget may call, by `provider/model`, for the
    run to reserve each call's worst case with (nothing for runs without a budget)."""
    definitions = [loaded.definition, *loaded.children.values()]
    if not any(has_budget(definition) for definition in definitions):
        return {}
    found: dict[str, ModelPrice] = {}
    for name in called_models(loaded):
        target = route(name)
        price = price_of(prices, target.provider, target.model)
        if price is not None:
            spec = provider_spec(target.provider)
            tiers = (*spec.service_tiers, *(("batch",) if spec.batch else ()))
            found[f"{target.provider}/{target.model}"] = ModelPrice(
                input=price.input,
                output=price.output,
                cache_write=price.cache_write if (price.cache_write or 0) > price.input else None,
                tier_factors={k: v for k, v in TIER_FACTORS.items() if k in tiers},
            )
    return found


def priced_in(prices: Mapping[str, Price]) -> Callable[[str, str], bool]:
    """Whether a model has a price in `prices` (for `load_bundle`'s `priced`)."""
    return lambda provider, model: price_of(prices, provider, model) is not None


def has_budget(definition: Definition) -> bool:
    spec = definition.workflow
    return spec.budget is not None or any(step.budget is not None for step in spec.steps)


def unpriced_models(
    loaded: list[tuple[Source, Definition]], priced: Callable[[str, str], bool]
) -> list[Problem]:
    """A run with a budget (anywhere in its files) reserves each call's worst case at its
    model's price, so every model it may call needs one."""
    if not any(has_budget(definition) for _, definition in loaded):
        return []
    problems = []
    for source, definition in loaded:
        spec = definition.workflow
        for index, step in enumerate(spec.steps):
            if not isinstance(step, LlmCallStep):
                continue
            where: tuple[str | int, ...] = ("workflow", "steps", index)
            names = [
                (step.model, (*where, "model")),
                *(
                    (name, (*where, "fallback_models", n))
                    for n, name in enumerate(step.fallback_models)
                ),
            ]
            if step.model is None:
                names[0] = (spec.defaults.model, ("workflow", "defaults", "model"))
            for name, path in names:
                try:
                    target = route(name or "")
                except ValueError:
                    continue  # reported by validation
                if target.provider != MOCK and not priced(target.provider, target.model):
                    problems.append(
                        source.problem(
                            path,
                            f"model {name!r} has no known price, and the run has a budget: "
                            "add it to PRICES_FILE (model: {input: ..., output: ...} dollars "
                            "per million tokens)",
                        )
                    )
    return list(dict.fromkeys(problems))


def _child_files(
    definition: Definition,
) -> Iterator[tuple[tuple[str | int, ...], str, WorkflowStep | None]]:
    """Every definition file a definition runs: `workflow` steps and `workflow` tools, with
    where each is named (and the step, whose variables are checked against the child's)."""
    for index, step in enumerate(definition.workflow.steps):
        if isinstance(step, WorkflowStep):
            yield ("workflow", "steps", index, "definition"), step.definition, step
        elif isinstance(step, LlmCallStep):
            for n, tool in enumerate(step.tools):
                if tool.workflow is not None:
                    yield ("workflow", "steps", index, "tools", n, "workflow"), tool.workflow, None


def _child_variable_problems(
    source, where: tuple[str | int, ...], step: WorkflowStep, child: Definition
) -> list[Problem]:
    declared = child.workflow.variables
    path = (*where[:-1], "variables")
    problems = [
        source.problem(
            (*path, name), f"{child.workflow.name} has no variable '{name}'", at_key=True
        )
        for name in step.variables
        if name not in declared
    ]
    problems += [
        source.problem(path, f"{child.workflow.name} needs variable '{name}'")
        for name, spec in declared.items()
        if spec.required and name not in step.variables
    ]
    return problems
