"""The front door, as a user meets it: `python starter.py ...` in a subprocess.

The first run finds nothing listening and starts its own dev server and worker, as on a
fresh machine; later tests reuse them.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

from engine.local_stack import temporal_cli
from engine.progress import progress_line
from tests.conftest import ROOT, starter
from tests.fake_llm import Fault, default_reply
from workflows.contracts import ItemResult, RunStatus, Usage


def test_one_command_runs_hello_world_offline(stack_env):
    done = starter(
        stack_env, "run", "definitions/hello_world.yaml", "--var", "user_name=Alice", "--json"
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert set(result) == {"execution_id", "workflow_name", "status", "outputs", "steps", "usage"}
    assert result["status"] == "completed"
    assert "Alice" in result["outputs"]["greeting"]
    assert result["outputs"]["greeting"].startswith("[offline mock reply")
    assert set(result["steps"]["greet"]) == {
        "status",
        "outputs",
        "attempts",
        "duration_ms",
        "usage",
    }
    assert "started a local Temporal dev server" in done.stderr
    assert "started a worker" in done.stderr
    assert "no key configured for provider openai" in done.stderr
    assert "set OPENAI_API_KEY" in done.stderr
    assert f"/namespaces/default/workflows/{result['execution_id']}" in done.stderr
    listed = subprocess.run(
        [temporal_cli(), "workflow", "list", "--address", stack_env["TEMPORAL_ADDRESS"]],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result["execution_id"] in listed.stdout


def test_openai_compatible_server_receives_the_prompt(stack_env, llm_server):
    env = stack_env | {"OPENAI_BASE_URL": llm_server.openai_url, "OPENAI_API_KEY": "sk-test"}
    done = starter(env, "run", "definitions/hello_world.yaml", "--var", "user_name=Alice")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "greeting: Hello from gpt-4\n"
    assert "restarting the local worker: its settings (endpoints) changed" in done.stderr
    assert "Alice" in llm_server.requests[-1].prompt_text


def test_start_returns_at_once_and_result_waits(stack_env):
    started = starter(stack_env, "start", "definitions/hello_world.yaml", "--offline", "--json")
    assert started.returncode == 0, started.stderr
    execution_id = json.loads(started.stdout)["execution_id"]
    done = starter(stack_env, "result", execution_id, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["execution_id"] == execution_id


def test_rejected_key_fails_with_one_line_and_no_traceback(stack_env, llm_server):
    env = stack_env | {"OPENAI_BASE_URL": llm_server.openai_url, "OPENAI_API_KEY": "sk-test"}
    llm_server.fail_next(Fault(401, "Incorrect API key provided"))
    done = starter(env, "run", "definitions/hello_world.yaml")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: run HelloWorld-")
    assert "step 'greet' failed after 1 attempt(s)" in last
    assert "HTTP 401: Incorrect API key provided" in last


def test_unknown_run_is_one_line(stack_env):
    done = starter(stack_env, "result", "no-such-run")
    assert done.returncode == 1
    assert done.stderr.startswith("error: no run 'no-such-run'")
    assert "Traceback" not in done.stderr


def test_validate_prints_located_problems_and_exits_1(stack_env):
    bad = str(ROOT / "tests" / "invalid" / "misspelt_field.yaml")
    done = starter(stack_env, "validate", "definitions/hello_world.yaml", bad)
    assert done.returncode == 1
    assert done.stdout == "definitions/hello_world.yaml: valid\n"
    assert (
        f"{bad}:8:7: unknown field 'promt' in a step of type llm_call — did you mean 'prompt'?"
        in done.stderr
    )
    assert "Traceback" not in done.stderr


def test_run_refuses_an_invalid_file_before_starting(stack_env):
    bad = str(ROOT / "tests" / "invalid" / "unknown_name_in_template.yaml")
    done = starter(stack_env, "run", bad)
    assert done.returncode == 1
    assert done.stderr.startswith(f"{bad}:11:18: unknown name 'usr_name'")
    assert "started" not in done.stderr


def test_missing_required_variable_is_refused(stack_env):
    done = starter(stack_env, "run", "definitions/hello_world.yaml", "--var", "nobody=1")
    assert done.returncode == 1
    assert done.stderr == "error: unknown variable 'nobody'\n"


def test_the_progress_line_counts_the_items_a_running_for_each_finished():
    item = ItemResult(item=1, outputs={"answer": "a"}, attempts=1, usage=Usage())
    status = RunStatus(total_steps=2, running=["each", "side"], items={"each": {0: item, 1: item}})
    assert "running: each (2 items done), side;" in progress_line(status)


def test_stop_ends_the_background_stack_and_the_next_run_brings_it_back(stack_env):
    """Last in this module: it stops the server and worker the earlier tests started."""
    dev_dir = Path(stack_env["TEMPORAL_DEV_DIR"])
    pids = [int((dev_dir / f"{name}.pid").read_text()) for name in ("worker", "server")]
    stopped = starter(stack_env, "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert "stopped the local worker" in stopped.stderr
    assert "stopped the local server" in stopped.stderr
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids)
    assert "nothing to stop" in starter(stack_env, "stop").stderr
    again = starter(stack_env, "run", "definitions/hello_world.yaml", "--offline")
    assert again.returncode == 0, again.stderr
    assert "started a local Temporal dev server" in again.stderr


def test_run_on_a_terminal_shows_the_reply_arriving_in_pieces(stack_env, llm_server):
    """stderr on a terminal: the reply's pieces are printed as the provider streams them."""
    reply = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima"
    llm_server.reply, llm_server.stream_pieces, llm_server.stream_delay = (
        lambda request: reply,
        6,
        0.5,
    )
    env = stack_env | {"OPENAI_BASE_URL": llm_server.openai_url, "OPENAI_API_KEY": "sk-test"}
    master, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "starter.py", "run", "definitions/hello_world.yaml"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=terminal,
        )  # fmt: skip
        os.close(terminal)
        seen, arrived = b"", {}
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    seen += os.read(master, 4096)
                except OSError:  # the terminal closed: the starter is done
                    break
                for word in ("alpha", "lima"):
                    if word.encode() in seen:
                        arrived.setdefault(word, time.monotonic())
            elif process.poll() is not None:
                break
        stdout = process.communicate(timeout=30)[0].decode()
    finally:
        os.close(master)
        llm_server.reply, llm_server.stream_pieces, llm_server.stream_delay = default_reply, 5, 0
    assert process.returncode == 0, seen.decode(errors="replace")
    assert stdout == f"greeting: {reply}\n"  # stdout keeps the result alone
    assert arrived["lima"] - arrived["alpha"] > 1.0  # the first piece well before the last
