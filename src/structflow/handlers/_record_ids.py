"""
Record ids: the key that makes a batch sent twice land once.

:class:`StoreHandler` and :class:`HTTPHandler`'s ``ndjson`` encoding stamp
every JSON line with ``"_record_id"`` when they render it, before it is
queued or spooled, so a retried batch, or a spool replayed by the next
process after a crash, carries the same ids. A log store (and ``structflow
serve``) stores a line whose id it has seen once.
"""

from __future__ import annotations

import itertools
import logging
import secrets
from collections.abc import Sequence

__all__ = ["RecordIds"]

#: The id's key, after the comma that follows a line's last value.
_ID_KEY = b',"_record_id":"'
_STANDARD = {
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARNING": logging.WARNING,
    "ERROR": logging.ERROR,
    "CRITICAL": logging.CRITICAL,
}


class RecordIds:
    """
    Unique ids for the records one handler renders, and the stamp that adds them.

    An id is 64 random bits drawn per handler and process, then a counter:
    unique without a uuid per record. :meth:`renew` draws new bits (a forked
    child must not repeat its parent's ids). The counter has a fixed width
    of 12 hex digits, so one handler's ids sort in the order they were made:
    a store's unique index on them then grows at its end, which costs the
    database about half as much as inserting in the middle.
    """

    def __init__(self) -> None:
        self.renew()

    def renew(self) -> None:
        """Draw a new prefix and restart the counter."""
        self._prefix_text = secrets.token_hex(8)
        # What goes between a line's last value and the counter.
        self._key = _ID_KEY + self._prefix_text.encode("ascii") + b"-"
        self._counter = itertools.count()

    def new_id(self) -> str:
        """Return the next id."""
        return f"{self._prefix_text}-{next(self._counter):012x}"

    def stamp(self, line: bytes, record: logging.LogRecord) -> bytes:
        """
        Return the JSON object *line* with ``_record_id`` (and ``_levelno``) added.

        ``_levelno`` is added for a level whose name does not stand for its
        number everywhere (a custom level), so a store can still rank it.
        """
        return self.stamp_all([line], [record])[0]

    def stamp_all(
        self, lines: Sequence[bytes], records: Sequence[logging.LogRecord]
    ) -> list[bytes]:
        """:meth:`stamp` each line of *lines* with the id of the record at its index."""
        key = self._key
        counter = self._counter
        standard = _STANDARD.get
        out = []
        for line, record in zip(lines, records, strict=True):
            if line[-1:] != b"}":
                out.append(line)  # not an object: a formatter of the user's own, left as made
                continue
            levelno = record.levelno
            if standard(record.levelname) == levelno or not isinstance(levelno, int):
                tail = b'%012x"}' % next(counter)
            else:
                tail = b'%012x","_levelno":%d}' % (next(counter), levelno)
            if len(line) > 2:
                out.append(b"".join((line[:-1], key, tail)))
            else:  # {}: no comma before the key
                out.append(b"".join((b"{", key[1:], tail)))
        return out
