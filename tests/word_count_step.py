"""A step type of one's own, `word_count`, added to a worker (docs/extending.md)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field
from temporalio import workflow

from workflows.contracts import RunResult
from workflows.definition_parts import StepFields
from workflows.interpreter import YamlWorkflow
from workflows.step_results import Once, render_or_fail
from workflows.step_types import BUILT_IN
from workflows.steps import RUNNERS, StepRunner


class WordCountStep(StepFields):
    """Counts the words of a text, inside the workflow (no activity)."""

    type: Literal["word_count"] = Field(description="word_count: count the words of a text.")
    text: str = Field(description="The text (a template).")


async def run_word_count(
    step: WordCountStep, runner: StepRunner, context: dict[str, Any], key: str
) -> Once:
    text = str(render_or_fail(step.text, context, f"{step.id}.text"))
    await runner.pace()  # work done inside the workflow yields to the worker now and then
    return Once({name: len(text.split()) for name in step.output_names() or ["count"]})


STEP_TYPES = BUILT_IN.with_type(WordCountStep)


@workflow.defn(name="YamlWorkflow")
class WordCountWorkflow(YamlWorkflow):
    step_types = STEP_TYPES
    runners = {**RUNNERS, WordCountStep: run_word_count}

    @workflow.run
    async def run(self, raw_input: Any) -> RunResult:
        return await super().run(raw_input)
