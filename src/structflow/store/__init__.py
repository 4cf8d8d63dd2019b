"""
The log store: every run's logs in SQLite or PostgreSQL, queryable.

::

    from structflow import store

    with store.connect("sqlite:///logs.db") as s:       # or postgresql://...
        for entry in s.logs(flow_run_id=run_id, level="warning"):
            print(entry.timestamp, entry.level, entry.message)
        summary = s.run(run_id)                          # state, timing, task runs

:func:`connect` with no argument opens ``[logging.store] url`` from the
configuration, else ``sqlite:///~/.structflow/logs.db``. Records get there
through :class:`structflow.handlers.StoreHandler` (which ``[logging.store]
url = "..."`` puts on the ``structflow`` logger), or through
:meth:`Store.ingest` from any JSON lines.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from structflow.store._dialects import DEFAULT_URL, StoreError
from structflow.store._entries import IngestResult, LogEntry, RunSummary, TaskRunSummary
from structflow.store._store import Store, connect

__all__ = [
    "DEFAULT_URL",
    "IngestResult",
    "LogEntry",
    "RunSummary",
    "Store",
    "StoreError",
    "TaskRunSummary",
    "connect",
]
