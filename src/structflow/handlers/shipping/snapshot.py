"""
The record snapshot: what a record keeps between the caller's thread and the writer's.

``emit`` copies what rendering will need later, on another thread: the
message is computed once (arguments dropped), the exception is formatted
into ``exc_text`` (tracebacks hold frames that must not be kept alive), and
field values are *frozen* (:func:`freeze`): containers are copied all the
way down and other mutable objects are rendered to text, so what ships is
the value at the call, and no later change by the caller (from any thread)
can reach the record while it waits to be rendered. The snapshot's
estimated size counts against ``max_queue_bytes`` until it is rendered.

Freezing costs nothing for the usual fields (strings, numbers, booleans,
``None``): they are immutable and kept. Deep-copying the containers that do
occur costs less than rendering the whole record on the caller's thread,
the other way to the same guarantee (measured in ``docs/reliability.md``).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import datetime
import decimal
import enum
import fractions
import itertools
import logging
import operator
import pathlib
import traceback
import uuid
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from structflow._records import N_RECORD_ATTRS, RESERVED, safe_message
from structflow._records import LogRecord as _LogRecord
from structflow._values import MAX_DEPTH, safe_repr

__all__ = [
    "RECORD_FIELD_COST",
    "RECORD_OVERHEAD",
    "Queued",
    "estimate",
    "fit_exceptions",
    "format_exception",
    "freeze",
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
#: Field values of these exact types are kept as they are, without a call.
_PLAIN: frozenset[type] = frozenset({str, int, float, bool, type(None)})
#: Values of these exact types cannot change: kept as they are.
_IMMUTABLE: frozenset[type] = _PLAIN | {
    bytes,
    complex,
    decimal.Decimal,
    fractions.Fraction,
    datetime.datetime,
    datetime.date,
    datetime.time,
    datetime.timedelta,
    datetime.timezone,
    uuid.UUID,
    range,
}
_KEPT_KINDS = (enum.Enum, pathlib.PurePath)
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


def freeze(value: Any, text: Callable[[Any], str] = safe_repr) -> Any:
    """
    Return *value* as it is now, sharing nothing mutable with the caller.

    * immutable values (strings, numbers, ``None``, bytes, dates and times,
      ``Decimal``, ``UUID``, enum members, paths) are kept;
    * dicts (and their subclasses), lists, tuples, sets, deques and
      bytearrays are copied, and their contents frozen, all the way down (a
      container holding itself is copied holding its copy); so are
      dataclass instances (a copy with frozen fields) and numpy arrays;
    * other mappings become dicts, as the renderers show them;
    * any other object becomes ``text(value)``: its ``repr`` for the JSON
      renderer (which is how it would render it), its ``str`` for text
      formats. An object that cannot be copied becomes its text too.

    Copies are made by each container's own C ``copy`` (one step, which no
    other thread can interleave with), then walked: a dict another thread
    keeps changing is frozen as it was at one instant of the call.

    Never raises.
    """
    if value.__class__ in _IMMUTABLE:
        return value
    try:
        return _freeze(value, text, 0, {})
    except Exception:
        return text(value)


_Text = Callable[[Any], str]
_Memo = dict[int, Any]


def _freeze(value: Any, text: _Text, depth: int, memo: _Memo) -> Any:
    cls = value.__class__
    if cls in _IMMUTABLE:
        return value
    if depth >= MAX_DEPTH:
        return f"<{cls.__name__} nested deeper than {MAX_DEPTH} levels>"
    seen = memo.get(id(value))
    if seen is not None:
        return seen
    freezer = _FREEZERS.get(cls) or _freezer_for(value)
    return freezer(value, text, depth + 1, memo)


def _freeze_dict(value: dict[Any, Any], text: _Text, depth: int, memo: _Memo) -> Any:
    out = value.copy()
    memo[id(value)] = out
    for key, item in out.items():
        if item.__class__ not in _PLAIN:
            out[key] = _freeze(item, text, depth, memo)  # the same keys: no resize
    return out


def _freeze_list(value: list[Any] | deque[Any], text: _Text, depth: int, memo: _Memo) -> Any:
    out = value.copy()
    memo[id(value)] = out
    for i, item in enumerate(out):
        if item.__class__ not in _PLAIN:
            out[i] = _freeze(item, text, depth, memo)
    return out


def _freeze_tuple(value: tuple[Any, ...], text: _Text, depth: int, memo: _Memo) -> Any:
    items = [
        item if item.__class__ in _PLAIN else _freeze(item, text, depth, memo) for item in value
    ]
    if all(a is b for a, b in zip(items, value, strict=True)):
        return value
    make = getattr(value.__class__, "_make", None)  # a named tuple
    return make(items) if make is not None else tuple(items)


def _freeze_set(value: set[Any] | frozenset[Any], text: _Text, depth: int, memo: _Memo) -> Any:
    # Members are hashable, so immutable in practice: a shallow copy.
    return value if isinstance(value, frozenset) else value.copy()


def _freeze_bytearray(value: bytearray, text: _Text, depth: int, memo: _Memo) -> Any:
    return bytearray(value)


def _freeze_dataclass(value: Any, text: _Text, depth: int, memo: _Memo) -> Any:
    out = copy.copy(value)
    memo[id(value)] = out
    for field in dataclasses.fields(value):
        item = getattr(out, field.name)
        if item.__class__ not in _PLAIN:
            object.__setattr__(out, field.name, _freeze(item, text, depth, memo))
    return out


def _freeze_mapping(value: Mapping[Any, Any], text: _Text, depth: int, memo: _Memo) -> Any:
    return _freeze_dict(dict(value.items()), text, depth, memo)


def _freeze_array(value: Any, text: _Text, depth: int, memo: _Memo) -> Any:
    return value.copy()  # numpy: rendered as data by the JSON renderer


def _freeze_kept(value: Any, text: _Text, depth: int, memo: _Memo) -> Any:
    return value


def _freeze_text(value: Any, text: _Text, depth: int, memo: _Memo) -> Any:
    return text(value)


_Freezer = Callable[[Any, _Text, int, _Memo], Any]
_FREEZERS: dict[type, _Freezer] = {
    dict: _freeze_dict,
    list: _freeze_list,
    tuple: _freeze_tuple,
    set: _freeze_set,
    frozenset: _freeze_set,
    deque: _freeze_list,
    bytearray: _freeze_bytearray,
}


def _freezer_for(value: Any) -> _Freezer:
    """How to freeze a value of a type not in ``_FREEZERS`` (remembered for exact types)."""
    cls = value.__class__
    freezer: _Freezer
    if isinstance(value, _KEPT_KINDS):
        freezer = _freeze_kept
    elif isinstance(value, dict):
        freezer = _freeze_dict  # OrderedDict, defaultdict, Counter keep their type
    elif isinstance(value, list | deque):
        freezer = _freeze_list
    elif isinstance(value, tuple):
        freezer = _freeze_tuple
    elif isinstance(value, set | frozenset):
        freezer = _freeze_set
    elif isinstance(value, bytearray):
        freezer = _freeze_bytearray
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        freezer = _freeze_dataclass
    elif isinstance(value, Mapping):
        freezer = _freeze_mapping
    elif cls.__name__ == "ndarray" and cls.__module__ == "numpy":
        freezer = _freeze_array
    else:
        return _freeze_text  # not remembered: classes can be many and short-lived
    if len(_FREEZERS) < 256:
        _FREEZERS[cls] = freezer
    return freezer


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


def snapshot(
    record: logging.LogRecord, as_text: Callable[[Any], str] = safe_repr
) -> tuple[logging.LogRecord, int]:
    """
    Copy what a record will need once rendered later, on another thread.

    Returns the copy and its estimated size (see :func:`snapshot_state`).
    """
    d, size = snapshot_state(record, as_text)
    clone = _new(record.__class__)
    clone.__dict__ = d
    return clone, size


def snapshot_state(
    record: logging.LogRecord, as_text: Callable[[Any], str] = safe_repr
) -> tuple[dict[str, Any], int]:
    """
    Return the attributes :func:`snapshot` gives its copy of *record*, and its estimated size.

    Field values are frozen (see :func:`freeze`, which renders other
    objects with *as_text*).
    """
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
            if value.__class__ not in _PLAIN:
                for name in names:
                    field = d[name]
                    if field.__class__ not in _PLAIN:
                        d[name] = freeze(field, as_text)
                break
    if n > _SNAPSHOT_ATTRS + len(names) + ("structflow_fields" in d) + ("asctime" in d):
        # Attributes from stdlib's extra= are not in structflow_fields.
        for name in d.keys() - RESERVED:
            value = d[name]
            if value.__class__ not in _PLAIN:
                d[name] = freeze(value, as_text)
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
