"""
The background worker shared by every shipping handler.

A shipping handler is a :class:`ShippingHandler` (a ``logging.Handler``) in
front of a :class:`Worker`, which moves records through three stages:

1. **intake** — the caller's thread snapshots the record (message computed
   once, arguments dropped, traceback formatted, mutable fields copied) and
   appends it to an in-memory queue bounded in bytes. No rendering, no I/O.
2. **writer thread** — renders each record into an *entry* (bytes) with the
   handler's :class:`Sink`, and appends the entries to the buffer: a
   :class:`MemoryBuffer`, or the on-disk :class:`~structflow.handlers.spool.Spool`
   when ``spool_dir`` is set (records survive a crash once spooled).
3. **sender thread** — takes batches (by records, bytes and time) from the
   buffer and delivers them through the sink, one batch in flight at a time
   (so order is kept), retrying with exponential backoff and jitter.

``flush()`` is a barrier: it drops a *marker* into the intake; the writer
turns it into a position in the buffer, and the marker is released when the
sender has resolved every entry before that position.

The worker's own code never takes ``logging``'s module lock: its diagnostics
are built and handed to the ``structflow.shipping`` logger's handlers
directly. (urllib3's logging calls on the sender thread may take it, but the
sender holds nothing a log call or ``dictConfig`` waits for, and a handler
closed inside ``dictConfig`` does not wait for the worker.) No shipping
handler ever ships a record made on a worker thread, which is also what
stops urllib3's debug logs from recursing.
"""

from __future__ import annotations

import abc
import atexit
import bisect
import contextlib
import copy
import itertools
import logging
import math
import operator
import os
import random
import sys
import threading
import time
import traceback
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Literal

from structflow.handlers.spool import Batch, Spool
from structflow.loggers import LogRecord as _LogRecord
from structflow.loggers import safe_message

__all__ = [
    "DROP_REASONS",
    "EntryTooLarge",
    "MemoryBuffer",
    "Outcome",
    "ShippingHandler",
    "Sink",
    "Worker",
    "WorkerSettings",
    "release_exception",
]

#: What ``when_full`` may be.
WHEN_FULL = ("drop_oldest", "drop_newest", "block")
#: What ``fsync`` may be.
FSYNC_POLICIES = ("interval", "always", "never")
#: Keys of ``stats()["dropped"]``, one per reason a record can be given up.
DROP_REASONS = (
    "queue_full",
    "too_large",
    "rejected",
    "retries_exhausted",
    "encode_error",
    "spool_full",
    "spool_corrupt",
    "spool_error",
    "shutdown",
    "closed",
    "error",
)
#: Diagnostics of one kind are logged at most once per this many seconds.
DIAGNOSTIC_INTERVAL = 30.0
#: Seconds between looks for spools left by dead processes.
ADOPT_INTERVAL = 10.0
#: How long the writer sleeps when idle with a spool (fsync interval checks).
_WRITER_TICK = 0.25
#: A Retry-After longer than this is capped (a misconfigured server must not
#: stall shipping for days).
MAX_RETRY_AFTER = 300.0
#: What a snapshot record costs in memory besides its message and traceback
#: text: the record object, its attribute dict (``RECORD_FIELD_COST`` per
#: attribute, the dict's slots and table) and the intake's reference to it.
RECORD_OVERHEAD = 128
RECORD_FIELD_COST = 48
#: What a rendered entry held in memory costs besides its bytes: the bytes
#: object's header and the buffer's reference to it (CPython, 64-bit).
ENTRY_OVERHEAD = 48

DIAGNOSTICS_LOGGER = "structflow.shipping"
_diag_logger = logging.getLogger(DIAGNOSTICS_LOGGER)

# Threads of every live worker. Records made on them (diagnostics, urllib3's
# debug logs) are never shipped, by any shipping handler.
_worker_threads: set[int] = set()
_live: weakref.WeakSet[Worker] = weakref.WeakSet()
_get_ident = threading.get_ident
_monotonic = time.monotonic
# What the writer takes when the intake is empty (never appended to).
_NO_ITEMS: deque[Any] = deque(maxlen=0)
#: After being woken, the writer waits this long for more records, so that it
#: renders them in chunks rather than one wake-up (and one notify) per record.
_WRITER_LINGER = 0.001
_sleep = time.sleep
#: The writer renders (and, without a spool, compacts) this many records at a time.
_RENDER_SLICE = 64


def _slices(items: deque[Queued], size: int) -> Iterator[list[logging.LogRecord]]:
    """Yield *items* as snapshot records, in lists of at most *size*."""
    it = iter(items)
    while part := _as_records(itertools.islice(it, size)):
        yield part


def _yield() -> None:
    _sleep(0)


_new = object.__new__


# --- settings and validation -------------------------------------------------


def check_int(owner: str, key: str, value: object, minimum: int) -> int:
    """Return *value* if it is an int >= *minimum*, else raise a ValueError naming *key*."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{owner}: {key}={value!r} is invalid; expected an integer >= {minimum}")
    return value


def check_float(
    owner: str, key: str, value: object, minimum: float, *, strict: bool = False
) -> float:
    """Return *value* as a float if it is a number >= (or > with *strict*) *minimum*."""
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if ok:
        number = float(value)  # type: ignore[arg-type]
        ok = math.isfinite(number) and (number > minimum if strict else number >= minimum)
    if not ok:
        relation = ">" if strict else ">="
        raise ValueError(
            f"{owner}: {key}={value!r} is invalid; "
            f"expected a number of seconds {relation} {minimum:g}"
        )
    return float(value)  # type: ignore[arg-type]


def check_choice(owner: str, key: str, value: object, choices: Sequence[str]) -> str:
    """Return *value* if it is one of *choices*, else raise a ValueError listing them."""
    if not isinstance(value, str) or value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{owner}: {key}={value!r} is invalid; expected one of {allowed}")
    return value


def check_str(owner: str, key: str, value: object, *, what: str = "a string") -> str:
    """Return *value* if it is a string."""
    if not isinstance(value, str):
        raise ValueError(f"{owner}: {key}={value!r} is invalid; expected {what}")
    return value


def check_bool(owner: str, key: str, value: object) -> bool:
    """Return *value* if it is a bool."""
    if not isinstance(value, bool):
        raise ValueError(f"{owner}: {key}={value!r} is invalid; expected true or false")
    return value


def check_str_mapping(owner: str, key: str, value: object) -> dict[str, str]:
    """Return *value* as a dict if it maps strings to strings."""
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ValueError(
            f"{owner}: {key}={value!r} is invalid; expected a table of string keys to string values"
        )
    return dict(value)


def check_level(owner: str, value: object) -> int:
    """Return the numeric level for a level name or number."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str):
        number = logging.getLevelName(value.upper())
        if isinstance(number, int):
            return number
    raise ValueError(
        f"{owner}: level={value!r} is invalid; expected one of NOTSET, DEBUG, INFO, WARNING, "
        "ERROR, CRITICAL (any case) or a non-negative integer"
    )


