"""The same chain and fan-out in LangGraph with its SQLite checkpointer, against the same fake
server. Run by bench/run.py inside its own virtualenv (bench/peers/requirements-langgraph.txt).

Prints one JSON object: {"chain_step_ms": [...], "fanout_ms": [...]}.
"""

from __future__ import annotations

import json
import operator
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Annotated, TypedDict

from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send
from openai import OpenAI


def main(chain_url: str, fanout_url: str, chain_runs: int, fanout_runs: int) -> None:
    clients = {
        "chain": OpenAI(base_url=chain_url, api_key="bench", max_retries=0),
        "fanout": OpenAI(base_url=fanout_url, api_key="bench", max_retries=0),
    }

    def ask(prompt: str) -> str:
        client = clients["fanout" if prompt.startswith("item") else "chain"]
        reply = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}]
        )
        return reply.choices[0].message.content or ""

    class Chain(TypedDict):
        text: str

    chain = StateGraph(Chain)
    previous = START
    for index in range(10):
        name = f"s{index}"
        chain.add_node(name, lambda state, i=index: {"text": ask(f"step {i} {state['text']}")})
        chain.add_edge(previous, name)
        previous = name
    chain.add_edge(previous, END)

    class Fan(TypedDict):
        items: list[int]
        results: Annotated[list[str], operator.add]

    class Item(TypedDict):
        item: int

    fan = StateGraph(Fan)
    fan.add_node("work", lambda state: {"results": [ask(f"item {state['item']}")]})
    fan.add_conditional_edges(START, lambda s: [Send("work", {"item": i}) for i in s["items"]])
    fan.add_edge("work", END)

    with tempfile.TemporaryDirectory() as folder:
        database = str(Path(folder) / "checkpoints.sqlite")
        with SqliteSaver.from_conn_string(database) as saver:
            graph = chain.compile(checkpointer=saver)
            chain_step_ms = []
            for _ in range(chain_runs):
                started = time.perf_counter()
                graph.invoke({"text": ""}, {"configurable": {"thread_id": str(uuid.uuid4())}})
                chain_step_ms.append((time.perf_counter() - started) * 1000 / 10)
            fanout = fan.compile(checkpointer=saver)
            fanout_ms = []
            for _ in range(fanout_runs):
                started = time.perf_counter()
                fanout.invoke(
                    {"items": list(range(100)), "results": []},
                    {"configurable": {"thread_id": str(uuid.uuid4())}, "max_concurrency": 100},
                )
                fanout_ms.append((time.perf_counter() - started) * 1000)
    print(json.dumps({"chain_step_ms": chain_step_ms, "fanout_ms": fanout_ms}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
