"""
:class:`ClassicFormatter`: a stdlib format string, safe for any record.

The ``%(asctime)s`` layout people read, with run-context fields usable in the
format, a dash for a field a record lacks, and control characters escaped so
a message cannot forge a line.
"""

from __future__ import annotations

import logging
import re
import string
from collections.abc import Mapping
from typing import Any, Unpack

from structflow._records import exc_tuple, safe_message
from structflow._values import PLAIN, REDACTED, safe_repr, safe_str, scrub, truncate
from structflow.formatters._event import (
    MISSING,
    EventFormatter,
    FormatterOptions,
    takes_formatter_options,
)
from structflow.formatters._traceback import escape, format_exc_lines, safe_traceback

__all__ = ["DEFAULT_DATEFMT", "DEFAULT_FORMAT", "ClassicFormatter"]

#: The classic format when none is given (Prefect 1's).
DEFAULT_FORMAT = "[%(asctime)s] %(levelname)s - %(name)s | %(message)s"
#: The classic date format when neither a format nor a date format is given.
DEFAULT_DATEFMT = "%Y-%m-%d %H:%M:%S%z"

_PERCENT_FIELD = re.compile(
    r"%\((?P<key>[^)]*)\)(?P<spec>[#0+ -]*(?:\*|\d+)?(?:\.(?:\*|\d+))?)(?P<conv>[diouxXeEfFgGcrsa])"
)
_DOLLAR_FIELD = re.compile(
    r"\$(?:(?P<named>[_a-z][_a-z0-9]*)|\{(?P<braced>[_a-z][_a-z0-9]*)\})", re.I
)

# How a value is prepared for the format: str() (numbers left as they are),
# repr(), or ascii().
_AS_STR, _AS_REPR, _AS_ASCII = 0, 1, 2
# Where it comes from: the record (or the processed event), shown as it is
# or redacted when present (the two below _FROM_MESSAGE), the message, or
# the formatted time.
_FROM_RECORD, _REDACTED, _FROM_MESSAGE, _FROM_TIME = 0, 1, 2, 3


