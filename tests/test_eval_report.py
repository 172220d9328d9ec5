"""The report of an evaluation read back from its runs (engine/evals/report.py), without a
server: what each evaluator makes of rows whose run did not complete."""

from __future__ import annotations

from engine.evals.report import report
from engine.evals.run import Collected, RowRun
from workflows.contracts import StepResult, Usage

EVALUATORS = [
    {"name": "accuracy", "type": "exact_match", "output": "category",
     "expected": "{{ row.label }}"},
    {"name": "helpful", "type": "llm_judge", "model": "claude-haiku-4-5", "rubric": "R",
     "scale": [1, 5]},
]  # fmt: skip


def judged(score: float) -> StepResult:
    outputs = {"score": score, "reasons": "fine"}
    return StepResult(status="completed", outputs=outputs, attempts=1, duration_ms=5, usage=Usage())


def test_a_row_that_never_ran_is_not_judged_and_keeps_a_judge_on_its_scale():
    ran = RowRun("completed", {"category": "bug"}, judged={1: judged(4)})
    stopped = RowRun("pending", error="not run: the evaluation stopped before this row")
    meta = {"definition": "d.yaml", "lines": [1, 2], "variants": ["base"],
            "evaluators": EVALUATORS, "outputs": ["category"]}  # fmt: skip
    rows = [{"label": "bug"}, {"label": "bug"}]
    found = report(Collected("eval-x", meta, rows, [[ran], [stopped]], Usage(), 1.0))
    helpful = found["metrics"]["helpful"]
    assert helpful["mean"] == 4.0 and helpful["n"] == 1 and helpful["errors"] == 1
    assert "pass_rate" not in helpful  # no pass_at: the judge passes or fails nothing
    assert found["metrics"]["accuracy"]["mean"] == 0.5  # a comparison scores it 0
    score = found["rows"][1]["variants"]["base"]["scores"]["helpful"]
    assert score["score"] is None and "not judged: the row's run pending" in score["error"]


def test_an_aggregators_error_on_several_lines_keeps_each_table_row_on_one():
    from engine.evals.output import markdown, terminal

    evaluators = [{"name": "py", "type": "python", "function": "f", "aggregate": "share"}]
    meta = {"definition": "d.yaml", "lines": [1], "variants": ["base"],
            "evaluators": evaluators, "outputs": ["category"]}  # fmt: skip
    verdict = judged(1).model_copy(update={"outputs": {"result": 1}})
    run = RowRun("completed", {"category": "bug"}, judged={0: verdict})
    failed = StepResult(status="failed", outputs=None, attempts=5, duration_ms=1, usage=Usage(),
                        error="ValueError: line one\nline two | pipe")  # fmt: skip
    collected = Collected("eval-x", meta, [{}], [[run]], Usage(), 1.0, aggregates={(0, 0): failed})
    found = report(collected)
    tables = markdown(found).split("\n\n")[2:]
    assert all(line.startswith("|") for table in tables for line in table.strip().splitlines())
    assert "ValueError: line one line two \\| pipe |" in markdown(found)
    assert "ValueError: line one line two | pipe\n" in terminal(found)
