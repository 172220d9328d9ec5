"""What replies have told of each model's rate limit, kept across worker restarts, so a
worker just started paces from what it knew instead of probing with a few calls first.

A small JSON file (LLM_PACING_MEMORY, by default `pacing.json` in TEMPORAL_DEV_DIR), one
entry per provider, model and endpoint: the limits the last reply's headers said, or that
the reply carried none (a server with no limit: nothing to pace, so a fan-out goes out at
once). It is a hint, never a promise: the first reply's headers replace it, and a 429 holds
and slows the gate as always. Endpoints are told apart by base URL (without user, password
or query) and a short fingerprint of the key, since accounts have limits of their own.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import structlog

from activities.endpoints import Endpoint
from activities.rate_limit_settings import Limit

MAX_ENTRIES = 200
"""The most recently seen entries kept: endpoints that come and go (test servers on random
ports) do not grow the file without end."""


def endpoint_key(endpoint: Endpoint) -> str:
    """Where calls go and on whose account, for the memory's keys: `https://host/v1#1a2b3c4d`.
    No secret is kept: the URL loses its user, password and query, the key leaves 8 hex
    digits of its SHA-256."""
    url = ""
    if endpoint.base_url:
        parts = urlsplit(endpoint.base_url)
        url = f"{parts.scheme}://{parts.hostname or ''}"
        url += f":{parts.port}" if parts.port else ""
        url += parts.path.rstrip("/")
    print_ = hashlib.sha256(endpoint.api_key.encode()).hexdigest()[:8] if endpoint.api_key else ""
    return f"{url or 'default'}#{print_}"


@dataclass
class PacingMemory:
    """The file, read once; `recall` answers from it, `remember` writes a change through."""

    path: Path | None
    _known: dict[str, dict[str, object]] = field(default_factory=dict)
    _warned: bool = False

    def __post_init__(self) -> None:
        self._known = self._read()

    def recall(self, key: str) -> Limit | None:
        """The remembered limit (Limit() when replies carried none); None when nothing is."""
        entry = self._known.get(key)
        if entry is None:
            return None
        rpm, tpm = entry.get("requests_per_minute"), entry.get("tokens_per_minute")
        number = (int, float)
        return Limit(
            float(rpm) if isinstance(rpm, number) and rpm > 0 else None,
            float(tpm) if isinstance(tpm, number) and tpm > 0 else None,
        )

    def remember(self, key: str, limit: Limit) -> None:
        """Keep what a reply said (merged with what other workers on this machine wrote);
        a file that cannot be written is said once in the log, and pacing goes on."""
        if self.path is None:
            return
        entry: dict[str, object] = {
            "requests_per_minute": limit.requests_per_minute,
            "tokens_per_minute": limit.tokens_per_minute,
            "seen": datetime.now(UTC).isoformat(timespec="microseconds"),
        }
        known = {**self._read(), key: entry}
        newest = sorted(known, key=lambda name: str(known[name].get("seen", "")), reverse=True)
        self._known = {name: known[name] for name in sorted(newest[:MAX_ENTRIES])}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(
                "w", dir=self.path.parent, prefix=".pacing-", delete=False
            ) as out:
                json.dump(self._known, out, indent=1, sort_keys=True)
            os.replace(out.name, self.path)
        except OSError as exc:
            if not self._warned:
                self._warned = True
                structlog.get_logger("pacing").warning(
                    "pacing memory not written", path=str(self.path), error=str(exc)
                )

    def _read(self) -> dict[str, dict[str, object]]:
        if self.path is None:
            return {}
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):  # none yet, or unreadable: start from nothing
            return {}
        if not isinstance(data, dict):
            return {}
        return {key: value for key, value in data.items() if isinstance(value, dict)}
