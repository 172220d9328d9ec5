"""StepTypes: a set of step types, each known by the `type:` its steps are written with.

The built-in set is `workflows.step_types.BUILT_IN`; `with_type` adds one (a worker's own,
or a test's), and the definition model, validation and YamlWorkflow all read the set they
are given."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, get_args

from workflows.definition_parts import StepFields


def type_name(model: type[StepFields]) -> str:
    """The `type:` a step of this model is written with (its `type` field's one literal)."""
    field = model.model_fields.get("type")
    names = get_args(field.annotation) if field is not None else ()
    if len(names) != 1 or not isinstance(names[0], str):
        raise TypeError(f"{model.__name__} needs a field `type: Literal['<its name>']`")
    return names[0]


@dataclass(frozen=True)
class StepTypes:
    models: tuple[type[StepFields], ...]
    """The step types' models, in the order the JSON Schema lists them."""

    @cached_property
    def by_name(self) -> dict[str, type[StepFields]]:
        """Each step type's model by the name a definition writes in `type:`."""
        return {type_name(model): model for model in self.models}

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.by_name)

    def model_of(self, raw: dict[str, Any]) -> type[StepFields]:
        """The model of a raw step by its `type`; the common fields' for a type not known
        (the definition model reports that)."""
        kind = raw.get("type")
        return self.by_name.get(kind, StepFields) if isinstance(kind, str) else StepFields

    def with_type(self, model: type[StepFields]) -> StepTypes:
        """These step types and one more (its name may not be taken already)."""
        name = type_name(model)
        if name in self.by_name:
            raise ValueError(f"step type {name!r} is registered already")
        return StepTypes((*self.models, model))
