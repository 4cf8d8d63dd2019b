"""
``GET /api/logs``, ``GET /api/runs`` and ``GET /api/runs/{flow_run_id}``: the store, as JSON.

A page carries ``next``: the cursor to pass as ``after`` for the following
page, or null on the last one. Pages do not shift when entries or runs
arrive in between.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response

from structflow.server._json import error_response, json_response
from structflow.server._params import LOG_FILTERS, BadParameter, read_params
from structflow.server._stores import Stores
from structflow.store import LogEntry, RunSummary, Store, StoreError

__all__ = ["LOGS_LIMIT", "RUNS_LIMIT", "bad_parameter", "get_logs", "get_run", "get_runs"]

T = TypeVar("T")
#: ``limit`` of /api/logs: default, lowest, highest.
LOGS_LIMIT = (100, 1, 1000)
#: ``limit`` of /api/runs: default, lowest, highest.
RUNS_LIMIT = (50, 1, 500)
LOGS_PARAMS = (*LOG_FILTERS, "limit", "order", "after")
RUNS_PARAMS = ("flow_name", "state", "since", "limit", "after")


def bad_parameter(exc: BadParameter) -> Response:
    """The 400 answer naming the parameter to blame."""
    return error_response(400, str(exc), exc.parameter)


def params_of(request: Request, allowed: tuple[str, ...], **options: Any) -> dict[str, Any]:
    """The request's query parameters read by :func:`read_params`."""
    return read_params(
        request.query_params.multi_items(), len(request.scope["query_string"]), allowed, **options
    )


async def _read(request: Request, work: Callable[[Store], T]) -> T | Response:
    """Run *work* with the reading connection; a bad value is a 400, a failed database a 503."""
    stores: Stores = request.app.state.stores
    try:
        return await stores.read(work)
    except ValueError as exc:
        return bad_parameter(BadParameter(str(exc)))
    except StoreError as exc:
        return error_response(503, str(exc), headers={"Retry-After": "1"})


def page(items: list[Any], limit: int) -> tuple[list[Any], str | None]:
    """The first *limit* of *items* (fetched one more than *limit*) and the next page's cursor."""
    if len(items) > limit:
        items = items[:limit]
        return items, items[-1].cursor
    return items, None


async def _list(
    request: Request,
    allowed: tuple[str, ...],
    bounds: tuple[int, int, int],
    fetch: Callable[[Store, dict[str, Any], int], list[Any]],
    key: str,
    to_dict: Callable[[Any], dict[str, Any]],
) -> Response:
    """A page of a list route: parameters checked, one more item fetched to know of a next page."""
    try:
        kwargs = params_of(request, allowed, limit=bounds)
    except BadParameter as exc:
        return bad_parameter(exc)
    limit = kwargs.pop("limit")
    got = await _read(request, lambda store: fetch(store, kwargs, limit + 1))
    if isinstance(got, Response):
        return got
    items, after = page(got, limit)
    return json_response({key: [to_dict(item) for item in items], "next": after})


async def get_logs(request: Request) -> Response:
    """Entries that match every filter given, oldest first (``order=desc``: newest first)."""

    def logs(store: Store, kwargs: dict[str, Any], limit: int) -> list[LogEntry]:
        return store.logs(**kwargs, limit=limit)

    return await _list(request, LOGS_PARAMS, LOGS_LIMIT, logs, "entries", LogEntry.to_dict)


async def get_runs(request: Request) -> Response:
    """Flow runs, newest first."""

    def runs(store: Store, kwargs: dict[str, Any], limit: int) -> list[RunSummary]:
        return store.runs(**kwargs, limit=limit)

    return await _list(request, RUNS_PARAMS, RUNS_LIMIT, runs, "runs", run_dict)


def run_dict(run: RunSummary) -> dict[str, Any]:
    """A run as the API shows it: :meth:`RunSummary.to_dict` and its task count."""
    return {**run.to_dict(), "task_count": len(run.task_runs)}


async def get_run(request: Request) -> Response:
    """One flow run's summary, with its task runs; 404 when the store has no entry of it."""
    try:
        params_of(request, ())
    except BadParameter as exc:
        return bad_parameter(exc)
    flow_run_id: str = request.path_params["flow_run_id"]

    def run(store: Store) -> RunSummary | None:
        return store.run(flow_run_id)

    got = await _read(request, run)
    if isinstance(got, Response):
        return got
    if got is None:
        return error_response(404, f"the store has no entry of flow run {flow_run_id!r}")
    return json_response(run_dict(got))
