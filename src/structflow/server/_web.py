"""
``GET /``: the web view, plain HTML, CSS and JavaScript served from the package.

No build step and nothing fetched from elsewhere: ``static/`` holds the
page, its style sheet and its script, which read the JSON API and the live
tail. ``/`` is the runs page and ``/runs/{flow_run_id}`` a run's page; both
are the same file, which draws what its address says (filters in the
query string, so an address can be shared).
"""

from __future__ import annotations

from importlib import resources

from starlette.requests import Request
from starlette.responses import Response
from starlette.staticfiles import StaticFiles

__all__ = ["page", "static_files"]


def _page_bytes() -> bytes:
    return resources.files("structflow.server").joinpath("static", "index.html").read_bytes()


async def page(_request: Request) -> Response:
    """The page (runs page or run page: the script reads the address)."""
    return Response(_page_bytes(), media_type="text/html", headers={"Cache-Control": "no-cache"})


def static_files() -> StaticFiles:
    """The page's style sheet and script."""
    return StaticFiles(packages=[("structflow.server", "static")])
