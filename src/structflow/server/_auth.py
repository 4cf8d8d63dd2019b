"""
The bearer token, and the headers every answer carries.

With a token, every request for data (ingest, the JSON API, the live tail,
GraphQL, the OpenAPI description) must carry ``Authorization: Bearer
<token>``; the token is compared in constant time. The web view's files
(the page, its script and style sheet) hold no data and are served to
anyone, so a browser can load the page, which then asks for the token once
and sends it with each of its requests.
"""

from __future__ import annotations

import hmac

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from structflow.server._json import error_response

__all__ = ["SECURITY_HEADERS", "Guard"]

#: Headers added to every answer: no framing, no sniffing, no referrer, same-origin scripts only.
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'; "
        b"base-uri 'none'; form-action 'self'",
    ),
)


def is_public(path: str) -> bool:
    """Whether *path* is one of the web view's files, served without the token."""
    return path == "/" or path.startswith(("/runs/", "/static/")) or path == "/favicon.ico"


class Guard:
    """
    ASGI middleware: the token check (when there is a token) and the security headers.

    Args:
        app: the application behind it.
        token: the token requests must carry; ``""``: none.
    """

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._expected = f"Bearer {token}".encode() if token else b""

    def _authorized(self, scope: Scope) -> bool:
        if not self._expected or is_public(scope["path"]):
            return True
        for name, value in scope.get("headers") or ():
            if name == b"authorization":
                return hmac.compare_digest(value.strip(), self._expected)
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *SECURITY_HEADERS]
            await send(message)

        if not self._authorized(scope):
            refusal = error_response(
                401,
                "this server needs a token: send the header 'Authorization: Bearer <token>'",
                headers={"WWW-Authenticate": 'Bearer realm="structflow"'},
            )
            await refusal(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)
