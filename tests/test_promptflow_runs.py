"""Prompt flow runs (a run.yml, or `pf run create`'s flags) become the `starter.py eval`
command that does the same: the column mapping as `--map`, an evaluation run as a `workflow`
evaluator whose inputs are templates over `row` and `outputs`. Bad run files and flags are
refused with one located line each. No server, except the last test, which runs the printed
command's evaluation on the dev server."""

# ruff: noqa: E501  (tables of inputs and the one line each gives)
from __future__ import annotations

import dataclasses
import shlex
from pathlib import Path

import pytest

from engine.client import EngineClient
from engine.evals.command import EvalRequest, evaluate
from engine.evals.evaluators import WorkflowEvaluator, load_evaluators
from engine.promptflow.run_command import (
    eval_command,
    evaluators_yaml,
    row_definition_yaml,
)
from engine.promptflow.run_spec import VariantChoice, load_run_file, parse_flags
from engine.settings import Settings
from starter import build_parser
from tests.conftest import ROOT, new_worker
from tests.fake_llm import Request
from workflows.errors import DefinitionError, UsageError
from workflows.templates import render
from workflows.validation import load_definition

FLOWS = ROOT / "tests" / "promptflow_flows"
CLASSIFY, EVALUATION, VARIANTS = FLOWS / "classify", FLOWS / "evaluation", FLOWS / "variants"
SCORE = "{{ 1 if grade == 'Correct' else 0 }}"


def named(flow: Path, variant: VariantChoice | None) -> str:
    """Where these tests say the importer writes a flow's definition."""
    return f"{flow.name}.{variant.variant}.yaml" if variant else f"{flow.name}.yaml"


def test_a_batch_run_file_becomes_eval_with_its_column_mapping_as_map():
    command = eval_command(load_run_file(CLASSIFY / "run.yml"), named, cwd=CLASSIFY)
    assert command.argv == [
        "eval", "classify.yaml", "--data", "data.jsonl", "--map", "ticket=text", "--id", "classify_run",
    ]  # fmt: skip
    assert command.evaluation is None
    assert command.shell() == (
        "python starter.py eval classify.yaml --data data.jsonl --map ticket=text --id classify_run"
    )


def test_an_evaluation_run_evaluates_the_run_it_names_with_a_workflow_evaluator():
    spec = load_run_file(CLASSIFY / "eval_run.yml")
    assert spec.run is not None and spec.run.name == "classify_run"
    command = eval_command(spec, named, cwd=CLASSIFY)
    assert command.argv == [
        "eval", "classify.yaml", "--data", "data.jsonl", "--map", "ticket=text",
        "--evaluators", "evaluation.evaluators.yaml", "--id", "classify_eval",
    ]  # fmt: skip
    evaluation = command.evaluation
    assert evaluation is not None and evaluation.flow == EVALUATION
    assert evaluation.variables == {
        "groundtruth": "{{ row.answer }}",
        "prediction": "{{ outputs.category }}",
    }
    seen = render(
        evaluation.variables,
        {"row": {"text": "t", "answer": "bug"}, "outputs": {"category": "other"}},
    )
    assert seen == {"groundtruth": "bug", "prediction": "other"}


@pytest.mark.parametrize(
    ("run_file", "flags"),
    [
        ("run.yml", ["--flow", ".", "--data", "data.jsonl", "--column-mapping", "ticket=${data.text}", "--name", "classify_run"]),
        ("eval_run.yml", [
            "--flow", "../evaluation", "--data", "data.jsonl", "--run", "classify_run", "--stream",
            "--column-mapping", "groundtruth=${data.answer}", "prediction=${run.outputs.category}", "--name", "classify_eval",
        ]),
        ("eval_run.yml", ["-f", "eval_run.yml"]),
    ],
    ids=["batch", "evaluation", "file-flag"],
)  # fmt: skip
def test_pf_run_create_flags_give_the_same_command_as_the_run_file(run_file, flags):
    from_file = eval_command(load_run_file(CLASSIFY / run_file), named, cwd=CLASSIFY)
    from_flags = eval_command(parse_flags(flags, cwd=CLASSIFY), named, cwd=CLASSIFY)
    assert from_flags == from_file


def test_flags_override_the_run_file_they_name():
    spec = parse_flags(
        ["-f", "run.yml", "--column-mapping", "ticket=${data.answer}", "--name", "again"],
        cwd=CLASSIFY,
    )
    assert eval_command(spec, named, cwd=CLASSIFY).argv[4:] == [
        "--map",
        "ticket=answer",
        "--id",
        "again",
    ]


