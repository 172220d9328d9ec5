"""What every REST endpoint (and the workbench's pages) stands on: the app's one
connection to Temporal, the bearer scheme, refusing unknown query parameters, read-only
tokens, and the app's settings and definition loader, as FastAPI dependencies."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPBearer

from engine.client import EngineClient
from engine.rest_definitions import DefinitionLoader
from engine.rest_errors import ApiError
from engine.settings import Settings
from engine.temporal_errors import first_line
from workflows.errors import TemporalUnavailable

ClientFactory = Callable[[], Awaitable[EngineClient]]


class Connection:
    """One client for the app's life, connected on first use: a Temporal server that is
    down when the API starts (or a request comes) is a 503, and the next request tries
    again."""

    def __init__(self, factory: ClientFactory, address: str) -> None:
        self._factory = factory
        self._address = address
        self._client: EngineClient | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> EngineClient:
        async with self._lock:
            if self._client is None:
                try:
                    self._client = await self._factory()
                except Exception as exc:
                    raise TemporalUnavailable(self._address, first_line(exc)) from None
            return self._client


bearer = HTTPBearer(auto_error=False, description="A token from API_TOKENS or API_TOKENS_FILE")


async def engine(request: Request) -> EngineClient:
    connection: Connection = request.app.state.connection
    return await connection.get()


def known_query(request: Request) -> None:
    """A misspelt query parameter is refused, not ignored (`?stauts=failed` lists all)."""
    route = request.scope.get("route")
    known = _query_names(route.dependant) if route else set()
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        allowed = f"; use {', '.join(sorted(known))}" if known else ""
        raise ApiError(400, "bad_request", f"unknown query parameter {unknown[0]!r}{allowed}")


def _query_names(dependant: Any) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


def writer(request: Request) -> None:
    if getattr(request.state, "read_only", False):
        raise ApiError(403, "forbidden", "this token may only read")


def app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def definition_loader(request: Request) -> DefinitionLoader:
    definitions: DefinitionLoader = request.app.state.definitions
    return definitions


Client = Annotated[EngineClient, Depends(engine)]
AppSettings = Annotated[Settings, Depends(app_settings)]
Definitions = Annotated[DefinitionLoader, Depends(definition_loader)]
Write = [Depends(writer)]
