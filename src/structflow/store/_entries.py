"""
What the store hands back: entries, run summaries, ingest results.

Plain frozen dataclasses with a ``to_dict()`` that is ready for JSON
(times as RFC 3339 strings), which is what ``structflow logs --json`` and
the HTTP API print.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

__all__ = ["IngestResult", "LogEntry", "RunSummary", "TaskRunSummary"]


def rfc3339(moment: dt.datetime | None) -> str | None:
    """``2024-06-01T12:00:00.123456Z`` for an aware UTC datetime; None stays None."""
    if moment is None:
        return None
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class LogEntry:
    """
    One stored record.

    Attributes:
        id: the entry's unique id: the sender's record id, or a hash of the
            line when the sender gave none.
        timestamp: when the record was made (aware, UTC).
        level: the level name as logged, lower case (``"info"``).
        levelno: its number (``20``); see :doc:`the store docs </store>` for
            level names the store does not know.
        logger: the logger's name.
        message: the rendered message.
        flow_name, flow_run_id, task_name, task_run_id, map_index: the run
            context, None where the record had none.
        fields: every other field of the record (bound keys, ``extra=``,
            ``task_run_count``, the lifecycle fields ...), as JSON values.
        exception: the traceback text, when the record had one.
        cursor: where a page ending with this entry stops: pass it as
            ``after=`` to get the next page.

    .. versionadded:: 0.1.0
    """

    id: str
    timestamp: dt.datetime
    level: str
    levelno: int
    logger: str
    message: str
    flow_name: str | None = None
    flow_run_id: str | None = None
    task_name: str | None = None
    task_run_id: str | None = None
    map_index: int | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    exception: str | None = None
    cursor: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Return the entry as a JSON-ready dict (``timestamp`` as RFC 3339 text)."""
        return {
            "id": self.id,
            "timestamp": rfc3339(self.timestamp),
            "level": self.level,
            "levelno": self.levelno,
            "logger": self.logger,
            "message": self.message,
            "flow_name": self.flow_name,
            "flow_run_id": self.flow_run_id,
            "task_name": self.task_name,
            "task_run_id": self.task_run_id,
            "map_index": self.map_index,
            "fields": self.fields,
            "exception": self.exception,
            "cursor": self.cursor,
        }


@dataclass(frozen=True, slots=True)
class TaskRunSummary:
    """
    One task run of a flow run, derived from its lifecycle records.

    Attributes:
        task_run_id: the task run's id (the same for every try).
        task_name: the task's name.
        map_index: the child's index for a mapped task, else None.
        state: the final state's name (``Success``, ``Failed``,
            ``TriggerFailed``, ``Mapped`` ...), ``Retrying`` between tries,
            ``Running`` while a try runs.
        started: when its first try started (None when only its end was logged).
        ended: when it finished, None while it has not.
        duration_s: seconds from ``started`` to ``ended`` (every try and the
            waits between them), None while running.
        tries: how many tries started.

    .. versionadded:: 0.1.0
    """

    task_run_id: str
    task_name: str | None
    map_index: int | None
    state: str
    started: dt.datetime | None
    ended: dt.datetime | None
    duration_s: float | None
    tries: int

    def to_dict(self) -> dict[str, Any]:
        """Return the summary as a JSON-ready dict."""
        return {
            "task_run_id": self.task_run_id,
            "task_name": self.task_name,
            "map_index": self.map_index,
            "state": self.state,
            "started": rfc3339(self.started),
            "ended": rfc3339(self.ended),
            "duration_s": self.duration_s,
            "tries": self.tries,
        }


@dataclass(frozen=True, slots=True)
class RunSummary:
    """
    One flow run, derived from its records.

    Attributes:
        flow_run_id: the flow run's id.
        flow_name: the flow's name.
        state: the final state's name from the ``flow_run_finished`` record
            (``Success``, ``Failed``), ``Running`` when the run started and has
            not finished (or its process died), None when the run has no
            lifecycle records (records logged with a run context outside a
            flow run).
        started: the ``flow_run_started`` record's time, else the first entry's.
        ended: the ``flow_run_finished`` record's time, else None.
        duration_s: the run's duration as the runner measured it, else
            ``ended - started`` when both are known.
        counts: entries per level name, e.g. ``{"info": 12, "error": 1}``.
        task_runs: the run's task runs, in the order they started.
        cursor: for a summary listed by :meth:`Store.runs`, where a page that
            ends with it stops: pass it as ``after=`` to get the next page
            (``""`` for a summary from :meth:`Store.run`).

    .. versionadded:: 0.1.0
    """

    flow_run_id: str
    flow_name: str | None
    state: str | None
    started: dt.datetime | None
    ended: dt.datetime | None
    duration_s: float | None
    counts: dict[str, int]
    task_runs: list[TaskRunSummary]
    cursor: str = field(default="", compare=False)

    def to_dict(self) -> dict[str, Any]:
        """Return the summary as a JSON-ready dict, task runs included (without the cursor)."""
        return {
            "flow_run_id": self.flow_run_id,
            "flow_name": self.flow_name,
            "state": self.state,
            "started": rfc3339(self.started),
            "ended": rfc3339(self.ended),
            "duration_s": self.duration_s,
            "counts": dict(self.counts),
            "task_runs": [t.to_dict() for t in self.task_runs],
        }


@dataclass(frozen=True, slots=True)
class IngestResult:
    """
    What :meth:`Store.ingest` did with a batch of lines.

    Attributes:
        stored: lines stored now.
        duplicates: valid lines whose id was already stored (or repeated in
            the batch), not stored again.
        invalid: ``(index, reason)`` for every line that could not be stored,
            by its position in the batch.

    .. versionadded:: 0.1.0
    """

    stored: int
    duplicates: int
    invalid: list[tuple[int, str]]