def test_same_names_need_no_map_and_paths_are_shown_from_where_the_command_runs():
    spec = parse_flags(
        [
            "--flow",
            "classify",
            "--data",
            "classify/data.jsonl",
            "--column-mapping",
            "text=${data.text}",
        ],
        cwd=FLOWS,
    )
    assert eval_command(spec, named, cwd=FLOWS).argv == [
        "eval",
        "classify.yaml",
        "--data",
        "classify/data.jsonl",
    ]
    assert (
        eval_command(spec, named, cwd=ROOT).argv[3] == "tests/promptflow_flows/classify/data.jsonl"
    )


def test_a_variant_chooses_the_definition_that_runs():
    spec = load_run_file(VARIANTS / "run.yml")
    assert spec.variant == VariantChoice(node="answer", variant="variant_1")
    assert str(spec.variant) == "${answer.variant_1}"
    assert eval_command(spec, named, cwd=VARIANTS).argv[:2] == ["eval", "variants.variant_1.yaml"]
    flagged = parse_flags(
        ["--flow", ".", "--data", "data.jsonl", "--variant", "${answer.variant_0}"], cwd=VARIANTS
    )
    assert eval_command(flagged, named, cwd=VARIANTS).argv[1] == "variants.variant_0.yaml"


def test_an_evaluation_reads_the_evaluated_runs_inputs_odd_columns_and_fixed_texts_as_data(
    tmp_path,
):
    spec = parse_flags(
        ["--flow", str(EVALUATION), "--run", str(CLASSIFY / "run.yml"), "--column-mapping",
         "groundtruth=${data.the label}", "prediction=${run.inputs.ticket}", "note={{ secrets.X }}"],
        cwd=tmp_path,
    )  # fmt: skip
    command = eval_command(spec, named, cwd=tmp_path)
    assert command.evaluation is not None
    assert command.evaluation.variables == {
        "groundtruth": '{{ row["the label"] }}',
        "prediction": "{{ row.text }}",  # the column that fed `ticket` in the evaluated run
        "note": '{{ "{{ secrets.X }}" }}',  # a fixed text stays text
    }
    seen = render(
        command.evaluation.variables, {"row": {"the label": "a", "text": "b"}, "outputs": {}}
    )
    assert seen == {"groundtruth": "a", "prediction": "b", "note": "{{ secrets.X }}"}


def test_environment_variables_are_set_for_the_command_quoted_for_the_shell():
    spec = parse_flags(
        ["-f", "run.yml", "--environment-variables", "TONE=very polite", "RETRIES=2"], cwd=CLASSIFY
    )
    command = eval_command(spec, named, cwd=CLASSIFY)
    assert command.environment == {"TONE": "very polite", "RETRIES": "2"}
    assert shlex.split(command.shell("llm-workflows")) == [
        "TONE=very polite",
        "RETRIES=2",
        "llm-workflows",
        *command.argv,
    ]


def test_the_evaluator_files_pass_our_own_checks_and_map_the_evaluation_flows_inputs(tmp_path):
    command = eval_command(load_run_file(CLASSIFY / "eval_run.yml"), named, cwd=tmp_path)
    assert command.evaluation is not None
    (tmp_path / "evaluation.evaluators.yaml").write_text(
        evaluators_yaml(command.evaluation, "evaluation.row.yaml")
    )
    row = row_definition_yaml(command.evaluation, "evaluation.yaml", ["grade"], SCORE)
    (tmp_path / "evaluation.row.yaml").write_text(row)
    [evaluator] = load_evaluators(tmp_path / "evaluation.evaluators.yaml")
    assert isinstance(evaluator, WorkflowEvaluator) and evaluator.name == "evaluation"
    definition = load_definition(row, "evaluation.row.yaml")
    assert set(definition.workflow.variables) == {"row", "outputs"}
    [step] = definition.workflow.steps
    assert step.model_dump()["variables"] == command.evaluation.variables


