"""
Values on their way to text: safe ``repr``/``str``, redaction, truncation, JSON.

Every renderer and payload shows field values through these helpers, so a
value whose ``__repr__`` raises, a secret under a nested key, a huge message
or an integer JSON cannot hold is handled the same way everywhere, and
rendering never raises.

A leaf module: it imports only the standard library and orjson.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import orjson

__all__ = [
    "JSON_OPTIONS",
    "MAX_DEPTH",
    "PLAIN",
    "REDACTED",
    "json_default",
    "one_line",
    "safe_repr",
    "safe_str",
    "sanitize",
    "scrub",
    "to_json_bytes",
    "truncate",
    "unrepresentable",
]

#: What a redacted value renders as.
REDACTED = "[REDACTED]"
#: Containers nested deeper than this render as a placeholder string. It keeps
#: rendering bounded for self-referencing or pathological values and stays well
#: below orjson's own limit (254), so the fast serialiser never hits it.
MAX_DEPTH = 64

_NoneType = type(None)
#: Values of these exact types need no work before serialisation.
PLAIN: frozenset[type] = frozenset({str, int, bool, _NoneType})
_TRUNCATION_MARKER = "…[truncated {} bytes]"


# --- text of any object ----------------------------------------------------------


def unrepresentable(obj: object) -> str:
    """The text shown for an object whose ``repr`` (or ``str``) raised."""
    return f"<unrepresentable {type(obj).__name__} object>"


def safe_repr(obj: object) -> str:
    """
    Return ``repr(obj)``, or a placeholder naming its type when ``repr`` fails.

    Never raises. Integers too long for ``repr`` (Python limits decimal
    conversion to 4300 digits) render as ``<int with N bits>``.

    .. versionadded:: 0.1.0
    """
    try:
        text = repr(obj)
    except Exception:
        if isinstance(obj, int):
            try:
                return f"<int with {obj.bit_length()} bits>"
            except Exception:
                pass
        return unrepresentable(obj)
    if type(text) is not str:  # a __repr__ returning a str subclass
        try:
            return str.__str__(text)
        except Exception:
            return unrepresentable(obj)
    return text


def safe_str(obj: object) -> str:
    """
    Return ``str(obj)``, falling back to :func:`safe_repr` when ``str`` fails.

    .. versionadded:: 0.1.0
    """
    if type(obj) is str:
        return obj
    try:
        text = str(obj)
    except Exception:
        return safe_repr(obj)
    if type(text) is not str:
        return safe_repr(obj)
    return text


# --- truncation --------------------------------------------------------------------


def truncate(text: str, max_bytes: int | None) -> str:
    """
    Cut *text* to at most *max_bytes* of UTF-8, marker included.

    The marker says how many bytes were cut (``…[truncated 123 bytes]``); the
    cut never splits a character. When *max_bytes* is smaller than the marker
    the marker alone is returned. ``None`` means no limit.

    .. versionadded:: 0.1.0
    """
    if max_bytes is None or len(text) * 4 <= max_bytes:
        return text
    # surrogatepass so that a lone surrogate is counted, not an error.
    data = text.encode("utf-8", "surrogatepass")
    total = len(data)
    if total <= max_bytes:
        return text
    # Room for the widest marker this text can need (the count has at most
    # as many digits as the total).
    reserve = len(_TRUNCATION_MARKER.format(total).encode("utf-8"))
    keep = max(0, max_bytes - reserve)
    # Step back over continuation bytes so the cut falls between characters.
    while keep > 0 and (data[keep] & 0xC0) == 0x80:
        keep -= 1
    head = data[:keep].decode("utf-8", "surrogatepass")
    return head + _TRUNCATION_MARKER.format(total - keep)


# --- redaction and plain data -------------------------------------------------------


def scrub(
    value: Any,
    redact: frozenset[str] = frozenset(),
    depth: int = 0,
    replacement: str = REDACTED,
) -> Any:
    """
    Prepare *value* for rendering; return it unchanged when nothing needs doing.

    * values under keys in *redact* (lower-case names) become
      :data:`REDACTED`, in nested mappings and sequences too;
    * NaN and infinities become their ``repr`` (JSON has no spelling for them);
    * mappings other than ``dict``, sets, deques and dataclass instances
      become dicts and lists, so their contents are redacted and rendered as
      data;
    * a container that contains itself renders as ``[...]`` or ``{...}``,
      and nesting deeper than :data:`MAX_DEPTH` as a placeholder string.

    Containers are copied only when something inside them changes; the
    caller's objects are never modified. Other objects are returned as they
    are (the serialiser renders them, falling back to ``repr``).

    Args:
        value: what to prepare.
        redact: lower-cased key names to redact.
        depth: the nesting depth *value* sits at.
        replacement: what a redacted value becomes.

    .. versionadded:: 0.1.0
    """
    return _scrub(value, redact, depth, [], replacement)


def _scrub(
    value: Any, redact: frozenset[str], depth: int, stack: list[int], repl: str = REDACTED
) -> Any:
    t = type(value)
    if t in PLAIN:
        return value
    if t is float:
        # x - x is 0.0 for every finite float and NaN for NaN and infinities.
        return value if value - value == 0.0 else repr(value)
    if isinstance(value, dict | list | tuple):
        return _scrub_container(value, redact, depth, stack, repl)
    if isinstance(value, str | int | float | bytes | bytearray):
        return value
    if isinstance(value, Mapping):
        try:
            as_dict = dict(value.items())
        except Exception:
            return safe_repr(value)
        return _scrub_container(as_dict, redact, depth, stack, repl)
    if isinstance(value, set | frozenset | deque):
        try:
            as_list = list(value)
        except Exception:
            return safe_repr(value)
        return _scrub_container(as_list, redact, depth, stack, repl)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        try:
            fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        except Exception:
            return safe_repr(value)
        return _scrub_container(fields, redact, depth, stack, repl)
    return value


def _scrub_container(
    value: dict[Any, Any] | list[Any] | tuple[Any, ...],
    redact: frozenset[str],
    depth: int,
    stack: list[int],
    repl: str,
) -> Any:
    is_dict = isinstance(value, dict)
    if depth >= MAX_DEPTH:
        return f"<{type(value).__name__} nested deeper than {MAX_DEPTH} levels>"
    ident = id(value)
    if ident in stack:
        return "{...}" if is_dict else "[...]"
    stack.append(ident)
    try:
        # dict subclasses (OrderedDict, defaultdict, Counter) are scanned
        # too: orjson writes them as objects without asking `default`.
        items = value.items() if is_dict else enumerate(value)  # type: ignore[union-attr]
        # The container is copied (a dict, or a list) at the first item that changes.
        copy: Any = None
        for key, item in items:
            if is_dict and redact and isinstance(key, str) and key.lower() in redact:
                new = repl
            else:
                new = _scrub(item, redact, depth + 1, stack, repl)
            if new is not item:
                if copy is None:
                    copy = dict(value) if is_dict else list(value)
                copy[key] = new
        return value if copy is None else copy
    finally:
        stack.pop()


# --- JSON that never fails -------------------------------------------------------

#: orjson options: dataclasses go through ``default`` so their fields are redacted too.
JSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_SERIALIZE_NUMPY
_dumps = orjson.dumps
_I64_MIN = -(2**63)
_U64_MAX = 2**64 - 1


def json_default(redact: frozenset[str]) -> Callable[[Any], Any]:
    """
    Return orjson's ``default`` for values it cannot hold, redacting *redact*.

    Containers it meets are scrubbed (see :func:`scrub`); anything else
    renders as its ``repr``.
    """

    def default(obj: Any) -> Any:
        converted = scrub(obj, redact, 1)
        if converted is not obj:
            return converted
        return safe_repr(obj)

    return default


_default_plain = json_default(frozenset())


def _fix_str(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogates cannot be written as UTF-8: show them as \udXXX.
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def sanitize(obj: Any, depth: int = 0, stack: list[int] | None = None) -> Any:
    """Return *obj* as plain JSON data that orjson always accepts."""
    t = type(obj)
    if t is str:
        return _fix_str(obj)
    if t is bool or obj is None:
        return obj
    if t is int:
        return obj if _I64_MIN <= obj <= _U64_MAX else safe_repr(obj)
    if t is float:
        return obj if obj - obj == 0.0 else repr(obj)
    if isinstance(obj, dict | list | tuple):
        if depth >= MAX_DEPTH:
            return f"<{type(obj).__name__} nested deeper than {MAX_DEPTH} levels>"
        if stack is None:
            stack = []
        ident = id(obj)
        if ident in stack:
            return "{...}" if isinstance(obj, dict) else "[...]"
        stack.append(ident)
        try:
            if isinstance(obj, dict):
                return {
                    _fix_str(k) if type(k) is str else _fix_str(safe_str(k)): sanitize(
                        v, depth + 1, stack
                    )
                    for k, v in list(obj.items())
                }
            return [sanitize(v, depth + 1, stack) for v in list(obj)]
        finally:
            stack.pop()
    if isinstance(obj, str):
        return _fix_str(safe_str(obj))
    if isinstance(obj, bool):
        return bool(obj)
    if isinstance(obj, int):
        return sanitize(int(obj), depth, stack)
    if isinstance(obj, float):
        return sanitize(float(obj), depth, stack)
    if isinstance(obj, _dt.date | _dt.time):
        try:
            return _fix_str(obj.isoformat())
        except Exception:
            return _fix_str(safe_repr(obj))
    if isinstance(obj, uuid.UUID):
        return str(obj)
    converted = scrub(obj)
    if converted is not obj:
        return sanitize(converted, depth, stack)
    return _fix_str(safe_repr(obj))


def one_line(line: bytes) -> bytes:
    """
    Escape the line separators JSON allows raw (NEL, U+2028, U+2029).

    ``str.splitlines()`` and some log viewers break lines at them, so a
    record could look like two. They can only occur inside JSON strings,
    where the escape means the same character.
    """
    if line.isascii():
        return line
    return (
        line.replace(b"\xc2\x85", b"\\u0085")
        .replace(b"\xe2\x80\xa8", b"\\u2028")
        .replace(b"\xe2\x80\xa9", b"\\u2029")
    )


def to_json_bytes(obj: Any) -> bytes:
    """
    Serialise *obj* as compact JSON (UTF-8, no trailing newline); never raises.

    orjson does the work. Values it cannot hold (arbitrary objects, bytes,
    sets) render as their ``repr`` (a failing ``repr`` as a placeholder);
    when orjson refuses the whole value (integers beyond 64 bits, lone
    surrogates, non-string keys, deep nesting) a sanitised copy is
    serialised instead, so the result is always valid JSON.

    .. versionadded:: 0.1.0
    """
    try:
        return one_line(_dumps(obj, default=_default_plain, option=JSON_OPTIONS))
    except Exception:
        pass
    try:
        return one_line(_dumps(sanitize(obj), option=JSON_OPTIONS))
    except Exception:
        if isinstance(obj, Mapping):
            return b'{"message":"<unserialisable value>"}'
        return b'"<unserialisable value>"'
