"""A team adds the engine to a Temporal worker of its own with one plugin (engine/plugin.py),
as docs/extending.md shows; worker.py is only that plugin on a client, and nothing the
client API, the CLI or the REST API stands on imports worker.py."""

from __future__ import annotations

import ast
import importlib.util
import re
import uuid
from pathlib import Path
from types import ModuleType

import pytest
from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Replayer, Worker

from activities.llm import build_providers
from engine.plugin import EnginePlugin
from engine.settings import Settings
from tests.conftest import ROOT
from tests.test_step_types import COUNT_WORDS
from tests.word_count_step import STEP_TYPES, WordCountWorkflow
from workflows.contracts import RunInput, RunResult
from workflows.interpreter import YamlWorkflow
from workflows.validation import load_definition

DOC = ROOT / "docs" / "extending.md"
EXAMPLE = ROOT / "docs" / "examples" / "own_worker.py"
HELLO = (ROOT / "definitions" / "hello_world.yaml").read_text()


def example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("own_worker", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_doc_shows_the_example_the_tests_run():
    section = DOC.read_text().split("## Add the engine to your own Temporal worker", 1)[1]
    block = re.search(r"^```python\n(.*?)^```$", section, re.MULTILINE | re.DOTALL)
    assert block is not None, "docs/extending.md: no ```python block in the plugin section"
    assert block.group(1) == EXAMPLE.read_text(), "docs/extending.md differs from its example"


async def test_a_plain_temporal_worker_with_the_plugin_runs_a_definition(temporal_env, monkeypatch):
    monkeypatch.chdir(ROOT)  # the example names definitions/hello_world.yaml from here
    monkeypatch.delenv("DEFINITIONS_DIR", raising=False)
    address = temporal_env.client.service_client.config.target_host
    result = await example().main(address, task_queue=f"own-{uuid.uuid4()}")
    assert isinstance(result, RunResult)
    assert result.workflow_name == "HelloWorld"
    assert result.outputs["greeting"]


async def test_the_plugin_carries_a_workflow_with_step_types_of_its_own(client):
    definition = load_definition(COUNT_WORDS, "count.yaml", step_types=STEP_TYPES)
    plugin = EnginePlugin(Settings(), actions={}, workflow=WordCountWorkflow)
    task_queue = f"own-steps-{uuid.uuid4()}"
    async with Worker(client, task_queue=task_queue, plugins=[plugin]):
        result = await client.execute_workflow(
            YamlWorkflow.run,
            RunInput(definition=definition),
            id=task_queue,
            task_queue=task_queue,
        )
    assert result.outputs["words"] == 4


async def test_llm_calls_run_on_the_llm_queue_worker_the_plugin_builds(temporal_env):
    """With TEMPORAL_LLM_TASK_QUEUE, a worker on that queue hosts the LLM call and nothing
    else; the run's model call is scheduled there and the run completes."""
    llm_queue, main_queue = f"llm-{uuid.uuid4()}", f"main-{uuid.uuid4()}"
    plugin = EnginePlugin(
        Settings(llm_task_queue=llm_queue), providers=build_providers({}), actions={}
    )
    address = temporal_env.client.service_client.config.target_host
    client = await Client.connect(address, plugins=[plugin])
    main, llm = Worker(client, task_queue=main_queue), Worker(client, task_queue=llm_queue)
    hosted = llm.config(active_config=True)
    assert hosted["workflows"] == []
    assert len(hosted["activities"]) == 1
    async with main, llm:
        handle = await client.start_workflow(
            YamlWorkflow.run,
            RunInput(
                definition=load_definition(HELLO, "hello.yaml"),
                mock_providers=["openai"],
                llm_task_queue=llm_queue,
            ),
            id=f"llm-queue-{uuid.uuid4()}",
            task_queue=main_queue,
        )
        assert (await handle.result()).outputs["greeting"]
    queues = [
        event.activity_task_scheduled_event_attributes.task_queue.name
        for event in (await handle.fetch_history()).events
        if event.HasField("activity_task_scheduled_event_attributes")
        and event.activity_task_scheduled_event_attributes.activity_type.name == "llm_call"
    ]
    assert queues == [llm_queue]


async def test_a_worker_whose_client_lacks_the_plugin_is_refused_with_the_fix(temporal_env):
    address = temporal_env.client.service_client.config.target_host
    bare = await Client.connect(address)  # Temporal's default converter: no pydantic models
    with pytest.raises(ValueError, match=r"Client.connect\(address, plugins=\[plugin\]\)"):
        Worker(bare, task_queue="never-polled", plugins=[EnginePlugin(Settings())])


async def test_a_replayer_with_the_plugin_replays_a_stored_history():
    path = ROOT / "tests" / "histories" / "hello_world.json"
    replayer = Replayer(workflows=[], plugins=[EnginePlugin(Settings())])
    await replayer.replay_workflow(WorkflowHistory.from_json(path.stem, path.read_text()))


LAYERS = {
    "engine": {"worker"},
    "activities": {"worker", "engine", "workflow_engine", "starter"},
    "workflows": {"worker", "engine", "activities", "workflow_engine", "starter"},
}
"""What each package may not import: worker.py is a composition root that nothing stands
on, so the client API (and everything built on it) works without it."""
ENTRY_POINTS = {"workflow_engine.py": {"worker"}, "starter.py": {"worker"}}


def modules() -> list[tuple[Path, set[str]]]:
    found = [
        (path, forbidden)
        for package, forbidden in LAYERS.items()
        for path in sorted((ROOT / package).rglob("*.py"))
    ]
    return found + [(ROOT / name, forbidden) for name, forbidden in ENTRY_POINTS.items()]


def imported(path: Path) -> set[str]:
    """Top-level modules a file imports, wherever in the file (lazy imports included)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize(
    ("path", "forbidden"), modules(), ids=[str(p.relative_to(ROOT)) for p, _ in modules()]
)
def test_no_layer_imports_what_stands_on_it(path: Path, forbidden: set[str]):
    where = path.relative_to(ROOT)
    assert not imported(path) & forbidden, f"{where} imports {imported(path) & forbidden}"
