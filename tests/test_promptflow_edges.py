"""The Prompt flow importer on flows at the edges: names a template reads as something else,
fields a value's methods shadow, nodes that were bypassed, prompts as editors save them,
files outside the flow's folder, and outputs that would overwrite the flow. Each imports and
runs as Prompt flow would run it, or is refused with one located line and nothing written."""

from __future__ import annotations

import ast
import asyncio
import shutil
import textwrap
import uuid
from pathlib import Path

import pytest
import yaml

from activities.registry import load_custom_actions, params_models
from starter import main
from tests.conftest import new_worker
from workflows.contracts import RunInput
from workflows.interpreter import YamlWorkflow
from workflows.validation import load_definition


def write_flow(folder: Path, files: dict[str, str | bytes]) -> Path:
    folder.mkdir(parents=True)
    for name, text in files.items():
        path = folder / name
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(textwrap.dedent(text))
    return folder


def import_cli(folder: Path, *extra: str) -> int:
    return main(["import", "promptflow", str(folder), *extra])


RETURNS = {
    "flow.dag.yaml": """
        inputs:
          tags: {type: list, default: [a, b]}
          deep: {type: bool, default: false}
        outputs:
          items: {type: list, reference: "${none.output.items}"}
          count: {type: int, reference: "${none.output.meta.count}"}
          deep_count: {type: int, reference: "${deep.output.meta.count}"}
          nothing: {type: string, reference: "${nothing.output}"}
          said: {type: string, reference: "${say.output}"}
        nodes:
        - name: none
          type: python
          source: {type: code, path: tools.py, function: shape}
          inputs: {tags: "${inputs.tags}"}
        - name: deep
          type: python
          source: {type: code, path: tools.py, function: shape}
          inputs: {tags: "${inputs.tags}"}
          activate: {when: "${inputs.deep}", is: true}
        - name: nothing
          type: python
          source: {type: code, path: tools.py, function: nothing}
        - name: say
          type: prompt
          source: {type: code, path: say.jinja2}
          inputs: {first: "${none.output.items}", count: "${deep.output.meta.count}"}
    """,
    "tools.py": """
        from promptflow.core import tool

        @tool
        def shape(tags: list) -> dict:
            return {"items": [t.upper() for t in tags], "meta": {"count": len(tags)}}

        @tool
        def nothing() -> None:
            return None
    """,
    "say.jinja2": "{{ first | join(',') }} / {{ count }}",
}


async def test_outputs_read_fields_as_prompt_flow_does(client, endpoints, tmp_path, monkeypatch):
    """A node named `none`, a field named `items` (dict.items to a template), a field of a
    bypassed node (null, as in Prompt flow, not a failed run) and a tool returning None."""
    folder = write_flow(tmp_path / "shapes", RETURNS)
    target = tmp_path / "shapes.yaml"
    assert await asyncio.to_thread(import_cli, folder, "-o", str(target)) == 0
    monkeypatch.syspath_prepend(str(tmp_path))
    actions = load_custom_actions(["shapes_tools"])
    definition = load_definition(target.read_text(), str(target), params_models(actions))
    async with new_worker(client, endpoints, actions=actions) as worker:
        result = await client.execute_workflow(
            YamlWorkflow.run,
            RunInput(definition=definition),
            id=f"pf-{uuid.uuid4()}",
            task_queue=worker.task_queue,
        )
    assert result.steps["deep"].status == "skipped"
    assert {key: result.outputs[key] for key in ("items", "count", "deep_count", "nothing")} == {
        "items": ["A", "B"],
        "count": 2,
        "deep_count": None,
        "nothing": None,
    }
    assert result.outputs["said"] == "A,B / None"


def test_names_a_template_reads_otherwise_are_renamed_ascii_and_short(tmp_path, capsys):
    dag = """
        inputs:
          none: {type: string, default: x}
          range: {type: string, default: y}
        outputs:
          o: {type: string, reference: "${not.output}"}
        nodes:
        - name: not
          type: prompt
          source: {type: code, path: p.jinja2}
          inputs: {x: "${inputs.none}"}
        - name: naïve-%s
          type: prompt
          source: {type: code, path: p.jinja2}
          inputs: {x: "${inputs.range}"}
    """ % ("n" * 200)
    folder = write_flow(tmp_path / "names", {"flow.dag.yaml": dag, "p.jinja2": "{{ x }}"})
    assert import_cli(folder) == 0, capsys.readouterr().err
    workflow = yaml.safe_load((tmp_path / "names.yaml").read_text())["workflow"]
    assert set(workflow["variables"]) == {"none_2", "range_2"}
    assert workflow["outputs"] == {"o": "{{ not_output }}"}
    second = workflow["steps"][1]
    assert second["id"] == "na_ve_" + "n" * 58 and len(second["id"]) == 64


