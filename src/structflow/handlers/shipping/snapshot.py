"""
The record snapshot: what a record keeps between the caller's thread and the writer's.

``emit`` copies what rendering will need later, on another thread: the
message is computed once (arguments dropped), the exception is formatted
into ``exc_text`` (tracebacks hold frames that must not be kept alive), and
mutable field values are copied, so later changes by the caller do not leak
into the shipped record. The snapshot's estimated size counts against
``max_queue_bytes`` until it is rendered.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import logging
import operator
import traceback
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from structflow._records import N_RECORD_ATTRS, RESERVED, safe_message
from structflow._records import LogRecord as _LogRecord

__all__ = [
    "RECORD_FIELD_COST",
    "RECORD_OVERHEAD",
    "Queued",
    "estimate",
    "fit_exceptions",
    "format_exception",
    "record_slices",
    "snapshot",
    "snapshot_state",
]

#: What a snapshot record costs in memory besides its message and traceback
#: text: the record object, its attribute dict (``RECORD_FIELD_COST`` per
#: attribute, the dict's slots and table) and the intake's reference to it.
RECORD_OVERHEAD = 128
RECORD_FIELD_COST = 48

_new = object.__new__
_MUTABLE: frozenset[type] = frozenset({dict, list, set, bytearray})
#: What a snapshot of a bare stdlib record holds: its attributes and ``message``.
_SNAPSHOT_ATTRS = N_RECORD_ATTRS + 1


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

    Returns the copy and its estimated size (see :func:`snapshot_state`).
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
        for name in d.keys() - RESERVED:
            value = d[name]
            if value.__class__ in _MUTABLE:
                d[name] = _copy_value(value)
    return d, size


def _as_records(items: Iterable[Queued]) -> list[logging.LogRecord]:
    """Turn queued items back into snapshot records (see :data:`Queued`)."""
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


def record_slices(items: Iterable[Queued], size: int) -> Iterator[list[logging.LogRecord]]:
    """Yield queued *items* as snapshot records, in lists of at most *size*."""
    it = iter(items)
    while part := _as_records(itertools.islice(it, size)):
        yield part


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


def fit_exceptions(formatter: Any, records: Sequence[logging.LogRecord]) -> None:
    """
    Let *formatter* render the full traceback of snapshot records.

    A snapshot keeps the exception's type and message (``exc_info`` without
    a traceback) and the traceback's text (``exc_text``). A formatter that
    re-formats ``exc_info`` instead of using ``exc_text`` would show only
    the last line, so for such a formatter ``exc_info`` is cleared.
    """
    for record in records:
        if record.exc_info and record.exc_text and not _formatter_uses_exc_text(formatter):
            record.exc_info = None
