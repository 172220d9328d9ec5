"""The provider table (workflows/providers.py) is the one place provider facts live: routing,
settings, validation, pacing and the client factories follow it, validation warns where a
model will not be sent a setting, and the docs' tables are the table's."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import get_args

import httpx
import pytest

from activities.endpoints import Endpoint, is_configured
from activities.llm import build_providers
from activities.providers.clients import FACTORIES
from activities.providers.openai_chat import OpenAIChatProvider
from activities.rate_limits import Pacer
from engine.definition_files import load_yaml
from engine.rest import create_app
from engine.rest_auth import ApiConfig, ApiToken
from engine.settings import Settings
from tests import provider_docs
from tests.conftest import ROOT
from workflows.providers import PROVIDERS, Wire, family_of, provider_spec
from workflows.routing import route

TOKEN = "provider-table-0123456789"


def test_every_wire_format_has_a_client_factory():
    assert set(FACTORIES) == set(get_args(Wire))
    assert {spec.wire for spec in PROVIDERS} <= set(FACTORIES)


@pytest.mark.parametrize("spec", PROVIDERS, ids=lambda spec: spec.name)
def test_each_provider_is_routed_configured_and_built_as_its_entry_says(spec):
    for example in spec.examples:
        if "..." not in example:
            assert route(example).provider == spec.name
    env = {name: "x" for name in (spec.key_env, spec.base_url_env) if name}
    endpoint = Settings.from_env(env, connection=False).endpoints.get(spec.name, Endpoint())
    assert is_configured(spec.name, endpoint)
    assert spec.name in build_providers({spec.name: endpoint})
    assert (Pacer().gate(spec.name, "m") is None) == (spec.rate_headers is None)


def test_a_server_the_table_does_not_name_is_openai_compatible_by_its_base_url():
    settings = Settings.from_env({"VLLM_BASE_URL": "http://127.0.0.1:9/v1"}, connection=False)
    assert settings.endpoints["vllm"] == Endpoint(base_url="http://127.0.0.1:9/v1")
    assert isinstance(build_providers(settings.endpoints)["vllm"], OpenAIChatProvider)
    assert not is_configured("vllm", None)
    assert provider_spec("vllm").setup_hint() == "VLLM_BASE_URL to its OpenAI-compatible endpoint"


def test_ollama_has_a_default_and_anthropic_needs_its_key():
    endpoints = Settings.from_env({"ANTHROPIC_BASE_URL": "http://x"}, connection=False).endpoints
    assert endpoints["ollama"].base_url == "http://localhost:11434/v1"
    assert not is_configured("anthropic", endpoints["anthropic"])


@pytest.mark.parametrize(
    ("name", "temperature", "max_tokens_param"),
    [
        ("o1", False, "max_completion_tokens"),
        ("o3-mini", False, "max_completion_tokens"),
        ("openai/o4-mini", False, "max_completion_tokens"),
        ("gpt-5", False, "max_completion_tokens"),
        ("gpt-5-mini", False, "max_completion_tokens"),
        ("gpt-4o-mini", True, "max_tokens"),
        ("gpt-4", True, "max_tokens"),
        ("claude-haiku-4-5", False, "max_tokens"),
        ("ollama/o3", True, "max_tokens"),  # another server's names are its own
        ("vllm/gpt-5", True, "max_tokens"),
    ],
)
def test_what_each_model_family_is_sent(name, temperature, max_tokens_param):
    target = route(name)
    family = family_of(target.provider, target.model)
    assert (family.temperature, family.max_tokens_param) == (temperature, max_tokens_param)


REASONING = """
workflow:
  name: Reasoning
  defaults: {temperature: 0.2}
  steps:
    - id: think
      type: llm_call
      model: o3-mini
      temperature: 0.7
      prompt: "Think"
    - id: plan
      type: llm_call
      model: gpt-5
      prompt: "Plan"
    - id: chat
      type: llm_call
      model: gpt-4o-mini
      fallback_models: [o3]
      prompt: "Chat"
"""


def test_validation_warns_where_a_temperature_will_not_be_sent():
    loaded = load_yaml(REASONING, Settings(), "reasoning.yaml")
    reason = "openai reasoning models (o1, o3, o4-mini, gpt-5...) take no temperature"
    assert [str(warning) for warning in loaded.warnings] == [
        f"reasoning.yaml:9:20: warning: temperature 0.7 is not sent to o3-mini: {reason} "
        "(remove it, or choose another model)",
        f"reasoning.yaml:13:14: warning: temperature 0.2 (from defaults) is not sent to gpt-5: "
        f"{reason} (remove it, or choose another model)",
    ]
    assert "warning" not in loaded.model_dump_json()  # never part of a run's input


def test_a_default_temperature_for_a_default_model_is_warned_of_once():
    text = """
workflow:
  name: Defaults
  defaults: {model: o1, temperature: 0.5}
  steps:
    - {id: one, type: llm_call, prompt: "One"}
    - {id: two, type: llm_call, prompt: "Two"}
"""
    warnings = load_yaml(text, Settings(), "d.yaml").warnings
    assert [(w.line, w.col) for w in warnings] == [(4, 38)]
    assert "temperature 0.5 (from defaults) is not sent to o1" in warnings[0].message


def test_the_example_definitions_draw_no_warning():
    for path in sorted((ROOT / "definitions").glob("*.yaml")):
        if path.name.endswith(".test.yaml"):
            continue  # test files, not definitions
        settings = Settings(action_modules=("activities.example_actions",))
        loaded = load_yaml(path.read_text(), settings, path.name, path.parent)
        assert loaded.warnings == [], path.name


def test_the_cli_prints_the_warning_and_still_calls_the_file_valid(tmp_path):
    (tmp_path / "reasoning.yaml").write_text(REASONING)
    done = subprocess.run(
        [sys.executable, str(ROOT / "starter.py"), "validate", "reasoning.yaml"],
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "reasoning.yaml: valid\n"
    assert "reasoning.yaml:9:20: warning: temperature 0.7 is not sent to o3-mini" in done.stderr
    assert "Traceback" not in done.stderr


async def test_the_rest_api_validate_answer_carries_the_warnings():
    app = create_app(Settings(), ApiConfig(tokens=(ApiToken("ci", TOKEN),)))
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
        answer = await http.post("/workflows/validate", json={"yaml": REASONING}, headers=headers)
    assert answer.json()["valid"] is True
    assert [(w["line"], w["column"]) for w in answer.json()["warnings"]] == [(9, 20), (13, 14)]


@pytest.mark.parametrize(
    ("doc", "table"),
    [(doc, table) for doc, tables in provider_docs.DOCS.items() for table in tables],
)
def test_the_docs_provider_tables_are_the_provider_table(doc, table):
    text = (ROOT / doc).read_text(encoding="utf-8")
    assert provider_docs.found(text, table) == provider_docs.rendered(table), (
        f"{doc}'s {table} table differs from workflows/providers.py: run "
        "`python -m tests.provider_docs` to rewrite it"
    )
