"""The codec server decrypts only for callers with the token, on its own Host, for the UI's
Origin; hostile bodies get a short 4xx, never a traceback or a hang."""

from __future__ import annotations

import asyncio
import base64
import http.client
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from activities.codec import MAX_CODEC_BODY, AesGcmCodec, codec_server, new_key
from engine.settings import Settings
from tests.conftest import ROOT, free_port

TOKEN = "s3cret-codec-token"
UI = "http://localhost:8233"
AUTH = {"authorization": f"Bearer {TOKEN}"}
CODEC = AesGcmCodec(base64.b64decode(new_key()))
PLAIN = Payload(metadata={"encoding": b"json/plain"}, data=b'{"user_name": "Zanzibar"}')


def sealed(codec: AesGcmCodec = CODEC) -> str:
    """A Payloads JSON body as the UI sends it, holding one encrypted payload."""
    [payload] = asyncio.run(codec.encode([PLAIN]))
    return json_format.MessageToJson(Payloads(payloads=[payload]))


@contextmanager
def serving(read_timeout: float = 10.0) -> Iterator[int]:
    port = free_port()
    server = codec_server(CODEC, port, UI, TOKEN, read_timeout=read_timeout)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield port
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    with serving() as port:
        yield port


def post(port: int, body: str | bytes, headers: dict[str, str], path: str = "/decode"):
    return httpx.post(f"http://127.0.0.1:{port}{path}", content=body, headers=headers)


def raw_post(port: int, headers: dict[str, str], body: bytes = b"") -> tuple[int, bytes]:
    """A request httpx would not send: a content-length that does not match the body."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.putrequest("POST", "/decode")
    for name, value in {**AUTH, **headers}.items():
        connection.putheader(name, value)
    connection.endheaders(body or None)
    response = connection.getresponse()
    return response.status, response.read()


def decoded(response: httpx.Response) -> bytes:
    return base64.b64decode(response.json()["payloads"][0]["data"])


def test_the_right_token_decodes(port):
    response = post(port, sealed(), {**AUTH, "origin": UI, "content-type": "application/json"})
    assert response.status_code == 200
    assert decoded(response) == PLAIN.data
    assert response.headers["access-control-allow-origin"] == UI


def test_the_token_first_in_the_path_decodes_as_the_ui_sends_it(port):
    """The UI's codec endpoint set to http://127.0.0.1:PORT/TOKEN/; it adds a query."""
    path = f"/{TOKEN}/decode?preserveStorageRefs=true"
    response = post(port, sealed(), {"origin": UI, "x-namespace": "default"}, path)
    assert response.status_code == 200 and decoded(response) == PLAIN.data


@pytest.mark.parametrize(
    ("headers", "path"),
    [
        ({}, "/decode"),
        ({"authorization": "Bearer wrong"}, "/decode"),
        ({"authorization": TOKEN}, "/decode"),  # not a Bearer header
        ({}, "/wrong/decode"),
        ({}, f"/{TOKEN}/extra/decode"),
    ],
)
def test_no_or_a_wrong_token_is_401(port, headers, path):
    response = post(port, sealed(), {"origin": UI, **headers}, path)
    assert response.status_code == 401
    assert "Zanzibar" not in response.text


@pytest.mark.parametrize("origin", ["http://evil.example", "http://localhost:8234", "null"])
def test_a_wrong_origin_is_403_even_with_the_token(port, origin):
    response = post(port, sealed(), {**AUTH, "origin": origin})
    assert response.status_code == 403
    assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize("host", ["evil.example", "rebound.example:{port}", "127.0.0.1:1"])
def test_a_wrong_host_is_403_even_with_the_token(port, host):
    """A DNS-rebinding page reaches 127.0.0.1 under its own name, which Host gives away."""
    response = post(port, sealed(), {**AUTH, "host": host.format(port=port)})
    assert response.status_code == 403


def test_a_preflight_from_the_ui_passes_without_a_token(port):
    headers = {
        "origin": UI,
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type, x-namespace",
    }
    response = httpx.options(f"http://127.0.0.1:{port}/decode", headers=headers)
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == UI
    assert "authorization" in response.headers["access-control-allow-headers"]
    elsewhere = httpx.options(
        f"http://127.0.0.1:{port}/decode", headers={**headers, "origin": "http://evil.example"}
    )
    assert elsewhere.status_code == 403


@pytest.mark.parametrize(
    "body", [b"not json", b"[1, 2]", b'{"payloads": 3}', b"[" * 100_000, b"\xff\xfe"]
)
def test_a_garbage_body_is_400_with_a_short_message(port, body):
    response = post(port, body, AUTH)
    assert response.status_code == 400
    assert len(response.text) < 200 and "Traceback" not in response.text


def test_a_payload_sealed_with_another_key_is_400(port):
    other = AesGcmCodec(base64.b64decode(new_key()))
    response = post(port, sealed(other), AUTH)
    assert response.status_code == 400
    assert "could not be decoded" in response.text


def test_an_oversized_body_is_413_before_it_is_read(port):
    status, body = raw_post(port, {"content-length": str(MAX_CODEC_BODY + 1)})
    assert status == 413 and b"over" in body


@pytest.mark.parametrize("length", [None, "abc", "-1", "1e3"])
def test_a_missing_or_invalid_content_length_is_400(port, length):
    status, body = raw_post(port, {} if length is None else {"content-length": length})
    assert status == 400 and b"content-length" in body


def test_a_body_shorter_than_its_length_is_400_not_a_hang():
    with serving(read_timeout=0.5) as port:
        started = time.monotonic()
        status, _ = raw_post(port, {"content-length": "100"}, b'{"payloads"')
    assert status == 400 and time.monotonic() - started < 5


def test_the_command_prints_a_new_token_once_and_serves_with_it():
    """`starter.py codec-server` without CODEC_SERVER_TOKEN makes one and prints the endpoint
    to give the UI; the printed endpoint decodes, the bare server refuses."""
    payload_key = new_key()
    codec = AesGcmCodec(base64.b64decode(payload_key))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "CODEC_SERVER_TOKEN"}
    env |= {"PAYLOAD_KEY": payload_key, "TEMPORAL_UI_URL": UI}
    process = subprocess.Popen(
        [sys.executable, "starter.py", "codec-server", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stderr.readline()
        [endpoint] = re.findall(r"http://127\.0\.0\.1:\d+/[\w-]+/", line)
        token = endpoint.rstrip("/").rsplit("/", 1)[1]
        assert f"Bearer {token}" in line and len(token) >= 32
        response = httpx.post(f"{endpoint}decode", content=sealed(codec), headers={"origin": UI})
        bare = httpx.post(f"http://127.0.0.1:{port}/decode", content=sealed(codec))
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert response.status_code == 200 and decoded(response) == PLAIN.data
    assert bare.status_code == 401


def test_the_token_comes_from_codec_server_token():
    assert Settings.from_env({"CODEC_SERVER_TOKEN": "t"}).codec_server_token == "t"
    assert Settings.from_env({}).codec_server_token is None
