"""
``POST /graphql``: flow runs → task runs → logs, with the store's filters as arguments.

The schema is written out below (schema first, with Ariadne on
graphql-core): it is the reference, and ``docs/server.md`` shows it. Field
and argument names are camelCase; values are checked by the store's filter
rules, and an error names the argument as the query spells it. Lists page
with ``first`` and ``after`` (a cursor from ``pageInfo.endCursor``).

A query may ask for the logs of at most :data:`MAX_LOG_LISTS` runs and task
runs at once (each is one database query), and its body may be at most
:data:`MAX_QUERY_BYTES`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from ariadne import (
    EnumType,
    ObjectType,
    QueryType,
    ScalarType,
    make_executable_schema,
)
from ariadne.asgi import GraphQL
from ariadne.explorer import ExplorerHttp405
from graphql import GraphQLError, GraphQLResolveInfo
from starlette.types import ASGIApp

from structflow.server._body import LimitBody
from structflow.server._params import BadParameter, check_log_filters
from structflow.server._stores import Stores
from structflow.store import LogEntry, RunSummary, Store, StoreError, TaskRunSummary
from structflow.store._entries import rfc3339
from structflow.store._filters import parse_where_pairs

__all__ = ["MAX_LOG_LISTS", "MAX_QUERY_BYTES", "SCHEMA", "graphql_app"]

T = TypeVar("T")
#: What resolvers are given; its context is a dict (``stores``, ``request``, counters).
Info = GraphQLResolveInfo[dict[str, Any]]
#: Largest GraphQL request body.
MAX_QUERY_BYTES = 64 * 1024
#: Most ``logs`` lists (runs' and task runs') one query may ask for.
MAX_LOG_LISTS = 200
LOGS_FIRST = (100, 1, 1000)
RUNS_FIRST = (50, 1, 500)

#: The arguments of every ``logs`` field, besides the run it belongs to.
ENTRY_ARGS = """
    "The minimum level: a name (warning) or a number (30)."
    level: String
    "At or after this moment: 15m, 1h, 2d (that long ago) or an ISO 8601 time."
    since: String
    "Before this moment (same forms as since)."
    until: String
    "Words that must all be in the message."
    search: String
    "Field equality, each key:value (rows:3, user.id:u1)."
    where: [String!]
    first: Int = 100
    after: String
    order: Order = ASC""".strip("\n")

#: The schema the server runs.
SCHEMA = """
"An RFC 3339 time in UTC, such as 2024-06-01T12:00:00.123456Z."
scalar DateTime

"Any JSON value."
scalar JSON

"Time order of a list of entries."
enum Order {
  "Oldest first."
  ASC
  "Newest first."
  DESC
}

type Query {
  "Flow runs, newest first."
  flowRuns(
    flowName: String
    "Success, Failed, Running (any case)."
    state: String
    "Runs active at or after this moment."
    since: String
    first: Int = 50
    after: String
  ): FlowRunPage!
  "One flow run, or null when the store has no entry of it."
  flowRun(id: String!): FlowRun
  "Entries that match every filter given, in time order."
  logs(
    flowRunId: String
    taskRunId: String
    flowName: String
    taskName: String
{ENTRY_ARGS}
  ): LogPage!
}

type PageInfo {
  "Pass as after to get the next page; null on an empty page."
  endCursor: String
  hasNextPage: Boolean!
}

type FlowRunPage {
  nodes: [FlowRun!]!
  pageInfo: PageInfo!
}

type LogPage {
  nodes: [LogEntry!]!
  pageInfo: PageInfo!
}

type LevelCount {
  level: String!
  count: Int!
}

type FlowRun {
  id: String!
  flowName: String
  "Success, Failed, Running ... (null for records logged outside a flow run)."
  state: String
  started: DateTime
  ended: DateTime
  durationS: Float
  "Entries per level."
  counts: [LevelCount!]!
  taskRuns: [TaskRun!]!
  logs(
    taskRunId: String
    taskName: String
{ENTRY_ARGS}
  ): LogPage!
}

type TaskRun {
  id: String!
  taskName: String
  mapIndex: Int
  state: String!
  started: DateTime
  ended: DateTime
  durationS: Float
  tries: Int!
  logs(
{ENTRY_ARGS}
  ): LogPage!
}

type LogEntry {
  id: String!
  "Pass as after to get the entries that follow this one."
  cursor: String!
  timestamp: DateTime!
  level: String!
  levelno: Int!
  logger: String!
  message: String!
  flowName: String
  flowRunId: String
  taskName: String
  taskRunId: String
  mapIndex: Int
  "Every other field of the record."
  fields: JSON!
  "The traceback, when the record had one."
  exception: String
}
""".replace("{ENTRY_ARGS}", ENTRY_ARGS)

#: How the schema spells the store's parameters, for error messages.
LABELS = {
    "flow_run_id": "flowRunId",
    "task_run_id": "taskRunId",
    "flow_name": "flowName",
    "task_name": "taskName",
}


class QueryError(GraphQLError):
    """A bad argument: answered to the client with its message, not logged as a failure."""


class _AnsweredOnly(logging.Filter):
    """
    Drops the log records of the client's mistakes; real failures are still logged.

    A mistake is a :class:`QueryError` (a bad argument) or a GraphQL error
    that wraps no exception (a query that does not parse, or asks for a
    field the schema lacks): the client gets its message, and the server's
    log is not the place for it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        error: object = record.msg
        while isinstance(error, GraphQLError):
            if isinstance(error, QueryError) or error.original_error is None:
                return False
            error = error.original_error
        return True


