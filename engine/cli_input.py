"""What the command line reads from its options: `--var name=value` pairs and a signal's
`--input` JSON, each refused in one line that says what to write instead."""

from __future__ import annotations

import json
from typing import Any

from workflows.errors import UsageError


def parse_vars(pairs: list[str]) -> dict[str, str]:
    """`--var name=value` pairs as text; the definition's declared types decide how each is
    read (workflows.validation.typed_variables)."""
    texts: dict[str, str] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--var {pair!r}: write --var name=value")
        texts[key] = raw
    return texts


def json_input(text: str | None) -> Any:
    """A signal's `--input`; none is an empty payload."""
    try:
        return json.loads(text) if text is not None else {}
    except json.JSONDecodeError as exc:
        raise UsageError(f"--input is not JSON: {exc}") from None
    except RecursionError:  # thousands of levels
        raise UsageError("--input nests too many levels of JSON to read") from None
