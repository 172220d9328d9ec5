"""docs/extending.md, "Add a provider": its examples, performed as written against the fake
provider (only the server's URL is swapped for the fake's)."""

from __future__ import annotations

import asyncio
import re

from activities.endpoints import Endpoint
from activities.providers.clients import FACTORIES
from engine.settings import Settings
from tests.conftest import ROOT, definition, new_worker, start
from tests.fake_llm import FakeLlmServer
from workflows import providers
from workflows.contracts import LlmCallInput, RunInput
from workflows.providers import ProviderSpec

DOC = (ROOT / "docs" / "extending.md").read_text(encoding="utf-8")
SECTION = DOC[DOC.index("## Add a provider") :]
DOC_URL = "http://localhost:8000/v1"


def code(language: str) -> str:
    """The section's first block in `language`."""
    match = re.search(rf"```{language}\n(.*?)```", SECTION, re.S)
    assert match, f"no {language} block in docs/extending.md's 'Add a provider'"
    return match[1]


def environment(base_url: str) -> dict[str, str]:
    """The bash block's assignments, pointed at `base_url`."""
    pairs = re.findall(r"^(\w+)=(\S+)", code("bash"), re.M)
    return {name: value.replace(DOC_URL, base_url) for name, value in pairs}


async def test_an_openai_compatible_server_needs_only_its_base_url(client):
    with FakeLlmServer(reply=lambda request: "hello from acme") as llm:
        settings = Settings.from_env(environment(llm.openai_url), connection=False)
        async with new_worker(client, settings.endpoints) as worker:
            run_input = RunInput(definition=definition(code("yaml")))
            handle = await start(client, worker, run_input)
            result = await asyncio.wait_for(handle.result(), 30)
    assert result.outputs == {"reply": "hello from acme"}
    assert [request.body["model"] for request in llm.requests] == ["acme-large"]


def documented_entry() -> ProviderSpec:
    entry = eval(code("python"), vars(providers))  # the docs' entry, as PROVIDERS would hold it
    assert isinstance(entry, ProviderSpec)
    return entry


async def test_a_table_entry_says_where_it_is_and_what_its_model_families_are_sent():
    entry = documented_entry()
    assert re.match(f"^(?:{entry.bare_names})", "acme-large")  # routed without `acme/`
    assert entry.configured(api_key=None, base_url=entry.default_base_url)
    call = LlmCallInput(
        step_id="think", provider="acme", model="acme-think-1", prompt="Think", temperature=0.7,
        max_tokens=50,
    )  # fmt: skip
    with FakeLlmServer(reply=lambda request: "thought") as llm:
        provider = FACTORIES[entry.wire](entry, Endpoint(base_url=llm.openai_url))
        completion = await provider.complete(call)
        await provider.complete(call.model_copy(update={"model": "acme-large"}))
    assert completion.text == "thought"
    thinking, large = (request.body for request in llm.requests)
    assert "temperature" not in thinking and thinking["max_completion_tokens"] == 50
    assert large["temperature"] == 0.7 and large["max_tokens"] == 50
