"""Webhook triggers: a form, a ticket system or a repository starts runs by POSTing JSON to
`/triggers/NAME` on the REST API, with no client of its own.

The operator declares each trigger in TRIGGERS_FILE (YAML): the definition it runs (a file
under DEFINITIONS_DIR, validated when the API starts, and run as validated), how the sender
proves itself (an HMAC-SHA256 signature of the body, as GitHub sends it, or a token), where
the delivery id is, and which parts of the body become which variables:

    triggers:
      ticket-opened:
        definition: definitions/triage.yaml
        hmac_secret: TICKET_HOOK_KEY          # a secret's name (SECRET_TICKET_HOOK_KEY)
        signature_header: X-Hub-Signature-256 # "sha256=<hex>" (the default)
        delivery_header: X-GitHub-Delivery    # the default is X-Delivery-Id
        variables: {title: issue.title, author: issue.user.login}

Keys never come from the file: a trigger names one of the operator's secrets (SECRETS_FILE,
SECRET_<NAME>). A delivery becomes the run `NAME-<delivery id>`, and Temporal refuses a
second run with that id, so a redelivered webhook starts nothing twice.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from engine import rest_definitions
from engine.settings import Settings
from workflows.contracts import LoadedDefinition
from workflows.errors import UsageError

DEFAULT_SIGNATURE_HEADER = "X-Hub-Signature-256"
DEFAULT_DELIVERY_HEADER = "X-Delivery-Id"
TOKEN_HEADER = "X-Trigger-Token"
DELIVERY_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
TRIGGER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class TriggerSpec(BaseModel):
    """One trigger as TRIGGERS_FILE declares it."""

    model_config = ConfigDict(extra="forbid")

    definition: str
    hmac_secret: str | None = None
    """The name of the secret the body's HMAC-SHA256 is keyed with."""
    signature_header: str = DEFAULT_SIGNATURE_HEADER
    token_secret: str | None = None
    """Instead of a signature: the name of the secret sent as `X-Trigger-Token`."""
    delivery_header: str = DEFAULT_DELIVERY_HEADER
    variables: dict[str, str] = {}
    """Variable name: dotted path into the JSON body (`issue.title`)."""
    offline: bool = False

    @model_validator(mode="after")
    def _one_proof(self) -> TriggerSpec:
        if (self.hmac_secret is None) == (self.token_secret is None):
            raise ValueError("give hmac_secret or token_secret (one of them)")
        return self


@dataclass(frozen=True)
class Trigger:
    name: str
    spec: TriggerSpec
    loaded: LoadedDefinition
    key: bytes

    def authentic(self, body: bytes, headers: Mapping[str, str]) -> bool:
        """Whether the sender holds the key: the signature of `body`, or the token, compared
        in constant time."""
        if self.spec.token_secret is not None:
            token = headers.get(TOKEN_HEADER.lower(), "").encode()
            return hmac.compare_digest(hashlib.sha256(token).digest(), _digest(self.key))
        signature = headers.get(self.spec.signature_header.lower(), "").removeprefix("sha256=")
        expected = hmac.new(self.key, body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(signature.strip().lower().encode(), expected.encode())

    def delivery_id(self, headers: Mapping[str, str]) -> str:
        given = headers.get(self.spec.delivery_header.lower(), "").strip()
        if not DELIVERY_PATTERN.match(given):
            raise UsageError(
                f"trigger {self.name}: send the delivery's id in {self.spec.delivery_header} "
                "(1-128 letters, digits, '.', '_', ':' or '-'): redeliveries are refused by it"
            )
        return given

    def variables(self, body: Any) -> dict[str, Any]:
        """The run's variables, read from the body as the trigger maps them."""
        if not isinstance(body, dict):
            raise UsageError(f"trigger {self.name}: the body must be a JSON object")
        found: dict[str, Any] = {}
        for variable, path in self.spec.variables.items():
            value: Any = body
            for part in path.split("."):
                if not isinstance(value, dict) or part not in value:
                    raise UsageError(
                        f"trigger {self.name}: the body has no {path!r} (mapped to variable "
                        f"{variable!r})"
                    )
                value = value[part]
            found[variable] = value
        return found


def _digest(key: bytes) -> bytes:
    return hashlib.sha256(key).digest()


def load_triggers(settings: Settings) -> dict[str, Trigger]:
    """The triggers of TRIGGERS_FILE, each definition loaded and validated (with its mapped
    variables) now, so a wrong file stops the API from starting, in one line."""
    path = settings.triggers_file
    if path is None:
        return {}
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise UsageError(f"TRIGGERS_FILE {path}: {str(exc).splitlines()[0]}") from None
    declared = raw.get("triggers") if isinstance(raw, dict) else None
    if not isinstance(declared, dict):
        raise UsageError(f"TRIGGERS_FILE {path}: write `triggers:` and a trigger per name")
    return {name: _trigger(str(name), spec, settings, path) for name, spec in declared.items()}


def _trigger(name: str, raw: Any, settings: Settings, path: Path) -> Trigger:
    where = f"TRIGGERS_FILE {path}: trigger {name!r}"
    if not TRIGGER_NAME.match(name):
        raise UsageError(f"{where}: use letters, digits, '.', '_' and '-' in a trigger's name")
    try:
        spec = TriggerSpec.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"])
        raise UsageError(f"{where}: {field + ': ' if field else ''}{error['msg']}") from None
    secret = spec.hmac_secret or spec.token_secret or ""
    if secret not in settings.secrets:
        raise UsageError(
            f"{where}: no secret {secret!r} is declared (set SECRET_{secret} or put it in "
            "SECRETS_FILE)"
        )
    loaded = rest_definitions.load_file(spec.definition, settings)
    declared = loaded.definition.workflow.variables
    for variable in spec.variables:
        if variable not in declared:
            raise UsageError(
                f"{where}: maps {variable!r}, which {spec.definition} does not declare "
                f"(it has {', '.join(sorted(declared)) or 'none'})"
            )
    return Trigger(name, spec, loaded, settings.secrets[secret].encode())
