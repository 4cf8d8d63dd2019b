"""
Helpers for testing code that logs with structflow.

:func:`capture_logs` collects what your code logs as plain dicts, the same
dicts the JSON renderer writes, so a test can assert on messages, levels,
run context and fields without parsing output::

    from structflow.testing import capture_logs

    def test_load_logs_rows():
        with capture_logs() as logs:
            load(rows=3)
        assert {"message": "loaded 3 rows", "level": "info",
                "logger": "structflow.load", "rows": 3} in logs
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from structflow._setup import ensure_configured
from structflow.formatters import JsonFormatter
from structflow.loggers import ROOT_NAME, get_logger

__all__ = ["CapturedLogs", "capture_logs"]


class CapturedLogs(list[dict[str, Any]]):
    """
    The event dicts captured by :func:`capture_logs`, in the order logged.

    A list of dicts; :attr:`records` holds the :class:`logging.LogRecord`
    objects they were made from, in the same order.

    .. versionadded:: 0.1.0
    """

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def messages(self) -> list[str]:
        """Return the ``message`` of every captured event."""
        return [str(event.get("message")) for event in self]


class _CaptureHandler(logging.Handler):
    """Turns each record into an event dict; a record seen twice is kept once."""

    def __init__(self, logs: CapturedLogs, formatter: JsonFormatter) -> None:
        super().__init__(logging.NOTSET)
        self.logs = logs
        self.event_formatter = formatter
        # The captured records are kept alive by `logs.records`, so their ids
        # cannot be reused while the capture lasts.
        self._seen: set[int] = set()

    def emit(self, record: logging.LogRecord) -> None:
        if id(record) in self._seen:
            return
        self._seen.add(id(record))
        event = self.event_formatter.event_dict(record)
        event.pop("timestamp", None)
        self.logs.records.append(record)
        self.logs.append(event)


@contextmanager
def capture_logs(
    *loggers: str | logging.Logger,
    level: int | str | None = None,
    formatter: JsonFormatter | None = None,
) -> Iterator[CapturedLogs]:
    """
    Capture records as event dicts for the duration of a ``with`` block.

    By default the handler sits on structflow's root logger (``structflow``),
    which every task, flow and engine logger propagates to, and on the
    loggers named in the ``extra_loggers`` setting. Name other loggers (or
    pass them) to capture them too: ``capture_logs("urllib3")``; ``""``
    names the root logger. A record reaching several of them is captured
    once.

    Each event is what :class:`~structflow.formatters.JsonFormatter` would
    write, without the ``timestamp``: ``level``, ``logger``, ``message``, the
    run context, bound and ``extra=`` fields, and ``exception`` when there is
    one. Redaction and truncation apply as in output; pass your own
    ``formatter`` (a ``JsonFormatter``, possibly with another ``json_schema``
    or ``processors``) to change that.

    Args:
        loggers: more loggers to capture, by name or object.
        level: if given, the level of the captured loggers during the block
            (restored afterwards); otherwise their configured levels filter as
            usual, so ``debug`` records are captured only if enabled.
        formatter: the formatter making the event dicts.

    Yields:
        A :class:`CapturedLogs` list that fills as records arrive.

    .. versionadded:: 0.1.0
    """
    logs = CapturedLogs()
    handler = _CaptureHandler(logs, formatter if formatter is not None else JsonFormatter())
    targets: list[logging.Logger] = [get_logger()]
    # The configured extra loggers stop propagation at themselves once
    # structflow has handlers on them, so they are captured where they are.
    extra = tuple(ensure_configured().logging.extra_loggers)
    for item in (*extra, *loggers):
        if isinstance(item, logging.Logger):
            lg = item
        elif item == ROOT_NAME:
            lg = get_logger()
        elif item.startswith(ROOT_NAME + "."):
            # structflow's own tree: made with structflow's logger class.
            lg = get_logger(item[len(ROOT_NAME) + 1 :])
        else:
            lg = logging.getLogger(item)
        if lg not in targets:
            targets.append(lg)
    saved_levels = [lg.level for lg in targets]
    for lg in targets:
        lg.addHandler(handler)
        if level is not None:
            lg.setLevel(level)
    try:
        yield logs
    finally:
        for lg, saved in zip(targets, saved_levels, strict=True):
            lg.removeHandler(handler)
            if level is not None:
                lg.setLevel(saved)
        handler.close()
