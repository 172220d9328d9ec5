"""Log lines: JSON (or console in a terminal) for structlog and stdlib loggers alike."""

from __future__ import annotations

import logging
import sys

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger


def _drop_colour(logger: WrappedLogger, method: str, event: EventDict) -> EventDict:
    """Uvicorn passes a coloured copy of each message as `color_message`: escape codes that
    a JSON line must not carry (the plain message is kept)."""
    event.pop("color_message", None)
    return event


def configure_logging() -> None:
    """JSON lines (console in a terminal) for structlog and stdlib loggers alike, so the
    workflow's replay-safe `workflow.logger` lines carry the run's ids too."""
    shared: list[Processor] = [
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso"),
    ]
    renderer = (
        structlog.dev.ConsoleRenderer()
        if sys.stderr.isatty()
        else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder(), _drop_colour],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(logging.INFO)
    logging.getLogger("temporalio").setLevel(logging.WARNING)
    logging.getLogger("temporalio.workflow").setLevel(logging.INFO)
    for noisy in ("httpx", "httpcore", "openai", "anthropic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
