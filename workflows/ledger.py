"""One budget's books, as a pure object: limits, what was spent, what calls in flight hold.

No Temporal here, so the rules can be tested on their own (tests/test_budget_ledger.py):
a call reserves its worst case in every ledger it spends from, or waits; a waiting call goes
on as soon as it fits or as soon as the ledger that refuses it has no call in flight (then
nothing can make room but an operator, so the budget's `on_exceed` decides). Spent only
grows, so a call that does not fit when nothing is in flight will never fit by waiting.
Several calls may pause on one budget: it says it is waiting until the last of them goes on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from workflows.contracts import BudgetStatus, Usage
from workflows.definition import BudgetSpec

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


@dataclass(frozen=True)
class Room:
    """What a budget has left: an unlimited part is infinite, so tokens are a float here."""

    cost_usd: float
    tokens: float


@dataclass
class Ledger:
    """One budget: its limits, what was spent, and the worst case of calls in flight."""

    scope: str
    max_cost_usd: float | None
    max_tokens: int | None
    on_exceed: Literal["fail", "pause"]
    spent: Spend = Spend()
    reserved: Spend = Spend()
    holds: int = 0
    """How many reservations are in flight: none means `reserved` holds nothing back."""
    paused: list[str] = field(default_factory=list)
    """Why each call paused on this budget waits, oldest first: one going on leaves the rest."""

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

    def hold(self, need: Spend) -> None:
        self.reserved = self.reserved + need
        self.holds += 1

    def release(self, need: Spend, used: Spend) -> None:
        """A call came back: its reservation goes, what it really used is spent."""
        self.holds -= 1
        self.reserved = self.reserved - need
        self.spent = self.spent + used

    def pause(self, why: str) -> None:
        self.paused.append(why)

    def unpause(self, why: str) -> None:
        self.paused.remove(why)

    @property
    def waiting(self) -> str | None:
        """Why the oldest call paused on this budget waits, while any does."""
        return self.paused[0] if self.paused else None

    def room(self) -> Room:
        """What is left, counting calls in flight; unlimited parts are infinite."""
        used = self.spent + self.reserved
        cost = math.inf if self.max_cost_usd is None else self.max_cost_usd - used.cost_usd
        tokens = math.inf if self.max_tokens is None else self.max_tokens - used.tokens
        return Room(cost, tokens)

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
            on_exceed=self.on_exceed,
            spent_usd=self.spent.cost_usd,
            spent_tokens=self.spent.tokens,
            reserved_usd=self.reserved.cost_usd,
            reserved_tokens=self.reserved.tokens,
            waiting=self.waiting,
        )


def short_of(ledgers: tuple[Ledger, ...], need: Spend) -> Ledger | None:
    """The ledger `need` does not fit in, counting calls in flight (one that never can first,
    then one with nothing in flight), or None when it fits in all of them."""
    short = [ledger for ledger in ledgers if not ledger.fits(need)]
    short.sort(key=lambda ledger: (ledger.fits(need, in_flight=False), ledger.holds > 0))
    return short[0] if short else None


def can_go_on(ledgers: tuple[Ledger, ...], need: Spend) -> bool:
    """Whether a call waiting for `need` can stop waiting: it fits, or a ledger that refuses
    it has no call in flight, so only raising the budget could make room."""
    short = short_of(ledgers, need)
    return short is None or short.holds == 0


def exceeded(ledger: Ledger, need: Spend, what: str) -> str:
    return (
        f"budget exceeded: {ledger.name()} is {ledger.limits()}, and {what} could "
        f"cost up to {dollars(need.cost_usd)} ({need.tokens} tokens) more"
    )


def dollars(amount: float) -> str:
    """`$0.00005`, `$0.5`, `$12.25`: up to eight decimals, no trailing zeros."""
    return "$" + (f"{amount:.8f}".rstrip("0").rstrip(".") if amount else "0")
