"""Evaluations (`starter.py eval`): a definition run once per dataset row as children of one
durable evaluation run, scored by evaluators, reported with confidence intervals, cost and
latency, gated by `--fail-under`; variants side by side."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from collections.abc import AsyncIterator

import pytest

from engine.client import EngineClient
from engine.evals.command import EvalRequest, evaluate
from engine.evals.output import gate_failures, junit, terminal
from engine.settings import Settings
from tests.conftest import ROOT, new_worker
from tests.fake_llm import Fault, Request
from workflows.errors import DefinitionError

HERE = ROOT / "tests" / "evals"


def keyword_label(request: Request) -> str:
    """A classifier that is right on 15 of the 20 labelled tickets."""
    text = request.prompt_text.split(":", 1)[-1]
    model = request.body.get("model")
    if "refund" in text:
        return "billing"
    if "crash" in text:
        return "bug" if model != "gpt-4o" else "other"
    return "other"


@pytest.fixture
async def engine(client, fake_llm, endpoints, tmp_path):
    fake_llm.reply = keyword_label
    async with new_worker(client, endpoints, definitions_dir=ROOT) as worker:
        settings = dataclasses.replace(
            Settings.from_env({}),
            address=client.service_client.config.target_host,
            task_queue=worker.task_queue,
            dev_dir=tmp_path / "dev",  # the command's client finds this worker; never the repo's
        )
        yield EngineClient(client, settings, start_worker=False)


def request(**given) -> EvalRequest:
    """These tests change the fake's replies between evaluations of the same rows, so they
    refuse the cache (tests/test_eval_cache.py tests it)."""
    return EvalRequest(
        str(HERE / "classify.yaml"),
        str(HERE / "tickets.jsonl"),
        str(HERE / "evaluators.yaml"),
        **{"cache": False, **given},
    )


async def test_twenty_labelled_rows_report_the_accuracy_they_imply(engine, fake_llm):
    report = await evaluate(engine, request(concurrency=5), note=lambda line: None)
    accuracy = report["metrics"]["accuracy"]
    assert accuracy["mean"] == 0.75
    assert accuracy["pass_rate"] == 0.75
    low, high = accuracy["ci95"]
    assert low < 0.75 < high and high - low < 0.5
    assert len(report["rows"]) == 20 and len(fake_llm.requests) == 20
    base = report["variants"]["base"]
    assert base["rows_failed"] == 0 and base["tokens_per_row"] > 0
    assert base["latency_ms"]["p50"] is not None
    scores = [(r["line"], r["variants"]["base"]["scores"]["accuracy"]) for r in report["rows"]]
    wrong = [line for line, score in scores if not score["passed"]]
    assert wrong == [16, 17, 18, 19, 20]
    assert gate_failures(report, {"accuracy": 0.8}) == [
        "accuracy: mean 0.750 is below --fail-under 0.8"
    ]
    assert gate_failures(report, {"accuracy": 0.7}) == []
    assert "accuracy" in terminal(report)
    assert junit(report).count("<failure") == 5 + 5  # accuracy and mentions_label
    json.dumps(report)  # the report is JSON as it stands


async def test_two_variants_show_their_difference_and_the_rows_they_disagree_on(engine):
    given = request(concurrency=10, variants=["big:model=gpt-4o"], shard_rows=8)
    report = await evaluate(engine, given, note=lambda line: None)
    assert report["variants"]["base"]["metrics"]["accuracy"]["mean"] == 0.75
    assert report["variants"]["big"]["metrics"]["accuracy"]["mean"] == 0.5
    compared = report["comparisons"]["big - base"]["accuracy"]
    assert compared["difference"] == -0.25
    assert [d["line"] for d in compared["disagree"]] == [6, 7, 8, 9, 10]
    shards = [await engine.status(f"{report['id']}/shard{n}") for n in range(3)]
    assert [s.total_steps for s in shards] == [16, 16, 8]  # 8, 8 and 4 rows, two variants


async def test_a_row_whose_run_fails_is_reported_and_stops_no_other(engine, fake_llm):
    fake_llm.fault_for = lambda r: Fault(400, "bad row") if "(#3)" in r.prompt_text else None
    report = await evaluate(engine, request(), note=lambda line: None)
    failed = [r for r in report["rows"] if r["variants"]["base"]["status"] == "failed"]
    assert [r["line"] for r in failed] == [4]
    assert "bad row" in failed[0]["variants"]["base"]["error"]
    assert report["variants"]["base"]["rows_failed"] == 1
    assert report["metrics"]["accuracy"]["mean"] == 14 / 20  # a failed row scores 0


async def test_row_text_is_data_never_a_template(engine, fake_llm, tmp_path):
    data = tmp_path / "rows.jsonl"
    data.write_text(json.dumps({"ticket": "{{ 6 * 7 }} crash", "label": "bug"}) + "\n")
    given = dataclasses.replace(request(), data=str(data))
    report = await evaluate(engine, given, note=lambda line: None)
    assert "{{ 6 * 7 }} crash" in fake_llm.requests[0].prompt_text
    assert report["metrics"]["accuracy"]["mean"] == 1.0


JUDGE = """
evaluators:
  - name: helpful
    type: llm_judge
    model: claude-haiku-4-5
    rubric: "The category names the team that must act."
    scale: [1, 5]
    pass_at: 4
