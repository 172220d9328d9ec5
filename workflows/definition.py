"""The definition model: the YAML's shape is the model's shape (see DSL.md). The parts it
shares with the step types are in definition_parts.py, each step type in step_types/."""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import BeforeValidator, Field, create_model, model_validator

from workflows.cost_options import (
    CACHE_DESCRIPTION,
    SERVICE_TIER_DESCRIPTION,
    CacheMode,
    ServiceTier,
    cost_option_problems,
)
from workflows.definition_parts import (
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_TOOL_CALLS,
    IDENTIFIER,
    MAX_CONCURRENCY,
    MAX_DEPTH_LIMIT,
    MAX_STEP_ID_LENGTH,
    MAX_STEPS,
    MAX_TOOL_CALLS_LIMIT,
    NAME,
    BudgetSpec,
    CheckedDuration,
    DefinitionModel,
    Identifier,
    Output,
    OutputSpec,
    RetrySpec,
    StepFields,
    VariableType,
)
from workflows.step_types import (
    BUILT_IN,
    ActionStep,
    LlmCallStep,
    SetStep,
    Step,
    StepTypes,
    WaitForSignalStep,
    WorkflowStep,
)
from workflows.step_types.llm_call import ToolSpec, ValidateSpec
from workflows.step_types.llm_messages import MessageLoop, MessageSpec


def _number_as_text(value: Any) -> Any:
    """`version: 1.0` means the text "1.0", as a user would expect."""
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


class VariableSpec(DefinitionModel):
    """A run input in the long form (the short form `name: value` gives only the default)."""

    type: VariableType | None = Field(
        default=None,
        description="The value's type: string, number, integer, boolean, object or array. "
        "A run value of another type is refused. Default: any type.",
    )
    default: Any = Field(
        default=None,
        description="The value used when the run (--var or the run request) gives none. "
        "Default: null.",
    )
    description: str | None = Field(
        default=None, description="What the variable is for; for readers, not the engine."
    )
    required: bool = Field(
        default=False,
        description="true: a run that does not give this variable is refused before it "
        "starts. Default: false.",
    )


_VARIABLE_KEYS = set(VariableSpec.model_fields)


def _variable_long_form(value: Any) -> Any:
    """The short form `name: value` is the default. A mapping with any spec key (`type`,
    `default`, `description`, `required`) is the long form, so a misspelt key is reported;
    an object default that has such keys must be written in the long form."""
    is_long = isinstance(value, dict) and bool(set(value) & _VARIABLE_KEYS)
    return value if is_long else {"default": value}


class LlmDefaults(DefinitionModel):
    """Settings for every llm_call step that does not set them itself (not for other steps)."""

    model: str | None = Field(
        default=None,
        description="The model of llm_call steps that name none, e.g. 'gpt-4o-mini', "
        "'anthropic/claude-haiku-4-5', 'ollama/llama3' or 'mock'.",
    )
    temperature: float | None = Field(
        default=None,
        description="Sampling temperature. Default: the provider's (never sent to Anthropic).",
    )
    max_tokens: Annotated[int, Field(ge=1)] | None = Field(
        default=None,
        description="Longest reply, in tokens. Default: the provider's (Anthropic: 1024).",
    )
    timeout: CheckedDuration | None = Field(
        default=None, description="Per-attempt time limit of a model call. Default: 60s."
    )
    retry: RetrySpec | None = Field(
        default=None,
        description="Retry policy of model calls. Default: 5 attempts, 1s, backoff 2, at most 1m.",
    )
    cache: CacheMode | None = Field(
        default=None,
        description=CACHE_DESCRIPTION + " Steps whose provider cannot cache send nothing.",
    )
    service_tier: ServiceTier | None = Field(
        default=None,
        description=SERVICE_TIER_DESCRIPTION + " Steps whose provider lacks it send none.",
    )

    @model_validator(mode="after")
    def _offered(self) -> LlmDefaults:
        problems = cost_option_problems(self.model, self.cache, self.service_tier)
        if problems:
            raise ValueError("; ".join(f"{field}: {message}" for field, message in problems))
        return self


class WorkflowSpec(DefinitionModel):
    """The workflow: its name, inputs, defaults, steps and results."""

    name: Annotated[str, Field(pattern=NAME)] = Field(
        description="The workflow's name: letters, digits, '_' and '-'."
    )
    version: Annotated[str, BeforeValidator(_number_as_text)] | None = Field(
        default=None, description='A version text (1.0 is read as "1.0").'
    )
    description: str | None = Field(default=None, description="What the workflow does.")
    variables: dict[
        Identifier,
        Annotated[
            VariableSpec,
            BeforeValidator(_variable_long_form, json_schema_input_type=VariableSpec | Any),
        ],
    ] = Field(
        default={},
        description="The run's inputs: name: default (short form), or name: {type, default, "
        "description, required}. --var and the run request override defaults.",
    )
    defaults: LlmDefaults = Field(
        default=LlmDefaults(),
        description="model, temperature, max_tokens, timeout and retry for every llm_call "
        "that does not set them.",
    )
    budget: BudgetSpec | None = Field(
        default=None,
        description="What the whole run's model calls may spend (child runs included): "
        "max_cost_usd, max_tokens, on_exceed.",
    )
    steps: Annotated[list[Step], Field(min_length=1)] = Field(
        description="The steps, at least one. A step without depends_on waits for every step "
        "above it."
    )
    outputs: dict[Identifier, Any] = Field(
        default={},
        description="Extra named results of the run, as templates, added to every step output.",
    )


class Definition(DefinitionModel):
    """A whole definition file."""

    workflow: WorkflowSpec = Field(description="The workflow this file defines.")


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a definition file, for editors (schema/workflow.schema.json)."""
    schema = Definition.model_json_schema(by_alias=True)
    schema.pop("title", None)  # "Definition" would hide the title below
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "LLM workflow definition (DSL v1)",
        **schema,
    }


def definition_model(step_types: StepTypes) -> type[Definition]:
    """The model of a definition file whose steps are of `step_types`: `Definition` itself
    for the built-in ones, else a subclass that takes the added types too."""
    if step_types == BUILT_IN:
        return Definition
    steps = WorkflowSpec.model_fields["steps"]
    # a union of types known only at run time: no static type describes it
    union: Any = Union
    models = step_types.models
    any_step = Annotated[union[models], Field(discriminator="type")]
    spec = create_model(
        "WorkflowSpec",
        __base__=WorkflowSpec,
        steps=(list[any_step], Field(min_length=1, description=steps.description)),
    )
    workflow = Definition.model_fields["workflow"]
    return create_model(
        "Definition", __base__=Definition, workflow=(spec, Field(description=workflow.description))
    )


__all__ = [
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_TOOL_CALLS",
    "IDENTIFIER",
    "MAX_CONCURRENCY",
    "MAX_DEPTH_LIMIT",
    "MAX_STEPS",
    "MAX_STEP_ID_LENGTH",
    "MAX_TOOL_CALLS_LIMIT",
    "NAME",
    "ActionStep",
    "BudgetSpec",
    "CheckedDuration",
    "Definition",
    "Identifier",
    "LlmCallStep",
    "LlmDefaults",
    "MessageLoop",
    "MessageSpec",
    "Output",
    "OutputSpec",
    "RetrySpec",
    "SetStep",
    "Step",
    "StepFields",
    "ToolSpec",
    "ValidateSpec",
    "VariableSpec",
    "VariableType",
    "WaitForSignalStep",
    "WorkflowSpec",
    "WorkflowStep",
    "definition_model",
    "json_schema",
]
