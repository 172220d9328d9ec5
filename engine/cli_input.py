"""What the command line reads from its options: a run's file, `--var name=value` pairs
and `--replies`, and a signal's `--input` JSON, each refused in one line that says what to
write instead. Light on purpose: what loads definitions is imported when a command runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workflows.errors import UsageError

if TYPE_CHECKING:
    from engine.settings import Settings
    from workflows.contracts import LoadedDefinition
    from workflows.scripts import Script


def run_input(
    file: str, pairs: list[str], replies: str | None, settings: Settings
) -> tuple[LoadedDefinition, dict[str, Any], Script | None]:
    """The definition file, checked; its `--var`s, typed as it declares them; and the
    scripted replies by step id of `--replies` (engine/testing/files.py), if given."""
    from engine.definition_files import load_file
    from workflows.validation import typed_variables

    loaded = load_file(file, settings)
    variables = typed_variables(loaded.definition, parse_vars(pairs))
    if not replies:
        return loaded, variables, None
    from engine.testing.files import load_replies

    return loaded, variables, load_replies(Path(replies), loaded)


def parse_vars(pairs: list[str]) -> dict[str, str]:
    """`--var name=value` pairs as text; the definition's declared types decide how each is
    read (workflows.validation.typed_variables)."""
    return name_values(pairs, "--var", "--var name=value")


def name_values(
    given: list[str], flag: str, form: str = "NAME=VALUE", empty: bool = True
) -> dict[str, str]:
    """Repeated `NAME=VALUE` options as a dict (a later NAME wins); one line for a bad one.
    `empty`: whether VALUE may be empty."""
    found: dict[str, str] = {}
    for text in given:
        key, equals, value = text.partition("=")
        if not equals or not key or not (value or empty):
            raise UsageError(f"{flag} {text!r}: write {form}")
        found[key] = value
    return found


def json_input(text: str | None) -> Any:
    """A signal's `--input`; none is an empty payload."""
    try:
        return json.loads(text) if text is not None else {}
    except json.JSONDecodeError as exc:
        raise UsageError(f"--input is not JSON: {exc}") from None
    except RecursionError:  # thousands of levels
        raise UsageError("--input nests too many levels of JSON to read") from None
