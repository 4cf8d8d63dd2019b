"""Records for formatter tests: collected from real loggers, or built by hand with fixed values."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from structflow._records import RESERVED
from structflow.formatters import ClassicFormatter, ConsoleFormatter, JsonFormatter, LogfmtFormatter
from structflow.loggers import Logger, LogRecord, get_logger

#: Every value of ``JsonFormatter(json_schema=...)``.
SCHEMAS = ("default", "ecs", "gcp", "datadog", "otel")
#: A secret that must never appear in rendered output.
SECRET = "hunter2-SECRET-9f3c"


class ListHandler(logging.Handler):
    """Keeps the records it receives."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def recording(name: str = "fmt") -> Iterator[tuple[Logger, list[logging.LogRecord]]]:
    """A structflow logger at DEBUG whose records are collected (and not printed)."""
    logger = get_logger(name)
    with _collecting(logger) as records:
        yield logger, records


@contextmanager
def foreign_recording(name: str) -> Iterator[tuple[logging.Logger, list[logging.LogRecord]]]:
    """A stdlib logger (not structflow's) whose records are collected."""
    get_logger()  # structflow configured: its record factory is installed
    logger = logging.getLogger(name)
    with _collecting(logger) as records:
        yield logger, records


@contextmanager
def _collecting(logger: logging.Logger) -> Iterator[list[logging.LogRecord]]:
    handler = ListHandler()
    logger.addHandler(handler)
    saved = (logger.level, logger.propagate)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


def one_record(call: Callable[[Logger], object], name: str = "fmt") -> logging.LogRecord:
    """The one record *call* logs on a structflow logger."""
    with recording(name) as (logger, records):
        call(logger)
    assert len(records) == 1
    return records[0]


def all_formatters() -> list[logging.Formatter]:
    """One formatter of each renderer and schema."""
    return [
        ClassicFormatter(),
        ClassicFormatter("%(levelname)s %(task_name)s %(payload)s %(message)s"),
        *(JsonFormatter(json_schema=s) for s in SCHEMAS),
        ConsoleFormatter(colors=True),
        ConsoleFormatter(colors=False),
        LogfmtFormatter(),
    ]


def golden_record(exc_info: Any = None, **overrides: Any) -> LogRecord:
    """A record with every varying attribute fixed, as if from a task run."""
    record = LogRecord(
        "structflow.golden",
        logging.ERROR,
        "/srv/app/flows.py",
        42,
        "loaded %s rows",
        (3,),
        exc_info,
        "load",
    )
    record.created = 1714564800.125  # 2024-05-01T12:00:00.125Z, exact in binary
    record.msecs = 125.0
    record.process = 4242
    record.processName = "MainProcess"
    record.thread = 1401
    record.threadName = "MainThread"
    fields: dict[str, Any] = {
        "flow_name": "etl",
        "flow_run_id": "fr-1",
        "task_name": "load",
        "task_run_id": "tr-1",
        "map_index": None,
        "task_run_count": 1,
        "rows": 3,
    }
    fields.update(overrides)
    # Stored as structflow's loggers store fields: a name of the record's own
    # attributes (``created``, ``name`` ...) gets a trailing underscore.
    stored = {(k + "_" if k in RESERVED else k): v for k, v in fields.items()}
    record.__dict__.update(stored)
    record.__dict__["structflow_fields"] = tuple(stored)
    return record


def raised() -> Any:
    """``sys.exc_info()`` of a ValueError("bad value") that was raised."""
    try:
        raise ValueError("bad value")
    except ValueError:
        return sys.exc_info()
