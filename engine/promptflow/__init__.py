"""The Prompt flow importer (`starter.py import promptflow DIR`): a flow.dag.yaml folder
becomes a definition, plus the actions module its Python tools need. It writes files and
never runs anything; the definition runs on the one interpreter like any other.

Modules: dag (reading flow.dag.yaml), references (`${...}` and literals), names (variables,
step ids, outputs), graph (order, cycles, what may be skipped), prompts (Jinja2 chat
sections), nodes (each node type), python_tools (`@tool` functions and the actions module),
interface (inputs and outputs), variants (node_variants: a flow per variant), aggregation
(an evaluation flow's aggregation nodes as an evaluator's aggregator), writer (YAML and the
run command), importer (all of it); run_spec, run_command and run_import (a Prompt flow run
as the `eval` command that does the same)."""

from __future__ import annotations

from engine.promptflow.importer import Imported, ImportRequest, NotImported, import_flow

__all__ = ["ImportRequest", "Imported", "NotImported", "import_flow"]
