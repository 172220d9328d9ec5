"""A run's `definition_file` is untrusted text: the worker reads only files inside its
definitions directory, and a refusal says nothing about the files outside it."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError

from activities.definitions import load_bundle
from activities.load_definition import DefinitionActivities
from workflows.contracts import LoadDefinitionInput
from workflows.errors import FailureType

SECRET = "do_not_show_me"
DEFINITION = f"""
workflow:
  name: Outside
  variables:
    {SECRET}: {{default: x}}
  steps:
    - {{id: greet, type: llm_call, model: gpt-4o-mini, prompt: hi, outputs: [greeting]}}
"""
OUTSIDE = "must name a file inside the worker's definitions directory"


def parent_of(child: str) -> str:
    return f"""
workflow:
  name: Parent
  steps:
    - {{id: child, type: workflow, definition: "{child}"}}
"""


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    """A definitions directory and, beside it, a folder with one valid definition."""
    inside, outside = tmp_path / "defs" / "nested", tmp_path / "elsewhere"
    inside.mkdir(parents=True)
    outside.mkdir()
    (outside / "x.yaml").write_text(DEFINITION)
    (tmp_path / "x.yaml").write_text(DEFINITION)
    return inside, outside


async def refusal(root: Path, name: str) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        await DefinitionActivities(root).load_definition(LoadDefinitionInput(path=name))
    assert caught.value.type == FailureType.DEFINITION and caught.value.non_retryable
    assert SECRET not in caught.value.message and "Outside" not in caught.value.message
    return caught.value


@pytest.mark.parametrize(
    ("existing", "missing"),
    [
        ("/etc/passwd", "/etc/no-such-file"),
        ("ELSEWHERE/x.yaml", "ELSEWHERE/nope.yaml"),
        ("../x.yaml", "../nope.yaml"),
        ("sub/../../x.yaml", "sub/../../nope.yaml"),
        ("../../elsewhere/x.yaml", "../../elsewhere/nope.yaml"),
    ],
)
async def test_a_name_outside_is_refused_the_same_whether_or_not_it_exists(
    folders, existing, missing
):
    inside, outside = folders
    existing, missing = (n.replace("ELSEWHERE", str(outside)) for n in (existing, missing))
    for name in (existing, missing):
        error = await refusal(inside, name)
        assert error.message == f"definition_file {name!r} {OUTSIDE}"


async def test_a_symlink_out_of_the_directory_is_refused_like_a_dangling_one(folders):
    inside, outside = folders
    (inside / "link.yaml").symlink_to(outside / "x.yaml")
    (inside / "dangling.yaml").symlink_to(outside / "nope.yaml")
    (inside / "dir").symlink_to(outside, target_is_directory=True)
    for name in ("link.yaml", "dangling.yaml", "dir/x.yaml", "dir/nope.yaml"):
        error = await refusal(inside, name)
        assert error.message == f"definition_file {name!r} {OUTSIDE}"


@pytest.mark.parametrize("name", ["a\0.yaml", "x" * 300 + ".yaml", "a/" * 3000 + "x.yaml"])
async def test_unusable_names_are_refused(folders, name):
    inside, _ = folders
    error = await refusal(inside, name)
    assert error.message.endswith(OUTSIDE)


async def test_a_missing_file_inside_says_so(folders):
    inside, _ = folders
    error = await refusal(inside, "nope.yaml")
    assert error.message == "no definition file 'nope.yaml' in the definitions directory"


async def test_a_child_outside_is_a_located_problem_whether_or_not_it_exists(folders):
    inside, outside = folders
    for child in ("../../elsewhere/x.yaml", "../../elsewhere/nope.yaml", str(outside / "x.yaml")):
        (inside / "parent.yaml").write_text(parent_of(child))
        error = await refusal(inside, "parent.yaml")
        assert error.message == f"parent.yaml:5:47: {child!r} {OUTSIDE}"


async def test_a_file_in_a_subfolder_loads_with_its_children(folders):
    inside, _ = folders
    (inside / "flows" / "common").mkdir(parents=True)
    (inside / "flows" / "common" / "child.yaml").write_text(DEFINITION)
    (inside / "flows" / "parent.yaml").write_text(parent_of("common/child.yaml"))
    (inside / "flows" / "up.yaml").write_text(parent_of("../flows/common/child.yaml"))
    activities = DefinitionActivities(inside)
    loaded = await activities.load_definition(LoadDefinitionInput(path="flows/parent.yaml"))
    assert loaded.definition.workflow.name == "Parent"
    assert loaded.children["common/child.yaml"].workflow.name == "Outside"
    # '..' inside a child reference is fine while the file stays inside the directory
    loaded = await activities.load_definition(LoadDefinitionInput(path="flows/up.yaml"))
    assert list(loaded.children) == ["../flows/common/child.yaml"]


def test_the_starter_still_loads_any_file_its_user_names(folders):
    inside, outside = folders
    (inside / "parent.yaml").write_text(parent_of("../../elsewhere/x.yaml"))
    loaded = load_bundle(inside / "parent.yaml", "parent.yaml")
    assert loaded.children["../../elsewhere/x.yaml"].workflow.name == "Outside"
