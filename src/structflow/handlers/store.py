"""
:class:`StoreHandler`: write records to a log store (SQLite or PostgreSQL).

The store is one more destination of the shared shipping worker: records are
rendered as JSON lines on the writer thread and stored a batch per
transaction on the sender thread, with the worker's guarantees (bounded
memory, counted drops, the crash-safe spool, ``flush()`` as a barrier, fork
safety). Each line carries a unique record id made when it is rendered, so
a batch sent again (a retry, or a spool replayed by the next process after a
crash) is stored exactly once.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import logging
import math
import time
from collections.abc import Iterable, Sequence
from typing import Any

from structflow.handlers._record_ids import RecordIds
from structflow.handlers._worker import (
    Diagnostics,
    Outcome,
    ShippingHandler,
    Sink,
    WorkerSettings,
    check_float,
    check_level,
    check_str,
    fit_exception,
    release_exception,
)

__all__ = ["StoreHandler"]

_OWNER = "StoreHandler"
#: Seconds between prunes when ``retention_days`` is set.
PRUNE_INTERVAL = 3600.0


class _StoreSink(Sink):
    """Renders JSON lines stamped with a record id, and ingests them into a store."""

    def __init__(self, url: str, shown: str, timeout: float, retention_days: float) -> None:
        self.url = url
        self.shown = shown
        self.timeout = timeout
        self.retention_days = retention_days
        # Entries for one store are adopted from a spool only by a handler
        # writing to the same store.
        self.identity = f"store {shown}"
        self._store: Any = None
        self._default_formatter: Any = None
        self._next_prune = 0.0
        self._diagnostics = Diagnostics(f"StoreHandler({shown})")
        self._ids = RecordIds()

    # --- rendering (writer thread) ------------------------------------------

    def _formatter(self) -> Any:
        fmt = self.formatter
        if fmt is not None:
            return fmt
        if self._default_formatter is None:
            from structflow.formatters import JsonFormatter

            self._default_formatter = JsonFormatter()
        return self._default_formatter

    def render_all(self, records: Iterable[logging.LogRecord]) -> list[bytes]:
        formatter = self._formatter()
        format_bytes = formatter.format_bytes
        stamp = self._ids.stamp
        out = []
        for record in records:
            if record.exc_info:
                fit_exception(formatter, record)
            out.append(stamp(format_bytes(record), record))
        return out

    def render(self, record: logging.LogRecord) -> bytes:
        return self.render_all((record,))[0]

    # --- storing (sender thread) ----------------------------------------------

    def _open(self) -> Any:
        from structflow.store import connect

        self._store = connect(self.url, timeout=self.timeout)
        return self._store

    def send(self, entries: Sequence[bytes], timeout: float) -> Outcome:
        try:
            store = self._store or self._open()
            result = store.ingest(entries)
        except Exception as exc:
            detail = f"{type(exc).__name__}: {exc}"
            release_exception(exc)
            self.close()
            return Outcome("retry", detail)
        self._prune_if_due()
        if result.invalid:
            index, reason = result.invalid[0]
            return Outcome(
                "partial",
                f"{len(result.invalid)} line(s) are not valid entries (line {index}: {reason})",
                rejected=len(result.invalid),
            )
        return Outcome("ok")

    def _prune_if_due(self) -> None:
        if not self.retention_days or time.monotonic() < self._next_prune:
            return
        self._next_prune = time.monotonic() + PRUNE_INTERVAL
        try:
            self._store.prune(older_than=dt.timedelta(days=self.retention_days))
        except Exception as exc:
            self._diagnostics.report(
                "prune",
                "warning",
                "could not prune entries older than %g days: %s",
                self.retention_days,
                exc,
            )

    def close(self) -> None:
        store, self._store = self._store, None
        if store is not None:
            try:
                store.close()
            except Exception as exc:
                release_exception(exc)

    def after_fork_in_child(self) -> None:
        store, self._store = self._store, None
        if store is not None:
            store.after_fork_in_child()
        self._ids.renew()
        self._diagnostics.reset_after_fork()

    def describe(self) -> str:
        return self.shown


def _check_retention(value: object) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if ok and (not math.isfinite(float(value)) or float(value) < 0):  # type: ignore[arg-type]
        ok = False
    if not ok:
        raise ValueError(
            f"{_OWNER}: retention_days={value!r} is invalid; expected a number of days >= 0 "
            "(0 keeps entries forever)"
        )
    return float(value)  # type: ignore[arg-type]


class StoreHandler(ShippingHandler):
    """
    Write records to a log store from the shared background worker.

    ``emit`` never blocks on the database and never raises. Records are
    rendered by the handler's formatter (a
    :class:`structflow.formatters.JsonFormatter` with the default schema),
    stamped with a unique record id, and stored a batch per transaction by
    :meth:`structflow.store.Store.ingest`, which stores a line it has seen
    before only once: a batch retried after an error, or replayed from the
    spool after a crash, is stored exactly once. A store that cannot be
    reached (PostgreSQL down, SQLite locked past ``timeout``) is retried with
    backoff, as an HTTP receiver would be.

    The keyword arguments are those of HTTPHandler's worker (and the keys of
    ``[logging.store]``), plus the store's own.

    Args:
        url: the store, as :func:`structflow.store.connect` takes it
            (``sqlite:///path/to/logs.db`` or ``postgresql://...``).
        retention_days: delete entries older than this many days, once an
            hour while the handler writes (``0``: keep everything).
        timeout: seconds to wait for the database (a lock, a connection).
        level: the handler's level (default ``NOTSET``).
        batch_max_records: most records per transaction.
        batch_max_bytes: most bytes of rendered records per transaction.
        flush_interval: seconds a record may wait for its batch to fill.
        max_queue_bytes: memory bound of the queue.
        when_full: ``drop_oldest`` (default), ``drop_newest`` or ``block``.
        block_timeout: seconds ``block`` waits for room before dropping.
        shutdown_timeout: seconds ``close()`` and interpreter exit may spend
            storing what is queued.
        max_retries: attempts after the first before a batch is dropped;
            ``-1`` (default) retries until stored or shut down.
        retry_backoff: first retry delay, doubled per attempt, with jitter.
        retry_max_backoff: longest retry delay.
        spool_dir: a directory for the crash-safe on-disk spool (``""``: none).
        spool_max_bytes: disk cap of the spool; the oldest records go first.
        fsync: ``interval`` (default), ``always`` or ``never``.
        fsync_interval: seconds between syncs under ``interval``.

    Raises:
        ValueError: a value is invalid (an unknown url scheme, a PostgreSQL
            url without psycopg installed, ...); the message names the key,
            the value and what is allowed.

    .. versionadded:: 0.1.0
    """

    OWN_DEFAULTS = {"retention_days": 0.0, "timeout": 10.0}

    def __init__(
        self,
        url: str,
        *,
        retention_days: float = 0.0,
        timeout: float = 10.0,
        level: str | int = "NOTSET",
        batch_max_records: int = 5000,
        batch_max_bytes: int = 1_048_576,
        flush_interval: float = 1.0,
        max_queue_bytes: int = 33_554_432,
        when_full: str = "drop_oldest",
        block_timeout: float = 1.0,
        shutdown_timeout: float = 5.0,
        max_retries: int = -1,
        retry_backoff: float = 0.5,
        retry_max_backoff: float = 30.0,
        spool_dir: str = "",
        spool_max_bytes: int = 1_073_741_824,
        fsync: str = "interval",
        fsync_interval: float = 1.0,
    ) -> None:
        from structflow.store._dialects import dialect_for

        check_str(_OWNER, "url", url, what="a store url such as 'sqlite:///logs.db'")
        try:
            dialect = dialect_for(url)
        except ValueError as exc:
            raise ValueError(f"{_OWNER}: {exc}") from None
        if dialect.name == "postgresql" and importlib.util.find_spec("psycopg") is None:
            raise ValueError(
                f"{_OWNER}: url={dialect.shown!r} needs psycopg 3; install the extra with: "
                "pip install 'structflow[postgres]'"
            )
        retention = _check_retention(retention_days)
        timeout = check_float(_OWNER, "timeout", timeout, 0.0, strict=True)
        levelno = check_level(_OWNER, level)
        settings = WorkerSettings.validated(
            _OWNER,
            batch_max_records=batch_max_records,
            batch_max_bytes=batch_max_bytes,
            flush_interval=flush_interval,
            max_queue_bytes=max_queue_bytes,
            when_full=when_full,
            block_timeout=block_timeout,
            shutdown_timeout=shutdown_timeout,
            max_retries=max_retries,
            retry_backoff=retry_backoff,
            retry_max_backoff=retry_max_backoff,
            spool_dir=spool_dir,
            spool_max_bytes=spool_max_bytes,
            fsync=fsync,
            fsync_interval=fsync_interval,
        )
        self.url = dialect.shown
        self._own = {"retention_days": retention, "timeout": timeout}
        sink = _StoreSink(url, dialect.shown, timeout, retention)
        super().__init__(sink, settings, levelno, f"StoreHandler({dialect.shown})")

    def _check_formatter(self, fmt: logging.Formatter | None) -> None:
        if fmt is None:
            return
        if not hasattr(fmt, "format_bytes") or getattr(fmt, "json_schema", None) != "default":
            raise TypeError(
                "StoreHandler stores records as structflow's JSON lines and needs a "
                "structflow.formatters.JsonFormatter with json_schema='default'; got "
                f"{type(fmt).__name__}"
                + (f"(json_schema={fmt.json_schema!r})" if hasattr(fmt, "json_schema") else "")
            )

    def _repr_items(self) -> Any:
        yield repr(self.url)
        for key, value in self._own.items():
            if value != self.OWN_DEFAULTS[key]:
                yield f"{key}={value!r}"
