"""The workbench's evaluation report (`/runs/ID/evaluation`): an ended evaluation's report
(engine/evals/report.py, as `GET /evaluations/ID` answers it) as a page: each variant's
metrics with their intervals, latency and cost, and per pair of variants their difference
and the rows they disagree on, with each row's input, outputs, scores and run.

The page sits under `/runs` because the JSON API owns `/evaluations/ID`, and a page path
never shares one with the API (the session cookie is read for page paths only). Rows are
a dataset's text: the templates escape them like any value from a run."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel

from engine.evals.output import (
    aggregate_table,
    comparison_tables,
    metric_table,
    reuse_line,
    run_table,
)
from engine.rest_deps import engine
from engine.rest_errors import ApiError
from engine.rest_evals import evaluation_report
from engine.web_render import problem, render
from engine.web_view import pretty
from workflows.errors import WorkflowError

MAX_ROWS_SHOWN = 100
"""Disagreeing rows shown per pair of variants; the count says how many more there are."""

router = APIRouter()


class RowRun(BaseModel):
    """One variant's run of a row, as the page shows it."""

    variant: str
    status: str
    run: str | None
    outputs: str
    error: str | None
    scores: dict[str, dict[str, Any]]


class Disagreement(BaseModel):
    index: int
    line: int
    input: str
    """The dataset row, pretty JSON, shown as text."""
    evaluators: list[str]
    """The evaluators whose scores differ on this row."""
    runs: list[RowRun]


class Comparison(BaseModel):
    pair: str
    table: list[list[str]]
    rows: list[Disagreement]
    more: int


def comparisons(report: dict[str, Any]) -> list[Comparison]:
    """Per pair (`other - base`): the rows whose scores differ on any evaluator, in dataset
    order, with both variants' runs."""
    found = []
    rows = report["rows"]
    pairs = report.get("comparisons", {})
    for pair, table in comparison_tables(report):
        by_evaluator = pairs[pair]
        other, _, first = pair.partition(" - ")
        differ: dict[int, list[str]] = {}
        for evaluator, compared in by_evaluator.items():
            for row in compared["disagree"]:
                differ.setdefault(row["index"], []).append(evaluator)
        shown = [
            Disagreement(
                index=index,
                line=rows[index]["line"],
                input=pretty(rows[index]["row"]),
                evaluators=names,
                runs=[_run(name, rows[index]["variants"][name]) for name in (first, other)],
            )
            for index, names in sorted(differ.items())[:MAX_ROWS_SHOWN]
        ]
        found.append(Comparison(pair=pair, table=table, rows=shown, more=len(differ) - len(shown)))
    return found


def _run(variant: str, run: dict[str, Any]) -> RowRun:
    return RowRun(
        variant=variant,
        status=run["status"],
        run=run.get("run"),
        outputs=pretty(run["outputs"]),
        error=run["error"],
        scores=run["scores"],
    )


@router.get("/runs/{execution_id:path}/evaluation")
async def evaluation_page(execution_id: str, request: Request) -> Response:
    try:
        report = await evaluation_report(await engine(request), execution_id)
    except ApiError as exc:  # still running: its report comes when it ends
        return render(request, "evaluation.html", exc.status, title=f"Evaluation {execution_id}",
                      run_id=execution_id, report=None, running=exc.message)  # fmt: skip
    except WorkflowError as exc:
        return problem(request, exc)
    return render(request, "evaluation.html", title=f"Evaluation {execution_id}",
                  run_id=execution_id, report=report, metrics=metric_table(report),
                  aggregates=aggregate_table(report), runs=run_table(report),
                  comparisons=comparisons(report), running=None,
                  reused=reuse_line(report))  # fmt: skip
