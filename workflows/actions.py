"""The built-in actions' params (DSL.md, "action"), checked before a run starts.

Rendered params are validated again, fully, by the activity that runs the action.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from workflows.durations import Duration


class ActionParams(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, serialize_by_alias=True)


class HttpFetchParams(ActionParams):
    url: str
    headers: dict[str, str] = {}
    timeout: Duration = "30s"


class HttpPostParams(ActionParams):
    url: str
    json_body: Any = Field(default=None, alias="json")
    data: Any = None
    headers: dict[str, str] = {}
    timeout: Duration = "30s"


class SendEmailParams(ActionParams):
    to: str | list[str]
    subject: str
    body: str


class SaveToFileParams(ActionParams):
    filename: str
    data: Any
    path: str = ""
    """A folder inside the run's own folder (``OUTPUT_DIR/runs/<workflow id>/``)."""
    shared: bool = False
    """Write under ``OUTPUT_DIR/shared/`` instead, where runs can overwrite each other's files."""


class DatabaseInsertParams(ActionParams):
    table: str
    data: dict[str, Any] | list[dict[str, Any]]
    connection: str = "default"


class SleepParams(ActionParams):
    duration: Duration


ACTION_PARAMS: dict[str, type[ActionParams]] = {
    "http_fetch": HttpFetchParams,
    "http_post": HttpPostParams,
    "send_email": SendEmailParams,
    "save_to_file": SaveToFileParams,
    "database_insert": DatabaseInsertParams,
    "sleep": SleepParams,
}
