"""Secrets: `{{ secrets.NAME }}` stays a placeholder in the workflow (and so in history);
the action activity resolves it from the worker's environment and redacts it from errors."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment
from temporalio.exceptions import ApplicationError

_ENVIRONMENT = ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined)
_REFERENCE = re.compile(r"secrets(?:\.|\[\s*['\"])([A-Za-z_][A-Za-z0-9_]*)")


def secret_names(value: Any) -> set[str]:
    """The secret names a value's placeholders use."""
    if isinstance(value, dict):
        return set().union(*(secret_names(item) for item in value.values()))
    if isinstance(value, list):
        return set().union(*(secret_names(item) for item in value))
    return set(_REFERENCE.findall(value)) if isinstance(value, str) else set()


def read_secrets_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines; blank lines and # comments ignored."""
    secrets: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            secrets[key.strip()] = value.strip().strip("'\"")
    return secrets


def resolve_secrets(value: Any, secrets: Mapping[str, str]) -> Any:
    """Replace `{{ secrets.NAME }}` placeholders inside strings, lists and dicts."""
    if isinstance(value, dict):
        return {key: resolve_secrets(item, secrets) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve_secrets(item, secrets) for item in value]
    if not isinstance(value, str) or "secrets" not in value or "{{" not in value:
        return value
    try:
        return _ENVIRONMENT.from_string(value).render(secrets=secrets)
    except jinja2.UndefinedError as exc:
        raise ApplicationError(
            f"a secret is not set on the worker ({exc.message}): set it in the worker's "
            "environment or its SECRETS_FILE",
            type="SecretMissing",
            non_retryable=True,
        ) from None


def redact(text: str, secrets: Mapping[str, str]) -> str:
    """Replace every secret value in a message with the name it is known by."""
    for name, secret in sorted(secrets.items(), key=lambda item: -len(item[1])):
        if len(secret) >= 4:
            text = text.replace(secret, f"secrets.{name}")
    return text
