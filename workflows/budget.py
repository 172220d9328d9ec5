"""Budgets: what a run (and a step) may spend on model calls, enforced before each call.

Each call reserves its worst case (input tokens estimated from the rendered request, plus
max_tokens, at the model's price) from every budget it spends from: its step's, its run's and,
in a child run, what the parent allowed it. The reply settles the reservation at what the
call really used, so concurrent calls and for_each items cannot together overshoot: at most
one call's worst case, and only where the estimate of its input was short.

A call that does not fit waits while calls in flight hold what it needs. If it cannot fit
even then, the budget's `on_exceed` decides: `fail` ends the run before the call, naming the
budget, what was spent and the step; `pause` waits (a durable condition: days if need be)
until an operator raises the budget with the `budget` update or cancels the run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows.contracts import (
        BudgetStatus,
        LlmCallInput,
        ModelPrice,
        RaiseBudget,
        RunResult,
        Usage,
    )
    from workflows.definition import BudgetSpec, Definition

CHARS_PER_TOKEN = 3
"""The input estimate: tokenizers give about 4 characters of English per token; 3 errs on the
side of reserving too much."""
TOKENS_PER_MESSAGE = 8
TOKENS_PER_IMAGE = 1600
"""A large image at high detail costs providers about 1,100-1,600 input tokens."""
DEFAULT_MAX_TOKENS = 4096
"""A call under a budget that sets no max_tokens is sent with this many, so its worst case
is known."""
RUN = "run"
ALLOWANCE = "allowance"


@dataclass(frozen=True)
class Spend:
    cost_usd: float = 0.0
    tokens: int = 0

    def __add__(self, other: Spend) -> Spend:
        return Spend(round(self.cost_usd + other.cost_usd, 8), self.tokens + other.tokens)

    def __sub__(self, other: Spend) -> Spend:
        return Spend(round(self.cost_usd - other.cost_usd, 8), self.tokens - other.tokens)

    @classmethod
    def of(cls, usage: Usage) -> Spend:
        return cls(usage.cost_usd, usage.input_tokens + usage.output_tokens)


@dataclass
class Ledger:
    """One budget: its limits, what was spent, and the worst case of calls in flight."""

    scope: str
    max_cost_usd: float | None
    max_tokens: int | None
    on_exceed: str
    spent: Spend = Spend()
    reserved: Spend = Spend()
    waiting: str | None = None

    @classmethod
    def from_spec(cls, scope: str, spec: BudgetSpec) -> Ledger:
        return cls(scope, spec.max_cost_usd, spec.max_tokens, spec.on_exceed)

    @classmethod
    def from_status(cls, status: BudgetStatus) -> Ledger:
        """A budget carried across continue-as-new: nothing is in flight at that point."""
        spent = Spend(status.spent_usd, status.spent_tokens)
        return cls(status.scope, status.max_cost_usd, status.max_tokens, status.on_exceed, spent)

    def fits(self, need: Spend, in_flight: bool = True) -> bool:
        """Whether `need` fits in what is left (counting calls in flight, or not)."""
        used = self.spent + self.reserved if in_flight else self.spent
        cost_ok = self.max_cost_usd is None or used.cost_usd + need.cost_usd <= self.max_cost_usd
        tokens_ok = self.max_tokens is None or used.tokens + need.tokens <= self.max_tokens
        return cost_ok and tokens_ok

    def room(self) -> Spend:
        """What is left, counting calls in flight; unlimited parts are infinite."""
        used = self.spent + self.reserved
        cost = math.inf if self.max_cost_usd is None else self.max_cost_usd - used.cost_usd
        tokens = math.inf if self.max_tokens is None else self.max_tokens - used.tokens
        return Spend(cost, tokens)  # type: ignore[arg-type]  # tokens may be infinite here

    def name(self) -> str:
        if self.scope == RUN:
            return "the run's budget"
        if self.scope == ALLOWANCE:
            return "what the parent run allowed this child run"
        return f"step '{self.scope}''s budget"

    def limits(self) -> str:
        parts = []
        if self.max_cost_usd is not None:
            parts.append(f"{dollars(self.max_cost_usd)} ({dollars(self.spent.cost_usd)} spent)")
        if self.max_tokens is not None:
            parts.append(f"{self.max_tokens} tokens ({self.spent.tokens} spent)")
        return " and ".join(parts)

    def status(self) -> BudgetStatus:
        return BudgetStatus(
            scope=self.scope,
            max_cost_usd=self.max_cost_usd,
            max_tokens=self.max_tokens,
            on_exceed=self.on_exceed,  # type: ignore[arg-type]  # from a BudgetSpec
            spent_usd=self.spent.cost_usd,
            spent_tokens=self.spent.tokens,
            reserved_usd=self.reserved.cost_usd,
            reserved_tokens=self.reserved.tokens,
            waiting=self.waiting,
        )


@dataclass(frozen=True)
class Hold:
    """A reservation: settled once, when the call it was made for comes back."""

    ledgers: tuple[Ledger, ...]
    need: Spend


@dataclass
class Budgets:
    """Every budget of a run, and the one place model calls reserve and settle."""

    ledgers: dict[str, Ledger] = field(default_factory=dict)
    prices: dict[str, ModelPrice] = field(default_factory=dict)
    on_change: Callable[[], None] = lambda: None
    """Told when a budget starts or stops waiting (the run's details line)."""

    @classmethod
    def for_run(
        cls,
        definition: Definition,
        prices: dict[str, ModelPrice],
        allowance: BudgetSpec | None,
        carried: dict[str, BudgetStatus],
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
        return cls(ledgers, prices)

    def __bool__(self) -> bool:
        return bool(self.ledgers)

    def of_step(self, step_id: str) -> tuple[Ledger, ...]:
        scopes = (step_id, RUN, ALLOWANCE)
        return tuple(self.ledgers[scope] for scope in scopes if scope in self.ledgers)

    def status(self) -> dict[str, BudgetStatus]:
        return {scope: ledger.status() for scope, ledger in self.ledgers.items()}

    def worst_case(self, call: LlmCallInput) -> Spend:
        """The most `call` can cost: every character of its request a third of a token,
        plus a full max_tokens reply, at its model's price. A model without a price has
        been refused before the run started; one reached anyway fails the step here."""
        price = self.prices.get(f"{call.provider}/{call.model}")
        if price is None and call.provider != "mock":
            raise ApplicationError(
                f"step '{call.step_id}': model {call.provider}/{call.model} has no known price, "
                "and the run has a budget: add the model to the starter's PRICES_FILE",
                type="BudgetError",
                non_retryable=True,
            )
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
        tokens_in += TOKENS_PER_IMAGE * len(call.images)
        tokens_out = call.max_tokens or DEFAULT_MAX_TOKENS
        price = price or ModelPrice(input=0, output=0)
        cost = (tokens_in * price.input + tokens_out * price.output) / 1_000_000
        return Spend(round(cost, 8), tokens_in + tokens_out)

    async def reserve(self, ledgers: tuple[Ledger, ...], need: Spend, what: str) -> Hold:
        """Hold `need` in every ledger, once it fits in all of them (see the module's text)."""
        while True:
            short = next((ledger for ledger in ledgers if not ledger.fits(need)), None)
            if short is None:
                for ledger in ledgers:
                    ledger.reserved = ledger.reserved + need
                return Hold(ledgers, need)
            if short.fits(need, in_flight=False):  # calls in flight hold the rest: wait
                await workflow.wait_condition(lambda short=short: short.fits(need))
                continue
            message = (
                f"budget exceeded: {short.name()} is {short.limits()}, and {what} could "
                f"cost up to {_spend(need)} more"
            )
            meter = workflow.metric_meter()
            if short.on_exceed != "pause":
                meter.create_counter("budget_exceeded", "runs a budget stopped").add(1)
                raise ApplicationError(message, type="BudgetExceeded", non_retryable=True)
            meter.create_counter("budget_pauses", "runs a budget paused").add(1)
            short.waiting = (
                f"paused: {message}; raise the budget (starter.py budget ID ...) or cancel the run"
            )
            self.on_change()
            await workflow.wait_condition(lambda short=short: short.fits(need, in_flight=False))
            short.waiting = None
            self.on_change()

    def settle(self, hold: Hold, used: Spend) -> None:
        for ledger in hold.ledgers:
            ledger.reserved = ledger.reserved - hold.need
            ledger.spent = ledger.spent + used

    async def allow(self, ledgers: tuple[Ledger, ...], what: str) -> tuple[Hold, BudgetSpec]:
        """For a child run: hold all that is left of `ledgers` (once something is left) and
        say it as the child's allowance. Steps beside it wait until it settles."""
        least = Spend(0.00000001 if any(x.max_cost_usd for x in ledgers) else 0, 1)
        self.settle(await self.reserve(ledgers, least, what), Spend())
        rooms = [ledger.room() for ledger in ledgers]
        cost, tokens = min(r.cost_usd for r in rooms), min(r.tokens for r in rooms)
        need = Spend(0 if cost == math.inf else cost, 0 if tokens == math.inf else int(tokens))
        for ledger in ledgers:
            ledger.reserved = ledger.reserved + need
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


def _spend(need: Spend) -> str:
    return f"{dollars(need.cost_usd)} ({need.tokens} tokens)"


def dollars(amount: float) -> str:
    """`$0.00005`, `$0.5`, `$12.25`: up to eight decimals, no trailing zeros."""
    return "$" + (f"{amount:.8f}".rstrip("0").rstrip(".") if amount else "0")
