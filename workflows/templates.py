"""Jinja2 templates: one sandboxed environment, strict about undefined names.

A value that is exactly one ``{{ expr }}`` keeps the expression's type; anything else
renders to a string (DSL.md, "Templates and expressions").
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from functools import cache, lru_cache
from typing import Any

import jinja2
from jinja2 import meta, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from temporalio import workflow

from workflows.errors import TemplateError

_SINGLE_EXPRESSION = re.compile(r"^\s*\{\{(?P<expr>.*?)\}\}\s*$", re.DOTALL)


@cache
def _environment() -> ImmutableSandboxedEnvironment:
    """Built once per process; Jinja environments are safe to share once configured."""
    environment = ImmutableSandboxedEnvironment(
        undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True
    )
    environment.filters["random"] = _random_item
    return environment


@jinja2.pass_context  # context-bound, so Jinja never folds it into a constant at compile time
def _random_item(context: jinja2.runtime.Context, items: Sequence[Any]) -> Any:
    """Jinja's `random` filter, made replay-safe: inside a run it draws from the workflow's
    seeded generator, so a replay picks the same item."""
    generator = workflow.random() if workflow.in_workflow() else random
    return generator.choice(items)


@lru_cache(maxsize=4096)
def _template(source: str) -> jinja2.Template:
    """Compiled once per process: a run renders the same prompts for every item and step."""
    return _environment().from_string(source)


@lru_cache(maxsize=4096)
def _expression(expression: str) -> Any:
    return _environment().compile_expression(expression, undefined_to_none=False)


class SecretRefs(dict[str, str]):
    """`secrets` inside the workflow: `secrets.NAME` renders as its own placeholder, which
    the action activity resolves, so secret values never enter workflow history."""

    def __missing__(self, name: str) -> str:
        return "{{ secrets." + name + " }}"


def _single_expression(source: str) -> str | None:
    match = _SINGLE_EXPRESSION.match(source)
    if match is None or "{{" in match.group("expr") or "{%" in source:
        return None
    return match.group("expr")


def render(source: Any, context: Mapping[str, Any]) -> Any:
    """Render a template value (strings, and strings inside lists and dicts)."""
    if isinstance(source, dict):
        return {key: render(value, context) for key, value in source.items()}
    if isinstance(source, list):
        return [render(value, context) for value in source]
    if not isinstance(source, str) or ("{{" not in source and "{%" not in source):
        return source
    try:
        expression = _single_expression(source)
        if expression is not None:
            value = _expression(expression)(**context)
            if isinstance(value, jinja2.Undefined):
                str(value)  # a strict undefined raises its own, precise error here
            return value
        return _template(source).render(**context)
    except jinja2.UndefinedError as exc:
        raise TemplateError(f"{exc.message} in template {_shorten(source)}") from None
    except SecurityError as exc:
        raise TemplateError(f"refused by the template sandbox: {exc}") from None
    except jinja2.TemplateError as exc:
        raise TemplateError(f"{exc.message or exc} in template {_shorten(source)}") from None
    except Exception as exc:  # an expression can raise anything, e.g. 1/0
        raise TemplateError(f"{type(exc).__name__}: {exc} in template {_shorten(source)}") from None


def references(source: str) -> tuple[set[str], set[str]]:
    """Names a template reads, and step ids it reads through ``steps.<id>``.

    Raises TemplateError when the template does not compile.
    """
    try:
        ast = _environment().parse(source)
        names = meta.find_undeclared_variables(ast)
    except jinja2.TemplateSyntaxError as exc:  # also an unknown filter or test
        raise TemplateError(f"template error: {exc.message}", exc.lineno) from None
    except RecursionError:
        raise TemplateError("template error: nested too deeply") from None
    private = sorted({n.attr for n in ast.find_all(nodes.Getattr) if n.attr.startswith("_")})
    if private:
        raise TemplateError(
            f"template refers to '{private[0]}': names starting with '_' are off limits"
        )
    step_ids = {
        node.attr
        for node in ast.find_all(nodes.Getattr)
        if isinstance(node.node, nodes.Name) and node.node.name == "steps"
    }
    step_ids |= {
        node.arg.value
        for node in ast.find_all(nodes.Getitem)
        if isinstance(node.node, nodes.Name)
        and node.node.name == "steps"
        and isinstance(node.arg, nodes.Const)
    }
    return names, step_ids


def _shorten(source: str, limit: int = 60) -> str:
    flat = " ".join(source.split())
    return repr(flat if len(flat) <= limit else flat[: limit - 1] + "…")
