"""Model names to providers, as DSL.md says."""

from __future__ import annotations

import pytest

from workflows.routing import Route, route


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("gpt-4", Route("openai", "gpt-4")),
        ("gpt-4o-mini", Route("openai", "gpt-4o-mini")),
        ("o3-mini", Route("openai", "o3-mini")),
        ("chatgpt-4o-latest", Route("openai", "chatgpt-4o-latest")),
        ("claude-haiku-4-5", Route("anthropic", "claude-haiku-4-5")),
        ("openai/gpt-4o", Route("openai", "gpt-4o")),
        ("anthropic/claude-opus-4-6", Route("anthropic", "claude-opus-4-6")),
        ("ollama/llama3", Route("ollama", "llama3")),
        ("vllm/meta-llama/Llama-3-8B", Route("vllm", "meta-llama/Llama-3-8B")),
        ("mock", Route("mock", "mock")),
    ],
)
def test_routes(name, expected):
    assert route(name) == expected


@pytest.mark.parametrize("name", ["llama3", "openai/", "Bad Provider/x", ""])
def test_unroutable_names_say_how_to_write_them(name):
    with pytest.raises(ValueError, match="provider/model"):
        route(name)
