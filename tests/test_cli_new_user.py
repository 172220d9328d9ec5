"""What a new user tripped over at the command line, each as the user met it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, starter

ECHO = """
workflow:
  name: echo
  variables:
    who: {type: string}
    note: "plain"
  steps:
    - {id: keep, type: set, values: {said: "{{ who }}", noted: "{{ note }}"}}
"""

ONE_CALL = """
workflow:
  name: one-call
  steps:
    - {id: ask, type: llm_call, model: mock, prompt: "Say hi"}
"""

WAITS = """
workflow:
  name: waits-for-approval
  steps:
    - {id: ok, type: wait_for_signal, signal: approve, timeout: 1h}
    - {id: after, type: set, values: {x: 1}}
"""


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("defs")
    (folder / "echo.yaml").write_text(ECHO)
    (folder / "one_call.yaml").write_text(ONE_CALL)
    (folder / "waits.yaml").write_text(WAITS)
    return folder


def test_string_variables_keep_their_text_and_v_is_short_for_var(stack_env, files):
    done = starter(
        stack_env, "run", str(files / "echo.yaml"), "-v", "who=Dr. Smith: head of ops",
        "--var", "note=yes", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    outputs = json.loads(done.stdout)["outputs"]
    assert outputs == {"said": "Dr. Smith: head of ops", "noted": "yes"}


def test_a_run_without_declared_outputs_prints_the_reply(stack_env, files):
    done = starter(stack_env, "run", str(files / "one_call.yaml"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ask.text: [offline mock reply")


def test_signal_refuses_a_name_no_step_waits_for_and_cancel_shows_everywhere(stack_env, files):
    started = starter(stack_env, "start", str(files / "waits.yaml"))
    assert started.returncode == 0, started.stderr
    run_id = started.stdout.strip()
    time.sleep(1)
    typo = starter(stack_env, "signal", run_id, "aprove")
    assert typo.returncode == 1  # refused by the run itself, which keeps waiting
    assert "no step waits for 'aprove' (the run waits for 'approve')" in typo.stderr
    assert starter(stack_env, "cancel", run_id).returncode == 0
    status = starter(stack_env, "status", run_id, "--json")
    assert json.loads(status.stdout)["running"] == []  # nothing runs in a cancelled run
    assert json.loads(status.stdout)["execution_status"] == "cancelled"
    for spelling in ("cancelled", "canceled"):
        listed = starter(stack_env, "list", "--status", spelling, "--json")
        assert listed.returncode == 0, listed.stderr
        assert run_id in {run["execution_id"] for run in json.loads(listed.stdout)}


def test_a_waiting_run_names_its_signal_and_the_command_and_a_cancelled_one_says_so(
    stack_env, files
):
    started = starter(stack_env, "start", str(files / "waits.yaml"))
    run_id = started.stdout.strip()
    for _ in range(40):  # until the worker has taken the run up
        status = starter(stack_env, "status", run_id)
        if "waits for signal" in status.stdout:
            break
        time.sleep(0.25)
    assert f"ok waits for signal 'approve': starter.py signal {run_id} approve" in status.stdout
    assert starter(stack_env, "cancel", run_id).returncode == 0
    late = starter(stack_env, "signal", run_id, "approve", "--input", "{}")
    assert late.returncode == 1
    assert late.stderr.strip().endswith(
        f"{run_id} was cancelled: signal 'approve' reaches only a running run; "
        f"run it again: starter.py resume {run_id}"
    ), late.stderr
    assert "already completed" not in late.stderr


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("01234", "01234"),  # YAML 1.1 would read the octal 668
        ("0x1F", "0x1F"),
        ("1:20", "1:20"),  # YAML 1.1 would read 80 (sexagesimal)
        ("3", 3),
        ("-2.5e3", -2500.0),
        ("true", True),
        ("False", False),
        ("null", None),
        ('"01234"', "01234"),
        ("[a, b]", ["a", "b"]),
        ("{k: 1}", {"k": 1}),
        ("yes", "yes"),
        ("[unclosed", "[unclosed"),
        ("", ""),
    ],
)
def test_a_value_typed_for_an_untyped_variable_is_read_as_written(text, value):
    from workflows.validation import read_text_value

    assert read_text_value(text) == value


TYPED = """
workflow:
  name: typed
  variables:
    zip: {type: string}
    code: "00000"
    anything: {description: "no type and no default"}
  steps:
    - {id: keep, type: set, values: {z: "{{ zip }}"}}
"""


@pytest.mark.parametrize(
    ("name", "text", "value"),
    [
        ("zip", "01234", "01234"),
        ("zip", '"01234"', "01234"),  # the quoting docs/language.md advises loses its quotes
        ("zip", "'01234'", "01234"),
        ("zip", '"\\"hi\\""', '"hi"'),  # quotes kept by quoting them
        ("zip", '"a" and "b"', '"a" and "b"'),  # not one quoted string: as written
        ("zip", "3", "3"),
        ("code", '"01234"', "01234"),
        ("anything", "01234", "01234"),
        ("anything", '"01234"', "01234"),
        ("anything", "3", 3),
    ],
)
def test_a_quoted_var_is_its_text_for_every_variable(name, text, value):
    from workflows.validation import load_definition, typed_variables

    definition = load_definition(TYPED, "typed.yaml")
    assert typed_variables(definition, {name: text}) == {name: value}


def test_the_docs_say_which_fields_are_refused_and_those_are(tmp_path):
    """docs/language.md once said budget, tools, messages and images were refused (they
    run); its "Not yet" section names no field that validation accepts, and the fields it
    says run do validate (cache, service_tier and batch arrived with v1.2)."""
    from workflows.validation import load_definition

    doc = (ROOT / "docs" / "language.md").read_text(encoding="utf-8")
    not_yet = doc.split("## Not yet", 1)[1].split("\n## ", 1)[0]
    for working in ("`budget`", "`tools`", "`messages`", "`images`", "`cache`", "`batch`"):
        assert working not in not_yet
    working = """
