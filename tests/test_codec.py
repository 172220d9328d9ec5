"""With PAYLOAD_KEY set, Temporal stores only ciphertext; the codec server decrypts for the UI."""

from __future__ import annotations

import base64
import json
import threading
import uuid

import httpx
from google.protobuf import json_format
from temporalio.client import Client

from activities.codec import AesGcmCodec, codec_server, data_converter, new_key
from activities.endpoints import Endpoint
from tests.conftest import ROOT, definition, free_port, new_worker
from tests.fake_llm import FakeLlmServer
from workflows.contracts import RunInput, RunResult
from workflows.interpreter import YamlWorkflow

HELLO = (ROOT / "definitions" / "hello_world.yaml").read_text()


async def test_history_holds_no_plaintext_prompt_and_the_codec_server_decrypts_it(temporal_env):
    codec = AesGcmCodec(base64.b64decode(new_key()))
    target = temporal_env.client.service_client.config.target_host
    encrypted = await Client.connect(target, data_converter=data_converter(codec))
    task_queue = f"codec-{uuid.uuid4()}"
    with FakeLlmServer() as llm:
        endpoints = {"openai": Endpoint(api_key="k", base_url=llm.openai_url)}
        async with new_worker(encrypted, endpoints, task_queue=task_queue):
            handle = await encrypted.start_workflow(
                YamlWorkflow.run,
                RunInput(definition=definition(HELLO), variables={"user_name": "Zanzibar"}),
                id=f"codec-{uuid.uuid4()}",
                task_queue=task_queue,
            )
            result: RunResult = await handle.result()
    assert "Zanzibar" in llm.requests[0].prompt_text  # the model saw the real prompt
    assert result.outputs["greeting"] == "Hello from gpt-4"

    # What the server stores, read without the key: no prompt, no variable, no reply.
    raw = await temporal_env.client.get_workflow_handle(handle.id).fetch_history()
    stored = raw.to_json()
    assert "Zanzibar" not in stored and "friendly greeting" not in stored
    assert "Hello from gpt-4" not in stored
    assert base64.b64encode(b"binary/encrypted").decode() in stored

    # The codec server turns a stored payload back into plaintext for the UI.
    port = free_port()
    server = codec_server(codec, port, "http://localhost:8233", "t0ken")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        started = raw.events[0].workflow_execution_started_event_attributes.input
        response = httpx.post(
            f"http://127.0.0.1:{port}/decode",
            content=json_format.MessageToJson(started),
            headers={
                "content-type": "application/json",
                "x-namespace": "default",
                "authorization": "Bearer t0ken",
            },
        )
    finally:
        server.shutdown()
        server.server_close()
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "http://localhost:8233"
    data = base64.b64decode(response.json()["payloads"][0]["data"])
    assert json.loads(data)["variables"] == {"user_name": "Zanzibar"}
