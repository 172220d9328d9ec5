"""Jinja2 templates: one sandboxed environment, strict about undefined names.

A value that is exactly one ``{{ expr }}`` keeps the expression's type; anything else
renders to a string (DSL.md, "Templates and expressions").
"""

from __future__ import annotations

import random
import re
from collections.abc import ItemsView, Iterator, KeysView, Mapping, Sequence, ValuesView
from contextlib import contextmanager
from functools import cache, lru_cache
from typing import Any

import jinja2
from jinja2 import meta, nodes
from jinja2.exceptions import SecurityError

from workflows.errors import TemplateError
from workflows.template_limits import WORK, BoundedEnvironment, TemplateLimitError, bounded_render

_SINGLE_EXPRESSION = re.compile(r"^\s*\{\{(?P<expr>.*?)\}\}\s*$", re.DOTALL)


@cache
def _environment() -> BoundedEnvironment:
    """Built once per process; Jinja environments are safe to share once configured."""
    environment = BoundedEnvironment(
        undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True
    )
    environment.filters["random"] = _random_item
    return environment


@cache
def _marking_environment() -> BoundedEnvironment:
    """For params that use secrets: every `{{ }}` output passes through `_mark`, so a
    secret reference becomes a marker and any other value (data) is escaped: data can
    never produce a marker, whatever text it holds."""
    environment = BoundedEnvironment(
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        finalize=_mark,
    )
    environment.filters["random"] = _random_item
    return environment


_MARK = "\x00"


def _mark(value: Any) -> str:
    if isinstance(value, SecretRef):
        return f"{_MARK}{value.name}{_MARK}"
    return str(value).replace(_MARK, _MARK * 2)


@jinja2.pass_context  # context-bound, so Jinja never folds it into a constant at compile time
def _random_item(context: jinja2.runtime.Context, items: Sequence[Any]) -> Any:
    """Jinja's `random` filter, made replay-safe: inside a run it draws from the workflow's
    seeded generator, so a replay picks the same item."""
    from temporalio import workflow  # here, so validating a file does not load Temporal

    generator = workflow.random() if workflow.in_workflow() else random
    return generator.choice(items)


@lru_cache(maxsize=4096)
def _template(source: str) -> jinja2.Template:
    """Compiled once per process: a run renders the same prompts for every item and step."""
    return _environment().from_string(source)


@lru_cache(maxsize=1024)
def _marking_template(source: str) -> jinja2.Template:
    return _marking_environment().from_string(source)


@lru_cache(maxsize=4096)
def _expression(expression: str) -> Any:
    return _environment().compile_expression(expression, undefined_to_none=False)


class SecretRef:
    """`secrets.NAME` inside the workflow: a reference, never a value. Only a param rendered
    by `render_params` turns it into a slot the action activity fills in."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __str__(self) -> str:
        return "{{ secrets." + self.name + " }}"


class SecretRefs(dict[str, SecretRef]):
    """`secrets` inside the workflow: any name gives its reference."""

    def __missing__(self, name: str) -> SecretRef:
        return SecretRef(name)


SecretSlotParts = list[str]
"""A param that uses secrets, as parts: literal text at even indexes, secret names at odd."""


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
    with _template_errors(source):
        expression = _single_expression(source)
        if expression is not None:
            value = bounded_render(lambda: _expression(expression)(**context), context.get(WORK))
            if isinstance(value, jinja2.Undefined | SecretRef):
                return str(value)  # a strict undefined raises its own, precise error here
            return value if _is_plain(value) else _plain(value, expression)
        template = _template(source)
        return bounded_render(lambda: template.generate(**context), context.get(WORK))


_PLAIN_LEAVES = (str, int, float, bool, type(None))


def _is_plain(value: Any) -> bool:
    """Whether a rendered value is JSON as it is: what a run can keep in its history."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, _PLAIN_LEAVES):
            continue
        if type(item) is list:
            stack.extend(item)
        elif type(item) is dict and all(type(key) is str for key in item):
            stack.extend(item.values())
        else:
            return False
    return True


def _plain(value: Any, expression: str) -> Any:
    """A rendered value as JSON a run can keep: tuples, sets, ranges and a dict's views
    become lists; a function or method (`d.keys` for `d.keys()`), or any other object, is
    one clear error instead of a result no history can hold."""
    if isinstance(value, _PLAIN_LEAVES):
        return value
    if isinstance(value, jinja2.Undefined | SecretRef):
        return str(value)
    if isinstance(value, Mapping):
        return {str(key): _plain(item, expression) for key, item in value.items()}
    if isinstance(
        value, list | tuple | set | frozenset | range | KeysView | ValuesView | ItemsView
    ):
        return [_plain(item, expression) for item in value]
    what = "a function or method (call it, or name a field)" if callable(value) else "an object"
    raise TemplateError(
        f"{what}, not a value a run can keep, in template {_shorten('{{ ' + expression + ' }}')}"
    )


@contextmanager
def _template_errors(source: str) -> Iterator[None]:
    """Whatever a render raises, as one TemplateError that names the template."""
    try:
        yield
    except TemplateLimitError as exc:
        raise TemplateLimitError(f"{exc} in template {_shorten(source)}") from None
    except TemplateError:
        raise  # ours, naming its template already
    except jinja2.UndefinedError as exc:
        raise TemplateError(f"{exc.message} in template {_shorten(source)}") from None
    except SecurityError as exc:
        raise TemplateError(f"refused by the template sandbox: {exc}") from None
    except jinja2.TemplateError as exc:
        raise TemplateError(f"{exc.message or exc} in template {_shorten(source)}") from None
    except Exception as exc:  # an expression can raise anything, e.g. 1/0
        raise TemplateError(f"{type(exc).__name__}: {exc} in template {_shorten(source)}") from None


