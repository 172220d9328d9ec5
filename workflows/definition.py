"""The definition model: the YAML's shape is the model's shape (see DSL.md)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

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


def _check_duration(value: Duration) -> Duration:
    parse_duration(value)
    return value


CheckedDuration = Annotated[Duration, AfterValidator(_check_duration)]


def _number_as_text(value: Any) -> Any:
    """`version: 1.0` means the text "1.0", as a user would expect."""
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


class _Model(BaseModel):
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


class VariableSpec(_Model):
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


class RetrySpec(_Model):
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


class OutputSpec(_Model):
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


class ValidateSpec(_Model):
    """A check on an llm_call's reply (an expression or a validator); a failure re-asks."""

    model_config = ConfigDict(
        json_schema_extra={"oneOf": [{"required": ["expr"]}, {"required": ["validator"]}]}
    )

    expr: str | None = Field(
        default=None,
        exclude_if=lambda value: value is None,
        description='A template such as "{{ urgency >= 1 and urgency <= 5 }}" that sees the '
        "step's own outputs; a false result re-asks the model. Write it in {{ }}: plain text "
        "is always true. Give expr or validator.",
    )
    validator: str | None = Field(
        default=None,
        exclude_if=lambda value: value is None,
        description="The name of a validator the worker registers (Python, run as an "
        "activity): it gets the step's outputs and answers (is_valid, errors); its errors "
        "re-ask the model. Give expr or validator.",
    )
    message: str | None = Field(
        default=None,
        description="The reason the model is told when the check fails. Default: "
        "'validation failed: <expr>', or the validator's errors (after this text when set).",
    )

    @model_validator(mode="after")
    def _one_check(self) -> ValidateSpec:
        if self.expr is None and self.validator is None:
            raise ValueError(
                "an entry needs 'expr' (a template) or 'validator' (a registered validator's name)"
            )
        if self.expr is not None and self.validator is not None:
            raise ValueError("an entry has 'expr' or 'validator', not both")
        return self


class BudgetSpec(_Model):
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


class LlmDefaults(_Model):
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


class _Step(_Model):
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
    def _budget_where_spent(self) -> _Step:
        if self.budget is not None and getattr(self, "type", None) not in ("llm_call", "workflow"):
            raise ValueError("budget: only llm_call and workflow steps spend on model calls")
        return self


class ToolSpec(_Model):
    """Something the model may call: an action, another definition, or an MCP server's tools."""

    action: str | None = Field(
        default=None,
        description="A built-in or custom action; the tool's name is the action's name and its "
        "params are the tool's arguments.",
    )
    workflow: str | None = Field(
        default=None,
        description="Another definition file, run as a child run; the tool's name is its "
        "workflow name and its variables are the tool's arguments.",
    )
    mcp: str | None = Field(
        default=None,
        description="An MCP server configured on the worker (MCP_SERVERS): every tool it offers.",
    )
    params: dict[str, Any] = Field(
        default={},
        description="action: params the definition fixes (templates); they are not offered to "
        "the model.",
    )
    offer: list[str] = Field(
        default=[],
        description="action: operator-level params (save_to_file's shared, database_insert's "
        "table and connection) the model may set; without this it may not.",
    )
    description: str | None = Field(
        default=None,
        description="What the tool does, told to the model (default: the target's own).",
    )

    @model_validator(mode="after")
    def _one_target(self) -> ToolSpec:
        targets = [name for name in ("action", "workflow", "mcp") if getattr(self, name)]
        if len(targets) != 1:
            raise ValueError("a tool names exactly one of 'action', 'workflow' and 'mcp'")
        if self.params and self.action is None:
            raise ValueError("'params' fixes an action's params; only 'action' tools take it")
        if self.offer and self.action is None:
            raise ValueError("'offer' opens an action's params; only 'action' tools take it")
        return self


class MessageSpec(_Model):
    """One message of a conversation given instead of a prompt."""

    role: Literal["user", "assistant"] = Field(description="user or assistant.")
    content: str = Field(description="The message's text (a template).")


