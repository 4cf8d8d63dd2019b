"""
Request bodies with a size limit, gzip included.

A body is read chunk by chunk and refused as soon as it passes the limit;
a gzip body is inflated with the same limit on what it inflates to, so a
small compressed body cannot expand into gigabytes.
"""

from __future__ import annotations

import zlib

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from structflow.server._json import error_response

__all__ = ["BodyError", "LimitBody", "read_body"]

_GZIP_WBITS = 16 + zlib.MAX_WBITS


class BodyError(Exception):
    """A body the server refuses; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _too_large(limit: int) -> BodyError:
    return BodyError(413, f"the request body is larger than {limit} bytes; send smaller batches")


def _declared_length(request: Request) -> int | None:
    text = request.headers.get("content-length")
    if text is None:
        return None
    if not text.isdigit():
        raise BodyError(400, f"Content-Length {text!r} is not a number of bytes")
    return int(text)


async def read_body(request: Request, limit: int) -> bytes:
    """
    Return the request's body, inflated when it is gzip (``Content-Encoding: gzip``).

    Raises:
        BodyError: 413 when the body (or what it inflates to) passes *limit*
            bytes, 415 for another content encoding, 400 for a broken gzip.
    """
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip", "x-gzip", ""):
        raise BodyError(
            415, f"Content-Encoding {encoding!r} is not supported; expected gzip or none"
        )
    declared = _declared_length(request)
    if declared is not None and declared > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    raw = b"".join(chunks)
    if encoding in ("identity", ""):
        return raw
    inflater = zlib.decompressobj(_GZIP_WBITS)
    try:
        body = inflater.decompress(raw, limit + 1)
    except zlib.error as exc:
        raise BodyError(400, f"the gzip body cannot be inflated ({exc})") from None
    if len(body) > limit or inflater.unconsumed_tail:
        raise _too_large(limit)
    if not inflater.eof:
        raise BodyError(400, "the gzip body is cut short")
    return body


class LimitBody:
    """
    ASGI middleware that answers 413 to a request whose body passes *limit* bytes.

    For apps that read the body themselves (the GraphQL endpoint).
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await error_response(413, str(_too_large(self.limit)))(scope, receive, send)
            return
        size = 0
        refused = False

        async def limited() -> Message:
            nonlocal size, refused
            message = await receive()
            if message["type"] == "http.request":
                size += len(message.get("body", b""))
                if size > self.limit:
                    refused = True
                    # The app sees an empty, finished body; the answer is ours.
                    return {"type": "http.request", "body": b"", "more_body": False}
            return message

        started = False

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                if not started:
                    started = True
                    await error_response(413, str(_too_large(self.limit)))(scope, receive, send)
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, limited, guarded_send)
