"""
:class:`ConsoleFormatter`: aligned and colourful, for a person at a terminal.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import IO, Any, Unpack

from structflow._records import SecondCache, exc_tuple
from structflow._values import safe_repr, safe_str
from structflow.formatters._event import (
    EventFormatter,
    FormatterOptions,
    takes_formatter_options,
)
from structflow.formatters._traceback import escape, format_exc_lines, safe_traceback

__all__ = ["ConsoleFormatter"]

_RESET = "\x1b[0m"
_DIM = "\x1b[2m"
_BRIGHT = "\x1b[1m"
_LEVEL_COLORS = {
    "debug": "\x1b[34m",
    "info": "\x1b[32m",
    "warning": "\x1b[33m",
    "error": "\x1b[31m",
    "critical": "\x1b[41m\x1b[1m",
}
_LOGGER_COLOR = "\x1b[34m"
_KEY_COLOR = "\x1b[36m"
_VALUE_COLOR = "\x1b[35m"


def _stream_is_tty(stream: IO[str] | str | None) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    if stream is None or stream == "stdout":
        stream = sys.stdout
    elif stream == "stderr":
        stream = sys.stderr
    elif isinstance(stream, str):
        return False
    try:
        return bool(stream.isatty())
    except Exception:
        return False


class ConsoleFormatter(EventFormatter):
    """
    Render records for a terminal: aligned columns, colours when they help.

    ``12:00:00.123 [info    ] message             [logger] key=value ...``, with
    the traceback below. Colours are used when ``colors=True``, or, with the
    default ``colors=None``, when the stream is a terminal (``stream``: a file
    object, ``"stdout"`` or ``"stderr"``; standard output when not given),
    unless ``NO_COLOR`` is set (``FORCE_COLOR`` forces them).

    Of the options every formatter takes (see "Common options" above),
    ``datefmt`` is the strftime format of the local time shown (by default
    ``%Y-%m-%d %H:%M:%S`` followed by milliseconds); ``fmt`` is ignored.

    Args:
        colors: force colours on or off.
        stream: where the output goes, to decide on colours.
        pad_message: the width the message is padded to before the fields.

    .. versionadded:: 0.1.0
    """

    _renderer = "console"
    _uses_datefmt = True

    @takes_formatter_options
    def __init__(
        self,
        *args: Any,
        colors: bool | None = None,
        stream: IO[str] | str | None = None,
        pad_message: int = 30,
        **options: Unpack[FormatterOptions],
    ) -> None:
        super().__init__(*args, **options)
        self._colors_given = colors
        self.colors = _stream_is_tty(stream) if colors is None else bool(colors)
        self.pad_message = pad_message
        # Local time, with milliseconds unless the user chose a datefmt.
        fraction = None if self.datefmt else "%s.%03d"
        self._local_time = SecondCache(self._render_second, fraction, 1e3).format

    def _render_second(self, sec: int) -> str:
        return time.strftime(self.datefmt or "%Y-%m-%d %H:%M:%S", self.converter(sec))

    def format(self, record: logging.LogRecord) -> str:
        """
        Format *record* for a terminal; never raises.

        .. versionadded:: 0.1.0
        """
        try:
            event, ts = self._event(record)
            return self._render(event, ts, record)
        except Exception as exc:
            msg = self._fallback_message(record, escape)
            return f"{msg} [format failed: {type(exc).__name__}]"

    def _render(self, event: dict[str, Any], ts: str, record: logging.LogRecord) -> str:
        colors = self.colors
        stamp = event.pop("timestamp", None)
        when = self._local_time(record.created) if stamp is ts else escape(safe_str(stamp))
        level = escape(safe_str(event.pop("level", "")))
        logger_name = escape(safe_str(event.pop("logger", "")))
        message = escape(safe_str(event.pop("message", "")))
        exc = event.pop("exception", None)
        stack = event.pop("stack", None)
        pad = " " * max(0, self.pad_message - len(message))
        if colors:
            color = _LEVEL_COLORS.get(level, "")
            parts = [
                f"{_DIM}{when}{_RESET} [{color}{level:<8}{_RESET}] "
                f"{_BRIGHT}{message}{_RESET}{pad} [{_LOGGER_COLOR}{logger_name}{_RESET}]"
            ]
            for key, value in event.items():
                parts.append(
                    f"{_KEY_COLOR}{_console_text(key)}{_RESET}="
                    f"{_VALUE_COLOR}{_console_value(value)}{_RESET}"
                )
        else:
            parts = [f"{when} [{level:<8}] {message}{pad} [{logger_name}]"]
            for key, value in event.items():
                parts.append(f"{_console_text(key)}={_console_value(value)}")
        text = " ".join(parts)
        exc_info = exc_tuple(record.exc_info)
        if exc_info is not None:
            text += "\n" + format_exc_lines(exc_info, self._max_bytes)
        elif isinstance(exc, dict) and exc.get("traceback"):
            text += "\n" + safe_traceback(safe_str(exc["traceback"]))
        if stack:
            text += "\n" + safe_traceback(safe_str(stack))
        return text

    def __repr__(self) -> str:
        options = []
        if self.datefmt is not None:
            options.append(f"datefmt={self.datefmt!r}")
        options.append(f"colors={self.colors!r}")
        if self.pad_message != 30:
            options.append(f"pad_message={self.pad_message!r}")
        options.extend(self._repr_options())
        return f"ConsoleFormatter({', '.join(options)})"


def _console_text(text: Any) -> str:
    if type(text) is str and text.isprintable():
        return text
    return escape(safe_str(text))


def _console_value(value: Any) -> str:
    t = type(value)
    if t is str:
        return value if value.isprintable() else escape(value)
    if t is int:
        return str(value)
    return escape(safe_repr(value))
