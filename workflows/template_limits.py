"""Bounded templates: a Jinja sandbox that counts its work and caps the size of what it makes.

A template runs inside the workflow, where Temporal's deadlock detector allows a workflow
task about two seconds, and in the worker's memory. So every loop iteration, call, filter
and attribute lookup spends from a per-render budget, and any string or list a template
builds (by `*`, `+`, `~`, a filter, a call, or its output) is capped: a bomb fails its step
with "template ... exceeded N" instead of stalling a worker or tripping the detector.
The budget counts operations, not seconds, so a replay fails (or succeeds) exactly where
the original run did.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from jinja2 import nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace, generate_lorem_ipsum

from workflows.errors import TemplateError

MAX_OPERATIONS = 200_000
"""Loop iterations, calls, filters and attribute lookups in one render (about 0.2 s)."""
MAX_SIZE = 16 * 1024 * 1024
"""Characters of a string, or items of a list, that one render may build."""
MAX_RANGE = 100_000
MAX_LIPSUM = 100
WORK_PER_BREAK = 500_000
"""Operations a workflow task may spend on templates before it yields (see StepRunner.pace)."""


class TemplateLimitError(TemplateError):
    """A render went over one of the limits above."""


@dataclass
class Budget:
    left: int = MAX_OPERATIONS

    def spend(self, operations: int = 1) -> None:
        self.left -= operations
        if self.left < 0:
            raise TemplateLimitError(f"template exceeded {MAX_OPERATIONS} operations")


@dataclass
class Work:
    """Operations spent on templates by one run since its last break."""

    spent: int = 0


WORK = "__work__"
"""Where a run's context holds its `Work` (a name no template can refer to)."""

_BUDGET: ContextVar[Budget | None] = ContextVar("template_budget", default=None)


def _spend(operations: int = 1) -> None:
    budget = _BUDGET.get()
    if budget is not None:
        budget.spend(operations)


def check_size(value: Any) -> Any:
    if isinstance(value, str | bytes | list | tuple | dict):
        _check_length(len(value))
    return value


def _check_length(length: int) -> None:
    if length > MAX_SIZE:
        raise TemplateLimitError(f"template exceeded {MAX_SIZE} characters (or items) in a value")


def bounded_render(render: Callable[[], Iterable[str] | Any], work: Work | None) -> Any:
    """Run one render under a fresh budget; add what it spent to the run's work."""
    budget = Budget()
    token = _BUDGET.set(budget)
    try:
        result = render()
        if isinstance(result, Iterator):  # a template's output, chunk by chunk
            result = _join(result, budget)
        return check_size(result)
    finally:
        _BUDGET.reset(token)
        if work is not None:
            work.spent += MAX_OPERATIONS - max(budget.left, 0)


def _join(chunks: Iterator[str], budget: Budget) -> str:
    parts, size = [], 0
    for chunk in chunks:
        size += len(chunk)
        if size > MAX_SIZE:
            raise TemplateLimitError(f"template exceeded {MAX_SIZE} characters of output")
        parts.append(chunk)
    return "".join(parts)


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox, with every operation counted and every value it builds capped."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.globals["range"] = _range
        self.globals["lipsum"] = _lipsum
        self.globals["namespace"] = _Namespace
        self.filters = {name: _counted(f) for name, f in self.filters.items()}
        self.filters["_each"] = _each

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        """Every `{% for %}` iterates through `_each`, which spends one operation an item."""
        ast = super()._parse(source, name, filename)
        for loop in ast.find_all(nodes.For):
            loop.iter = nodes.Filter(loop.iter, "_each", [], [], None, None, lineno=loop.lineno)
        return ast

    def getattr(self, obj: Any, attribute: str) -> Any:
        _spend()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        _spend()
        return super().getitem(obj, argument)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        _spend()
        _check_arguments(args, kwargs)
        bound = getattr(__obj, "__wrapped__", __obj)  # the sandbox wraps str.format
        if isinstance(getattr(bound, "__self__", None), str):  # '{:>9999999999}'.format(x)
            _check_widths(bound.__self__)
        return check_size(super().call(__context, __obj, *args, **kwargs))

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        _spend()
        if operator == "*":
            for sized, times in ((left, right), (right, left)):
                if isinstance(sized, str | list | tuple) and isinstance(times, int):
                    _check_length(len(sized) * times)
        elif operator == "**" and isinstance(left, int) and isinstance(right, int):
            if right > 0 and abs(left) > 1 and left.bit_length() * right > MAX_SIZE:
                raise TemplateLimitError(f"template exceeded {MAX_SIZE} bits in a number")
        elif operator == "%" and isinstance(left, str):
            _check_widths(left)
        elif operator == "+" and isinstance(left, str | list | tuple):
            _check_length(len(left) + (len(right) if isinstance(right, type(left)) else 0))
        return check_size(super().call_binop(context, operator, left, right))


def _check_arguments(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    for value in (*args, *kwargs.values()):
        if isinstance(value, int) and value > MAX_SIZE:
            raise TemplateLimitError(f"template exceeded {MAX_SIZE} in an argument")
        check_size(value)


_WIDE = re.compile(rf"\d{{{len(str(MAX_SIZE)) + 1},}}")


def _check_widths(pattern: str) -> None:
    """A format width like `%99999999999s` would build the string before any check."""
    if _WIDE.search(pattern):
        raise TemplateLimitError(f"template exceeded {MAX_SIZE} in a format width")


def _counted(function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)  # keeps Jinja's pass_context / pass_environment marks
    def counted(*args: Any, **kwargs: Any) -> Any:
        _spend()
        _check_arguments(args[1:], kwargs)  # a width such as center(10 ** 10)
        result = function(*args, **kwargs)
        if isinstance(result, Iterator):
            return _metered(result)
        return check_size(result)

    return counted


def _metered(items: Iterator[Any]) -> Iterator[Any]:
    for item in items:
        _spend()
        yield item


def _each(items: Any) -> Iterator[Any]:
    """What a `{% for %}` loop iterates over: one operation an item."""
    for item in items:  # a strict undefined raises its own error here
        _spend()
        yield item


def _range(*args: int) -> range:
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise TemplateLimitError(f"template exceeded {MAX_RANGE} items in range()")
    return numbers


def _lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:  # noqa: A002
    if n > MAX_LIPSUM or max > MAX_LIPSUM * 10:
        raise TemplateLimitError(f"template exceeded {MAX_LIPSUM} paragraphs in lipsum()")
    return generate_lorem_ipsum(n=n, html=html, min=min, max=max)


class _Namespace(Namespace):
    """`namespace()`, whose attributes are capped like any value (`{% set ns.s = ns.s ~
    ns.s %}` in a loop doubles a string)."""

    def __setitem__(self, name: str, value: Any) -> None:
        super().__setitem__(name, check_size(value))
