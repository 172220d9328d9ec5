"""A Python evaluator and an aggregator for tests/test_evals.py
(ACTION_MODULES=tests.eval_functions)."""

from __future__ import annotations

from typing import Any

from activities.registry import aggregator, evaluator


@evaluator("same_label")
def same_label(row: dict[str, Any], outputs: dict[str, Any] | None) -> dict[str, Any]:
    right = (outputs or {}).get("category") == row["label"]
    return {"score": 1 if right else 0, "passed": right, "detail": f"wanted {row['label']}"}


@aggregator("share_right")
def share_right(lines: dict[str, list[Any]]) -> dict[str, Any]:
    """Over every row scored at once: the share right, and how many rows there were."""
    passed = lines["passed"]
    return {"share": sum(passed) / len(passed), "rows": len(passed)}
