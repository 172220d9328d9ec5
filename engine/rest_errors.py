"""The REST API's errors: how each is answered (an `ErrorBody` with its status, never a
traceback) and documented in the OpenAPI schema. The client API's errors are answered by
their type (`ANSWERS`); Temporal's own exceptions are never read here, only turned into
ours by engine/temporal_errors.py.

    400 bad_request           malformed request, file outside DEFINITIONS_DIR, variables
                              or a signal too deep or too big (workflows/payloads.py)
    401 unauthorized          (the gate, engine/rest_auth.py)
    403 forbidden             a read-only token asked to change something
    404 not_found             no such run
    409 conflict, run_failed  the run has ended, or the id is taken
    413 too_large             (the gate)
    422 invalid_definition    with every problem, located
    429 rate_limited          (the gate, with Retry-After)
    502 temporal_error        Temporal refused the request
    503 temporal_unavailable, temporal_busy, no_worker
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from engine.rest_models import EndEvent, ErrorBody, ProblemOut, StepEvent
from engine.temporal_errors import TEMPORAL_EXCEPTIONS, Where, translate
from workflows.errors import (
    DefinitionError,
    LocalStackError,
    RunEnded,
    RunExists,
    RunFailed,
    RunNotFound,
    StatusUnavailable,
    TemporalBusy,
    TemporalError,
    TemporalUnavailable,
    WorkflowError,
)

ENDED = "has ended"
log = logging.getLogger("engine.rest")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, **headers: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def _error(description: str, **headers: str) -> dict[str, Any]:
    doc: dict[str, Any] = {"model": ErrorBody, "description": description}
    if headers:
        doc["headers"] = {
            name: {"description": text, "required": True, "schema": {"type": "string"}}
            for name, text in headers.items()
        }
    return doc


ERRORS: dict[int, dict[str, Any]] = {
    400: _error("The request is malformed or cannot be carried out as written"),
    401: _error("No token, or not a valid one", **{"WWW-Authenticate": "The scheme: Bearer"}),
    403: _error("The token may only read"),
    404: _error("No run with that id in the namespace"),
    409: _error("The run's state does not allow it (it has ended, or the id is taken)"),
    413: _error("The request body is over the server's limit (API_MAX_BODY_BYTES)"),
    422: _error("The definition is invalid: `problems` lists every problem, located"),
    429: _error("Over the token's rate limit", **{"Retry-After": "Seconds to wait"}),
    502: _error("Temporal refused the request"),
    503: _error("Temporal cannot be reached, or no worker answered; try again later"),
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The documented error answers of an endpoint: the gate's and Temporal's, and `codes`."""
    return {code: ERRORS[code] for code in sorted({400, 401, 429, 502, 503, *codes})}


def json_errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """`errors` for an endpoint whose own answer is not JSON (FastAPI would give its errors
    the endpoint's media type)."""
    body = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    return {
        code: {key: value for key, value in doc.items() if key != "model"} | {"content": body}
        for code, doc in errors(*codes).items()
    }


# errors


def _body(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    headers = extra.pop("headers", None)
    body = ErrorBody(error=code, message=message, **extra)
    return JSONResponse(body.model_dump(mode="json"), status_code=status, headers=headers)


ANSWERS: dict[type[WorkflowError], tuple[int, str]] = {
    WorkflowError: (400, "bad_request"),
    RunNotFound: (404, "not_found"),
    RunFailed: (409, "run_failed"),
    RunEnded: (409, "conflict"),
    RunExists: (409, "conflict"),
    TemporalError: (502, "temporal_error"),
    TemporalUnavailable: (503, "temporal_unavailable"),
    LocalStackError: (503, "temporal_unavailable"),
    TemporalBusy: (503, "temporal_busy"),
    StatusUnavailable: (503, "no_worker"),
}
"""The status and code of each error the client API raises: the nearest class wins."""
HINTS: dict[type[WorkflowError], str] = {
    StatusUnavailable: " (is a worker polling the task queue?)",
}


def classify(exc: Exception, address: str) -> tuple[int, str, str]:
    """The status, code and message of an error raised while serving a request."""
    ours = translate(exc, Where(address))
    if ours is None:
        return 500, "internal", "internal error; the server's log has the details"
    kind = next(kind for kind in type(ours).__mro__ if kind in ANSWERS)
    status, code = ANSWERS[kind]
    return status, code, f"{ours}{HINTS.get(kind, '')}"


def _allowed(request: Request) -> list[str]:
    """Every method the API documents at the request's path (GET /schedules, POST too)."""
    paths = request.app.openapi()["paths"]
    if request.url.path in paths:  # /workflows/validate, not /workflows/{execution_id}
        return sorted(method.upper() for method in paths[request.url.path])
    methods: set[str] = set()
    for path, operations in paths.items():
        if re.fullmatch(re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(path)), request.url.path):
            methods |= {method.upper() for method in operations}
    return sorted(methods)


def handle_errors(app: FastAPI) -> None:
    async def api_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return _body(exc.status, exc.code, exc.message, headers=exc.headers or None)

    async def definition_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DefinitionError)
        problems = [ProblemOut.of(p) for p in exc.problems]
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        return _body(422, "invalid_definition", f"the definition has {count}", problems=problems)

    async def invalid_request(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        lines = [
            f"{'.'.join(str(part) for part in error.get('loc', ()))}: {error.get('msg')}"
            for error in exc.errors()
        ]
        return _body(400, "bad_request", "; ".join(lines)[:2000] or "invalid request")

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        codes = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}
        code = codes.get(exc.status_code, "bad_request")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # Starlette names one route's methods; the path has more
            headers = {k: v for k, v in headers.items() if k.lower() != "allow"}
            headers["allow"] = ", ".join(_allowed(request))
        return _body(exc.status_code, code, str(exc.detail), headers=headers or None)

    async def failure(request: Request, exc: Exception) -> JSONResponse:
        status_code, code, message = classify(exc, request.app.state.settings.address)
        if status_code == 500:
            log.exception("internal error serving %s %s", request.method, request.url.path)
        elif status_code >= 502:
            log.warning("%s %s: %s", request.method, request.url.path, message)
        return _body(status_code, code, message)

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(DefinitionError, definition_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(HTTPException, http_error)
    kinds: tuple[type[Exception], ...] = (WorkflowError, *TEMPORAL_EXCEPTIONS, Exception)
    for kind in kinds:
        app.add_exception_handler(kind, failure)


def openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema without its stock 422 answers: request errors here are 400s with an
    ErrorBody (422 means an invalid definition)."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        for operation in (op for path in schema["paths"].values() for op in path.values()):
            stock = operation["responses"].get("422", {})
            if "HTTPValidationError" in str(stock):
                del operation["responses"]["422"]
        components = schema["components"]["schemas"]
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        for model in (StepEvent, EndEvent):  # what the event stream's data holds
            found = model.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(found.pop("$defs", {}))
            components[model.__name__] = found
        app.openapi_schema = schema
    return app.openapi_schema
