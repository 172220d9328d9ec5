"""An activity's failure as the workflow gets it: its message, the attempt count in its
details (so a step's failure can say how many attempts it took), and, for an
ApplicationError, its own type and retry hints."""

from __future__ import annotations

from temporalio.exceptions import ApplicationError


def with_attempt(exc: Exception, attempt: int, message: str) -> ApplicationError:
    if isinstance(exc, ApplicationError):
        return ApplicationError(
            message,
            {"attempt": attempt},
            type=exc.type,
            non_retryable=exc.non_retryable,
            next_retry_delay=exc.next_retry_delay,
        )
    return ApplicationError(message, {"attempt": attempt}, type=type(exc).__name__)
