"""send_email over SMTP (stdlib smtplib, in a thread)."""

from __future__ import annotations

import asyncio
import hashlib
import smtplib
from email.message import EmailMessage
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.endpoints import SmtpSettings
from workflows.actions import SendEmailParams
from workflows.contracts import ActionInput
from workflows.errors import FailureType

SENT = "sent"
MAX_RECIPIENTS = 50


class EmailActions:
    def __init__(self, settings: SmtpSettings) -> None:
        self._settings = settings

    async def send(self, params: SendEmailParams, request: ActionInput) -> dict[str, Any]:
        """Sends once: a retry after the server took the mail (recorded as a heartbeat)
        returns without sending again."""
        recipients = [params.to] if isinstance(params.to, str) else list(params.to)
        if not 0 < len(recipients) <= MAX_RECIPIENTS:
            raise _refused(f"send_email: give 1 to {MAX_RECIPIENTS} recipients")
        message = EmailMessage()
        try:
            message["From"] = self._settings.sender
            message["To"] = ", ".join(recipients)
            message["Subject"] = params.subject
        except ValueError as exc:  # CR/LF in a header would let the text add headers
            raise _refused(f"send_email: {exc}") from None
        # The same id on every retry, so receivers and logs can tell a resend from a new mail.
        digest = hashlib.sha256(request.idempotency_key.encode()).hexdigest()[:32]
        message["Message-ID"] = f"<{digest}@llm-workflows>"
        message.set_content(params.body)
        result = {"message_id": message["Message-ID"], "to": recipients}
        if SENT in activity.info().heartbeat_details:
            return result
        try:
            refused = await asyncio.to_thread(self._deliver, message)
        except smtplib.SMTPRecipientsRefused as exc:
            reasons = _reasons(exc.recipients)
            raise _refused(f"send_email: every recipient was refused: {reasons}") from None
        activity.heartbeat(SENT)  # some recipients got it: a retry must not send again
        if refused:
            raise _refused(f"send_email: sent, but refused for {_reasons(refused)}")
        return result

    def _deliver(self, message: EmailMessage) -> dict[str, tuple[int, bytes]]:
        settings = self._settings
        with smtplib.SMTP(settings.host, settings.port, timeout=30) as smtp:
            if settings.starttls:
                smtp.starttls()
            if settings.user:
                smtp.login(settings.user, settings.password or "")
            return smtp.send_message(message)


def _refused(message: str) -> ApplicationError:
    return ApplicationError(message, type=FailureType.EMAIL_REFUSED, non_retryable=True)


def _reasons(refused: dict[str, tuple[int, bytes]]) -> str:
    return "; ".join(
        f"{address} ({code} {reply.decode(errors='replace')})"
        for address, (code, reply) in refused.items()
    )