#: Where failures of GraphQL queries are logged.
LOGGER = logging.getLogger("structflow.server.graphql")
LOGGER.addFilter(_AnsweredOnly())

query = QueryType()
flow_run = ObjectType("FlowRun")
task_run = ObjectType("TaskRun")
log_entry = ObjectType("LogEntry")
date_time = ScalarType("DateTime")
json_scalar = ScalarType("JSON")
order = EnumType("Order", {"ASC": "asc", "DESC": "desc"})


@date_time.serializer
def _serialize_time(value: dt.datetime) -> str | None:
    return rfc3339(value)


@json_scalar.serializer
def _serialize_json(value: Any) -> Any:
    return value


def _stores(info: Info) -> Stores:
    stores: Stores = info.context["stores"]
    return stores


def _count_log_list(info: Info) -> None:
    counter: list[int] = info.context.setdefault("log_lists", [0])
    counter[0] += 1
    if counter[0] > MAX_LOG_LISTS:
        raise QueryError(
            f"this query asks for the logs of more than {MAX_LOG_LISTS} runs and task runs; "
            "ask for fewer runs at once (first) and page with after"
        )


def _first(value: int, bounds: tuple[int, int, int]) -> int:
    _default, low, high = bounds
    if not low <= value <= high:
        raise QueryError(f"first={value} is invalid; expected an integer from {low} to {high}")
    return value


async def _read(info: Info, work: Callable[[Store], T]) -> T:
    try:
        return await _stores(info).read(work)
    except ValueError as exc:
        raise QueryError(str(exc)) from None
    except StoreError as exc:
        raise GraphQLError(str(exc)) from None


def _page(items: list[Any], first: int) -> dict[str, Any]:
    more = len(items) > first
    items = items[:first]
    # Keys in snake_case: the schema's names are converted (pageInfo -> page_info).
    return {
        "nodes": items,
        "page_info": {"end_cursor": items[-1].cursor if items else None, "has_next_page": more},
    }


async def _logs(info: Info, fixed: dict[str, Any], args: dict[str, Any]) -> Any:
    """A page of entries: *fixed* run filters plus the query's *args* (snake_case)."""
    first = _first(args.pop("first", LOGS_FIRST[0]), LOGS_FIRST)
    where = args.pop("where", None)
    kwargs = {k: v for k, v in args.items() if v is not None}
    try:
        if where:
            kwargs["where"] = parse_where_pairs(where, separator=":")
        check_log_filters(kwargs, LABELS)
    except (BadParameter, ValueError) as exc:
        raise QueryError(str(exc)) from None
    kwargs.update(fixed)

    def logs(store: Store) -> list[LogEntry]:
        return store.logs(**kwargs, limit=first + 1)

    return _page(await _read(info, logs), first)


@query.field("logs")
async def resolve_logs(_: None, info: Info, **args: Any) -> Any:
    return await _logs(info, {}, args)


@query.field("flowRuns")
async def resolve_flow_runs(_: None, info: Info, **args: Any) -> Any:
    first = _first(args.pop("first", RUNS_FIRST[0]), RUNS_FIRST)
    kwargs = {k: v for k, v in args.items() if v is not None}

    def runs(store: Store) -> list[RunSummary]:
        return store.runs(**kwargs, limit=first + 1)

    return _page(await _read(info, runs), first)


@query.field("flowRun")
async def resolve_flow_run(_: None, info: Info, **args: str) -> RunSummary | None:
    flow_run_id = args["id"]

    def run(store: Store) -> RunSummary | None:
        return store.run(flow_run_id)

    return await _read(info, run)


@flow_run.field("id")
def resolve_flow_run_id(run: RunSummary, _: Info) -> str:
    return run.flow_run_id


@flow_run.field("counts")
def resolve_counts(run: RunSummary, _: Info) -> list[dict[str, Any]]:
    return [{"level": level, "count": n} for level, n in run.counts.items()]


@flow_run.field("logs")
async def resolve_run_logs(run: RunSummary, info: Info, **args: Any) -> Any:
    _count_log_list(info)
    return await _logs(info, {"flow_run_id": run.flow_run_id}, args)


@task_run.field("id")
def resolve_task_run_id(task: TaskRunSummary, _: Info) -> str:
    return task.task_run_id


@task_run.field("logs")
async def resolve_task_logs(task: TaskRunSummary, info: Info, **args: Any) -> Any:
    _count_log_list(info)
    return await _logs(info, {"task_run_id": task.task_run_id}, args)


def make_schema() -> Any:
    """The executable schema (snake_case attributes and arguments behind camelCase names)."""
    return make_executable_schema(
        SCHEMA,
        query,
        flow_run,
        task_run,
        log_entry,
        date_time,
        json_scalar,
        order,
        convert_names_case=True,
    )


def graphql_app(stores: Stores) -> ASGIApp:
    """The GraphQL endpoint: POST only (no explorer page, which would load from a CDN)."""

    def context(request: Any, _data: Any) -> dict[str, Any]:
        return {"request": request, "stores": stores}

    app = GraphQL(
        make_schema(),
        context_value=context,
        explorer=ExplorerHttp405(),
        introspection=True,
        debug=False,
        logger=LOGGER,
    )
    return LimitBody(app, MAX_QUERY_BYTES)
