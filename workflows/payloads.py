"""How deep and how big a value may be to cross Temporal's wire: the one check every payload
passes, in the payload converter, when it is encoded and again when it is decoded.

Why: Temporal's pydantic converter reads JSON nested more than 200 levels as an error, and a
workflow that cannot decode its input or an activity's result fails its workflow task on every
retry, forever. Here a value that is too deep or too big is refused with one line instead: a
client's start, signal or update is refused to its sender; an activity's result fails that
step (non-retryable); a run's input that another client (Temporal's CLI) sent unchecked fails
the run's start; a signal is dropped and counted.

Two depths: whatever enters a run from outside a workflow (clients, activities) may nest
MAX_DEPTH levels; a workflow's own payloads (activity inputs, child runs, its result,
continue-as-new) and every payload read may nest MAX_DEPTH + WRAPPING_HEADROOM, room for the
levels the engine wraps a value in, so what was accepted is never refused for its wrapping.
"""

from __future__ import annotations

from itertools import accumulate
from typing import Any, ClassVar

from pydantic_core import PydanticSerializationError
from temporalio import activity, workflow
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import PydanticJSONPlainPayloadConverter
from temporalio.converter import (
    CompositePayloadConverter,
    DataConverter,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
)
from temporalio.exceptions import ApplicationError

from workflows.errors import FailureType, UsageError

MAX_DEPTH = 72
"""Levels of JSON arrays and objects a value entering a run may nest, counting the engine's
own wrapping (a run variable sits 2 levels in, an action's result 1)."""
WRAPPING_HEADROOM = 36
HARD_DEPTH = MAX_DEPTH + WRAPPING_HEADROOM
"""What a worker reads at most (Temporal's JSON reader stops at 200)."""
MAX_BYTES = 128 * 1024 * 1024
"""The largest payload (JSON bytes, before encryption) with external storage on."""
INLINE_MAX_BYTES = 2 * 1024 * 1024 - 4096
"""With EXTERNAL_STORAGE=off: under Temporal's 2 MiB payload limit, with room for the codec."""

_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'[]{}"')
_STEP = [0] * 256
_STEP[ord("[")] = _STEP[ord("{")] = 1
_STEP[ord("]")] = _STEP[ord("}")] = -1


class PayloadRefused(ApplicationError, UsageError):
    """A value too deep or too big to cross Temporal's wire. To Temporal an ApplicationError:
    raised in an activity it fails the step without retries, raised while a workflow decodes
    its input it fails the run instead of the workflow task. To the client API a UsageError:
    refused to its sender in one line (REST: 400)."""

    def __init__(self, message: str) -> None:
        # An activity's result is refused after the activity returned: say which attempt it
        # was, as the engine's activities do (workflows/activity_options.attempts_of).
        details = [{"attempt": activity.info().attempt}] if activity.in_activity() else []
        super().__init__(message, *details, type=FailureType.PAYLOAD_REFUSED, non_retryable=True)

    def __str__(self) -> str:
        return self.message


def json_depth(data: bytes) -> int:
    """How many levels of arrays and objects the JSON text `data` nests (0 for a scalar).
    Escaped backslashes and quotes go first, then all but brackets and quotes, then what is
    between quotes; the rest is summed. Every pass runs at C speed."""
    if data.count(b"[") + data.count(b"{") == 0:
        return 0
    plain = data.replace(b"\\\\", b"").replace(b'\\"', b"").translate(None, _NOT_STRUCTURE)
    outside_strings = b"".join(plain.split(b'"')[::2])
    return max(accumulate(map(_STEP.__getitem__, outside_strings)), default=0)


def payload_problem(data: bytes, max_depth: int, max_bytes: int) -> str | None:
    """Why JSON text `data` may not cross the wire, in one line; None when it may."""
    if len(data) > max_bytes:
        return f"a value of {len(data):,} bytes is over the limit of {max_bytes:,} bytes"
    if data.count(b"[") + data.count(b"{") <= max_depth:
        return None
    depth = json_depth(data)
    if depth > max_depth:
        return (
            f"a value nests {depth} levels of JSON arrays and objects, "
            f"over the limit of {max_depth}"
        )
    return None


class BoundedJsonConverter(PydanticJSONPlainPayloadConverter):
    """Temporal's pydantic JSON converter with the depth and size checks on both sides."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__()
        self._max_bytes = max_bytes

    def to_payload(self, value: Any) -> Payload | None:
        limit = HARD_DEPTH if workflow.in_workflow() else MAX_DEPTH
        try:
            payload = super().to_payload(value)
        except PydanticSerializationError as exc:
            if "depth" not in str(exc):
                raise
            raise PayloadRefused(
                "a value nests more than 250 levels of JSON arrays and objects, "
                f"over the limit of {limit}"
            ) from None
        if payload is not None:
            problem = payload_problem(payload.data, limit, self._max_bytes)
            if problem:
                raise PayloadRefused(problem)
        return payload

    def from_payload(self, payload: Payload, type_hint: type | None = None) -> Any:
        problem = payload_problem(payload.data, HARD_DEPTH, self._max_bytes)
        if problem:
            raise PayloadRefused(problem)
        return super().from_payload(payload, type_hint)


class BoundedPayloadConverter(CompositePayloadConverter):
    """The default converters with JSON read and written by BoundedJsonConverter."""

    max_bytes: ClassVar[int] = MAX_BYTES

    def __init__(self) -> None:
        bounded = BoundedJsonConverter(self.max_bytes)
        super().__init__(
            *(
                bounded if isinstance(c, JSONPlainPayloadConverter) else c
                for c in DefaultPayloadConverter.default_encoding_payload_converters
            )
        )


class InlinePayloadConverter(BoundedPayloadConverter):
    """With external storage off, payloads stay in history: Temporal's own size limit."""

    max_bytes = INLINE_MAX_BYTES


def bounded_data_converter(inline: bool = False) -> DataConverter:
    """The project's converter before any codec or storage is added (activities/codec.py)."""
    kind = InlinePayloadConverter if inline else BoundedPayloadConverter
    return DataConverter(payload_converter_class=kind)
