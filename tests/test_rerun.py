"""The rerun rule, without a server: what a rerun (or the next run after continue-as-new)
takes as it is."""

from __future__ import annotations

import pytest

from tests.conftest import definition
from workflows.contracts import ItemResult, RunInput, RunStatus, StepResult, Usage
from workflows.rerun import rerun_plan

CHAIN = """
workflow:
  name: chain
  steps:
    - {id: a, type: set, values: {x: 1}}
    - {id: b, type: set, values: {y: "{{ x }}"}}
    - {id: c, type: set, for_each: "{{ [1, 2, 3] }}", values: {z: "{{ item }}"}}
    - {id: d, type: set, depends_on: [a], values: {w: 2}}
"""


def done(tokens: int) -> StepResult:
    return StepResult(
        status="completed", outputs={}, attempts=1, duration_ms=1, usage=Usage(input_tokens=tokens)
    )


def item(tokens: int) -> ItemResult:
    return ItemResult(item=1, outputs={}, attempts=1, usage=Usage(input_tokens=tokens))


STATUS = RunStatus(
    steps={"a": done(1), "b": done(10), "d": done(100)}, items={"c": {0: item(1000)}}
)


def test_a_rerun_reuses_completed_steps_and_finished_items():
    plan = rerun_plan(RunInput(definition=definition(CHAIN)), STATUS)
    assert set(plan.reuse) == {"a", "b", "d"} and plan.item_count == 1
    assert plan.saved.input_tokens == 1111


def test_from_a_step_reruns_it_and_everything_that_waits_for_it():
    plan = rerun_plan(RunInput(definition=definition(CHAIN)), STATUS, from_step="b")
    assert set(plan.reuse) == {"a", "d"} and plan.item_count == 0
    assert plan.saved.input_tokens == 101


def test_an_unknown_step_is_refused():
    with pytest.raises(ValueError, match="no step 'zz'"):
        rerun_plan(RunInput(definition=definition(CHAIN)), STATUS, from_step="zz")