GOOD = "flow: flow\ndata: data.jsonl\n"
REFUSED_FILES = [
    (GOOD + "colum_mapping: {x: '${data.x}'}\n", "run.yml:3:1: unknown key 'colum_mapping' — did you mean 'column_mapping'?"),
    (GOOD + "column_mapping:\n  x: ${dat.x}\n", "run.yml:4:6: '${dat.x}': write ${data.COLUMN}, ${run.outputs.NAME} or ${run.inputs.NAME}"),
    (GOOD + "column_mapping:\n  x: ${run.outputs.y}\n", "run.yml:4:6: ${run.outputs.y} needs `run:`, the run evaluated"),
    (GOOD + "column_mapping:\n  x: hello\n", "run.yml:4:6: a fixed value for every line: `eval` takes each input from the data; add a column, or give the flow's input 'x' that default"),
    (GOOD + "column_mapping: [x]\n", "run.yml:3:17: a mapping INPUT: ${data.COLUMN}"),
    ("flow: nowhere\ndata: data.jsonl\n", "run.yml:1:7: no flow folder 'nowhere'"),
    ("flow: .\ndata: data.jsonl\n", "run.yml:1:7: no flow.dag.yaml in '.'"),
    ("flow: flow\ndata: missing.jsonl\n", "run.yml:2:7: no data file 'missing.jsonl'"),
    ("flow: flow\ndata: azureml:tickets:1\n", "run.yml:2:7: 'azureml:tickets:1' is remote: download it and give the local file"),
    ("flow: flow\n", "run.yml:1:1: a run needs `data:`, the lines it runs on"),
    ("data: data.jsonl\n", "run.yml:1:1: a run needs `flow:`, the flow's folder"),
    (GOOD + "variant: variant_1\n", "run.yml:3:10: 'variant_1': write ${NODE.VARIANT_ID}, as ${answer.variant_1}"),
    (GOOD + "run: yesterday\n", "run.yml:3:6: no run 'yesterday': name its run file, or one beside this with `name: yesterday`"),
    ("flow: flow\ndata: other.jsonl\nrun: base\n", "run.yml:2:7: the lines are those of the run evaluated (data.jsonl): give it or none"),
    (GOOD + "connections:\n  sort: {connection: azure}\n", "run.yml:3:1: connections: give the import `--model-map DEPLOYMENT=MODEL` instead"),
    (GOOD + "environment_variables:\n  KEY: ${open_ai.api_key}\n", "run.yml:4:8: a connection's key: declare it as a secret on the worker (SECRET_NAME)"),
    (GOOD + "column_mapping: {x: '${data.x}'\n", "run.yml:4:1: YAML syntax error"),
    ("- flow\n", "run.yml:1:1: a run file is a mapping: flow, data, column_mapping, ..."),
]  # fmt: skip


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A flow folder, its data, another dataset, and a batch run named `base`."""
    (tmp_path / "flow").mkdir()
    (tmp_path / "flow" / "flow.dag.yaml").write_text("inputs: {}\nnodes: []\n")
    (tmp_path / "data.jsonl").write_text('{"x": 1}\n')
    (tmp_path / "other.jsonl").write_text('{"x": 2}\n')
    (tmp_path / "base.yml").write_text("name: base\nflow: flow\ndata: data.jsonl\n")
    return tmp_path


@pytest.mark.parametrize(("text", "message"), REFUSED_FILES)
def test_a_bad_run_file_is_refused_in_one_located_line(folder, text, message):
    (folder / "run.yml").write_text(text)
    with pytest.raises(DefinitionError) as refused:
        load_run_file(folder / "run.yml")
    [problem] = refused.value.problems
    assert str(problem).replace(f"{folder}/", "").startswith(message)


def test_every_problem_of_a_run_file_is_listed_at_once(folder):
    (folder / "run.yml").write_text("flow: nowhere\ndata: missing.jsonl\nvariant: v1\n")
    with pytest.raises(DefinitionError) as refused:
        load_run_file(folder / "run.yml")
    assert [(p.line, p.col) for p in refused.value.problems] == [(1, 7), (2, 7), (3, 10)]


def test_an_evaluated_run_that_evaluates_a_run_itself_is_refused_where_it_says_so(folder):
    (folder / "base.yml").write_text("name: base\nflow: flow\ndata: data.jsonl\nrun: base\n")
    (folder / "run.yml").write_text("flow: flow\nrun: base\n")
    with pytest.raises(DefinitionError) as refused:
        load_run_file(folder / "run.yml")
    assert str(refused.value).endswith(
        "base.yml:4:6: a run that another run evaluates cannot evaluate a run itself"
    )


REFUSED_FLAGS = [
    (["--flow", "flow", "--data", "data.jsonl", "--column-mapping", "x"], "--column-mapping 'x': write INPUT='${data.COLUMN}'"),
    (["--flow", "flow", "--data", "data.jsonl", "--column-mapping", "x=${run.outputs.y}"], "--column-mapping x: ${run.outputs.y} needs `run:`, the run evaluated"),
    (["--flow", "flow", "--data", "nope.jsonl"], "--data: no data file"),
    (["--flow", "flow", "--data", "data.jsonl", "--run", "nobody"], "--run: no run 'nobody'"),
    (["--flow", "flow", "--data", "data.jsonl", "--variant", "v1"], "--variant: 'v1': write ${NODE.VARIANT_ID}"),
    (["--flow", "flow", "--data", "data.jsonl", "--connections", "a.connection=b"], "--connections: give the import `--model-map DEPLOYMENT=MODEL` instead"),
    (["--flow", "flow", "--data", "data.jsonl", "--set", "a=b"], "pf run create flags: unrecognized arguments: --set a=b"),
    (["--data", "data.jsonl"], "give --flow DIR (or -f run.yml): the flow the run runs"),
]  # fmt: skip


@pytest.mark.parametrize(("flags", "message"), REFUSED_FLAGS)
def test_bad_flags_are_refused_naming_the_flag(folder, flags, message):
    with pytest.raises(UsageError) as refused:
        parse_flags(flags, cwd=folder)
    assert str(refused.value).startswith(message) and "\n" not in str(refused.value)


def test_a_flag_over_a_run_file_is_blamed_as_a_flag_the_file_at_its_line(folder):
    (folder / "run.yml").write_text("flow: flow\ndata: data.jsonl\nvariant: v1\n")
    with pytest.raises(UsageError) as refused:
        parse_flags(["-f", "run.yml", "--data", "nope.jsonl"], cwd=folder)
    assert str(refused.value).replace(f"{folder}/", "").splitlines() == [
        "--data: no data file 'nope.jsonl'",
        "run.yml:3:10: 'v1': write ${NODE.VARIANT_ID}, as ${answer.variant_1}",
    ]


def sorted_tickets(request: Request) -> str:
    """The model the classify flow calls: right on five of the six tickets (it misses the
    lost attachments, a bug)."""
    text = request.prompt_text.lower()
    return (
        "Billing."
        if "charged" in text or "invoice" in text
        else "bug"
        if "crash" in text
        else "other"
    )


CLASSIFY_STAND_IN = """\
workflow:
  name: Classify
  description: "What the import of tests/promptflow_flows/classify gives, written by hand."
  variables:
    ticket: {type: string, required: true}
  defaults: {model: gpt-4o-mini, max_tokens: 10, timeout: "3s", retry: {initial_interval: "100ms"}}
  steps:
    - id: sort_ticket
      type: llm_call
      system: "Answer with one word: billing, bug or other."
      prompt: "Ticket: {{ ticket }}"
    - id: normalize
      type: set
      values:
        category: "{% set w = steps.sort_ticket.outputs.text | trim | lower | replace('.', '') %}{{ w if w in ['billing', 'bug', 'other'] else 'other' }}"
  outputs:
    category: "{{ category }}"