def test_prompts_and_tools_saved_with_a_byte_order_mark_and_windows_line_ends_import(tmp_path):
    dag = """
        inputs:
          question: {type: string, default: hi}
        nodes:
        - name: ask
          type: llm
          source: {type: code, path: ask.jinja2}
          inputs: {deployment_name: gpt-4o, question: "${inputs.question}"}
        - name: tidy
          type: python
          source: {type: code, path: tidy.py}
          inputs: {text: "${ask.output}"}
    """
    folder = write_flow(
        tmp_path / "saved",
        {
            "flow.dag.yaml": textwrap.dedent(dag).replace("\n", "\r\n").encode("utf-8-sig"),
            "ask.jinja2": b"\xef\xbb\xbf# system:\r\nBe brief.\r\n# user:\r\n{{ question }}\r\n",
            "tidy.py": "\ufefffrom promptflow.core import tool\r\n\r\n@tool\r\n"
            "def tidy(text: str) -> str:\r\n    return text.strip()\r\n".encode(),
        },
    )
    assert import_cli(folder) == 0
    ask = yaml.safe_load((tmp_path / "saved.yaml").read_text())["workflow"]["steps"][0]
    assert (ask["system"], ask["prompt"]) == ("Be brief.", "{{ question }}")


def test_a_node_file_outside_the_flow_folder_is_refused_and_nothing_is_written(
    tmp_path, capsys, monkeypatch
):
    (tmp_path / "shared.py").write_text("from promptflow.core import tool\n@tool\ndef f(): ...\n")
    dag = """
        nodes:
        - name: up
          type: python
          source: {type: code, path: ../shared.py}
        - name: absolute
          type: python
          source: {type: code, path: %s}
    """ % (tmp_path / "shared.py")
    write_flow(tmp_path / "flow", {"flow.dag.yaml": dag})
    (tmp_path / "flow" / "link.py").symlink_to(tmp_path / "shared.py")
    (tmp_path / "flow" / "flow.dag.yaml").write_text(
        textwrap.dedent(dag) + "- {name: link, type: python, source: {type: code, path: link.py}}\n"
    )
    monkeypatch.chdir(tmp_path)
    assert import_cli(Path("flow")) == 1
    err = capsys.readouterr().err.splitlines()
    outside = "is outside the flow's folder: copy it in (a node's file must be in it)"
    assert err == [
        f"flow/flow.dag.yaml:5:30: '../shared.py' {outside}",
        f"flow/flow.dag.yaml:8:30: {str(tmp_path / 'shared.py')!r} {outside}",
        f"flow/flow.dag.yaml:9:57: 'link.py' {outside}",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flow", "shared.py"]


HISTORY_DAG = """
    inputs:
      history: {type: list, is_chat_history: true, default: []}
      question: {type: string, is_chat_input: true, default: And now?}
    outputs:
      answer: {type: string, reference: "${chat.output}"}
    nodes:
    - name: chat
      type: llm
      source: {type: code, path: chat.jinja2}
      inputs:
        deployment_name: gpt-4o
        chat_history: ${inputs.history}
        question: ${inputs.question}
"""


async def test_a_history_loop_with_a_filter_and_loop_index_runs_as_prompt_flow_renders_it(
    client, endpoints, fake_llm, tmp_path
):
    prompt = """
        # system:
        Be brief.
        {% for turn in chat_history[-2:] | reverse %}
        # user:
        ({{ loop.index }}/{{ loop.length }}) {{ turn.inputs.question }}
        # assistant:
        {{ turn.outputs.answer }}
        {% endfor %}
        # user:
        {{ question }}
    """
    folder = write_flow(tmp_path / "recent", {"flow.dag.yaml": HISTORY_DAG, "chat.jinja2": prompt})
    assert await asyncio.to_thread(import_cli, folder) == 0
    text = (tmp_path / "recent.yaml").read_text()
    assert "each: '{{ (history[-2:] | reverse) | list }}'" in text
    history = [{"inputs": {"question": f"q{n}"}, "outputs": {"answer": f"a{n}"}} for n in (1, 2, 3)]
    fake_llm.reply = lambda request: "ok"
    async with new_worker(client, endpoints) as worker:
        await client.execute_workflow(
            YamlWorkflow.run,
            RunInput(
                definition=load_definition(text, "recent.yaml"), variables={"history": history}
            ),
            id=f"pf-{uuid.uuid4()}",
            task_queue=worker.task_queue,
        )
    sent = [message["content"] for message in fake_llm.requests[0].body["messages"]]
    assert sent == ["Be brief.", "(1/2) q3", "a3", "(2/2) q2", "a2", "And now?"]


def test_a_loop_field_a_message_loop_lacks_is_a_located_limit(tmp_path, capsys):
    prompt = """\
        # system:
        Be brief.
        {% for turn in chat_history %}
        # user:
        {{ turn.inputs.question }}{% if not loop.last %} (earlier){% endif %}
        # assistant:
        {{ turn.outputs.answer }}
        {% endfor %}
        # user:
        {{ question }}
    """
    folder = write_flow(tmp_path / "last", {"flow.dag.yaml": HISTORY_DAG, "chat.jinja2": prompt})
    assert import_cli(folder) == 1
    assert capsys.readouterr().err.splitlines()[0] == (
        f"{folder}/chat.jinja2:4:1: loop.last in a loop of messages is not imported: "
        "loop.index, loop.index0, loop.length are"
    )


CLASSIFY = Path(__file__).parent / "promptflow_flows" / "classify"
OUTPUTS = {
    "a folder": ("out", "error: out is a folder: name the definition's file (-o FILE.yaml)"),
    "the flow": (
        "flow/flow.dag.yaml",
        "error: flow/flow.dag.yaml is a file the import reads: write the import elsewhere",
    ),
    "a tool": (
        "flow/normalize.py",
        "error: flow/normalize.py is a file the import reads: write the import elsewhere",
    ),
    "under a file": ("data/x.yaml", "error: cannot write data/x.yaml: "),
}


@pytest.mark.parametrize("case", sorted(OUTPUTS))
def test_an_output_it_cannot_or_must_not_write_is_one_line_and_nothing_is_written(
    case, tmp_path, capsys, monkeypatch
):
    shutil.copytree(CLASSIFY, tmp_path / "flow")
    (tmp_path / "out").mkdir()
    (tmp_path / "data").write_text("a file")
    before = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    monkeypatch.chdir(tmp_path)
    output, expected = OUTPUTS[case]
    assert import_cli(Path("flow"), "-o", output) == 1
    printed = capsys.readouterr()
    assert printed.out == "" and printed.err.startswith(expected)
    assert len(printed.err.splitlines()) == 1
    after = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    assert after == before


BAD = {
    "activate not a mapping": (
        """
        inputs: {go: {type: bool, default: true}}
        nodes:
        - name: a
          type: prompt
          source: {type: code, path: p.jinja2}
          activate: ${inputs.go}
        """,
        "flow/flow.dag.yaml:7:13: activate is a mapping: {when: ${...}, is: VALUE}",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_located_line_and_nothing_is_written(case, tmp_path, capsys, monkeypatch):
    dag, expected = BAD[case]
    write_flow(tmp_path / "flow", {"flow.dag.yaml": dag, "p.jinja2": "hello"})
    monkeypatch.chdir(tmp_path)
    assert import_cli(Path("flow")) == 1
    printed = capsys.readouterr()
    assert printed.out == "" and printed.err.splitlines() == [expected]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["flow"]


def test_a_folder_name_with_quotes_and_a_line_break_stays_text_in_what_is_written(tmp_path, capsys):
    name = 'tools"""\nimport os; os.system("echo run")  # '
    folder = write_flow(tmp_path / name, {"flow.dag.yaml": RETURNS["flow.dag.yaml"]})
    (folder / "tools.py").write_text(textwrap.dedent(RETURNS["tools.py"]))
    (folder / "say.jinja2").write_text(RETURNS["say.jinja2"])
    target = tmp_path / "out.yaml"
    assert import_cli(folder, "-o", str(target)) == 0, capsys.readouterr().err
    module = ast.parse(next(tmp_path.glob("*_tools.py")).read_text())
    assert repr(name) in (ast.get_docstring(module) or "")
    assert not [s for s in module.body[1:] if not isinstance(s, ast.ImportFrom | ast.Assign)][1:]
    definition = yaml.safe_load(target.read_text())["workflow"]
    assert [step["id"] for step in definition["steps"]] == ["none", "deep", "nothing", "say"]


def test_a_connection_whose_fields_the_tool_does_not_read_itself_gets_a_note(tmp_path, capsys):
    dag = """
        nodes:
        - name: call
          type: python
          source: {type: code, path: call.py}
          inputs: {conn: my_conn}
    """
    tool = """
        from promptflow.connections import CustomConnection
        from promptflow.core import tool

        @tool
        def call(conn: CustomConnection) -> str:
            return helper(conn)
    """
    folder = write_flow(tmp_path / "conn", {"flow.dag.yaml": dag, "call.py": tool})
    assert import_cli(folder) == 0
    assert "node 'call': call() reads no field of the connection 'my_conn' itself" in (
        capsys.readouterr().err
    )
