"""
Retention for a store's writers: entries older than ``retention_days``, deleted a slice at a time.

StoreHandler's sender and ``structflow serve``'s ingest prune the store they
write to while they write, through one :class:`Retention` each: once an
hour, and never more than :data:`PRUNE_SLICE` entries after one write, so
that a large backlog (retention just turned on for a store that has grown
for months) never holds up the records for as long as deleting it all would
take. ``structflow store prune`` deletes everything old at once, with a
progress bar.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from structflow.store._store import Store

__all__ = ["PRUNE_INTERVAL", "PRUNE_SLICE", "Retention"]

#: Seconds between prunes once a backlog is gone.
PRUNE_INTERVAL = 3600.0
#: Most entries one prune deletes after a write.
PRUNE_SLICE = 5000


class Retention:
    """
    When one writer prunes its store, and how much at once.

    Args:
        days: delete entries older than this many days (``0``: never prune).
    """

    def __init__(self, days: float) -> None:
        self.days = days
        self._next = 0.0

    def prune_if_due(self, store: Store) -> int:
        """
        Delete a slice of the old entries when a prune is due; return how many were deleted.

        One is due at the first call and then once every
        :data:`PRUNE_INTERVAL`; while slices come back full (a backlog), at
        every call.

        Raises:
            StoreError: the database failed; the next attempt is an interval away.
        """
        if not self.days or time.monotonic() < self._next:
            return 0
        self._next = time.monotonic() + PRUNE_INTERVAL
        deleted = store.prune(older_than=dt.timedelta(days=self.days), limit=PRUNE_SLICE)
        if deleted >= PRUNE_SLICE:
            self._next = 0.0  # more to delete: the next slice after the next write
        return deleted
