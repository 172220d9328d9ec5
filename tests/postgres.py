"""A throwaway PostgreSQL server for tests, where the machine has one installed."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def postgres_server() -> Iterator[str]:
    """Start initdb + pg_ctl on a free loopback port; yield a SQLAlchemy URL; stop it."""
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb is None or pg_ctl is None:
        pytest.skip("PostgreSQL is not installed on this machine")
    # PostgreSQL refuses to run as root; run it as nobody then.
    as_user = ["runuser", "-u", "nobody", "--"] if os.geteuid() == 0 else []
    # Not under pytest's tmp_path: its parents are closed to other users.
    base = Path(tempfile.mkdtemp(prefix="pg-test-"))
    if as_user:
        shutil.chown(base, user="nobody")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    data = base / "data"
    run = {"check": True, "capture_output": True, "timeout": 60}
    subprocess.run([*as_user, initdb, "-D", str(data), "-U", "postgres", "--auth=trust"], **run)
    options = f"-p {port} -k {base} -h 127.0.0.1"
    log = str(base / "server.log")
    subprocess.run(
        [*as_user, pg_ctl, "-D", str(data), "-o", options, "-l", log, "-w", "start"], **run
    )
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], **run)
        shutil.rmtree(base, ignore_errors=True)
