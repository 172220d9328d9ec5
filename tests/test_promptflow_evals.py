"""Prompt flow's evaluation runs and variants, imported and run as the import prints them:
the classify flow's batch run evaluated by the evaluation flow, whose aggregation node's
`log_metric("accuracy", ...)` is the evaluation's aggregate metric; the variants flow's two
variants compared side by side; a run file's `variant:` choosing the definition under test.
Offline: the fake provider answers, the flows' own Python tools really run on the worker."""

from __future__ import annotations

import asyncio
import dataclasses
import shlex
import shutil
import sys
from pathlib import Path

import pytest

from activities.registry import load_custom_actions
from engine.client import EngineClient
from engine.evals.command import EvalRequest, evaluate
from engine.evals.output import gate_failures, terminal
from engine.settings import Settings
from starter import build_parser, main
from tests.conftest import ROOT, new_worker
from tests.fake_llm import Request

FLOWS = ROOT / "tests" / "promptflow_flows"


def sorted_tickets(request: Request) -> str:
    """Right on five of the six tickets (it misses the lost attachments, a bug)."""
    text = request.prompt_text.lower()
    return (
        "Billing."
        if "charged" in text or "invoice" in text
        else ("bug" if "crash" in text else "other")
    )


def help_desk(request: Request) -> str:
    """The friendly variant names what was asked about; the terse one only the password."""
    text = request.prompt_text
    if "warm" in text:
        return f"Hello! About your question: {text.splitlines()[-1]} Here is how."
    return "Reset your password by link." if "password" in text else "See your account page."


async def imported(tmp_path: Path, capsys, monkeypatch, *args: str) -> tuple[list[str], list]:
    """`starter.py import promptflow ARGS` in a folder holding copies of the test flows:
    the commands it prints, as argument lists (environment first)."""
    for name in ("classify", "evaluation", "variants"):
        shutil.copytree(FLOWS / name, tmp_path / name, dirs_exist_ok=True)
    monkeypatch.chdir(tmp_path)
    assert await asyncio.to_thread(main, ["import", "promptflow", *args]) == 0
    out = capsys.readouterr().out.splitlines()
    return out, [shlex.split(line) for line in out if "starter.py eval" in line]


async def run_eval(client, endpoints, tmp_path, monkeypatch, command: list[str], **extra):
    """The printed command's evaluation, on a worker with the modules it names loaded."""
    environment = dict(word.split("=", 1) for word in command[: command.index("python")])
    modules = [m for m in environment.get("ACTION_MODULES", "").split(",") if m]
    monkeypatch.syspath_prepend(str(tmp_path))
    args = build_parser().parse_args(command[command.index("starter.py") + 1 :])
    request = EvalRequest(
        args.definition, args.data, args.evaluators, dict(p.split("=", 1) for p in args.map),
        args.variant, execution_id=f"{args.id or 'pf'}-{tmp_path.name}", cache=False, **extra,
    )  # fmt: skip
    async with new_worker(
        client, endpoints, definitions_dir=tmp_path, actions=load_custom_actions(modules)
    ) as worker:
        settings = dataclasses.replace(
            Settings.from_env({}),
            address=client.service_client.config.target_host,
            task_queue=worker.task_queue,
            dev_dir=tmp_path / "dev",
            action_modules=tuple(modules),
        )
        engine = EngineClient(client, settings, start_worker=False)
        return await evaluate(engine, request, note=lambda line: None)


@pytest.fixture(autouse=True)
def _fresh_modules():
    """Each test imports its own copies of the flows' modules."""
    yield
    for name in ("classify_tools", "evaluation_tools", "variants_tools"):
        sys.modules.pop(name, None)


async def test_an_evaluation_run_reports_the_aggregation_nodes_metric(
    client, endpoints, fake_llm, tmp_path, capsys, monkeypatch
):
    fake_llm.reply = sorted_tickets
    out, [command] = await imported(
        tmp_path, capsys, monkeypatch, "-f", "classify/eval_run.yml",
        "--model-map", "gpt-35-turbo=gpt-4o-mini",
    )  # fmt: skip
    assert "wrote evaluation.evaluators.yaml" in out and "wrote evaluation.row.yaml" in out
    assert command[:2] == ["PYTHONPATH=.", "ACTION_MODULES=classify_tools,evaluation_tools"]
    assert command[-8:] == [
        "--data", "classify/data.jsonl", "--map", "ticket=text",
        "--evaluators", "evaluation.evaluators.yaml", "--id", "classify_eval",
    ]  # fmt: skip
    report = await run_eval(client, endpoints, tmp_path, monkeypatch, command)
    assert report["aggregates"] == {"evaluation": {"accuracy": 0.833}}
    grades = [r["variants"]["base"]["outputs"]["category"] for r in report["rows"]]
    assert grades == ["billing", "bug", "other", "billing", "other", "other"]
    assert len(fake_llm.requests) == 6
    assert "base     evaluation  accuracy          0.833" in terminal(report)
    assert gate_failures(report, {"accuracy": 0.8}) == []
    assert gate_failures(report, {"accuracy": 0.9}) == ["accuracy: 0.833 is below --fail-under 0.9"]


async def test_two_variants_are_compared_side_by_side(
    client, endpoints, fake_llm, tmp_path, capsys, monkeypatch
):
    fake_llm.reply = help_desk
    out, [chosen, compare] = await imported(tmp_path, capsys, monkeypatch, "-f", "variants/run.yml")
    # the run file's `variant: ${answer.variant_1}` is the definition under test
    assert chosen[2:5] == ["eval", "variants.variant_1.yaml", "--data"]
    assert compare[2:] == [
        "eval", "variants.yaml", "--data", "variants/data.jsonl",
        "--variant", "variant_1=variants.variant_1.yaml",
    ]  # fmt: skip
    (tmp_path / "evaluators.yaml").write_text(
        "evaluators:\n  - {name: on_topic, type: contains, expected: '{{ row.keyword }}', "
        "case_sensitive: false}\n"
    )
    compare += ["--evaluators", "evaluators.yaml"]
    report = await run_eval(client, endpoints, tmp_path, monkeypatch, ["python", *compare])
    assert report["variants"]["base"]["metrics"]["on_topic"]["mean"] == pytest.approx(1 / 3)
    assert report["variants"]["variant_1"]["metrics"]["on_topic"]["mean"] == 1.0
    compared = report["comparisons"]["variant_1 - base"]["on_topic"]
    assert compared["difference"] == pytest.approx(2 / 3)
    assert [d["line"] for d in compared["disagree"]] == [2, 3]
    temperatures = sorted({r.body.get("temperature") for r in fake_llm.requests})
    assert temperatures == [0.2, 0.9]
