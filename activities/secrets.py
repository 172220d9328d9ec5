"""Secrets: what the worker's operator declared (`SECRETS_FILE`, `SECRET_<NAME>` variables),
filled into the param slots the workflow marked, and redacted from whatever leaves the
activity. Nothing here renders a template: a param's text is data, whatever it says."""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

from workflows.contracts import SecretSlot
from workflows.errors import FailureType

ENV_PREFIX = "SECRET_"


def declared_secrets(env: Mapping[str, str]) -> dict[str, str]:
    """The operator's secrets: the `SECRETS_FILE`, then `SECRET_<NAME>` variables (which win).
    Nothing else in the environment (provider keys, PAYLOAD_KEY, DATABASE_URL...) is one."""
    secrets = read_secrets_file(Path(env["SECRETS_FILE"])) if env.get("SECRETS_FILE") else {}
    for key, value in env.items():
        if key.startswith(ENV_PREFIX) and len(key) > len(ENV_PREFIX):
            secrets[key.removeprefix(ENV_PREFIX)] = value
    return secrets


def read_secrets_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines; blank lines and # comments ignored."""
    secrets: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            secrets[key.strip()] = value.strip().strip("'\"")
    return secrets


def fill_slots(
    params: dict[str, Any], slots: list[SecretSlot], secrets: Mapping[str, str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The params with each slot's text put together from its parts, and the secrets used."""
    used: dict[str, str] = {}
    filled = copy.deepcopy(params) if slots else params
    for slot in slots:
        text = []
        for index, part in enumerate(slot.parts):
            if index % 2 == 0:
                text.append(part)
                continue
            if part not in secrets:
                raise _refused(
                    f"secret '{part}' is not declared on the worker: set {ENV_PREFIX}{part} in "
                    "its environment or add it to its SECRETS_FILE",
                    FailureType.SECRET_MISSING,
                )
            used[part] = secrets[part]
            text.append(secrets[part])
        _put(filled, slot.path, "".join(text))
    return filled, used


def _put(params: Any, path: list[str | int], value: str) -> None:
    *parents, last = path
    target = params
    try:
        for key in parents:
            target = target[key]
        target[last]  # the slot must name a place the workflow rendered
        target[last] = value
    except (KeyError, IndexError, TypeError):
        raise _refused(
            f"a secret slot names no param at {'.'.join(map(str, path))}",
            FailureType.INVALID_PARAMS,
        ) from None


def _refused(message: str, kind: str) -> Exception:
    """A step failure no retry can mend. Temporal is imported here, not at the top, so the
    starter reads its settings (declared_secrets) without loading it."""
    from temporalio.exceptions import ApplicationError

    return ApplicationError(message, type=kind, non_retryable=True)


MIN_REDACTED = 4
"""Shorter secret values are not redacted: they would blank ordinary words."""


def redact(value: Any, secrets: Mapping[str, str]) -> Any:
    """Replace every secret value in a message (or inside a result) with its name, in the
    forms error text gives it too: any case (a host name is lower-cased), percent-encoded,
    JSON- or repr-escaped, IDNA (punycode)."""
    if not secrets:
        return value
    if isinstance(value, dict):
        return {key: redact(item, secrets) for key, item in value.items()}
    if isinstance(value, list):
        return [redact(item, secrets) for item in value]
    if not isinstance(value, str):
        return value
    for name, secret in sorted(secrets.items(), key=lambda item: -len(item[1])):
        if len(secret) >= MIN_REDACTED:
            value = _pattern(secret).sub(f"secrets.{name}", value)
    return value


@functools.lru_cache(maxsize=256)
def _pattern(secret: str) -> re.Pattern[str]:
    """Every form of the secret, longest first, matched in any case."""
    forms = {
        secret,
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret, safe=""),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        repr(secret)[1:-1],
    }
    with contextlib.suppress(UnicodeError):  # not a valid host name: never shown as one
        forms.add(secret.encode("idna").decode("ascii"))
    ordered = sorted(forms, key=len, reverse=True)
    return re.compile("|".join(re.escape(form) for form in ordered), re.IGNORECASE)
