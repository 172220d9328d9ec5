"""The providers' batch endpoints for the fake provider (tests/fake_llm.py), in their wire
formats, so the real SDKs submit, poll and read results against it.

OpenAI: `POST /v1/files` (multipart, purpose batch) uploads the JSONL of requests,
`POST /v1/batches` starts a batch over it, `GET /v1/batches/{id}` tells its status and, once
completed, its `output_file_id`, read with `GET /v1/files/{id}/content`.
Anthropic: `POST /v1/messages/batches` takes the requests, `GET /v1/messages/batches/{id}`
tells `processing_status` and, once ended, a `results_url` of JSONL results.

A batch ends `delay` seconds after it was created (when next read); each request is then
answered as the realtime endpoint would answer it, cache accounting included.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Answer = Callable[[str, dict[str, Any]], dict[str, Any]]
"""The realtime answer to one request (its path and body): the reply's JSON body."""


@dataclass
class FakeBatch:
    id: str
    anthropic: bool
    requests: list[dict[str, Any]]
    """OpenAI: the JSONL lines ({custom_id, method, url, body}); Anthropic: {custom_id, params}."""
    created_at: float = field(default_factory=time.time)
    metadata: dict[str, str] = field(default_factory=dict)
    input_file_id: str = ""
    results: list[dict[str, Any]] | None = None
    cancelled: bool = False


