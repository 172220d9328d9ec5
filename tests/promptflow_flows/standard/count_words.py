from promptflow.core import tool


@tool
def count_words(text: str, label: str = "words") -> dict:
    return {"words": len(text.split()), "label": label}
