"""A Prompt flow Jinja2 prompt as our templates: the `# system:` / `# user:` / `# assistant:`
sections of a chat prompt become `system` and `messages` (a `{% for %}` over the history whose
body holds sections becomes a message loop), and the node's inputs are bound to the names
the template reads with `{% set %}` where they differ."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import jinja2
from jinja2 import meta, nodes

ROLE = re.compile(r"^\s*#?\s*(system|user|assistant|function|tool)\s*:\s*$", re.IGNORECASE)
FOR = re.compile(r"^\s*\{%-?\s*for\s+([A-Za-z_]\w*)\s+in\s+(.+?)\s*-?%\}\s*$")
ENDFOR = re.compile(r"^\s*\{%-?\s*endfor\s*-?%\}\s*$")
ANY_FOR = re.compile(r"\{%-?\s*for\b")
ANY_ENDFOR = re.compile(r"\{%-?\s*endfor\b")


class PromptProblem(ValueError):
    """A prompt the importer cannot map; `line` is its line in the prompt file."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


@dataclass
class Message:
    role: str
    line: int
    lines: list[str] = field(default_factory=list)

    @property
    def content(self) -> str:
        return "\n".join(self.lines).strip()


@dataclass
class Loop:
    """`{% for NAME in ITERABLE %}` around sections: one set of messages per item."""

    name: str
    iterable: str
    end: int
    """The line of its `{% endfor %}`."""
    line: int
    messages: list[Message] = field(default_factory=list)


@dataclass
class ChatPrompt:
    system: Message | None
    entries: list[Message | Loop]


def read_chat(text: str) -> ChatPrompt:
    """The sections of a chat prompt; a text without role lines is one user message."""
    lines = text.splitlines()
    if not any(ROLE.match(line) for line in lines):
        return ChatPrompt(None, [Message("user", 1, lines)])
    loops = _message_loops(lines)
    entries: list[Message | Loop] = []
    loop: Loop | None = None
    current: Message | None = None
    for number, line in enumerate(lines, start=1):
        role = ROLE.match(line)
        if number in loops:
            loop = Loop(*loops[number], line=number)
            entries.append(loop)
            current = None
        elif loop is not None and number == loop.end:
            loop, current = None, None
        elif role:
            current = Message(role.group(1).lower(), number)
            (loop.messages if loop is not None else entries).append(current)
        elif current is not None:
            current.lines.append(line)
        elif line.strip():
            raise PromptProblem("text before the first role line (# system:, # user:...)", number)
    return _checked(entries)


def _message_loops(lines: list[str]) -> dict[int, tuple[str, str, int]]:
    """Line numbers of `{% for %}` lines whose body (to the matching `{% endfor %}` line)
    holds role lines, with the loop's variable, iterable and end line."""
    found: dict[int, tuple[str, str, int]] = {}
    for start, line in enumerate(lines, start=1):
        opened = FOR.match(line)
        if not opened:
            continue
        depth = 0
        for number in range(start, len(lines) + 1):
            text = lines[number - 1]
            depth += len(ANY_FOR.findall(text)) - len(ANY_ENDFOR.findall(text))
            if depth == 0:
                body = lines[start : number - 1]
                if ENDFOR.match(text) and any(ROLE.match(b) for b in body):
                    found[start] = (opened.group(1), opened.group(2), number)
                break
    return found


def _checked(entries: list[Message | Loop]) -> ChatPrompt:
    system: Message | None = None
    kept: list[Message | Loop] = []
    for entry in entries:
        for message in entry.messages if isinstance(entry, Loop) else [entry]:
            if message.role in ("function", "tool"):
                raise PromptProblem(f"'{message.role}' messages are not imported yet", message.line)
            try:
                jinja2.Environment().parse(message.content)
            except jinja2.TemplateSyntaxError as exc:
                raise PromptProblem(
                    f"a Jinja block crosses a role line ({exc.message})", message.line
                ) from None
        if isinstance(entry, Message) and entry.role == "system":
            if kept or system is not None:
                raise PromptProblem("a system section after other messages", entry.line)
            system = entry
            continue
        if isinstance(entry, Loop) and any(m.role == "system" for m in entry.messages):
            raise PromptProblem("a system section inside a loop", entry.line)
        if isinstance(entry, Loop) or entry.content:
            kept.append(entry)
    return ChatPrompt(system, kept)


def names_read(template: str) -> set[str]:
    """The names a template reads that it does not set itself."""
    environment = jinja2.Environment()
    return set(meta.find_undeclared_variables(environment.parse(template))) - set(
        environment.globals
    )


def bound(template: str, bindings: dict[str, str], local: frozenset[str] = frozenset()) -> str:
    """The template, with `{% set NAME = EXPRESSION %}` before it for each name it reads whose
    value is another expression (a variable of the same name needs none)."""
    sets = [
        f"{{% set {name} = {bindings[name]} %}}"
        for name in sorted(names_read(template) - local)
        if name in bindings and bindings[name] != name
    ]
    return "".join(sets) + template


def unbound(
    template: str, bindings: dict[str, str], local: frozenset[str] = frozenset()
) -> list[str]:
    """Names the template reads that are neither bound nor local (a loop's item)."""
    return sorted(names_read(template) - set(bindings) - local)


LOOP_FIELDS = ("index", "index0", "length")
"""What `loop` holds in a message loop (an `each` entry), of all Jinja's loop has."""


def loop_fields(template: str) -> set[str]:
    """The fields of `loop` a message loop's message reads (an inner `{% for %}`'s own
    `loop` aside)."""
    found: set[str] = set()

    def walk(node: nodes.Node) -> None:
        if isinstance(node, nodes.For):
            walk(node.iter)
            return
        if (
            isinstance(node, nodes.Getattr)
            and isinstance(node.node, nodes.Name)
            and node.node.name == "loop"
        ):
            found.add(node.attr)
        for child in node.iter_child_nodes():
            walk(child)

    walk(jinja2.Environment().parse(template))
    return found


def rebound(expression: str, bindings: dict[str, str]) -> str:
    """A Jinja expression (a loop's iterable) with each name it reads replaced by what the
    node binds it to: `history[-2:]` with history bound to `chat` is `(chat)[-2:]`."""
    tokens = [t for t in jinja2.Environment().lex("{{ " + expression + " }}")][1:-1]
    significant = [i for i, (_, kind, _) in enumerate(tokens) if kind != "whitespace"]
    out: list[str] = []
    for index, (_, kind, value) in enumerate(tokens):
        at = significant.index(index) if index in significant else -1
        before = tokens[significant[at - 1]][2] if at > 0 else None
        after = tokens[significant[at + 1]][2] if 0 <= at < len(significant) - 1 else None
        read = kind == "name" and before not in (".", "|", "is") and after != "="
        if read and value in bindings:
            value = bindings[value] if bindings[value].isidentifier() else f"({bindings[value]})"
        out.append(value)
    return "".join(out).strip()
