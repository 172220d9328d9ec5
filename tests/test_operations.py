"""Operating runs the Temporal way, through the starter and the Temporal CLI: start from the
CLI, signal, cancel, list, resume without paying twice, replay."""

from __future__ import annotations

import json
import subprocess
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from engine.local_stack import temporal_cli
from tests.conftest import ROOT, starter
from tests.fake_llm import FakeLlmServer, Fault


def paid(name: str, steps: str) -> str:
    """A definition whose calls go to a paid model, retried twice at most, quickly."""
    return (
        f"workflow:\n  name: {name}\n  defaults:\n    model: gpt-4o-mini\n"
        '    retry: {initial_interval: "10ms", max_attempts: 2}\n  steps:\n' + steps
    )


CHAIN = paid(
    "PaidChain",
    """    - {id: draft, type: llm_call, prompt: "Draft about tides", outputs: [draft_text]}
    - {id: polish, type: llm_call, prompt: "Polish: {{ draft_text }}", outputs: [polished]}
""",
)


@pytest.fixture(scope="module")
def stack(stack_env: dict[str, str]) -> dict[str, str]:
    """The local server and worker, brought up as a user would: by a first run."""
    first = starter(stack_env, "run", "definitions/hello_world.yaml", "--offline")
    assert first.returncode == 0, first.stderr
    return stack_env


def temporal(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [temporal_cli(), *args, "--address", env["TEMPORAL_ADDRESS"]],
        capture_output=True,
        text=True,
        timeout=60,
    )


def wait_for_status(env: dict[str, str], run_id: str, text: str) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        shown = starter(env, "status", run_id).stdout
        if text in shown:
            return shown
        time.sleep(0.3)
    raise AssertionError(f"{run_id} never showed {text!r}: {shown}")


