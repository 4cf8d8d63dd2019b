"""
``GET /api/openapi.json``: the OpenAPI 3.1 description of the JSON API.

Written from the same tables the routes read (parameter names, limits), so
the description and the routes cannot drift apart on those.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from structflow.server._ingest import MAX_BODY_BYTES
from structflow.server._json import json_response
from structflow.server._query import LOGS_LIMIT, RUNS_LIMIT
from structflow.server._stream import STREAM_LIMIT

__all__ = ["openapi", "openapi_document"]

_TEXT = {"type": "string"}
_NULLABLE_TEXT = {"type": ["string", "null"]}
_TIME = {"type": "string", "format": "date-time"}
_NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}
_NULLABLE_NUMBER = {"type": ["number", "null"]}

_FILTERS: dict[str, str] = {
    "flow_run_id": "Entries of this flow run.",
    "task_run_id": "Entries of this task run.",
    "flow_name": "Entries of this flow.",
    "task_name": "Entries of this task.",
    "level": "The minimum level: a name (`warning`, any case) or a number (`30`).",
    "since": "At or after this moment: `15m`, `1h`, `2d` (that long ago) or an ISO 8601 time.",
    "until": "Before this moment (same forms as `since`).",
    "search": "Words that must all be in the message (whole words, any case).",
}


def _param(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "query", "description": description, "schema": schema or _TEXT}


def _limit(bounds: tuple[int, int, int], what: str) -> dict[str, Any]:
    default, low, high = bounds
    return _param(
        "limit", what, {"type": "integer", "minimum": low, "maximum": high, "default": default}
    )


def _log_filters() -> list[dict[str, Any]]:
    params = [_param(name, text) for name, text in _FILTERS.items()]
    params.append(
        {
            **_param(
                "where",
                "Field equality, `key:value` (repeat for more): `rows:3` compares with the "
                "number 3, `table:users` with a string; dots reach nested fields (`user.id:u1`).",
                {"type": "array", "items": _TEXT},
            ),
            "explode": True,
        }
    )
    return params


def _ok(description: str, schema: dict[str, Any], media: str = "application/json") -> Any:
    return {"description": description, "content": {media: {"schema": schema}}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _errors(*codes: int) -> dict[str, Any]:
    text = {
        400: "A parameter is unknown, repeated or invalid; `parameter` names it.",
        401: "The server has a token and the request did not carry it.",
        404: "The store has no entry of this flow run.",
        413: f"The body is larger than {MAX_BODY_BYTES} bytes (after gzip): send halves.",
        415: "A Content-Encoding other than gzip.",
        503: "The database failed; try again (`Retry-After`).",
    }
    return {str(c): _ok(text[c], _ref("Error")) for c in codes}


def _page(item: str, key: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": [key, "next"],
        "properties": {
            key: {"type": "array", "items": _ref(item)},
            "next": {**_NULLABLE_TEXT, "description": "Pass as `after` for the next page."},
        },
    }


def _schemas() -> dict[str, Any]:
    run_fields = {
        "flow_run_id": _TEXT,
        "flow_name": _NULLABLE_TEXT,
        "state": _NULLABLE_TEXT,
        "started": _NULLABLE_TIME,
        "ended": _NULLABLE_TIME,
        "duration_s": _NULLABLE_NUMBER,
        "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
        "task_runs": {"type": "array", "items": _ref("TaskRun")},
        "task_count": {"type": "integer"},
    }
    return {
        "LogEntry": {
            "type": "object",
            "properties": {
                "id": _TEXT,
                "timestamp": _TIME,
                "level": _TEXT,
                "levelno": {"type": "integer"},
                "logger": _TEXT,
                "message": _TEXT,
                "flow_name": _NULLABLE_TEXT,
                "flow_run_id": _NULLABLE_TEXT,
                "task_name": _NULLABLE_TEXT,
                "task_run_id": _NULLABLE_TEXT,
                "map_index": {"type": ["integer", "null"]},
                "fields": {"type": "object"},
                "exception": _NULLABLE_TEXT,
                "cursor": _TEXT,
            },
        },
        "TaskRun": {
            "type": "object",
            "properties": {
                "task_run_id": _TEXT,
                "task_name": _NULLABLE_TEXT,
                "map_index": {"type": ["integer", "null"]},
                "state": _TEXT,
                "started": _NULLABLE_TIME,
                "ended": _NULLABLE_TIME,
                "duration_s": _NULLABLE_NUMBER,
                "tries": {"type": "integer"},
            },
        },
        "FlowRun": {"type": "object", "properties": run_fields},
        "LogPage": _page("LogEntry", "entries"),
        "RunPage": _page("FlowRun", "runs"),
        "IngestAnswer": {
            "type": "object",
            "properties": {
                "stored": {"type": "integer"},
                "duplicates": {"type": "integer"},
                "rejected": {"type": "integer"},
                "errors": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"line": {"type": "integer"}, "reason": _TEXT},
                    },
                },
            },
        },
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": _TEXT, "parameter": _TEXT},
        },
    }


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 description of the JSON API."""
    from structflow import __version__

    order = _param(
        "order", "`asc` (oldest first) or `desc`.", {"enum": ["asc", "desc"], "default": "asc"}
    )
    after = _param("after", "The `next` cursor of the previous page.")
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "structflow serve",
            "version": __version__,
            "description": "Every machine's logs in one store: ingest, query, live tail.",
        },
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{}, {"bearer": []}],
        "paths": {
            "/api/logs": {
                "post": {
                    "summary": "Store NDJSON lines as HTTPHandler sends them (gzip too).",
                    "description": "A line whose `_record_id` is stored already is a duplicate "
                    "and is not stored again.",
                    "requestBody": {
                        "content": {"application/x-ndjson": {"schema": {"type": "string"}}}
                    },
                    "responses": {
                        "200": _ok("Every line stored or a duplicate.", _ref("IngestAnswer")),
                        "207": _ok("Some lines refused, the others stored.", _ref("IngestAnswer")),
                        "400": _ok("Every line refused.", _ref("IngestAnswer")),
                        **_errors(401, 413, 415, 503),
                    },
                },
                "get": {
                    "summary": "Entries that match every filter, in time order.",
                    "parameters": [
                        *_log_filters(),
                        _limit(LOGS_LIMIT, "Most entries per page."),
                        order,
                        after,
                    ],
                    "responses": {
                        "200": _ok("A page of entries.", _ref("LogPage")),
                        **_errors(400, 401, 503),
                    },
                },
            },
            "/api/logs/stream": {
                "get": {
                    "summary": "The live tail: Server-Sent Events of new matching entries.",
                    "description": "Each event has `id:` (the entry's cursor), `event: entry` and "
                    "`data:` (the entry). Reconnect with `Last-Event-ID` (or `after`).",
                    "parameters": [
                        *_log_filters(),
                        _limit(STREAM_LIMIT, "Stored entries sent first (without `after`)."),
                        after,
                    ],
                    "responses": {
                        "200": _ok("The event stream.", _TEXT, "text/event-stream"),
                        **_errors(400, 401, 503),
                    },
                }
            },
            "/api/runs": {
                "get": {
                    "summary": "Flow runs, newest first.",
                    "parameters": [
                        _param("flow_name", "Runs of this flow."),
                        _param("state", "Runs in this state (`Failed`, `Success`, `Running`)."),
                        _param("since", "Runs active at or after this moment."),
                        _limit(RUNS_LIMIT, "Most runs per page."),
                        after,
                    ],
                    "responses": {
                        "200": _ok("A page of runs.", _ref("RunPage")),
                        **_errors(400, 401, 503),
                    },
                }
            },
            "/api/runs/{flow_run_id}": {
                "get": {
                    "summary": "One flow run with its task runs.",
                    "parameters": [
                        {"name": "flow_run_id", "in": "path", "required": True, "schema": _TEXT}
                    ],
                    "responses": {
                        "200": _ok("The run.", _ref("FlowRun")),
                        **_errors(401, 404, 503),
                    },
                }
            },
        },
    }


async def openapi(_request: Request) -> Response:
    """The OpenAPI description."""
    return json_response(openapi_document())
