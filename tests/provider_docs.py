"""The docs' provider tables, written from the provider table (workflows/providers.py), so
the docs and the code cannot drift: tests/test_provider_table.py fails when a doc's table is
not what this renders. `python -m tests.provider_docs` rewrites them in place."""

from __future__ import annotations

import re
from pathlib import Path

from workflows.providers import PROVIDERS, ProviderSpec, compatible

ROOT = Path(__file__).resolve().parent.parent
DOCS = {
    "README.md": ("environment", "capabilities"),
    "docs/language.md": ("environment",),
}
"""Which tables each doc holds, between `<!-- providers:NAME -->` and `<!-- /providers:NAME -->`."""

ROWS = [*(spec for spec in PROVIDERS if spec.wire != "mock"), compatible("<name>")]
ROWS += [spec for spec in PROVIDERS if spec.wire == "mock"]
"""The table's providers, then any OpenAI-compatible server, the offline mock last."""


def environment() -> str:
    lines = ["| provider | worker environment | model names |", "| --- | --- | --- |"]
    for spec in ROWS:
        names = ", ".join(f"`{name}`" for name in spec.examples)
        lines.append(f"| {spec.title} | {_environment(spec)} | {names} |")
    return "\n".join(lines)


def _environment(spec: ProviderSpec) -> str:
    if spec.needs == "nothing":
        return "nothing"
    if spec.needs == "base url":
        default = f" (default `{spec.default_base_url}`)" if spec.default_base_url else ""
        return f"`{spec.base_url_env}`{default}, optional `{spec.key_env}`"
    return f"`{spec.key_env}`, optional `{spec.base_url_env}`"


def capabilities() -> str:
    columns = [
        "provider", "temperature", "`max_tokens` sent as", "structured output", "streaming",
        "images", "tools", "prompt caching", "batch API", "service tiers", "paced by",
    ]  # fmt: skip
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    for spec in ROWS:
        cells = [
            f"`{spec.name}`",
            _temperature(spec),
            _max_tokens(spec),
            spec.structured_output.replace("json_schema", "`response_format` json_schema"),
            _yes(spec.streaming),
            _yes(spec.images),
            _yes(spec.tools),
            spec.prompt_caching,
            _yes(spec.batch),
            ", ".join(f"`{tier}`" for tier in spec.service_tiers) or "none",
            f"`{spec.rate_headers}` rate-limit headers" if spec.rate_headers else "not paced",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _temperature(spec: ProviderSpec) -> str:
    if spec.wire == "mock":
        return "ignored"
    if not spec.family("").temperature:
        return "not sent"
    refused = [family.label for family in spec.families if not family.temperature]
    return "sent" + "".join(f", not to {label}" for label in refused)


def _max_tokens(spec: ProviderSpec) -> str:
    if spec.wire == "mock":
        return "ignored"
    said = f"`{spec.family('').max_tokens_param}`"
    if spec.default_max_tokens:
        said += f" ({spec.default_max_tokens} when unset)"
    other = [f for f in spec.families if f.max_tokens_param != spec.family("").max_tokens_param]
    return said + "".join(f"; `{f.max_tokens_param}` to {f.label}" for f in other)


def _yes(value: bool) -> str:
    return "yes" if value else "no"


def rendered(name: str) -> str:
    return {"environment": environment, "capabilities": capabilities}[name]()


def block(name: str) -> re.Pattern[str]:
    return re.compile(rf"(<!-- providers:{name} .*?-->\n)(.*?)(\n<!-- /providers:{name} -->)", re.S)


def found(text: str, name: str) -> str | None:
    match = block(name).search(text)
    return match[2] if match else None


def rewrite() -> None:
    for doc, names in DOCS.items():
        path = ROOT / doc
        text = path.read_text(encoding="utf-8")
        for name in names:
            text = block(name).sub(lambda m, n=name: m[1] + rendered(n) + m[3], text)
        path.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    rewrite()
