"""save_to_file writes each run's files into a folder of its own, or, when asked, into the
shared folder, and nowhere else: not over another run's files, not over the engine's own."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.files import FileActions
from workflows.actions import SaveToFileParams
from workflows.contracts import ActionInput
from workflows.errors import FailureType


async def save(output: Path, workflow_id: str, **params: Any) -> dict[str, Any]:
    """Run the action as the activity of the workflow `workflow_id` runs."""
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, workflow_id=workflow_id)
    request = ActionInput(
        step_id="save", action="save_to_file", params=params, idempotency_key=f"{workflow_id}/k"
    )
    return await env.run(FileActions(output).save, SaveToFileParams(**params), request)


async def refused(output: Path, **params: Any) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        await save(output, "wf", **params)
    assert caught.value.type == FailureType.PATH_REFUSED and caught.value.non_retryable
    return caught.value


async def test_two_runs_writing_the_same_name_keep_both_files(tmp_path):
    first = await save(tmp_path, "run-a", path="reports", filename="r.md", data="from a")
    second = await save(tmp_path, "run-b", path="reports", filename="r.md", data="from b")
    assert first == {"path": "runs/run-a/reports/r.md", "bytes": 6}
    assert second == {"path": "runs/run-b/reports/r.md", "bytes": 6}
    assert (tmp_path / first["path"]).read_text() == "from a"
    assert (tmp_path / second["path"]).read_text() == "from b"


async def test_a_run_cannot_replace_the_default_database(tmp_path):
    database = tmp_path / "workflows.db"
    database.write_bytes(b"SQLite format 3\0")
    result = await save(tmp_path, "wf", filename="workflows.db", data="gone")
    assert database.read_bytes() == b"SQLite format 3\0"
    assert result["path"] == "runs/wf/workflows.db"
    shared = await save(tmp_path, "wf", filename="workflows.db", data="gone", shared=True)
    assert database.read_bytes() == b"SQLite format 3\0"
    assert shared["path"] == "shared/workflows.db"


async def test_shared_writes_to_the_shared_folder_for_every_run(tmp_path):
    await save(tmp_path, "run-a", path="latest", filename="r.md", data="a", shared=True)
    result = await save(tmp_path, "run-b", path="latest", filename="r.md", data="b", shared=True)
    assert result == {"path": "shared/latest/r.md", "bytes": 1}
    assert (tmp_path / "shared" / "latest" / "r.md").read_text() == "b"
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("workflow_id", "folder"),
    [
        ("../../etc", "%2E.%2F..%2Fetc"),
        ("..", "%2E."),
        (".", "%2E"),
        ("parent/child-step", "parent%2Fchild-step"),
        ("/abs", "%2Fabs"),
    ],
)
async def test_a_workflow_id_is_one_path_component(tmp_path, workflow_id, folder):
    result = await save(tmp_path, workflow_id, filename="x.txt", data="hi")
    assert result["path"] == f"runs/{folder}/x.txt"
    assert [p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")] == [
        "runs",
        f"runs/{folder}",
        f"runs/{folder}/x.txt",
    ]


async def test_a_long_workflow_id_gets_a_short_distinct_folder(tmp_path):
    first = await save(tmp_path, "w" * 300 + "1", filename="x.txt", data="1")
    second = await save(tmp_path, "w" * 300 + "2", filename="x.txt", data="2")
    assert first["path"] != second["path"]
    assert all(len(Path(r["path"]).parts[1]) <= 255 for r in (first, second))


@pytest.mark.parametrize(
    "params",
    [
        {"filename": "a\0b.txt"},
        {"path": "dir\0", "filename": "b.txt"},
        {"filename": "x" * 300},
        {"path": "y" * 256, "filename": "b.txt"},
        {"filename": "é" * 128},  # 256 bytes in UTF-8
        {"filename": "../../workflows.db"},
        {"path": "/etc", "filename": "x"},
        {"filename": "."},
    ],
)
async def test_unsafe_names_are_refused_without_retry(tmp_path, params):
    await refused(tmp_path, data="hi", **params)
    assert not list(tmp_path.iterdir())


async def test_a_symlink_out_of_the_run_folder_is_not_followed(tmp_path):
    (tmp_path / "runs" / "wf").mkdir(parents=True)
    (tmp_path / "runs" / "wf" / "db").symlink_to(tmp_path / "workflows.db")
    (tmp_path / "runs" / "wf" / "other").symlink_to(tmp_path / "runs" / "other-run")
    error = await refused(tmp_path, filename="db", data="gone")
    assert "runs/wf" in error.message
    await refused(tmp_path, path="other", filename="r.md", data="gone")
    assert (
        not (tmp_path / "workflows.db").exists() and not (tmp_path / "runs" / "other-run").exists()
    )
