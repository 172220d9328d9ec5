"""How long a server asked us to wait before retrying."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from datetime import timedelta


def retry_after(headers: Mapping[str, str]) -> timedelta | None:
    """Retry-After (seconds or an HTTP date) or retry-after-ms, as the provider asked."""
    if (millis := headers.get("retry-after-ms")) is not None:
        try:
            return timedelta(milliseconds=max(float(millis), 0))
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return timedelta(seconds=max(float(value), 0))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return timedelta(seconds=max(when.timestamp() - time.time(), 0))
