"""
Rate-limited diagnostics of the shipping workers, on the ``structflow.shipping`` logger.

The worker's own code never takes ``logging``'s module lock: a diagnostic
is built and handed to that logger's handlers directly. No shipping handler
ships a record of this logger, so when the only handlers it would reach are
shipping handlers (``stream = "none"`` with an HTTP handler, say), a warning
or an error is written to ``sys.stderr`` instead, as ``logging.lastResort``
does when there is no handler at all.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from typing import Any

__all__ = [
    "DIAGNOSTICS_LOGGER",
    "DIAGNOSTIC_INTERVAL",
    "SKIPS_DIAGNOSTICS",
    "STDERR_LEVEL",
    "Diagnostics",
]

#: Diagnostics of one kind are logged at most once per this many seconds.
DIAGNOSTIC_INTERVAL = 30.0
DIAGNOSTICS_LOGGER = "structflow.shipping"
_diag_logger = logging.getLogger(DIAGNOSTICS_LOGGER)
_monotonic = time.monotonic

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


#: Handlers with this attribute set never show a diagnostic (shipping handlers).
SKIPS_DIAGNOSTICS = "skips_shipping_diagnostics"
#: Diagnostics at this level or above reach stderr when no handler shows them.
STDERR_LEVEL = logging.WARNING


def _log_diagnostic(level: int, text: str, args: tuple[Any, ...]) -> None:
    """
    Hand a record to the ``structflow.shipping`` logger's handlers, or to stderr.

    ``Logger.isEnabledFor`` may take logging's module lock (on a cache miss,
    as after every ``dictConfig``), so the level is checked by walking the
    hierarchy, which takes no lock.
    """
    logger = _diag_logger
    if logger.disabled or logger.manager.disable >= level or level < logger.getEffectiveLevel():
        return
    record = logger.makeRecord(logger.name, level, __file__, 0, text, args, None, "shipping")
    if _shown(logger, level):
        logger.handle(record)
    elif level >= STDERR_LEVEL:
        _to_stderr(record)


def _shown(logger: logging.Logger, level: int) -> bool:
    """
    Whether a handler that the record reaches would take it (a shipping handler would not).

    When there is no handler at all, stdlib's ``lastResort`` shows it.
    """
    current: logging.Logger | None = logger
    seen = False
    while current is not None:
        for handler in current.handlers:
            seen = True
            if level >= handler.level and not getattr(handler, SKIPS_DIAGNOSTICS, False):
                return True
        current = current.parent if current.propagate else None
    return not seen and logging.lastResort is not None


def _to_stderr(record: logging.LogRecord) -> None:
    """Write *record* as ``structflow.shipping: LEVEL: message`` on its own line."""
    stream = sys.stderr
    if stream is None:  # pythonw, or a closed stderr
        return
    stream.write(f"{record.name}: {record.levelname}: {record.getMessage()}\n")
    stream.flush()


class Diagnostics:
    """
    Rate-limited diagnostics of one worker, on the ``structflow.shipping`` logger.

    Each *kind* is logged at most once per :data:`DIAGNOSTIC_INTERVAL`
    seconds; the next message of that kind says how many were suppressed.
    """

    def __init__(self, label: str, interval: float = DIAGNOSTIC_INTERVAL) -> None:
        self.label = label
        self.interval = interval
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def report(self, kind: str, level: str, message: str, *args: Any) -> bool:
        """Log *message* % *args* unless *kind* was logged recently; return whether it was."""
        now = _monotonic()
        with self._lock:
            last = self._last.get(kind)
            if last is not None and now - last < self.interval:
                self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
                return False
            self._last[kind] = now
            suppressed = self._suppressed.pop(kind, 0)
        # The label names the destination, whose url may hold a "%" (a
        # percent-escape): it is text, not part of the format.
        text = f"{self.label.replace('%', '%%')}: {message}"
        if suppressed:
            text += f" ({suppressed} similar message(s) in the last {self.interval:g} s not shown)"
        with contextlib.suppress(Exception):
            _log_diagnostic(_LEVELS.get(level, logging.WARNING), text, args)
        return True

    def reset_after_fork(self) -> None:
        self._lock = threading.Lock()
