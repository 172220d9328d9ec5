"""A Python node of the classify flow: the model's reply kept to one known label."""

from promptflow.core import tool

LABELS = ("billing", "bug", "other")


@tool
def normalize(reply: str) -> dict:
    word = reply.strip().strip(".!").lower()
    return {"category": word if word in LABELS else "other"}