@dataclass
class FakeBatches:
    """Batches by id, files by id; `created` lists every batch in the order submitted."""

    answer: Answer
    url: str
    delay: float = 0.0
    """Seconds from a batch's creation to its end."""
    item_error: Callable[[str], str | None] = lambda custom_id: None
    """A per-request error (its message) by custom id; None: answered."""
    outcome: str = "ended"
    """ended | expired: an expired batch answers no request."""
    created: list[FakeBatch] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    """Held while a request reads or changes batches (answering takes the server's lock)."""

    def handles(self, path: str) -> bool:
        return path.startswith(("/v1/files", "/v1/batches", "/v1/messages/batches"))

    def post(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, Any]:
        with self._lock:
            return self._post(path, headers, raw)

    def get(self, path: str) -> tuple[int, Any]:
        """(status, JSON value) or, for file contents and results, (status, bytes)."""
        with self._lock:
            return self._get(path)

    def _post(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, Any]:
        if path == "/v1/files":
            return 200, self._upload(headers, raw)
        body = json.loads(raw or b"{}")
        if path == "/v1/batches":
            lines = self.files[body["input_file_id"]].decode().splitlines()
            batch = self._create(False, [json.loads(line) for line in lines if line.strip()])
            batch.metadata = body.get("metadata") or {}
            batch.input_file_id = body["input_file_id"]
            return 200, self._openai(batch)
        if path == "/v1/messages/batches":
            return 200, self._anthropic(self._create(True, body["requests"]))
        if path.endswith("/cancel"):
            found = self._find(path.split("/")[-2])
            if found is None:
                return 404, _not_found(path)
            found.cancelled = True
            return 200, self._anthropic(found) if found.anthropic else self._openai(found)
        return 404, _not_found(path)

    def _get(self, path: str) -> tuple[int, Any]:
        parts = path.split("?")[0].strip("/").split("/")
        if parts == ["v1", "batches"]:
            data = [self._openai(b) for b in reversed(self.created) if not b.anthropic]
            return 200, {"object": "list", "data": data, "has_more": False}
        if parts[:2] == ["v1", "files"] and len(parts) == 4 and parts[3] == "content":
            content = self.files.get(parts[2])
            return (200, content) if content is not None else (404, _not_found(path))
        batch = self._find(parts[-1] if parts[-1] != "results" else parts[-2])
        if batch is None:
            return 404, _not_found(path)
        if parts[-1] == "results":
            self._finish(batch)
            lines = [json.dumps(result) for result in batch.results or []]
            return 200, ("\n".join(lines) + "\n").encode()
        return 200, self._anthropic(batch) if batch.anthropic else self._openai(batch)

    def _upload(self, headers: dict[str, str], raw: bytes) -> dict[str, Any]:
        head = f"content-type: {headers['content-type']}\r\n\r\n".encode()
        form = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + raw)
        content = b""
        for part in form.iter_parts():
            if part.get_param("name", header="content-disposition") == "file":
                payload = part.get_payload(decode=True)
                content = payload if isinstance(payload, bytes) else b""
        file_id = f"file-{len(self.files) + 1}"
        self.files[file_id] = content
        return _file(file_id, content, "batch")

    def _create(self, anthropic: bool, requests: list[dict[str, Any]]) -> FakeBatch:
        prefix = "msgbatch_" if anthropic else "batch_"
        batch = FakeBatch(f"{prefix}{len(self.created) + 1}", anthropic, requests)
        self.created.append(batch)
        return batch

    def _find(self, batch_id: str) -> FakeBatch | None:
        return next((b for b in self.created if b.id == batch_id), None)

    def _ended(self, batch: FakeBatch) -> bool:
        return batch.cancelled or time.time() >= batch.created_at + self.delay

    def _finish(self, batch: FakeBatch) -> None:
        """Answer every request once the batch has ended (the first read after)."""
        if batch.results is not None or not self._ended(batch):
            return
        batch.results = [self._result(batch, request) for request in batch.requests]
        if not batch.anthropic:
            output = "".join(json.dumps(r) + "\n" for r in batch.results).encode()
            self.files[f"file-out-{batch.id}"] = output

    def _result(self, batch: FakeBatch, request: dict[str, Any]) -> dict[str, Any]:
        custom_id = request["custom_id"]
        error = self.item_error(custom_id)
        gone = "canceled" if batch.cancelled else "expired" if self.outcome == "expired" else None
        if batch.anthropic:
            if gone:
                return {"custom_id": custom_id, "result": {"type": gone}}
            if error:
                failure = {"type": "invalid_request_error", "message": error}
                result = {"type": "errored", "error": {"type": "error", "error": failure}}
                return {"custom_id": custom_id, "result": result}
            message = self.answer("/v1/messages", request["params"])
            return {"custom_id": custom_id, "result": {"type": "succeeded", "message": message}}
        if gone or error:
            code = "batch_expired" if gone else "invalid_request"
            failed = {"code": code, "message": error or f"the batch {gone}"}
            return {
                "id": f"r-{custom_id}",
                "custom_id": custom_id,
                "response": None,
                "error": failed,
            }
        reply = self.answer("/v1/chat/completions", request["body"])
        response = {"status_code": 200, "request_id": f"req-{custom_id}", "body": reply}
        return {"id": f"r-{custom_id}", "custom_id": custom_id, "response": response, "error": None}

    def _counts(self, batch: FakeBatch) -> dict[str, int]:
        self._finish(batch)
        done = batch.results or []
        ok = sum(
            1
            for r in done
            if (r.get("result") or {}).get("type") == "succeeded" or r.get("response")
        )
        return {"total": len(batch.requests), "ok": ok, "failed": len(done) - ok}

    def _openai(self, batch: FakeBatch) -> dict[str, Any]:
        counts = self._counts(batch)
        ended = batch.results is not None
        status = "in_progress"
        if ended:
            status = (
                "cancelled"
                if batch.cancelled
                else "expired"
                if self.outcome == "expired"
                else "completed"
            )
        return {
            "id": batch.id,
            "object": "batch",
            "endpoint": "/v1/chat/completions",
            "completion_window": "24h",
            "created_at": int(batch.created_at),
            "input_file_id": batch.input_file_id,
            "status": status,
            "metadata": batch.metadata,
            "output_file_id": f"file-out-{batch.id}" if ended else None,
            "request_counts": {
                "total": counts["total"],
                "completed": counts["ok"],
                "failed": counts["failed"],
            },
        }

    def _anthropic(self, batch: FakeBatch) -> dict[str, Any]:
        counts = self._counts(batch)
        ended = batch.results is not None
        kinds = [(r.get("result") or {}).get("type") for r in batch.results or []]
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(batch.created_at))
        return {
            "id": batch.id,
            "type": "message_batch",
            "processing_status": "ended"
            if ended
            else ("canceling" if batch.cancelled else "in_progress"),
            "request_counts": {
                "processing": 0 if ended else counts["total"],
                "succeeded": kinds.count("succeeded"),
                "errored": kinds.count("errored"),
                "canceled": kinds.count("canceled"),
                "expired": kinds.count("expired"),
            },
            "created_at": created,
            "expires_at": created,
            "ended_at": created if ended else None,
            "results_url": f"{self.url}/v1/messages/batches/{batch.id}/results" if ended else None,
        }


def _file(file_id: str, content: bytes, purpose: str) -> dict[str, Any]:
    return {
        "id": file_id,
        "object": "file",
        "bytes": len(content),
        "created_at": int(time.time()),
        "filename": f"{file_id}.jsonl",
        "purpose": purpose,
        "status": "processed",
    }


def _not_found(path: str) -> dict[str, Any]:
    return {"error": {"type": "not_found_error", "message": f"no such object: {path}"}}
