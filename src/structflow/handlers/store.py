"""
:class:`StoreHandler`: write records to a log store (SQLite or PostgreSQL).

The store is one more destination of the shared shipping worker: records
are rendered on the writer thread (the JSON renderer's event dict, made into
the store's entry) and stored a batch per transaction on the sender thread,
with the worker's guarantees (bounded memory, counted drops, the crash-safe
spool, ``flush()`` as a barrier, fork safety). Each entry carries a unique
record id made when it is rendered, so a batch sent again (a retry, or a
spool replayed by the next process after a crash) is stored exactly once.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Unpack

from structflow.handlers._record_ids import RecordIds
from structflow.handlers.shipping.diagnostics import Diagnostics
from structflow.handlers.shipping.handler import ShippingHandler
from structflow.handlers.shipping.settings import (
    ShippingOptions,
    check_float,
    check_str,
    takes_shipping_options_with,
)
from structflow.handlers.shipping.sink import Outcome, Sink, release_exception
from structflow.handlers.shipping.snapshot import fit_exceptions

if TYPE_CHECKING:
    from structflow.store._ingest import Columns
    from structflow.store._retention import Retention

__all__ = ["StoreHandler"]

#: Larger batches than the other handlers': a database stores a batch in one
#: transaction (a commit, a sync of its journal), and a burst goes in at a
#: few transactions a second.
_WORKER_DEFAULTS: dict[str, Any] = {"batch_max_records": 10_000, "batch_max_bytes": 4_194_304}


class _StoreSink(Sink):
    """Renders records into store entries with a record id, and stores them a batch at a time."""

    def __init__(
        self,
        url: str,
        shown: str,
        timeout: float,
        retention: Retention,
        encode: Callable[[Columns], bytes],
    ) -> None:
        self.url = url
        self.shown = shown
        self.timeout = timeout
        self.retention = retention
        # Entries for one store are adopted from a spool only by a handler
        # writing to the same store (and making entries the same way: the
        # encoding is the dialect's, which the url names).
        self.identity = f"store entries v2 {shown}"
        self._encode = encode
        self._store: Any = None
        self._diagnostics = Diagnostics(f"StoreHandler({shown})")
        self._ids = RecordIds()

    # --- rendering (writer thread) ------------------------------------------

    def check_formatter(self, owner: str, formatter: logging.Formatter | None) -> None:
        if formatter is None:
            return
        schema = getattr(formatter, "json_schema", None)
        if not hasattr(formatter, "event_dict") or schema != "default":
            shown = type(formatter).__name__ + (f"(json_schema={schema!r})" if schema else "")
            raise TypeError(
                f"{owner} stores records in structflow's JSON layout and needs a "
                f"structflow.formatters.JsonFormatter with json_schema='default'; got {shown}"
            )

    def render_all(self, records: Sequence[logging.LogRecord]) -> list[bytes]:
        # The renderer's event dict (redacted, truncated, processed) becomes
        # the store's entry directly: no JSON line to parse again later.
        from structflow.formatters import to_json_bytes
        from structflow.store._ingest import event_columns

        formatter: Any = self.record_formatter()
        fit_exceptions(formatter, records)
        event_dict = formatter.event_dict
        new_id = self._ids.new_id
        encode = self._encode
        return [
            encode(event_columns(event_dict(record), new_id(), record.levelno, to_json_bytes))
            for record in records
        ]

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
            result = store.store_entries(entries)
        except Exception as exc:
            detail = f"{type(exc).__name__}: {exc}"
            release_exception(exc)
            self.close()
            return Outcome("retry", detail)
        self._prune_if_due()
        if result.invalid:
            # Entries the database will not take (a constraint of its own, a
            # value no rule of ours foresaw) are dropped as rejected; the
            # store has stored the others.
            refused = len(result.invalid)
            detail = result.invalid[0][1] + (f"; and {refused - 1} more" if refused > 1 else "")
            at = tuple(index for index, _ in result.invalid)
            return Outcome("partial", detail, rejected=refused, rejected_at=at)
        return Outcome("ok")

    def _prune_if_due(self) -> None:
        try:
            self.retention.prune_if_due(self._store)
        except Exception as exc:
            self._diagnostics.report(
                "prune",
                "warning",
                "could not prune entries older than %g days: %s",
                self.retention.days,
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


class StoreHandler(ShippingHandler):
    """
    Write records to a log store from the shared background worker.

    ``emit`` never blocks on the database and never raises. Records are
    rendered by the handler's formatter (a
    :class:`structflow.formatters.JsonFormatter` with the default schema:
    the entry holds what its JSON line would), given a unique record id, and
    stored a batch per transaction; an entry whose id is stored already is
    not stored again, so a batch retried after an error, or replayed from
    the spool after a crash, is stored exactly once. A record the store
    cannot take (a processor removed its ``message``) is dropped and counted
    as ``encode_error``. A store that cannot be
    reached (PostgreSQL down, SQLite locked past ``timeout``) is retried with
    backoff, as an HTTP receiver would be.

    Keyword arguments carry the names of the ``[logging.store]`` config keys.

    Args:
        url: the store, as :func:`structflow.store.connect` takes it
            (``sqlite:///path/to/logs.db`` or ``postgresql://...``).
        retention_days: delete entries older than this many days, once an
            hour while the handler writes, at most 5,000 after each batch
            until none is left (``0``: keep everything).
        timeout: seconds to wait for the database (a lock, a connection).
        options: ``level`` and the worker options (``batch_max_records`` ...
            ``fsync_interval``), which every shipping handler shares; see
            "Worker options" on the handlers page. A batch is stored in one
            transaction.

    Raises:
        ValueError: a value is invalid (an unknown url scheme, a PostgreSQL
            url without psycopg installed, ...); the message names the key,
            the value and what is allowed.
        TypeError: a keyword argument is unknown.

    .. versionadded:: 0.1.0
    """

    OWN_DEFAULTS = {"retention_days": 0.0, "timeout": 10.0}
    WORKER_DEFAULTS = _WORKER_DEFAULTS

    @takes_shipping_options_with(**_WORKER_DEFAULTS)
    def __init__(
        self,
        url: str,
        *,
        retention_days: float = 0.0,
        timeout: float = 10.0,
        **options: Unpack[ShippingOptions],
    ) -> None:
        from structflow.store._configured import check_retention_days
        from structflow.store._dialects import dialect_for
        from structflow.store._retention import Retention

        owner = type(self).__name__
        check_str(owner, "url", url, what="a store url such as 'sqlite:///logs.db'")
        try:
            dialect = dialect_for(url)
        except ValueError as exc:
            raise ValueError(f"{owner}: {exc}") from None
        if dialect.name == "postgresql" and importlib.util.find_spec("psycopg") is None:
            raise ValueError(
                f"{owner}: url={dialect.shown!r} needs psycopg 3; install the extra with: "
                "pip install 'structflow[postgres]'"
            )
        retention = check_retention_days(retention_days, owner)
        timeout = check_float(owner, "timeout", timeout, 0.0, strict=True)
        sink = _StoreSink(url, dialect.shown, timeout, Retention(retention), dialect.encode_entry)
        super().__init__(sink, **options)
        self.url = dialect.shown
        self._show(repr(dialect.shown), {"retention_days": retention, "timeout": timeout})
