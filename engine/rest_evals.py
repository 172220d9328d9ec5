"""The REST API's evaluations: `POST /evaluations` starts one over files under
DEFINITIONS_DIR (definition, dataset, evaluators: confined like every file the API reads);
`GET /evaluations/{id}` answers its report (engine/evals/report.py) once it has ended."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from activities.definitions import confined, quoted, usable_name
from engine.client import EngineClient
from engine.evals.command import EvalRequest, prepare, resume, start_prepared
from engine.rest_definitions import load_file
from engine.rest_errors import ApiError
from engine.settings import Settings
from workflows.errors import UsageError


class EvaluationRequest(BaseModel):
    definition: str = Field(description="A definition file under DEFINITIONS_DIR.")
    data: str = Field(description="A JSONL, CSV or JSON-list file under DEFINITIONS_DIR.")
    evaluators: str | None = Field(default=None, description="An evaluator file there too.")
    map: dict[str, str] = Field(default={}, description="Variable name to column name.")
    variants: list[str] = Field(default=[], description="NAME=FILE, NAME:model=M, NAME:var.X=V")
    limit: int | None = Field(default=None, ge=1)
    sample: int | None = Field(default=None, ge=1)
    seed: int = 0
    concurrency: int = Field(default=10, ge=1, le=1000)
    budget_usd: float | None = Field(default=None, gt=0)
    id: str | None = None
    cache: bool = Field(
        default=True, description="Reuse rows earlier evaluations finished (false: run all)."
    )


class EvaluationStarted(BaseModel):
    execution_id: str
    report: str = Field(description="Where the report is, once the evaluation has ended.")


async def start_evaluation(
    client: EngineClient, body: EvaluationRequest, settings: Settings
) -> EvaluationStarted:
    request = EvalRequest(
        body.definition, body.data, body.evaluators, body.map, body.variants, body.limit,
        body.sample, body.seed, body.concurrency, body.budget_usd, body.id, cache=body.cache,
    )  # fmt: skip
    # reading and checking a large dataset is CPU work: off the event loop the API serves on
    prepared = await asyncio.to_thread(
        prepare, request, settings, lambda name: load_file(name, settings), _placed(settings)
    )
    execution_id = await start_prepared(client, prepared)
    return EvaluationStarted(execution_id=execution_id, report=f"/evaluations/{execution_id}")


async def evaluation_report(client: EngineClient, execution_id: str) -> dict[str, Any]:
    if await client.state(execution_id) == "running":
        raise ApiError(409, "conflict", f"evaluation {execution_id} is still running")
    return await resume(client, execution_id)


def _placed(settings: Settings) -> Any:
    root = settings.definitions_dir

    def place(name: str) -> Path:
        if not usable_name(name) or Path(name).is_absolute() or not confined(root / name, root):
            raise UsageError(f"{quoted(name)} must be a file inside DEFINITIONS_DIR")
        return root / name

    return place
