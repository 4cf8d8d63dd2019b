"""
``structflow serve``: one place where every machine's logs arrive.

An ASGI application (Starlette, served by uvicorn) over a log store:
NDJSON ingest from :class:`structflow.handlers.HTTPHandler`, a JSON query
API with cursor pages, a live tail as Server-Sent Events, GraphQL, and a
web view. Install it with the ``structflow[server]`` extra; start it with
``structflow serve`` or mount :func:`create_app` in an ASGI server of your
own.

Importing this package loads no web framework; :func:`create_app` does.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from structflow.server._app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from structflow.server._app import create_app

        return create_app
    raise AttributeError(f"module 'structflow.server' has no attribute {name!r}")
