"""What `starter.py eval` refuses before anything starts or is paid: a malformed data line,
a missing column, a value of the wrong type, a bad evaluator file; each one located line.
And the comparisons that score a row, without a server."""

# ruff: noqa: E501  (tables of inputs and the one line each gives)
from __future__ import annotations

from pathlib import Path

import pytest

from engine.evals.evaluators import (
    Contains,
    ExactMatch,
    JsonMatch,
    Numeric,
    Regex,
    compare,
)
from starter import main
from tests.conftest import ROOT

CLASSIFY = str(ROOT / "tests" / "evals" / "classify.yaml")
TICKETS = str(ROOT / "tests" / "evals" / "tickets.jsonl")

REFUSED = [
    ("rows.jsonl", '{"ticket": "a"}\n{"ticket": "b", label\n', [], "rows.jsonl:2:17: not JSON"),
    ("rows.jsonl", '{"ticket": "a"}\n{"ticket": 3}\n', [], "rows.jsonl:2:1: variable 'ticket' must be of type string, got 3"),
    ("rows.jsonl", '{"ticket": "a"}\n{"label": "b"}\n', [], "rows.jsonl:2:1: no 'ticket' in this row"),
    ("rows.csv", "text,label\nhi,x\n", [], "rows.csv:1:1: no column 'ticket' for variable 'ticket' (or --map ticket=COLUMN); the columns: label, text"),
    ("rows.csv", 'ticket,label\nhi,x\n"open,y,z\n', [], "rows.csv:3:1: this line's cells do not match the header"),
    ("rows.json", '{"ticket": "a"}', [], "rows.json:1:1: a JSON dataset is a list of objects"),
    ("rows.csv", "text,label\nhi,x\n", ["--map", "ticket=text", "--variant", "x:temp=1"], "'temp' is not model or one of: var.ticket"),
    ("rows.csv", "ticket,label\nhi,x\n", ["--variant", "x:model=zzz"], "--variant 'x:model=zzz': cannot tell which provider serves model 'zzz'"),
    ("rows.csv", "ticket,label\nhi,x\n", ["--evaluators", str(ROOT / "tests" / "evals" / "evaluators.yaml"), "--fail-under", "acuracy=0.9"], "--fail-under acuracy: no such evaluator"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "text", "extra", "message"), REFUSED)
def test_bad_data_is_refused_in_one_located_line(tmp_path, capsys, name, text, extra, message):
    data = tmp_path / name
    data.write_text(text)
    assert main(["eval", CLASSIFY, "--data", str(data), *extra]) == 1
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error
    assert len(error.strip().splitlines()) == 1


EVALUATORS = [
    ('  - {name: a, type: exact_matc, expected: "x"}\n', "evaluators.yaml:2:21: unknown evaluator type 'exact_matc' — did you mean 'exact_match'?"),
    ('  - {name: a, type: contains, expectd: "x"}\n', "unknown key 'expectd'"),
    ('  - {name: a, type: contains, expected: x}\n  - {name: a, type: regex, expected: y}\n', "evaluators.yaml:3:12: a second evaluator named 'a'"),
    ('  - {name: a, type: workflow, definition: missing.yaml}\n', "no definition file 'missing.yaml'"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "message"), EVALUATORS)
def test_an_evaluator_file_is_checked_like_a_definition(tmp_path, capsys, body, message):
    path = tmp_path / "evaluators.yaml"
    path.write_text("evaluators:\n" + body)
    assert main(["eval", CLASSIFY, "--data", TICKETS, "--evaluators", str(path)]) == 1
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error


ROW = {"label": "Bug", "amount": "12.5", "pattern": "^b"}