"""


async def test_an_llm_judge_scores_each_row_on_its_scale_and_keeps_its_reasons(
    engine, fake_llm, tmp_path
):
    def reply(r: Request) -> str:
        if "rubric" not in r.prompt_text.lower():
            return keyword_label(r)
        if '"billing"' in r.prompt_text:
            return json.dumps({"score": 9, "reasons": "off the scale"})  # re-asked, then fails
        good = '"bug"' in r.prompt_text
        return json.dumps({"score": 5 if good else 2, "reasons": "bug is for engineers"})

    fake_llm.reply = reply
    (tmp_path / "judge.yaml").write_text(JUDGE)
    given = dataclasses.replace(request(limit=10), evaluators=str(tmp_path / "judge.yaml"))
    report = await evaluate(engine, given, note=lambda line: None)
    helpful = report["metrics"]["helpful"]
    assert helpful["mean"] == 5.0 and helpful["n"] == 5 and helpful["errors"] == 5
    assert helpful["pass_rate"] == 1.0
    row = report["rows"][5]["variants"]["base"]["scores"]["helpful"]
    assert row == {"score": 5.0, "passed": True, "detail": "bug is for engineers", "error": None}
    refused = report["rows"][0]["variants"]["base"]["scores"]["helpful"]
    assert refused["score"] is None and "llm_judge failed" in refused["error"]


async def test_the_command_gates_writes_reports_and_resumes_by_id(
    engine, tmp_path, capsys, monkeypatch
):
    from engine.cli_eval import cmd_eval
    from starter import build_parser

    async def connected(settings: Settings, **_: object) -> EngineClient:
        return engine  # the test's worker runs the rows: the command starts none of its own

    monkeypatch.setattr(EngineClient, "connect", staticmethod(connected))

    async def run(*argv: str) -> int:
        return await cmd_eval(build_parser().parse_args(["eval", *argv]), engine.settings)

    base = [str(HERE / "classify.yaml"), "--data", str(HERE / "tickets.jsonl")]
    base += ["--evaluators", str(HERE / "evaluators.yaml"), "--id", f"eval-{tmp_path.name}"]
    base += ["--no-cache"]
    page, xml = tmp_path / "report.html", tmp_path / "junit.xml"
    gate = ["--fail-under", "accuracy=0.8"]
    code = await run(*base, *gate, "--report", str(page), "--junit", str(xml))
    out, err = capsys.readouterr()
    assert code == 1
    assert "gate failed: accuracy: mean 0.750 is below --fail-under 0.8" in err
    assert "accuracy" in out and "0.750" in out
    assert "<table>" in page.read_text() and "<script" not in page.read_text()
    assert xml.read_text().count("<testcase") == 40
    code = await run("--resume", f"eval-{tmp_path.name}", "--json", "--fail-under", "accuracy=0.7")
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["metrics"]["accuracy"]["mean"] == 0.75
    assert set(report) >= {"id", "definition", "rows", "metrics", "variants", "usage"}


async def test_the_rest_api_starts_an_evaluation_and_returns_its_report(engine):
    from engine.rest import create_app
    from engine.rest_auth import ApiConfig
    from tests.test_rest_api import CI, TOKENS, asgi, factory

    settings = dataclasses.replace(engine.settings, definitions_dir=ROOT)
    app = create_app(settings, ApiConfig(tokens=TOKENS), factory(engine))
    body = {
        "definition": "tests/evals/classify.yaml",
        "data": "tests/evals/tickets.jsonl",
        "evaluators": "tests/evals/evaluators.yaml",
        "limit": 10,
        "cache": False,
    }
    async with asgi(app, **CI) as http:
        outside = await http.post("/evaluations", json={**body, "data": "/etc/passwd"})
        assert outside.status_code == 400 and "inside DEFINITIONS_DIR" in outside.text
        started = (await http.post("/evaluations", json=body)).json()
        for _ in range(100):
            answer = await http.get(started["report"])
            if answer.status_code != 409:
                break
            await asyncio.sleep(0.2)
    report = answer.json()
    assert answer.status_code == 200 and report["id"] == started["execution_id"]
    assert report["metrics"]["accuracy"]["mean"] == 1.0 and len(report["rows"]) == 10


async def test_a_workflow_evaluator_scores_each_row_in_the_evaluation_run(engine, tmp_path):
    flow = HERE / "label_check.yaml"
    (tmp_path / "evaluators.yaml").write_text(
        f"evaluators:\n  - {{name: flow, type: workflow, definition: {flow}}}\n"
    )
    given = dataclasses.replace(request(), evaluators=str(tmp_path / "evaluators.yaml"))
    report = await evaluate(engine, given, note=lambda line: None)
    assert report["metrics"]["flow"]["mean"] == 0.75
    assert report["metrics"]["flow"]["pass_rate"] == 0.75


@contextlib.asynccontextmanager
async def with_eval_functions(client, endpoints, tmp_path) -> AsyncIterator[EngineClient]:
    """A worker and client with tests/eval_functions.py's evaluator and aggregator."""
    from activities.registry import load_custom_actions

    actions = load_custom_actions(["tests.eval_functions"])
    async with new_worker(client, endpoints, actions=actions) as worker:
        settings = dataclasses.replace(
            Settings.from_env({}),
            address=client.service_client.config.target_host,
            task_queue=worker.task_queue,
            action_modules=("tests.eval_functions",),
            dev_dir=tmp_path / "dev",  # never the repo's local stack, if one runs
        )
        yield EngineClient(client, settings, start_worker=False)


