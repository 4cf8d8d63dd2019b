"""
:class:`ShippingHandler`: the ``logging.Handler`` in front of a worker.

``HTTPHandler`` and ``SyslogHandler`` are thin subclasses: each validates its
own options, builds its sink, and hands the rest to this class. Given a sink
of your own (or :class:`structflow.testing.MockSink`), it ships as they do.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, Unpack

from structflow._records import LogRecord as _LogRecord
from structflow._values import safe_repr, safe_str
from structflow.handlers.shipping.diagnostics import DIAGNOSTICS_LOGGER
from structflow.handlers.shipping.lifecycle import (
    called_by_logging_shutdown,
    close_all,
    holding_logging_lock,
)
from structflow.handlers.shipping.lifecycle import worker_threads as _worker_threads
from structflow.handlers.shipping.settings import (
    DEFAULT_LEVEL,
    ShippingOptions,
    WorkerSettings,
    check_keywords,
    check_level,
    takes_shipping_options,
)
from structflow.handlers.shipping.sink import Sink
from structflow.handlers.shipping.snapshot import snapshot_state
from structflow.handlers.shipping.worker import Worker

__all__ = ["ShippingHandler"]

_get_ident = threading.get_ident
_new = object.__new__
_OPTION_NAMES = frozenset(ShippingOptions.__optional_keys__)


class ShippingHandler(logging.Handler):
    """
    Ship records through *sink* from a background worker.

    ``emit`` only snapshots the record and queues it: it never does network
    or disk I/O on the caller's thread and never raises. Records made on a
    worker thread and records of the ``structflow.shipping`` logger are
    never shipped (no feedback loops).

    :class:`~structflow.handlers.HTTPHandler` and
    :class:`~structflow.handlers.SyslogHandler` are shipping handlers; use
    this class directly with a sink of your own, or with
    :class:`structflow.testing.MockSink` to test a shipping configuration
    without a receiver.

    Args:
        sink: renders records and delivers them.
        options: ``level`` and the worker options (``batch_max_records``,
            ``when_full``, ``spool_dir``, ...), as every shipping handler
            takes them; see "Worker options" on the handlers page.

    Raises:
        ValueError: an option's value is invalid; the message names the key,
            the value and what is allowed.
        TypeError: an option is unknown.

    .. versionadded:: 0.1.0
    """

    #: The subclass's own keyword arguments with their defaults, in the
    #: order ``repr`` shows them (see :meth:`_show`).
    OWN_DEFAULTS: ClassVar[dict[str, Any]] = {}
    #: The worker options whose default differs for this handler (shown by
    #: ``inspect.signature`` when ``__init__`` is decorated with
    #: ``@takes_shipping_options_with(**WORKER_DEFAULTS)``).
    WORKER_DEFAULTS: ClassVar[dict[str, Any]] = {}
    #: A shipping handler never ships diagnostics: when no other handler
    #: shows them, they go to stderr (see :mod:`.diagnostics`).
    skips_shipping_diagnostics: ClassVar[bool] = True

    @takes_shipping_options
    def __init__(self, sink: Sink, **options: Unpack[ShippingOptions]) -> None:
        owner = type(self).__name__
        worker_options = dict(options)
        if not worker_options.keys() <= _OPTION_NAMES:
            check_keywords(owner, options, type(self))
        levelno = check_level(owner, worker_options.pop("level", DEFAULT_LEVEL))
        settings = WorkerSettings.from_options(owner, worker_options, self.WORKER_DEFAULTS)
        super().__init__(levelno)
        self._sink = sink
        self._settings = settings
        self._shown: tuple[str, dict[str, Any]] = (repr(sink), {})
        sink.formatter = None
        # How field values other than data become text at the call (see
        # snapshot.freeze): as the JSON renderer shows them, by default.
        self._as_text: Callable[[Any], str] = safe_repr
        self._worker = Worker(sink, settings, f"{owner}({sink.describe()})")

    # --- logging.Handler ----------------------------------------------------

    def handle(self, record: logging.LogRecord) -> Any:
        """Filter and queue *record*; no handler lock is needed (queueing is thread-safe)."""
        if not self.filters:
            self.emit(record)
            return True
        rv = self.filter(record)
        if isinstance(rv, logging.LogRecord):
            record = rv
        if rv:
            self.emit(record)
        return rv

    def emit(self, record: logging.LogRecord) -> None:
        """Queue a snapshot of *record* for the worker; never raises, never blocks on I/O."""
        try:
            name = record.name
            if _get_ident() in _worker_threads or (
                type(name) is str and name.startswith(DIAGNOSTICS_LOGGER)
            ):
                return
            state, size = snapshot_state(record, self._as_text)
            cls = record.__class__
            if cls is _LogRecord:
                self._worker.put(state, size)
            else:
                copy = _new(cls)
                copy.__dict__ = state
                self._worker.put(copy, size)
        except Exception as exc:
            with contextlib.suppress(Exception):
                self._worker.count_error(exc)

    def setFormatter(self, fmt: logging.Formatter | None) -> None:  # noqa: N802 - stdlib's name
        """
        Render records with *fmt* (None: a ``JsonFormatter``).

        Raises:
            TypeError: the sink cannot render with *fmt* (``HTTPHandler``
                needs a JSON formatter such as ``structflow.formatters.JsonFormatter``).
        """
        from structflow.formatters import JsonFormatter

        self._sink.check_formatter(type(self).__name__, fmt)
        super().setFormatter(fmt)
        self._sink.formatter = fmt
        # Text formats show an object as its str(), JSON as its repr().
        self._as_text = safe_repr if fmt is None or isinstance(fmt, JsonFormatter) else safe_str

    def flush(self, timeout: float | None = None) -> bool:  # type: ignore[override]
        """
        Wait until every record accepted before the call is delivered.

        Records adopted from a spool left by an earlier process count as
        accepted before the call.

        Args:
            timeout: seconds to wait at most; None waits as long as it takes.

        Returns:
            True once every such record is delivered (or was given up and
            counted in ``stats()["dropped"]``); False on timeout, when
            undelivered records stay in the spool if there is one.
        """
        if holding_logging_lock():
            # Inside dictConfig (which closes and flushes every handler while
            # holding logging's lock): waiting could deadlock with a worker
            # thread that needs that lock, so only start the flush.
            self._worker.request_flush()
            return False
        if timeout is None and called_by_logging_shutdown():
            # close() follows at once: every shipping handler starts closing
            # now, so that they all drain together within shutdown_timeout.
            close_all()
            return self._worker.finish_close()
        return self._worker.flush(timeout)

    def close(self) -> None:
        """
        Flush with a deadline of ``shutdown_timeout`` seconds, then stop.

        What is not delivered by then stays in the spool (with ``spool_dir``)
        or is counted as dropped. Called by ``dictConfig`` (which closes
        every handler it knows of, while holding logging's lock), it only
        starts a flush: the handler stays attached to its loggers and keeps
        shipping, so no record is lost.
        """
        if holding_logging_lock():
            self._worker.request_flush()
            return
        try:
            if called_by_logging_shutdown():
                close_all()
            self._worker.close()
        finally:
            super().close()

    # --- structflow ---------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """
        Return the handler's counters.

        Keys: ``accepted`` (records queued by ``emit``), ``delivered``
        (confirmed by the receiver), ``retried`` (records sent again after a
        failed attempt, counted per attempt), ``spooled`` (written to the
        spool), ``adopted`` (read from a spool left by another process),
        ``dropped`` (a dict: reason -> records given up, every reason
        present), ``queued_bytes`` (bytes held in memory now) and
        ``delivered_bytes`` (payload bytes delivered).

        Counters are per process: a forked child starts from zero.
        """
        return self._worker.stats()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has finished."""
        return self._worker.closed

    def _show(self, first: str, own: dict[str, Any]) -> None:
        """
        Set what ``repr`` shows: *first* (the destination, secrets masked), then *own*.

        *own* holds the subclass's own arguments as ``repr`` may show them;
        those equal to their :attr:`OWN_DEFAULTS` are left out.
        """
        self._shown = (first, own)

    def _repr_items(self) -> Iterator[str]:
        first, own = self._shown
        yield first
        for key, value in own.items():
            if value != self.OWN_DEFAULTS[key]:
                yield f"{key}={value!r}"
        for key, value in self._settings.non_defaults(self.WORKER_DEFAULTS).items():
            yield f"{key}={value!r}"
        if self.level:
            yield f"level={logging.getLevelName(self.level)!r}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(self._repr_items())})"
