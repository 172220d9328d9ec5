"""What crosses Temporal's wire: the run's input and result, and each activity's input and result.

These live beside the workflow (not in ``activities/``) so workflow code can import them
without importing provider SDKs.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from workflows.cost_options import CacheMode
from workflows.definition import BudgetSpec, Definition
from workflows.errors import Problem
from workflows.scripts import Script, Scripted

StepStatus = Literal["completed", "skipped", "failed"]


def _zero(value: float) -> bool:
    return not value


class Usage(BaseModel):
    input_tokens: int = 0
    """Every input token, those read from and written to the provider's cache included."""
    output_tokens: int = 0
    cost_usd: float = 0.0
    """Estimated from the worker's price table (0 for unknown models and the mock)."""
    cache_read_tokens: int = Field(default=0, exclude_if=_zero)
    """Input tokens the provider read from its prompt cache (billed at the cache price)."""
    cache_write_tokens: int = Field(default=0, exclude_if=_zero)
    """Input tokens written to the cache (Anthropic bills them above the input price)."""
    saved_usd: float = Field(default=0.0, exclude_if=_zero)
    """What the cache and a cheaper service tier saved against the standard input price."""

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cost_usd=round(self.cost_usd + other.cost_usd, 8),
            cache_read_tokens=self.cache_read_tokens + other.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
            saved_usd=round(self.saved_usd + other.saved_usd, 8),
        )


class StepResult(BaseModel):
    status: StepStatus
    outputs: dict[str, Any] | None
    attempts: int
    duration_ms: int
    usage: Usage
    error: str | None = Field(default=None, exclude_if=lambda value: value is None)
    """Why a step failed; present only for failed steps."""


class ItemResult(BaseModel):
    """One finished for_each item of a step that has not finished: carried into the next
    run when a run continues as new, and reused by `resume` when the item is the same."""

    item: Any = None
    outputs: dict[str, Any]
    attempts: int
    usage: Usage


class ModelPrice(BaseModel):
    """US dollars per million tokens, as the starter's price table has them."""

    input: float
    output: float
    cache_write: float | None = Field(default=None, exclude_if=lambda value: value is None)
    """Set when writing the cache costs more than input: a call that caches reserves at it."""
    tier_factors: dict[str, float] = Field(default={}, exclude_if=lambda value: not value)
    """Service tiers priced apart from the standard one (flex: 0.5): reserved at them."""


class BudgetStatus(BaseModel):
    """One budget of a run: its limits, what was spent, what calls in flight hold."""

    scope: str
    """'run', a step id, or 'allowance' (what the parent run lets a child run spend)."""
    max_cost_usd: float | None = None
    max_tokens: int | None = None
    on_exceed: Literal["fail", "pause"] = "fail"
    spent_usd: float = 0.0
    spent_tokens: int = 0
    reserved_usd: float = 0.0
    reserved_tokens: int = 0
    """The worst case of calls in flight: released as their replies come back."""
    waiting: str | None = None
    """Why the run is paused on this budget (on_exceed: pause), while it is."""


class RaiseBudget(BaseModel):
    """The `budget` update: new limits for a run's budget (or one step's)."""

    max_cost_usd: float | None = Field(default=None, gt=0)
    max_tokens: int | None = Field(default=None, ge=1)
    step: str | None = None
    """A step's own budget; the run's when unset."""


class RunInput(BaseModel):
    """Start a run from a parsed definition, or from a file the worker loads once."""

    definition: Definition | None = None
    definition_file: str | None = None
    children: dict[str, Definition] = {}
    """Definitions that `workflow` steps run, by the file name they are written as."""
    variables: dict[str, Any] = {}
    mock_providers: list[str] = []
    """Providers whose calls go to the offline ``mock`` provider for this run."""
    llm_task_queue: str | None = None
    """Task queue for LLM calls (default: the run's), so one provider's rate can be limited
    across all workers with Temporal's task-queue rate limit."""
    action_task_queue: str | None = None
    """Task queue for actions (default: the run's)."""
    reuse: dict[str, StepResult] = {}
    """Results of steps an earlier run finished, taken as they are instead of run again."""
    reuse_items: dict[str, dict[int, ItemResult]] = {}
    """for_each items the previous run of this execution finished (continue-as-new)."""
    signals: dict[str, list[Any]] = {}
    """Signals received and not consumed yet, carried across continue-as-new."""
    paused: bool = False
    started_at: str | None = None
    """When the execution's first run started: `run.started_at` across continue-as-new."""
    prices: dict[str, ModelPrice] = Field(default={}, exclude_if=lambda value: not value)
    """Prices of the models a run under a budget calls, by `provider/model`."""
    token_ratios: dict[str, float] = Field(default={}, exclude_if=lambda value: not value)
    """By `provider/model`: how far replies were counted over their bound (workflows/budget.py),
    carried across continue-as-new and into child runs, so none of them learns it again."""
    allowance: BudgetSpec | None = Field(default=None, exclude_if=lambda value: value is None)
    """For a child run: what its parent's budgets let it spend."""
    budgets: dict[str, BudgetStatus] = Field(default={}, exclude_if=lambda value: not value)
    """Budgets as they stood, carried across continue-as-new (limits raised, spent)."""
    depth: int = Field(default=0, ge=0, exclude_if=lambda value: not value)
    """How many runs this one is below the top-level run (0: it is the top-level run)."""
    max_depth: int | None = Field(default=None, exclude_if=lambda value: value is None)
    """For a child run: the deepest its own children may be, as its ancestors' steps allow."""
    script: Script | None = Field(default=None, exclude_if=lambda value: value is None)
    """Scripted replies and action results (a test's, or `run --replies`): calls follow it."""

    @model_validator(mode="after")
    def _one_source(self) -> RunInput:
        if (self.definition is None) == (self.definition_file is None):
            raise ValueError("give exactly one of 'definition' and 'definition_file'")
        return self


