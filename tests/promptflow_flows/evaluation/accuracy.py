"""The aggregation node of the evaluation flow: it receives every line's grade at once."""

from promptflow.core import log_metric, tool


@tool
def accuracy(grades: list) -> float:
    share = sum(1 for g in grades if g == "Correct") / len(grades) if grades else 0.0
    log_metric("accuracy", round(share, 3))
    return share
