"""
Text that is safe on one log line: escaping, and tracebacks that cannot forge records.

Shared by the text renderers (classic, console, logfmt) and by the JSON
formatter's exception type names.
"""

from __future__ import annotations

from collections.abc import Iterable

from structflow._records import SysExcInfo, traceback_text
from structflow._values import safe_repr, truncate

__all__ = [
    "ESCAPES",
    "escape",
    "escape_char",
    "format_exc_lines",
    "safe_traceback",
    "type_name",
]

ESCAPES: dict[int, str] = {i: f"\\x{i:02x}" for i in (*range(0x20), *range(0x7F, 0xA0))}
ESCAPES.update({ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t", 0x2028: "\\u2028"})
ESCAPES[0x2029] = "\\u2029"


def escape_char(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def escape(text: str) -> str:
    """
    Escape control and other non-printable characters in *text*.

    CR, LF and tab become ``\\r``, ``\\n``, ``\\t``; other non-printable
    characters ``\\xNN``, ``\\uNNNN`` or ``\\UNNNNNNNN``. Printable text
    (including non-ASCII letters) is unchanged, so one message is one line.

    .. versionadded:: 0.1.0
    """
    if text.isprintable():
        return text
    text = text.translate(ESCAPES)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else escape_char(c) for c in text)


# Lines of a traceback that start at column 0 and are not data.
_TRACEBACK_HEADERS = (
    "Traceback (most recent call last):",
    "During handling of the above exception, another exception occurred:",
    "The above exception was the direct cause of the following exception:",
    "Stack (most recent call last):",
    "Exception Group Traceback (most recent call last):",
)


def safe_traceback(text: str, type_names: Iterable[str] = ()) -> str:
    """
    Make a formatted traceback (or stack) safe to append to a log line.

    Control characters other than LF are escaped in every line. Frames are
    indented by stdlib; a line starting at column 0 is kept there only if it
    is a traceback header or begins an exception line (``ValueError: ...``,
    with a type from *type_names*). Every other such line comes from an
    exception message or note, so it is indented by two spaces and can never
    pass for a record.
    """
    prefixes = tuple(f"{name}:" for name in type_names)
    names = frozenset(type_names)
    out = []
    for raw in text.split("\n"):
        line = escape(raw)
        if (
            line
            and not line[0].isspace()
            and not line.startswith(_TRACEBACK_HEADERS)
            and not (prefixes and line.startswith(prefixes))
            and line not in names
        ):
            line = "  " + line
        out.append(line)
    return "\n".join(out)


def _chain_type_names(exc: BaseException) -> list[str]:
    """The type names stdlib prints for *exc* and the exceptions chained to it."""
    names: list[str] = []
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo and len(seen) < 1000:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        names.append(type_name(type(current)))
        for linked in (current.__cause__, current.__context__):
            if isinstance(linked, BaseException):
                todo.append(linked)
        if isinstance(current, BaseExceptionGroup):
            todo.extend(e for e in current.exceptions if isinstance(e, BaseException))
    return names


def format_exc_lines(exc_info: SysExcInfo, limit: int | None = None) -> str:
    """
    Format a traceback exactly as stdlib does, then make it safe (see :func:`safe_traceback`).

    The text is first truncated to *limit* bytes, like messages.
    """
    text = truncate(traceback_text(exc_info), limit)
    try:
        names = _chain_type_names(exc_info[1])
    except Exception:
        names = []
    return safe_traceback(text, names)


def type_name(cls: type) -> str:
    try:
        module = cls.__module__
        name = cls.__qualname__
    except Exception:
        return safe_repr(cls)
    if module in ("builtins", "__main__", None):
        return str(name)
    return f"{module}.{name}"