def resolve_env(owner: str, key: str, value: str) -> str:
    """
    Return *value*, or the environment variable it names as ``"env:NAME"``.

    Raises:
        ValueError: the variable is not set (the message names the variable,
            never a value).
    """
    if not value.startswith("env:"):
        return value
    name = value[4:]
    if not name:
        raise ValueError(
            f"{owner}: {key}={value!r} names no environment variable; expected 'env:NAME'"
        )
    try:
        return os.environ[name]
    except KeyError:
        raise ValueError(
            f"{owner}: {key}={value!r} refers to the environment variable {name}, which is not set"
        ) from None


@dataclass(frozen=True)
class WorkerSettings:
    """
    The settings every shipping handler shares, with their defaults.

    .. versionadded:: 0.1.0
    """

    batch_max_records: int = 5000
    batch_max_bytes: int = 1_048_576
    flush_interval: float = 1.0
    max_queue_bytes: int = 33_554_432
    when_full: str = "drop_oldest"
    block_timeout: float = 1.0
    shutdown_timeout: float = 5.0
    max_retries: int = -1
    retry_backoff: float = 0.5
    retry_max_backoff: float = 30.0
    spool_dir: str = ""
    spool_max_bytes: int = 1_073_741_824
    fsync: str = "interval"
    fsync_interval: float = 1.0

    @classmethod
    def validated(cls, owner: str, **kw: Any) -> WorkerSettings:
        """
        Build settings from keyword arguments, validating each.

        Raises:
            ValueError: a value is invalid; the message names the key, the
                value and what is allowed.
        """
        s = cls(**kw)
        check_int(owner, "batch_max_records", s.batch_max_records, 1)
        check_int(owner, "batch_max_bytes", s.batch_max_bytes, 1024)
        check_float(owner, "flush_interval", s.flush_interval, 0.0, strict=True)
        check_int(owner, "max_queue_bytes", s.max_queue_bytes, 65_536)
        check_choice(owner, "when_full", s.when_full, WHEN_FULL)
        check_float(owner, "block_timeout", s.block_timeout, 0.0)
        check_float(owner, "shutdown_timeout", s.shutdown_timeout, 0.0)
        check_int(owner, "max_retries", s.max_retries, -1)
        check_float(owner, "retry_backoff", s.retry_backoff, 0.0, strict=True)
        check_float(owner, "retry_max_backoff", s.retry_max_backoff, 0.0, strict=True)
        check_str(owner, "spool_dir", s.spool_dir, what="a directory path, or '' for no spool")
        check_int(owner, "spool_max_bytes", s.spool_max_bytes, 1_048_576)
        check_choice(owner, "fsync", s.fsync, FSYNC_POLICIES)
        check_float(owner, "fsync_interval", s.fsync_interval, 0.0, strict=True)
        floats = {
            f.name: float(getattr(s, f.name)) for f in fields(cls) if f.type in ("float", float)
        }
        return cls(**{**{f.name: getattr(s, f.name) for f in fields(cls)}, **floats})

    def non_defaults(self) -> dict[str, Any]:
        """Return the settings that differ from their defaults, in declaration order."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value != f.default:
                out[f.name] = value
        return out


# --- outcomes and sinks ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    """
    What one delivery attempt came to.

    * ``ok``: every entry delivered.
    * ``retry``: nothing delivered; try again later (``retry_after`` seconds
      when the receiver said so).
    * ``split``: the batch is too large for the receiver (HTTP 413).
    * ``reject``: the receiver refused the batch for good (other 4xx).
    * ``partial``: some entries delivered, ``retry`` lists the indexes to
      send again, ``rejected`` counts those refused for good.

    .. versionadded:: 0.1.0
    """

    kind: Literal["ok", "retry", "split", "reject", "partial"]
    detail: str = ""
    retry_after: float | None = None
    retry: tuple[int, ...] = ()
    rejected: int = 0


class EntryTooLarge(Exception):
    """
    Raised by :meth:`Sink.render` for a record the destination would refuse however it is batched.

    The worker drops the record and counts it as ``too_large``.

    .. versionadded:: 0.1.0
    """


class Sink(abc.ABC):
    """
    What a shipping handler plugs into the worker: rendering and transport.

    ``render`` runs on the writer thread, ``send`` and ``close`` on the
    sender thread (``close`` also on the closing thread once the sender is
    done). Limits of the destination are class or instance attributes; the
    worker applies the smaller of them and the handler's settings.

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
    #: The formatter records are rendered with (set by the handler).
    formatter: logging.Formatter | None = None
    #: Seconds one delivery attempt may take.
    timeout: float = 10.0

    @abc.abstractmethod
    def render(self, record: logging.LogRecord) -> bytes:
        """Render one snapshot record into an entry."""

    def render_all(self, records: Iterable[logging.LogRecord]) -> list[bytes]:
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


# --- the in-memory buffer ----------------------------------------------------


