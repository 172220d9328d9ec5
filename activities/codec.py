"""Optional encryption of everything the project stores in Temporal (AES-GCM), and the codec
server that lets the Temporal UI show decrypted payloads to people who hold the key.

Not an activity: the worker and the starter put the codec in their data converter when
PAYLOAD_KEY is set (32 bytes, base64).
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import os
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, PayloadCodec

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


def data_converter(codec: PayloadCodec | None) -> DataConverter:
    """The project's converter: pydantic models, encrypted when a codec is given."""
    if codec is None:
        return pydantic_data_converter
    return dataclasses.replace(pydantic_data_converter, payload_codec=codec)


def codec_server(codec: PayloadCodec, port: int, origin: str) -> ThreadingHTTPServer:
    """Temporal's codec server protocol: POST /encode and /decode with {"payloads": [...]}."""

    class Handler(BaseHTTPRequestHandler):
        def do_OPTIONS(self) -> None:  # noqa: N802 (http.server's naming)
            self.send_response(200)
            self._cors()
            self.end_headers()

        def do_POST(self) -> None:  # noqa: N802
            action = {"/encode": codec.encode, "/decode": codec.decode}.get(self.path)
            if action is None:
                self.send_error(404)
                return
            length = int(self.headers.get("content-length", 0))
            payloads = json_format.Parse(self.rfile.read(length), Payloads())
            try:
                result = asyncio.run(action(list(payloads.payloads)))
            except Exception as exc:  # a wrong key or a damaged payload
                self.send_error(400, str(exc))
                return
            body = json_format.MessageToJson(Payloads(payloads=result)).encode()
            self.send_response(200)
            self._cors()
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _cors(self) -> None:
            self.send_header("access-control-allow-origin", origin)
            self.send_header("access-control-allow-methods", "POST, OPTIONS")
            self.send_header("access-control-allow-headers", "content-type, x-namespace")

        def log_message(self, format: str, *args: object) -> None:
            pass

    return ThreadingHTTPServer(("127.0.0.1", port), Handler)


def new_key() -> str:
    """A fresh key to put in PAYLOAD_KEY."""
    return base64.b64encode(os.urandom(32)).decode()
