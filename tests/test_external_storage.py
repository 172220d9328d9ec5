"""Large data leaves history, not the run: payloads over the threshold go to External Storage
(a directory here, S3 on moto's server below) and history keeps a reference."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHistory
from temporalio.converter import ExternalStorage, StorageDriverClaim, StorageDriverRetrieveContext
from temporalio.worker import Replayer

from activities.codec import codec_from_key, data_converter, new_key
from activities.endpoints import DEFAULT_THRESHOLD, Endpoint
from activities.payload_store import (
    LocalPayloadDriver,
    PayloadMissingError,
    s3_driver,
)
from engine.plugin import workflow_runner
from engine.settings import Settings
from tests.conftest import definition, new_worker, start
from tests.fake_llm import FakeLlmServer, Request
from workflows.contracts import RunInput, RunResult, RunStatus
from workflows.interpreter import YamlWorkflow

REFERENCE_TYPE = b"temporal.api.sdk.v1.ExternalStorageReference"
BIG = 800_000

THREE_BIG = """
workflow:
  name: ThreeBig
  steps:
    - {id: a, type: llm_call, model: gpt-4o-mini, prompt: "a", outputs: [ra]}
    - {id: b, type: llm_call, model: gpt-4o-mini, prompt: "b {{ ra | length }}", outputs: [rb]}
    - {id: c, type: llm_call, model: gpt-4o-mini, prompt: "c {{ rb | length }}", outputs: [rc]}
"""


def storage_client(client: Client, storage: ExternalStorage, key: str | None = None) -> Client:
    """The session's server, with a converter that stores large payloads (and encrypts)."""
    converter = data_converter(codec_from_key(key), storage)
    return Client(client.service_client, namespace=client.namespace, data_converter=converter)


def local_storage(directory: Path) -> ExternalStorage:
    return ExternalStorage(drivers=[LocalPayloadDriver(directory)])


def first_letter_repeated(request: Request) -> str:
    return request.body["messages"][-1]["content"][0] * BIG


def openai(llm: FakeLlmServer) -> dict[str, Endpoint]:
    return {"openai": Endpoint(api_key="k", base_url=llm.openai_url)}


def payloads_in(message: Message) -> Iterator[Payload]:
    """Every Payload anywhere in a history event."""
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            items = list(value.values())
        elif getattr(field, "is_repeated", None) or getattr(field, "label", 0) == 3:  # repeated
            items = list(value)
        else:
            items = [value]
        for item in items:
            if isinstance(item, Payload):
                yield item
            elif isinstance(item, Message):
                yield from payloads_in(item)


def references(history: WorkflowHistory) -> list[dict]:
    return [
        json.loads(payload.data)
        for event in history.events
        for payload in payloads_in(event)
        if payload.metadata.get("messageType") == REFERENCE_TYPE
    ]


def blobs(directory: Path) -> list[Path]:
    """Stored blobs, not the driver's temporary files that are still being written."""
    return [
        path
        for path in directory.rglob("*")
        if path.is_file() and not path.name.startswith(".incoming-")
    ]


async def test_three_800_kb_replies_complete_and_history_keeps_references(client, tmp_path):
    big = storage_client(client, local_storage(tmp_path))
    with FakeLlmServer(reply=first_letter_repeated) as llm:
        async with new_worker(big, openai(llm)) as worker:
            began = time.monotonic()
            handle = await start(big, worker, RunInput(definition=definition(THREE_BIG)))
            result: RunResult = await handle.result()
            took = time.monotonic() - began
    assert [result.outputs[name] for name in ("ra", "rb", "rc")] == [
        "a" * BIG,
        "b" * BIG,
        "c" * BIG,
    ]
    history = await handle.fetch_history()
    assert len(history.to_json()) < 1_000_000  # 2.4 MB of replies, none of it in history
    refs = references(history)
    assert len(refs) >= 4  # three activity results and the run's result
    assert {ref["driverName"] for ref in refs} == {"local.files"}
    assert len(blobs(tmp_path)) >= 4
    print(f"3 x 800 KB run: {took:.2f} s, history {len(history.to_json())} bytes")


