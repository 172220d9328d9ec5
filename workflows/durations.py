"""Durations as the DSL writes them: "500ms", "30s", "5m", "2h", "1d" or a number of seconds."""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")

Duration = str | int | float


def parse_duration(value: Duration) -> timedelta:
    """Return the duration as a timedelta, or raise ValueError saying what is accepted."""
    if isinstance(value, bool):
        raise ValueError(f"invalid duration {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _PATTERN.match(value)
        if match is None:
            raise ValueError(
                f"invalid duration {value!r}: use a number of seconds or e.g. '500ms', '30s', "
                "'5m', '2h', '1d'"
            )
        seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    if seconds < 0:
        raise ValueError(f"invalid duration {value!r}: must not be negative")
    return timedelta(seconds=seconds)