class ClassicFormatter(EventFormatter):
    """
    Render records with a stdlib format string, safely.

    Like :class:`logging.Formatter` (``%``, ``{`` and ``$`` styles, ``datefmt``,
    exceptions and stack info appended), plus:

    * run-context and other fields are usable in the format
      (``%(task_name)s``, ``%(flow_run_id)s``); a field absent on a record
      renders as ``-`` (or its value in ``defaults``), never a ``KeyError``;
    * CR, LF and other control characters in the message and fields are
      escaped, so a message cannot forge a log line; in tracebacks the
      exception's message is escaped the same way;
    * fields named in ``redact_keys`` render as ``[REDACTED]``;
    * messages longer than ``max_message_bytes`` are truncated with a marker;
    * the ``strftime`` of ``%(asctime)s`` is computed once per second.

    With ``processors``, the processed event dict is consulted before the
    record, so keys processors add can be used in the format.

    It takes the options every formatter takes (see "Common options"
    above). With neither ``fmt`` nor ``datefmt`` given, structflow's
    defaults (:data:`DEFAULT_FORMAT`, :data:`DEFAULT_DATEFMT`) apply.

    Args:
        missing: what a field absent on a record renders as, unless
            ``defaults`` holds a value for it.

    .. versionadded:: 0.1.0
    """

    _renderer = "classic"
    _uses_datefmt = True

    @takes_formatter_options
    def __init__(self, *args: Any, missing: str = "-", **options: Unpack[FormatterOptions]) -> None:
        super().__init__(*args, **options)
        self.missing = missing
        style = self._style_char
        self._slots, self._template, self._fallback = self._parse(self._style._fmt, style)
        self._dollar: string.Template | None = None
        if style == "$":
            self._dollar = string.Template(self._template)

    def _formats(
        self, fmt: str | None, datefmt: str | None, style: str
    ) -> tuple[str | None, str | None]:
        if fmt is None and datefmt is None and style == "%":
            return DEFAULT_FORMAT, DEFAULT_DATEFMT
        return fmt, datefmt

    def _source(self, key: str) -> int:
        if key == "message":
            return _FROM_MESSAGE
        if key == "asctime":
            return _FROM_TIME
        if key.lower() in self._redact:
            return _REDACTED
        return _FROM_RECORD

    def _parse(
        self, fmt: str, style: str
    ) -> tuple[tuple[tuple[str, str, int, int], ...], str, str]:
        """
        Find the fields of *fmt*; return them, the format to apply, and a fallback.

        The fallback renders every field with plain ``str`` conversion, for
        records whose values do not suit a conversion (``%(task_name)d`` on
        a record without a task).
        """
        slots: dict[str, tuple[str, str, int, int]] = {}
        if style == "%":

            def sub(match: re.Match[str]) -> str:
                key, spec, conv = match.group("key", "spec", "conv")
                kind = {"r": _AS_REPR, "a": _AS_ASCII}.get(conv, _AS_STR)
                slot = key if kind == _AS_STR else f"{key}\x00{conv}"
                slots.setdefault(slot, (slot, key, kind, self._source(key)))
                if kind != _AS_STR:
                    return f"%({slot}){spec}s"
                return match.group(0)

            def plain_field(match: re.Match[str]) -> str:
                key, conv = match.group("key", "conv")
                slot = key if conv not in "ra" else key + "\x00" + conv
                return f"%({slot})s"

            template = _PERCENT_FIELD.sub(sub, fmt)
            return tuple(slots.values()), template, _PERCENT_FIELD.sub(plain_field, fmt)
        if style == "{":
            parts = []
            plain = []
            for text, field, spec, conv in string.Formatter().parse(fmt):
                literal = text.replace("{", "{{").replace("}", "}}")
                parts.append(literal)
                plain.append(literal)
                if field is None:
                    continue
                key = re.split(r"[.\[]", field, maxsplit=1)[0]
                kind = {"r": _AS_REPR, "a": _AS_ASCII}.get(conv or "", _AS_STR)
                slot = key if kind == _AS_STR else f"{key}_{conv}_"
                slots.setdefault(slot, (slot, key, kind, self._source(key)))
                rest = field[len(key) :] if kind == _AS_STR else ""
                parts.append("{" + slot + rest + (":" + spec if spec else "") + "}")
                plain.append("{" + slot + "}")
            return tuple(slots.values()), "".join(parts), "".join(plain)
        for match in _DOLLAR_FIELD.finditer(fmt):
            key = match.group("named") or match.group("braced")
            slots.setdefault(key, (key, key, _AS_STR, self._source(key)))
        return tuple(slots.values()), fmt, fmt

    def format(self, record: logging.LogRecord) -> str:
        """
        Format *record*; never raises.

        .. versionadded:: 0.1.0
        """
        try:
            text = self._format_line(record)
        except Exception as exc:
            text = self._emergency(record, exc)
        try:
            exc_info = exc_tuple(record.exc_info)
            if exc_info is not None:
                text += "\n" + format_exc_lines(exc_info, self._max_bytes)
            elif record.exc_text:
                text += "\n" + safe_traceback(safe_str(record.exc_text))
            if record.stack_info:
                text += "\n" + safe_traceback(self.formatStack(record.stack_info))
        except Exception as exc:
            text += f" [traceback could not be formatted: {type(exc).__name__}]"
        return text

    def _format_line(self, record: logging.LogRecord) -> str:
        d: Mapping[str, Any] = record.__dict__
        event: Mapping[str, Any] | None = None
        if self._processors:
            # _build leaves record.message and record.asctime set.
            event = self._event(record)[0]
            msg = safe_str(event.get("message", ""))
            asctime = self._asctime(record)
        else:
            msg = safe_message(record)
            asctime = self._asctime(record)
            # What stdlib's Formatter.format leaves on the record (see _build).
            record.__dict__["message"] = msg
            record.__dict__["asctime"] = asctime
            if len(msg) > self._trunc_chars:
                msg = truncate(msg, self._max_bytes)
        values: dict[str, Any] = {}
        for slot, key, kind, source in self._slots:
            if source < _FROM_MESSAGE:  # from the record
                value = MISSING
                if event is not None:
                    value = event.get(key, MISSING)
                if value is MISSING:
                    value = d.get(key, MISSING)
                if value is MISSING or (value is None and _is_field(d, key)):
                    # Absent, or a context field that has no value here (a
                    # log attribute the context lacks, map_index outside a map).
                    values[slot] = self._defaults.get(key, self.missing)
                    continue
                if source == _REDACTED:
                    values[slot] = REDACTED
                    continue
            elif source == _FROM_MESSAGE:
                value = msg
            else:
                values[slot] = asctime
                continue
            if kind == _AS_STR:
                t = type(value)
                if t is str:
                    if not value.isprintable():
                        value = escape(value)
                elif t is not int and t is not float:
                    value = escape(safe_str(scrub(value, self._redact, 1)))
            else:
                text = safe_repr(value if type(value) in PLAIN else scrub(value, self._redact, 1))
                if kind == _AS_ASCII:
                    text = text.encode("ascii", "backslashreplace").decode("ascii")
                value = escape(text)
            values[slot] = value
        try:
            return self._apply(self._template, values)
        except Exception:
            plain = {k: v if type(v) is str else safe_str(v) for k, v in values.items()}
            return self._apply(self._fallback, plain)

    def _apply(self, template: str, values: dict[str, Any]) -> str:
        style = self._style_char
        if style == "%":
            return template % values
        if style == "{":
            return template.format_map(values)
        if template is self._template and self._dollar is not None:
            return self._dollar.substitute(values)
        return string.Template(template).substitute(values)

    def _emergency(self, record: logging.LogRecord, exc: BaseException) -> str:
        msg = self._fallback_message(record, escape)
        name = escape(safe_str(getattr(record, "name", "?")))
        level = escape(safe_str(getattr(record, "levelname", "?")))
        return f"{level} - {name} | {msg} [format failed: {type(exc).__name__}]"

    def __repr__(self) -> str:
        options = [f"fmt={self._style._fmt!r}", f"datefmt={self.datefmt!r}"]
        if self._style_char != "%":
            options.append(f"style={self._style_char!r}")
        if self._defaults:
            options.append(f"defaults={self._defaults!r}")
        if self.missing != "-":
            options.append(f"missing={self.missing!r}")
        options.extend(self._repr_options())
        return f"ClassicFormatter({', '.join(options)})"


def _is_field(d: Mapping[str, Any], key: str) -> bool:
    """Tell whether *key* is one of the record's structflow fields (run context, bound, ...)."""
    names = d.get("structflow_fields")
    return type(names) is tuple and key in names
