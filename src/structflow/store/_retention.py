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
import math
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from structflow.store._store import Store

__all__ = [
    "PRUNE_INTERVAL",
    "PRUNE_SLICE",
    "Retention",
    "check_retention_days",
    "configured_age",
    "configured_retention_days",
]

#: Seconds between prunes once a backlog is gone.
PRUNE_INTERVAL = 3600.0
#: Most entries one prune deletes after a write.
PRUNE_SLICE = 5000


def check_retention_days(value: object, owner: str) -> float:
    """
    Return *value* as days to keep entries (``0``: forever).

    Raises:
        ValueError: *value* is not a number of days >= 0; the message starts with *owner*.
    """
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if ok and (not math.isfinite(float(value)) or float(value) < 0):  # type: ignore[arg-type]
        ok = False
    if not ok:
        raise ValueError(
            f"{owner}: retention_days={value!r} is invalid; expected a number of days >= 0 "
            "(0 keeps entries forever)"
        )
    return float(value)  # type: ignore[arg-type]


def configured_retention_days() -> float:
    """
    ``[logging.store] retention_days`` of the configuration (``0`` when it is not set).

    Raises:
        ValueError: the configured value is not a number of days >= 0
            (a :class:`~structflow.ConfigError` when the configuration
            itself is invalid).
    """
    from structflow._config import effective_config

    section = effective_config()["logging"].get("store")
    if section is None or "retention_days" not in section:
        return 0.0
    # Named as a handler's key is when configure() refuses it: where it came from first.
    where = section.source("retention_days")
    return check_retention_days(section["retention_days"], f"{where}: [logging.store]")


def configured_age() -> dt.timedelta | None:
    """The age ``retention_days`` configures, or None when it is not set (or ``0``)."""
    days = configured_retention_days()
    return dt.timedelta(days=days) if days else None


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
