"""The starter outlives a restart of the server under it: `run` reconnects and prints the
result (the local dev server keeps its runs in a SQLite file, so the run goes on)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import ROOT, starter

SLOW = """
workflow:
  name: slow
  steps:
    - {id: nap, type: action, action: sleep, params: {duration: 6s}}
    - {id: done, type: set, values: {answer: 42}}
"""


def _wait_for(predicate, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def _gone(pid: int) -> bool:
    """Ended (a zombie counts: nothing here may reap the server's process)."""
    status = Path(f"/proc/{pid}/status")
    return not status.exists() or "\nState:\tZ" in status.read_text()


def test_run_waits_through_a_server_restart(stack_env, tmp_path: Path):
    definition = tmp_path / "slow.yaml"
    definition.write_text(SLOW)
    stderr = tmp_path / "stderr.txt"
    with stderr.open("w") as err:
        running = subprocess.Popen(
            [sys.executable, "starter.py", "run", str(definition), "--json"],
            cwd=ROOT,
            env=stack_env,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    try:
        _wait_for(lambda: "started slow-" in stderr.read_text(), 60)
        server_pid = int((Path(stack_env["TEMPORAL_DEV_DIR"]) / "server.pid").read_text())
        os.kill(server_pid, signal.SIGTERM)
        _wait_for(lambda: _gone(server_pid), 20)
        time.sleep(15)  # longer than the client's own retries of a failed call
        assert running.poll() is None, stderr.read_text()  # still waiting for the server
        again = starter(stack_env, "list")  # any command brings the local server back
        assert again.returncode == 0, again.stderr
        out, _ = running.communicate(timeout=90)
    finally:
        running.kill()
    assert running.returncode == 0, stderr.read_text()
    assert '"answer": 42' in out
    assert "waiting for it to come back" in stderr.read_text()
