"""An evaluation report (engine/evals/report.py) shown: a terminal table, Markdown or a
self-contained HTML page, JUnit XML (one test case per row and evaluator) and the
`--fail-under` gates."""

from __future__ import annotations

import html
import json
from typing import Any
from xml.etree import ElementTree


def _number(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _interval(ci: list[float] | None) -> str:
    return "-" if ci is None else f"[{ci[0]:.3f}, {ci[1]:.3f}]"


def _shown(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return json.dumps(value, default=str)
    return _number(float(value))


Table = list[list[str]]
"""Rows of cells, the header first."""


def _one_line(cell: str) -> str:
    """A cell of a text table: an error's or a metric's line breaks would break its row."""
    return " ".join(cell.split())


def tables(report: dict[str, Any]) -> list[Table]:
    """Metrics by variant, aggregates (when an evaluator has them), latency and cost, then
    each comparison."""
    aggregates = aggregate_table(report)
    found = [metric_table(report), *([aggregates] if aggregates else []), run_table(report)]
    return found + [table for _, table in comparison_tables(report)]


def metric_table(report: dict[str, Any]) -> Table:
    metrics = [["variant", "evaluator", "mean", "95% CI", "pass rate", "n", "errors"]]
    for name, variant in report["variants"].items():
        for evaluator, m in variant["metrics"].items():
            if not m["n"] and not m["errors"] and evaluator in variant.get("aggregates", {}):
                continue  # scored only as a whole: its aggregates say it
            metrics.append([
                name, evaluator, _number(m["mean"]), _interval(m["ci95"]),
                _number(m.get("pass_rate")), str(m["n"]), str(m["errors"]),
            ])  # fmt: skip
    return metrics


def aggregate_table(report: dict[str, Any]) -> Table | None:
    """Each evaluator's whole-dataset metrics (`aggregate:`), or None when none has any."""
    aggregates = [["variant", "evaluator", "aggregate metric", "value"]]
    for name, variant in report["variants"].items():
        for evaluator, found in variant.get("aggregates", {}).items():
            aggregates += [[name, evaluator, metric, _shown(v)] for metric, v in found.items()]
        for evaluator, error in variant.get("aggregate_errors", {}).items():
            aggregates.append([name, evaluator, "-", error])
    return aggregates if len(aggregates) > 1 else None


def run_table(report: dict[str, Any]) -> Table:
    runs = [["variant", "rows", "failed", "p50 ms", "p95 ms", "tokens/row", "cost/row $", "cost $"]]
    for name, variant in report["variants"].items():
        latency = variant["latency_ms"]
        runs.append([
            name, str(variant["rows"]), str(variant["rows_failed"]),
            str(latency["p50"] or "-"), str(latency["p95"] or "-"),
            f"{variant['tokens_per_row']:.1f}", f"{variant['cost_usd_per_row']:.6f}",
            f"{variant['cost_usd']:.6f}",
        ])  # fmt: skip
    return runs


def comparison_tables(report: dict[str, Any]) -> list[tuple[str, Table]]:
    """Per pair of variants (`other - base`): each evaluator's difference and disagreements."""
    found = []
    for pair, by_evaluator in report.get("comparisons", {}).items():
        compared = [[pair, "difference", "95% CI", "rows that disagree (line)"]]
        for evaluator, c in by_evaluator.items():
            lines = ", ".join(str(d["line"]) for d in c["disagree"][:20])
            more = len(c["disagree"]) - 20
            compared.append([
                evaluator, _number(c["difference"]), _interval(c["ci95"]),
                f"{len(c['disagree'])}: {lines}" + (f" (+{more})" if more > 0 else ""),
            ])  # fmt: skip
        found.append((pair, compared))
    return found


def terminal(report: dict[str, Any]) -> str:
    parts = []
    for table in tables(report):
        table = [[_one_line(cell) for cell in row] for row in table]
        widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
        lines = [
            "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in table
        ]
        parts.append("\n".join(line.rstrip() for line in lines))
    usage = report["usage"]
    failed = [
        f"  line {row['line']} ({name}): {run['error']}"
        for row in report["rows"]
        for name, run in row["variants"].items()
        if run["status"] != "completed"
    ]
    tail = f"{len(report['rows'])} rows in {usage['seconds']:.1f} s, ${usage['cost_usd']:.6f}"
    tail += f", {usage['input_tokens'] + usage['output_tokens']:,} tokens; run {report['id']}"
    reused = reuse_line(report)
    if reused:
        tail += f"\n{reused}; --no-cache runs them again"
    if failed:
        tail += "\nrows whose run failed:\n" + "\n".join(failed[:20])
    return "\n\n".join(parts) + "\n\n" + tail + "\n"


def reuse_line(report: dict[str, Any]) -> str | None:
    """What came from earlier evaluations and what that saved, when anything did."""
    cache = report.get("cache") or {}
    if not cache.get("rows") and not cache.get("verdicts"):
        return None
    return (
        f"reused from earlier evaluations: {cache['rows']} row runs and {cache['verdicts']} "
        f"verdicts, saving ${cache['saved_usd']:.6f} ({cache['saved_tokens']:,} tokens)"
    )


def markdown(report: dict[str, Any]) -> str:
    out = [f"# Evaluation of {report['definition']}", "", f"Run `{report['id']}`.", ""]
    reused = reuse_line(report)
    if reused:
        out += [reused[0].upper() + reused[1:] + ".", ""]
    for table in tables(report):
        out.append("| " + " | ".join(table[0]) + " |")
        out.append("|" + " --- |" * len(table[0]))
        out += [
            "| " + " | ".join(_one_line(c).replace("|", "\\|") for c in row) + " |"
            for row in table[1:]
        ]
        out.append("")
    return "\n".join(out)


def html_page(report: dict[str, Any]) -> str:
    """One file, no scripts or links: readable anywhere without a server."""
    title = html.escape(f"Evaluation of {report['definition']}")
    body = [f"<h1>{title}</h1>", f"<p>Run <code>{html.escape(report['id'])}</code></p>"]
    reused = reuse_line(report)
    if reused:
        body.append(f"<p>{html.escape(reused[0].upper() + reused[1:])}.</p>")
    for table in tables(report):
        head = "".join(f"<th>{html.escape(c)}</th>" for c in table[0])
        rows = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
            for row in table[1:]
        )
        body.append(f"<table><tr>{head}</tr>{rows}</table>")
    style = "body{font-family:sans-serif}table{border-collapse:collapse;margin:1em 0}" \
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}"  # fmt: skip
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
        f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n"
    )