COMPARISONS = [
    (ExactMatch(name="e", type="exact_match", expected="{{ row.label }}"), "Bug", True),
    (ExactMatch(name="e", type="exact_match", expected="{{ row.label }}"), "bug", False),
    (ExactMatch(name="e", type="exact_match", expected="{{ row.label }}", case_sensitive=False), " bug ", True),
    (Contains(name="e", type="contains", expected="{{ row.label }}"), "a Bug report", True),
    (Regex(name="e", type="regex", expected="{{ row.pattern }}"), "bug", True),
    (Regex(name="e", type="regex", expected="{{ row.pattern }}"), "a bug", False),
    (Numeric(name="e", type="numeric", expected="{{ row.amount }}", tolerance=0.1), 12.55, True),
    (Numeric(name="e", type="numeric", expected="{{ row.amount }}"), "twelve", False),
    (JsonMatch(name="e", type="json_match", expected={"label": "{{ row.label }}"}), {"label": "Bug", "x": 1}, True),
    (JsonMatch(name="e", type="json_match", expected={"label": "{{ row.label }}"}), '{"label": "bug"}', False),
]  # fmt: skip


@pytest.mark.parametrize(("evaluator", "actual", "passed"), COMPARISONS)
def test_each_comparison_scores_an_output_against_its_row(evaluator, actual, passed):
    score = compare(evaluator, actual, ROW)
    assert score.passed is passed and score.value == (1.0 if passed else 0.0)


def test_a_row_with_template_text_in_expected_is_compared_as_text():
    row = {"label": "{{ 6 * 7 }}"}
    evaluator = ExactMatch(name="e", type="exact_match", expected="{{ row.label }}")
    assert compare(evaluator, "{{ 6 * 7 }}", row).passed
    assert not compare(evaluator, "42", row).passed


def test_the_docs_evaluator_example_is_valid(tmp_path):
    from engine.evals.evaluators import load_evaluators

    text = (ROOT / "docs" / "evaluations.md").read_text()
    block = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "evaluators.yaml").write_text(block)
    (tmp_path / "label_check.yaml").write_text((ROOT / "tests/evals/label_check.yaml").read_text())
    names = [e.name for e in load_evaluators(tmp_path / "evaluators.yaml")]
    assert names == ["accuracy", "amount", "fields", "format", "helpful", "flow", "same_label"]


def test_a_child_run_gets_only_the_definitions_it_can_start():
    from tests.conftest import definition
    from workflows.step_types.child_workflow_run import needed_children

    def one(name: str, child: str | None = None) -> object:
        step = (
            f"{{id: c, type: workflow, definition: {child}}}"
            if child
            else "{id: s, type: set, values: {x: 1}}"
        )
        return definition(f"workflow:\n  name: {name}\n  steps:\n    - {step}\n")

    children = {"a.yaml": one("A", "b.yaml"), "b.yaml": one("B"), "shard.yaml": one("Shard")}
    assert set(needed_children(children["a.yaml"], children)) == {"b.yaml"}
    assert needed_children(children["b.yaml"], children) == {}


def test_the_progress_line_shows_rows_failures_tokens_cost_and_eta():
    from engine.evals.run import _progress_line
    from workflows.contracts import Usage

    usage = Usage(input_tokens=1200, output_tokens=300, cost_usd=0.0123)
    line = _progress_line((25, 2, usage), 100, 10.0)
    assert line == (
        "[######..................] 25/100 rows, 2 failed, 1,500 tokens, $0.0123, ETA 30s"
    )


def test_a_variants_fixed_variable_is_read_as_var_reads_it_and_checked(tmp_path):
    from engine.evals.command import EvalRequest, prepare
    from engine.settings import Settings
    from workflows.errors import UsageError

    text = (
        Path(CLASSIFY)
        .read_text()
        .replace("required: true}", "required: true}\n    tries: {type: integer, default: 1}")
    )
    (tmp_path / "d.yaml").write_text(text)
    variants = ["t:var.ticket={{ 3 }}", "q:var.ticket=[1", "n:var.tries=2"]
    given = EvalRequest(str(tmp_path / "d.yaml"), TICKETS, variants=variants, limit=1)
    [[_, templated, unclosed, numbered]] = prepare(given, Settings.from_env({})).variables
    assert templated["ticket"] == "{{ 3 }}" and unclosed["ticket"] == "[1"
    assert numbered["tries"] == 2
    wrong = EvalRequest(str(tmp_path / "d.yaml"), TICKETS, variants=["n:var.tries=two"])
    with pytest.raises(UsageError, match="tries must be of type integer, got 'two'"):
        prepare(wrong, Settings.from_env({}))
