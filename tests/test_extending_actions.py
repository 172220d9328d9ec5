"""docs/extending.md, "Add an action": the guide's module is the one this test loads, and
the definition it shows validates against it and runs on the dev server, the action's
result reaching the prompt and the validator re-asking the model."""

from __future__ import annotations

import re
import uuid

import pytest
from temporalio.worker import Worker

from activities.llm import build_providers
from activities.registry import load_custom_validators, params_models
from engine.activity_catalog import build_actions
from engine.plugin import EnginePlugin
from engine.settings import Settings
from tests.conftest import ROOT
from workflows.contracts import RunInput
from workflows.errors import DefinitionError
from workflows.interpreter import YamlWorkflow
from workflows.validation import load_definition

DOC = ROOT / "docs" / "extending.md"
MODULE = "docs.examples.shipping"


def section() -> str:
    return DOC.read_text().split("## Add an action", 1)[1].split("\n## ", 1)[0]


def block(language: str) -> str:
    found = re.search(rf"^```{language}\n(.*?)^```$", section(), re.MULTILINE | re.DOTALL)
    assert found is not None, f"docs/extending.md: no ```{language} block in 'Add an action'"
    return found.group(1)


def shipping(text: str | None = None) -> tuple[Settings, object]:
    settings = Settings(action_modules=(MODULE,))
    actions = params_models(build_actions(settings))
    validators = set(load_custom_validators(settings.action_modules))
    return settings, load_definition(text or block("yaml"), "shipping.yaml", actions, validators)


def test_the_guide_shows_the_module_the_test_loads():
    assert block("python") == (ROOT / "docs" / "examples" / "shipping.py").read_text()


def test_params_the_action_does_not_declare_are_refused_with_their_line():
    text = block("yaml").replace("weight_kg: 2.5", "weight_kg: 2.5, insured: true")
    with pytest.raises(DefinitionError) as caught:
        shipping(text)
    assert (
        str(caught.value) == "shipping.yaml:9:58: unknown param 'insured' for action shipping_quote"
    )


async def test_the_guides_definition_runs_with_the_action_and_the_validator(
    client, endpoints, fake_llm
):
    replies = iter(["SHIPPING IS 9.8 EUR.", "Shipping costs 9.8 EUR with ParcelCo."])
    fake_llm.reply = lambda request: next(replies)
    settings, definition = shipping()
    plugin = EnginePlugin(settings, providers=build_providers(endpoints))
    task_queue = f"shipping-{uuid.uuid4()}"
    async with Worker(client, task_queue=task_queue, plugins=[plugin]):
        result = await client.execute_workflow(
            YamlWorkflow.run,
            RunInput(definition=definition, variables={"country": "DE"}),
            id=task_queue,
            task_queue=task_queue,
        )
    assert result.outputs["price_eur"] == 14.7  # 3 started kilograms at 4.90
    assert result.outputs["reply"] == "Shipping costs 9.8 EUR with ParcelCo."
    first, second = fake_llm.requests
    assert "shipping costs 14.7 EUR with ParcelCo" in first.prompt_text
    assert "written in capitals" in second.prompt_text
