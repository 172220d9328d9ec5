"""The "did you mean" after an unknown name, shared by every check that names one."""

from __future__ import annotations

import difflib


def suggest(word: str, choices: set[str]) -> str:
    close = difflib.get_close_matches(word, sorted(choices), n=1)
    return f" — did you mean '{close[0]}'?" if close else ""