def test_temporal_cli_starts_a_run_by_file_name(stack):
    assert starter(stack, "validate", "definitions/hello_world.yaml").returncode == 0
    started = temporal(
        stack, "workflow", "start", "--type", "YamlWorkflow",
        "--task-queue", stack["TEMPORAL_TASK_QUEUE"], "--workflow-id", "cli-hello",
        "--input", json.dumps({"definition_file": "definitions/hello_world.yaml",
                               "variables": {"user_name": "Alice"}, "mock_providers": ["openai"]}),
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    done = starter(stack, "result", "cli-hello", "--json")
    assert done.returncode == 0, done.stderr
    assert "Alice" in json.loads(done.stdout)["outputs"]["greeting"]


def wait_until_listed(env: dict[str, str], run_id: str, condition: str) -> None:
    """Visibility is eventually consistent: poll the server's list query until it holds."""
    query = f"WorkflowId = '{run_id}' AND {condition}"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        counted = temporal(env, "workflow", "count", "--query", query)
        if "Total: 1" in counted.stdout:
            return
        time.sleep(0.3)
    raise AssertionError(f"{run_id} never listed with {condition}: {counted.stdout}")


def test_wait_for_signal_completes_after_a_cli_signal(stack):
    started = starter(stack, "start", "definitions/content_pipeline.yaml", "--offline")
    run_id = started.stdout.strip()
    wait_for_status(stack, run_id, "running: review")
    # Progress is published before a wait, so the list shows the finished draft.
    wait_until_listed(stack, run_id, "YamlStepsDone = 1 AND YamlWorkflowName = 'ContentPipeline'")
    signal = temporal(
        stack, "workflow", "signal", "--workflow-id", run_id, "--name", "approve",
        "--input", '{"approved": true, "comment": "ship it"}',
    )  # fmt: skip
    assert signal.returncode == 0, signal.stderr
    done = starter(stack, "result", run_id, "--json")
    assert json.loads(done.stdout)["outputs"]["published"] is True
    wait_until_listed(stack, run_id, "YamlStepsDone = 4")


def test_pause_holds_new_steps_until_resume(stack):
    run_id = starter(stack, "start", "definitions/content_pipeline.yaml", "--offline").stdout
    run_id = run_id.strip()
    wait_for_status(stack, run_id, "running: review")
    assert starter(stack, "signal", run_id, "pause").returncode == 0
    starter(stack, "signal", run_id, "approve", "--input", '{"approved": false}')
    shown = wait_for_status(stack, run_id, "(paused)")
    assert "publish" not in shown
    starter(stack, "signal", run_id, "resume")
    done = starter(stack, "result", run_id, "--json")
    assert json.loads(done.stdout)["steps"]["publish"]["status"] == "skipped"


def test_cancel_ends_the_run_as_cancelled_and_reports_finished_steps(stack):
    run_id = starter(stack, "start", "definitions/content_pipeline.yaml", "--offline").stdout
    run_id = run_id.strip()
    wait_for_status(stack, run_id, "running: review")
    cancelled = starter(stack, "cancel", run_id)
    assert cancelled.returncode == 0, cancelled.stderr
    assert cancelled.stdout == f"{run_id}: cancelled; steps finished before: draft\n"
    listed = starter(stack, "list", "--status", "cancelled", "--json")
    assert run_id in [row["execution_id"] for row in json.loads(listed.stdout)]


def run_until_it_fails(
    stack: dict[str, str], llm: FakeLlmServer, path: Path, text: str, failing: str
) -> tuple[dict[str, str], str]:
    """Write `text` to `path` and run it with `llm` as OpenAI while it answers 503 to
    prompts holding `failing`, so the run fails after its retries; then `llm` is healthy
    again. Returns the environment to go on with and the failed run's id."""
    path.write_text(text)
    env = stack | {"OPENAI_BASE_URL": llm.openai_url, "OPENAI_API_KEY": "sk-test"}
    llm.fault_for = lambda r: Fault(503, "down") if failing in r.prompt_text else None
    failed = starter(env, "run", str(path), "--json")
    assert failed.returncode == 1, failed.stderr
    llm.fault_for = lambda r: None
    return env, failed.stderr.strip().splitlines()[-1].split()[2]


def test_failed_run_is_listed_and_resumed_without_paying_twice(stack, tmp_path: Path):
    with FakeLlmServer() as llm:
        env, run_id = run_until_it_fails(stack, llm, tmp_path / "chain.yaml", CHAIN, "Polish")
        listed = starter(env, "list", "--workflow", "PaidChain", "--status", "failed", "--json")
        assert run_id in [row["execution_id"] for row in json.loads(listed.stdout)]

        resumed = starter(env, "resume", run_id, "--json")
        assert resumed.returncode == 0, resumed.stderr
        assert "reused draft" in resumed.stderr and "tokens not spent again" in resumed.stderr
        result = json.loads(resumed.stdout)
        assert result["outputs"]["polished"] == "Hello from gpt-4o-mini"
        prompts = [r.prompt_text.strip() for r in llm.requests]
        assert prompts.count("Draft about tides") == 1  # paid once, across both runs
        assert prompts.count("Polish: Hello from gpt-4o-mini") == 3  # 2 failed + 1 resumed

        again = starter(env, "resume", result["execution_id"], "--from", "polish", "--json")
        assert again.returncode == 0, again.stderr
        assert [r.prompt_text.strip() for r in llm.requests].count("Draft about tides") == 1


ITEMS = paid(
    "PaidItems",
    """    - {id: each, type: llm_call, for_each: "{{ range(5) | list }}", concurrency: 1,
       prompt: "item {{ item }}", outputs: [answer]}
""",
)


def test_resume_reuses_the_items_a_failed_for_each_finished(stack, tmp_path: Path):
    with FakeLlmServer() as llm:
        env, run_id = run_until_it_fails(stack, llm, tmp_path / "items.yaml", ITEMS, "item 3")
        resumed = starter(env, "resume", run_id, "--json")
        assert resumed.returncode == 0, resumed.stderr
        assert "3 finished for_each item(s)" in resumed.stderr
        answers = json.loads(resumed.stdout)["outputs"]["answer"]
    assert answers == ["Hello from gpt-4o-mini"] * 5
    calls = Counter(r.prompt_text.strip() for r in llm.requests)
    assert calls == {"item 0": 1, "item 1": 1, "item 2": 1, "item 3": 3, "item 4": 1}


def test_replay_of_a_stored_history_and_of_a_live_run(stack):
    path = ROOT / "tests" / "histories" / "content_pipeline.json"  # every one: test_replay.py
    replayed = starter(stack, "replay", "--file", str(path))
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout.startswith("replay of content_pipeline: OK")
    live = starter(stack, "replay", "cli-hello")
    assert live.returncode == 0, live.stderr
    assert live.stdout.startswith("replay of cli-hello: OK")


def test_the_servers_http_api_starts_a_run(stack):
    host, port = stack["TEMPORAL_ADDRESS"].rsplit(":", 1)
    url = f"http://{host}:{int(port) + 10}/api/v1/namespaces/default/workflows/http-hello"
    run_input = {
        "definition_file": "definitions/hello_world.yaml",
        "variables": {"user_name": "Alice"},
        "mock_providers": ["openai"],
    }
    response = httpx.post(
        url,
        json={
            "workflowType": {"name": "YamlWorkflow"},
            "taskQueue": {"name": stack["TEMPORAL_TASK_QUEUE"]},
            "input": [run_input],
        },
    )
    assert response.status_code == 200, response.text
    done = starter(stack, "result", "http-hello", "--json")
    assert "Alice" in json.loads(done.stdout)["outputs"]["greeting"]
