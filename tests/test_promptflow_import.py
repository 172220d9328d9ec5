"""`starter.py import promptflow DIR`: a Prompt flow folder (flows written for these tests in
tests/promptflow_flows/) becomes a definition and an actions module that validate and run on
the dev server, the flow's own Python tools really running; bad flows get one located line
and nothing written; nodes it cannot map are listed, and written as failing steps only
under --partial."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import textwrap
import uuid
from pathlib import Path

import pytest
import yaml

from activities.registry import load_custom_actions, params_models
from starter import main
from tests.conftest import ROOT, new_worker
from workflows.contracts import RunInput, RunResult
from workflows.interpreter import YamlWorkflow
from workflows.validation import load_definition

FLOWS = ROOT / "tests" / "promptflow_flows"
SECRETS = {"SIGNING_SERVICE_KEY": "k-3141592653", "SIGNING_SERVICE_SIGNER": "Ada"}


async def imported(tmp_path: Path, flow: Path, *extra: str) -> tuple[int, Path]:
    """The command, from a thread: it runs its own event loop."""
    target = tmp_path / f"{flow.name}.yaml"
    argv = ["import", "promptflow", str(flow), "-o", str(target), *extra]
    return await asyncio.to_thread(main, argv), target


def payloads(history: str) -> str:
    """Every payload of a history as text (they are base64 in its JSON)."""
    found: list[str] = []

    def walk(value: object) -> None:
        if isinstance(value, dict):
            if isinstance(value.get("data"), str):
                found.append(base64.b64decode(value["data"]).decode("utf-8", "replace"))
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(json.loads(history))
    return "\n".join(found)


def flow_dir(tmp_path: Path, files: dict[str, str]) -> Path:
    folder = tmp_path / "flow"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(textwrap.dedent(text))
    return folder


async def test_a_standard_flow_imports_validates_and_runs_with_its_python_tools(
    client, endpoints, fake_llm, tmp_path, monkeypatch, capsys
):
    code, target = await imported(tmp_path, FLOWS / "standard")
    printed = capsys.readouterr()
    assert code == 0
    assert "ACTION_MODULES=standard_tools python starter.py run" in printed.out
    assert "--var question=TEXT" in printed.out
    assert "SECRET_SIGNING_SERVICE_KEY SECRET_SIGNING_SERVICE_SIGNER" in printed.out
    assert "'chat-deployment' runs on gpt-4o-mini, the default" in printed.err
    monkeypatch.syspath_prepend(str(tmp_path))
    actions = load_custom_actions(["standard_tools"])
    definition = load_definition(target.read_text(), str(target), params_models(actions))
    fake_llm.reply = lambda request: "Durable  execution\nsurvives crashes."

    async with new_worker(client, endpoints, actions=actions, secrets=SECRETS) as worker:

        async def run(**variables: object) -> tuple[str, RunResult]:
            handle = await client.start_workflow(
                YamlWorkflow.run,
                RunInput(definition=definition, variables=variables),
                id=f"pf-{uuid.uuid4()}",
                task_queue=worker.task_queue,
            )
            result = await handle.result()
            return (await handle.fetch_history()).to_json(), result

        history, polished = await run(question="What is durable execution?")
        _, plain = await run(question="Again?", polish=False)
    seen = payloads(history)
    assert SECRETS["SIGNING_SERVICE_KEY"] not in seen + target.read_text()
    assert "secrets.SIGNING_SERVICE_KEY" in seen
    outputs = polished.outputs
    assert outputs["answer"] == (
        "Durable execution survives crashes. (4 words) [signed by Ada, key of 12 characters]"
    )
    assert outputs["words"] == 4 and outputs["draft"] == "Durable  execution\nsurvives crashes."
    assert outputs["count_words"]["label"] == "{{ words }} stays text"  # a literal, not a template
    sent = fake_llm.requests[0].body["messages"]
    assert sent[0] == {
        "role": "system",
        "content": "You answer questions about workflow engines. Write for engineers in at most "
        "40 words.\n",
    }
    assert sent[1] == {"role": "user", "content": "What is durable execution?"}
    assert fake_llm.requests[0].body["temperature"] == 0.3
    steps = plain.steps
    assert steps["tidy"].status == "skipped" and steps["sign"].status == "skipped"
    assert plain.outputs["answer"] is None


def test_the_actions_module_runs_a_tool_without_promptflow_installed(tmp_path):
    from activities.promptflow_compat import PythonTool, collected_metrics, flow_tool

    folder = flow_dir(
        tmp_path,
        {
            "score.py": """
                from promptflow import log_metric, tool
                from promptflow.core import tool as core_tool

                @core_tool
                def score(answer: str, expected: str = "yes") -> float:
                    value = float(answer == expected)
                    log_metric("accuracy", value)
                    return value
            """
        },
    )
    spec = PythonTool("t.score", "score.py", "score", ("answer",), ("expected",))
    run = flow_tool(spec, str(tmp_path / "t_tools.py"), folder.name)
    params = run.__action__.params  # type: ignore[attr-defined]
    with collected_metrics() as metrics:
        assert run(params(answer="yes"), None) == 1.0
    assert metrics == {"accuracy": 1.0}
    assert run(params(answer="yes", expected=None), None) == 1.0  # a skipped input: the default


def test_a_chat_flow_becomes_a_system_a_message_loop_over_the_history_and_the_question(
    tmp_path, capsys
):
    from engine.promptflow.importer import ImportRequest, import_flow

    import_flow(ImportRequest(FLOWS / "chat", "chat", tmp_path / "chat.yaml"))
    step = yaml.safe_load((tmp_path / "chat.yaml").read_text())["workflow"]["steps"][0]
    assert step["model"] == "gpt-4o" and step["max_tokens"] == 256
    assert step["system"] == "You are a concise assistant."
    assert step["messages"] == [
        {
            "each": "{{ chat_history }}",
            "as": "item",
            "messages": [
                {"role": "user", "content": "{{ item.inputs.question }}"},
                {"role": "assistant", "content": "{{ item.outputs.answer }}"},
            ],
        },
        {"role": "user", "content": "{{ question }}"},
    ]
    variables = yaml.safe_load((tmp_path / "chat.yaml").read_text())["workflow"]["variables"]
    assert variables["chat_history"] == {"type": "array", "default": []}
    assert variables["question"]["required"] is True


async def test_a_chat_flow_runs_with_a_two_turn_history(client, endpoints, fake_llm, tmp_path):
    from engine.promptflow.importer import ImportRequest, import_flow

    import_flow(ImportRequest(FLOWS / "chat", "chat", tmp_path / "chat.yaml"))
    definition = load_definition((tmp_path / "chat.yaml").read_text(), "chat.yaml")
    history = [
        {"inputs": {"question": "Name a durable engine."}, "outputs": {"answer": "Temporal."}},
        {"inputs": {"question": "Written in?"}, "outputs": {"answer": "Go."}},
    ]
    fake_llm.reply = lambda request: "Python, TypeScript and more."
    async with new_worker(client, endpoints) as worker:
        result = await client.execute_workflow(
            YamlWorkflow.run,
            RunInput(
                definition=definition,
                variables={"chat_history": history, "question": "Which SDKs?"},
            ),
            id=f"pf-{uuid.uuid4()}",
            task_queue=worker.task_queue,
        )
    assert result.outputs["answer"] == "Python, TypeScript and more."
    sent = [(m["role"], m["content"]) for m in fake_llm.requests[0].body["messages"]]
    assert sent == [
        ("system", "You are a concise assistant."),
        ("user", "Name a durable engine."),
        ("assistant", "Temporal."),
        ("user", "Written in?"),
        ("assistant", "Go."),
        ("user", "Which SDKs?"),
    ]


BAD = {
    "flex": (
        {"flow.flex.yaml": "entry: app:chat\n"},
        "flow/flow.flex.yaml:1:1: a flex flow (Python code as the flow) is not imported",
    ),
    "no_flow": ({}, "flow:1:1: not a Prompt flow folder: no flow.dag.yaml in it"),
    "yaml_error": (
        {"flow.dag.yaml": "nodes:\n- name: a\n  type: [python\n"},
        "flow/flow.dag.yaml:4:1: YAML syntax error",
    ),
    "missing_file": (
        {
            "flow.dag.yaml": """
                nodes:
                - name: a
                  type: python
                  source: {type: code, path: gone.py}
            """
        },
        "flow/flow.dag.yaml:5:30: no file 'gone.py' in the flow's folder",
    ),
    "unknown_node": (
        {
            "flow.dag.yaml": """
                outputs:
                  answer: {type: string, reference: "${anwser.output}"}
                nodes:
                - name: answer
                  type: prompt
                  source: {type: code, path: p.jinja2}
            """,
            "p.jinja2": "hello",
        },
        "flow/flow.dag.yaml:3:37: no node 'anwser' — did you mean 'answer'?",
    ),
    "jinja syntax error": (
        {
            "flow.dag.yaml": """
                inputs: {q: {type: string}}
                nodes:
                - name: a
                  type: prompt
                  source: {type: code, path: p.jinja2}
                  inputs: {q: "${inputs.q}"}
            """,
            "p.jinja2": "Be brief.\nAnswer {{ q }\n",
        },
        "flow/p.jinja2:2:1: Jinja syntax error: unexpected '}'",
    ),
    "cycle": (
        {
            "flow.dag.yaml": """
                nodes:
                - name: a
                  type: prompt
                  source: {type: code, path: p.jinja2}
                  inputs: {x: "${b.output}"}
                - name: b
                  type: prompt
                  source: {type: code, path: p.jinja2}
                  inputs: {x: "${a.output}"}
            """,
            "p.jinja2": "{{ x }}",
        },
        "flow/flow.dag.yaml:3:9: the nodes read each other: a -> b -> a",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_located_line_and_nothing_is_written(case, tmp_path, capsys, monkeypatch):
    files, expected = BAD[case]
    flow_dir(tmp_path, files)
    monkeypatch.chdir(tmp_path)
    code = main(["import", "promptflow", "flow", "-o", "out/flow.yaml"])
    printed = capsys.readouterr()
    assert code == 1 and printed.out == ""
    assert len(printed.err.splitlines()) == 1 and printed.err.startswith(expected)
    assert not (tmp_path / "out").exists()


LIMITED = {
    "flow.dag.yaml": """
        inputs:
          query: {type: string, default: durable workflows}
        outputs:
          found: {type: string, reference: "${search.output}"}
          summary: {type: string, reference: "${summarize.output}"}
        nodes:
        - name: search
          type: python
          source:
            type: package
            tool: promptflow.tools.serpapi.SerpAPI.search
          inputs: {query: "${inputs.query}"}
        - name: summarize
          type: prompt
          source: {type: code, path: summarize.jinja2}
          inputs: {text: "${search.output}"}
        - name: judge
          type: weird_tool
          source: {type: code, path: summarize.jinja2}
        - name: score
          type: prompt
          source: {type: code, path: summarize.jinja2}
          aggregation: true
    """,
    "summarize.jinja2": "Summarize: {{ text }}",
}


def test_nodes_it_cannot_map_are_listed_and_nothing_is_written_without_partial(
    tmp_path, capsys, monkeypatch
):
    flow_dir(tmp_path, LIMITED)
    monkeypatch.chdir(tmp_path)
    code = main(["import", "promptflow", "flow"])
    err = capsys.readouterr().err.splitlines()
    assert code == 1
    assert err == [
        "flow/flow.dag.yaml:11:5: tool 'promptflow.tools.serpapi.SerpAPI.search' from a "
        "package is not imported",
        "flow/flow.dag.yaml:19:9: node type 'weird_tool' is not imported",
        "flow/flow.dag.yaml:24:16: an aggregation node of type 'prompt' is not imported",
        "nothing written: 3 node(s) cannot be imported; --partial writes the rest, with these "
        "steps failing when they run",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flow"]


async def test_partial_writes_failing_steps_that_say_why(
    client, endpoints, tmp_path, capsys, monkeypatch
):
    flow_dir(tmp_path, LIMITED)
    monkeypatch.chdir(tmp_path)
    assert await asyncio.to_thread(main, ["import", "promptflow", "flow", "--partial"]) == 0
    printed = capsys.readouterr()
    assert "not imported: flow/flow.dag.yaml:19:9: node type 'weird_tool'" in printed.err
    text = (tmp_path / "flow.yaml").read_text()
    assert "# NOT IMPORTED: flow/flow.dag.yaml:11:5: tool 'promptflow.tools" in text
    monkeypatch.syspath_prepend(str(tmp_path))
    actions = load_custom_actions(["flow_tools"])
    definition = load_definition(text, "flow.yaml", params_models(actions))
    async with new_worker(client, endpoints, actions=actions) as worker:
        handle = await client.start_workflow(
            YamlWorkflow.run,
            RunInput(definition=definition),
            id=f"pf-{uuid.uuid4()}",
            task_queue=worker.task_queue,
        )
        with pytest.raises(Exception) as failed:
            await handle.result()
    assert "Prompt flow node 'search' was not imported: tool" in str(failed.value.__cause__)
    shutil.rmtree(tmp_path / "flow")


def test_the_model_comes_from_the_model_map_by_deployment_model_or_connection():
    from engine.promptflow.dag import Node
    from engine.promptflow.nodes import DEFAULT_MODEL, model_of

    node = Node("ask", 0, {"connection": "aoai", "inputs": {"deployment_name": "prod-chat"}})
    assert model_of(node, {"aoai": "anthropic/claude-haiku-4-5"}) == (
        "anthropic/claude-haiku-4-5",
        None,
    )
    assert model_of(node, {"prod-chat": "gpt-4o"}) == ("gpt-4o", None)
    model, note = model_of(node, {})
    assert model == DEFAULT_MODEL and note is not None and "--model-map prod-chat=MODEL" in note
    assert model_of(Node("ask", 0, {"inputs": {"model": "gpt-4.1"}}), {}) == ("gpt-4.1", None)
