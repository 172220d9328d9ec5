"""What a Prompt flow's own Python tools need to run as our custom actions, without
`promptflow` installed: `tool`, `log_metric` and the connection classes (installed as the
modules `promptflow`, `promptflow.core` and `promptflow.connections` only when
`import promptflow` fails), `flow_tool`, which turns one `@tool` function of a flow's
folder into an action, and `flow_aggregator`, which runs an evaluation flow's aggregation
nodes once over every line as an evaluation's aggregator (activities/registry.py). The
module `starter.py import promptflow` writes beside a definition holds one `flow_tool(...)`
per function (and a `flow_aggregator(...)`); engine/promptflow/ writes it.

A connection parameter arrives as a mapping of the values the definition filled from the
worker's secrets (`{{ secrets.<CONNECTION>_<KEY> }}`) and reaches the tool as a connection
object whose attributes (and `secrets`/`configs` entries) are those values."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import importlib.util
import inspect
import re
import sys
import types
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, create_model

from activities.registry import ACTION_MARK, ActionSpec, aggregator
from workflows.contracts import ActionInput
from workflows.errors import FailureType

NOT_IMPORTED = "promptflow.not_imported"
"""The action a step the importer could not map runs (under --partial): it fails, saying why."""
METRICS: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "promptflow_metrics", default=None
)
"""Where `log_metric` puts a metric during one tool call (see `collected_metrics`)."""


def tool(function: Any = None, **_: Any) -> Any:
    """`@tool` and `@tool(name=...)`: the function itself (the importer finds it by reading
    the file; nothing needs registering at import time)."""
    if function is None:
        return lambda inner: inner
    return function


def log_metric(key: str, value: Any, variant_id: str | None = None) -> None:
    """Keep a metric for the action that is running (an aggregation node's; see
    `collected_metrics`); outside one it is dropped, as Prompt flow drops metrics of a
    single test run."""
    found = METRICS.get()
    if found is not None:
        found[key] = value


@contextlib.contextmanager
def collected_metrics() -> Iterator[dict[str, Any]]:
    """The metrics `log_metric` records while the block runs."""
    found: dict[str, Any] = {}
    token = METRICS.set(found)
    try:
        yield found
    finally:
        METRICS.reset(token)


class Connection:
    """A connection built from secrets: each value is an attribute and an item; `secrets`
    and `configs` hold them all too (a CustomConnection's code reads either)."""

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)
        self.secrets = dict(values)
        self.configs = dict(values)

    def __getitem__(self, key: str) -> Any:
        return self.secrets[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.secrets.get(key, default)

    def __repr__(self) -> str:  # never the values: they are secrets
        return f"{type(self).__name__}({', '.join(sorted(self.secrets))})"


CONNECTION_FIELDS: dict[str, tuple[str, ...]] = {
    "AzureOpenAIConnection": ("api_key", "api_base", "api_type", "api_version"),
    "OpenAIConnection": ("api_key", "organization", "base_url"),
    "SerpConnection": ("api_key",),
    "CognitiveSearchConnection": ("api_key", "api_base", "api_version"),
    "AzureContentSafetyConnection": ("api_key", "endpoint", "api_version", "api_type"),
    "FormRecognizerConnection": ("api_key", "endpoint", "api_version", "api_type"),
    "CustomConnection": (),
}
"""The connection types Prompt flow ships and their fields (what a tool reads of one when
the importer cannot tell from the code)."""
CONNECTION_CLASSES: dict[str, type[Connection]] = {
    name: type(name, (Connection,), {"__doc__": f"Prompt flow's {name}, from secrets."})
    for name in CONNECTION_FIELDS
}


def install() -> None:
    """Make `promptflow`, `promptflow.core` and `promptflow.connections` importable with our
    stand-ins, unless the real package is installed."""
    try:
        import promptflow  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        pass
    else:
        return
    top = types.ModuleType("promptflow", "Stand-in for Prompt flow (activities/promptflow_compat).")
    core = types.ModuleType("promptflow.core")
    connections = types.ModuleType("promptflow.connections")
    for module in (top, core):
        module.tool = tool  # type: ignore[attr-defined]
        module.log_metric = log_metric  # type: ignore[attr-defined]
    for name, kind in CONNECTION_CLASSES.items():
        setattr(connections, name, kind)
    top.core = core  # type: ignore[attr-defined]
    top.connections = connections  # type: ignore[attr-defined]
    sys.modules.setdefault("promptflow", top)
    sys.modules.setdefault("promptflow.core", core)
    sys.modules.setdefault("promptflow.connections", connections)


@dataclass(frozen=True)
class PythonTool:
    """One `@tool` function of a flow, as the action that runs it."""

    action: str
    file: str
    """The tool's file, relative to the flow's folder."""
    function: str
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    connections: Mapping[str, str] = field(default_factory=dict)
    """Parameter name: connection class name."""
    any_keyword: bool = False
    """The function takes **kwargs."""


def params_model(spec: PythonTool) -> type[BaseModel]:
    """The action's params: the function's parameters (values of any type; connections as
    mappings of their filled-in secrets)."""
    fields: dict[str, Any] = {name: (Any, ...) for name in spec.required}
    fields |= {name: (Any, None) for name in spec.optional}
    fields |= {
        name: (dict[str, Any], ... if name in spec.required else None) for name in spec.connections
    }
    extra: Literal["allow", "forbid"] = "allow" if spec.any_keyword else "forbid"
    name = re.sub(r"\W", "_", spec.action) + "_params"
    return create_model(name, __config__=ConfigDict(extra=extra), **fields)


def flow_tool(spec: PythonTool, here: str, flow_dir: str) -> Callable[..., Any]:
    """The action that runs `spec`'s function from the flow's folder (`flow_dir`, relative to
    the file `here`), loaded on its first call."""
    folder = (Path(here).parent / flow_dir).resolve()

    def run(params: BaseModel, request: ActionInput) -> Any:
        function = _function(folder / spec.file, spec.function)
        given = {name: getattr(params, name) for name in params.model_fields_set}
        given |= dict(params.model_extra or {})
        kwargs = _arguments(function, given, spec.connections)
        result = function(**kwargs)
        if inspect.isawaitable(result):
            result = asyncio.run(_awaited(result))
        return result

    setattr(run, ACTION_MARK, ActionSpec(spec.action, params_model(spec), run))
    return run


async def _awaited(result: Any) -> Any:
    return await result


def _arguments(
    function: Callable[..., Any], given: dict[str, Any], connections: Mapping[str, str]
) -> dict[str, Any]:
    """Prompt flow's calling rules: a value from a skipped node (None) leaves the parameter to
    its default; a connection's secrets become the connection object."""
    signature = inspect.signature(function)
    kwargs: dict[str, Any] = {}
    for name, value in given.items():
        declared = signature.parameters.get(name)
        if value is None and declared is not None and declared.default is not declared.empty:
            continue
        if name in connections and isinstance(value, dict):
            install()
            kind = _connection_class(connections[name])
            value = kind(**value)
        kwargs[name] = value
    return kwargs


def _connection_class(name: str) -> type[Connection]:
    """Ours, even when Prompt flow is installed: its classes want a connection store."""
    return CONNECTION_CLASSES.get(name) or type(name, (Connection,), {})


@functools.lru_cache(maxsize=64)
def _function(path: Path, name: str) -> Callable[..., Any]:
    """Load a tool's file once (its folder on sys.path, as Prompt flow runs it)."""
    install()
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.append(folder)
    module_name = "promptflow_flow_" + re.sub(r"\W", "_", str(path.with_suffix("")))
    loader = importlib.util.spec_from_file_location(module_name, path)
    if loader is None or loader.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(loader)
    sys.modules[module_name] = module
    loader.loader.exec_module(module)
    function = getattr(module, name, None)
    if not callable(function):
        raise ImportError(f"{path.name} has no function {name}()")
    return function


@dataclass(frozen=True)
class AggregationNode:
    """An evaluation flow's `aggregation: true` node: its `@tool` function and where each
    parameter's value comes from."""

    name: str
    tool: PythonTool
    inputs: Mapping[str, tuple[str, Any, tuple[str, ...]]]
    """Parameter: `("lines", OUTPUT, FIELDS)` the list of a line output's values (a field of
    each), `("node", NODE, FIELDS)` an earlier aggregation node's result, `("value", V, ())`."""


def flow_aggregator(
    name: str, nodes: list[AggregationNode], here: str, flow_dir: str
) -> Callable[..., Any]:
    """The aggregator `name` (an evaluator's `aggregate: name`): the aggregation nodes run in
    order over every line's outputs, as Prompt flow runs them after a batch; the values they
    `log_metric` are the metrics it returns."""
    folder = (Path(here).parent / flow_dir).resolve()

    def run(lines: dict[str, list[Any]]) -> dict[str, Any]:
        metrics: dict[str, Any] = {}
        done: dict[str, Any] = {}
        for node in nodes:
            function = _function(folder / node.tool.file, node.tool.function)
            given = {key: _fed(spec, lines, done) for key, spec in node.inputs.items()}
            with collected_metrics() as logged:
                result = function(**_arguments(function, given, {}))
                if inspect.isawaitable(result):
                    result = asyncio.run(_awaited(result))
            done[node.name] = result
            metrics.update(logged)
        return metrics

    return aggregator(name)(run)


def _fed(
    spec: tuple[str, Any, tuple[str, ...]], lines: dict[str, list[Any]], done: dict[str, Any]
) -> Any:
    kind, source, fields = spec
    if kind == "lines":
        return [_field(value, fields) for value in lines.get(source, [])]
    if kind == "node":
        return _field(done.get(source), fields)
    return source


def _field(value: Any, fields: tuple[str, ...]) -> Any:
    for name in fields:
        value = value.get(name) if isinstance(value, dict) else getattr(value, name, None)
    return value


class NotImportedParams(BaseModel):
    node: str
    reason: str


def _not_imported(params: NotImportedParams, request: ActionInput) -> Any:
    from temporalio.exceptions import ApplicationError

    raise ApplicationError(
        f"Prompt flow node '{params.node}' was not imported: {params.reason}",
        type=FailureType.NOT_IMPORTED,
        non_retryable=True,
    )


not_imported = _not_imported
setattr(not_imported, ACTION_MARK, ActionSpec(NOT_IMPORTED, NotImportedParams, _not_imported))
