"""An evaluation's report: every row scored by every evaluator, per variant; each
evaluator's mean (and pass rate) with a 95% bootstrap confidence interval; latency, tokens
and cost; the difference between variants and the rows where they disagree. One JSON shape
(`report`) that the terminal table, Markdown/HTML, JUnit and gates all read."""

from __future__ import annotations

import math
import random
from statistics import mean
from typing import Any

from engine.evals.evaluators import (
    IN_RUN,
    EvaluatorFile,
    LlmJudge,
    PythonEvaluator,
    Score,
    WorkflowEvaluator,
    compare,
)
from engine.evals.run import Collected, RowRun
from workflows.contracts import StepResult

RESAMPLES = 2000
CONFIDENCE = 0.95


def report(collected: Collected) -> dict[str, Any]:
    """The machine-readable report (`--json`, the REST API, the workbench)."""
    meta = collected.meta
    given = meta["evaluators"]  # none: the rows' runs, latency and cost alone
    evaluators = EvaluatorFile.model_validate({"evaluators": given}).evaluators if given else []
    names = meta["variants"]
    outputs = meta.get("outputs", [None] * len(names))
    rows = []
    scores: dict[str, dict[str, list[Score]]] = {v: {e.name: [] for e in evaluators} for v in names}
    for index, (row, runs) in enumerate(zip(collected.rows, collected.runs, strict=True)):
        shown: dict[str, Any] = {}
        for number, (variant, run) in enumerate(zip(names, runs, strict=True)):
            scored = {}
            for place, evaluator in enumerate(evaluators):
                output = evaluator.output or outputs[number]
                score = _score(evaluator, place, run, row, output)
                scores[variant][evaluator.name].append(score)
                scored[evaluator.name] = {
                    "score": score.value, "passed": score.passed,
                    "detail": score.detail, "error": score.error,
                }  # fmt: skip
            shown[variant] = {
                "status": run.status,
                "run": run.execution_id or None,
                "outputs": run.outputs,
                "error": run.error,
                "duration_ms": run.duration_ms,
                "usage": run.row_usage.model_dump(),
                "reused_from": run.reused_from,
                "scores": scored,
            }
        rows.append({"index": index, "line": meta["lines"][index], "row": row, "variants": shown})
    variants = {
        variant: _variant_summary(scores[variant], [runs[n] for runs in collected.runs])
        for n, variant in enumerate(names)
    }
    if any(isinstance(e, IN_RUN) and e.aggregate for e in evaluators):
        for number, variant in enumerate(names):
            found, errors = _aggregates(collected, evaluators, number)
            variants[variant]["aggregates"] = found
            if errors:
                variants[variant]["aggregate_errors"] = errors
    first = names[0]
    result: dict[str, Any] = {
        "id": collected.execution_id,
        "definition": meta["definition"],
        "dataset": meta.get("dataset"),
        "rows": rows,
        "metrics": variants[first]["metrics"],
        "variants": variants,
        "usage": {**collected.usage.model_dump(), "seconds": round(collected.seconds, 3)},
        "cache": {
            "rows": collected.reused_runs,
            "verdicts": collected.reused_verdicts,
            "from": collected.reused_from,
            "saved_usd": round(collected.saved.cost_usd, 8),
            "saved_tokens": collected.saved.input_tokens + collected.saved.output_tokens,
        },
    }
    if "aggregates" in variants[first]:
        result["aggregates"] = variants[first]["aggregates"]
    if len(names) > 1:
        result["comparisons"] = {
            f"{other} - {first}": _comparison(scores[first], scores[other], rows, first, other)
            for other in names[1:]
        }
    return result


def _score(
    evaluator: Any, place: int, run: RowRun, row: dict[str, Any], output: str | None
) -> Score:
    if run.status != "completed" and isinstance(evaluator, IN_RUN):
        # nothing to judge: an error, not a score off the judge's scale or a failed pass
        return Score(None, error=f"not judged: the row's run {run.status}: {run.error}")
    if run.status != "completed":
        return Score(0.0, False, f"the row's run {run.status}: {run.error}")
    if not isinstance(evaluator, IN_RUN):
        actual = run.outputs if output is None else (run.outputs or {}).get(output)
        return compare(evaluator, actual, row)
    judged: StepResult | None = run.judged.get(place)
    if judged is None or judged.status != "completed" or not judged.outputs:
        why = judged.error if judged is not None else "not run"
        return Score(None, error=f"{evaluator.type} failed: {why}")
    if isinstance(evaluator, PythonEvaluator):
        return _python_score(judged.outputs.get("result"))
    value = judged.outputs.get("score")
    if isinstance(evaluator, WorkflowEvaluator) and "score" not in judged.outputs:
        return Score(None, detail="no score: this evaluation flow gives none per row")
    if not isinstance(value, int | float):
        return Score(None, error=f"{evaluator.type} returned no number `score`: {value!r}")
    passed = judged.outputs.get("passed")
    if isinstance(evaluator, LlmJudge):
        passed = None if evaluator.pass_at is None else value >= evaluator.pass_at
        return Score(float(value), passed, judged.outputs.get("reasons"))
    assert isinstance(evaluator, WorkflowEvaluator)
    return Score(float(value), passed if isinstance(passed, bool) else None)