"""
EVALUATION_STAND_IN = """\
workflow:
  name: Evaluation
  description: "What the import of tests/promptflow_flows/evaluation gives, written by hand."
  variables:
    groundtruth: {type: string, default: billing}
    prediction: {type: string, default: billing}
  steps:
    - id: grade_line
      type: set
      values:
        grade: "{{ 'Correct' if groundtruth | lower == prediction | lower else 'Incorrect' }}"
"""


async def test_the_printed_eval_command_runs_the_evaluation_flow_on_every_row(
    client, fake_llm, endpoints, tmp_path
):
    fake_llm.reply = sorted_tickets
    (tmp_path / "classify.yaml").write_text(CLASSIFY_STAND_IN)
    (tmp_path / "evaluation.yaml").write_text(EVALUATION_STAND_IN)
    command = eval_command(load_run_file(CLASSIFY / "eval_run.yml"), named, cwd=tmp_path)
    assert command.evaluation is not None
    (tmp_path / "evaluation.evaluators.yaml").write_text(
        evaluators_yaml(command.evaluation, "evaluation.row.yaml")
    )
    (tmp_path / "evaluation.row.yaml").write_text(
        row_definition_yaml(command.evaluation, "evaluation.yaml", ["grade"], SCORE)
    )
    args = build_parser().parse_args(command.argv)  # the command as starter.py reads it
    maps = dict(pair.split("=", 1) for pair in args.map)
    request = EvalRequest(
        str(tmp_path / args.definition), str(tmp_path / args.data), str(tmp_path / args.evaluators), maps,
        execution_id=f"{args.id}-{tmp_path.name}",
    )  # fmt: skip
    async with new_worker(client, endpoints, definitions_dir=tmp_path) as worker:
        settings = dataclasses.replace(
            Settings.from_env({}),
            address=client.service_client.config.target_host,
            task_queue=worker.task_queue,
            dev_dir=tmp_path / "dev",
        )
        engine = EngineClient(client, settings, start_worker=False)
        report = await evaluate(engine, request, note=lambda line: None)
    assert report["metrics"]["evaluation"]["mean"] == pytest.approx(5 / 6)
    scores = [r["variants"]["base"]["scores"]["evaluation"]["score"] for r in report["rows"]]
    assert scores == [1.0, 1.0, 1.0, 1.0, 0.0, 1.0]
    assert len(fake_llm.requests) == 6
