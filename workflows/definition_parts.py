"""The parts of the definition model that the workflow and every step type share: the strict
base model, names, durations, retry policies, outputs, budgets and the fields every step has.

They sit apart from definition.py because the step types (workflows/step_types/) build on
them and definition.py builds its union of steps from the step types."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from workflows.durations import Duration, parse_duration

if TYPE_CHECKING:  # annotations only: checks.py reads the step types
    from workflows.checks import Checker
    from workflows.source import Path

DEFAULT_MAX_DEPTH = 4
"""Child runs nest at most this deep below the top-level run unless a step says otherwise."""
MAX_DEPTH_LIMIT = 32
DEFAULT_MAX_TOOL_CALLS = 32
"""The most tool calls one llm_call (one for_each item) runs, all turns and re-asks together."""
MAX_TOOL_CALLS_LIMIT = 800
IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]*$"
NAME = r"^[A-Za-z0-9_-]+$"
VariableType = Literal["string", "number", "integer", "boolean", "object", "array"]
Identifier = Annotated[str, Field(pattern=IDENTIFIER)]
MAX_STEP_ID_LENGTH = 100
"""A child run's id is its parent's id, '/', the step id, '/N' for an item and '/turnT.C' for
a tool call: at most 116 characters a level, so a run id of 500 leaves room for four levels
under Temporal's 1,000-character limit (a longer one fails that step with the reason)."""
MAX_CONCURRENCY = 1000
"""Items one step runs at once: Temporal refuses a run more than 2,000 pending activities (or
child runs), and a definition may run two wide steps side by side."""
MAX_STEPS = 12_000
"""Steps one file may hold: a run's result lists every step, and Temporal refuses a result
over 2 MB (16,000 steps is 2.5 MB)."""
SPENDING_TYPES = "llm_call and workflow"
"""The step types whose `spends` is true, as the budget message names them (a test holds this
to the registry)."""


def _check_duration(value: Duration) -> Duration:
    parse_duration(value)
    return value


CheckedDuration = Annotated[Duration, AfterValidator(_check_duration)]


