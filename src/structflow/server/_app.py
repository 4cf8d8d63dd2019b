"""
:func:`create_app`: the ASGI application of ``structflow serve``.

=======================================  =========================================
route                                    what
=======================================  =========================================
``POST /api/logs``                       ingest NDJSON (gzip too)
``GET /api/logs``                        entries, filtered, paged
``GET /api/logs/stream``                 the live tail (Server-Sent Events)
``GET /api/runs``                        flow runs, newest first, paged
``GET /api/runs/{flow_run_id}``          one run with its task runs
``GET /api/openapi.json``                the OpenAPI description
``POST /graphql``                        GraphQL: flow runs → task runs → logs
``GET /`` and ``GET /runs/{id}``         the web view
=======================================  =========================================
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from structflow.server._auth import Guard
from structflow.server._graphql import graphql_app
from structflow.server._ingest import ingest
from structflow.server._json import error_response
from structflow.server._openapi import openapi
from structflow.server._query import get_logs, get_run, get_runs
from structflow.server._stores import Stores
from structflow.server._stream import stream_logs
from structflow.server._web import page, static_files
from structflow.store._configured import check_retention_days
from structflow.store._retention import Retention

__all__ = ["create_app"]


async def _not_found(_request: Request, _exc: Exception) -> Response:
    return error_response(404, "no such route; see /api/openapi.json for the JSON API")


async def _not_allowed(request: Request, _exc: Exception) -> Response:
    return error_response(405, f"{request.method} is not allowed on {request.url.path}")


def create_app(store: str, token: str = "", *, retention_days: float = 0.0) -> Starlette:
    """
    Return the ASGI application serving the log store at *store*.

    The store is opened when the application starts (its lifespan) and
    closed when it stops. Run it with ``structflow serve``, or with any ASGI
    server (``uvicorn``, ``hypercorn``) behind your own proxy.

    Args:
        store: the store's url, as :func:`structflow.store.connect` takes it.
        token: the bearer token every request for data must carry
            (``Authorization: Bearer <token>``); ``""``: none.
        retention_days: prune entries older than this many days as lines
            are stored: once an hour, at most 5,000 after one request
            (``0``: keep everything).

    Raises:
        ValueError: *retention_days* is not a number of days >= 0.

    .. versionadded:: 0.1.0
    """
    stores = Stores(store, Retention(check_retention_days(retention_days, "create_app()")))

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        stores.open()
        try:
            yield
        finally:
            stores.close()

    routes = [
        Route("/api/logs", ingest, methods=["POST"]),
        Route("/api/logs", get_logs, methods=["GET"]),
        Route("/api/logs/stream", stream_logs, methods=["GET"]),
        Route("/api/runs", get_runs, methods=["GET"]),
        Route("/api/runs/{flow_run_id:path}", get_run, methods=["GET"]),
        Route("/api/openapi.json", openapi, methods=["GET"]),
        Route("/graphql", graphql_app(stores)),
        Route("/", page, methods=["GET"]),
        Route("/runs/{flow_run_id:path}", page, methods=["GET"]),
        Mount("/static", static_files()),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(Guard, token=token)],
        lifespan=lifespan,
        exception_handlers={404: _not_found, 405: _not_allowed},
    )
    app.state.stores = stores
    return app