def junit(report: dict[str, Any]) -> str:
    """One test case per row, variant and evaluator; a case fails when the row fails it."""
    root = ElementTree.Element("testsuites")
    total = failures = 0
    for name in report["variants"]:
        suite = ElementTree.SubElement(root, "testsuite", name=f"{report['definition']}[{name}]")
        count = failed = 0
        for row in report["rows"]:
            run = row["variants"][name]
            for evaluator, score in run["scores"].items():
                case = ElementTree.SubElement(
                    suite, "testcase", classname=evaluator, name=f"line {row['line']}"
                )
                count += 1
                bad = score["passed"] is False or score["error"] is not None
                if bad:
                    failed += 1
                    message = score["error"] or score["detail"] or "failed"
                    element = ElementTree.SubElement(case, "failure", message=str(message)[:200])
                    element.text = json.dumps(run["outputs"], default=str)[:2000]
        suite.set("tests", str(count))
        suite.set("failures", str(failed))
        total, failures = total + count, failures + failed
    root.set("tests", str(total))
    root.set("failures", str(failures))
    return ElementTree.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def gate_value(report: dict[str, Any], name: str) -> tuple[bool, float | None]:
    """What `--fail-under NAME=...` compares: an evaluator's mean, else an aggregate metric
    of the first variant (`METRIC`, or `EVALUATOR.METRIC` where two evaluators log it).
    (known, value); a value that is not a number is None."""
    metric = report["metrics"].get(name)
    if metric is not None:
        return True, metric["mean"]
    found = [
        value
        for evaluator, metrics in report.get("aggregates", {}).items()
        for key, value in metrics.items()
        if name in (key, f"{evaluator}.{key}")
    ]
    if len(found) != 1:  # an aggregator that failed may have been the one to log it
        first = report["variants"][next(iter(report["variants"]))]
        return bool(first.get("aggregate_errors")), None
    value = found[0]
    return True, float(value) if isinstance(value, int | float) else None


def gate_failures(report: dict[str, Any], gates: dict[str, float]) -> list[str]:
    """Each `--fail-under NAME=VALUE` the first variant's mean (or aggregate metric) is
    below, in one line."""
    found = []
    for name, least in gates.items():
        _, value = gate_value(report, name)
        if value is None or value < least:
            shown = "no score" if value is None else f"{value:.3f}"
            shown = f"mean {shown}" if name in report["metrics"] else shown
            found.append(f"{name}: {shown} is below --fail-under {least:g}")
    return found