class RunStatus(BaseModel):
    """What the `status` query answers, while a run goes on and after it ended."""

    workflow_name: str = ""
    paused: bool = False
    total_steps: int = 0
    running: list[str] = []
    steps: dict[str, StepResult] = {}
    outputs: dict[str, Any] = {}
    usage: Usage = Usage()
    items: dict[str, dict[int, ItemResult]] = {}
    """Finished items of for_each steps that have not finished (running, failed or cut
    short), by step id and index."""
    variables: dict[str, Any] = {}
    """The run's variables, defaults filled in."""
    awaited_signals: list[str] = []
    """Signal names the definition's steps wait for (others are dropped)."""
    waiting_signals: dict[str, str] = Field(default={}, exclude_if=lambda value: not value)
    """The signal each running wait_for_signal step waits for now, by step id."""
    dropped_signals: int = 0
    """Signals refused: no step waits for them, too big, undecodable, or too many buffered."""
    budgets: dict[str, BudgetStatus] = Field(default={}, exclude_if=lambda value: not value)
    """The run's budgets by scope, spent against limit."""
    batches: dict[str, str] = Field(default={}, exclude_if=lambda value: not value)
    """How each batched for_each's provider batch is doing, by step id."""
    rejected_signals: list[str] = Field(default=[], exclude_if=lambda value: not value)
    """The latest signals refused because their payload did not fit the waiting step, and
    why (at most MAX_REJECTED_SHOWN)."""

    @property
    def finished_steps(self) -> list[str]:
        """Steps that completed (not skipped, not failed): what a rerun takes as they are."""
        return [step_id for step_id, step in self.steps.items() if step.status == "completed"]


class RunResult(BaseModel):
    execution_id: str
    workflow_name: str
    status: Literal["completed"]
    outputs: dict[str, Any]
    steps: dict[str, StepResult]
    usage: Usage
    budgets: dict[str, BudgetStatus] = Field(default={}, exclude_if=lambda value: not value)
    """The run's budgets by scope, spent against limit."""


LOAD_DEFINITION = "load_definition"
"""The activity that reads a run's definition file (activities/load_definition.py)."""


class LoadDefinitionInput(BaseModel):
    path: str


class LoadedDefinition(BaseModel):
    """A definition file and every definition its `workflow` steps run, loaded together."""

    definition: Definition
    children: dict[str, Definition] = {}
    prices: dict[str, ModelPrice] = Field(default={}, exclude_if=lambda value: not value)
    """The reader's price of each model a budgeted bundle may call, by `provider/model`: a
    run started by file name (Temporal's CLI or UI) reserves its calls at the worker's prices."""
    warnings: list[Problem] = Field(default=[], exclude=True)
    """What validation warns of (workflows/dropped_settings.py), for the one who loaded the
    files to show; never sent anywhere, so no run's history holds it."""


class ChatMessage(BaseModel):
    role: Literal["user", "assistant"]
    content: str
    cache: bool = Field(default=False, exclude_if=lambda value: not value)
    """The conversation up to and including this message is a prefix to cache."""


LLM_CALL = "llm_call"
"""The activity that makes one model call (activities/llm.py)."""
PACE = "pace"
"""The no-op local activity a long stretch of in-workflow work yields with."""


DESCRIBE_TOOLS = "describe_tools"
"""The activity that turns a step's `tools` into what the model is offered (activities/tools.py)."""
MCP_CALL = "mcp_call"
"""The activity that calls one tool of an MCP server configured on the worker."""


