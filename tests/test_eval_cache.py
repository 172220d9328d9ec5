"""Re-running an evaluation reuses what an earlier one finished: a row run with the same
definition, variables, model and answering provider, and an in-run evaluator's verdict on it
when the evaluator is the same. The report says how much came from earlier evaluations and
what that saved; `cache=False` (`--no-cache`) runs everything again."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from engine.evals.cache import answering, definition_key
from engine.evals.command import EvalRequest, evaluate
from engine.evals.output import html_page, terminal
from engine.settings import Settings
from tests.conftest import ROOT
from tests.fake_llm import Fault, Request
from tests.test_evals import engine, keyword_label  # noqa: F401 (the engine fixture)

JUDGE = """
evaluators:
  - name: accuracy
    type: exact_match
    output: category
    expected: "{{ row.label }}"
  - name: helpful
    type: llm_judge
    model: claude-haiku-4-5
    rubric: "RUBRIC"
    scale: [1, 5]
"""


def judged(request: Request) -> str:
    if "rubric" not in request.prompt_text.lower():
        return keyword_label(request)
    return json.dumps({"score": 4, "reasons": "names a team"})


def given(folder: Path, rubric: str = "The category names the team that must act.", **more):
    """Six rows no other test evaluates (their text names this test's folder)."""
    rows = [
        {"ticket": f"I want a refund ({folder.name} #{i})", "label": "billing"} for i in range(3)
    ] + [{"ticket": f"The app crashes ({folder.name} #{i})", "label": "bug"} for i in range(3)]
    data = folder / "rows.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    evaluators = folder / f"evaluators-{abs(hash(rubric))}.yaml"
    evaluators.write_text(JUDGE.replace("RUBRIC", rubric))
    classify = str(ROOT / "tests" / "evals" / "classify.yaml")
    return EvalRequest(classify, str(data), str(evaluators), concurrency=3, **more)


async def evaluated(engine, request):  # noqa: F811
    return await evaluate(engine, request, note=lambda line: None)


async def test_a_second_evaluation_pays_for_nothing_and_says_what_it_saved(
    engine,  # noqa: F811
    fake_llm,
    tmp_path,
):
    fake_llm.reply = judged
    first = await evaluated(engine, given(tmp_path))
    assert first["cache"] == {"rows": 0, "verdicts": 0, "from": [], "saved_usd": 0,
                              "saved_tokens": 0}  # fmt: skip
    before = len(fake_llm.requests)
    second = await evaluated(engine, given(tmp_path))
    assert len(fake_llm.requests) == before
    assert second["cache"]["rows"] == 6 and second["cache"]["verdicts"] == 6
    assert second["cache"]["from"] == [first["id"]]
    assert first["usage"]["cost_usd"] > 0
    assert second["cache"]["saved_usd"] == pytest.approx(first["usage"]["cost_usd"])
    assert second["usage"]["cost_usd"] == 0
    assert second["metrics"] == first["metrics"]
    row = second["rows"][4]["variants"]["base"]
    assert row["outputs"] == first["rows"][4]["variants"]["base"]["outputs"]
    assert row["reused_from"] == first["rows"][4]["variants"]["base"]["run"]
    assert row["usage"] == first["rows"][4]["variants"]["base"]["usage"]
    assert second["variants"]["base"]["cost_usd"] == first["variants"]["base"]["cost_usd"]
    said = "reused from earlier evaluations: 6 row runs and 6 verdicts, saving $"
    assert said in terminal(second) and said not in terminal(first)
    assert "Reused from earlier evaluations: 6 row runs" in html_page(second)


async def test_changing_one_evaluator_pays_for_that_evaluator_only(
    engine,  # noqa: F811
    fake_llm,
    tmp_path,
):
    fake_llm.reply = judged
    await evaluated(engine, given(tmp_path))
    before = len(fake_llm.requests)
    changed = await evaluated(engine, given(tmp_path, rubric="A stricter rubric."))
    made = fake_llm.requests[before:]
    assert len(made) == 6 and all("stricter" in r.prompt_text for r in made)
    assert changed["cache"]["rows"] == 6 and changed["cache"]["verdicts"] == 0
    assert changed["metrics"]["helpful"]["mean"] == 4.0
    before = len(fake_llm.requests)
    again = await evaluated(engine, given(tmp_path, rubric="A stricter rubric.", cache=False))
    assert len(fake_llm.requests) - before == 12
    assert again["cache"]["rows"] == 0


async def test_a_corrected_label_is_judged_again_on_the_reused_run(
    engine,  # noqa: F811
    fake_llm,
    tmp_path,
):
    """An evaluator sees the whole row: its verdict on the row as it was is not reused."""
    fake_llm.reply = judged
    first = given(tmp_path)
    await evaluated(engine, first)
    data = Path(first.data)
    data.write_text(data.read_text().replace('"bug"', '"other"'))
    before = len(fake_llm.requests)
    second = await evaluated(engine, first)
    made = fake_llm.requests[before:]
    assert len(made) == 3 and all('"other"' in r.prompt_text for r in made)
    assert second["cache"]["rows"] == 6 and second["cache"]["verdicts"] == 3
    assert second["metrics"]["accuracy"]["mean"] == 0.5


async def test_a_row_that_failed_is_run_again_and_the_others_are_not(
    engine,  # noqa: F811
    fake_llm,
    tmp_path,
):
    fake_llm.reply = judged
    fake_llm.fault_for = lambda r: Fault(400, "bad row") if "#1)" in r.prompt_text else None
    try:
        first = await evaluated(engine, given(tmp_path))
    finally:
        fake_llm.fault_for = lambda request: None
    assert [r["variants"]["base"]["status"] for r in first["rows"]].count("failed") == 2
    before = len(fake_llm.requests)
    second = await evaluated(engine, given(tmp_path))
    assert len(fake_llm.requests) - before == 4  # two rows, each with its verdict
    assert second["cache"]["rows"] == 4
    assert all(r["variants"]["base"]["status"] == "completed" for r in second["rows"])


def test_the_key_follows_what_is_run_not_how_it_is_written():
    from engine.definition_files import load_yaml

    settings = Settings.from_env({})
    text = (ROOT / "tests" / "evals" / "classify.yaml").read_text()

    def key(source: str, given: Settings = settings) -> str:
        loaded = load_yaml(source, given)
        return definition_key(loaded, answering(loaded, given))

    assert key(text) == key("# a comment\n" + text)
    assert key(text) != key(text.replace("gpt-4o-mini", "gpt-4o"))
    assert key(text) != key(text.replace("Classify this", "Label this"))
    keyed = dataclasses.replace(Settings.from_env({"OPENAI_API_KEY": "sk-x"}))
    assert key(text) != key(text, keyed)  # the mock's replies are never a model's
    assert "sk-x" not in "".join(answering(load_yaml(text, keyed), keyed))


def test_a_judges_key_follows_who_answers_it_so_a_mocks_verdict_is_never_a_models():
    from engine.definition_files import load_yaml
    from engine.evals.cache import evaluator_key
    from engine.evals.evaluators import LlmJudge, WorkflowEvaluator

    judge = LlmJudge(name="h", type="llm_judge", model="claude-haiku-4-5", rubric="R")
    flow = WorkflowEvaluator(name="f", type="workflow", definition="flow.yaml")
    text = (ROOT / "tests" / "evals" / "classify.yaml").read_text()
    offline, keyed = Settings.from_env({}), Settings.from_env({"ANTHROPIC_API_KEY": "sk-a"})
    assert evaluator_key(judge, None, {}, offline) != evaluator_key(judge, None, {}, keyed)
    openai = Settings.from_env({"OPENAI_API_KEY": "sk-o"})
    flows = [evaluator_key(flow, load_yaml(text, s), {}, s) for s in (offline, openai)]
    assert flows[0] != flows[1]


def test_changing_a_custom_actions_code_changes_the_key_of_the_rows_that_call_it(
    tmp_path, monkeypatch
):
    from engine.definition_files import load_yaml
    from engine.evals.cache import variant_key

    tool = """from pydantic import BaseModel
from activities.registry import action
class P(BaseModel):
    text: str
@action("shout", P)
def shout(params, request):
    return params.text.upper()  # VERSION
"""
    for version in ("one", "two"):
        (tmp_path / f"tools_{version}.py").write_text(tool.replace("VERSION", version))
    monkeypatch.syspath_prepend(str(tmp_path))
    text = """workflow:
  name: Shout
  variables: {ticket: {type: string}}
  steps:
    - {id: s, type: action, action: shout, params: {text: "{{ ticket }}"}, outputs: [loud]}
"""
    keys = []
    for version in ("one", "two"):
        settings = dataclasses.replace(Settings.from_env({}), action_modules=(f"tools_{version}",))
        keys.append(variant_key(load_yaml(text, settings), settings))
    assert keys[0] != keys[1]
    builtin = (ROOT / "tests" / "evals" / "classify.yaml").read_text()  # no custom action
    settings = Settings.from_env({})
    loaded = load_yaml(builtin, settings)
    assert variant_key(loaded, settings) == definition_key(loaded, answering(loaded, settings))


async def test_reused_outputs_and_verdicts_holding_templates_arrive_as_text(
    engine,  # noqa: F811
    fake_llm,
    tmp_path,
):
    """A reused row's outputs and its verdict's reasons are copied into the new evaluation
    through `set` steps: text that looks like a template stays text, never rendered."""
    hostile = "{{ secrets.OPENAI_API_KEY }}{% for i in range(9) %}{% for j in range(9) %}x"
    hostile += "{% endfor %}{% endfor %}"

    def reply(request: Request) -> str:
        if "rubric" in request.prompt_text.lower():
            return json.dumps({"score": 3, "reasons": hostile})
        return hostile

    fake_llm.reply = reply
    first = await evaluated(engine, given(tmp_path))
    before = len(fake_llm.requests)
    second = await evaluated(engine, given(tmp_path))
    assert len(fake_llm.requests) == before and second["cache"]["rows"] == 6
    for report in (first, second):
        base = report["rows"][0]["variants"]["base"]
        assert base["outputs"] == {"category": hostile}
        assert base["scores"]["helpful"]["detail"] == hostile
