"""A package's public names, imported on first use (PEP 562): `import workflows` (or one of
its pure modules) stays cheap, while `from workflows import YamlWorkflow` still works."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping


def lazy_names(package: str, modules: Mapping[str, tuple[str, ...]]) -> Callable[[str], object]:
    """The package's `__getattr__`: `modules` maps each of its modules to the public names
    that module holds."""
    home = {name: module for module, names in modules.items() for name in names}

    def __getattr__(name: str) -> object:
        if name not in home:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{home[name]}"), name)

    return __getattr__
