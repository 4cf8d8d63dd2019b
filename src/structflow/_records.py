"""
The record rules every part of structflow shares.

* which attribute names belong to the record itself (:data:`RESERVED`), so a
  field with one of those names is stored and shown as ``<name>_``;
* the message of a record, which never raises (:func:`safe_message`);
* ``exc_info`` as a logging call takes it and as a record holds it, and the
  text of a traceback;
* the time of a record as nanoseconds and as text cached per second, and
  the ``strftime`` directives a ``datefmt`` may use (:func:`check_datefmt`).

A leaf module: it imports only the standard library and
:mod:`structflow._values`.
"""

from __future__ import annotations

import logging
import math
import re
import sys
import time
import traceback
from collections.abc import Callable
from types import TracebackType
from typing import TypeAlias

from structflow._values import unrepresentable

__all__ = [
    "N_RECORD_ATTRS",
    "RECORD_ATTRS",
    "RESERVED",
    "ExcInfo",
    "LogRecord",
    "SecondCache",
    "SysExcInfo",
    "check_datefmt",
    "epoch_ns",
    "exc_tuple",
    "normalize_exc_info",
    "safe_message",
    "traceback_text",
    "utc_second",
]

SysExcInfo: TypeAlias = tuple[type[BaseException], BaseException, TracebackType | None]
#: What the ``exc_info=`` argument of a logging call may be.
ExcInfo: TypeAlias = bool | SysExcInfo | tuple[None, None, None] | BaseException | None

_PROBE = logging.LogRecord("", 0, "", 0, "", None, None)
#: The attributes stdlib gives every record, in its order (this Python's).
RECORD_ATTRS: tuple[str, ...] = tuple(_PROBE.__dict__)
del _PROBE
#: How many attributes a bare stdlib record has.
N_RECORD_ATTRS = len(RECORD_ATTRS)
#: Names a field cannot be stored under: the record's own attributes, what
#: formatters add to it (``message``, ``asctime``), structflow's list of
#: fields, and ``taskName`` on every Python (3.12 added it). A field with one
#: of these names is stored with a trailing underscore instead.
RESERVED: frozenset[str] = frozenset(RECORD_ATTRS) | {
    "message",
    "asctime",
    "structflow_fields",
    "taskName",
}


# --- the message -------------------------------------------------------------------


def safe_message(record: logging.LogRecord) -> str:
    """
    Return the record's message without ever raising.

    When the ``%`` arguments do not match the message, the message is shown
    followed by its arguments, so the line is never lost.
    """
    msg = record.msg
    if type(msg) is not str:
        try:
            msg = str(msg)
        except Exception:
            msg = unrepresentable(msg)
    args = record.args
    if args:
        try:
            return msg % args
        except Exception:
            try:
                shown = repr(args)
            except Exception:
                shown = unrepresentable(args)
            return f"{msg} {shown}"
    return msg


class LogRecord(logging.LogRecord):
    """
    A :class:`logging.LogRecord` whose ``getMessage()`` never raises.

    ``msg`` and ``args`` are exactly what stdlib would have stored.

    .. versionadded:: 0.1.0
    """

    def getMessage(self) -> str:  # noqa: N802 - stdlib's name
        return safe_message(self)


# --- exceptions ----------------------------------------------------------------------


def normalize_exc_info(exc_info: ExcInfo) -> SysExcInfo | tuple[None, None, None] | None:
    """
    The ``exc_info`` a record gets from the ``exc_info=`` of a logging call.

    stdlib's rule: an exception becomes its (type, value, traceback); a
    tuple is kept; any other true value means the exception being handled.
    """
    if not exc_info:
        return None
    if isinstance(exc_info, BaseException):
        return (type(exc_info), exc_info, exc_info.__traceback__)
    if isinstance(exc_info, tuple):
        return exc_info
    return sys.exc_info()


