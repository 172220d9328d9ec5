"""The words the command line prints for a run, pinned: scripts read `status`, `list`,
`cancel` and `run` output, so a change of wording or spacing is a change users see. No
server needed (the subprocess tests in test_starter.py cover the wiring)."""

from __future__ import annotations

from datetime import UTC, datetime

from engine.cli_output import (
    budget_line,
    cancelled_line,
    rerun_note,
    result_lines,
    run_line,
    status_lines,
    usage_note,
)
from engine.client_models import Execution, ExecutionStatus, Rerun
from workflows.contracts import BudgetStatus, RunResult, StepResult, Usage

STARTED = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)


def step(status: str = "completed", **outputs: object) -> StepResult:
    error = "HTTP 500" if status == "failed" else None
    usage = Usage(input_tokens=3, output_tokens=4)
    return StepResult(
        status=status, outputs=outputs or None, attempts=2, duration_ms=15, usage=usage, error=error
    )


def test_a_result_shows_declared_outputs_else_each_steps():
    usage = Usage(input_tokens=10, output_tokens=20, cost_usd=0.0001234)
    steps = {"draft": step(text="hi"), "count": step(n=3)}
    declared = RunResult(
        execution_id="r", workflow_name="w", status="completed", outputs={"summary": "ok"},
        steps=steps, usage=usage,
    )  # fmt: skip
    assert result_lines(declared) == ["summary: ok"]
    undeclared = declared.model_copy(update={"outputs": {}})
    assert result_lines(undeclared) == ["draft.text: hi", "count.n: 3"]
    assert usage_note(declared) == (
        "completed 2 step(s), 10 input and 20 output tokens, estimated $0.000123"
    )


def test_a_status_names_each_step_and_output():
    status = ExecutionStatus(
        execution_id="r", execution_status="failed", workflow_name="w", total_steps=3,
        steps={"draft": step(text="hi"), "send": step("failed")}, outputs={"n": [1, 2]},
    )  # fmt: skip
    lines = status_lines("r", status)
    assert lines[0] == "r (w): failed"
    assert lines[1].startswith("[2/3 steps] running: -; tokens 0 in / 0 out")
    assert lines[2:] == [
        "  draft: completed, 2 attempt(s), 15 ms",
        "  send: failed, 2 attempt(s), 15 ms — HTTP 500",
        "  n = [1, 2]",
    ]
    assert cancelled_line("r", status) == "r: failed; steps finished before: draft"
    nothing = status.model_copy(update={"steps": {}})
    assert cancelled_line("r", nothing) == "r: failed; steps finished before: none"


def test_a_listed_run_is_one_line():
    run = Execution(
        execution_id="r", workflow_name=None, status="running", steps_done=None, started_at=STARTED
    )
    assert run_line(run) == "r  -  running  steps done: -  2026-01-31T12:00:00+00:00"


def test_a_rerun_says_what_it_reused_and_saved():
    rerun = Rerun(
        execution_id="r-resumed-1", rerun_of="r", reused_steps=["draft"], reused_items=2,
        saved=Usage(input_tokens=5, output_tokens=6),
    )  # fmt: skip
    assert rerun_note("r", rerun) == (
        "resumed r as r-resumed-1: reused draft and 2 finished for_each item(s) "
        "(5 input and 6 output tokens not spent again)"
    )
    none = rerun.model_copy(update={"reused_steps": [], "reused_items": 0})
    assert rerun_note("r", none).startswith("resumed r as r-resumed-1: reused no steps (5 input")


def test_a_raised_budget_is_one_line():
    budget = BudgetStatus(scope="run", max_cost_usd=0.5, spent_usd=0.0031)
    assert budget_line("r", budget) == "r: run budget now $0.0031 of $0.5"
