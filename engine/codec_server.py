"""`starter.py codec-server`: the codec server (activities/codec.py) built from the settings,
served on 127.0.0.1 until interrupted, so the Temporal UI can show decrypted payloads."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable

from activities.codec import codec_from_key, codec_server, new_key
from engine.settings import Settings
from workflows.errors import UsageError


async def serve(
    settings: Settings, port: int, origin: str | None, note: Callable[[str], None]
) -> None:
    """Serve for the UI at `origin` (default: TEMPORAL_UI_URL). The token is
    CODEC_SERVER_TOKEN, else a new one that `note` shows in the endpoint to set in the UI."""
    codec = codec_from_key(settings.payload_key, settings.payload_key_id)
    if codec is None:
        raise UsageError(f"set PAYLOAD_KEY first (a new one: {new_key()})")
    origin = (origin or settings.ui_url).rstrip("/")
    token = settings.codec_server_token or secrets.token_urlsafe(24)
    server = codec_server(codec, port, origin, token)
    shown = "$CODEC_SERVER_TOKEN" if settings.codec_server_token else token
    note(
        f"codec server for {origin}: in the UI's codec settings, set the endpoint to "
        f"http://127.0.0.1:{port}/{shown}/ (other clients: Authorization: Bearer {shown})"
    )
    try:
        await asyncio.to_thread(server.serve_forever)
    finally:
        server.server_close()
