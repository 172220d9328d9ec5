"""An example custom action. Load it with ACTION_MODULES=activities.example_actions (on the
worker, and for the starter so it can validate the params), then write:

    - id: count
      type: action
      action: word_count
      params: {text: "{{ brief }}"}
      outputs: [words]
"""

from __future__ import annotations

from pydantic import BaseModel

from activities.registry import action
from workflows.contracts import ActionInput


class WordCountParams(BaseModel):
    text: str


@action("word_count", WordCountParams)
def word_count(params: WordCountParams, request: ActionInput) -> int:
    """Sync functions are fine; async ones too. The return value is the step's output."""
    return len(params.text.split())
