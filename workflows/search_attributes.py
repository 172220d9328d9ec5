"""The search attributes a run keeps up to date, so `list --workflow` and the UI can filter.

The worker registers them on the server when missing (and the dev servers we start declare
them), since upserting an unknown attribute would fail the workflow task.
"""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

DEFINITION_NAME = SearchAttributeKey.for_keyword("YamlWorkflowName")
DEFINITION_VERSION = SearchAttributeKey.for_keyword("YamlWorkflowVersion")
STEPS_DONE = SearchAttributeKey.for_int("YamlStepsDone")
COST_USD = SearchAttributeKey.for_float("YamlCostUsd")
"""Estimated spend so far, so runs can be sorted by cost in the UI."""
EVAL_KEYS = SearchAttributeKey.for_keyword_list("YamlEvalKeys")
"""An evaluation run's definition digests (engine/evals/cache.py): how a later evaluation of
the same definition finds it, to reuse its rows. Set when the evaluation starts; never
upserted by the workflow."""
ALL = (DEFINITION_NAME, DEFINITION_VERSION, STEPS_DONE, COST_USD, EVAL_KEYS)
