"""
``GET /api/logs/stream``: the live tail as Server-Sent Events.

Each matching entry is one event::

    id: <the entry's cursor>
    event: entry
    data: <the entry as JSON>

First come the latest ``limit`` stored matches (10 by default), or, with
``after`` (or the ``Last-Event-ID`` header a reconnecting client sends),
every match after that cursor; then each new match as it lands. A comment
line every :data:`KEEPALIVE_SECONDS` keeps proxies from closing an idle
stream. The store's ``follow`` runs on a thread of its own with a connection
of its own; when the client goes away the connection is closed, which ends
the thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import AsyncIterator, Iterator

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from structflow.server._json import error_response
from structflow.server._params import LOG_FILTERS, BadParameter
from structflow.server._query import bad_parameter, params_of
from structflow.server._stores import Stores, TooManyTails
from structflow.store import LogEntry, Store, StoreError

__all__ = ["KEEPALIVE_SECONDS", "stream_logs"]

#: Seconds between keep-alive comments on an idle stream.
KEEPALIVE_SECONDS = 10.0
#: Seconds between the store's looks for new entries.
POLL_SECONDS = 0.5
#: Seconds a client waits before reconnecting (the ``retry:`` field).
RETRY_MS = 2000
STREAM_PARAMS = (*LOG_FILTERS, "limit", "after")
STREAM_LIMIT = (10, 1, 1000)
_QUEUE = 256
_END = object()


def event(entry: LogEntry) -> bytes:
    """One SSE event of *entry*."""
    return b"id: %s\nevent: entry\ndata: %s\n\n" % (
        entry.cursor.encode("ascii"),
        orjson.dumps(entry.to_dict()),
    )


def _pump(
    entries: Iterator[LogEntry],
    queue: asyncio.Queue[object],
    loop: asyncio.AbstractEventLoop,
    stop: threading.Event,
) -> None:
    """Move entries from the store's ``follow`` to *queue* (on its own thread)."""

    def put(item: object) -> bool:
        future = asyncio.run_coroutine_threadsafe(queue.put(item), loop)
        while not stop.is_set():
            try:
                future.result(timeout=1.0)
                return True
            except concurrent.futures.TimeoutError:
                continue
        future.cancel()
        return False

    try:
        for entry in entries:
            if stop.is_set() or not put(entry):
                return
    except StoreError as exc:
        put(exc)
        return
    except RuntimeError:  # the event loop closed under us: the server is stopping
        return
    with contextlib.suppress(RuntimeError):
        put(_END)


async def _events(
    entries: Iterator[LogEntry], store: Store, stores: Stores
) -> AsyncIterator[bytes]:
    queue: asyncio.Queue[object] = asyncio.Queue(maxsize=_QUEUE)
    stop = threading.Event()
    loop = asyncio.get_running_loop()
    pump = threading.Thread(
        target=_pump, args=(entries, queue, loop, stop), name="structflow-live-tail", daemon=True
    )
    pump.start()
    try:
        yield b"retry: %d\n\n" % RETRY_MS
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
            except TimeoutError:
                yield b": keep-alive\n\n"
                continue
            if item is _END:
                return
            if isinstance(item, StoreError):
                yield b"event: error\ndata: %s\n\n" % orjson.dumps({"error": str(item)})
                return
            assert isinstance(item, LogEntry)
            yield event(item)
    finally:
        stop.set()
        # Closing the connection ends the store's follow; it may be inside a
        # query now, so it is closed from another thread.
        threading.Thread(target=stores.close_tail, args=(store,), daemon=True).start()


async def stream_logs(request: Request) -> Response:
    """Server-Sent Events of the entries that match the filters, as they land."""
    try:
        kwargs = params_of(request, STREAM_PARAMS, limit=STREAM_LIMIT, check_logs=True)
    except BadParameter as exc:
        return bad_parameter(exc)
    if "after" not in kwargs:
        last = request.headers.get("last-event-id")
        if last:
            kwargs["after"] = last.strip()
    stores: Stores = request.app.state.stores
    try:
        store = await stores.open_tail()
    except TooManyTails as exc:
        return error_response(503, str(exc), headers={"Retry-After": "5"})
    except StoreError as exc:
        return error_response(503, str(exc), headers={"Retry-After": "1"})
    try:
        entries = store.follow(**kwargs, poll_interval=POLL_SECONDS)
    except ValueError as exc:
        stores.close_tail(store)
        return bad_parameter(BadParameter(str(exc)))
    return StreamingResponse(
        _events(entries, store, stores),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
