"""Helpers shared by the tests of structlog's loggers routed through structflow."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import structlog

import structflow
from test_loggers import RUN, Collect, fields_of

__all__ = [
    "RUN",
    "Collect",
    "collecting",
    "fields_of",
    "json_lines",
    "setup_json",
    "structlog_defaults",
    "summary",
]


@pytest.fixture(autouse=True)
def structlog_defaults() -> Iterator[None]:
    """
    Each test starts and ends with structlog unconfigured, whatever it did.

    structlog's stdlib LoggerFactory also sets logging's logger class; it is
    put back.
    """
    logger_class = logging.getLoggerClass()
    structlog.reset_defaults()
    yield
    structflow._setup.reset()
    structlog.reset_defaults()
    logging.setLoggerClass(logger_class)


@contextmanager
def collecting(logger_name: str = "structflow") -> Iterator[list[logging.LogRecord]]:
    """Collect the records reaching the handlers of *logger_name* (``""``: root) in the block."""
    handler = Collect()
    logger = logging.getLogger(logger_name)
    logger.addHandler(handler)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)


def summary(record: logging.LogRecord) -> dict[str, Any]:
    """What a user sees of a record: name, level, message and fields."""
    return {
        "name": record.name,
        "levelname": record.levelname,
        "message": record.getMessage(),
        "fields": fields_of(record),
    }


def json_lines(text: str) -> list[list[tuple[str, Any]]]:
    """Parse JSON lines keeping every key, so a key written twice shows."""
    return [json.loads(line, object_pairs_hook=list) for line in text.splitlines() if line]


def setup_json(**overrides: Any) -> None:
    """structflow with JSON on stdout at DEBUG, plus *overrides*."""
    structflow.configure(**{"renderer": "json", "level": "DEBUG", **overrides})
