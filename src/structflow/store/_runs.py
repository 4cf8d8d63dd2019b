"""
Flow runs and task runs, derived from the records' lifecycle fields.

The engine's ``structflow.FlowRunner`` and ``structflow.TaskRunner``
records carry ``lifecycle`` (``flow_run_started``, ``flow_run_finished``,
``task_run_started``, ``task_run_finished``, ``task_run_retrying``),
``state`` and ``duration_s``; the dialects keep the lifecycle records in a
small partial index, so a summary reads those few rows and one count per
level, whatever the number of entries.
"""

from __future__ import annotations

import base64
import binascii
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from structflow.store._dialects import Dialect
from structflow.store._entries import RunSummary, TaskRunSummary
from structflow.store._filters import from_micros

__all__ = ["decode_run_cursor", "list_runs", "summarise_run"]

_FLOW_STARTED = "flow_run_started"
_FLOW_FINISHED = "flow_run_finished"
_TASK_STARTED = "task_run_started"
_TASK_FINISHED = "task_run_finished"
_TASK_RETRYING = "task_run_retrying"
RUNNING = "Running"
RETRYING = "Retrying"


@dataclass
class _FlowRun:
    """What the flow lifecycle records of one run say."""

    flow_run_id: str
    flow_name: str | None = None
    started: int | None = None
    ended: int | None = None
    state: str | None = None
    duration_s: float | None = None

    def add(self, lifecycle: str, ts: int, state: str | None, duration: float | None) -> None:
        if lifecycle == _FLOW_STARTED:
            if self.started is None or ts < self.started:
                self.started = ts
            if self.state is None:
                self.state = RUNNING
        elif lifecycle == _FLOW_FINISHED:
            # Rows come in (ts, seq) order: the last finish wins.
            self.ended = ts
            self.state = state or self.state or RUNNING
            self.duration_s = duration


@dataclass
class _TaskRun:
    task_run_id: str
    task_name: str | None = None
    map_index: int | None = None
    started: int | None = None
    ended: int | None = None
    state: str = RUNNING
    tries: int = 0
    order: tuple[int, int] = (0, 0)

    def summary(self) -> TaskRunSummary:
        first = self.started
        duration = None
        if self.ended is not None:
            if first is None:
                first = self.ended
            duration = round((self.ended - first) / 1e6, 6)
        return TaskRunSummary(
            task_run_id=self.task_run_id,
            task_name=self.task_name,
            map_index=self.map_index,
            state=self.state,
            started=None if first is None else from_micros(first),
            ended=None if self.ended is None else from_micros(self.ended),
            duration_s=duration,
            tries=self.tries,
        )


def _task_runs(rows: Iterable[Sequence[Any]]) -> list[TaskRunSummary]:
    """Task run summaries from (ts, seq, lifecycle, state, task_run_id, task_name, map_index)."""
    runs: dict[str, _TaskRun] = {}
    for ts, seq, lifecycle, state, task_run_id, task_name, map_index in rows:
        if task_run_id is None or lifecycle not in (_TASK_STARTED, _TASK_FINISHED, _TASK_RETRYING):
            continue
        run = runs.get(task_run_id)
        if run is None:
            run = runs[task_run_id] = _TaskRun(task_run_id, order=(ts, seq))
        run.task_name = run.task_name or task_name
        if run.map_index is None:
            run.map_index = map_index
        if lifecycle == _TASK_STARTED:
            run.tries += 1
            if run.started is None:
                run.started = ts
            run.state = RUNNING
            run.ended = None
        elif lifecycle == _TASK_RETRYING:
            run.state = RETRYING
        else:
            run.state = state or run.state
            run.ended = ts
    return [r.summary() for r in sorted(runs.values(), key=lambda r: r.order)]


