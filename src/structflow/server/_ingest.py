"""
``POST /api/logs``: NDJSON as :class:`structflow.handlers.HTTPHandler` sends it, into the store.

Every valid line is stored, in one transaction per request (a line the
database refuses is found by storing the request in halves, and refused
with the database's reason), and a line
whose ``_record_id`` is stored already is counted as a duplicate, so a batch
the sender retries (after a timeout, or from its spool after a crash) lands
once. The answer says how many lines were stored, how many were duplicates,
and the number of every line refused, with the reason:

* 200: every line stored (or a duplicate);
* 207: some lines refused, the others stored;
* 400: every line refused (nothing to store);
* 413: the body is larger than :data:`MAX_BODY_BYTES` (HTTPHandler then
  sends the batch again in halves);
* 503: the database failed; nothing of the batch was stored (HTTPHandler
  retries it).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from structflow.server._body import BodyError, read_body
from structflow.server._json import error_response, json_response
from structflow.server._stores import Stores
from structflow.store import IngestResult, Store, StoreError

__all__ = ["MAX_BODY_BYTES", "MAX_ERRORS_LISTED", "ingest"]

#: Largest request body, after gzip is inflated (HTTPHandler's batches are 1 MiB by default).
MAX_BODY_BYTES = 16 * 1024 * 1024
#: Refused lines listed in an answer (all of them are counted).
MAX_ERRORS_LISTED = 100


def split_lines(body: bytes) -> tuple[list[bytes], list[int]]:
    """The body's non-blank lines, and the 1-based line number of each."""
    lines: list[bytes] = []
    numbers: list[int] = []
    for number, line in enumerate(body.split(b"\n"), start=1):
        if line.strip():
            lines.append(line)
            numbers.append(number)
    return lines, numbers


def answer(result: IngestResult, numbers: list[int]) -> Response:
    """The JSON answer to one ingested body."""
    refused = len(result.invalid)
    body: dict[str, Any] = {
        "stored": result.stored,
        "duplicates": result.duplicates,
        "rejected": refused,
        "errors": [
            {"line": numbers[index], "reason": reason}
            for index, reason in result.invalid[:MAX_ERRORS_LISTED]
        ],
    }
    if not refused:
        status = 200
    elif refused == len(numbers):
        status = 400
    else:
        status = 207
    return json_response(body, status)


async def ingest(request: Request) -> Response:
    """Store the NDJSON lines of the request's body."""
    stores: Stores = request.app.state.stores
    try:
        body = await read_body(request, MAX_BODY_BYTES)
    except BodyError as exc:
        return error_response(exc.status, str(exc))
    lines, numbers = split_lines(body)

    def store_lines(store: Store) -> IngestResult:
        return store.ingest(lines)

    try:
        result = await stores.write(store_lines)
    except StoreError as exc:
        return error_response(503, str(exc), headers={"Retry-After": "1"})
    return answer(result, numbers)