class DefinitionModel(BaseModel):
    """Unknown fields are errors, so a typo is reported instead of ignored. Fields left unset
    (None by default) are left out when a definition is written, so a run's input in the UI
    shows what the file said, not a page of nulls."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, serialize_by_alias=True)

    @model_serializer(mode="wrap")
    def _without_unset_nones(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if not isinstance(data, dict):
            return data
        fields = type(self).model_fields
        for name, info in fields.items():
            key = info.alias or name
            if info.default is None and data.get(key, 0) is None:
                del data[key]
        return data


class RetrySpec(DefinitionModel):
    """How a failed attempt is retried (a Temporal retry policy); unset keys keep the defaults."""

    max_attempts: Annotated[int, Field(ge=1)] | None = Field(
        default=None,
        description="Attempts in all, the first one included (1: no retry). Default: 5.",
    )
    initial_interval: CheckedDuration | None = Field(
        default=None,
        description="Wait before the first retry: a duration such as '500ms', '1s', '5m' or a "
        "number of seconds. Default: 1s.",
    )
    backoff: Annotated[float, Field(ge=1.0)] | None = Field(
        default=None,
        description="Each wait is the previous one times this (at least 1.0). Default: 2.0.",
    )
    max_interval: CheckedDuration | None = Field(
        default=None, description="The longest wait between two attempts. Default: 1m."
    )


class OutputSpec(DefinitionModel):
    """A named result of a step (a bare name is a string output of that name)."""

    name: Identifier = Field(
        description="Later templates read the output by this name. Unique in the file; may not "
        "be a variable's name nor steps, run, secrets or loop."
    )
    type: VariableType = Field(
        default="string",
        description="string, number, integer, boolean, object or array. On llm_call, anything "
        "but a single string output asks the model for JSON. Default: string.",
    )
    description: str | None = Field(
        default=None,
        description="What the output holds; sent to the model in the JSON Schema it is asked "
        "to follow.",
    )
    enum: list[Any] | None = Field(
        default=None, description="The only values the model may give (llm_call)."
    )
    json_schema: dict[str, Any] | None = Field(
        default=None,
        alias="schema",
        description="A full JSON Schema for this output (llm_call); overrides type and enum.",
    )
    default: Any = Field(
        default=None,
        description="The value this output takes when the step fails under "
        "on_error: continue. Default: null.",
    )


def _output_long_form(value: Any) -> Any:
    """The seed writes outputs as bare names; that is `{name: ...}` of type string."""
    return {"name": value} if isinstance(value, str) else value


Output = Annotated[
    OutputSpec, BeforeValidator(_output_long_form, json_schema_input_type=str | OutputSpec)
]


class BudgetSpec(DefinitionModel):
    """What model calls may spend, enforced before each call (see docs/language.md)."""

    max_cost_usd: Annotated[float, Field(gt=0)] | None = Field(
        default=None,
        description="Most the calls may cost, in US dollars, at the model prices the engine "
        "knows (PRICES_FILE).",
    )
    max_tokens: Annotated[int, Field(ge=1)] | None = Field(
        default=None, description="Most input plus output tokens the calls may use."
    )
    on_exceed: Literal["fail", "pause"] = Field(
        default="fail",
        description="A call that would pass the budget: 'fail' ends the run before it; "
        "'pause' waits (durably) until an operator raises the budget or cancels the run.",
    )

    @model_validator(mode="after")
    def _one_limit(self) -> BudgetSpec:
        if self.max_cost_usd is None and self.max_tokens is None:
            raise ValueError("a budget needs max_cost_usd, max_tokens or both")
        return self


class StepFields(DefinitionModel):
    """The fields every step has, and what a step type may say about itself (each type in
    workflows/step_types/ overrides what differs from these defaults)."""

    spends: ClassVar[bool] = False
    """Whether the step's model calls spend from budgets; only such steps take `budget`."""

    id: Annotated[Identifier, Field(max_length=MAX_STEP_ID_LENGTH)] = Field(
        description="The step's id, unique in the file: letters, digits and '_', not starting "
        "with a digit, at most 100 characters. Templates read steps.<id>.status and "
        "steps.<id>.outputs."
    )
    name: str | None = Field(default=None, description="A readable name, for people.")
    description: str | None = Field(default=None, description="What the step does, for people.")
    when: str | None = Field(
        default=None,
        description="A template such as \"{{ category == 'bug' }}\", evaluated once before the "
        "step: false skips it (status skipped, outputs null). Default: always run.",
    )
    depends_on: list[str] | None = Field(
        default=None,
        description="Step ids this step waits for (plus every step whose outputs it reads); "
        "[] starts it at once. Default: wait for every step above it.",
    )
    timeout: CheckedDuration | None = Field(
        default=None,
        description="llm_call and action: the per-attempt time limit (default 60s, or "
        "defaults.timeout for llm_call). wait_for_signal: how long to wait (default: forever).",
    )
    retry: RetrySpec | None = Field(
        default=None,
        description="llm_call and action: how failed attempts are retried. Default: "
        "defaults.retry (llm_call), else 5 attempts, 1s, backoff 2, at most 1m.",
    )
    on_error: Literal["fail", "continue"] = Field(
        default="fail",
        description="fail: a failure of this step fails the run. continue: the step is marked "
        "failed, its outputs become null (or their default) and the run goes on. Default: fail.",
    )
    outputs: list[Output] = Field(
        default=[],
        description="Named results, read by later templates by name: a bare name is a string "
        "output. One output takes the step's whole result; several pick its fields.",
    )
    for_each: str | list[Any] | None = Field(
        default=None,
        description='A list, or a template such as "{{ names }}" giving one: the step runs '
        "once per item (at most 10,000) and each output becomes a list in item order.",
    )
    as_: Annotated[Identifier, Field(alias="as")] = Field(
        default="item",
        description="The name of the current for_each item in templates. Default: item.",
    )
    budget: BudgetSpec | None = Field(
        default=None,
        description="What this step's model calls (all its items, a child run's calls) may "
        "spend, within the workflow's budget.",
    )
    concurrency: Annotated[int, Field(ge=1, le=MAX_CONCURRENCY)] = Field(
        default=10, description="How many for_each items run at once (at most 1,000). Default: 10."
    )

    @model_validator(mode="after")
    def _budget_where_spent(self) -> StepFields:
        if self.budget is not None and not self.spends:
            raise ValueError(f"budget: only {SPENDING_TYPES} steps spend on model calls")
        return self

    def output_names(self) -> list[str]:
        """The names the step's outputs are visible by in later templates."""
        return [output.name for output in self.outputs]

    def may_wait_long(self) -> bool:
        """Whether the step may wait a long time (a signal, a timer, a child run): the run's
        progress is published before it."""
        return False

    @classmethod
    def raw_output_paths(cls, path: Path, raw: dict[str, Any]) -> list[tuple[Path, str]]:
        """A raw (not yet validated) step's output names, each with where it is written
        (under `path`): its declared outputs, bare names or `{name: ...}`."""
        outputs = raw.get("outputs")
        found: list[tuple[Path, str]] = []
        for index, output in enumerate(outputs if isinstance(outputs, list) else []):
            if isinstance(output, str):
                found.append(((*path, "outputs", index), output))
            elif isinstance(output, dict) and isinstance(output.get("name"), str):
                found.append(((*path, "outputs", index, "name"), output["name"]))
        return found

    @classmethod
    def cross_check(cls, checker: Checker, path: Path, raw: dict[str, Any]) -> None:
        """Checks of a raw step of this type that its model cannot make (workflows/checks.py
        runs them beside the model's own, so every problem is reported in one pass)."""

    @classmethod
    def local_names(cls, raw: dict[str, Any], where: Path) -> set[str]:
        """Names a template at `where` (inside the raw step) sees besides the run's: the
        for_each item's (and, in a type that repeats parts of itself, those parts')."""
        if raw.get("for_each") is None:
            return set()
        name = raw.get("as")
        return {name if isinstance(name, str) else "item"}

    @classmethod
    def secrets_allowed(cls, raw: dict[str, Any], where: Path) -> bool:
        """Whether the template at `where` (inside the raw step) may read `secrets`: only
        params that reach an activity, which resolves them outside the history. A tool's
        fixed params are an action's params."""
        return where[0] == "tools" and "params" in where[2:3]
