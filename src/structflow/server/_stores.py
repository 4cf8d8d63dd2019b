"""
The server's connections to its store.

One connection writes (ingest, and the pruning that ``retention_days``
asks for after it), one reads (queries, GraphQL), and each live
tail has its own, closed when its client goes away, which is what ends the
store's ``follow`` iterator. Store calls block, so they run on worker threads,
never on the event loop. SQLite in WAL mode lets the reader and the tails
read while the writer writes; PostgreSQL serves each connection on its own.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TypeVar

from starlette.concurrency import run_in_threadpool

from structflow.store import Store, connect
from structflow.store._retention import Retention

__all__ = ["MAX_TAILS", "Stores", "TooManyTails"]

T = TypeVar("T")
#: Where a prune that failed is said (the ingest it followed went through),
#: among the store's other notes.
_logger = logging.getLogger("structflow.store")
#: Live tails served at once; one more is answered 503.
MAX_TAILS = 64


class TooManyTails(Exception):
    """Every live-tail slot is taken."""


class Stores:
    """
    The open connections of one server, made by :meth:`open` and ended by :meth:`close`.

    Args:
        url: the store's url.
        retention: prunes the store after writes.
    """

    def __init__(self, url: str, retention: Retention | None = None) -> None:
        self.url = url
        self.retention = retention or Retention(0.0)
        self._writer: Store | None = None
        self._reader: Store | None = None
        self._tails: set[Store] = set()
        self._lock = threading.Lock()

    @property
    def shown(self) -> str:
        """The store's url without its password."""
        store = self._reader
        return store.url if store is not None else self.url

    def open(self) -> None:
        """
        Connect (creating or upgrading the store's schema).

        Raises:
            StoreError: the store cannot be opened.
        """
        self._writer = connect(self.url)
        self._reader = connect(self.url)

    def close(self) -> None:
        """Close every connection, the live tails' too (which ends them)."""
        with self._lock:
            stores = [self._writer, self._reader, *self._tails]
            self._tails.clear()
            self._writer = self._reader = None
        for store in stores:
            if store is not None:
                store.close()

    def _get(self, store: Store | None) -> Store:
        if store is None:
            raise RuntimeError("the server's store is not open")
        return store

    async def write(self, work: Callable[[Store], T]) -> T:
        """Run *work* with the writing connection, on a worker thread; then prune if due."""
        store = self._get(self._writer)
        return await run_in_threadpool(self._write_then_prune, work, store)

    def _write_then_prune(self, work: Callable[[Store], T], store: Store) -> T:
        done = work(store)
        try:
            self.retention.prune_if_due(store)
        except Exception as exc:
            _logger.warning(
                "could not prune entries older than %g days: %s", self.retention.days, exc
            )
        return done

    async def read(self, work: Callable[[Store], T]) -> T:
        """Run *work* with the reading connection, on a worker thread."""
        store = self._get(self._reader)
        return await run_in_threadpool(work, store)

    async def open_tail(self) -> Store:
        """
        A connection of its own for one live tail; give it back with :meth:`close_tail`.

        Raises:
            TooManyTails: :data:`MAX_TAILS` tails are open already.
            StoreError: the store cannot be reached.
        """
        with self._lock:
            if len(self._tails) >= MAX_TAILS:
                raise TooManyTails(f"{MAX_TAILS} live tails are open; try again later")
        store = await run_in_threadpool(connect, self.url)
        with self._lock:
            self._tails.add(store)
        return store

    def close_tail(self, store: Store) -> None:
        """Close a tail's connection (from any thread; its ``follow`` then ends)."""
        with self._lock:
            self._tails.discard(store)
        store.close()
