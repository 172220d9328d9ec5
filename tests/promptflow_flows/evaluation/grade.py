"""A line node of the evaluation flow: one prediction against its label."""

from promptflow.core import tool


@tool
def grade(groundtruth: str, prediction: str) -> str:
    same = groundtruth.strip().lower() == prediction.strip().lower()
    return "Correct" if same else "Incorrect"