class ToolDef(BaseModel):
    """A tool as the model is offered it, and what a call of it runs."""

    name: str
    description: str = ""
    parameters: dict[str, Any]
    """The JSON Schema of its arguments."""
    kind: Literal["action", "workflow", "mcp"]
    target: str
    """The action's name, the definition file, or the MCP server's name."""
    fixed: dict[str, Any] = Field(default={}, exclude_if=lambda value: not value)
    """action: params the definition fixes (templates, rendered by the workflow)."""
    withheld: list[str] = Field(default=[], exclude_if=lambda value: not value)
    """action: operator-level params the definition did not offer: a call that sets one is
    refused (also when the action takes params it does not declare)."""


class ToolCall(BaseModel):
    id: str
    name: str
    arguments: dict[str, Any] = {}


class ToolResult(BaseModel):
    id: str
    name: str
    content: str
    is_error: bool = False


class Turn(BaseModel):
    """One round of a tool loop: what the model asked for, and what the tools answered."""

    text: str = ""
    calls: list[ToolCall]
    results: list[ToolResult]


class DescribeToolsInput(BaseModel):
    step_id: str
    tools: list[dict[str, Any]]
    """The step's `tools` entries for actions and MCP servers, as the definition has them."""


class DescribeToolsResult(BaseModel):
    tools: list[ToolDef]


class McpCallInput(BaseModel):
    step_id: str
    server: str
    tool: str
    arguments: dict[str, Any] = {}


class LlmCallInput(BaseModel):
    step_id: str
    provider: str
    model: str
    prompt: str
    system: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    response_schema: dict[str, Any] | None = None
    """Ask for JSON matching this schema, natively where the provider can."""
    reasks: list[ChatMessage] = []
    """Earlier replies and what was wrong with them, sent after the prompt on a re-ask."""
    messages: list[ChatMessage] = Field(default=[], exclude_if=lambda value: not value)
    """A conversation given instead of `prompt` (which is then empty)."""
    images: list[str] = Field(default=[], exclude_if=lambda value: not value)
    """Sent with the last user message: https URLs, or files under the worker's INPUT_DIR
    (the activity turns those into data: URLs, so history keeps the name, not the bytes)."""
    tools: list[ToolDef] = Field(default=[], exclude_if=lambda value: not value)
    """What the model may call."""
    turns: list[Turn] = Field(default=[], exclude_if=lambda value: not value)
    """The tool loop so far: sent after the prompt (and before any re-ask)."""
    scripted: list[Scripted] | None = Field(default=None, exclude_if=lambda value: value is None)
    """Scripted: the answer of each attempt, in order (workflows/scripts.py)."""
    cache: CacheMode | None = Field(default=None, exclude_if=lambda value: value is None)
    """What the provider is asked to cache (workflows/cost_options.py)."""
    service_tier: str | None = Field(default=None, exclude_if=lambda value: value is None)
    """The provider's service tier to ask for (only sent where the provider offers it)."""


class LlmCallResult(BaseModel):
    text: str
    provider: str
    model: str
    usage: Usage
    attempt: int
    finish_reason: str | None = None
    parsed: dict[str, Any] | None = None
    """With a response schema: the reply parsed and checked against it."""
    invalid: str | None = None
    """With a response schema: why the reply does not match it."""
    tool_calls: list[ToolCall] = Field(default=[], exclude_if=lambda value: not value)
    """The tools the model asks to call; the reply is not an answer yet."""


class SecretSlot(BaseModel):
    """A param whose template (the definition's own text) uses `secrets.NAME`: where it is in
    the params, and its text as parts (literal text at even indexes, secret names at odd).
    Only the activity fills it in; the params themselves are never searched for secrets."""

    path: list[str | int]
    parts: list[str]


class ActionInput(BaseModel):
    step_id: str
    action: str
    params: dict[str, Any]
    idempotency_key: str
    """Stable across retries: workflow id, the run chain's first run id, step id and item
    index (workflows/activity_options.py `effect_key`)."""
    secrets: list[SecretSlot] = Field(default=[], exclude_if=lambda value: not value)
    first_run_id: str = Field(default="", exclude_if=lambda value: not value)
    """The run chain's first run id (kept through continue-as-new): two runs under one reused
    workflow id differ here. Empty in histories from before it was sent."""
    scripted: list[Scripted] | None = Field(default=None, exclude_if=lambda value: value is None)
    """Scripted: the result (or error) that stands in for running the action."""


class ActionResult(BaseModel):
    value: Any
    attempt: int


VALIDATOR_PREFIX = "validator."
"""A validator's activity is named this plus its name: `validator.no_pii`."""


class ValidatorInput(BaseModel):
    step_id: str
    validator: str
    outputs: dict[str, Any]
    """The llm_call's outputs as the reply gave them."""


class ValidatorResult(BaseModel):
    valid: bool
    errors: list[str] = []
    """Why the reply is not valid; the model is told them when it is asked again."""
