"""
pytest's log capture sees the records structflow stops from propagating.

With a handler of its own, structflow turns ``propagate`` off on its root
logger (and on the ``extra_loggers``), so an application's root handlers do
not print every line a second time. pytest captures logs with handlers on the
root logger (``caplog``, the "Captured log" report section, ``log_cli``,
``log_file``), which those records then never reach: on pytest before 9.1
``caplog`` saw nothing, and from 9.1, which also puts its handlers on the
loggers that do not propagate *when a test phase starts*, it missed the
records of the test during which structflow configured itself.

So while pytest runs, structflow adds one more handler next to its own on
each logger it stops: a :class:`CaptureForwarder`, which hands each record to
pytest's handlers on the root logger, exactly as propagation would, and to no
other root handler. A pytest handler already on that logger (pytest 9.1 and
later put it there) gets the record from the logger itself, not a second time.

Outside pytest (``_pytest.logging`` not imported when structflow applies its
configuration) nothing is added. No pytest plugin is involved, so it works
with ``PYTEST_DISABLE_PLUGIN_AUTOLOAD`` and without structflow being
installed as a distribution.
"""

from __future__ import annotations

import logging
import sys

__all__ = ["CaptureForwarder", "under_pytest"]

PYTEST_LOGGING = "_pytest.logging"
# pytest's live-logging handler (``log_cli``): it writes to the terminal.
_LIVE_HANDLER = "_LiveLoggingStreamHandler"

# Handler class -> whether pytest's logging plugin defines it.
_pytest_types: dict[type, bool] = {}


def under_pytest() -> bool:
    """Tell whether pytest's logging plugin is loaded in this process."""
    return PYTEST_LOGGING in sys.modules


def _is_pytest_handler(handler: logging.Handler) -> bool:
    cls = type(handler)
    known = _pytest_types.get(cls)
    if known is None:
        known = _pytest_types[cls] = cls.__module__ == PYTEST_LOGGING
    return known


def _prints_live_twice(handler: logging.Handler) -> bool:
    """
    Tell whether *handler* is pytest's live log while output is not captured.

    With ``-s`` (no capture) structflow's own stream handler already wrote the
    line to the terminal; the live log would print it a second time.
    """
    if type(handler).__name__ != _LIVE_HANDLER:
        return False
    manager = getattr(handler, "capture_manager", None)
    capturing = getattr(manager, "is_globally_capturing", None)
    if capturing is None:
        return False
    try:
        return not capturing()
    except Exception:
        return False


class CaptureForwarder(logging.Handler):
    """
    Hands the records reaching *logger* to pytest's handlers on the root logger.

    Args:
        logger: the logger this handler is added to (one that does not propagate).
        console: whether structflow also writes records to stdout or stderr;
            then pytest's live log is skipped while pytest does not capture
            output (``-s``), so each line is shown once.
    """

    def __init__(self, logger: logging.Logger, console: bool) -> None:
        super().__init__(logging.NOTSET)
        self.logger = logger
        self.console = console

    def handle(self, record: logging.LogRecord) -> bool:
        # No lock and no filters of its own: it only passes the record on, as
        # Logger.callHandlers does when a record propagates.
        for handler in list(logging.getLogger().handlers):
            if (
                not _is_pytest_handler(handler)
                or record.levelno < handler.level
                or handler in self.logger.handlers
                or (self.console and _prints_live_twice(handler))
            ):
                continue
            # pytest's handlers report their own errors; LogCaptureHandler
            # raises on purpose, to fail the test whose logging call was bad.
            handler.handle(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        self.handle(record)

    def __repr__(self) -> str:
        return f"<structflow CaptureForwarder {self.logger.name} -> pytest's log capture>"
