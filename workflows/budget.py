"""Budgets: what a run (and a step) may spend on model calls, enforced before each call.

Each call reserves its worst case from every budget it spends from: its step's, its run's
and, in a child run, what the parent allowed it. The worst case is an upper bound: the
request's UTF-8 bytes (a byte-level BPE tokenizer, as OpenAI's, Anthropic's and Llama's are,
never makes more tokens than bytes), each message's framing, images, a provider's tool
prompt, times the most any reply of that model has been counted over its bound in this run,
plus max_tokens, at the model's price. The reply settles the reservation at what the call
really used, so concurrent calls and for_each items cannot together pass the budget.

A call that does not fit waits while calls in flight hold what it needs; once they have
settled (in whatever order), it fits or it never will, and the budget's `on_exceed` decides:
`fail` ends the run before the call, naming the budget, what was spent and the step;
`pause` waits (a durable condition: days if need be) until an operator raises the budget
with the `budget` update or cancels the run. The pure rules are in workflows/ledger.py.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from functools import partial

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows.contracts import (
        BudgetStatus,
        LlmCallInput,
        ModelPrice,
        RaiseBudget,
        RunResult,
    )
    from workflows.definition import BudgetSpec, Definition
    from workflows.errors import FailureType
    from workflows.ledger import (
        ALLOWANCE,
        RUN,
        Ledger,
        Spend,
        can_go_on,
        exceeded,
        short_of,
    )
    from workflows.providers import MOCK

BOUNDS_PATCH = "budget-upper-bounds"
"""Runs from before it estimate at 3 characters a token and wait as they did."""
CHARS_PER_TOKEN = 3
"""The estimate before BOUNDS_PATCH: about 4 characters of English a token, 3 to be safe."""
TOKENS_PER_MESSAGE = 8
"""A message's framing (role, separators): providers count 3 to 4; the reply's priming too."""
TOKENS_PER_IMAGE = 1600
"""A large image at high detail costs providers about 1,100-1,600 input tokens."""
TOKENS_FOR_TOOLS = 500
"""The prompt a provider adds when tools or a schema are offered (Anthropic: up to ~350)."""
DEFAULT_MAX_TOKENS = 4096
"""A call under a budget that sets no max_tokens is sent with this many, so its worst case
is known."""


@dataclass(frozen=True)
class Hold:
    """A reservation: settled once, when the call it was made for comes back."""

    ledgers: tuple[Ledger, ...]
    need: Spend
    model: str = ""
    counted: int = 0
    """The input tokens the bound counted, before the learned ratio: for learning it."""


@dataclass
class Budgets:
    """Every budget of a run, and the one place model calls reserve and settle."""

    ledgers: dict[str, Ledger] = field(default_factory=dict)
    prices: dict[str, ModelPrice] = field(default_factory=dict)
    on_change: Callable[[], None] = lambda: None
    """Told when a budget starts or stops waiting (the run's details line)."""
    bounded: bool = True
    """Reservations are upper bounds and waits end once calls in flight settle (BOUNDS_PATCH)."""
    ratios: dict[str, float] = field(default_factory=dict)
    """By `provider/model`: the most a reply's input tokens came to over the bound counted."""

    @classmethod
    def for_run(
        cls,
        definition: Definition,
        prices: dict[str, ModelPrice],
        allowance: BudgetSpec | None,
        carried: dict[str, BudgetStatus],
        ratios: dict[str, float] | None = None,
    ) -> Budgets:
        ledgers: dict[str, Ledger] = {}
        if definition.workflow.budget is not None:
            ledgers[RUN] = Ledger.from_spec(RUN, definition.workflow.budget)
        if allowance is not None:
            ledgers[ALLOWANCE] = Ledger.from_spec(ALLOWANCE, allowance)
        for step in definition.workflow.steps:
            if step.budget is not None:
                ledgers[step.id] = Ledger.from_spec(step.id, step.budget)
        for scope, status in carried.items():
            ledgers[scope] = Ledger.from_status(status)
        bounded = bool(ledgers) and workflow.patched(BOUNDS_PATCH)
        return cls(ledgers, prices, bounded=bounded, ratios=dict(ratios or {}) if bounded else {})

    def __bool__(self) -> bool:
        return bool(self.ledgers)

    def of_step(self, step_id: str) -> tuple[Ledger, ...]:
        scopes = (step_id, RUN, ALLOWANCE)
        return tuple(self.ledgers[scope] for scope in scopes if scope in self.ledgers)

    def status(self) -> dict[str, BudgetStatus]:
        return {scope: ledger.status() for scope, ledger in self.ledgers.items()}

    def worst_case(self, call: LlmCallInput) -> Spend:
        """The most `call` can cost: its input bound times the model's learned ratio, plus a
        full max_tokens reply, at its model's price."""
        return self._estimate(call)[0]

    def _estimate(self, call: LlmCallInput) -> tuple[Spend, int]:
        """The worst case and the input tokens counted for it (before the learned ratio). A
        model without a price has been refused before the run started; one reached anyway
        fails the step here."""
        price = self.prices.get(f"{call.provider}/{call.model}")
        if price is None and call.provider != MOCK:
            raise ApplicationError(
                f"step '{call.step_id}': model {call.provider}/{call.model} has no known price, "
                "and the run has a budget: add the model to the starter's PRICES_FILE",
                type=FailureType.BUDGET,
                non_retryable=True,
            )
        counted = input_bound(call) if self.bounded else _input_estimate(call)
        ratio = self.ratios.get(f"{call.provider}/{call.model}", 1.0)
        tokens_in = math.ceil(counted * ratio) if ratio > 1 else counted
        tokens_out = call.max_tokens or DEFAULT_MAX_TOKENS
        price = price or ModelPrice(input=0, output=0)
        cost = (tokens_in * input_price(price, call) + tokens_out * price.output) / 1_000_000
        cost *= price.tier_factors.get(call.service_tier or "", 1.0)
        cost = _up(cost) if self.bounded else round(cost, 8)
        return Spend(cost, tokens_in + tokens_out), counted

    async def reserve_call(
        self, ledgers: tuple[Ledger, ...], call: LlmCallInput, what: str
    ) -> Hold:
        """Hold a model call's worst case (see the module's text)."""
        need, counted = self._estimate(call)
        hold = await self.reserve(ledgers, need, what)
        return replace(hold, model=f"{call.provider}/{call.model}", counted=counted)

    async def reserve(self, ledgers: tuple[Ledger, ...], need: Spend, what: str) -> Hold:
        """Hold `need` in every ledger, once it fits in all of them (see the module's text)."""
        while True:
            if self.bounded:
                short = short_of(ledgers, need)
            else:
                short = next((ledger for ledger in ledgers if not ledger.fits(need)), None)
            if short is None:
                for ledger in ledgers:
                    ledger.hold(need)
                return Hold(ledgers, need)
            if self.bounded and short.holds:  # wait for calls in flight to settle
                await workflow.wait_condition(lambda: can_go_on(ledgers, need))
                continue
            if not self.bounded and short.fits(need, in_flight=False):
                await workflow.wait_condition(partial(short.fits, need))
                continue
            message = exceeded(short, need, what)
            meter = workflow.metric_meter()
            if short.on_exceed != "pause":
                meter.create_counter("budget_exceeded", "runs a budget stopped").add(1)
                raise ApplicationError(
                    message, type=FailureType.BUDGET_EXCEEDED, non_retryable=True
                )
            meter.create_counter("budget_pauses", "runs a budget paused").add(1)
            why = (
                f"paused: {message}; raise the budget (starter.py budget ID ...) or cancel the run"
            )
            short.pause(why)
            self.on_change()
            try:
                await workflow.wait_condition(partial(short.fits, need, in_flight=False))
            finally:  # a cancelled step stops waiting too
                short.unpause(why)
                self.on_change()

    def settle(self, hold: Hold, used: Spend, billed_input: int | None = None) -> None:
        """Spend what the call used; a reply counted over its bound raises the model's ratio,
        so the next call of that model reserves enough."""
        for ledger in hold.ledgers:
            ledger.release(hold.need, used)
        if self.bounded and hold.counted and billed_input is not None:
            ratio = billed_input / hold.counted
            if ratio > self.ratios.get(hold.model, 1.0):
                self.ratios[hold.model] = ratio

    async def allow(self, ledgers: tuple[Ledger, ...], what: str) -> tuple[Hold, BudgetSpec]:
        """For a child run: hold all that is left of `ledgers` (once something is left) and
        say it as the child's allowance. Steps beside it wait until it settles."""
        least = Spend(0.00000001 if any(x.max_cost_usd for x in ledgers) else 0, 1)
        self.settle(await self.reserve(ledgers, least, what), Spend())
        rooms = [ledger.room() for ledger in ledgers]
        cost, tokens = min(r.cost_usd for r in rooms), min(r.tokens for r in rooms)
        need = Spend(0 if cost == math.inf else cost, 0 if tokens == math.inf else int(tokens))
        for ledger in ledgers:
            ledger.hold(need)
        allowance = BudgetSpec(
            max_cost_usd=None if cost == math.inf else cost,
            max_tokens=None if tokens == math.inf else int(tokens),
            on_exceed="pause" if any(x.on_exceed == "pause" for x in ledgers) else "fail",
        )
        return Hold(ledgers, need), allowance

    def spent_by_child(self, result: RunResult) -> Spend:
        """What a child run spent, as its allowance counted it (failed steps included)."""
        counted = result.budgets.get(ALLOWANCE)
        if counted is not None:
            return Spend(counted.spent_usd, counted.spent_tokens)
        return Spend.of(result.usage)

    def waiting(self) -> str | None:
        return next((ledger.waiting for ledger in self.ledgers.values() if ledger.waiting), None)

    def check_raise(self, request: RaiseBudget) -> None:
        """The `budget` update's validator: a bad request is refused to its sender."""
        scope = request.step or RUN
        if scope not in self.ledgers:
            known = ", ".join(sorted(self.ledgers)) or "none"
            raise ValueError(f"this run has no budget {scope!r} (its budgets: {known})")
        if request.max_cost_usd is None and request.max_tokens is None:
            raise ValueError("give max_cost_usd, max_tokens or both")

    def raise_limits(self, request: RaiseBudget) -> BudgetStatus:
        ledger = self.ledgers[request.step or RUN]
        if request.max_cost_usd is not None:
            ledger.max_cost_usd = request.max_cost_usd
        if request.max_tokens is not None:
            ledger.max_tokens = request.max_tokens
        return ledger.status()


def input_bound(call: LlmCallInput) -> int:
    """At most how many input tokens a provider counts for `call`: one a UTF-8 byte of every
    text it is sent (JSON as ASCII, so more bytes, not fewer), TOKENS_PER_MESSAGE a message,
    TOKENS_PER_IMAGE an image, TOKENS_FOR_TOOLS when tools or a schema are offered."""
    texts: list[str] = [call.prompt, call.system or ""]
    texts += [m.content for m in [*call.messages, *call.reasks]]
    if call.response_schema:
        texts.append(_json(call.response_schema))
    for tool in call.tools:
        texts += [tool.name, tool.description, _json(tool.parameters)]
    messages = 2 + len(call.messages) + len(call.reasks)
    for turn in call.turns:
        texts.append(turn.text)
        texts += [f"{c.id} {c.name} {_json(c.arguments)}" for c in turn.calls]
        texts += [f"{r.id} {r.name} {r.content}" for r in turn.results]
        messages += 2 + len(turn.calls) + len(turn.results)
    tokens = sum(len(text.encode("utf-8", "surrogatepass")) for text in texts)
    tokens += TOKENS_PER_MESSAGE * messages + TOKENS_PER_IMAGE * len(call.images)
    return tokens + (TOKENS_FOR_TOOLS if call.tools or call.response_schema else 0)


def _input_estimate(call: LlmCallInput) -> int:
    """Before BOUNDS_PATCH: every character a third of a token (under-counts short words,
    emoji and CJK text)."""
    texts: Iterable[str] = [
        call.prompt,
        call.system or "",
        *(m.content for m in [*call.messages, *call.reasks]),
    ]
    characters = sum(len(text) for text in texts) + len(str(call.response_schema or ""))
    characters += sum(len(str(tool.parameters)) + len(tool.description) for tool in call.tools)
    for turn in call.turns:
        characters += len(turn.text) + len(str([c.arguments for c in turn.calls]))
        characters += sum(len(result.content) + 40 for result in turn.results)
    messages = 2 + len(call.messages) + len(call.reasks) + 2 * len(call.turns)
    tokens_in = math.ceil(characters / CHARS_PER_TOKEN) + TOKENS_PER_MESSAGE * messages
    return tokens_in + TOKENS_PER_IMAGE * len(call.images)


def _json(value: object) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def input_price(price: ModelPrice, call: LlmCallInput) -> float:
    """The most an input token of `call` can cost: a call that caches may write every one of
    them to the cache, which Anthropic bills above the input price."""
    if call.cache is not None and price.cache_write is not None:
        return max(price.input, price.cache_write)
    return price.input


def _up(cost: float) -> float:
    """Dollars rounded up to the eighth decimal, as spend is kept: a bound stays a bound."""
    return math.ceil(round(cost * 100_000_000, 4)) / 100_000_000
