"""Conversations and images: `messages` instead of `prompt` (few-shot examples, earlier
turns) and `images` (https URLs, or files under the worker's INPUT_DIR) reach each provider
in its own wire format; validation refuses what cannot be sent."""

from __future__ import annotations

import base64
import uuid

import pytest

from tests.conftest import definition, new_worker
from workflows.contracts import RunInput
from workflows.errors import DefinitionError
from workflows.interpreter import YamlWorkflow

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)

FEW_SHOT = """
workflow:
  name: few_shot
  variables:
    ticket: "The app crashes"
  steps:
    - id: label
      type: llm_call
      model: {model}
      system: "Label tickets with one word."
      messages:
        - {{role: user, content: "My invoice is wrong"}}
        - {{role: assistant, content: "billing"}}
        - {{role: user, content: "{{{{ ticket }}}}"}}
      images: {images}
"""


async def run(client, endpoints, tmp_path, model: str, images: str):
    text = FEW_SHOT.format(model=model, images=images)
    async with new_worker(client, endpoints, input_dir=tmp_path) as worker:
        handle = await client.start_workflow(
            YamlWorkflow.run,
            RunInput(definition=definition(text)),
            id=f"talk-{uuid.uuid4()}",
            task_queue=worker.task_queue,
        )
        return await handle.result()


@pytest.mark.parametrize("model", ["openai/gpt-4o", "anthropic/claude-haiku-4-5"])
async def test_messages_and_images_reach_the_provider_in_its_own_format(
    client, endpoints, fake_llm, tmp_path, model
):
    (tmp_path / "screen.png").write_bytes(PNG)
    images = '["screen.png", "https://example.org/shot.png"]'
    result = await run(client, endpoints, tmp_path, model, images)
    assert result.steps["label"].outputs["text"].startswith("Hello from")
    messages = fake_llm.requests[0].body["messages"]
    roles = [m["role"] for m in messages if m["role"] != "system"]
    assert roles == ["user", "assistant", "user"]
    assert messages[-1]["content"][-1 if "anthropic" in model else 0]["text"] == "The app crashes"
    parts = str(messages[-1]["content"])
    assert base64.b64encode(PNG).decode() in parts  # the file, inline
    assert "https://example.org/shot.png" in parts  # the URL, as it is
    history = await client.get_workflow_handle(result.execution_id).fetch_history()
    assert base64.b64encode(PNG).decode() not in history.to_json()  # history keeps the name


async def test_an_image_outside_the_input_folder_fails_the_step(
    client, endpoints, fake_llm, tmp_path
):
    (tmp_path.parent / "secret.png").write_bytes(PNG)
    with pytest.raises(Exception) as failed:
        await run(client, endpoints, tmp_path, "openai/gpt-4o", '["../secret.png"]')
    assert "must name a file inside the worker's INPUT_DIR" in str(failed.value.cause)  # type: ignore[attr-defined]
    assert fake_llm.requests == []


def test_validation_refuses_prompt_with_messages_and_images_for_other_providers():
    both = FEW_SHOT.format(model="gpt-4o", images="[]").replace(
        "      messages:", '      prompt: "hi"\n      messages:'
    )
    with pytest.raises(DefinitionError, match="needs 'prompt' or 'messages' \\(not both\\)"):
        definition(both)
    with pytest.raises(DefinitionError) as refused:
        definition(FEW_SHOT.format(model="ollama/llava", images='["a.png"]'))
    assert str(refused.value).startswith("test.yaml:15:15: ")  # the images line
    assert "served by ollama, which is not sent images" in str(refused.value)
