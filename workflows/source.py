"""YAML text to plain data, remembering where every key and value stands in the file."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from workflows.errors import DefinitionError, Problem

Path = tuple[str | int | float, ...]
"""Keys and list indexes from the document's root; YAML allows numbers as mapping keys."""
MAX_NODES = 100_000
"""Refuse alias bombs and monstrous files before they eat the worker's memory."""
MAX_DEPTH = 64
MAX_CHARACTERS = 1_000_000


@dataclass
class Source:
    """Parsed YAML plus the 1-based line and column of each path's key and value."""

    file: str
    data: Any
    lines: list[str] = field(default_factory=list)
    value_marks: dict[Path, tuple[int, int]] = field(default_factory=dict)
    key_marks: dict[Path, tuple[int, int]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    """Problems found while reading (duplicate keys); reported with the model's."""
    styles: dict[Path, str | None] = field(default_factory=dict)
    """Each scalar's YAML style: None (plain), quotes, or '|' / '>' for block scalars."""

    def value(self, path: Path) -> Any:
        node = self.data
        for part in path:
            node = node[part]
        return node

    def problem_in_text(self, path: Path, line: int, col: int, message: str) -> Problem:
        """A problem at (1-based line, 0-based col) inside a scalar's text, located in the file."""
        start_line, start_col = self.value_marks[path]
        style = self.styles.get(path)
        if style in ("|", ">"):
            file_line = start_line + line  # block content starts on the line after '|'
            raw = self.lines[file_line - 1] if file_line <= len(self.lines) else ""
            indent = len(raw) - len(raw.lstrip(" "))
            return Problem(self.file, file_line, indent + col + 1, message)
        if line == 1:
            quote = 1 if style in ("'", '"') else 0
            return Problem(self.file, start_line, start_col + quote + col, message)
        return Problem(self.file, start_line, start_col, message)

    def problem(self, path: Path, message: str, *, at_key: bool = False) -> Problem:
        """A problem located at the path's key (or value), or its nearest located parent."""
        marks = self.key_marks if at_key else self.value_marks
        while path not in marks and path not in self.value_marks and path:
            path = path[:-1]
        line, col = marks.get(path) or self.value_marks.get(path, (1, 1))
        return Problem(self.file, line, col, message)


def parse_yaml(text: str, file: str) -> Source:
    """Parse YAML text; raise DefinitionError (located) on syntax errors.

    Duplicate keys are kept in ``problems`` (the first value wins) so checking can go on."""
    if len(text) > MAX_CHARACTERS:
        raise DefinitionError([Problem(file, 1, 1, f"larger than {MAX_CHARACTERS} characters")])
    try:
        root = _compose(text)
    except RecursionError:
        raise DefinitionError([Problem(file, 1, 1, "nested too deeply to read")]) from None
    except yaml.MarkedYAMLError as exc:
        raise DefinitionError([_syntax_problem(file, exc)]) from None
    except yaml.YAMLError as exc:
        raise DefinitionError([Problem(file, 1, 1, f"YAML error: {exc}")]) from None
    source = Source(file, None, lines=text.splitlines())
    if root is None:
        raise DefinitionError([Problem(file, 1, 1, "the file is empty")])
    source.data = _Builder(source).build(root, ())
    return source


def _compose(text: str) -> yaml.Node | None:
    """The YAML's node tree, read by libyaml when it is there (ten times faster than PyYAML's
    pure-Python reader: a 16,000-step file reads in a fraction of a second). Text libyaml
    refuses, or that holds a tab (libyaml accepts some PyYAML refuses), is read again by
    PyYAML, so every error is reported in PyYAML's words at PyYAML's place."""
    fast = getattr(yaml, "CSafeLoader", None)
    if fast is not None and "\t" not in text:
        try:
            return yaml.compose(text, Loader=fast)
        except yaml.YAMLError:
            pass
    return yaml.compose(text, Loader=yaml.SafeLoader)


def _syntax_problem(file: str, exc: yaml.MarkedYAMLError) -> Problem:
    """Where a YAML syntax error is: a scalar or key left open is shown where it opens (an
    unterminated quote on line 7 is found only at the end of the file), with PyYAML's words."""
    problem, mark = exc.problem or exc.context, exc.problem_mark or exc.context_mark
    opened, context = exc.context_mark, exc.context or ""
    scanning = context.startswith("while scanning")
    if scanning and opened is not None and (mark is None or mark.line != opened.line):
        found = f" at line {mark.line + 1}" if mark is not None else ""
        hint = " (is a closing quote missing?)" if "quoted scalar" in context else ""
        message = f"YAML syntax error {context} that starts here: {problem}{found}{hint}"
        return Problem(file, opened.line + 1, opened.column + 1, message)
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    return Problem(file, line, col, f"YAML syntax error: {problem}")


STANDARD_TAGS = {
    f"tag:yaml.org,2002:{name}"
    for name in ("null", "bool", "int", "float", "str", "map", "seq", "timestamp", "merge")
}
"""YAML's own types; any other tag (`!!python/name:`, `!custom`) is refused."""
_STR = "tag:yaml.org,2002:str"


class _Builder:
    def __init__(self, source: Source) -> None:
        self.source = source
        self.constructor = yaml.SafeLoader("")
        self.count = 0

    def _report(self, node: yaml.Node, message: str) -> None:
        self.source.problems.append(_at(self.source.file, node, message))

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise DefinitionError(
                [_at(self.source.file, node, f"the file expands to over {MAX_NODES} YAML nodes")]
            )
        if len(path) > MAX_DEPTH:
            raise DefinitionError(
                [_at(self.source.file, node, f"nested deeper than {MAX_DEPTH} levels")]
            )
        self.source.value_marks.setdefault(path, _mark(node))
        if node.tag not in STANDARD_TAGS:
            self._report(node, f"unsupported YAML tag {node.tag!r}: write plain YAML values")
            return None
        if isinstance(node, yaml.MappingNode):
            self.constructor.flatten_mapping(node)
            result: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self._scalar(key_node) if key_node.tag in STANDARD_TAGS else None
                if not isinstance(key, str | int | float | bool):
                    self._report(key_node, "keys must be scalars")
                    continue
                if key in result:
                    self._report(key_node, f"duplicate key {key!r}")
                    continue
                self.source.key_marks[(*path, key)] = _mark(key_node)
                result[key] = self.build(value_node, (*path, key))
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, index)) for index, item in enumerate(node.value)]
        if isinstance(node, yaml.ScalarNode):
            self.source.styles[path] = node.style
        return self._scalar(node)

    def _scalar(self, node: yaml.Node) -> Any:
        if node.tag == _STR and isinstance(node, yaml.ScalarNode):  # most scalars: as written
            return node.value
        try:
            return self.constructor.construct_object(node, deep=True)
        except ValueError:  # an integer of over 4,300 digits, which Python will not convert
            self._report(node, "number too long: write it as a string")
        except yaml.YAMLError as exc:
            self._report(node, f"value cannot be read: {getattr(exc, 'problem', None) or exc}")
        return None


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _at(file: str, node: yaml.Node, message: str) -> Problem:
    line, col = _mark(node)
    return Problem(file, line, col, message)
