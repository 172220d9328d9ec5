"""Optional encryption of everything the project stores in Temporal (AES-GCM), and the codec
server that lets the Temporal UI show decrypted payloads to people who hold the key.

Not an activity: the worker and the starter put the codec in their data converter when
PAYLOAD_KEY is set (32 bytes, base64).
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hmac
import os
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    ExternalStorage,
    PayloadCodec,
)

from workflows.payloads import bounded_data_converter

ENCODING = b"binary/encrypted"


class AesGcmCodec(PayloadCodec):
    def __init__(self, key: bytes, key_id: str = "default") -> None:
        if len(key) != 32:
            raise ValueError("PAYLOAD_KEY must be 32 bytes, base64-encoded")
        self._aes = AESGCM(key)
        self._key_id = key_id.encode()

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        encoded = []
        for payload in payloads:
            nonce = os.urandom(12)
            sealed = self._aes.encrypt(nonce, payload.SerializeToString(), None)
            encoded.append(
                Payload(
                    metadata={"encoding": ENCODING, "encryption-key-id": self._key_id},
                    data=nonce + sealed,
                )
            )
        return encoded

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        decoded = []
        for payload in payloads:
            if payload.metadata.get("encoding") != ENCODING:
                decoded.append(payload)
                continue
            plain = self._aes.decrypt(payload.data[:12], payload.data[12:], None)
            decoded.append(Payload.FromString(plain))
        return decoded


def codec_from_key(key_b64: str | None, key_id: str = "default") -> AesGcmCodec | None:
    return AesGcmCodec(base64.b64decode(key_b64), key_id) if key_b64 else None


def data_converter(
    codec: PayloadCodec | None, storage: ExternalStorage | None = None
) -> DataConverter:
    """The project's converter: pydantic models, each payload checked for depth and size both
    ways (workflows/payloads.py), encrypted when a codec is given. Failure
    messages and stack traces go into an encoded payload then too: they quote variables,
    prompts and URLs.

    With `storage` (activities/payload_store.py), payloads over its threshold leave history.
    The SDK fixes the order: the codec encodes first, then storage takes what is still over
    the threshold, so stored blobs are ciphertext and history keeps a plain reference (driver
    name and content hash, nothing of the data). Reading reverses it. Without storage,
    payloads stay in history and are held to Temporal's 2 MiB."""
    converter = bounded_data_converter(inline=storage is None)
    if codec is not None:
        converter = dataclasses.replace(
            converter,
            payload_codec=codec,
            failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
        )
    if storage is not None:
        converter = dataclasses.replace(converter, external_storage=storage)
    return converter


MAX_CODEC_BODY = 4 * 1024 * 1024
"""The largest request the codec server reads; the UI sends one event's payloads at a time."""


def codec_server(
    codec: PayloadCodec, port: int, origin: str, token: str, *, read_timeout: float = 10.0
) -> ThreadingHTTPServer:
    """Temporal's codec server protocol (POST .../encode and .../decode with {"payloads":
    [...]}) on 127.0.0.1, for the UI at `origin` only and for callers that hold `token`.

    The token comes as `Authorization: Bearer TOKEN`, or first in the path: the UI sends its
    own login token only to https endpoints, so a local UI is given `http://127.0.0.1:PORT/TOKEN/`
    as its codec endpoint. Host is checked so a DNS-rebound page cannot reach the server under a
    name of its own; preflights carry no credentials and pass on Host and Origin alone.
    """
    origin = origin.rstrip("/")
    hosts = {f"127.0.0.1:{port}", f"localhost:{port}"}
    bearer = f"Bearer {token}".encode()
    secret = token.encode()

    class Handler(BaseHTTPRequestHandler):
        timeout = read_timeout  # a client that stops sending is dropped, not waited for

        def do_OPTIONS(self) -> None:  # noqa: N802 (http.server's naming)
            if self._peer_allowed():
                self._reply(204, b"")

        def do_POST(self) -> None:  # noqa: N802
            if not self._peer_allowed():
                return
            *prefix, name = [part for part in urlsplit(self.path).path.split("/") if part] or [""]
            if not self._authorized(prefix):
                self._reply(401, "a token is required: Authorization: Bearer TOKEN")
                return
            action = {"encode": codec.encode, "decode": codec.decode}.get(name)
            if action is None:
                self._reply(404, "POST .../encode or .../decode")
                return
            declared = self.headers.get("content-length", "")
            if not (declared.isascii() and declared.isdigit()):
                self._reply(400, "content-length missing or invalid")
                return
            if int(declared) > MAX_CODEC_BODY:
                self._reply(413, f"body over {MAX_CODEC_BODY} bytes")
                return
            try:
                body = self.rfile.read(int(declared))
            except TimeoutError:
                body = b""
            if len(body) < int(declared):
                self._reply(400, "body shorter than its content-length")
                return
            try:
                payloads = json_format.Parse(body, Payloads())
            except Exception:  # malformed JSON, wrong shape, nesting too deep: all the caller's
                self._reply(400, 'body is not {"payloads": [...]} JSON')
                return
            try:
                result = asyncio.run(action(list(payloads.payloads)))
            except Exception:  # a wrong key or a damaged payload
                self._reply(400, f"payloads could not be {name}d (wrong key or damaged payload)")
                return
            self._reply(200, json_format.MessageToJson(Payloads(payloads=result)).encode())

        def _peer_allowed(self) -> bool:
            """403 unless Host names this server and Origin, when sent, is the UI's."""
            if self.headers.get("host", "").lower() not in hosts:
                self._reply(403, "unexpected Host header", cors=False)
                return False
            if self.headers.get("origin", origin) != origin:
                self._reply(403, "origin not allowed", cors=False)
                return False
            return True

        def _authorized(self, prefix: list[str]) -> bool:
            given = self.headers.get("authorization", "").encode("latin-1")
            if hmac.compare_digest(given, bearer):
                return True
            return len(prefix) == 1 and hmac.compare_digest(prefix[0].encode("latin-1"), secret)

        def _reply(self, status: int, body: bytes | str, cors: bool = True) -> None:
            data = body if isinstance(body, bytes) else (body + "\n").encode()
            self.send_response(status)
            if cors:
                self.send_header("access-control-allow-origin", origin)
                self.send_header("access-control-allow-methods", "POST, OPTIONS")
                self.send_header(
                    "access-control-allow-headers", "authorization, content-type, x-namespace"
                )
                self.send_header("vary", "origin")
            if status == 401:
                self.send_header("www-authenticate", "Bearer")
            kind = "application/json" if status == 200 else "text/plain; charset=utf-8"
            self.send_header("content-type", kind)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return ThreadingHTTPServer(("127.0.0.1", port), Handler)


def new_key() -> str:
    """A fresh key to put in PAYLOAD_KEY."""
    return base64.b64encode(os.urandom(32)).decode()
