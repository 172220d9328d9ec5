"""An llm_call's `messages`: single messages, and `each` entries that repeat a few messages
once per element of a list (earlier turns kept as data, e.g. a chat history). How they are
rendered: llm_call_run.py."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, Discriminator, Field, Tag, model_validator

from workflows.definition_parts import DefinitionModel, Identifier

if TYPE_CHECKING:
    from workflows.source import Path

Role = Literal["user", "assistant"]


def _no_system(data: Any) -> None:
    if isinstance(data, dict) and data.get("role") == "system":
        raise ValueError(
            "role 'system' is not taken in messages: write the system message as the "
            "step's `system:`"
        )


class TurnSpec(DefinitionModel):
    """A message an `each` entry repeats per element."""

    role: Role = Field(description="user or assistant.")
    content: str = Field(
        description="The message's text (a template; it sees the element by the each's `as` "
        "name, and `loop.index0`)."
    )

    @model_validator(mode="before")
    @classmethod
    def _flat(cls, data: Any) -> Any:
        """Refuse what an element-by-element repeat cannot mean, in words that say why."""
        _no_system(data)
        if isinstance(data, dict) and "each" in data:
            raise ValueError(
                "an 'each' cannot be nested inside another 'each': build the flat list "
                "first (a `set` step) and repeat over it"
            )
        if isinstance(data, dict) and "cache" in data:
            raise ValueError(
                "'cache' cannot mark a message inside an 'each' (it would mark every "
                "element's copy): mark a message before or after the 'each'"
            )
        return data


class MessageSpec(DefinitionModel):
    """One message of a conversation given instead of a prompt."""

    role: Role = Field(description="user or assistant.")
    content: str = Field(description="The message's text (a template).")
    cache: bool = Field(
        default=False,
        description="Cache the conversation up to and including this message (a marked "
        "prefix, e.g. a long document every call shares, in a first user message): "
        "Anthropic gets a cache_control breakpoint after it; OpenAI caches by itself. At "
        "most 3 messages. Default: false.",
    )

    @model_validator(mode="before")
    @classmethod
    def _not_system(cls, data: Any) -> Any:
        _no_system(data)
        return data


class MessageLoop(DefinitionModel):
    """Messages repeated once per element of a list, in order (earlier turns kept as data)."""

    each: str = Field(
        description='A template giving a list, such as "{{ chat_history }}"; null or an '
        "empty list gives no messages. An element's text is data, never a template."
    )
    as_: Annotated[Identifier, Field(alias="as")] = Field(
        default="item", description="The name of the current element in `messages`. Default: item."
    )
    messages: Annotated[list[TurnSpec], Field(min_length=1)] = Field(
        description="The messages each element gives ({role: user|assistant, content: "
        "template}); no `each` inside, no `cache`."
    )

    @model_validator(mode="before")
    @classmethod
    def _not_cached(cls, data: Any) -> Any:
        if isinstance(data, dict) and "cache" in data:
            raise ValueError(
                "'cache' marks one message, and an 'each' entry is many: mark a message "
                "before or after it"
            )
        return data

    @model_validator(mode="after")
    def _a_template(self) -> MessageLoop:
        if "{{" not in self.each:
            raise ValueError(
                f"each: {self.each!r} is not a template: write one that gives a list, "
                'such as "{{ chat_history }}"'
            )
        return self


def _kind(value: Any) -> str:
    """An entry with `each` (or, forgetting it, `messages`) repeats; any other is a message."""
    if isinstance(value, BaseModel):  # serializing: the model is known
        return "repeated" if isinstance(value, MessageLoop) else "single"
    repeats = isinstance(value, dict) and ("each" in value or "messages" in value)
    return "repeated" if repeats else "single"  # tags no entry has as a key: errors skip them


Message = Annotated[
    Annotated[MessageSpec, Tag("single")] | Annotated[MessageLoop, Tag("repeated")],
    Discriminator(_kind),
]
"""An entry of an llm_call's `messages`."""


def loop_names(raw: dict[str, Any], where: Path) -> set[str]:
    """The element's name, for a template inside an `each` entry's messages (raw step)."""
    entries = raw.get("messages")
    if where[:1] != ("messages",) or len(where) < 3 or where[2] != "messages":
        return set()
    if not isinstance(entries, list) or not isinstance(where[1], int):
        return set()
    entry = entries[where[1]] if where[1] < len(entries) else None
    name = entry.get("as", "item") if isinstance(entry, dict) else "item"
    return {name} if isinstance(name, str) else set()
