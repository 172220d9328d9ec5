"""The definition model: the YAML's shape is the model's shape (see DSL.md)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from workflows.durations import Duration, parse_duration

IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]*$"
NAME = r"^[A-Za-z0-9_-]+$"
VariableType = Literal["string", "number", "integer", "boolean", "object", "array"]
Identifier = Annotated[str, Field(pattern=IDENTIFIER)]


def _check_duration(value: Duration) -> Duration:
    parse_duration(value)
    return value


CheckedDuration = Annotated[Duration, AfterValidator(_check_duration)]


def _number_as_text(value: Any) -> Any:
    """`version: 1.0` means the text "1.0", as a user would expect."""
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


class _Model(BaseModel):
    """Unknown fields are errors, so a typo is reported instead of ignored."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, serialize_by_alias=True)


class VariableSpec(_Model):
    type: VariableType | None = None
    default: Any = None
    description: str | None = None
    required: bool = False


_VARIABLE_KEYS = set(VariableSpec.model_fields)


def _variable_long_form(value: Any) -> Any:
    """The short form `name: value` is the default. A mapping with any spec key (`type`,
    `default`, `description`, `required`) is the long form, so a misspelt key is reported;
    an object default that has such keys must be written in the long form."""
    is_long = isinstance(value, dict) and bool(set(value) & _VARIABLE_KEYS)
    return value if is_long else {"default": value}


class RetrySpec(_Model):
    max_attempts: Annotated[int, Field(ge=1)] | None = None
    initial_interval: CheckedDuration | None = None
    backoff: Annotated[float, Field(ge=1.0)] | None = None
    max_interval: CheckedDuration | None = None


class OutputSpec(_Model):
    name: Identifier
    type: VariableType = "string"
    description: str | None = None
    enum: list[Any] | None = None
    json_schema: dict[str, Any] | None = Field(default=None, alias="schema")
    """A full JSON Schema for this output; overrides `type` and `enum`."""
    default: Any = None
    """The value used when the step fails under `on_error: continue`."""


def _output_long_form(value: Any) -> Any:
    """The seed writes outputs as bare names; that is `{name: ...}` of type string."""
    return {"name": value} if isinstance(value, str) else value


Output = Annotated[
    OutputSpec, BeforeValidator(_output_long_form, json_schema_input_type=str | OutputSpec)
]


class ValidateSpec(_Model):
    expr: str
    message: str | None = None


class LlmDefaults(_Model):
    model: str | None = None
    temperature: float | None = None
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    timeout: CheckedDuration | None = None
    retry: RetrySpec | None = None


class _Step(_Model):
    id: Identifier
    name: str | None = None
    description: str | None = None
    when: str | None = None
    depends_on: list[str] | None = None
    timeout: CheckedDuration | None = None
    retry: RetrySpec | None = None
    on_error: Literal["fail", "continue"] = "fail"
    outputs: list[Output] = []
    for_each: str | list[Any] | None = None
    as_: Annotated[Identifier, Field(alias="as")] = "item"
    concurrency: Annotated[int, Field(ge=1)] = 10


class LlmCallStep(_Step):
    type: Literal["llm_call"]
    model: str | None = None
    fallback_models: list[str] = []
    system: str | None = None
    prompt: str
    temperature: float | None = None
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    validate_: Annotated[list[ValidateSpec], Field(alias="validate")] = []
    max_reasks: Annotated[int, Field(ge=0)] = 2


class ActionStep(_Step):
    type: Literal["action"]
    action: str
    params: dict[str, Any] = {}


class SetStep(_Step):
    type: Literal["set"]
    values: dict[Identifier, Any]
    """Each key becomes an output of that name."""


class WaitForSignalStep(_Step):
    type: Literal["wait_for_signal"]
    signal: Annotated[str, Field(pattern=NAME)]


class WorkflowStep(_Step):
    type: Literal["workflow"]
    definition: str
    """Another definition file, relative to this one."""
    variables: dict[str, Any] = {}


Step = Annotated[
    LlmCallStep | ActionStep | SetStep | WaitForSignalStep | WorkflowStep,
    Field(discriminator="type"),
]
STEP_TYPES = ("llm_call", "action", "set", "wait_for_signal", "workflow")


def output_names(step: Step) -> list[str]:
    """The names a step's outputs are visible by in later templates."""
    if isinstance(step, SetStep):
        return list(step.values)
    return [output.name for output in step.outputs]


class WorkflowSpec(_Model):
    name: Annotated[str, Field(pattern=NAME)]
    version: Annotated[str, BeforeValidator(_number_as_text)] | None = None
    description: str | None = None
    variables: dict[
        Identifier,
        Annotated[
            VariableSpec,
            BeforeValidator(_variable_long_form, json_schema_input_type=VariableSpec | Any),
        ],
    ] = {}
    defaults: LlmDefaults = LlmDefaults()
    steps: Annotated[list[Step], Field(min_length=1)]
    outputs: dict[Identifier, Any] = {}


class Definition(_Model):
    """A whole definition file."""

    workflow: WorkflowSpec


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a definition file, for editors (schema/workflow.schema.json)."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "LLM workflow definition (DSL v1)",
        **Definition.model_json_schema(by_alias=True),
    }
