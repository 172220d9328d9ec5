"""Sign-in and safety for the workbench's pages (engine/web.py), in front of the API's gate.

A page accepts the API's `Authorization: Bearer` header, or the token entered once in the
sign-in form, kept in a session cookie (HttpOnly, SameSite=Strict, Secure over TLS) that this
middleware turns into that header for page paths only: the JSON API never reads the cookie,
so a page's session cannot be used cross-site against it. Every form that acts carries a CSRF
token (an HMAC of the session under a key made at start), checked unless the request brought
its own Authorization header (which no other site's page can send); and a browser's request
that says it comes from another site (Sec-Fetch-Site) may not post at all, to the pages or the
API. Every page is sent with a Content-Security-Policy that allows no inline script and no
other origin.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import quote, unquote

from starlette.datastructures import MutableHeaders

from engine.rest_auth import ApiConfig, App, Message, Receive, Scope, Send, Tokens

COOKIE = "workbench_session"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
PAGE_PREFIXES = ("/runs", "/definitions", "/sign-in", "/sign-out", "/static/")
"""Paths of the pages (and `/` itself); everything else is the JSON API, untouched."""
OPEN_PATHS = ("/sign-in", "/static/")
"""Page paths anyone may reach: the sign-in form and its stylesheet and script."""
POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "content-security-policy": POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}


def is_page(path: str) -> bool:
    return path == "/" or path.startswith(PAGE_PREFIXES)


def local_path(target: str | None) -> str:
    """Where to go after signing in: a path of this site, never another site (`//evil`)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/runs"
    return target


class Csrf:
    """Tokens tied to the session (the token, or `local` without tokens), valid until the
    server restarts: a form older than that asks to be sent again."""

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)

    def token(self, session: str) -> str:
        return hmac.new(self._key, session.encode(), hashlib.sha256).hexdigest()

    def valid(self, session: str, given: str) -> bool:
        return hmac.compare_digest(self.token(session), given)


class PageSession:
    """ASGI middleware, outside the gate: the session cookie becomes the bearer header for
    page paths, a page asked for without a session is sent to the sign-in form, and every
    page gets the safety headers."""

    def __init__(self, app: App, config: ApiConfig) -> None:
        self.app = app
        self.tokens = Tokens(config.tokens)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] not in SAFE_METHODS and _cross_site(scope):
            await _refuse_cross_site(send)
            return
        if not is_page(scope["path"]):
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        headers = dict(scope["headers"])
        own_header = b"authorization" in headers
        state["header_auth"] = own_header
        session = _cookie(headers.get(b"cookie", b"").decode("latin-1"))
        state["session"] = session if session and not own_header else ""
        if not own_header and session:
            scope["headers"] = [
                *scope["headers"],
                (b"authorization", f"Bearer {session}".encode("latin-1", "replace")),
            ]
        valid = own_header or not self.tokens or bool(session and self.tokens.find(session))
        if not valid and not scope["path"].startswith(OPEN_PATHS):
            await _to_sign_in(scope, send)
            return

        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    out.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, secured)


def _cross_site(scope: Scope) -> bool:
    """A browser says where a request comes from (Sec-Fetch-Site): another site's page may
    not post to a page or the API, even to one without tokens on loopback."""
    for name, value in scope["headers"]:
        if name == b"sec-fetch-site":
            return value not in (b"same-origin", b"none")
    return False


async def _refuse_cross_site(send: Send) -> None:
    body = b'{"error": "forbidden", "message": "sent from another site\'s page", "problems": []}'
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 403, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _cookie(header: str) -> str:
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE:
            return unquote(value)
    return ""


async def _to_sign_in(scope: Scope, send: Send) -> None:
    """A page without a (valid) session: GETs go to the sign-in form and come back after."""
    target = scope["path"] + (
        "?" + scope["query_string"].decode("latin-1") if scope["query_string"] else ""
    )
    status = 303 if scope["method"] in ("GET", "HEAD") else 401
    location = f"/sign-in?next={quote(target, safe='')}"
    headers = [(b"location", location.encode()), (b"content-length", b"0")]
    headers += [(k.encode(), v.encode()) for k, v in HEADERS.items()]
    headers.append((b"set-cookie", f"{COOKIE}=; Max-Age=0; Path=/; HttpOnly".encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b""})
