"""Where the world is, as the worker's environment says: each model provider, the mail
server, the store for large payloads. No SDK is imported here, so the starter can read its
settings and check keys quickly."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from workflows.providers import provider_spec

StorageKind = Literal["local", "s3", "off"]
STORAGE_KINDS: tuple[StorageKind, ...] = ("local", "s3", "off")
DEFAULT_THRESHOLD = 256 * 1024
"""Payloads of this many bytes or more leave history (the SDK's default; Temporal refuses 2 MiB)."""


@dataclass(frozen=True)
class Endpoint:
    """Where a provider lives and the key to use; read from the worker's environment."""

    api_key: str | None = None
    base_url: str | None = None


def is_configured(provider: str, endpoint: Endpoint | None) -> bool:
    """What the provider table says it needs (a key, a base URL, nothing) is set."""
    endpoint = endpoint or Endpoint()
    return provider_spec(provider).configured(endpoint.api_key, endpoint.base_url)


@dataclass(frozen=True)
class SmtpSettings:
    host: str = "localhost"
    port: int = 25
    user: str | None = None
    password: str | None = None
    starttls: bool = False
    sender: str = "workflows@localhost"


@dataclass(frozen=True)
class PayloadStorage:
    """EXTERNAL_STORAGE and its settings, as the worker and the starter read them."""

    kind: StorageKind = "local"
    directory: Path | None = None
    """local: where blobs go (EXTERNAL_STORAGE_DIR); None means `<TEMPORAL_DEV_DIR>/payloads`."""
    bucket: str | None = None
    prefix: str = ""
    """s3: prepended to every object key; not recorded in references, so keep it fixed."""
    endpoint_url: str | None = None
    """s3: AWS_ENDPOINT_URL (MinIO, moto, ...); None is AWS itself."""
    threshold: int = DEFAULT_THRESHOLD

    def __post_init__(self) -> None:
        if self.kind not in STORAGE_KINDS:
            raise ValueError(
                f"EXTERNAL_STORAGE={self.kind}: write one of {', '.join(STORAGE_KINDS)}"
            )
        if self.kind == "s3" and not self.bucket:
            raise ValueError("EXTERNAL_STORAGE=s3 needs EXTERNAL_STORAGE_BUCKET")
        if self.threshold < 0:
            raise ValueError(f"EXTERNAL_STORAGE_THRESHOLD={self.threshold}: write 0 or more bytes")
