"""Tasks and a collecting handler shared by the engine and executor tests."""

from __future__ import annotations

import logging
import threading
from typing import Any

import structflow
from structflow import task

#: The run-context keys stamped on every record of a task run.
RUN_KEYS = ("flow_name", "flow_run_id", "task_name", "task_run_id", "map_index", "task_run_count")


class Collect(logging.Handler):
    """A plain stdlib handler, as a user would write one, that keeps every record."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []
        # Not the handler's own lock: emit() runs under that one already.
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        with self._guard:
            self.records.append(record)

    def named(self, name: str) -> list[logging.LogRecord]:
        """Return the records of the logger *name*."""
        return [r for r in self.records if r.name == name]

    def messages(self, name: str) -> list[str]:
        """Return the messages of the logger *name*."""
        return [r.getMessage() for r in self.named(name)]


def run_fields(record: logging.LogRecord) -> dict[str, Any]:
    """Return the run-context fields of *record*, ``"<missing>"`` for those it lacks."""
    return {k: getattr(record, k, "<missing>") for k in RUN_KEYS}


@task(name="Task A")
def task_a() -> int:
    return 3


@task(name="Task B")
def task_b(x: int) -> int:
    logger = structflow.context.get("logger")
    logger.debug(f"Beginning to run Task B with input {x}")
    y = 3 * x + 1
    logger.debug(f"Returning the value {y}")
    return y


@task
def add(x: int, y: int) -> int:
    return x + y


@task
def boom(x: Any = None) -> None:
    raise RuntimeError("boom happened")