class MemoryBuffer:
    """
    Rendered entries waiting for the sender, in memory.

    Not thread-safe on its own: the worker calls it with its lock held (every
    operation is a few deque operations).

    Positions count entries ever pushed; the *head* is the first entry not
    yet resolved (delivered or dropped). Memory is counted as *cost*: each
    entry's length plus :data:`ENTRY_OVERHEAD`, what holding it really takes
    (entries must be compact ``bytes``: see :func:`compact`).
    """

    __slots__ = (
        "_entries",
        "_inflight",
        "_pushed",
        "_taken",
        "bytes",
        "head",
        "oldest",
        "pending_bytes",
    )

    def __init__(self) -> None:
        self._entries: deque[bytes] = deque()
        self._pushed = 0
        self._taken = 0
        self._inflight: tuple[int, int] | None = None  # (first position, payload bytes)
        #: Cost of what is held: waiting entries plus the batch in flight.
        self.bytes = 0
        #: Payload bytes of waiting entries (what batching counts).
        self.pending_bytes = 0
        self.head = 0
        self.oldest: float | None = None

    def __len__(self) -> int:
        return len(self._entries)

    def push(self, entries: list[bytes], nbytes: int) -> int:
        """Append *entries* (*nbytes* of payload); return their cost."""
        if not entries:
            return 0
        if not self._entries:
            self.oldest = _monotonic()
        self._entries.extend(entries)
        self._pushed += len(entries)
        cost = nbytes + ENTRY_OVERHEAD * len(entries)
        self.bytes += cost
        self.pending_bytes += nbytes
        return cost

    def mark(self) -> int:
        return self._pushed

    def resolved(self, position: int) -> bool:
        return self.head >= position

    def take(self, max_records: int, max_bytes: int, overhead: int) -> Batch | None:
        entries = self._entries
        if not entries:
            return None
        out: list[bytes] = []
        cost = payload = 0
        pending = self.pending_bytes
        popleft = entries.popleft
        while entries and len(out) < max_records:
            # Move a run of entries at once, as many as the average waiting
            # entry says fit, then hand back any that overshoot the byte limit:
            # a test per entry would cost several times as much.
            left = len(entries)
            average = max(1, pending // left) + overhead
            room = max_bytes - cost
            k = min(left, max_records - len(out), max(1, room // average))
            run = [popleft() for _ in range(k)]
            # sizes[i]: payload of the first i + 1 entries of the run.
            sizes = list(itertools.accumulate(map(len, run)))
            fit = k
            if sizes[-1] + overhead * k > room:
                fit = bisect.bisect_right(
                    range(k), room, key=lambda i: sizes[i] + overhead * (i + 1)
                )
                if fit == 0 and not out:
                    fit = 1  # an entry larger than a batch travels alone
                entries.extendleft(reversed(run[fit:]))
                del run[fit:]
            if fit:
                size = sizes[fit - 1]
                out += run
                cost += size + overhead * fit
                payload += size
                pending -= size
            if fit < k:
                break
        start = self._taken
        self._taken += len(out)
        self._inflight = (start, payload)
        self.head = start
        self.pending_bytes -= payload
        self.oldest = _monotonic() if entries else None
        return Batch(out, cost, (start, payload))

    def complete(self, batch: Batch) -> int:
        """Forget the batch in flight; return the cost it held."""
        _start, payload = batch.ref
        self._inflight = None
        freed = int(payload) + ENTRY_OVERHEAD * len(batch.entries)
        self.bytes -= freed
        self.head = self._taken
        return freed

    def drop_oldest(self, need: int) -> tuple[int, int]:
        """Drop waiting entries, oldest first, until *need* bytes of cost are freed."""
        entries = self._entries
        n = freed = payload = 0
        popleft = entries.popleft
        while entries and freed < need:
            size = len(popleft())
            payload += size
            freed += size + ENTRY_OVERHEAD
            n += 1
        self._taken += n
        self.bytes -= freed
        self.pending_bytes -= payload
        if self._inflight is None:
            self.head = self._taken
        if not entries:
            self.oldest = None
        return n, freed

    def clear(self) -> tuple[int, int]:
        """Drop everything waiting; return (entries, cost)."""
        if not self._entries:
            return 0, 0
        return self.drop_oldest(self.pending_bytes + ENTRY_OVERHEAD * len(self._entries) + 1)


def compact(entries: list[bytes]) -> list[bytes]:
    """
    Return *entries* as ``bytes`` objects that hold exactly their length.

    A ``bytes`` object can hold more memory than its length: orjson, which
    the JSON formatter renders with, returns a short result inside a 4 KiB
    allocation, and a longer one inside about ten times its length. Entries
    wait in memory as long as a receiver is down and are counted by their
    length, so keeping those objects would let the process grow to ten times
    ``max_queue_bytes`` or more. A copy costs about 0.15 µs per entry, on the
    writer thread.
    """
    return [bytes(memoryview(entry)) for entry in entries]


# --- diagnostics -------------------------------------------------------------

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def _log_diagnostic(level: int, text: str, args: tuple[Any, ...]) -> None:
    """
    Hand a record to the ``structflow.shipping`` logger's handlers.

    ``Logger.isEnabledFor`` may take logging's module lock (on a cache miss,
    as after every ``dictConfig``), so the level is checked by walking the
    hierarchy, which takes no lock.
    """
    logger = _diag_logger
    if logger.disabled or logger.manager.disable >= level or level < logger.getEffectiveLevel():
        return
    record = logger.makeRecord(logger.name, level, __file__, 0, text, args, None, "shipping")
    logger.handle(record)


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
        text = f"{self.label}: {message}"
        if suppressed:
            text += f" ({suppressed} similar message(s) in the last {self.interval:g} s not shown)"
        with contextlib.suppress(Exception):
            _log_diagnostic(_LEVELS.get(level, logging.WARNING), text, args)
        return True

    def reset_after_fork(self) -> None:
        self._lock = threading.Lock()


# --- the record snapshot -----------------------------------------------------

_MUTABLE: frozenset[type] = frozenset({dict, list, set, bytearray})
_PROBE = logging.LogRecord("n", 0, "p", 0, "m", (), None)
#: How many attributes a bare stdlib record has.
_N_RECORD_ATTRS = len(_PROBE.__dict__)
_STANDARD_ATTRS = frozenset(_PROBE.__dict__) | {
    "message",
    "asctime",
    "structflow_fields",
    "taskName",
}
del _PROBE
#: What a snapshot of a bare stdlib record holds: its attributes and ``message``.
_SNAPSHOT_ATTRS = _N_RECORD_ATTRS + 1


_getters: dict[tuple[str, ...], Callable[[dict[str, Any]], tuple[Any, ...]]] = {}

#: What the intake holds: a snapshot record, or (for structflow's own record
#: class, nearly every record) only its attributes. The record object is made
#: by the writer: a container waiting in the intake is one more object for
#: the garbage collector to visit on every young-generation pass, which costs
#: the logging threads more than making the object later.
Queued = logging.LogRecord | dict[str, Any]


def _getter(names: tuple[str, ...]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """A function returning the values of *names* from a record's dict, as a tuple."""
    if len(names) == 1:
        (name,) = names

        def one(d: dict[str, Any]) -> tuple[Any, ...]:
            return (d[name],)

        getter: Callable[[dict[str, Any]], tuple[Any, ...]] = one
    else:
        getter = operator.itemgetter(*names)
    if len(_getters) < 1024:
        _getters[names] = getter
    return getter


def _copy_value(value: Any) -> Any:
    try:
        return value.copy()
    except Exception:
        return value


def format_exception(exc_info: Any) -> str:
    """Format *exc_info* as ``logging.Formatter.formatException`` does."""
    try:
        text = "".join(traceback.format_exception(*exc_info))
    except Exception:
        return "<traceback could not be formatted>"
    return text[:-1] if text.endswith("\n") else text


def estimate(record: logging.LogRecord | dict[str, Any]) -> int:
    """What a queued snapshot record (or its attributes) counts against ``max_queue_bytes``."""
    d = record if type(record) is dict else record.__dict__
    text = d.get("exc_text")
    return (
        len(d["msg"])
        + RECORD_OVERHEAD
        + RECORD_FIELD_COST * len(d)
        + (len(text) if type(text) is str else 0)
    )


def snapshot(record: logging.LogRecord) -> tuple[logging.LogRecord, int]:
    """
    Copy what a record will need once rendered later, on another thread.

    The message is computed once (and ``args`` dropped), the exception is
    formatted into ``exc_text`` (tracebacks hold frames that must not be
    kept alive, and their text would change as the frames run on), and
    mutable field values are copied so later changes by the caller do not
    leak into the shipped record. Returns the copy and its estimated size.
    """
    d, size = snapshot_state(record)
    copy = _new(record.__class__)
    copy.__dict__ = d
    return copy, size


def snapshot_state(record: logging.LogRecord) -> tuple[dict[str, Any], int]:
    """Return the attributes :func:`snapshot` gives its copy of *record*, and its estimated size."""
    d = record.__dict__.copy()
    msg = d.get("msg")
    if d.get("args") or type(msg) is not str:
        msg = safe_message(record)
    d["msg"] = d["message"] = msg
    d["args"] = ()
    if d.get("exc_info"):
        exc_info = d["exc_info"]
        if not d.get("exc_text"):
            d["exc_text"] = format_exception(exc_info)
        d["exc_info"] = _detach(exc_info)
    # As estimate() computes it; no key is added to d below.
    n = len(d)
    size = len(msg) + RECORD_OVERHEAD + RECORD_FIELD_COST * n
    text = d.get("exc_text")
    if text.__class__ is str:
        size += len(text)
    names = d.get("structflow_fields") or ()
    if names:
        getter = _getters.get(names) or _getter(names)
        for value in getter(d):
            if value.__class__ in _MUTABLE:
                for name in names:
                    field = d[name]
                    if field.__class__ in _MUTABLE:
                        d[name] = _copy_value(field)
                break
    if n > _SNAPSHOT_ATTRS + len(names) + ("structflow_fields" in d) + ("asctime" in d):
        # Attributes from stdlib's extra= are not in structflow_fields.
        for name in d.keys() - _STANDARD_ATTRS:
            value = d[name]
            if value.__class__ in _MUTABLE:
                d[name] = _copy_value(value)
    return d, size


def _as_records(items: Iterable[Queued]) -> list[logging.LogRecord]:
    """Turn queued items back into snapshot records (see :meth:`ShippingHandler.emit`)."""
    out: list[logging.LogRecord] = []
    append = out.append
    for item in items:
        if type(item) is dict:
            record = _new(_LogRecord)
            record.__dict__ = item
            append(record)
        else:
            append(item)  # type: ignore[arg-type]  # mypy narrows only the dict branch
    return out


def _detach(exc_info: Any) -> tuple[type[BaseException], BaseException, None] | None:
    """
    Return ``(type, copy of the exception, None)``: type and message, no traceback.

    A copy of the exception (made as ``copy.copy`` does, through its
    ``__reduce__``) has the same type and ``str()`` but no ``__traceback__``,
    so the frames the traceback holds are released at once. Exceptions that
    cannot be copied keep only their formatted text (``exc_text``).
    """
    if isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    if (
        not isinstance(exc_info, tuple)
        or len(exc_info) != 3
        or not isinstance(exc_info[1], BaseException)
    ):
        return None
    try:
        clone = copy.copy(exc_info[1])
    except Exception:
        return None
    if type(clone) is not type(exc_info[1]) or clone is exc_info[1]:
        return None
    clone.__traceback__ = None
    return (type(clone), clone, None)


_EXC_TEXT_PROBE = "structflow-probe-exc-text"
_uses_exc_text: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()


def _formatter_uses_exc_text(formatter: Any) -> bool:
    """Whether *formatter* renders a record's preset ``exc_text`` (stdlib's convention)."""
    try:
        return _uses_exc_text[formatter]
    except (KeyError, TypeError):
        pass
    probe = logging.LogRecord(
        "structflow.probe",
        logging.ERROR,
        __file__,
        0,
        "probe",
        (),
        (ValueError, ValueError(), None),
    )
    probe.exc_text = _EXC_TEXT_PROBE
    try:
        render = getattr(formatter, "format_bytes", None)
        out = render(probe) if render is not None else formatter.format(probe)
        answer = _EXC_TEXT_PROBE in (
            out.decode("utf-8", "replace") if isinstance(out, bytes) else str(out)
        )
    except Exception:
        answer = False
    with contextlib.suppress(TypeError):
        _uses_exc_text[formatter] = answer
    return answer


def fit_exception(formatter: Any, record: logging.LogRecord) -> None:
    """
    Let *formatter* render the full traceback of a snapshot record.

    A snapshot keeps the exception's type and message (``exc_info`` without
    a traceback) and the traceback's text (``exc_text``). A formatter that
    re-formats ``exc_info`` instead of using ``exc_text`` would show only
    the last line, so for such a formatter ``exc_info`` is cleared.
    """
    if record.exc_info and record.exc_text and not _formatter_uses_exc_text(formatter):
        record.exc_info = None


# --- markers -----------------------------------------------------------------


class _Marker:
    """A flush barrier travelling through the worker."""

    __slots__ = ("delivered", "position", "spooled")

    def __init__(self) -> None:
        self.spooled = threading.Event()
        self.delivered = threading.Event()
        self.position: Any = None


# --- the worker --------------------------------------------------------------


class Worker:
    """
    Batches, buffers and delivers the records of one shipping handler.

    Args:
        sink: renders and sends entries.
        settings: the handler's worker settings.
        label: how diagnostics name the handler (no secrets).

    .. versionadded:: 0.1.0
    """

    def __init__(self, sink: Sink, settings: WorkerSettings, label: str) -> None:
        self.sink = sink
        self.settings = settings
        self.label = label
        s = settings
        self._batch_records = min(
            s.batch_max_records, sink.max_batch_records or s.batch_max_records
        )
        self._batch_bytes = min(s.batch_max_bytes, sink.max_batch_bytes or s.batch_max_bytes)
        limits = [s.max_queue_bytes, s.spool_max_bytes // 4 if s.spool_dir else s.max_queue_bytes]
        if sink.max_entry_bytes:
            limits.append(sink.max_entry_bytes)
        self._max_entry = min(limits)
        self._max_queue = s.max_queue_bytes
        self._high_water = s.max_queue_bytes // 2
        self.diagnostics = Diagnostics(label)
        self._spool: Spool | None = None
        if s.spool_dir:
            self._spool = Spool(
                s.spool_dir,
                sink.identity,
                s.spool_max_bytes,
                s.fsync,
                s.fsync_interval,
                self.diagnostics.report,
                self._count_drop,
            )
        self._init_runtime()
        _live.add(self)
        _register_multiprocessing(self)
        self._start_threads()

    def _init_runtime(self) -> None:
        self._lock = threading.Lock()
        self._writer_cv = threading.Condition(self._lock)
        self._sender_cv = threading.Condition(self._lock)
        self._space_cv = threading.Condition(self._lock)
        self._intake: deque[Queued] = deque()
        self._intake_bytes = 0
        self._queued_bytes = 0
        self._memory: MemoryBuffer | None = MemoryBuffer() if self._spool is None else None
        self._writer_idle = False
        self._sender_idle = False
        self._markers_in: list[_Marker] = []
        self._markers_out: list[_Marker] = []
        self._accepted = 0
        self._queue_full = 0
        self._counts = {
            "delivered": 0,
            "retried": 0,
            "spooled": 0,
            "adopted": 0,
            "delivered_bytes": 0,
        }
        self._drops = dict.fromkeys(DROP_REASONS, 0)
        self._reported_queue_full = 0
        self._reported_errors = 0
        self._last_error = ""
        self._state = "running"  # running -> closing -> closed
        self._deadline: float | None = None
        self._close_marker: _Marker | None = None
        self._close_ok = True
        self._shutdown_drops_before = 0
        self._stop_writer = False
        self._writer_done = False
        self._interrupt = threading.Event()
        self._threads: list[threading.Thread] = []
        self._started = False
        self._space_waiters = 0
        self._inflight: Batch | None = None

    # --- threads ------------------------------------------------------------

    def _start_threads(self) -> None:
        with self._lock:
            self._start_threads_locked()

    def _start_threads_locked(self) -> None:
        if self._started or self._state == "closed":
            return
        self._started = True
        short = self.label.split("(", 1)[0]
        for name, target in (("writer", self._writer_main), ("sender", self._sender_main)):
            thread = threading.Thread(target=target, name=f"structflow-{short}-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    # --- intake (callers' threads) -----------------------------------------

    def put(self, record: Queued, size: int) -> None:
        """
        Queue a snapshot record; apply ``when_full`` when the queue is full.

        *record* may also be the attributes of a snapshot of a structflow
        ``LogRecord`` (see :data:`Queued`).
        """
        with self._lock:
            if self._state != "running":
                self._drops["closed"] += 1
                return
            if not self._started:
                self._start_threads_locked()
            if self._queued_bytes + size > self._max_queue and not self._make_room(size):
                if self._writer_idle:
                    self._writer_idle = False
                    self._writer_cv.notify()
                return
            self._intake.append(record)
            self._intake_bytes += size
            queued = self._queued_bytes = self._queued_bytes + size
            self._accepted += 1
            if self._writer_idle:
                self._writer_idle = False
                self._writer_cv.notify()
        if queued > self._high_water and _get_ident() not in _worker_threads:
            # Many threads logging at once can keep the writer from the GIL
            # until the queue overflows. Past the high-water mark each call
            # yields the interpreter once (no waiting on I/O or locks), which
            # lets the writer drain instead of records being dropped.
            _yield()

    def _make_room(self, size: int) -> bool:
        """Apply ``when_full`` (lock held); return whether the record may be queued."""
        limit = self.settings.max_queue_bytes
        if size > limit:
            self._drops["too_large"] += 1
            return False
        policy = self.settings.when_full
        if policy == "drop_oldest":
            need = self._queued_bytes + size - limit
            dropped = 0
            if self._memory is not None:
                n, freed = self._memory.drop_oldest(need)
                dropped += n
                need -= freed
                self._queued_bytes -= freed
            intake = self._intake
            while need > 0 and intake:
                old = estimate(intake.popleft())
                need -= old
                self._queued_bytes -= old
                self._intake_bytes -= old
                dropped += 1
            if need > 0:
                # What is left is in the writer's or sender's hands.
                self._queue_full += dropped + 1
                return False
            self._queue_full += dropped
            return True
        if policy == "block" and _get_ident() not in _worker_threads:
            deadline = _monotonic() + self.settings.block_timeout
            self._space_waiters += 1
            try:
                while self._queued_bytes + size > limit:
                    remaining = deadline - _monotonic()
                    if remaining <= 0 or self._state != "running":
                        break
                    self._space_cv.wait(remaining)
                else:
                    return True
            finally:
                self._space_waiters -= 1
        self._queue_full += 1
        return False

    def _count_drop(self, reason: str, n: int) -> None:
        with self._lock:
            self._drops[reason] += n

    # --- the writer thread --------------------------------------------------

    def _writer_main(self) -> None:
        _worker_threads.add(_get_ident())
        spool = self._spool
        next_adopt = 0.0
        try:
            while True:
                if spool is not None and _monotonic() >= next_adopt:
                    self._adopt(spool)
                    next_adopt = _monotonic() + ADOPT_INTERVAL
                with self._lock:
                    if not self._intake and not self._markers_in and not self._stop_writer:
                        self._writer_idle = True
                        self._writer_cv.wait(None if spool is None else _WRITER_TICK)
                        self._writer_idle = False
                        linger = not self._markers_in and not self._stop_writer
                    else:
                        linger = False
                if linger:
                    _sleep(_WRITER_LINGER)
                with self._lock:
                    # Take the whole intake and every pending marker, or nothing:
                    # never keep a reference to a container other threads append
                    # to (a marker appended to it later would be positioned before
                    # records still waiting in the intake).
                    items: deque[Queued] = _NO_ITEMS
                    estimated = 0
                    if self._intake:
                        items, self._intake = self._intake, deque()
                        estimated, self._intake_bytes = self._intake_bytes, 0
                    markers: list[_Marker] = []
                    if self._markers_in:
                        markers, self._markers_in = self._markers_in, []
                    stop = self._stop_writer
                try:
                    self._write(items, estimated, markers)
                except Exception as exc:  # never let the thread die
                    self.diagnostics.report("internal", "error", "writer failed: %r", exc)
                    with self._lock:
                        self._drops["error"] += len(items)
                        self._queued_bytes -= estimated
                        self._markers_in[:0] = markers
                    time.sleep(0.05)
                    continue
                if spool is not None and not items:
                    spool.sync()
                self._report_caller_drops()
                if stop and not items and not markers:
                    with self._lock:
                        if not self._intake and not self._markers_in:
                            break
        finally:
            with self._lock:
                self._writer_done = True
                self._sender_cv.notify_all()
            _worker_threads.discard(_get_ident())

    def _adopt(self, spool: Spool) -> None:
        try:
            if spool.adopt():
                with self._lock:
                    self._sender_cv.notify_all()
        except Exception as exc:
            self.diagnostics.report("spool_io", "error", "cannot adopt spooled records: %r", exc)

    def _write(self, items: deque[Queued], estimated: int, markers: list[_Marker]) -> None:
        entries: list[bytes] = []
        payload = too_large = failed = 0
        if items:
            in_memory = self._memory is not None
            for part in _slices(items, _RENDER_SLICE):
                rendered, nbytes, large, bad = self._render(part)
                if in_memory:
                    # At once, so that at most one slice of oversized
                    # objects is alive (see compact()).
                    rendered = compact(rendered)
                entries += rendered
                payload += nbytes
                too_large += large
                failed += bad
            if failed:
                self.diagnostics.report(
                    "encode_error",
                    "error",
                    "could not render %d record(s) (%s); dropped",
                    failed,
                    self._last_error,
                )
            if too_large:
                self.diagnostics.report(
                    "too_large",
                    "warning",
                    "dropped %d record(s) too large for the destination once rendered "
                    "(limit %d bytes; %s); lower max_message_bytes to truncate messages instead",
                    too_large,
                    self._max_entry,
                    self._last_error or "see batch_max_bytes and max_queue_bytes",
                )
        spool = self._spool
        if spool is not None:
            written = spool.push(entries) if entries else 0
            position = None
            if markers:
                spool.sync(force=True)
                position = spool.mark()
            with self._lock:
                self._queued_bytes -= estimated
                self._counts["spooled"] += written
                self._drops["encode_error"] += failed
                self._drops["too_large"] += too_large
                for marker in markers:
                    marker.position = position
                    marker.spooled.set()
                    self._markers_out.append(marker)
                self._wake_sender_locked(bool(entries) or bool(markers))
                if self._space_waiters:
                    self._space_cv.notify_all()
            return
        memory = self._memory
        assert memory is not None
        with self._lock:
            self._queued_bytes += memory.push(entries, payload) - estimated
            excess = self._queued_bytes - self.settings.max_queue_bytes
            if excess > 0 and self.settings.when_full == "drop_oldest":
                # Rendered entries can take more than their records were
                # estimated at (large field values): keep the bound now
                # rather than at the next log call.
                n, freed = memory.drop_oldest(excess)
                self._queued_bytes -= freed
                self._queue_full += n
            self._drops["encode_error"] += failed
            self._drops["too_large"] += too_large
            if markers:
                mark = memory.mark()
                for marker in markers:
                    marker.position = mark
                    marker.spooled.set()
                    self._markers_out.append(marker)
            self._wake_sender_locked(bool(entries) or bool(markers))
            if self._space_waiters and payload + ENTRY_OVERHEAD * len(entries) < estimated:
                self._space_cv.notify_all()

    def _render(self, records: Sequence[logging.LogRecord]) -> tuple[list[bytes], int, int, int]:
        """Render *records*; return (entries, payload bytes, too large, failed)."""
        try:
            # Fast path: the whole slice in one go.
            entries = self.sink.render_all(records)
            sizes = list(map(len, entries))
            if sizes and max(sizes) > self._max_entry:
                raise EntryTooLarge
            return entries, sum(sizes), 0, 0
        except Exception:
            return self._render_one_by_one(records)

    def _render_one_by_one(
        self, items: Sequence[logging.LogRecord]
    ) -> tuple[list[bytes], int, int, int]:
        """Render records one at a time, setting aside those that fail or are too large."""
        entries: list[bytes] = []
        payload = too_large = failed = 0
        render = self.sink.render
        max_entry = self._max_entry
        for record in items:
            try:
                entry = render(record)
            except EntryTooLarge as exc:
                too_large += 1
                self._last_error = str(exc)
                continue
            except Exception as exc:
                failed += 1
                self._last_error = f"{type(exc).__name__}: {exc}"
                continue
            if len(entry) > max_entry:
                too_large += 1
                self._last_error = f"an entry of {len(entry)} bytes"
                continue
            entries.append(entry)
            payload += len(entry)
        return entries, payload, too_large, failed

    def _wake_sender_locked(self, changed: bool) -> None:
        if not changed:
            return
        if self._sender_idle or self._markers_out:
            self._sender_cv.notify()
            return
        memory = self._memory
        if memory is not None:
            if len(memory) >= self._batch_records or memory.pending_bytes >= self._batch_bytes:
                self._sender_cv.notify()
        else:
            spool = self._spool
            assert spool is not None
            if spool.pending >= self._batch_records or spool.pending_bytes >= self._batch_bytes:
                self._sender_cv.notify()

    def _report_caller_drops(self) -> None:
        queue_full = self._queue_full - self._reported_queue_full
        if queue_full > 0 and self.diagnostics.report(
            "queue_full",
            "warning",
            "dropped %d record(s): the queue reached max_queue_bytes=%d (when_full=%r)",
            queue_full,
            self.settings.max_queue_bytes,
            self.settings.when_full,
        ):
            self._reported_queue_full += queue_full
        errors = self._drops["error"] - self._reported_errors
        if errors > 0 and self.diagnostics.report(
            "emit_error",
            "error",
            "dropped %d record(s) that could not be queued (%s)",
            errors,
            self._last_error,
        ):
            self._reported_errors += errors

    # --- the sender thread --------------------------------------------------

    def _sender_main(self) -> None:
        _worker_threads.add(_get_ident())
        try:
            while True:
                batch: Batch | None = None
                try:
                    batch = self._next_batch()
                    if batch is None:
                        return
                    left = self._deliver(batch.entries)
                    self._finish(batch, left)
                except Exception as exc:  # never let the thread die
                    self.diagnostics.report("internal", "error", "sender failed: %r", exc)
                    if batch is not None and self._inflight is batch:
                        self._give_up(batch)
                    time.sleep(0.05)
        finally:
            with self._lock:
                self._resolve_markers_locked()
                stopped = self._state != "running"
            if stopped:
                # close() did not wait for this thread: release its connection now.
                with contextlib.suppress(Exception):
                    self.sink.close()
            _worker_threads.discard(_get_ident())

    def _give_up(self, batch: Batch) -> None:
        """Account for a batch an unexpected error interrupted (never lose it silently)."""
        try:
            if self._spool is not None:
                self._spool.release(batch)  # stays on disk; taken again next time
                with self._lock:
                    self._inflight = None
                return
            memory = self._memory
            assert memory is not None
            with self._lock:
                self._inflight = None
                self._queued_bytes -= memory.complete(batch)
                self._drops["error"] += len(batch.entries)
                self._resolve_markers_locked()
        except Exception as exc:
            self.diagnostics.report("internal", "error", "could not account for a batch: %r", exc)

    def _pending_locked(self) -> tuple[int, int, float | None, bool]:
        """Return (records, bytes, oldest, urgent) waiting for the sender."""
        memory = self._memory
        if memory is not None:
            return len(memory), memory.pending_bytes, memory.oldest, False
        spool = self._spool
        assert spool is not None
        return spool.pending, spool.pending_bytes, spool.oldest, spool.adopted_pending

    def _next_batch(self) -> Batch | None:
        while True:
            with self._lock:
                while True:
                    self._resolve_markers_locked()
                    records, nbytes, oldest, urgent = self._pending_locked()
                    closing = self._state != "running"
                    if closing and self._past_deadline():
                        return None
                    if records or urgent:
                        if (
                            urgent
                            or closing
                            or self._markers_out
                            or records >= self._batch_records
                            or nbytes >= self._batch_bytes
                            or oldest is None
                        ):
                            break
                        wait: float | None = self.settings.flush_interval - (_monotonic() - oldest)
                        if wait is not None and wait <= 0:
                            break
                    else:
                        if closing and self._writer_done:
                            return None
                        wait = None
                    self._sender_idle = wait is None
                    self._sender_cv.wait(wait if wait is None else max(wait, 0.001))
                    self._sender_idle = False
                memory = self._memory
                if memory is not None:
                    batch = memory.take(
                        self._batch_records, self._batch_bytes, self.sink.entry_overhead
                    )
                    if batch is not None:
                        self._inflight = batch
                        return batch
                    continue
            spool = self._spool
            assert spool is not None
            before = spool.adopted_pending
            batch = spool.take(self._batch_records, self._batch_bytes, self.sink.entry_overhead)
            if batch is not None:
                seg = batch.ref[0]
                if seg.adopted:
                    with self._lock:
                        self._counts["adopted"] += len(batch.entries)
                self._inflight = batch
                return batch
            if not before:
                # Nothing readable right now (caught up, or a corrupt tail was
                # skipped): wait for the writer instead of spinning.
                with self._lock:
                    self._resolve_markers_locked()
                    if self._state != "running" and self._writer_done and not spool.has_pending():
                        return None
                    self._sender_idle = True
                    self._sender_cv.wait(0.05 if spool.has_pending() else 0.5)
                    self._sender_idle = False

    def _past_deadline(self) -> bool:
        deadline = self._deadline
        return deadline is not None and _monotonic() >= deadline

    def _resolve_markers_locked(self) -> None:
        markers = self._markers_out
        if not markers:
            return
        buffer: Any = self._memory if self._memory is not None else self._spool
        done = 0
        for marker in markers:
            if not buffer.resolved(marker.position):
                break
            marker.delivered.set()
            done += 1
        if done:
            del markers[:done]

    def _deliver(self, entries: list[bytes]) -> int:
        """
        Deliver *entries*, retrying as needed.

        Returns:
            How many entries are left undelivered because shutdown's deadline
            passed (0 when every entry was delivered or given up).
        """
        parts: deque[list[bytes]] = deque([entries])
        attempt = 0
        s = self.settings
        while parts:
            part = parts[0]
            timeout = self.sink_timeout()
            if timeout <= 0:
                return sum(len(p) for p in parts)
            try:
                outcome = self.sink.send(part, timeout)
            except Exception as exc:
                outcome = Outcome("retry", f"{type(exc).__name__}: {exc}")
                release_exception(exc)
            kind = outcome.kind
            if kind == "ok":
                parts.popleft()
                attempt = 0
                self._delivered(len(part), sum(map(len, part)))
                continue
            if kind == "split":
                parts.popleft()
                if len(part) == 1:
                    self._count_drop("too_large", 1)
                    self.diagnostics.report(
                        "too_large",
                        "warning",
                        "the receiver refused one record of %d bytes as too large (%s); dropped",
                        len(part[0]),
                        outcome.detail,
                    )
                else:
                    mid = len(part) // 2
                    parts.appendleft(part[mid:])
                    parts.appendleft(part[:mid])
                    self.diagnostics.report(
                        "split",
                        "info",
                        "the receiver refused a batch of %d records as too large (%s); "
                        "sending it in halves",
                        len(part),
                        outcome.detail,
                    )
                continue
            if kind == "reject":
                parts.popleft()
                attempt = 0
                self._count_drop("rejected", len(part))
                self.diagnostics.report(
                    "rejected",
                    "error",
                    "the receiver rejected %d record(s) (%s); dropped",
                    len(part),
                    outcome.detail,
                )
                continue
            if kind == "partial":
                retry = [part[i] for i in outcome.retry if 0 <= i < len(part)]
                done = len(part) - len(retry) - outcome.rejected
                if done > 0:
                    self._delivered(done, 0)
                if outcome.rejected:
                    self._count_drop("rejected", outcome.rejected)
                    self.diagnostics.report(
                        "rejected",
                        "error",
                        "the receiver rejected %d record(s) (%s); dropped",
                        outcome.rejected,
                        outcome.detail,
                    )
                if not retry:
                    parts.popleft()
                    attempt = 0
                    continue
                parts[0] = part = retry
            # retry
            attempt += 1
            if 0 <= s.max_retries < attempt:
                parts.popleft()
                attempt = 0
                self._count_drop("retries_exhausted", len(part))
                self.diagnostics.report(
                    "retries_exhausted",
                    "error",
                    "gave up on %d record(s) after %d retries (%s); dropped",
                    len(part),
                    s.max_retries,
                    outcome.detail,
                )
                continue
            delay = self._backoff(attempt, outcome.retry_after)
            with self._lock:
                self._counts["retried"] += len(part)
            self.diagnostics.report(
                "retry",
                "warning",
                "delivery of %d record(s) failed (%s); retrying in %.2f s",
                len(part),
                outcome.detail,
                delay,
            )
            if not self._sleep(delay):
                return sum(len(p) for p in parts)
        return 0

    def sink_timeout(self) -> float:
        """Seconds one attempt may take: the sink's timeout, cut at shutdown's deadline."""
        timeout = self.sink.timeout
        deadline = self._deadline
        if deadline is not None and self._state != "running":
            timeout = min(timeout, deadline - _monotonic())
        return timeout

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        s = self.settings
        base = min(s.retry_max_backoff, s.retry_backoff * float(2 ** min(attempt - 1, 30)))
        # "Equal jitter": at least half the step, so a crowd of clients
        # restarted together spreads out without retrying at once.
        delay = base / 2 + random.uniform(0, base / 2)
        if retry_after is not None:
            delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
        return delay

    def _sleep(self, delay: float) -> bool:
        """Wait before a retry; return False when shutdown's deadline cuts the wait."""
        deadline = self._deadline
        if deadline is not None and self._state != "running":
            remaining = deadline - _monotonic()
            if remaining <= 0:
                return False
            if delay >= remaining:
                self._interrupt.wait(remaining)
                return False
        end = _monotonic() + delay
        while True:
            left = end - _monotonic()
            if left <= 0:
                return True
            self._interrupt.wait(left)
            deadline = self._deadline
            if deadline is not None and self._state != "running" and end > deadline:
                self._interrupt.wait(max(0.0, deadline - _monotonic()))
                return False
            if self._interrupt.is_set():
                self._interrupt.clear()

    def _delivered(self, n: int, nbytes: int) -> None:
        with self._lock:
            if self._state == "closed":
                return
            self._counts["delivered"] += n
            self._counts["delivered_bytes"] += nbytes

    def _finish(self, batch: Batch, left: int) -> None:
        spool = self._spool
        if spool is not None:
            if left:
                spool.release(batch)
            else:
                spool.complete(batch)
            with self._lock:
                self._inflight = None
                self._resolve_markers_locked()
            return
        memory = self._memory
        assert memory is not None
        with self._lock:
            self._inflight = None
            if self._state == "closed":
                return
            freed = memory.complete(batch)
            self._queued_bytes -= freed
            if left:
                self._drops["shutdown"] += left
            self._resolve_markers_locked()
            if self._space_waiters:
                self._space_cv.notify_all()

    # --- flush, close, stats -----------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """
        Wait until every record accepted before the call is delivered.

        Returns:
            True once they are all delivered (or given up and counted in
            ``stats()["dropped"]``); False when *timeout* passed first, or
            when called from a worker thread.
        """
        if _get_ident() in _worker_threads:
            return False
        marker = self.request_flush()
        if marker is None:
            return self._close_ok
        if not marker.delivered.wait(timeout):
            return marker.delivered.is_set()
        return True

    def request_flush(self) -> _Marker | None:
        """Start a flush without waiting for it; return its marker."""
        with self._lock:
            if self._state == "closed":
                return None
            if not self._started:
                self._start_threads_locked()
            marker = _Marker()
            self._markers_in.append(marker)
            if self._writer_idle:
                self._writer_idle = False
                self._writer_cv.notify()
            return marker

    def begin_close(self, deadline: float) -> None:
        """Stop accepting records and start the final flush, due by *deadline*."""
        with self._lock:
            if self._state != "running":
                return
            if not self._started:
                # Never used in this process (a forked child that did not log):
                # nothing to deliver, no thread to stop.
                self._state = "closed"
                _live.discard(self)
                return
            marker = _Marker()
            self._markers_in.append(marker)
            self._close_marker = marker
            self._shutdown_drops_before = self._drops["shutdown"]
            self._state = "closing"
            self._deadline = deadline
            self._writer_cv.notify_all()
            self._sender_cv.notify_all()
            self._space_cv.notify_all()
            if not self._started:
                self._start_threads_locked()

    def finish_close(self) -> bool:
        """
        Wait for the final flush (until the deadline), then stop the threads.

        Returns:
            Whether every record was delivered. Otherwise, with a spool the
            rest stays on disk for the next process; without one it is
            counted as dropped (``shutdown``) and reported.
        """
        marker = self._close_marker
        deadline = self._deadline
        if marker is None or deadline is None or self._state == "closed":
            if self._state == "closed" and self._spool is not None and not self._started:
                self._spool.close()
            return self._close_ok
        ok = marker.delivered.wait(max(0.0, deadline - _monotonic()))
        with self._lock:
            self._stop_writer = True
            if not ok:
                self._deadline = min(deadline, _monotonic())
            self._writer_cv.notify_all()
            self._sender_cv.notify_all()
        self._interrupt.set()
        # Past the deadline the writer still gets a moment to spool what it
        # holds, and the sender to return from its attempt (cut to the deadline).
        for thread, grace in zip(self._threads, (0.25, 0.1), strict=False):
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - _monotonic()) + grace)
        sender_alive = any(t.is_alive() for t in self._threads[1:])
        with self._lock:
            lost = 0
            if self._memory is not None:
                n, freed = self._memory.clear()
                lost += n
                self._queued_bytes -= freed
                if sender_alive and self._inflight is not None:
                    lost += len(self._inflight.entries)
            lost += len(self._intake)
            self._intake.clear()
            self._intake_bytes = 0
            self._drops["shutdown"] += lost
            # With what the sender gave back itself while stopping.
            lost = self._drops["shutdown"] - self._shutdown_drops_before
            self._state = "closed"
            for waiting in self._markers_in + self._markers_out:
                waiting.spooled.set()
            self._space_cv.notify_all()
        left = 0
        if self._spool is not None:
            try:
                self._spool.sync(force=True)
                left = self._spool.undelivered() if not ok else 0
                self._spool.close()
            except Exception as exc:
                self.diagnostics.report("spool_io", "error", "cannot close the spool: %r", exc)
        if not sender_alive:
            with contextlib.suppress(Exception):
                self.sink.close()
        if lost:
            self.diagnostics.report(
                "shutdown",
                "warning",
                "%d record(s) not delivered within shutdown_timeout=%gs; dropped "
                "(set spool_dir to keep them)",
                lost,
                self.settings.shutdown_timeout,
            )
        if left:
            self.diagnostics.report(
                "shutdown_spool",
                "warning",
                "%d record(s) not delivered within shutdown_timeout=%gs stay in spool_dir %s "
                "for the next process",
                left,
                self.settings.shutdown_timeout,
                self.settings.spool_dir,
            )
        _live.discard(self)
        self._close_ok = ok
        return ok

    def close(self, timeout: float | None = None) -> bool:
        """Flush with a deadline of *timeout* (default ``shutdown_timeout``) and stop."""
        if timeout is None:
            timeout = self.settings.shutdown_timeout
        self.begin_close(_monotonic() + timeout)
        return self.finish_close()

    @property
    def closed(self) -> bool:
        return self._state == "closed"

    def stats(self) -> dict[str, Any]:
        """Return the worker's counters (see :meth:`ShippingHandler.stats`)."""
        with self._lock:
            dropped = dict(self._drops)
            dropped["queue_full"] += self._queue_full
            return {
                "accepted": self._accepted,
                "delivered": self._counts["delivered"],
                "retried": self._counts["retried"],
                "spooled": self._counts["spooled"],
                "adopted": self._counts["adopted"],
                "dropped": dropped,
                "queued_bytes": self._queued_bytes,
                "delivered_bytes": self._counts["delivered_bytes"],
            }

    def count_error(self, exc: BaseException) -> None:
        """Count a record that could not even be queued (emit failed)."""
        with self._lock:
            self._drops["error"] += 1
            self._last_error = f"{type(exc).__name__}: {exc}"

    # --- fork ---------------------------------------------------------------

    def _after_fork_in_child(self) -> None:
        closed = self._state == "closed"
        with contextlib.suppress(Exception):
            self.sink.after_fork_in_child()
        if self._spool is not None:
            self._spool.after_fork_in_child()
        self.diagnostics.reset_after_fork()
        self._init_runtime()
        if closed:
            self._state = "closed"


# --- process-wide hooks ------------------------------------------------------


def _after_fork_in_child() -> None:
    _worker_threads.clear()
    for worker in list(_live):
        worker._after_fork_in_child()


os.register_at_fork(after_in_child=_after_fork_in_child)


def close_all() -> None:
    """
    Close every live worker, all against one deadline each.

    Runs at interpreter exit (before ``logging.shutdown``, which was
    registered earlier) and at the end of a multiprocessing child.
    """
    workers = list(_live)
    start = _monotonic()
    for worker in workers:
        worker.begin_close(start + worker.settings.shutdown_timeout)
    for worker in workers:
        with contextlib.suppress(Exception):
            worker.finish_close()


atexit.register(close_all)

_mp_hooked_pid: int | None = None


def _register_multiprocessing(worker: Worker) -> None:
    """
    Close workers at the end of a forked multiprocessing child too.

    Such children leave with ``os._exit`` (no atexit), after running
    multiprocessing's finalizers; the finalizer registry is cleared when the
    child starts, so the finalizer is registered from an after-fork hook.
    """
    try:
        from multiprocessing import util
    except Exception:  # a stripped-down interpreter
        return
    util.register_after_fork(worker, _hook_multiprocessing_child)


def _hook_multiprocessing_child(_worker: Worker) -> None:
    global _mp_hooked_pid
    if _mp_hooked_pid == os.getpid():
        return
    _mp_hooked_pid = os.getpid()
    from multiprocessing import util

    util.Finalize(None, close_all, exitpriority=0)


def _holding_logging_lock() -> bool:
    """Whether this thread holds logging's module lock (as inside ``dictConfig``)."""
    lock = getattr(logging, "_lock", None)
    is_owned = getattr(lock, "_is_owned", None)
    if is_owned is None:
        return False
    try:
        return bool(is_owned())
    except Exception:
        return False


def _called_by_logging_shutdown() -> bool:
    code = logging.shutdown.__code__
    frame = sys._getframe(2)
    for _ in range(3):
        if frame is None:
            return False
        if frame.f_code is code:
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


# --- the handler base --------------------------------------------------------


class ShippingHandler(logging.Handler):
    """
    Base of the shipping handlers: the stdlib side of a :class:`Worker`.

    ``emit`` only snapshots the record and queues it: it never does network
    or disk I/O on the caller's thread and never raises. Records made on a
    worker thread and records of the ``structflow.shipping`` logger are
    never shipped (no feedback loops).

    .. versionadded:: 0.1.0
    """

    #: Keyword arguments specific to the subclass, with their defaults, in
    #: the order ``repr`` shows them.
    OWN_DEFAULTS: ClassVar[dict[str, Any]] = {}

    def __init__(self, sink: Sink, settings: WorkerSettings, level: int, label: str) -> None:
        super().__init__(level)
        self._sink = sink
        self._settings = settings
        sink.formatter = None
        self._worker = Worker(sink, settings, label)

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
            state, size = snapshot_state(record)
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
        """Render records with *fmt* (see the subclass for what it must provide)."""
        self._check_formatter(fmt)
        super().setFormatter(fmt)
        self._sink.formatter = fmt

    def _check_formatter(self, fmt: logging.Formatter | None) -> None:
        """Raise TypeError when the subclass cannot render with *fmt*."""

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
        if _holding_logging_lock():
            # Inside dictConfig (which closes and flushes every handler while
            # holding logging's lock): waiting could deadlock with a worker
            # thread that needs that lock, so only start the flush.
            self._worker.request_flush()
            return False
        if timeout is None and _called_by_logging_shutdown():
            timeout = self._settings.shutdown_timeout
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
        if _holding_logging_lock():
            self._worker.request_flush()
            return
        try:
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

    def _repr_items(self) -> Iterator[str]:
        yield from ()

    def __repr__(self) -> str:
        parts = list(self._repr_items())
        parts.extend(f"{k}={v!r}" for k, v in self._settings.non_defaults().items())
        if self.level:
            parts.append(f"level={logging.getLevelName(self.level)!r}")
        return f"{type(self).__name__}({', '.join(parts)})"