def summarise_run(dialect: Dialect, flow_run_id: str) -> RunSummary | None:
    """Return the summary of one flow run, or None when the store has no entry of it."""
    counts: dict[str, int] = {}
    first = last = None
    for level, n, low, high in dialect.query(
        "SELECT level, COUNT(*), MIN(ts), MAX(ts) FROM structflow_entries "
        "WHERE flow_run_id = ? GROUP BY level ORDER BY level",
        (flow_run_id,),
    ):
        counts[level] = n
        first = low if first is None else min(first, low)
        last = high if last is None else max(last, high)
    if not counts:
        return None
    rows = dialect.query(
        "SELECT ts, seq, lifecycle, state, duration_s, task_run_id, task_name, map_index, "
        "flow_name FROM structflow_entries WHERE flow_run_id = ? AND lifecycle IS NOT NULL "
        "ORDER BY ts, seq",
        (flow_run_id,),
    )
    flow = _FlowRun(flow_run_id)
    for ts, _seq, lifecycle, state, duration, *_rest, flow_name in rows:
        flow.flow_name = flow.flow_name or flow_name
        flow.add(lifecycle, ts, state, duration)
    if flow.flow_name is None:
        name_rows = dialect.query(
            "SELECT flow_name FROM structflow_entries WHERE flow_run_id = ? "
            "AND flow_name IS NOT NULL LIMIT 1",
            (flow_run_id,),
        )
        flow.flow_name = name_rows[0][0] if name_rows else None
    started = flow.started if flow.started is not None else first
    duration = flow.duration_s
    if duration is None and flow.ended is not None and started is not None:
        duration = round((flow.ended - started) / 1e6, 6)
    return RunSummary(
        flow_run_id=flow_run_id,
        flow_name=flow.flow_name,
        state=flow.state,
        started=None if started is None else from_micros(started),
        ended=None if flow.ended is None else from_micros(flow.ended),
        duration_s=duration,
        counts=counts,
        task_runs=_task_runs((r[0], r[1], r[2], r[3], r[5], r[6], r[7]) for r in rows),
    )


_RUN_CURSOR = struct.Struct(">q")


def _run_cursor(key: tuple[int, str]) -> str:
    """The opaque cursor of a run at sort position *key* (moment, flow run id)."""
    raw = _RUN_CURSOR.pack(key[0]) + key[1].encode("utf-8", "surrogatepass")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_run_cursor(value: object, name: str = "after") -> tuple[int, str]:
    """
    Return the sort position (moment, flow run id) of a :attr:`RunSummary.cursor`.

    Raises:
        ValueError: *value* is not a run cursor.
    """
    if isinstance(value, str) and 11 <= len(value) <= 1024 and value.isascii():
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
            key = (_RUN_CURSOR.unpack(raw[:8])[0], raw[8:].decode("utf-8", "surrogatepass"))
        except (binascii.Error, ValueError, struct.error):
            pass
        else:
            if _run_cursor(key) == value:
                return key
    raise ValueError(
        f"{name}={value!r} is not a run cursor; pass the cursor of the last run of a page "
        "(RunSummary.cursor)"
    )


def list_runs(
    dialect: Dialect,
    flow_name: str | None,
    state: str | None,
    since: int | None,
    limit: int | None,
    after: tuple[int, str] | None = None,
) -> list[RunSummary]:
    """
    Return the flow runs with lifecycle records, newest first.

    *since* keeps the runs that were active at or after that moment (started
    or finished since, or still running); *state* compares case-insensitively;
    *after* (a decoded run cursor) keeps the runs that come after that one.
    """
    sql = (
        "SELECT flow_run_id, lifecycle, ts, state, duration_s, flow_name FROM structflow_entries "
        "WHERE lifecycle IN (?, ?) AND flow_run_id IS NOT NULL"
    )
    params: list[Any] = [_FLOW_STARTED, _FLOW_FINISHED]
    if flow_name is not None:
        sql += " AND flow_name = ?"
        params.append(flow_name)
    runs: dict[str, _FlowRun] = {}
    for flow_run_id, lifecycle, ts, row_state, duration, name in dialect.query(
        sql + " ORDER BY ts, seq", params
    ):
        run = runs.get(flow_run_id)
        if run is None:
            run = runs[flow_run_id] = _FlowRun(flow_run_id, name)
        run.add(lifecycle, ts, row_state, duration)
    wanted = state.lower() if state is not None else None
    chosen = []
    for run in runs.values():
        if wanted is not None and (run.state or "").lower() != wanted:
            continue
        if since is not None and run.ended is not None and run.ended < since:
            continue
        chosen.append(run)

    def key(run: _FlowRun) -> tuple[int, str]:
        return (run.started or run.ended or 0, run.flow_run_id)

    chosen.sort(key=key, reverse=True)
    if after is not None:
        chosen = [r for r in chosen if key(r) < after]
    if limit is not None:
        chosen = chosen[:limit]
    out = []
    for run in chosen:
        summary = summarise_run(dialect, run.flow_run_id)
        if summary is not None:
            out.append(replace(summary, cursor=_run_cursor(key(run))))
    return out
