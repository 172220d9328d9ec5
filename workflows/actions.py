"""The built-in actions' params (DSL.md, "action"), checked before a run starts.

Rendered params are validated again, fully, by the activity that runs the action.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from workflows.durations import Duration


class ActionParams(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, serialize_by_alias=True)

    operator_params: ClassVar[frozenset[str]] = frozenset()
    """Params that choose where the action writes or what it may reach, not what it does:
    a model calling the action as a tool may not set them unless the definition's tool
    entry offers them (`offer:`). A custom action's params model may declare its own."""


def operator_params(model: type[BaseModel]) -> frozenset[str]:
    """An action's operator-level params (none for a params model that declares none)."""
    declared = getattr(model, "operator_params", ())
    listed = isinstance(declared, frozenset | set | tuple | list)
    return frozenset(declared) if listed else frozenset()


class HttpFetchParams(ActionParams):
    """http_fetch: a GET request; returns {status, headers, text, truncated, json}."""

    url: str = Field(
        description="The URL to GET; private and loopback addresses are refused unless the "
        "worker's HTTP_ALLOWLIST names them."
    )
    headers: dict[str, str] = Field(
        default={}, description="Request headers; may hold {{ secrets.NAME }}."
    )
    timeout: Duration = Field(default="30s", description="The request's time limit. Default: 30s.")


class HttpPostParams(ActionParams):
    """http_post: a POST request with an Idempotency-Key header that is the same on every retry."""

    url: str = Field(
        description="The URL to POST to; private and loopback addresses are refused unless "
        "the worker's HTTP_ALLOWLIST names them."
    )
    json_body: Any = Field(
        default=None, alias="json", description="A body sent as JSON (wins over data)."
    )
    data: Any = Field(
        default=None, description="A body sent as a form (a mapping) or as it is (text)."
    )
    headers: dict[str, str] = Field(
        default={}, description="Request headers; may hold {{ secrets.NAME }}."
    )
    timeout: Duration = Field(default="30s", description="The request's time limit. Default: 30s.")


class SendEmailParams(ActionParams):
    """send_email: a plain-text mail through the worker's SMTP server."""

    to: str | list[str] = Field(description="One address or a list of 1 to 50.")
    subject: str = Field(description="The subject line (no line breaks).")
    body: str = Field(description="The plain-text body.")


class SaveToFileParams(ActionParams):
    """save_to_file: writes a file atomically; returns {path, bytes}."""

    operator_params = frozenset({"shared"})

    filename: str = Field(description="The file's name.")
    data: Any = Field(description="What to write: text as it is, anything else as pretty JSON.")
    path: str = Field(
        default="",
        description="A relative folder inside the run's own folder "
        "(OUTPUT_DIR/runs/<workflow id>/). Default: that folder itself.",
    )
    shared: bool = Field(
        default=False,
        description="true: write under OUTPUT_DIR/shared/ instead, where runs can overwrite "
        "each other's files. Default: false.",
    )


class DatabaseInsertParams(ActionParams):
    """database_insert: inserts rows; returns {table, inserted_ids, skipped}."""

    operator_params = frozenset({"table", "connection"})

    table: str = Field(description="The table; a missing one is created from the first row.")
    data: dict[str, Any] | list[dict[str, Any]] = Field(description="One row or a list of rows.")
    connection: str = Field(
        default="default",
        description="default: the worker's DATABASE_URL; NAME: its DATABASE_URL_NAME. "
        "Default: default.",
    )


class SleepParams(ActionParams):
    """sleep: a durable timer inside the workflow."""

    duration: Duration = Field(description="How long: '500ms', '30s', '5m', '2h', '1d' or seconds.")


ACTION_PARAMS: dict[str, type[ActionParams]] = {
    "http_fetch": HttpFetchParams,
    "http_post": HttpPostParams,
    "send_email": SendEmailParams,
    "save_to_file": SaveToFileParams,
    "database_insert": DatabaseInsertParams,
    "sleep": SleepParams,
}
