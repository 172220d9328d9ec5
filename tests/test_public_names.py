"""Each package's public names (`__all__`): what users' programs, custom action modules and
the docs import. They resolve, the type checker sees the same names, and importing a package
stays cheap because each name's module is loaded on first use."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys

import pytest

from tests.conftest import ROOT

PACKAGES = ["workflows", "engine", "activities"]


def _checker_imports(package: str) -> set[str]:
    """The names the `if TYPE_CHECKING:` block of the package's __init__ imports."""
    tree = ast.parse((ROOT / package / "__init__.py").read_text())
    [block] = [
        node
        for node in tree.body
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING"
    ]
    return {
        alias.asname or alias.name
        for node in block.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_name_resolves_to_its_module_object(package: str):
    module = importlib.import_module(package)
    assert module.__all__, f"{package} declares no public names"
    for module_name, names in module._MODULES.items():
        home = importlib.import_module(f"{package}.{module_name}")
        for name in names:
            assert getattr(module, name) is getattr(home, name), f"{package}.{name}"
    namespace: dict[str, object] = {}
    exec(f"from {package} import *", namespace)
    assert set(module.__all__) <= set(namespace)


@pytest.mark.parametrize("package", PACKAGES)
def test_the_type_checker_sees_the_same_public_names(package: str):
    module = importlib.import_module(package)
    lazy = {name for names in module._MODULES.values() for name in names}
    assert sorted(module.__all__) == sorted(lazy) == sorted(_checker_imports(package))
    assert len(module.__all__) == len(set(module.__all__))


def test_a_misspelt_name_is_an_attribute_error_naming_it():
    import workflows

    with pytest.raises(AttributeError, match="module 'workflows' has no attribute 'YamlWorkflw'"):
        workflows.YamlWorkflw  # noqa: B018
    from workflows import search_attributes  # a submodule still imports as one

    assert search_attributes.STEPS_DONE.name == "YamlStepsDone"


def test_importing_the_packages_loads_none_of_their_modules():
    """A pure module (or the CLI's first line) pays for what it uses, not for the whole API."""
    code = "import sys, workflows, engine, activities; print(' '.join(sorted(sys.modules)))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    ours = [name for name in loaded if name.split(".")[0] in PACKAGES]
    assert ours == ["activities", "engine", "workflows", "workflows.lazy_names"]
    assert not {"pydantic", "jinja2", "temporalio"} & set(loaded)
