"""Step types come from one registry (workflows/step_types/): a type without a runner fails
here, not in a run; and a worker can add a type of its own (docs/extending.md)."""

from __future__ import annotations

import re
import uuid

import pytest
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from tests.conftest import ROOT
from tests.word_count_step import STEP_TYPES, WordCountStep, WordCountWorkflow
from workflows.contracts import RunResult
from workflows.definition import json_schema
from workflows.definition_parts import SPENDING_TYPES
from workflows.errors import DefinitionError
from workflows.interpreter import YamlWorkflow
from workflows.step_types import BUILT_IN
from workflows.steps import missing_runners
from workflows.validation import load_definition

COUNT_WORDS = """\
workflow:
  name: count-words
  variables:
    greeting: hello there, step types
  steps:
    - id: shout
      type: set
      values:
        loud: "{{ greeting | upper }}"
    - id: count
      type: word_count
      text: "{{ loud }}"
      outputs: [words]
"""


def test_every_built_in_step_type_has_a_runner():
    assert missing_runners() == []


def test_a_step_type_without_a_runner_is_caught():
    assert missing_runners(STEP_TYPES) == ["word_count"]
    with pytest.raises(TypeError, match="no runner for step type"):

        class Forgotten(YamlWorkflow):  # the runner was never named
            step_types = STEP_TYPES


def test_the_definitions_union_is_the_registry():
    """The JSON Schema's step types are exactly the registry's, in its order."""
    step = json_schema()["$defs"]["WorkflowSpec"]["properties"]["steps"]["items"]
    assert sorted(step["discriminator"]["mapping"]) == sorted(BUILT_IN.names)
    assert [one["$ref"].rsplit("/", 1)[1] for one in step["oneOf"]] == [
        model.__name__ for model in BUILT_IN.models
    ]


def test_the_budget_message_names_the_step_types_that_spend():
    spending = {name for name, model in BUILT_IN.by_name.items() if model.spends}
    assert set(SPENDING_TYPES.split(" and ")) == spending


def test_a_step_type_name_is_registered_once():
    with pytest.raises(ValueError, match="'word_count' is registered already"):
        STEP_TYPES.with_type(WordCountStep)


def test_the_added_step_type_is_validated_and_unknown_to_the_built_in_ones():
    definition = load_definition(COUNT_WORDS, "count.yaml", step_types=STEP_TYPES)
    assert isinstance(definition.workflow.steps[1], WordCountStep)
    with pytest.raises(DefinitionError, match="unknown step type 'word_count'"):
        load_definition(COUNT_WORDS, "count.yaml")
    broken = COUNT_WORDS.replace("      text:", "      txt:")
    with pytest.raises(DefinitionError, match="unknown field 'txt' in a step of type word_count"):
        load_definition(broken, "count.yaml", step_types=STEP_TYPES)


async def test_the_added_step_type_runs_on_the_dev_server(client: Client):
    definition = load_definition(COUNT_WORDS, "count.yaml", step_types=STEP_TYPES)
    task_queue = f"test-{uuid.uuid4()}"
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[WordCountWorkflow],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        result = await client.execute_workflow(
            "YamlWorkflow",
            {"definition": definition.model_dump(mode="json", by_alias=True)},
            id=task_queue,
            task_queue=task_queue,
            result_type=RunResult,
        )
    assert result.outputs["words"] == 4
    assert result.steps["count"].status == "completed"


def test_the_guide_shows_the_example_as_the_test_runs_it():
    """docs/extending.md's code is tests/word_count_step.py, so the guide cannot go stale."""
    guide = (ROOT / "docs" / "extending.md").read_text()
    section = guide[guide.index("## Add a step type") :]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert code is not None
    assert code.group(1) == (ROOT / "tests" / "word_count_step.py").read_text()
    assert COUNT_WORDS in section
