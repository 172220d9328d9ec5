"""`starter.py test`: find test files, check them all, run their cases and report. The CLI
and CI call this; the pieces are engine/testing/files.py, runner.py and report.py."""

from __future__ import annotations

import time
from collections.abc import Callable

from engine.client import EngineClient
from engine.local_stack import ensure_worker
from engine.settings import Settings
from engine.testing.files import LoadedTests, find_test_files, load_tests, with_action_modules
from engine.testing.report import (
    case_line,
    failure_text,
    json_report,
    junit_xml,
    summary,
    write,
)
from engine.testing.runner import CaseResult, run_all, selected
from workflows.errors import DefinitionError, UsageError


def load_all(paths: list[str], settings: Settings) -> list[LoadedTests]:
    """Every test file, checked; DefinitionError lists the problems of all of them."""
    files = find_test_files(paths)
    if not files:
        raise UsageError(f"no *.test.yaml files in {', '.join(paths)}")
    loaded, problems = [], []
    for path in files:
        try:
            loaded.append(load_tests(path, settings))
        except DefinitionError as exc:
            problems += exc.problems
    if problems:
        raise DefinitionError(problems)
    return loaded


async def test(
    paths: list[str],
    settings: Settings,
    *,
    pattern: str | None = None,
    junit: str | None = None,
    as_json: bool = False,
    out: Callable[[str], None] = print,
    note: Callable[[str], None] = print,
    client: EngineClient | None = None,
) -> int:
    """Run the cases; 0 when every one passes, 1 otherwise."""
    files = load_all(paths, settings)
    if not any(selected(tests, pattern) for tests in files):
        raise UsageError(f"no case matches -k {pattern!r}")
    if client is None:
        modules = [name for tests in files for name in tests.action_modules]
        settings = with_action_modules(settings, modules)  # the worker's too
        client = await EngineClient.connect(settings, note=note)
        await ensure_worker(client.temporal, settings, note)  # once, before cases start runs
    began = time.monotonic()

    def shown(result: CaseResult) -> None:
        if as_json:
            return
        out(case_line(result))
        if not result.passed:
            out(failure_text(result))

    results = await run_all(client, files, pattern, on_result=shown)
    seconds = time.monotonic() - began
    if junit:
        write(junit, junit_xml(results, seconds))
    if as_json:
        out(json_report(results))
    else:
        out(summary(results, seconds))
    return 0 if all(result.passed for result in results) else 1
