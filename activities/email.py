"""send_email over SMTP (stdlib smtplib, in a thread)."""

from __future__ import annotations

import asyncio
import hashlib
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from temporalio import activity

from workflows.actions import SendEmailParams
from workflows.contracts import ActionInput

SENT = "sent"


@dataclass(frozen=True)
class SmtpSettings:
    host: str = "localhost"
    port: int = 25
    user: str | None = None
    password: str | None = None
    starttls: bool = False
    sender: str = "workflows@localhost"


class EmailActions:
    def __init__(self, settings: SmtpSettings) -> None:
        self._settings = settings

    async def send(self, params: SendEmailParams, request: ActionInput) -> dict[str, Any]:
        """Sends once: a retry after the server took the mail (recorded as a heartbeat)
        returns without sending again."""
        recipients = [params.to] if isinstance(params.to, str) else list(params.to)
        message = EmailMessage()
        message["From"] = self._settings.sender
        message["To"] = ", ".join(recipients)
        message["Subject"] = params.subject
        # The same id on every retry, so receivers and logs can tell a resend from a new mail.
        digest = hashlib.sha256(request.idempotency_key.encode()).hexdigest()[:32]
        message["Message-ID"] = f"<{digest}@llm-workflows>"
        message.set_content(params.body)
        result = {"message_id": message["Message-ID"], "to": recipients}
        if SENT in activity.info().heartbeat_details:
            return result
        await asyncio.to_thread(self._deliver, message)
        activity.heartbeat(SENT)
        return result

    def _deliver(self, message: EmailMessage) -> None:
        settings = self._settings
        with smtplib.SMTP(settings.host, settings.port, timeout=30) as smtp:
            if settings.starttls:
                smtp.starttls()
            if settings.user:
                smtp.login(settings.user, settings.password or "")
            smtp.send_message(message)
