"""The Prompt flow importer on flows at the edges: names a template reads as something else,
fields a value's methods shadow, nodes that were bypassed, prompts as editors save them,
files outside the flow's folder, and outputs that would overwrite the flow. Each imports and
runs as Prompt flow would run it, or is refused with one located line and nothing written."""

from __future__ import annotations

import asyncio
import textwrap
import uuid
from pathlib import Path

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