class LlmCallStep(_Step):
    """One model call: a template prompt, optional structured outputs and checks (with tools:
    a loop of calls, each tool call its own activity, until the model answers)."""

    type: Literal["llm_call"] = Field(description="llm_call: one call to a chat model.")
    model: str | None = Field(
        default=None,
        description="'provider/model' (openai, anthropic, ollama, mock, or any server the "
        "worker names by <NAME>_BASE_URL), or a bare name routed by prefix (gpt-, o1..o9, "
        "chatgpt: openai; claude: anthropic). Default: defaults.model.",
    )
    fallback_models: list[str] = Field(
        default=[],
        description="Models tried in order when the model still fails after its retries.",
    )
    system: str | None = Field(default=None, description="The system message (a template).")
    prompt: str | None = Field(
        default=None, description="The user message (a template); or give `messages`."
    )
    messages: list[MessageSpec] | None = Field(
        default=None,
        description="A conversation instead of `prompt`: few-shot examples, earlier turns "
        "({role: user|assistant, content: template}); the model answers the last one.",
    )
    images: list[str] = Field(
        default=[],
        description="Images sent with the (last) user message: https URLs, or files under the "
        "worker's INPUT_DIR (templates). openai and anthropic models only.",
    )
    temperature: float | None = Field(
        default=None,
        description="Sampling temperature. Default: defaults.temperature, else the provider's "
        "(never sent to Anthropic).",
    )
    max_tokens: Annotated[int, Field(ge=1)] | None = Field(
        default=None,
        description="Longest reply, in tokens. Default: defaults.max_tokens, else the "
        "provider's (Anthropic: 1024).",
    )
    validate_: Annotated[list[ValidateSpec], Field(alias="validate")] = Field(
        default=[],
        description="Checks on the reply's outputs; a failed one re-asks the model with the "
        "reason.",
    )
    max_reasks: Annotated[int, Field(ge=0)] = Field(
        default=2,
        description="How often a reply that is not valid JSON, does not match the outputs or "
        "fails a check is sent back. Default: 2.",
    )
    tools: list[ToolSpec] = Field(
        default=[],
        description="What the model may call: actions, other definitions (child runs), MCP "
        "servers. The workflow runs each call and sends the results back until it answers.",
    )
    max_turns: Annotated[int, Field(ge=1, le=50)] = Field(
        default=8,
        description="With tools: the most model calls one answer may take. Default: 8.",
    )
    max_tool_calls: Annotated[int, Field(ge=1, le=MAX_TOOL_CALLS_LIMIT)] | None = Field(
        default=None,
        description="With tools: the most tool calls the model may make for one answer, all "
        "turns together; later calls answer it with an error. Default: 32 (at most 800).",
    )
    max_depth: Annotated[int, Field(ge=1, le=MAX_DEPTH_LIMIT)] | None = Field(
        default=None,
        description="With workflow tools: how deep child runs may nest below the top-level "
        "run (its children are 1 deep); a call past it answers the model with an error. "
        "Default: 4 (at most 32); a parent's lower limit holds in its children.",
    )

    @model_validator(mode="after")
    def _prompt_or_messages(self) -> LlmCallStep:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("an llm_call needs 'prompt' or 'messages' (not both)")
        if self.messages is not None and not self.messages:
            raise ValueError("'messages' needs at least one message")
        return self


class ActionStep(_Step):
    """A built-in or custom action, run as an activity (sleep: a durable timer)."""

    type: Literal["action"] = Field(description="action: run a registered action.")
    action: str = Field(
        description="http_fetch, http_post, send_email, save_to_file, database_insert, sleep, "
        "or a custom action the worker registers."
    )
    params: dict[str, Any] = Field(
        default={},
        description="The action's params (templates); secrets only here, as "
        "{{ secrets.NAME }} standing alone in its braces.",
    )


class SetStep(_Step):
    """Computes values from templates inside the workflow, with no activity."""

    type: Literal["set"] = Field(description="set: compute values from templates.")
    values: dict[Identifier, Any] = Field(
        description="name: template pairs; each key becomes an output of that name."
    )


class WaitForSignalStep(_Step):
    """Waits for a signal; its JSON payload becomes the step's outputs."""

    type: Literal["wait_for_signal"] = Field(
        description="wait_for_signal: wait for a named signal."
    )
    signal: Annotated[str, Field(pattern=NAME)] = Field(
        description="The signal's name (letters, digits, '_' and '-'), e.g. approve."
    )


class WorkflowStep(_Step):
    """Runs another definition as a child run; its outputs are the step's outputs."""

    type: Literal["workflow"] = Field(description="workflow: run another definition.")
    definition: str = Field(description="Another definition file, relative to this one.")
    variables: dict[str, Any] = Field(
        default={}, description="The child run's variables (templates)."
    )
    max_depth: Annotated[int, Field(ge=1, le=MAX_DEPTH_LIMIT)] | None = Field(
        default=None,
        description="How deep child runs may nest below the top-level run (its children are "
        "1 deep); past it the step fails without starting its child. Default: 4 (at most "
        "32); a parent's lower limit holds in its children.",
    )


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


class Definition(_Model):
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