async def test_a_python_evaluator_runs_on_the_worker_for_each_row(
    client, endpoints, fake_llm, tmp_path
):
    fake_llm.reply = keyword_label
    (tmp_path / "evaluators.yaml").write_text(
        "evaluators:\n  - {name: py, type: python, function: same_labl}\n"
    )
    async with with_eval_functions(client, endpoints, tmp_path) as engine:
        given = dataclasses.replace(request(), evaluators=str(tmp_path / "evaluators.yaml"))
        with pytest.raises(DefinitionError, match="did you mean 'same_label'"):
            await evaluate(engine, given, note=lambda line: None)
        (tmp_path / "evaluators.yaml").write_text(
            "evaluators:\n  - {name: py, type: python, function: same_label}\n"
        )
        report = await evaluate(engine, given, note=lambda line: None)
    assert report["metrics"]["py"]["mean"] == 0.75
    assert report["rows"][19]["variants"]["base"]["scores"]["py"]["detail"] == "wanted billing"


async def test_an_aggregator_runs_once_over_every_rows_verdicts_and_its_metrics_gate(
    client, endpoints, fake_llm, tmp_path
):
    fake_llm.reply = keyword_label
    entry = "{name: py, type: python, function: same_label, aggregate: %s}"
    (tmp_path / "evaluators.yaml").write_text(f"evaluators:\n  - {entry % 'share_rite'}\n")
    async with with_eval_functions(client, endpoints, tmp_path) as engine:
        file = str(tmp_path / "evaluators.yaml")
        given = dataclasses.replace(request(shard_rows=8), evaluators=file)
        with pytest.raises(DefinitionError, match="did you mean 'share_right'"):
            await evaluate(engine, given, note=lambda line: None)
        (tmp_path / "evaluators.yaml").write_text(f"evaluators:\n  - {entry % 'share_right'}\n")
        report = await evaluate(engine, given, note=lambda line: None)
    # three shards' verdicts, gathered by the evaluation run's last step
    assert report["aggregates"] == {"py": {"share": 0.75, "rows": 20}}
    assert report["variants"]["base"]["aggregates"] == report["aggregates"]
    assert "base     py         share             0.750" in terminal(report)
    assert gate_failures(report, {"share": 0.7, "py.rows": 20}) == []
    assert gate_failures(report, {"share": 0.8}) == ["share: 0.750 is below --fail-under 0.8"]
    # the workbench's page: its aggregates table, and comparisons that stay with their pair
    from engine.evals.output import aggregate_table, run_table
    from engine.web_evals import comparisons

    assert aggregate_table(report) == [
        ["variant", "evaluator", "aggregate metric", "value"],
        ["base", "py", "share", "0.750"],
        ["base", "py", "rows", "20.000"],
    ]
    assert run_table(report)[0][:2] == ["variant", "rows"] and comparisons(report) == []
    base = report["variants"]["base"]
    same = {"py": {"difference": 0.0, "ci95": [0.0, 0.0], "disagree": []}}
    two = report | {"variants": {"base": base, "big": base}, "comparisons": {"big - base": same}}
    [compared] = comparisons(two)
    assert compared.pair == "big - base" and compared.table[0][0] == "big - base"


