from promptflow import tool


@tool
def tidy(text: str, words: int) -> str:
    return f"{' '.join(text.split())} ({words} words)"
