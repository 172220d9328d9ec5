"""Where payloads too large for a run's history go: Temporal's External Storage (claim-check)
keeps a reference in history and the bytes here, so no run is stranded by the 2 MiB payload
limit (three 800 KB replies in a result, a big for_each carried over by continue-as-new).

Not an activity: the worker, the starter and the Replayer put it in their data converter
(activities/codec.py), so every process that reads a run must see the same storage. The SDK
encodes with the payload codec first and stores after, so with PAYLOAD_KEY set a stored blob
is ciphertext; the reference left in history holds no data: the driver, the content hash (and
for S3 the bucket and key).

    local   files named by their SHA-256 under one directory (the dev stack, one host or a
            volume shared by every worker and starter)
    s3      the SDK's S3 driver (temporalio.contrib.aws.s3driver) on any S3-compatible store
    off     payloads stay inline; one over 2 MiB fails its task as before
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import tempfile
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from temporalio.api.common.v1 import Payload
from temporalio.contrib.aws.s3driver import S3StorageDriver, S3StorageDriverClient
from temporalio.converter import (
    ExternalStorage,
    StorageDriver,
    StorageDriverClaim,
    StorageDriverRetrieveContext,
    StorageDriverStoreContext,
)

from activities.endpoints import PayloadStorage
from workflows.errors import WorkflowError

LOCAL_DRIVER = "local.files"


class PayloadMissingError(WorkflowError):
    """A reference in history names a blob the storage does not hold (or holds damaged).

    Raised while decoding, outside workflow code: the workflow task fails and is retried, so a
    run waits until the blob is back (a restored backup, the right directory mounted)."""


def external_storage(storage: PayloadStorage, default_directory: Path) -> ExternalStorage | None:
    """The SDK's External Storage for these settings (None when EXTERNAL_STORAGE=off)."""
    if storage.kind == "off":
        return None
    if storage.kind == "s3":
        assert storage.bucket  # checked when made
        driver: StorageDriver = s3_driver(storage.bucket, storage.prefix, storage.endpoint_url)
    else:
        driver = LocalPayloadDriver(storage.directory or default_directory)
    return ExternalStorage(drivers=[driver], payload_size_threshold=storage.threshold)


class LocalPayloadDriver(StorageDriver):
    """Each payload's serialized bytes in `<directory>/<2 hex>/<sha256>`, written atomically
    (a temporary file, fsync, rename). The reference holds only the hash, so the directory
    can move (a restored backup) without touching any history."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def name(self) -> str:
        return LOCAL_DRIVER

    def type(self) -> str:
        return LOCAL_DRIVER

    async def store(
        self, context: StorageDriverStoreContext, payloads: Sequence[Payload]
    ) -> list[StorageDriverClaim]:
        return await asyncio.to_thread(lambda: [self._store(p) for p in payloads])

    async def retrieve(
        self, context: StorageDriverRetrieveContext, claims: Sequence[StorageDriverClaim]
    ) -> list[Payload]:
        return await asyncio.to_thread(lambda: [self._retrieve(c) for c in claims])

    def path(self, digest: str) -> Path:
        return self.directory / digest[:2] / digest

    def _store(self, payload: Payload) -> StorageDriverClaim:
        data = payload.SerializeToString()
        digest = hashlib.sha256(data).hexdigest()
        path = self.path(digest)
        if path.exists():
            os.utime(path)  # the newest use, for whoever prunes by age
        else:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".incoming-")
            try:
                with os.fdopen(handle, "wb") as file:
                    file.write(data)
                    file.flush()
                    os.fsync(file.fileno())
                os.replace(temporary, path)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
            _fsync_directory(path.parent)
        return StorageDriverClaim(claim_data={"hash_algorithm": "sha256", "hash_value": digest})

    def _retrieve(self, claim: StorageDriverClaim) -> Payload:
        digest = claim.claim_data.get("hash_value", "")
        path = self.path(digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise PayloadMissingError(
                f"stored payload sha256:{digest} is not in {self.directory} "
                "(EXTERNAL_STORAGE_DIR): point every worker and starter at the directory the "
                "run's payloads were written to, or restore it from a backup"
            ) from None
        if hashlib.sha256(data).hexdigest() != digest:
            raise PayloadMissingError(f"stored payload {path} is damaged: its hash differs")
        return Payload.FromString(data)


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable too: history will point at this file."""
    try:
        handle = os.open(directory, os.O_RDONLY)
    except OSError:  # not on every platform
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


def s3_driver(
    bucket: str, prefix: str = "", endpoint_url: str | None = None, session: Any = None
) -> StorageDriver:
    """The SDK's S3 driver over aioboto3 (the `s3` extra). Credentials and region come from
    the standard AWS chain (AWS_ACCESS_KEY_ID, AWS_REGION, profiles, instance roles) unless a
    session is given."""
    try:
        import aioboto3
    except ImportError:
        raise ValueError(
            "EXTERNAL_STORAGE=s3 needs the s3 extra: pip install 'llm-yaml-workflows[s3]'"
        ) from None
    client = _S3Client(session or aioboto3.Session(), endpoint_url, prefix)
    return S3StorageDriver(client=client, bucket=bucket)


class _S3Client(S3StorageDriverClient):
    """aioboto3 with a client per call: ~45 ms more per large payload (measured against moto),
    and no connection that outlives the event loop it was opened on (the starter may run more
    than one loop in a process). `prefix` goes before every key the driver makes."""

    def __init__(self, session: Any, endpoint_url: str | None, prefix: str) -> None:
        self._session = session
        self._endpoint_url = endpoint_url
        self._prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""

    async def put_object(self, *, bucket: str, key: str, data: bytes) -> None:
        async with self._client() as s3:
            await s3.put_object(bucket=bucket, key=self._prefix + key, data=data)

    async def object_exists(self, *, bucket: str, key: str) -> bool:
        async with self._client() as s3:
            return await s3.object_exists(bucket=bucket, key=self._prefix + key)

    async def get_object(self, *, bucket: str, key: str) -> bytes:
        async with self._client() as s3:
            return await s3.get_object(bucket=bucket, key=self._prefix + key)

    def describe(self) -> dict[str, str]:
        return {"endpoint": self._endpoint_url or "aws", "prefix": self._prefix}

    @contextlib.asynccontextmanager
    async def _client(self) -> AsyncIterator[S3StorageDriverClient]:
        from temporalio.contrib.aws.s3driver.aioboto3 import new_aioboto3_client

        async with self._session.client("s3", endpoint_url=self._endpoint_url) as s3:
            yield new_aioboto3_client(s3)