async def test_a_budget_stops_the_rows_it_cannot_pay_for_and_the_report_says_so(engine):
    report = await evaluate(
        engine, request(concurrency=1, budget_usd=0.00003), note=lambda line: None
    )
    base = report["variants"]["base"]
    assert 0 < base["rows_failed"] < 20
    assert report["usage"]["cost_usd"] <= 0.00003
    stopped = [r for r in report["rows"] if r["variants"]["base"]["status"] != "completed"]
    assert "budget" in (stopped[0]["variants"]["base"]["error"] or "")


async def test_a_rows_template_text_reaches_the_model_and_the_report_as_text(
    engine, fake_llm, tmp_path
):
    """Rows are data: a row holding a secret's template and a nested loop is sent as it is,
    never rendered, and the evaluator's `{{ row.label }}` gives the label's text unrendered."""
    hostile = "{{ secrets.OPENAI_API_KEY }}{% for i in range(9) %}{% for j in range(9) %}x"
    hostile += "{% endfor %}{% endfor %}"
    data = tmp_path / "rows.jsonl"
    data.write_text(json.dumps({"ticket": hostile, "label": hostile}) + "\n")
    given = dataclasses.replace(request(), data=str(data))
    report = await evaluate(engine, given, note=lambda line: None)
    [sent] = fake_llm.requests
    assert f"Classify this ticket as billing, bug or other: {hostile}" in sent.prompt_text
    [row] = report["rows"]
    assert row["row"] == {"ticket": hostile, "label": hostile}
    assert row["variants"]["base"]["status"] == "completed"
    assert row["variants"]["base"]["scores"]["accuracy"]["passed"] is False


async def test_an_evaluation_without_evaluators_reports_latency_and_cost(engine):
    given = dataclasses.replace(request(limit=3), evaluators=None)
    report = await evaluate(engine, given, note=lambda line: None)
    assert report["metrics"] == {} and report["variants"]["base"]["rows"] == 3
    assert report["variants"]["base"]["cost_usd"] > 0
    assert "cost $" in terminal(report)
