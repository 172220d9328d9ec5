"""`starter.py record`: a real run (its model calls answered by the fake provider server over
the real SDK, not by a script) becomes a test case that passes under `starter.py test`."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from engine.activity_catalog import build_actions
from engine.client import EngineClient
from engine.settings import Settings
from engine.testing.command import test as run_tests
from engine.testing.recorder import record
from tests.conftest import ROOT, new_worker
from tests.fake_llm import Fault, Request
from workflows.errors import UsageError


@pytest.fixture
async def engine(client, endpoints, tmp_path):
    settings = Settings.from_env({}, connection=False)
    async with new_worker(client, endpoints, actions=build_actions(settings)) as worker:
        yield EngineClient(
            client,
            dataclasses.replace(
                settings,
                address=client.service_client.config.target_host,
                task_queue=worker.task_queue,
                dev_dir=tmp_path / "dev",  # no local stack of ours: nothing goes to the mock
            ),
            start_worker=False,
        )


def triage_reply(request: Request) -> str:
    if "Classify" in request.prompt_text:
        return '{"category": "bug", "urgency": 4}'
    return "Steps: open the app. Expected: it starts. Actual: it crashes."


async def test_a_recorded_real_run_passes_as_a_test(engine, fake_llm, tmp_path):
    fake_llm.reply = triage_reply
    fake_llm.fail_next(Fault(status=429))  # the first attempt is rate-limited, then retried
    (tmp_path / "triage.yaml").write_text((ROOT / "definitions" / "ticket_triage.yaml").read_text())
    loaded = engine.load_file(tmp_path / "triage.yaml")
    started = await engine.start(loaded, {"ticket": "The app crashes on start."})
    result = await engine.result(started.execution_id)
    assert result.outputs["queue"] == "engineering" and len(fake_llm.requests) == 3

    path = tmp_path / "triage.test.yaml"  # the definition is found beside it by its name
    recorded = await record(engine, started.execution_id, path)

    written = yaml.safe_load(path.read_text())
    assert written["definition"] == "triage.yaml"
    [case] = written["cases"]
    assert case["variables"] == {"ticket": "The app crashes on start."}
    assert case["replies"]["classify"] == [{"error": 429}, {"category": "bug", "urgency": 4}]
    assert case["replies"]["bug_report"].startswith("Steps: open the app.")
    assert case["expect"]["outputs"]["queue"] == "engineering"
    assert case["expect"]["steps"] == {
        "classify": "completed",
        "billing_reply": "skipped",
        "bug_report": "completed",
        "route": "completed",
    }
    assert case["expect"]["calls"] == {"classify": 1, "bug_report": 1}
    lines: list[str] = []
    code = await run_tests([str(path)], engine.settings, client=engine, out=lines.append)
    assert code == 0, "\n".join(lines)
    assert f"PASS  {path}::{recorded.name}" in lines[0]
    assert len(fake_llm.requests) == 3  # the test called no provider


async def test_a_second_recording_is_added_to_the_file_and_a_failed_run_expects_its_failure(
    engine, fake_llm, tmp_path
):
    fake_llm.fail_next(Fault(status=400, message="bad request"))
    hello = ROOT / "definitions" / "hello_world.yaml"
    path = tmp_path / "hello.test.yaml"
    path.write_text(f"definition: {hello}\ncases:\n  - name: by hand\n    replies: {{greet: Hi}}\n")
    started = await engine.start(engine.load_file(hello), {"user_name": "Ada"})
    with pytest.raises(Exception, match="HTTP 400"):
        await engine.result(started.execution_id)

    recorded = await record(engine, started.execution_id, path)

    cases = yaml.safe_load(path.read_text())["cases"]
    assert [c["name"] for c in cases] == ["by hand", recorded.name]
    assert cases[1]["replies"] == {"greet": {"error": 400}}
    assert cases[1]["expect"]["status"] == "failed"
    assert cases[1]["expect"]["steps"] == {"greet": "failed"}
    assert "step 'greet' failed after 1 attempt(s)" in cases[1]["expect"]["error"]
    lines: list[str] = []
    code = await run_tests([str(path)], engine.settings, client=engine, out=lines.append)
    assert code == 0, "\n".join(lines)


async def test_a_running_run_is_not_recorded(engine, tmp_path):
    text = "workflow:\n  name: Waits\n  steps:\n    - {id: w, type: wait_for_signal, signal: go}\n"
    (tmp_path / "waits.yaml").write_text(text)
    started = await engine.start(engine.load_file(tmp_path / "waits.yaml"), {})
    with pytest.raises(UsageError, match="still running"):
        await record(engine, started.execution_id, tmp_path / "w.test.yaml")
    await engine.cancel(started.execution_id)