async def test_status_answers_during_and_after_a_large_run(client, tmp_path):
    big = storage_client(client, local_storage(tmp_path))
    with FakeLlmServer(reply=first_letter_repeated, latency=0.5) as llm:
        async with new_worker(big, openai(llm)) as worker:
            handle = await start(big, worker, RunInput(definition=definition(THREE_BIG)))
            during: RunStatus | None = None
            while during is None or "a" not in during.steps:
                await asyncio.sleep(0.1)
                during = await handle.query("status", result_type=RunStatus)
            assert "c" not in during.steps  # asked while the run went on
            assert during.steps["a"].outputs == {"ra": "a" * BIG}
            await handle.result()
            stored = len(blobs(tmp_path))
            after = await handle.query("status", result_type=RunStatus)  # 2.4 MB of replies
    assert len(blobs(tmp_path)) == stored + 1  # the answer itself went to storage
    assert {step: out.outputs for step, out in after.steps.items()} == {
        "a": {"ra": "a" * BIG},
        "b": {"rb": "b" * BIG},
        "c": {"rc": "c" * BIG},
    }


async def test_a_history_with_references_replays_with_the_same_converter(client, tmp_path):
    big = storage_client(client, local_storage(tmp_path))
    with FakeLlmServer(reply=first_letter_repeated) as llm:
        async with new_worker(big, openai(llm)) as worker:
            handle = await start(big, worker, RunInput(definition=definition(THREE_BIG)))
            await handle.result()
    history = WorkflowHistory.from_json(handle.id, (await handle.fetch_history()).to_json())
    assert references(history)
    replayer = Replayer(
        workflows=[YamlWorkflow],
        data_converter=big.data_converter,
        workflow_runner=workflow_runner(),
    )
    await replayer.replay_workflow(history)


