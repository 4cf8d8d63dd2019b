"""Lines for store tests, shaped as the JSON renderer writes them (default schema)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson

import structflow
from structflow.formatters import JsonFormatter
from structflow.store import Store

#: The moment lines are made relative to (aware, UTC).
T0 = dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.UTC)


def stamp(seconds: float) -> str:
    """RFC 3339 text of T0 + *seconds*, as the JSON renderer writes it."""
    return (T0 + dt.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def line(
    message: str = "hello",
    *,
    seconds: float = 0.0,
    level: str = "info",
    logger: str = "structflow.Task B",
    record_id: str | None = None,
    **fields: Any,
) -> bytes:
    """One JSON line: timestamp, level, logger, message, then *fields* (run context first)."""
    doc: dict[str, Any] = {
        "timestamp": stamp(seconds),
        "level": level,
        "logger": logger,
        "message": message,
        **fields,
    }
    if record_id is not None:
        doc["_record_id"] = record_id
    return orjson.dumps(doc)


def rendered(message: str, *args: object, **attrs: Any) -> bytes:
    """A line rendered by the real JsonFormatter from a record with *attrs* as fields."""
    record = logging.LogRecord("structflow.Task B", logging.INFO, __file__, 1, message, args, None)
    for key, value in attrs.items():
        setattr(record, key, value)
    record.structflow_fields = tuple(attrs)
    return JsonFormatter().format_bytes(record)


@contextmanager
def attached(handler: logging.Handler, name: str) -> Iterator[logging.Logger]:
    """A structflow logger of its own (not propagating) with *handler*; closed afterwards."""
    logger = structflow.get_logger(name)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield logger
    finally:
        logger.removeHandler(handler)
        handler.close()


def lifecycle(
    flow_run_id: str,
    *,
    flow: str = "etl",
    start: float = 0.0,
    state: str | None = "Success",
    tasks: tuple[tuple[str, str, str | None], ...] = (),
) -> list[bytes]:
    """
    The lifecycle lines of one flow run, one second apart.

    *tasks* are (task_run_id, task_name, final state or None while running);
    the run's own finished line is left out when *state* is None.
    """
    out = [
        line(
            f"Beginning Flow run for '{flow}'",
            seconds=start,
            logger="structflow.FlowRunner",
            flow_name=flow,
            flow_run_id=flow_run_id,
            lifecycle="flow_run_started",
        )
    ]
    t = start
    for task_run_id, task_name, task_state in tasks:
        t += 1
        context: dict[str, Any] = {
            "flow_name": flow,
            "flow_run_id": flow_run_id,
            "task_name": task_name,
            "task_run_id": task_run_id,
            "map_index": None,
        }
        out.append(
            line(
                f"Task '{task_name}': Starting task run...",
                seconds=t,
                logger="structflow.TaskRunner",
                lifecycle="task_run_started",
                **context,
            )
        )
        if task_state is not None:
            t += 1
            out.append(
                line(
                    f"Task '{task_name}': Finished task run for task with final state: "
                    f"'{task_state}'",
                    seconds=t,
                    logger="structflow.TaskRunner",
                    level="info",
                    lifecycle="task_run_finished",
                    state=task_state,
                    duration_s=1.0,
                    **context,
                )
            )
    if state is not None:
        t += 1
        out.append(
            line(
                "Flow run SUCCESS: all reference tasks succeeded"
                if state == "Success"
                else "Flow run FAILED: some reference tasks failed.",
                seconds=t,
                level="info" if state == "Success" else "error",
                logger="structflow.FlowRunner",
                flow_name=flow,
                flow_run_id=flow_run_id,
                lifecycle="flow_run_finished",
                state=state,
                duration_s=t - start,
            )
        )
    return out


_REFUSE_POISON = {
    "sqlite": """CREATE TRIGGER refuse_poison BEFORE INSERT ON structflow_entries
                 WHEN NEW.message = 'poison' BEGIN SELECT RAISE(ABORT, 'no poison here'); END""",
    "postgresql": """ALTER TABLE structflow_entries
                     ADD CONSTRAINT no_poison CHECK (message <> 'poison')""",
}


def refuse_poison(store: Store) -> None:
    """
    Make the database refuse every entry whose message is "poison".

    A rule of the database's own (a constraint a DBA added) that one entry
    breaks: no retry could ever store a batch holding it whole.
    """
    store._do("adding a rule", lambda d: d.query(_REFUSE_POISON[d.name]))