def _aggregates(
    collected: Collected, evaluators: list[Any], variant: int
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Each aggregator's metrics on one variant's rows, and why any has none."""
    found: dict[str, dict[str, Any]] = {}
    errors: dict[str, str] = {}
    for number, evaluator in enumerate(evaluators):
        if not isinstance(evaluator, IN_RUN) or not evaluator.aggregate:
            continue
        step = collected.aggregates.get((variant, number))
        metrics = (step.outputs or {}).get(f"metrics_v{variant}_e{number}") if step else None
        if step is None or step.status != "completed":
            why = step.error if step is not None else "not run: the evaluation stopped first"
            errors[evaluator.name] = f"aggregate {evaluator.aggregate} failed: {why}"
        elif not isinstance(metrics, dict) or not all(isinstance(k, str) for k in metrics):
            errors[evaluator.name] = (
                f"aggregate {evaluator.aggregate} returned {metrics!r}, not {{metric: value}}"
            )
        else:
            found[evaluator.name] = metrics
    return found, errors


def _python_score(answer: Any) -> Score:
    """What a Python evaluator returned: a number, (score, passed) or {score, passed, detail}."""
    if isinstance(answer, bool):
        return Score(1.0 if answer else 0.0, answer)
    if isinstance(answer, int | float):
        return Score(float(answer))
    if isinstance(answer, list) and len(answer) == 2 and isinstance(answer[0], int | float):
        return Score(float(answer[0]), bool(answer[1]))
    if isinstance(answer, dict) and isinstance(answer.get("score"), int | float):
        passed = answer.get("passed")
        detail = answer.get("detail")
        return Score(
            float(answer["score"]),
            passed if isinstance(passed, bool) else None,
            str(detail) if detail is not None else None,
        )
    return Score(None, error=f"python evaluator returned {answer!r}, not a score")


def _variant_summary(scores: dict[str, list[Score]], runs: list[RowRun]) -> dict[str, Any]:
    durations = sorted(run.duration_ms for run in runs if run.status == "completed")
    usage = [run.row_usage for run in runs]
    count = len(runs) or 1
    return {
        "metrics": {name: _metric(found) for name, found in scores.items()},
        "rows": len(runs),
        "rows_failed": sum(run.status != "completed" for run in runs),
        "latency_ms": {"p50": _percentile(durations, 50), "p95": _percentile(durations, 95)},
        "tokens_per_row": sum(u.input_tokens + u.output_tokens for u in usage) / count,
        "cost_usd_per_row": round(sum(u.cost_usd for u in usage) / count, 8),
        "cost_usd": round(sum(u.cost_usd for u in usage), 8),
    }


def _metric(scores: list[Score]) -> dict[str, Any]:
    """Mean with its bootstrap interval; pass rate where the evaluator passes or fails."""
    values = [s.value for s in scores if s.value is not None]
    metric: dict[str, Any] = {
        "mean": mean(values) if values else None,
        "ci95": _interval(values),
        "n": len(values),
        "errors": sum(s.error is not None for s in scores),
    }
    passes = [s.passed for s in scores if s.passed is not None]
    if passes:
        metric["pass_rate"] = sum(passes) / len(passes)
    return metric


def _comparison(
    base: dict[str, list[Score]],
    other: dict[str, list[Score]],
    rows: list[dict[str, Any]],
    first: str,
    second: str,
) -> dict[str, Any]:
    """Per evaluator: the mean difference over rows both scored, its paired bootstrap
    interval, and the rows whose scores differ."""
    found: dict[str, Any] = {}
    for name, scored in base.items():
        pairs = [
            (index, a.value, b.value)
            for index, (a, b) in enumerate(zip(scored, other[name], strict=True))
            if a.value is not None and b.value is not None
        ]
        differences = [b - a for _, a, b in pairs]
        found[name] = {
            "difference": mean(differences) if differences else None,
            "ci95": _interval(differences),
            "disagree": [
                {"index": index, "line": rows[index]["line"], first: a, second: b}
                for index, a, b in pairs
                if a != b
            ],
        }
    return found


def _interval(values: list[float]) -> list[float] | None:
    """A 95% percentile bootstrap interval of the mean, the same for the same values."""
    if not values:
        return None
    draw = random.Random(len(values))
    means = sorted(sum(draw.choices(values, k=len(values))) / len(values) for _ in range(RESAMPLES))
    tail = (1 - CONFIDENCE) / 2
    return [means[int(tail * RESAMPLES)], means[min(RESAMPLES - 1, int((1 - tail) * RESAMPLES))]]


def _percentile(values: list[int], percent: float) -> int | None:
    if not values:
        return None
    return values[min(len(values) - 1, max(0, math.ceil(percent / 100 * len(values)) - 1))]
