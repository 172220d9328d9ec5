"""The local worker is started once, and restarted when, and only when, what it was started
with changed."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import uuid
from pathlib import Path

from engine.local_stack import _changed, _worker_stamp
from engine.settings import ROOT, Settings
from tests.conftest import worker_env

STAMP = (
    "import json; from engine.settings import Settings; "
    "from engine.local_stack import _worker_stamp; "
    "print(json.dumps(_worker_stamp(Settings.from_env())))"
)


def _stamp_in_a_new_process(seed: str) -> dict[str, str]:
    env = os.environ | {"PYTHONHASHSEED": seed, "MY_LLM_BASE_URL": "http://127.0.0.1:9/v1"}
    done = subprocess.run(
        [sys.executable, "-c", STAMP], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_same_environment_gives_the_same_stamp_in_every_process():
    """Each CLI command is a new process with its own string hashing: a stamp built from
    set order restarted the worker at random (slow commands, and a status query that timed
    out while the new worker started)."""
    stamps = [_stamp_in_a_new_process(seed) for seed in ("1", "2", "3", "4")]
    assert all(stamp == stamps[0] for stamp in stamps)


def test_a_restart_names_what_changed(tmp_path: Path):
    started = _worker_stamp(Settings.from_env({}, connection=False))
    stamp_file = tmp_path / "worker.stamp"
    stamp_file.write_text(json.dumps(started))
    assert _changed(stamp_file, started) == []
    now = _worker_stamp(
        Settings.from_env(
            {"OPENAI_API_KEY": "sk-x", "HTTP_ALLOWLIST": "a.example"}, connection=False
        )
    )
    assert _changed(stamp_file, now) == ["settings (endpoints, http_allowlist)"]
    stamp_file.write_text("not json")
    assert _changed(stamp_file, now) == ["start record"]


ENSURE = """
import asyncio, os, sys, time
from pathlib import Path
from engine.settings import Settings
from engine.connection import connect
from engine.local_stack import ensure_worker

async def main():
    settings = Settings.from_env()
    client = await connect(settings)
    barrier = Path(sys.argv[1])
    (barrier / f"ready-{os.getpid()}").touch()
    while len(list(barrier.glob("ready-*"))) < int(sys.argv[2]):  # all at the same moment
        time.sleep(0.01)
    await ensure_worker(client, settings, print)

asyncio.run(main())
sys.stdout.flush()
os._exit(0)  # as starter.py does: the client's threads can abort interpreter teardown
"""


def test_commands_started_at_the_same_moment_start_one_worker(client, tmp_path: Path):
    """Each command checks for a worker and starts one when none polls: without a lock, runs
    started at the same moment each started their own."""
    env = worker_env(
        client.service_client.config.target_host,
        f"race-{uuid.uuid4()}",
        TEMPORAL_DEV_DIR=str(tmp_path),
    )
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", ENSURE, str(barrier), "4"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs: list[str] = []
    try:
        outputs = [racer.communicate(timeout=120)[0] for racer in racers]
        started = [line for out in outputs for line in out.splitlines() if "started a" in line]
        assert len(started) == 1, outputs
        assert all(racer.returncode == 0 for racer in racers), outputs
        pid = int((tmp_path / "worker.pid").read_text())
        assert f"pid {pid}," in started[0]
    finally:  # every worker the racers started, by its pid
        for pid_text in re.findall(r"\(pid (\d+),", "".join(outputs)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid_text), signal.SIGTERM)
