"""
The seam between the worker and a destination: :class:`Sink` and :class:`Outcome`.

A sink renders snapshot records into *entries* (bytes) and delivers lists
of entries; the worker does everything else (queueing, batching, the
spool, retries, flush and shutdown). A new destination is one module with
one ``Sink`` subclass and a thin :class:`~structflow.handlers.ShippingHandler`
subclass that validates its own options and builds the sink, as httpx's
transports plug into its client behind ``BaseTransport``.
"""

from __future__ import annotations

import abc
import logging
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

__all__ = [
    "EntryTooLarge",
    "Outcome",
    "Rendered",
    "Sink",
    "keep_for_parent",
    "release_exception",
    "render_slice",
]


@dataclass(frozen=True, slots=True)
class Outcome:
    """
    What one delivery attempt came to.

    * ``ok``: every entry delivered.
    * ``retry``: nothing delivered; try again later (``retry_after`` seconds
      when the receiver said so).
    * ``split``: the batch is too large for the receiver (HTTP 413).
    * ``reject``: the receiver refused the batch for good (other 4xx).
    * ``unsendable``: the request cannot be made at all (a header, url or
      proxy setting the transport refuses); dropped like ``reject``.
    * ``partial``: some entries delivered, ``retry`` lists the indexes to
      send again, ``rejected`` counts those refused for good and
      ``rejected_at`` lists their indexes when the receiver names them (the
      worker then counts the delivered bytes exactly; refused entries it
      does not name are counted at the mean size of the others).

    .. versionadded:: 0.1.0
    """

    kind: Literal["ok", "retry", "split", "reject", "unsendable", "partial"]
    detail: str = ""
    retry_after: float | None = None
    retry: tuple[int, ...] = ()
    rejected: int = 0
    rejected_at: tuple[int, ...] = ()


class EntryTooLarge(Exception):
    """
    Raised by :meth:`Sink.render` for a record the destination would refuse however it is batched.

    The worker drops the record and counts it as ``too_large``.

    .. versionadded:: 0.1.0
    """


class Sink(abc.ABC):
    """
    What a shipping handler plugs into the worker: rendering and transport.

    ``render`` and ``render_all`` run on the writer thread, ``send`` and
    ``close`` on the sender thread (``close`` also on the closing thread
    once the sender is done). Limits of the destination are class or
    instance attributes; the worker applies the smaller of them and the
    handler's settings.

    A base class rather than a ``typing.Protocol``: the worker reads every
    attribute below on every sink, and most sinks want their defaults (no
    limits of their own, the JSON formatter, nothing to close), which a
    protocol cannot give a class that merely matches it; and a subclass
    missing ``render`` or ``send`` fails when it is made, not on the worker
    thread.

    .. versionadded:: 0.1.0
    """

    #: Most entries one delivery may carry (None: no limit of its own).
    max_batch_records: int | None = None
    #: Most bytes (entries plus ``entry_overhead`` each) one delivery may carry.
    max_batch_bytes: int | None = None
    #: Larger entries are dropped as ``too_large`` when rendered.
    max_entry_bytes: int | None = None
    #: Bytes the wire format adds per entry (separators, framing).
    entry_overhead: int = 1
    #: What the entries are encoded for; a spool is only adopted by a sink
    #: with the same identity.
    identity: str = ""
    #: The formatter records are rendered with (set by the handler; None:
    #: a :class:`~structflow.formatters.JsonFormatter`, see :meth:`record_formatter`).
    formatter: logging.Formatter | None = None
    #: Seconds one delivery attempt may take.
    timeout: float = 10.0
    # The JsonFormatter used while no formatter is set, made on first use.
    _json_formatter: logging.Formatter | None = None

    @abc.abstractmethod
    def render(self, record: logging.LogRecord) -> bytes:
        """Render one snapshot record into an entry."""

    def render_all(self, records: Sequence[logging.LogRecord]) -> list[bytes]:
        """
        Render a chunk of records; raise if any fails (the worker then goes one by one).

        Sinks override it with a faster loop where they can.
        """
        render = self.render
        return [render(record) for record in records]

    @abc.abstractmethod
    def send(self, entries: Sequence[bytes], timeout: float) -> Outcome:
        """Make one delivery attempt; never sleep or retry here."""

    def close(self) -> None:  # noqa: B027 - optional: only sinks holding connections need it
        """Release connections."""

    def after_fork_in_child(self) -> None:  # noqa: B027 - optional, as close()
        """Forget connections inherited from the parent process (never close them)."""

    def describe(self) -> str:
        """Return where records go, without secrets, for diagnostics."""
        return type(self).__name__

    def check_formatter(self, owner: str, formatter: logging.Formatter | None) -> None:  # noqa: B027 - optional: most sinks render with any formatter
        """Raise TypeError, naming *owner*, when this sink cannot render with *formatter*."""

    def record_formatter(self) -> logging.Formatter:
        """Return the formatter to render with: the handler's, else a ``JsonFormatter``."""
        formatter = self.formatter
        if formatter is not None:
            return formatter
        if self._json_formatter is None:
            from structflow.formatters import JsonFormatter

            self._json_formatter = JsonFormatter()
        return self._json_formatter