def render_params(
    source: Any, context: Mapping[str, Any], path: tuple[str | int, ...] = ()
) -> tuple[Any, list[tuple[tuple[str | int, ...], SecretSlotParts]]]:
    """Render an action's params; each string whose template uses `secrets` comes back as
    its display text plus a slot (its path and parts) for the activity to fill in. Which
    strings are slots is decided by the definition's template text, never by the data."""
    if isinstance(source, dict):
        rendered, slots = {}, []
        for key, value in source.items():
            rendered[key], more = render_params(value, context, (*path, key))
            slots += more
        return rendered, slots
    if isinstance(source, list):
        items, slots = [], []
        for index, value in enumerate(source):
            item, more = render_params(value, context, (*path, index))
            items.append(item)
            slots += more
        return items, slots
    if not isinstance(source, str) or not uses_secrets(source):
        return render(source, context), []
    with _template_errors(source):
        template = _marking_template(source)
        marked = bounded_render(lambda: template.generate(**context), context.get(WORK))
    parts = _unmark(marked, source)
    display = "".join(
        part if index % 2 == 0 else str(SecretRef(part)) for index, part in enumerate(parts)
    )
    return display, [(path, parts)]


def _unmark(text: str, source: str) -> SecretSlotParts:
    """Split a marked render into literal text and secret names (see `_mark`)."""
    parts = [""]
    position = 0
    while (start := text.find(_MARK, position)) >= 0:
        parts[-1] += text[position:start]
        if text.startswith(_MARK * 2, start):  # an escaped NUL from data
            parts[-1] += _MARK
            position = start + 2
            continue
        end = text.find(_MARK, start + 1)
        name = text[start + 1 : end] if end > start else ""
        if not name.isidentifier():
            raise TemplateError(f"a NUL character in template {_shorten(source)}")
        parts += [name, ""]
        position = end + 1
    parts[-1] += text[position:]
    return parts


@lru_cache(maxsize=4096)
def uses_secrets(source: str) -> bool:
    """Whether a template's own text reads `secrets` (the data it renders cannot)."""
    if "secrets" not in source:
        return False
    try:
        ast = _environment().parse(source)
    except (jinja2.TemplateSyntaxError, RecursionError):
        return False
    return any(node.name == "secrets" for node in ast.find_all(nodes.Name))


_BLOCKS = (nodes.FilterBlock, nodes.Macro, nodes.CallBlock, nodes.AssignBlock)


def secrets_problem(source: str) -> str | None:
    """Why a template's use of `secrets` is refused, if it is: only `{{ secrets.NAME }}`
    standing alone in its braces works, so the activity can put the value exactly there."""
    if not uses_secrets(source):
        return None
    ast = _environment().parse(source)
    problems: list[str] = []

    def visit(node: nodes.Node, ancestors: tuple[nodes.Node, ...]) -> None:
        if isinstance(node, nodes.Name) and node.name == "secrets":
            problems.append(_secret_use_problem(node, ancestors))
        for child in node.iter_child_nodes():
            visit(child, (*ancestors, node))

    visit(ast, ())
    return next((problem for problem in problems if problem), None)


def _secret_use_problem(node: nodes.Name, ancestors: tuple[nodes.Node, ...]) -> str:
    parent = ancestors[-1] if ancestors else None
    if node.ctx != "load":
        return "'secrets' is a reserved name"
    if isinstance(parent, nodes.Getitem) and not isinstance(parent.arg, nodes.Const):
        return "secrets[...] needs a fixed name: write secrets.NAME"
    if not isinstance(parent, nodes.Getattr | nodes.Getitem):
        return "the whole 'secrets' map cannot be used: write secrets.NAME"
    standalone = len(ancestors) >= 2 and isinstance(ancestors[-2], nodes.Output)
    if not standalone or any(isinstance(a, _BLOCKS) for a in ancestors):
        return (
            "secrets.NAME must stand alone in its {{ }} (write 'Bearer {{ secrets.NAME }}'): "
            "no filter, operator or variable may take its value"
        )
    return ""


_OPENING = re.compile(r"\{[{%#]")
_PLAIN_LOOKUP = re.compile(
    r"\{\{-?\s*([A-Za-z][A-Za-z0-9_]*)((?:\.[A-Za-z][A-Za-z0-9_]*)*)\s*-?\}\}"
)
_WORDS = {"true", "false", "none", "True", "False", "None", "and", "or", "not", "in", "is", "if"}
_WORDS |= {"else", "elif", "for", "recursive", "import", "from", "as", "with", "without"}


def _plain_references(source: str) -> tuple[set[str], set[str]] | None:
    """What a template made only of text and `{{ name.attr... }}` reads, found without
    Jinja (whose parse is most of validation's cost); None for any other template. Each
    opening is taken where Jinja's lexer takes it: the leftmost `{{`, `{%` or `{#`."""
    names: set[str] = set()
    step_ids: set[str] = set()
    position = 0
    while (opening := _OPENING.search(source, position)) is not None:
        lookup = _PLAIN_LOOKUP.match(source, opening.start())
        if lookup is None or lookup.group(1) in _WORDS:
            return None
        name, attrs = lookup.group(1), lookup.group(2).split(".")[1:]
        if name.startswith("_") or any(attr.startswith("_") for attr in attrs):
            return None
        names.add(name)
        if name == "steps" and attrs:
            step_ids.add(attrs[0])
        position = lookup.end()
    return names, step_ids


def references(source: str) -> tuple[set[str], set[str]]:
    """Names a template reads, and step ids it reads through ``steps.<id>``.

    Raises TemplateError when the template does not compile.
    """
    plain = _plain_references(source)
    if plain is not None:
        return plain
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
