"""The local worker is restarted when, and only when, what it was started with changed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from engine.local_stack import _changed, _worker_stamp
from engine.settings import ROOT, Settings

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