# Connections inherited across fork, kept referenced so that the child never
# closes (or finalises) them: a TLS close_notify would end the parent's session.
_inherited: list[object] = []


def keep_for_parent(connection: object | None) -> None:
    """
    In a forked child, leave an inherited connection to the parent, untouched.

    For :meth:`Sink.after_fork_in_child`: the sink then forgets it and opens
    its own.
    """
    if connection is not None:
        _inherited.append(connection)


def release_exception(exc: BaseException) -> None:
    """
    Let a caught delivery error, and every error it wraps, be freed at once.

    A traceback holds the frames the error passed through, and their locals
    often hold the error again (``except ... as e: raise Other() from e``):
    a reference cycle, freed only when the cyclic garbage collector gets to
    it, which can be many failed attempts later. Meanwhile each cycle keeps
    the request body of its attempt (up to ``batch_max_bytes``) alive. This
    clears the frames' locals and drops the tracebacks.

    .. versionadded:: 0.1.0
    """
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        tb = current.__traceback__
        if tb is not None:
            # Frames still running (the caller's) are skipped by clear_frames.
            traceback.clear_frames(tb)
            current.__traceback__ = None
        linked = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        linked.extend(current.args)
        stack.extend(e for e in linked if isinstance(e, BaseException))


class Rendered(NamedTuple):
    """What :func:`render_slice` made of a slice of records."""

    entries: list[bytes]
    #: Bytes of the entries.
    payload: int
    #: Records set aside: too large once rendered, or failing to render.
    too_large: int
    failed: int
    #: What went wrong last ("" when nothing did), for diagnostics.
    error: str


#: What structflow's JSON renderer writes in place of a record it could not
#: render (it never raises): the key, and the start of its value.
_RENDER_FAILED_KEY = b"structflow_error"
_RENDER_FAILED = b"record could not be rendered: "


def render_slice(
    sink: Sink, records: Sequence[logging.LogRecord], max_entry_bytes: int
) -> Rendered:
    """
    Render *records* through *sink*, setting aside those that fail or are too large.

    The whole slice goes through :meth:`Sink.render_all` at once; only when
    that raises, an entry is over *max_entry_bytes*, or an entry is the
    renderer's stand-in for a record it could not render, are the records
    rendered one by one to find which. A stand-in is not shipped: the
    record counts as failed, as if rendering had raised.
    """
    try:
        entries = sink.render_all(records)
        sizes = list(map(len, entries))
        if sizes and max(sizes) > max_entry_bytes:
            raise EntryTooLarge
        if _RENDER_FAILED_KEY in b"".join(entries):
            raise ValueError
        return Rendered(entries, sum(sizes), 0, 0, "")
    except Exception:
        pass
    entries = []
    payload = too_large = failed = 0
    error = ""
    render = sink.render
    for record in records:
        try:
            entry = render(record)
        except EntryTooLarge as exc:
            too_large += 1
            error = str(exc)
            continue
        except Exception as exc:
            failed += 1
            error = f"{type(exc).__name__}: {exc}"
            continue
        if len(entry) > max_entry_bytes:
            too_large += 1
            error = f"an entry of {len(entry)} bytes"
            continue
        if _RENDER_FAILED_KEY in entry and (failure := _render_failure(entry)):
            failed += 1
            error = failure
            continue
        entries.append(entry)
        payload += len(entry)
    return Rendered(entries, payload, too_large, failed, error)


def _render_failure(entry: bytes) -> str:
    """The renderer's reason when *entry* stands in for a record it could not render, else ""."""
    start = entry.find(_RENDER_FAILED)
    if start < 0:
        return ""
    reason = entry[start : start + 200].split(b'"', 1)[0].rstrip(b"\\")
    return reason.decode("utf-8", "replace")
