"""The budget's rules as a pure object (workflows/ledger.py), under any order of events: calls
reserving, settling, failing, an operator raising the budget. A run always ends completed,
failed or waiting for the budget (never stuck with nothing in flight), and never spends past
its limit when no call uses more than it reserved."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from hypothesis import example, given, settings
from hypothesis import strategies as st

from workflows.budget import Budgets, input_bound
from workflows.contracts import LlmCallInput, ModelPrice
from workflows.ledger import RUN, Ledger, Spend, can_go_on, short_of


@dataclass
class Call:
    """One model call as workflows/budget.py's reserve loop runs it."""

    ledgers: tuple[Ledger, ...]
    need: Spend
    state: str = "new"  # new | waiting | paused | flight | done
    paused_on: Ledger | None = None

    def may_run(self) -> bool:
        """Whether the loop would be woken (or has not started yet)."""
        if self.state == "new":
            return True
        if self.state == "waiting":
            return can_go_on(self.ledgers, self.need)
        if self.state == "paused":
            assert self.paused_on is not None
            return self.paused_on.fits(self.need, in_flight=False)
        return False

    def run(self) -> str | None:
        """One turn of the reserve loop; 'failed' when the run fails."""
        if self.state == "paused":
            assert self.paused_on is not None
            self.paused_on.unpause(f"call {id(self)}")
            self.paused_on = None
        short = short_of(self.ledgers, self.need)
        if short is None:
            for ledger in self.ledgers:
                ledger.hold(self.need)
            self.state = "flight"
        elif short.holds:
            self.state = "waiting"
        elif short.on_exceed == "fail":
            return "failed"
        else:
            short.pause(f"call {id(self)}")
            self.paused_on, self.state = short, "paused"
        return None

    def settle(self, fraction: float) -> Spend:
        """The reply came back having used `fraction` of the worst case (0: the call failed;
        over 1: the provider counted more than was reserved). Returns the excess."""
        used = Spend(round(self.need.cost_usd * fraction, 8), int(self.need.tokens * fraction))
        for ledger in self.ledgers:
            ledger.release(self.need, used)
        self.state = "done"
        return Spend(
            max(used.cost_usd - self.need.cost_usd, 0), max(used.tokens - self.need.tokens, 0)
        )


def outcome(calls: list[Call]) -> str:
    if all(call.state == "done" for call in calls):
        return "completed"
    if any(call.state == "paused" for call in calls):
        return "waiting"
    return "stuck"


limits = st.tuples(
    st.one_of(st.none(), st.integers(1, 200).map(lambda n: n / 1_000_000)),
    st.one_of(st.none(), st.integers(1, 500)),
).filter(lambda pair: pair != (None, None))
needs = st.builds(Spend, st.integers(0, 60).map(lambda n: n / 1_000_000), st.integers(1, 150))
events = st.lists(
    st.tuples(
        st.sampled_from(["run", "settle", "fail", "raise"]),
        st.integers(0, 20),
        st.floats(0, 1),
    ),
    max_size=80,
)