async def test_with_a_payload_key_stored_blobs_hold_no_plaintext(client, tmp_path):
    secret = "confidential-reply-text "
    text = """
workflow:
  name: Secret
  steps:
    - {id: a, type: llm_call, model: gpt-4o-mini, prompt: "tell", outputs: [ra]}
"""
    big = storage_client(client, local_storage(tmp_path), key=new_key())
    with FakeLlmServer(reply=lambda request: secret * (BIG // len(secret))) as llm:
        async with new_worker(big, openai(llm)) as worker:
            handle = await start(big, worker, RunInput(definition=definition(text)))
            result: RunResult = await handle.result()
    assert result.outputs["ra"].startswith(secret)
    stored = blobs(tmp_path)
    assert stored and all(path.stat().st_size > BIG for path in stored)
    for path in stored:
        assert secret.encode() not in path.read_bytes()
    assert secret not in (await handle.fetch_history()).to_json()


@pytest.mark.timeout(600)
async def test_a_thousand_item_for_each_of_8_kb_replies_keeps_every_item(client, tmp_path):
    text = """
workflow:
  name: WideBig
  steps:
    - id: each
      type: llm_call
      model: gpt-4o-mini
      for_each: "{{ range(1000) | list }}"
      concurrency: 100
      prompt: "{{ item }}"
      outputs: [answer]
"""

    def reply(request: Request) -> str:
        item = request.body["messages"][-1]["content"]
        return f"{item}:".ljust(8192, "x")

    big = storage_client(client, local_storage(tmp_path))
    with FakeLlmServer(reply=reply) as llm:
        async with new_worker(big, openai(llm)) as worker:
            began = time.monotonic()
            handle = await start(big, worker, RunInput(definition=definition(text)))
            result: RunResult = await handle.result()
            took = time.monotonic() - began
    answers = result.outputs["answer"]
    assert answers == [f"{i}:".ljust(8192, "x") for i in range(1000)]
    first = await big.get_workflow_handle(
        handle.id, run_id=handle.first_execution_run_id
    ).fetch_history()
    continued = first.events[-1].workflow_execution_continued_as_new_event_attributes
    [carried] = continued.input.payloads  # the finished items, carried to the next run
    assert carried.metadata.get("messageType") == REFERENCE_TYPE
    assert carried.external_payloads[0].size_bytes > 2 * 1024 * 1024  # over Temporal's limit
    print(f"1,000 x 8 KB for_each: {took:.1f} s, carried {carried.external_payloads[0].size_bytes}")


async def test_a_run_whose_blob_is_missing_waits_until_it_is_back(client, tmp_path):
    """No cache, so every workflow task replays from history and reads the first reply back."""
    big = storage_client(client, local_storage(tmp_path))
    with FakeLlmServer(reply=first_letter_repeated, latency=0.5) as llm:
        async with new_worker(big, openai(llm), max_cached_workflows=0) as worker:
            handle = await start(big, worker, RunInput(definition=definition(THREE_BIG)))
            while not blobs(tmp_path):
                await asyncio.sleep(0.05)
            [first] = blobs(tmp_path)
            first.rename(first.with_name("away"))
            while not any(
                event.HasField("workflow_task_failed_event_attributes")
                for event in (await handle.fetch_history()).events
            ):
                await asyncio.sleep(0.1)
            assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
            first.with_name("away").rename(first)
            result: RunResult = await handle.result()
    assert result.outputs["rc"] == "c" * BIG


async def test_a_missing_blob_is_named_with_the_setting_to_fix(tmp_path):
    driver = LocalPayloadDriver(tmp_path / "payloads")
    [claim] = await driver.store(None, [Payload(data=b"x" * 10)])  # type: ignore[arg-type]
    assert [p.data for p in await driver.retrieve(StorageDriverRetrieveContext(), [claim])] == [
        b"x" * 10
    ]
    assert [path.name for path in blobs(tmp_path)] == [claim.claim_data["hash_value"]]  # no temp
    missing = StorageDriverClaim(claim_data={"hash_algorithm": "sha256", "hash_value": "ab" * 32})
    with pytest.raises(PayloadMissingError, match="EXTERNAL_STORAGE_DIR"):
        await driver.retrieve(StorageDriverRetrieveContext(), [missing])
    driver.path(claim.claim_data["hash_value"]).write_bytes(b"tampered")
    with pytest.raises(PayloadMissingError, match="damaged"):
        await driver.retrieve(StorageDriverRetrieveContext(), [claim])


def test_storage_settings_come_from_the_environment(tmp_path):
    default = Settings.from_env({"TEMPORAL_DEV_DIR": str(tmp_path)}).data_converter
    assert default.external_storage is not None
    [driver] = default.external_storage.drivers
    assert isinstance(driver, LocalPayloadDriver) and driver.directory == tmp_path / "payloads"
    assert default.external_storage.payload_size_threshold == DEFAULT_THRESHOLD
    chosen = Settings.from_env(
        {"EXTERNAL_STORAGE_DIR": str(tmp_path / "x"), "EXTERNAL_STORAGE_THRESHOLD": "1000"}
    ).data_converter.external_storage
    assert chosen is not None and chosen.payload_size_threshold == 1000
    assert chosen.drivers[0].directory == tmp_path / "x"  # type: ignore[attr-defined]
    assert Settings.from_env({"EXTERNAL_STORAGE": "off"}).data_converter.external_storage is None
    s3 = Settings.from_env(
        {"EXTERNAL_STORAGE": "s3", "EXTERNAL_STORAGE_BUCKET": "b", "AWS_ENDPOINT_URL": "http://s3"}
    ).data_converter.external_storage
    assert s3 is not None and s3.drivers[0].type() == "aws.s3driver"
    with pytest.raises(ValueError, match="EXTERNAL_STORAGE_BUCKET"):
        Settings.from_env({"EXTERNAL_STORAGE": "s3"})
    with pytest.raises(ValueError, match="local, s3, off"):
        Settings.from_env({"EXTERNAL_STORAGE": "disk"})


@pytest.fixture(scope="module")
def moto_s3() -> Iterator[tuple[str, object]]:
    """moto's S3 server on a free loopback port, with the bucket made; yields its URL and an
    aioboto3 session holding moto's dummy credentials."""
    moto_server = pytest.importorskip("moto.server")
    aioboto3 = pytest.importorskip("aioboto3")
    import boto3

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    credentials = {
        "aws_access_key_id": "test",
        "aws_secret_access_key": "test",
        "region_name": "us-east-1",
    }
    boto3.client("s3", endpoint_url=url, **credentials).create_bucket(Bucket="payloads")
    yield url, aioboto3.Session(**credentials)
    server.stop()


async def test_s3_storage_on_an_s3_compatible_server(client, moto_s3):
    import boto3

    url, session = moto_s3
    driver = s3_driver("payloads", prefix="llm", endpoint_url=url, session=session)
    big = storage_client(client, ExternalStorage(drivers=[driver]))
    with FakeLlmServer(reply=first_letter_repeated) as llm:
        async with new_worker(big, openai(llm)) as worker:
            handle = await start(big, worker, RunInput(definition=definition(THREE_BIG)))
            result: RunResult = await handle.result()
    assert result.outputs["rc"] == "c" * BIG
    refs = references(await handle.fetch_history())
    assert refs and {ref["driverName"] for ref in refs} == {"aws.s3driver"}
    s3 = boto3.client(
        "s3", endpoint_url=url, aws_access_key_id="test", aws_secret_access_key="test",
        region_name="us-east-1",
    )  # fmt: skip
    keys = [item["Key"] for item in s3.list_objects_v2(Bucket="payloads")["Contents"]]
    run = f"llm/v0/ns/default/wt/YamlWorkflow/wi/{handle.id}/"
    assert len(keys) >= 4 and all(key.startswith(run) for key in keys)  # the prefix, then the run