workflow:
  name: v11
  budget: {max_cost_usd: 1}
  steps:
    - id: look
      type: llm_call
      model: mock
      messages: [{role: user, content: "What is in the picture?"}]
      images: ["photo.png"]
      tools: [{action: http_fetch}]
"""
    assert load_definition(working, "v11.yaml").workflow.budget is not None


def test_a_binary_file_is_refused_as_not_text_with_its_line(tmp_path):
    path = tmp_path / "picture.yaml"
    path.write_bytes(b"workflow:\n  name: x\n\xff\xd8\xff")
    done = subprocess.run(
        [sys.executable, "starter.py", "validate", str(path)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0
    assert (
        done.stderr.strip()
        == f"{path}:3:1: not UTF-8 text (byte 0xff); a definition is a YAML file"
    )


def test_status_piped_into_head_ends_quietly(stack_env, files):
    started = starter(stack_env, "start", str(files / "echo.yaml"), "-v", "who=x")
    run_id = started.stdout.strip()
    starter(stack_env, "result", run_id)
    piped = subprocess.run(
        f"{sys.executable} starter.py status {run_id} | head -1",
        shell=True, cwd=ROOT, env=stack_env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert piped.returncode == 0 and "internal error" not in piped.stderr, piped.stderr


def test_the_background_worker_restarts_when_a_worker_setting_changes(stack_env, files):
    text = (
        "workflow:\n  name: count\n  steps:\n"
        "    - {id: c, type: action, action: word_count, params: {text: a b c}, outputs: [n]}\n"
    )
    (files / "count.yaml").write_text(text)
    env = {**stack_env, "ACTION_MODULES": "activities.example_actions"}
    done = starter(env, "run", str(files / "count.yaml"), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["outputs"]["n"] == 3


HEAVY = ("temporalio", "openai", "anthropic", "cryptography", "fastapi", "httpx", "mcp")
"""What `--help` and `validate` must not load: each costs a tenth of a second or more."""


@pytest.mark.parametrize(
    "command", [["--help"], ["validate", "definitions/hello_world.yaml"], ["schema"]]
)
def test_offline_commands_answer_without_loading_temporal_or_sdks(command):
    """`--help` took 0.6 s and `validate` 0.5 s, most of it imports they never use; now about
    0.1 s and 0.27 s (bench-style timings stay out of tests: what is loaded is asserted)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "starter.py", *command],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    assert not {name for name in loaded if name.split(".")[0] in HEAVY}


def test_list_with_nothing_to_show_says_so(stack_env):
    listed = starter(stack_env, "list", "--workflow", "never-ran", "--status", "failed")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout == ""  # a script counting lines still counts none
    assert (
        f"no failed runs of 'never-ran' in namespace 'default' at {stack_env['TEMPORAL_ADDRESS']}"
        in listed.stderr
    )


def test_files_a_tests_run_saves_stay_out_of_the_projects_output_folder(stack_env, files):
    """Tests once left `output/runs/ContentPipeline-...` in the checkout."""
    (files / "saves.yaml").write_text(
        "workflow:\n  name: saves\n  steps:\n"
        "    - {id: keep, type: action, action: save_to_file,"
        " params: {path: notes, filename: a.txt, data: hello}, outputs: [saved]}\n"
    )
    done = starter(stack_env, "run", str(files / "saves.yaml"), "--json")
    assert done.returncode == 0, done.stderr
    saved = json.loads(done.stdout)["outputs"]["saved"]["path"]
    assert (Path(stack_env["OUTPUT_DIR"]) / saved).read_text() == "hello"
    assert not (ROOT / "output" / saved).exists()


def test_the_installed_command_is_in_the_readme_and_answers():
    import tomllib

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in scripts:
        assert f"`{name}`" in readme, f"README never mentions the installed command {name}"
        installed = Path(sys.executable).parent / name  # `pip install -e .` put it there
        done = subprocess.run(
            [str(installed), "validate", "definitions/hello_world.yaml"],
            cwd=ROOT, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr


def test_resume_reads_var_as_run_does(stack_env, files):
    """`resume --var who=3` gave the number 3 to a string variable, failing the new run."""
    first = starter(stack_env, "start", str(files / "echo.yaml"), "-v", "who=Al")
    run_id = first.stdout.strip()
    assert starter(stack_env, "result", run_id).returncode == 0
    again = starter(stack_env, "resume", run_id, "--from", "keep", "-v", "who=3", "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["outputs"]["said"] == "3"
    quoted = starter(stack_env, "resume", run_id, "--from", "keep", "-v", 'note="01234"', "--json")
    assert json.loads(quoted.stdout)["outputs"]["noted"] == "01234"