def exc_tuple(exc_info: object) -> SysExcInfo | None:
    """
    Return a usable (type, value, traceback) from a record's ``exc_info``, or None.

    A record made by hand may hold an exception instead of the tuple; a
    ``(None, None, None)`` tuple or anything else holds no exception.
    """
    if not exc_info:
        return None
    if isinstance(exc_info, BaseException):
        return (type(exc_info), exc_info, exc_info.__traceback__)
    if (
        isinstance(exc_info, tuple)
        and len(exc_info) == 3
        and isinstance(exc_info[1], BaseException)
    ):
        return exc_info
    return None


def traceback_text(exc_info: SysExcInfo) -> str:
    """The traceback as stdlib's ``Formatter.formatException`` writes it; never raises."""
    try:
        return "".join(traceback.format_exception(*exc_info)).rstrip("\n")
    except Exception as exc:
        return f"<traceback could not be formatted: {type(exc).__name__}>"


# --- time ------------------------------------------------------------------------------

_floor = math.floor


def epoch_ns(created: float) -> int:
    """
    Nanoseconds since the epoch of a record's ``created`` time.

    The whole seconds are split off first, so the result is the nearest
    nanosecond to the float itself (multiplying the float by 1e9 would round
    to 256 ns at today's dates).
    """
    sec = _floor(created)
    return sec * 1_000_000_000 + round((created - sec) * 1e9)


# What time.strftime understands everywhere structflow runs: C99 and POSIX
# conversions plus glibc's %k %l %P %s, after glibc's optional flags, width
# and E/O modifier. Anything else is copied to the output as typed.
_STRFTIME_CONVERSIONS = frozenset("aAbBcCdDeFgGhHIjklmMnpPrRsStTuUVwWxXyYzZ%")
_DIRECTIVE = re.compile(r"%([-_0^#]*\d*[EO]?)(.?)", re.DOTALL)


def check_datefmt(datefmt: str) -> str:
    """
    Return *datefmt* if every ``%`` directive in it is one ``strftime`` knows.

    Raises:
        ValueError: the first unknown directive (``%Q``, ``%f``, ``%:z``) or a
            lone ``%`` at the end, named in the message.
    """
    for match in _DIRECTIVE.finditer(datefmt):
        conversion = match.group(2)
        if not conversion:
            raise ValueError("it ends with a lone %; write %% for a percent sign")
        if conversion not in _STRFTIME_CONVERSIONS:
            hint = (
                " (time.strftime has no fraction of a second: put %(msecs)03d in the format)"
                if conversion == "f"
                else ""
            )
            raise ValueError(
                f"{match.group(0)} is not a strftime directive{hint}; expected directives "
                "such as %Y %m %d %H %M %S %z"
            )
    return datefmt


def utc_second(sec: int) -> str:
    """RFC 3339 date and time of a whole second, UTC, without fraction or zone."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))


class SecondCache:
    """
    Timestamps whose whole-second part is rendered once per second.

    ``strftime`` costs more than the rest of a short JSON line, so the text of
    the current second is kept and only the fraction is formatted per record.
    The time is rounded down to its second (``int()`` would round times
    before 1970 up). The cache is one tuple, replaced whole, so threads
    sharing a formatter never pair one second's text with another's fraction.

    Args:
        render: the text of a whole second (called once per second).
        fraction: a ``%`` format taking that text and the fraction of a
            second times *scale* (``"%s.%06dZ"`` with ``1e6``: RFC 3339 with
            microseconds); ``None`` for the second's text alone.
        scale: what the fraction is multiplied by.
    """

    __slots__ = ("_cache", "_fraction", "_render", "_scale")

    def __init__(
        self, render: Callable[[int], str], fraction: str | None = None, scale: float = 1.0
    ) -> None:
        self._render = render
        self._fraction = fraction
        self._scale = scale
        # NaN never equals a second, so the first call renders.
        self._cache: tuple[float, str] = (math.nan, "")

    def format(self, created: float) -> str:
        """Return the timestamp of *created*: its second's text, then the fraction."""
        sec = _floor(created)
        cache = self._cache
        if cache[0] != sec:
            cache = self._cache = (sec, self._render(sec))
        if self._fraction is None:
            return cache[1]
        # %d truncates the float itself: measured faster than an f-string with int().
        return self._fraction % (cache[1], (created - sec) * self._scale)
