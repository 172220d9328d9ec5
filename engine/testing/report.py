"""How test results read: one line per case, a diff per failed expectation with the step that
diverged and the command that reproduces it; JUnit XML for CI systems; JSON for programs."""

from __future__ import annotations

import difflib
import json
import shlex
from dataclasses import asdict
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from engine.testing.runner import CaseResult, Mismatch

SHOWN = 300
"""Characters of a value shown on one line."""


def case_line(result: CaseResult) -> str:
    mark = "PASS" if result.passed else "FAIL"
    return f"{mark}  {result.file}::{result.name}  ({result.seconds:.2f} s)"


def failure_text(result: CaseResult) -> str:
    """What went wrong, field by field, and how to see it again."""
    lines = []
    if result.problem:
        lines.append(f"    {result.problem}")
    for mismatch in result.mismatches:
        lines += ["    " + line for line in mismatch_lines(mismatch)]
    lines.append(f"    reproduce: {reproduce(result)}")
    if result.execution_id:
        lines.append(f"    run: {result.execution_id}")
    return "\n".join(lines)


def mismatch_lines(mismatch: Mismatch) -> list[str]:
    where = f" (step {mismatch.step})" if mismatch.step else ""
    expected, actual = _shown(mismatch.expected), _shown(mismatch.actual)
    if (
        isinstance(mismatch.expected, str)
        and isinstance(mismatch.actual, str)
        and ("\n" in mismatch.expected or "\n" in mismatch.actual)
    ):
        diff = difflib.unified_diff(
            mismatch.expected.splitlines(), mismatch.actual.splitlines(), "expected", "actual",
            lineterm="",
        )  # fmt: skip
        return [f"{mismatch.field}{where}:", *("  " + line for line in diff)]
    return [f"{mismatch.field}{where}:", f"  - expected: {expected}", f"  + actual:   {actual}"]


def reproduce(result: CaseResult) -> str:
    return f"python starter.py test {shlex.quote(result.file)} -k {shlex.quote(result.name)}"


def summary(results: list[CaseResult], seconds: float) -> str:
    failed = sum(not r.passed for r in results)
    return f"{len(results) - failed} passed, {failed} failed in {seconds:.1f} s"


def junit_xml(results: list[CaseResult], seconds: float) -> str:
    """JUnit XML as CI systems read it: one testsuite per test file."""
    root = ElementTree.Element("testsuites", tests=str(len(results)), time=f"{seconds:.3f}")
    root.set("failures", str(sum(not r.passed for r in results)))
    by_file: dict[str, list[CaseResult]] = {}
    for result in results:
        by_file.setdefault(result.file, []).append(result)
    for file, cases in by_file.items():
        suite = ElementTree.SubElement(root, "testsuite", name=file, tests=str(len(cases)))
        suite.set("failures", str(sum(not r.passed for r in cases)))
        suite.set("errors", "0")
        suite.set("time", f"{sum(r.seconds for r in cases):.3f}")
        for result in cases:
            case = ElementTree.SubElement(
                suite, "testcase", classname=file, name=result.name, time=f"{result.seconds:.3f}"
            )
            if not result.passed:
                first = result.problem or mismatch_lines(result.mismatches[0])[0]
                failure = ElementTree.SubElement(case, "failure", message=first, type="failure")
                failure.text = failure_text(result)
    return ElementTree.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def json_report(results: list[CaseResult]) -> str:
    rows = [{**asdict(result), "passed": result.passed} for result in results]
    return json.dumps(rows, indent=2, default=str) + "\n"


def write(path: str, text: str) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(text, encoding="utf-8")


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = repr(text) if isinstance(value, str) else text
    return text if len(text) <= SHOWN else text[:SHOWN] + "..."
