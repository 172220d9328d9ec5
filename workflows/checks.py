"""Checks across a definition that a field-by-field model cannot make: unique ids and output
names, model routing, actions and validators, what each template refers to, and the order
steps can run in.

They read the raw parsed YAML, so they still report when the model found other problems:
a user sees every problem in one pass.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from graphlib import CycleError, TopologicalSorter
from typing import Any

from pydantic import BaseModel

from workflows.actions import ACTION_PARAMS
from workflows.definition_parts import MAX_STEPS
from workflows.errors import Problem, TemplateError
from workflows.graph import (
    INPUT_FIELDS,
    Read,
    components,
    dependencies,
    output_owners,
    output_paths,
    raw_output_names,
    remembered,
    template_strings,
    templates_of,
)
from workflows.source import Path, Source
from workflows.step_types import BUILT_IN, StepTypes
from workflows.suggest import suggest
from workflows.templates import references, secrets_problem

RESERVED_NAMES = {"steps", "run", "secrets", "loop"}
MAX_COSTLY_SUGGESTIONS = 20


def cross_checks(
    source: Source,
    actions: Mapping[str, type[BaseModel]] = ACTION_PARAMS,
    validators: Collection[str] = (),
    step_types: StepTypes = BUILT_IN,
) -> list[Problem]:
    spec = _dict(source.data.get("workflow")) if isinstance(source.data, dict) else {}
    raw_steps = spec.get("steps")
    steps = [s for s in raw_steps if isinstance(s, dict)] if isinstance(raw_steps, list) else []
    index_of = {id(step): index for index, step in enumerate(raw_steps or [])}
    variables = {str(name) for name in _dict(spec.get("variables"))}
    owners = output_owners(steps)
    step_ids = {s["id"] for s in steps if isinstance(s.get("id"), str)}
    default_model = _dict(spec.get("defaults")).get("model")
    checker = Checker(source, variables, set(owners), step_ids, actions, set(validators))
    checker.default_model, checker.step_types = default_model, step_types
    checker.read = remembered()
    if isinstance(raw_steps, list) and len(raw_steps) > MAX_STEPS:
        checker.add(
            ("workflow", "steps", MAX_STEPS),
            f"more than {MAX_STEPS:,} steps ({len(raw_steps):,}): split the work into child "
            "runs (a `workflow` step)",
        )
    checker.reserved_variables()
    checker.outputs(steps, index_of)
    seen: set[str] = set()
    for step in steps:
        path: Path = ("workflow", "steps", index_of[id(step)])
        step_id = step.get("id")
        if isinstance(step_id, str):
            if step_id in seen:
                checker.add((*path, "id"), f"duplicate step id '{step_id}'")
            seen.add(step_id)
        checker.step(path, step)
    for name, value in _dict(spec.get("outputs")).items():
        for sub_path, template in template_strings(value, ("workflow", "outputs", name)):
            checker.template(sub_path, template, set())
    if len(seen) == sum(isinstance(s.get("id"), str) for s in steps):  # ids are unique
        checker.order(steps, index_of, owners)
    return checker.problems


class Checker:
    """What the checks of a definition share: where problems go, and the names, actions and
    validators they check against (each step type's own checks are in workflows/step_types/)."""

    def __init__(
        self,
        source: Source,
        variables: set[str],
        outputs: set[str],
        step_ids: set[str],
        actions: Mapping[str, type[BaseModel]],
        validators: set[str],
    ) -> None:
        self.source = source
        self.variables = variables
        self.visible = variables | outputs
        self.step_ids = step_ids
        self.actions = actions
        self.validators = validators
        self.problems: list[Problem] = []
        self.read: Read = references
        self.costly = 0
        self.default_model: Any = None
        """`defaults.model` as the file gives it (llm_call steps without a model use it)."""
        self.step_types = BUILT_IN
        """The step types the worker runs, whose own checks `step` runs."""

    def near(self, word: str, choices: set[str]) -> str:
        """`suggest` among many names costs a scan of them all: in a file with thousands
        of steps, only the first MAX_COSTLY_SUGGESTIONS such misspellings get a suggestion."""
        if len(choices) > 100:
            self.costly += 1
            if self.costly > MAX_COSTLY_SUGGESTIONS:
                return ""
        return suggest(word, choices)

    def add(self, path: Path, message: str, *, at_key: bool = False) -> None:
        self.problems.append(self.source.problem(path, message, at_key=at_key))

    def reserved_variables(self) -> None:
        for name in sorted(self.variables & RESERVED_NAMES):
            self.add(("workflow", "variables", name), f"'{name}' is a reserved name", at_key=True)

    def outputs(self, steps: list[dict[str, Any]], index_of: dict[int, int]) -> None:
        owner: dict[str, str] = {}
        for step in steps:
            path: Path = ("workflow", "steps", index_of[id(step)])
            for out_path, name in output_paths(path, step):
                if name in self.variables:
                    self.add(out_path, f"output '{name}' shadows the variable of that name")
                elif name in RESERVED_NAMES:
                    self.add(out_path, f"'{name}' is a reserved name")
                elif name in owner:
                    self.add(
                        out_path,
                        f"output name '{name}' is already used by step '{owner[name]}' "
                        "(output names are unique in a file)",
                    )
                else:
                    owner[name] = str(step.get("id"))

    def step(self, path: Path, step: dict[str, Any]) -> None:
        step_type = self.step_types.model_of(step)
        step_type.cross_check(self, path, step)
        for dep_index, dep in enumerate(_list(step.get("depends_on"))):
            if isinstance(dep, str) and dep not in self.step_ids:
                message = f"unknown step '{dep}' in depends_on" + self.near(dep, self.step_ids)
                self.add((*path, "depends_on", dep_index), message)
        own = set(raw_output_names(step))
        for sub_path, template in templates_of(step):
            local = step_type.local_names(step, sub_path)
            extra = local | own if sub_path[0] == "validate" else local
            allowed = step_type.secrets_allowed(step, sub_path)
            self.template((*path, *sub_path), template, extra, secrets_allowed=allowed)

    def template(
        self, path: Path, template: str, local: set[str], *, secrets_allowed: bool = False
    ) -> None:
        try:
            names, step_ids = self.read(template)
        except TemplateError as exc:
            self.problems.append(self.source.problem_in_text(path, exc.lineno or 1, 0, str(exc)))
            return
        if "secrets" in names:
            problem = secrets_problem(template) or (
                None
                if secrets_allowed
                else "secrets may be used only in action params: anywhere else the value "
                "would be written into the run's history"
            )
            if problem:
                self.problems.append(_at_word(self.source, path, template, "secrets", problem))
        for name in sorted(names - local - self.visible - RESERVED_NAMES):
            near = self.near(name, self.visible | local)
            message = f"unknown name '{name}' in template" + near
            self.problems.append(_at_word(self.source, path, template, name, message))
        for step_id in sorted(step_ids - self.step_ids):
            message = f"unknown step '{step_id}' in 'steps.{step_id}'" + self.near(
                step_id, self.step_ids
            )
            self.problems.append(_at_word(self.source, path, template, step_id, message))

    def order(
        self, steps: list[dict[str, Any]], index_of: dict[int, int], owners: dict[str, str]
    ) -> None:
        """A step may read only what can have finished before it; there may be no cycle."""
        graph = dependencies(steps, owners, self.read)
        component = components(graph)
        reported = False
        for step in steps:
            reader = step.get("id")
            if not isinstance(reader, str):
                continue
            path: Path = ("workflow", "steps", index_of[id(step)])
            for sub_path, template in templates_of(step, INPUT_FIELDS):
                try:
                    names, read_steps = self.read(template)
                except TemplateError:
                    continue
                reads = [(f"steps.{s}", s, s) for s in sorted(read_steps)]
                reads += [(n, owners[n], n) for n in sorted(names) if n in owners]
                for shown, writer, word in reads:
                    # reading `writer` makes `reader` wait for it: then `writer` waits for
                    # `reader` exactly when the two are in one component
                    waits = writer in component and component[writer] == component[reader]
                    if writer == reader or waits:
                        reported = True
                        message = (
                            f"'{shown}' cannot have finished before step '{reader}' runs: "
                            + (
                                "a step cannot read its own outputs"
                                if writer == reader
                                else f"step '{writer}' waits for '{reader}' "
                                "(a step without depends_on waits for every step above it)"
                            )
                        )
                        full = (*path, *sub_path)
                        self.problems.append(_at_word(self.source, full, template, word, message))
        if reported:
            return
        known = {k: {d for d in v if d in graph} for k, v in graph.items()}
        try:
            TopologicalSorter(known).prepare()
        except CycleError as exc:
            cycle = exc.args[1]
            first = next(s for s in steps if s.get("id") == cycle[0])
            path = ("workflow", "steps", index_of[id(first)], "depends_on")
            self.add(path, "dependency cycle: " + " → ".join(cycle))


def _at_word(source: Source, path: Path, template: str, word: str, message: str) -> Problem:
    """Point at the word's first use inside the template, not just at the field."""
    match = re.search(rf"\b{re.escape(word)}\b", template)
    if match is None:
        return source.problem(path, message)
    before = template[: match.start()]
    line = before.count("\n") + 1
    col = match.start() - (before.rfind("\n") + 1)
    return source.problem_in_text(path, line, col, message)


def _dict(value: Any) -> dict[Any, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