@settings(max_examples=400, deadline=None)
@example(  # two calls pause on one budget; a raise lets the smaller go on, the other waits
    run_limit=(1e-06, None),
    step_limit=(None, 1),
    on_exceed="pause",
    call_needs=[Spend(0.0, 3), Spend(0.0, 2)],
    script=[("run", 1, 0.0), ("raise", 0, 0.0)],
    overs=[],
)
@given(
    run_limit=limits,
    step_limit=st.one_of(st.none(), limits),
    on_exceed=st.sampled_from(["fail", "pause"]),
    call_needs=st.lists(needs, min_size=1, max_size=15),
    script=events,
    overs=st.lists(st.sampled_from([0.0, 0.0, 0.0, 0.5, 2.0]), max_size=15),
)
def test_any_order_of_events_ends_completed_failed_or_waiting_within_the_limit(
    run_limit, step_limit, on_exceed, call_needs, script, overs
):
    """`overs`: calls the provider counts over their reservation (by 1.5x or 3x)."""
    run = Ledger(RUN, *run_limit, on_exceed)
    ledgers = [run]
    if step_limit is not None:
        ledgers.insert(0, Ledger("step", *step_limit, on_exceed))
    calls = [Call(tuple(ledgers), need) for need in call_needs]
    bounds = {id(ledger): (ledger.max_cost_usd, ledger.max_tokens) for ledger in ledgers}
    excess = [Spend()]  # E: what calls used over their reservations (docs/language.md)
    over = {index: 1 + fraction for index, fraction in enumerate(overs)}

    def within() -> None:
        """spent <= limit + E; with no call over its reservation, E = 0."""
        e = excess[0]
        for ledger in ledgers:
            most_usd, most_tokens = bounds[id(ledger)]
            assert most_usd is None or ledger.spent.cost_usd <= round(most_usd + e.cost_usd, 8)
            assert most_tokens is None or ledger.spent.tokens <= most_tokens + e.tokens
            assert ledger.holds == sum(call.state == "flight" for call in calls)

    def act(kind: str, pick: int, fraction: float) -> str | None:
        if kind == "raise":  # the operator's `budget` update: only ever up
            ledger = ledgers[pick % len(ledgers)]
            if ledger.max_tokens is not None:
                ledger.max_tokens += 1 + int(fraction * 300)
            if ledger.max_cost_usd is not None:
                ledger.max_cost_usd = round(ledger.max_cost_usd + fraction / 10_000, 8)
            bounds[id(ledger)] = (ledger.max_cost_usd, ledger.max_tokens)
            return None
        wanted = "flight" if kind in ("settle", "fail") else None
        ready = [c for c in calls if (c.state == wanted if wanted else c.may_run())]
        if not ready:
            return None
        call = ready[pick % len(ready)]
        if wanted:
            used = fraction * over.get(calls.index(call), 1) if kind == "settle" else 0.0
            excess[0] = excess[0] + call.settle(used)
            return None
        return call.run()

    for kind, pick, fraction in script:
        if act(kind, pick, fraction) == "failed":
            within()
            assert run.holds == 0  # failed only once the calls in flight had settled
            return
        within()
    # then the run goes on by itself: calls run, replies come back, no operator
    while True:
        ready = [c for c in calls if c.may_run()]
        flying = [c for c in calls if c.state == "flight"]
        if not ready and not flying:
            break
        if ready:
            if ready[0].run() == "failed":
                within()
                assert sum(c.state == "flight" for c in calls) == 0
                return
        else:
            excess[0] = excess[0] + flying[0].settle(over.get(calls.index(flying[0]), 1))
        within()
    assert outcome(calls) != "stuck", [(c.state, c.need) for c in calls]
    if outcome(calls) == "waiting":  # and the budget each paused call waits on says so
        assert on_exceed == "pause"
        assert all(c.paused_on.waiting for c in calls if c.paused_on is not None)


def call_of(prompt: str, model: str = "gpt-4o-mini") -> LlmCallInput:
    return LlmCallInput(step_id="s", provider="openai", model=model, prompt=prompt, max_tokens=10)


@given(st.text(max_size=300))
def test_the_input_bound_is_at_least_the_texts_utf8_bytes(text):
    """No byte-level BPE tokenizer makes more tokens than bytes, so the bound is sound."""
    assert input_bound(call_of(text)) >= len(text.encode("utf-8", "surrogatepass")) + 16


def test_a_reply_counted_over_its_bound_teaches_the_models_ratio():
    prices = {f"openai/{m}": ModelPrice(input=0.15, output=0.6) for m in ("gpt-4o-mini", "o3")}
    budgets = Budgets({RUN: Ledger(RUN, None, 10_000, "fail")}, prices)
    call = call_of("hello there")
    hold = asyncio.run(budgets.reserve_call(tuple(budgets.ledgers.values()), call, "a call"))
    assert hold.need.tokens == hold.counted + 10  # the bound, while nothing is learned
    budgets.settle(hold, Spend(0, 400), billed_input=3 * hold.counted)
    later = call_of("hello there, again")
    assert budgets.worst_case(later).tokens >= 3 * input_bound(later) + 10
    other = call_of("hi", model="o3")  # another model has learned nothing
    assert budgets.worst_case(other).tokens == input_bound(other) + 10
