"""The `llm_call` step type: one model call with a template prompt, optional structured
outputs and checks (with tools: a loop of calls until the model answers). How it runs:
llm_call_run.py."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import ConfigDict, Field, model_validator

from workflows.actions import operator_params
from workflows.cost_options import (
    BATCH_DESCRIPTION,
    CACHE_DESCRIPTION,
    MAX_MARKED_MESSAGES,
    SERVICE_TIER_DESCRIPTION,
    BatchSpec,
    CacheMode,
    ServiceTier,
    batch_problems,
    cost_option_problems,
)
from workflows.definition_parts import (
    MAX_DEPTH_LIMIT,
    MAX_TOOL_CALLS_LIMIT,
    DefinitionModel,
    StepFields,
)
from workflows.providers import MOCK, PROVIDERS, provider_spec
from workflows.routing import route
from workflows.step_types.action import check_action
from workflows.step_types.llm_messages import Message, loop_names
from workflows.suggest import suggest

if TYPE_CHECKING:  # annotations only: checks.py reads the step types
    from workflows.checks import Checker
    from workflows.source import Path

IMAGE_PROVIDERS = sorted(p.name for p in PROVIDERS if p.images and p.name != MOCK)
"""Providers whose wire format the engine sends images in (the offline mock takes them too)."""


class ValidateSpec(DefinitionModel):
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


class ToolSpec(DefinitionModel):
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


class LlmCallStep(StepFields):
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
    messages: list[Message] | None = Field(
        default=None,
        description="A conversation instead of `prompt`: few-shot examples, earlier turns "
        "({role: user|assistant, content: template}, or {each: list template, messages: "
        "[...]} repeated per element); the model answers the last one.",
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
    cache: CacheMode | None = Field(
        default=None, description=CACHE_DESCRIPTION + " Default: defaults.cache."
    )
    service_tier: ServiceTier | None = Field(
        default=None, description=SERVICE_TIER_DESCRIPTION + " Default: defaults.service_tier."
    )
    batch: bool | BatchSpec = Field(default=False, description=BATCH_DESCRIPTION)
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

    spends: ClassVar[bool] = True

    @classmethod
    def cross_check(cls, checker: Checker, path: Path, raw: dict[str, Any]) -> None:
        _check_models(checker, path, raw)
        _check_cost_options(checker, path, raw)
        _check_validators(checker, path, raw)
        _check_tools(checker, path, raw)

    @classmethod
    def local_names(cls, raw: dict[str, Any], where: Path) -> set[str]:
        return super().local_names(raw, where) | loop_names(raw, where)


def _check_models(checker: Checker, path: Path, step: dict[str, Any]) -> None:
    default_model = checker.default_model
    if step.get("model") is None and default_model is None:
        message = f"step '{step.get('id')}' has no model: set 'model' here or in defaults"
        checker.add(path, message)
    named: list[tuple[Path, Any]] = [((*path, "model"), step.get("model"))]
    named += [
        ((*path, "fallback_models", i), name)
        for i, name in enumerate(_list(step.get("fallback_models")))
    ]
    if step.get("model") is None:
        named.append(((*path, "model"), default_model))
    for model_path, name in named:
        if isinstance(name, str):
            try:
                target = route(name)
            except ValueError as exc:
                if model_path[-1] != "model" or step.get("model") is not None:
                    checker.add(model_path, str(exc))
                continue
            if _list(step.get("images")) and not provider_spec(target.provider).images:
                checker.add(
                    (*path, "images"),
                    f"model {name!r} is served by {target.provider}, which is not sent "
                    f"images: use a model of {', '.join(IMAGE_PROVIDERS)}",
                )


def _check_cost_options(checker: Checker, path: Path, step: dict[str, Any]) -> None:
    """The step's own `cache`, `service_tier` and `batch` against its model's provider (what
    it takes from `defaults` is checked there, against `defaults.model`)."""
    model = step.get("model") if step.get("model") is not None else checker.default_model
    marked = [m for m in _list(step.get("messages")) if isinstance(m, dict) and m.get("cache")]
    cache = step.get("cache") or (True if marked else None)
    problems = cost_option_problems(model, cache, step.get("service_tier"))
    if len(marked) > MAX_MARKED_MESSAGES:
        problems.append(
            (
                "messages",
                f"{len(marked)} messages are marked 'cache: true': at most "
                f"{MAX_MARKED_MESSAGES} (Anthropic takes 4 cache breakpoints a request)",
            )
        )
    for field, message in [*problems, *batch_problems(model, step)]:
        at = "messages" if field == "cache" and step.get("cache") is None else field
        checker.add((*path, at), message)


def _check_validators(checker: Checker, path: Path, step: dict[str, Any]) -> None:
    for index, check in enumerate(_list(step.get("validate"))):
        name = check.get("validator") if isinstance(check, dict) else None
        if not isinstance(name, str) or name in checker.validators:
            continue
        message = f"unknown validator '{name}'" + suggest(name, checker.validators)
        known = ", ".join(sorted(checker.validators))
        message += (
            f" (validators: {known})"
            if known
            else " (none is registered: list the module that registers it in ACTION_MODULES)"
        )
        checker.add((*path, "validate", index, "validator"), message)


def _check_tools(checker: Checker, path: Path, step: dict[str, Any]) -> None:
    """Tool targets must exist and their names must not clash (a child file's workflow
    name and an MCP server's tools are checked when they are known)."""
    seen: dict[str, int] = {}
    for index, tool in enumerate(_list(step.get("tools"))):
        if not isinstance(tool, dict):
            continue
        where: Path = (*path, "tools", index)
        name = tool.get("action")
        if isinstance(name, str):
            if name == "sleep":
                checker.add((*where, "action"), "'sleep' cannot be a tool (it is a timer)")
                continue
            check_action(checker, where, tool, as_tool=True)
            _check_offer(checker, where, name, tool)
            if name in seen:
                message = f"tool '{name}' is listed twice (entries {seen[name]} and {index})"
                checker.add((*where, "action"), message)
            seen[name] = index


def _check_offer(checker: Checker, path: Path, name: str, tool: dict[str, Any]) -> None:
    """A tool entry offers the model only the action's operator-level params."""
    params_model = checker.actions.get(name)
    if params_model is None:
        return
    offerable = operator_params(params_model)
    for index, param in enumerate(_list(tool.get("offer"))):
        if param not in offerable:
            others = ", ".join(sorted(offerable)) or "none"
            message = (
                f"{param!r} is not an operator-level param of {name} (those: {others}); "
                "the model may set every other param unless 'params' fixes it"
            )
            checker.add((*path, "offer", index), message)
    params = tool.get("params")
    offered = set(_list(tool.get("offer"))) | set(params if isinstance(params, dict) else {})
    for param, info in params_model.model_fields.items():
        key = info.alias or param
        if key in offerable and info.is_required() and key not in offered:
            message = (
                f"{name} needs '{key}', which a model may not set: fix it in 'params' "
                f"or offer it ('offer: [{key}]')"
            )
            checker.add((*path, "action"), message)


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
