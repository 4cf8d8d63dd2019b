"""
:class:`LogfmtFormatter`: ``key=value`` pairs on one line.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Unpack

from structflow._values import safe_repr, safe_str, to_json_bytes
from structflow.formatters._event import (
    EventFormatter,
    FormatterOptions,
    takes_formatter_options,
)
from structflow.formatters._traceback import ESCAPES, escape_char

__all__ = ["LogfmtFormatter"]

_LOGFMT_ESCAPES: dict[int, str] = dict(ESCAPES)
_LOGFMT_ESCAPES.update({ord("\\"): "\\\\", ord('"'): '\\"'})
_LOGFMT_BAD_KEY = re.compile(r'[\s="\\]|[^\x20-\x7e]')
# A value that needs no quotes: no space, quote, equals sign, backslash or
# control character (non-ASCII text is checked with isprintable as well).
_logfmt_bare = re.compile(r'[^\x00-\x20"=\\\x7f]+').fullmatch


def _logfmt_key(key: Any) -> str:
    text = key if type(key) is str else safe_str(key)
    if not text:
        return "_"
    if text.isascii() and text.isprintable() and not _LOGFMT_BAD_KEY.search(text):
        return text
    return _LOGFMT_BAD_KEY.sub("_", text)


def _logfmt_value(value: Any) -> str:
    text: str
    t = type(value)
    if t is str:
        text = value
    elif value is None:
        return "null"
    elif t is bool:
        return "true" if value else "false"
    elif t is int or t is float:
        return safe_repr(value)
    elif isinstance(value, dict | list):
        text = to_json_bytes(value).decode("utf-8")
    else:
        text = safe_str(value)
    if _logfmt_bare(text) and (text.isascii() or text.isprintable()):
        return text
    text = text.translate(_LOGFMT_ESCAPES)
    if not text.isprintable():
        text = "".join(c if c.isprintable() else escape_char(c) for c in text)
    return f'"{text}"'


class LogfmtFormatter(EventFormatter):
    """
    Render records as logfmt: ``key=value`` pairs on one line.

    ``timestamp=2024-05-01T12:00:00.123456Z level=info logger=structflow.x
    message="hello world" task_name=a``: values with spaces, quotes, ``=``
    or control characters are quoted, with ``\\\\``, ``\\"``, ``\\n``, ``\\r``,
    ``\\t`` and ``\\xNN``/``\\uNNNN`` escapes; dicts and lists are written as
    compact JSON; ``None`` as ``null``. An exception adds
    ``exception.type``, ``exception.message`` and ``exception.traceback``.

    It takes the options every formatter takes (see "Common options" above)
    and no others.

    .. versionadded:: 0.1.0
    """

    _renderer = "logfmt"

    @takes_formatter_options
    def __init__(self, *args: Any, **options: Unpack[FormatterOptions]) -> None:
        super().__init__(*args, **options)
        # Rendered key names; "exception" is never cached (it is expanded).
        self._keys: dict[str, str] = {}
        self._shown_values: dict[str, str] = {}

    def format(self, record: logging.LogRecord) -> str:
        """
        Format *record* as one logfmt line; never raises.

        .. versionadded:: 0.1.0
        """
        try:
            event = self._event(record)[0]
            keys = self._keys
            shown_values = self._shown_values
            parts = []
            for key, value in event.items():
                name = keys.get(key)
                if name is None:
                    if key == "exception" and isinstance(value, dict):
                        for sub, item in value.items():
                            parts.append(f"exception.{_logfmt_key(sub)}={_logfmt_value(item)}")
                        continue
                    name = _logfmt_key(key)
                    if len(keys) < 4096 and type(key) is str:
                        keys[key] = name
                t = type(value)
                if t is str:
                    # Run-context values repeat record after record; their
                    # quoting is worked out once.
                    shown = shown_values.get(value)
                    if shown is None:
                        bare = _logfmt_bare(value) and (value.isascii() or value.isprintable())
                        shown = value if bare else _logfmt_value(value)
                        if len(value) <= 64:
                            if len(shown_values) >= 4096:
                                shown_values.clear()
                            shown_values[value] = shown
                elif t is int:
                    shown = str(value)
                else:
                    shown = _logfmt_value(value)
                parts.append(f"{name}={shown}")
            return " ".join(parts)
        except Exception as exc:
            msg = self._fallback_message(record, _logfmt_value)
            return f"message={msg} structflow_error={_logfmt_value(type(exc).__name__)}"
