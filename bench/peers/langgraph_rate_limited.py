"""S6 in LangGraph: the same rate-limited fan-out (one `Send` per item) with the OpenAI SDK's
default retries (two, honouring Retry-After), the way a LangGraph user would write it. Run by
bench/rate_limited.py inside the peer's virtualenv.

    langgraph_rate_limited.py BASE_URL ITEMS CONCURRENCY MAX_TOKENS PROMPT

PROMPT is a format string with `{item}`. A call the SDK gives up on is counted, not raised:
by default the first one would abort the whole invoke (`first_failure_s` says when).
Prints one JSON object: {"wall_s", "done", "failed", "first_failure_s", "failures"}.
"""

from __future__ import annotations

import json
import operator
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Annotated, TypedDict

import openai
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send


class Fan(TypedDict):
    items: list[int]
    done: Annotated[list[int], operator.add]
    failed: Annotated[list[tuple[int, float, str]], operator.add]


class Item(TypedDict):
    item: int


def main(base_url: str, items: int, concurrency: int, max_tokens: int, prompt: str) -> None:
    client = openai.OpenAI(base_url=base_url, api_key="bench")  # the SDK's default retries

    def work(state: Item) -> dict[str, list]:
        try:
            client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": prompt.format(item=state["item"])}],
                max_tokens=max_tokens,
            )
        except openai.APIError as exc:
            reason = type(exc).__name__
            return {"failed": [(state["item"], time.perf_counter() - started, reason)]}
        return {"done": [state["item"]]}

    fan = StateGraph(Fan)
    fan.add_node("work", work)
    fan.add_conditional_edges(START, lambda s: [Send("work", {"item": i}) for i in s["items"]])
    fan.add_edge("work", END)
    with tempfile.TemporaryDirectory() as folder:
        database = str(Path(folder) / "checkpoints.sqlite")
        with SqliteSaver.from_conn_string(database) as saver:
            graph = fan.compile(checkpointer=saver)
            started = time.perf_counter()
            final = graph.invoke(
                {"items": list(range(items)), "done": [], "failed": []},
                {"configurable": {"thread_id": str(uuid.uuid4())}, "max_concurrency": concurrency},
            )
            wall = time.perf_counter() - started
    failed = final["failed"]
    print(
        json.dumps(
            {
                "wall_s": wall,
                "done": len(final["done"]),
                "failed": len(failed),
                "first_failure_s": min((at for _, at, _ in failed), default=None),
                "failures": dict(Counter(reason for _, _, reason in failed)),
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
