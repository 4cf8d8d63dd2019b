"""
Formatters: how a record becomes text.

Four renderers, each a :class:`logging.Formatter` taking ordinary keyword
arguments, so they work with any stdlib handler and with
:func:`logging.config.dictConfig`:

* :class:`ClassicFormatter`: the ``%(asctime)s``-style format string, for
  people;
* :class:`JsonFormatter`: one JSON object per line, for log aggregators, in
  structflow's own key layout or that of ECS, Google Cloud Logging, Datadog or
  the OpenTelemetry log data model (``json_schema``);
* :class:`ConsoleFormatter`: colourful and aligned, for a terminal;
* :class:`LogfmtFormatter`: ``key=value`` pairs.

All of them show the run context, bound keys and ``extra=`` fields, redact
secret keys, truncate huge messages, run extra structlog-style
``processors``, and never raise into the code that logs.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import logging
import os
import re
import string
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import IO, Any, Literal, TypeAlias

import orjson

from structflow._context import RUN_KEYS
from structflow.loggers import RESERVED, safe_message
from structflow.processors import (
    DEFAULT_MAX_MESSAGE_BYTES,
    DEFAULT_REDACT_KEYS,
    MAX_DEPTH,
    REDACTED,
    Processor,
    check_max_message_bytes,
    normalize_redact_keys,
    resolve_processors,
    safe_repr,
    safe_str,
    scrub,
    truncate,
)

__all__ = [
    "DEFAULT_DATEFMT",
    "DEFAULT_FORMAT",
    "JSON_SCHEMAS",
    "RENDERERS",
    "ClassicFormatter",
    "ConsoleFormatter",
    "JsonFormatter",
    "LogfmtFormatter",
    "formatter_for",
    "to_json_bytes",
]

#: The classic format when none is given (Prefect 1's).
DEFAULT_FORMAT = "[%(asctime)s] %(levelname)s - %(name)s | %(message)s"
#: The classic date format when neither a format nor a date format is given.
DEFAULT_DATEFMT = "%Y-%m-%d %H:%M:%S%z"
#: Accepted values of ``JsonFormatter(json_schema=...)``.
JSON_SCHEMAS: tuple[str, ...] = ("default", "ecs", "gcp", "datadog", "otel")
#: Accepted values of ``formatter_for(renderer, ...)``.
RENDERERS: tuple[str, ...] = ("classic", "json", "console", "logfmt")
#: The ECS version the ``ecs`` schema declares (the field set of ecs-logging).
ECS_VERSION = "1.6.0"

_SysExcInfo: TypeAlias = tuple[type[BaseException], BaseException, TracebackType | None]
_NoneType = type(None)
_MISSING: Any = object()
# Values of these exact types are rendered as they are.
_PLAIN: frozenset[type] = frozenset({str, int, bool, _NoneType})

# The attributes every stdlib record has, plus what formatters add to it.
_PROBE = logging.LogRecord("", 0, "", 0, "", None, None)
_N_RECORD_ATTRS = len(_PROBE.__dict__)
_RECORD_ATTRS: frozenset[str] = frozenset(_PROBE.__dict__) | {
    "message",
    "asctime",
    "structflow_fields",
    "taskName",
}
del _PROBE

# Keys of structflow's own event layout; a field with one of these names is
# shown as `<name>_`, as the logger does for record attribute names.
_EVENT_KEYS: frozenset[str] = frozenset(
    {"timestamp", "level", "logger", "message", "exception", "stack"}
)
_RUN_KEY_SET = frozenset(RUN_KEYS)

_LOWER_LEVELS: dict[str, str] = {
    name: name.lower() for name in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", "NOTSET")
}

# orjson: dataclasses go through `default` so their fields are redacted too.
_OPTIONS = orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_SERIALIZE_NUMPY
_dumps = orjson.dumps
_I64_MIN = -(2**63)
_U64_MAX = 2**64 - 1


# --- JSON serialisation that never fails ----------------------------------------


def _default_plain(obj: Any) -> Any:
    converted = scrub(obj)
    if converted is not obj:
        return converted
    return safe_repr(obj)


def _make_default(redact: frozenset[str]) -> Callable[[Any], Any]:
    if not redact:
        return _default_plain

    def default(obj: Any) -> Any:
        converted = scrub(obj, redact, 1)
        if converted is not obj:
            return converted
        return safe_repr(obj)

    return default


def _fix_str(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogates cannot be written as UTF-8: show them as \udXXX.
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _sanitize(obj: Any, depth: int = 0, stack: list[int] | None = None) -> Any:
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
                    _fix_str(k) if type(k) is str else _fix_str(safe_str(k)): _sanitize(
                        v, depth + 1, stack
                    )
                    for k, v in list(obj.items())
                }
            return [_sanitize(v, depth + 1, stack) for v in list(obj)]
        finally:
            stack.pop()
    if isinstance(obj, str):
        return _fix_str(safe_str(obj))
    if isinstance(obj, bool):
        return bool(obj)
    if isinstance(obj, int):
        return _sanitize(int(obj), depth, stack)
    if isinstance(obj, float):
        return _sanitize(float(obj), depth, stack)
    if isinstance(obj, _dt.date | _dt.time):
        try:
            return _fix_str(obj.isoformat())
        except Exception:
            return _fix_str(safe_repr(obj))
    if isinstance(obj, uuid.UUID):
        return str(obj)
    converted = scrub(obj)
    if converted is not obj:
        return _sanitize(converted, depth, stack)
    return _fix_str(safe_repr(obj))


def _one_line(line: bytes) -> bytes:
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
        return _one_line(_dumps(obj, default=_default_plain, option=_OPTIONS))
    except Exception:
        pass
    try:
        return _one_line(_dumps(_sanitize(obj), option=_OPTIONS))
    except Exception:
        if isinstance(obj, Mapping):
            return b'{"message":"<unserialisable value>"}'
        return b'"<unserialisable value>"'


# --- text escaping -----------------------------------------------------------

_ESCAPES: dict[int, str] = {i: f"\\x{i:02x}" for i in (*range(0x20), *range(0x7F, 0xA0))}
_ESCAPES.update({ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t", 0x2028: "\\u2028"})
_ESCAPES[0x2029] = "\\u2029"


def _escape_char(char: str) -> str:
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
    text = text.translate(_ESCAPES)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escape_char(c) for c in text)


# Lines of a traceback that start at column 0 and are not data.
_TRACEBACK_HEADERS = (
    "Traceback (most recent call last):",
    "During handling of the above exception, another exception occurred:",
    "The above exception was the direct cause of the following exception:",
    "Stack (most recent call last):",
    "Exception Group Traceback (most recent call last):",
)


def _safe_traceback(text: str, type_names: Iterable[str] = ()) -> str:
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
        names.append(_type_name(type(current)))
        for linked in (current.__cause__, current.__context__):
            if isinstance(linked, BaseException):
                todo.append(linked)
        if isinstance(current, BaseExceptionGroup):
            todo.extend(e for e in current.exceptions if isinstance(e, BaseException))
    return names


def _format_exc_lines(exc_info: _SysExcInfo, limit: int | None = None) -> str:
    """
    Format a traceback exactly as stdlib does, then make it safe (see :func:`_safe_traceback`).

    The text is first truncated to *limit* bytes, like messages.
    """
    text = truncate(_traceback_text(exc_info), limit)
    try:
        names = _chain_type_names(exc_info[1])
    except Exception:
        names = []
    return _safe_traceback(text, names)


def _traceback_text(exc_info: _SysExcInfo) -> str:
    try:
        return "".join(traceback.format_exception(*exc_info)).rstrip("\n")
    except Exception as exc:
        return f"<traceback could not be formatted: {type(exc).__name__}>"


def _exc_tuple(exc_info: Any) -> _SysExcInfo | None:
    """Return a usable (type, value, traceback) from a record's exc_info, or None."""
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


def _type_name(cls: type) -> str:
    try:
        module = cls.__module__
        name = cls.__qualname__
    except Exception:
        return safe_repr(cls)
    if module in ("builtins", "__main__", None):
        return str(name)
    return f"{module}.{name}"


# --- shared machinery -----------------------------------------------------------

# Builds the event dict: (record.__dict__, timestamp, level, logger, message)
# -> (event, whether every field value is of a plain type).
_Fill: TypeAlias = Callable[[Mapping[str, Any], str, str, Any, str], tuple[dict[str, Any], bool]]
_Plan: TypeAlias = tuple[_Fill, tuple[str, ...]]
_MAX_COMPILED_FIELDS = 64


def _compile_fill(
    attrs: tuple[str, ...], keys: tuple[str, ...], redacted: tuple[bool, ...]
) -> _Fill:
    """
    Compile a function building the event of records with these fields.

    One dict display builds the whole event in a single step (no resize, no
    loop per field), which is most of what a JSON line costs beyond the
    serialiser. As in attrs' generated ``__init__``, the names are not
    pasted into the source: they are globals of the generated function.
    """
    namespace: dict[str, Any] = {"_P": _PLAIN, "_t": type, "_R": REDACTED}
    lines = ["def fill(d, ts, level, logger, msg):"]
    items = ['"timestamp": ts', '"level": level', '"logger": logger', '"message": msg']
    checks = []
    for i, (attr, key, red) in enumerate(zip(attrs, keys, redacted, strict=True)):
        namespace[f"_k{i}"] = key
        if red:
            items.append(f"_k{i}: _R")
            continue
        namespace[f"_a{i}"] = attr
        lines.append(f"    v{i} = d[_a{i}]")
        items.append(f"_k{i}: v{i}")
        checks.append(f"_t(v{i}) in _P")
    lines.append(f"    return {{{', '.join(items)}}}, {' and '.join(checks) or 'True'}")
    exec(compile("\n".join(lines), "<structflow event builder>", "exec"), namespace)
    return namespace["fill"]  # type: ignore[no-any-return]


def _generic_fill(
    attrs: tuple[str, ...], keys: tuple[str, ...], redacted: tuple[bool, ...]
) -> _Fill:
    """The same as :func:`_compile_fill` with a loop, for records with very many fields."""
    fields = tuple(zip(attrs, keys, redacted, strict=True))

    def fill(
        d: Mapping[str, Any], ts: str, level: str, logger: Any, msg: str
    ) -> tuple[dict[str, Any], bool]:
        event: dict[str, Any] = {"timestamp": ts, "level": level, "logger": logger, "message": msg}
        plain = True
        for attr, key, red in fields:
            if red:
                event[key] = REDACTED
            else:
                value = event[key] = d[attr]
                if plain and type(value) not in _PLAIN:
                    plain = False
        return event, plain

    return fill


def _utc_prefix(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


def _processor_name(proc: Any) -> str:
    name = getattr(proc, "__qualname__", None) or type(proc).__qualname__
    return str(name)


class _EventFormatter(logging.Formatter):
    """
    Builds structflow's event dict from a record; the renderers share it.

    The event dict holds ``timestamp``, ``level``, ``logger``, ``message``,
    then the record's fields (run context, bound keys, ``extra=``), then
    ``exception`` and ``stack`` when present.
    """

    _renderer = "event"

    def __init__(
        self,
        fmt: str | None = None,
        datefmt: str | None = None,
        style: Literal["%", "{", "$"] = "%",
        validate: bool = True,
        *,
        defaults: Mapping[str, Any] | None = None,
        redact_keys: Iterable[str] | None = DEFAULT_REDACT_KEYS,
        max_message_bytes: int | None = DEFAULT_MAX_MESSAGE_BYTES,
        processors: Iterable[str | Processor] | None = None,
    ) -> None:
        super().__init__(fmt, datefmt, style, validate, defaults=defaults)
        self._redact = normalize_redact_keys(redact_keys)
        self._redact_given = list(redact_keys) if redact_keys is not None else []
        self._max_bytes = check_max_message_bytes(max_message_bytes)
        # A str of n characters has at most 4n UTF-8 bytes: shorter ones
        # cannot exceed the limit, which saves encoding every message.
        self._trunc_chars = self._max_bytes // 4 if self._max_bytes else sys.maxsize
        self._processor_specs = list(processors) if processors is not None else []
        self._processors = resolve_processors(processors)
        self._plans: dict[tuple[str, ...], _Plan] = {}
        # The plan used last: the logger hands out the same names tuple for
        # the same context, so an identity check usually finds it.
        self._last_plan: tuple[Any, Any] = (None, None)
        self._seen_once: set[tuple[str, ...]] = set()
        self._utc_cache: tuple[int, str] = (-1, "")

    # -- the event dict --

    def _plan(self, names: tuple[str, ...]) -> _Plan:
        """Return (and cache) the event builder for records with these field names."""
        attrs = tuple(str(n) for n in names)
        keys = tuple(n + "_" if n in _EVENT_KEYS else n for n in attrs)
        redact = self._redact
        redacted = tuple(
            attr.lower() in redact
            or (attr.endswith("_") and attr[:-1] in RESERVED and attr[:-1].lower() in redact)
            for attr in attrs
        )
        checked = tuple(k for k, r in zip(keys, redacted, strict=True) if not r)
        if len(attrs) <= _MAX_COMPILED_FIELDS and names not in self._seen_once:
            # Compiling costs about 100 µs: a layout seen once (keys that
            # change with every call) is served by the loop and not cached.
            if len(self._seen_once) >= 4096:
                self._seen_once.clear()
            self._seen_once.add(names)
            return (_generic_fill(attrs, keys, redacted), checked)
        if len(attrs) <= _MAX_COMPILED_FIELDS:
            fill = _compile_fill(attrs, keys, redacted)
        else:
            fill = _generic_fill(attrs, keys, redacted)
        plan = (fill, checked)
        if len(self._plans) >= 1024:
            self._plans.clear()
        self._plans[names] = plan
        self._seen_once.discard(names)
        return self._last_plan_set(names, plan)

    def _last_plan_set(self, names: tuple[str, ...], plan: _Plan) -> _Plan:
        self._last_plan = (names, plan)
        return plan

    def _timestamp(self, created: float) -> str:
        """RFC 3339 UTC with microseconds; the seconds part is cached (inlined in _build)."""
        sec = int(created)
        if sec > created:  # int() rounds toward zero; times before 1970
            sec -= 1
        cache = self._utc_cache
        if cache[0] != sec:
            cache = self._utc_cache = (sec, _utc_prefix(sec))
        return "%s.%06dZ" % (cache[1], (created - sec) * 1e6)  # noqa: UP031 - see _build

    def _build(self, record: logging.LogRecord) -> dict[str, Any]:
        """Return the event dict of *record* (the hot path of every renderer)."""
        d = record.__dict__
        created = record.created
        sec = int(created)
        if sec > created:  # int() rounds toward zero; times before 1970
            sec -= 1
        cache = self._utc_cache
        if cache[0] != sec:
            cache = self._utc_cache = (sec, _utc_prefix(sec))
        levelname = record.levelname
        level = _LOWER_LEVELS.get(levelname) or safe_str(levelname).lower()
        # %d truncates the float itself: measured faster than an f-string with int().
        ts = "%s.%06dZ" % (cache[1], (created - sec) * 1e6)  # noqa: UP031
        msg = safe_message(record)
        if len(msg) > self._trunc_chars:
            msg = truncate(msg, self._max_bytes)
        names = d.get("structflow_fields")
        event: dict[str, Any]
        plan: _Plan
        if type(names) is tuple and names:
            last = self._last_plan
            if last[0] is names:
                plan = last[1]
            else:
                cached = self._plans.get(names)
                plan = self._plan(names) if cached is None else self._last_plan_set(names, cached)
            try:
                event, plain = plan[0](d, ts, level, record.name, msg)
            except KeyError:  # a filter deleted a listed attribute
                event = {"timestamp": ts, "level": level, "logger": record.name, "message": msg}
                self._add_fields_slowly(event, d, names)
            else:
                if not plain:
                    redact = self._redact
                    for key in plan[1]:
                        value = event[key]
                        if type(value) not in _PLAIN:
                            event[key] = scrub(value, redact, 1)
            extra = len(d) - _N_RECORD_ATTRS - 1 - len(names)
        else:
            event = {"timestamp": ts, "level": level, "logger": record.name, "message": msg}
            if names is None:
                extra = len(d) - _N_RECORD_ATTRS
            else:
                if names:
                    self._add_fields_slowly(event, d, names)
                extra = len(d) - _N_RECORD_ATTRS - 1
            names = ()
        if extra > 0:
            # Another formatter may have set `message` and `asctime`.
            extra -= ("message" in d) + ("asctime" in d)
            if extra > 0:
                # More attributes than stdlib's and the listed fields: `extra=`
                # of a logger that is not structflow's, or a filter's additions.
                self._add_extras(event, d, names)
        if record.exc_info or record.exc_text:
            exc = self._exception(record)
            if exc is not None:
                event["exception"] = exc
        if record.stack_info:
            event["stack"] = record.stack_info
        return event

    def _add_fields_slowly(
        self, event: dict[str, Any], d: Mapping[str, Any], names: Iterable[Any]
    ) -> None:
        try:
            names = list(names)
        except Exception:
            return
        for name in names:
            if not isinstance(name, str) or name not in d:
                continue
            self._add_one(event, name, d[name])

    def _add_extras(self, event: dict[str, Any], d: Mapping[str, Any], names: Any) -> None:
        keys = [k for k in list(d) if k not in _RECORD_ATTRS]
        for key in keys:
            if not isinstance(key, str) or key[:1] == "_" or key in names or key in event:
                continue
            value = d.get(key, _MISSING)
            if value is not _MISSING:
                self._add_one(event, key, value)

    def _add_one(self, event: dict[str, Any], name: str, value: Any) -> None:
        key = name + "_" if name in _EVENT_KEYS else name
        if name.lower() in self._redact:
            event[key] = REDACTED
        elif type(value) in _PLAIN:
            event[key] = value
        else:
            event[key] = scrub(value, self._redact, 1)

    def _exception(self, record: logging.LogRecord) -> dict[str, Any] | None:
        exc_info = _exc_tuple(record.exc_info)
        limit = self._max_bytes
        if exc_info is not None:
            # A snapshot taken for shipping keeps the type and the exception
            # but drops the traceback object; its text is then in exc_text.
            if exc_info[2] is None and record.exc_text:
                text = safe_str(record.exc_text)
            else:
                text = _traceback_text(exc_info)
            return {
                "type": _type_name(exc_info[0]),
                "message": truncate(safe_str(exc_info[1]), limit),
                "traceback": truncate(text, limit),
            }
        if record.exc_text:
            return {"traceback": truncate(safe_str(record.exc_text), limit)}
        return None

    def _run_processors(self, event: dict[str, Any], record: logging.LogRecord) -> dict[str, Any]:
        """Run the user's processors, then redact and truncate what they added."""
        # structlog's processors find the stdlib record here (CallsiteParameterAdder).
        event["_record"] = record
        event["_from_structlog"] = False
        method_name = event["level"] if type(event["level"]) is str else "log"
        current: Any = event
        for proc in self._processors:
            try:
                result = proc(None, method_name, current)
            except Exception as exc:
                current["processor_error"] = (
                    f"{_processor_name(proc)} raised {type(exc).__name__}: {safe_str(exc)}"
                )
                break
            if isinstance(result, dict):
                current = result
            elif isinstance(result, Mapping):
                current = dict(result)
            else:
                current["processor_error"] = (
                    f"{_processor_name(proc)} returned {type(result).__name__}, "
                    "not the event dict; leave rendering to the formatter"
                )
                break
        current.pop("_record", None)
        current.pop("_from_structlog", None)
        redact = self._redact
        for key, value in list(current.items()):
            if redact and isinstance(key, str) and key.lower() in redact:
                current[key] = REDACTED
            elif type(value) not in _PLAIN:
                current[key] = scrub(value, redact, 1)
        message = current.get("message")
        if type(message) is str and len(message) > self._trunc_chars:
            current["message"] = truncate(message, self._max_bytes)
        return current  # type: ignore[no-any-return]

    def _event(self, record: logging.LogRecord) -> tuple[dict[str, Any], str]:
        """Return the event dict after the processors, and the timestamp it began with."""
        event = self._build(record)
        ts = event["timestamp"]
        if self._processors:
            event = self._run_processors(event, record)
        return event, ts

    # -- repr --

    def _repr_options(self) -> list[str]:
        processors = ", ".join(_spec_repr(p) for p in self._processor_specs)
        return [
            f"redact_keys={self._redact_given!r}",
            f"max_message_bytes={self._max_bytes!r}",
            f"processors=[{processors}]",
        ]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(self._repr_options())})"


def _spec_repr(spec: Any) -> str:
    """Show a processor as its import path (how config names it), or its repr."""
    if isinstance(spec, str):
        return repr(spec)
    if isinstance(spec, type) or hasattr(spec, "__code__"):
        module = getattr(spec, "__module__", None)
        qualname = getattr(spec, "__qualname__", None)
        if module and qualname:
            return repr(f"{module}:{qualname}")
    return safe_repr(spec)


# --- JSON ----------------------------------------------------------------------

_GCP_SEVERITIES = ((50, "CRITICAL"), (40, "ERROR"), (30, "WARNING"), (20, "INFO"), (10, "DEBUG"))
_OTEL_RANGES = ((50, 21), (40, 17), (30, 13), (20, 9), (10, 5), (1, 1))
_OTEL_TEXT = {
    "DEBUG": "DEBUG",
    "INFO": "INFO",
    "WARNING": "WARN",
    "ERROR": "ERROR",
    "CRITICAL": "FATAL",
}


def gcp_severity(levelno: int) -> str:
    """Google Cloud Logging's severity for a stdlib level number (rounded down)."""
    for floor, name in _GCP_SEVERITIES:
        if levelno >= floor:
            return name
    return "DEFAULT"


def otel_severity_number(levelno: int) -> int:
    """
    The OpenTelemetry SeverityNumber of a stdlib level number.

    DEBUG 5, INFO 9, WARNING 13, ERROR 17, CRITICAL 21; levels between two
    stdlib levels take the next numbers of the lower one's range (at most 3
    above it); levels below DEBUG are TRACE (1-4); NOTSET is 0 (unspecified).
    """
    if levelno <= 0:
        return 0
    for floor, number in _OTEL_RANGES:
        if levelno >= floor:
            return number + min(3, levelno - floor)
    return 0


class JsonFormatter(_EventFormatter):
    """
    Render each record as one JSON object on one line (UTF-8, via orjson).

    With ``json_schema="default"`` the keys are, in order: ``timestamp``
    (RFC 3339, UTC, microseconds, ``Z``), ``level`` (lower case), ``logger``,
    ``message``, the run context, bound and ``extra=`` fields, then
    ``exception`` (``type``, ``message``, ``traceback``) and ``stack`` when
    present. ``ecs``, ``gcp``, ``datadog`` and ``otel`` use the key names and
    level spellings of Elastic Common Schema, Google Cloud Logging, Datadog
    and the OpenTelemetry log data model.

    Rendering never raises and never writes invalid JSON: values JSON cannot
    hold render as their ``repr``.

    Args:
        fmt: accepted for ``dictConfig``'s ``format`` key, and ignored.
        datefmt: accepted for ``dictConfig``, and ignored (timestamps are
            RFC 3339).
        style: accepted for ``dictConfig``.
        validate: accepted for ``dictConfig``.
        defaults: accepted for ``dictConfig``.
        json_schema: ``default``, ``ecs``, ``gcp``, ``datadog`` or ``otel``.
        redact_keys: keys whose values render as ``"[REDACTED]"``
            (case-insensitive, at any depth).
        max_message_bytes: longer messages (and exception texts) are
            truncated with a marker; ``None`` for no limit.
        processors: structlog-style processors (callables or
            ``"package.module:callable"``) run on the event dict first.
        service_name: ``service`` (datadog) or ``Resource["service.name"]``
            (otel); defaults to ``DD_SERVICE`` / ``OTEL_SERVICE_NAME``.

    .. versionadded:: 0.1.0
    """

    _renderer = "json"

    def __init__(
        self,
        fmt: str | None = None,
        datefmt: str | None = None,
        style: Literal["%", "{", "$"] = "%",
        validate: bool = True,
        *,
        defaults: Mapping[str, Any] | None = None,
        json_schema: str = "default",
        redact_keys: Iterable[str] | None = DEFAULT_REDACT_KEYS,
        max_message_bytes: int | None = DEFAULT_MAX_MESSAGE_BYTES,
        processors: Iterable[str | Processor] | None = None,
        service_name: str | None = None,
    ) -> None:
        super().__init__(
            None,
            datefmt,
            style,
            validate,
            defaults=defaults,
            redact_keys=redact_keys,
            max_message_bytes=max_message_bytes,
            processors=processors,
        )
        if json_schema not in JSON_SCHEMAS:
            raise ValueError(
                f"json_schema={json_schema!r} is not a JSON schema; expected one of "
                f"{', '.join(JSON_SCHEMAS)}"
            )
        self.json_schema = json_schema
        self._service_given = service_name
        if service_name is None:
            if json_schema == "otel":
                service_name = os.environ.get("OTEL_SERVICE_NAME") or "unknown_service:python"
            elif json_schema == "datadog":
                service_name = os.environ.get("DD_SERVICE") or None
        self.service_name = service_name
        self._default = _make_default(self._redact)
        self._plain = not self._processors and json_schema == "default"
        self._transform: Callable[[dict[str, Any], logging.LogRecord, str], dict[str, Any]] | None
        self._transform = {
            "default": None,
            "ecs": self._ecs,
            "gcp": self._gcp,
            "datadog": self._datadog,
            "otel": self._otel,
        }[json_schema]

    def event_dict(self, record: logging.LogRecord) -> dict[str, Any]:
        """
        Return the dict that would be serialised for *record*.

        Keys are those of the schema; processors, redaction and truncation
        have been applied. Values may still be objects JSON cannot hold
        (:func:`to_json_bytes` renders them).

        .. versionadded:: 0.1.0
        """
        try:
            event, ts = self._event(record)
            if self._transform is not None:
                event = self._transform(event, record, ts)
            return event
        except Exception as exc:
            return self._emergency_dict(record, exc)

    def format_bytes(self, record: logging.LogRecord) -> bytes:
        """
        Render *record* as one line of UTF-8 JSON, without the newline.

        The fast path, for handlers that write bytes. Never raises.

        .. versionadded:: 0.1.0
        """
        try:
            if self._processors or self._transform is not None:
                event = self.event_dict(record)
            else:
                event = self._build(record)
            try:
                return _one_line(_dumps(event, default=self._default, option=_OPTIONS))
            except Exception:
                return _one_line(_dumps(_sanitize(event), option=_OPTIONS))
        except Exception as exc:
            return to_json_bytes(self._emergency_dict(record, exc))

    def format(self, record: logging.LogRecord) -> str:
        """
        Render *record* as one line of JSON, without the newline.

        .. versionadded:: 0.1.0
        """
        if self._plain:
            # format_bytes inlined: handlers call this once per record.
            try:
                line = _dumps(self._build(record), default=self._default, option=_OPTIONS)
                return (line if line.isascii() else _one_line(line)).decode()
            except Exception:
                pass
        return self.format_bytes(record).decode("utf-8")

    def _emergency_dict(self, record: logging.LogRecord, exc: BaseException) -> dict[str, Any]:
        # Rendering failed in a way the normal path did not foresee (a bug, or
        # a record mutated by another thread): keep the essentials.
        out: dict[str, Any] = {"timestamp": None, "level": None, "logger": None, "message": None}
        getters: tuple[tuple[str, Callable[[], Any]], ...] = (
            ("timestamp", lambda: self._timestamp(record.created)),
            ("level", lambda: safe_str(record.levelname).lower()),
            ("logger", lambda: safe_str(record.name)),
            ("message", lambda: truncate(safe_message(record), self._max_bytes)),
        )
        for key, get in getters:
            with contextlib.suppress(Exception):
                out[key] = get()
        out["structflow_error"] = (
            f"record could not be rendered: {type(exc).__name__}: " + safe_str(exc)
        )
        return out

    # -- schemas --

    @staticmethod
    def _split(event: dict[str, Any]) -> tuple[Any, Any, Any, Any, Any, Any]:
        pop = event.pop
        return (
            pop("timestamp", None),
            pop("level", None),
            pop("logger", None),
            pop("message", None),
            pop("exception", None),
            pop("stack", None),
        )

    def _millis(self, record: logging.LogRecord) -> str:
        ts = self._timestamp(record.created)
        return ts[:-4] + "Z"

    def _ecs(self, event: dict[str, Any], record: logging.LogRecord, ts: str) -> dict[str, Any]:
        stamp, level, logger_name, message, exc, stack = self._split(event)
        out: dict[str, Any] = {
            "@timestamp": self._millis(record) if stamp is ts else stamp,
            "log.level": level,
            "message": message,
            "ecs.version": ECS_VERSION,
            "log": {
                "logger": logger_name,
                "origin": {
                    "file": {"name": record.filename, "line": record.lineno},
                    "function": record.funcName,
                },
            },
        }
        process: dict[str, Any] = {}
        if record.process is not None:
            process["pid"] = record.process
        if record.processName is not None:
            process["name"] = record.processName
        thread: dict[str, Any] = {}
        if record.thread is not None:
            thread["id"] = record.thread
        if record.threadName is not None:
            thread["name"] = record.threadName
        if thread:
            process["thread"] = thread
        if process:
            out["process"] = process
        _merge(out, event, _ECS_KEYS)
        if exc is not None:
            out["error"] = {
                "type": exc.get("type"),
                "message": exc.get("message"),
                "stack_trace": exc.get("traceback"),
            }
        if stack is not None:
            out["stack"] = stack
        return out

    def _gcp(self, event: dict[str, Any], record: logging.LogRecord, ts: str) -> dict[str, Any]:
        stamp, _level, logger_name, message, exc, stack = self._split(event)
        out: dict[str, Any] = {
            "severity": gcp_severity(record.levelno),
            "message": message,
            "time": stamp,
            "logging.googleapis.com/sourceLocation": {
                "file": record.pathname,
                "line": record.lineno,
                "function": record.funcName,
            },
            "logger": logger_name,
        }
        # Labels are strings; an unset run key (map_index outside a map) is left out.
        labels = {k: safe_str(v) for k in RUN_KEYS if (v := event.pop(k, None)) is not None}
        if labels:
            out["logging.googleapis.com/labels"] = labels
        _merge(out, event, _GCP_KEYS)
        if exc is not None:
            # Error Reporting picks up a Python traceback from stack_trace.
            out["stack_trace"] = exc.get("traceback")
        if stack is not None:
            out["stack"] = stack
        return out

    def _datadog(self, event: dict[str, Any], record: logging.LogRecord, ts: str) -> dict[str, Any]:
        stamp, level, logger_name, message, exc, stack = self._split(event)
        out: dict[str, Any] = {
            "timestamp": self._millis(record) if stamp is ts else stamp,
            "status": level,
            "message": message,
            "logger": {
                "name": logger_name,
                "thread_name": record.threadName,
                "method_name": record.funcName,
            },
        }
        if self.service_name:
            out["service"] = self.service_name
        _merge(out, event, _DATADOG_KEYS)
        if exc is not None:
            out["error"] = {
                "kind": exc.get("type"),
                "message": exc.get("message"),
                "stack": exc.get("traceback"),
            }
        if stack is not None:
            out["stack"] = stack
        return out

    def _otel(self, event: dict[str, Any], record: logging.LogRecord, ts: str) -> dict[str, Any]:
        stamp, _level, logger_name, message, exc, stack = self._split(event)
        if stamp is ts:
            created = record.created
            sec = int(created)
            if sec > created:
                sec -= 1
            stamp = str(sec * 1_000_000_000 + int((created - sec) * 1e6) * 1000)
        levelname = safe_str(record.levelname)
        attributes = event
        for key, value in (
            ("code.file.path", record.pathname),
            ("code.function.name", record.funcName),
            ("code.line.number", record.lineno),
        ):
            _put(attributes, key, value)
        if exc is not None:
            for key, value in (
                ("exception.type", exc.get("type")),
                ("exception.message", exc.get("message")),
                ("exception.stacktrace", exc.get("traceback")),
            ):
                _put(attributes, key, value)
        if stack is not None:
            _put(attributes, "code.stacktrace", stack)
        resource: dict[str, Any] = {"service.name": self.service_name}
        if record.process is not None:
            resource["process.pid"] = record.process
        return {
            "Timestamp": stamp,
            "SeverityText": _OTEL_TEXT.get(levelname, levelname),
            "SeverityNumber": otel_severity_number(record.levelno),
            "Body": message,
            "Resource": resource,
            "InstrumentationScope": {"Name": logger_name},
            "Attributes": attributes,
        }

    def __repr__(self) -> str:
        options = [f"json_schema={self.json_schema!r}", *self._repr_options()]
        if self._service_given is not None:
            options.append(f"service_name={self._service_given!r}")
        return f"JsonFormatter({', '.join(options)})"


_ECS_KEYS = frozenset(
    {"@timestamp", "log.level", "message", "ecs.version", "log", "process", "error"}
)
_GCP_KEYS = frozenset(
    {
        "severity",
        "message",
        "time",
        "logger",
        "stack_trace",
        "logging.googleapis.com/sourceLocation",
        "logging.googleapis.com/labels",
    }
)
_DATADOG_KEYS = frozenset({"timestamp", "status", "message", "logger", "service", "error"})


def _merge(out: dict[str, Any], fields: Mapping[str, Any], taken: frozenset[str]) -> None:
    for key, value in fields.items():
        _put(out, key + "_" if key in taken else key, value)


def _put(out: dict[str, Any], key: str, value: Any) -> None:
    while key in out:
        key += "_"
    out[key] = value


# --- classic -------------------------------------------------------------------

_PERCENT_FIELD = re.compile(
    r"%\((?P<key>[^)]*)\)(?P<spec>[#0+ -]*(?:\*|\d+)?(?:\.(?:\*|\d+))?)(?P<conv>[diouxXeEfFgGcrsa])"
)
_DOLLAR_FIELD = re.compile(
    r"\$(?:(?P<named>[_a-z][_a-z0-9]*)|\{(?P<braced>[_a-z][_a-z0-9]*)\})", re.I
)

# How a value is prepared for the format: str() (numbers left as they are),
# repr(), or ascii().
_AS_STR, _AS_REPR, _AS_ASCII = 0, 1, 2
# Where it comes from: the record (or the processed event), the message, the
# formatted time, or nowhere (redacted).
_FROM_RECORD, _FROM_MESSAGE, _FROM_TIME, _REDACTED = 0, 1, 2, 3


class ClassicFormatter(_EventFormatter):
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

    With neither ``fmt`` nor ``datefmt`` given, structflow's defaults
    (:data:`DEFAULT_FORMAT`, :data:`DEFAULT_DATEFMT`) apply.

    .. versionadded:: 0.1.0
    """

    _renderer = "classic"

    def __init__(
        self,
        fmt: str | None = None,
        datefmt: str | None = None,
        style: Literal["%", "{", "$"] = "%",
        validate: bool = True,
        *,
        defaults: Mapping[str, Any] | None = None,
        redact_keys: Iterable[str] | None = DEFAULT_REDACT_KEYS,
        max_message_bytes: int | None = DEFAULT_MAX_MESSAGE_BYTES,
        processors: Iterable[str | Processor] | None = None,
        missing: str = "-",
    ) -> None:
        if fmt is None and datefmt is None and style == "%":
            fmt, datefmt = DEFAULT_FORMAT, DEFAULT_DATEFMT
        super().__init__(
            fmt,
            datefmt,
            style,
            validate,
            defaults=defaults,
            redact_keys=redact_keys,
            max_message_bytes=max_message_bytes,
            processors=processors,
        )
        self.missing = missing
        self._defaults = dict(defaults or {})
        self._style_char = style
        template = self._style._fmt
        self._slots, self._template, self._fallback = self._parse(template, style)
        self._uses_message = any(s[3] == _FROM_MESSAGE for s in self._slots)
        self._time_cache: tuple[int, str] = (-1, "")
        self._dollar: string.Template | None = None
        if style == "$":
            self._dollar = string.Template(self._template)

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

    def _asctime(self, record: logging.LogRecord) -> str:
        """``formatTime``, with the strftime done once per second."""
        created = record.created
        sec = int(created)
        if sec > created:
            sec -= 1
        cache = self._time_cache
        if cache[0] != sec:
            ct = self.converter(sec)
            if self.datefmt:
                text = time.strftime(self.datefmt, ct)
            else:
                text = time.strftime(self.default_time_format, ct)
            cache = self._time_cache = (sec, text)
        if self.datefmt:
            return cache[1]
        if self.default_msec_format:
            return self.default_msec_format % (cache[1], record.msecs)
        return cache[1]

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
            exc_info = _exc_tuple(record.exc_info)
            if exc_info is not None:
                text += "\n" + _format_exc_lines(exc_info, self._max_bytes)
            elif record.exc_text:
                text += "\n" + _safe_traceback(safe_str(record.exc_text))
            if record.stack_info:
                text += "\n" + _safe_traceback(self.formatStack(record.stack_info))
        except Exception as exc:
            text += f" [traceback could not be formatted: {type(exc).__name__}]"
        return text

    def _format_line(self, record: logging.LogRecord) -> str:
        d: Mapping[str, Any] = record.__dict__
        event: Mapping[str, Any] | None = None
        msg = ""
        if self._processors:
            event = self._event(record)[0]
            msg = safe_str(event.get("message", ""))
        elif self._uses_message:
            msg = safe_message(record)
            if len(msg) > self._trunc_chars:
                msg = truncate(msg, self._max_bytes)
        values: dict[str, Any] = {}
        for slot, key, kind, source in self._slots:
            if source == _FROM_RECORD:
                value = _MISSING
                if event is not None:
                    value = event.get(key, _MISSING)
                if value is _MISSING:
                    value = d.get(key, _MISSING)
                    if value is _MISSING:
                        values[slot] = self._defaults.get(key, self.missing)
                        continue
            elif source == _FROM_MESSAGE:
                value = msg
            elif source == _FROM_TIME:
                values[slot] = self._asctime(record)
                continue
            else:
                values[slot] = REDACTED
                continue
            if kind == _AS_STR:
                t = type(value)
                if t is str:
                    if not value.isprintable():
                        value = escape(value)
                elif t is not int and t is not float:
                    value = escape(safe_str(scrub(value, self._redact, 1)))
            else:
                text = safe_repr(value if type(value) in _PLAIN else scrub(value, self._redact, 1))
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
        try:
            msg = escape(truncate(safe_message(record), self._max_bytes))
        except Exception:
            msg = "<message could not be rendered>"
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


# --- console -------------------------------------------------------------------

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


class ConsoleFormatter(_EventFormatter):
    """
    Render records for a terminal: aligned columns, colours when they help.

    ``12:00:00.123 [info    ] message             [logger] key=value ...``, with
    the traceback below. Colours are used when ``colors=True``, or, with the
    default ``colors=None``, when the stream is a terminal (``stream``: a file
    object, ``"stdout"`` or ``"stderr"``; standard output when not given),
    unless ``NO_COLOR`` is set (``FORCE_COLOR`` forces them).

    Args:
        datefmt: strftime format of the local time shown; by default
            ``%Y-%m-%d %H:%M:%S`` followed by milliseconds.
        colors: force colours on or off.
        stream: where the output goes, to decide on colours.
        pad_message: the width the message is padded to before the fields.

    .. versionadded:: 0.1.0
    """

    _renderer = "console"

    def __init__(
        self,
        fmt: str | None = None,
        datefmt: str | None = None,
        style: Literal["%", "{", "$"] = "%",
        validate: bool = True,
        *,
        defaults: Mapping[str, Any] | None = None,
        redact_keys: Iterable[str] | None = DEFAULT_REDACT_KEYS,
        max_message_bytes: int | None = DEFAULT_MAX_MESSAGE_BYTES,
        processors: Iterable[str | Processor] | None = None,
        colors: bool | None = None,
        stream: IO[str] | str | None = None,
        pad_message: int = 30,
    ) -> None:
        super().__init__(
            None,
            datefmt,
            style,
            validate,
            defaults=defaults,
            redact_keys=redact_keys,
            max_message_bytes=max_message_bytes,
            processors=processors,
        )
        self._colors_given = colors
        self.colors = _stream_is_tty(stream) if colors is None else bool(colors)
        self.pad_message = pad_message
        self._local_cache: tuple[int, str] = (-1, "")

    def _local_time(self, record: logging.LogRecord) -> str:
        created = record.created
        sec = int(created)
        if sec > created:
            sec -= 1
        cache = self._local_cache
        if cache[0] != sec:
            text = time.strftime(self.datefmt or "%Y-%m-%d %H:%M:%S", self.converter(sec))
            cache = self._local_cache = (sec, text)
        if self.datefmt:
            return cache[1]
        return "%s.%03d" % (cache[1], (created - sec) * 1000)  # noqa: UP031 - as in _build

    def format(self, record: logging.LogRecord) -> str:
        """
        Format *record* for a terminal; never raises.

        .. versionadded:: 0.1.0
        """
        try:
            event, ts = self._event(record)
            return self._render(event, ts, record)
        except Exception as exc:
            try:
                msg = escape(truncate(safe_message(record), self._max_bytes))
            except Exception:
                msg = "<message could not be rendered>"
            return f"{msg} [format failed: {type(exc).__name__}]"

    def _render(self, event: dict[str, Any], ts: str, record: logging.LogRecord) -> str:
        colors = self.colors
        stamp = event.pop("timestamp", None)
        when = self._local_time(record) if stamp is ts else escape(safe_str(stamp))
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
        exc_info = _exc_tuple(record.exc_info)
        if exc_info is not None:
            text += "\n" + _format_exc_lines(exc_info, self._max_bytes)
        elif isinstance(exc, dict) and exc.get("traceback"):
            text += "\n" + _safe_traceback(safe_str(exc["traceback"]))
        if stack:
            text += "\n" + _safe_traceback(safe_str(stack))
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


# --- logfmt --------------------------------------------------------------------

_LOGFMT_ESCAPES: dict[int, str] = dict(_ESCAPES)
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
        text = "".join(c if c.isprintable() else _escape_char(c) for c in text)
    return f'"{text}"'


class LogfmtFormatter(_EventFormatter):
    """
    Render records as logfmt: ``key=value`` pairs on one line.

    ``timestamp=2024-05-01T12:00:00.123456Z level=info logger=structflow.x
    message="hello world" task_name=a``: values with spaces, quotes, ``=``
    or control characters are quoted, with ``\\\\``, ``\\"``, ``\\n``, ``\\r``,
    ``\\t`` and ``\\xNN``/``\\uNNNN`` escapes; dicts and lists are written as
    compact JSON; ``None`` as ``null``. An exception adds
    ``exception.type``, ``exception.message`` and ``exception.traceback``.

    .. versionadded:: 0.1.0
    """

    _renderer = "logfmt"

    def __init__(
        self,
        fmt: str | None = None,
        datefmt: str | None = None,
        style: Literal["%", "{", "$"] = "%",
        validate: bool = True,
        *,
        defaults: Mapping[str, Any] | None = None,
        redact_keys: Iterable[str] | None = DEFAULT_REDACT_KEYS,
        max_message_bytes: int | None = DEFAULT_MAX_MESSAGE_BYTES,
        processors: Iterable[str | Processor] | None = None,
    ) -> None:
        super().__init__(
            None,
            datefmt,
            style,
            validate,
            defaults=defaults,
            redact_keys=redact_keys,
            max_message_bytes=max_message_bytes,
            processors=processors,
        )
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
            try:
                msg = _logfmt_value(truncate(safe_message(record), self._max_bytes))
            except Exception:
                msg = '"<message could not be rendered>"'
            return f"message={msg} structflow_error={_logfmt_value(type(exc).__name__)}"


# --- factory -------------------------------------------------------------------

_FORMATTERS: dict[str, type[_EventFormatter]] = {
    "classic": ClassicFormatter,
    "json": JsonFormatter,
    "console": ConsoleFormatter,
    "logfmt": LogfmtFormatter,
}
_COMMON_OPTIONS = frozenset(
    {"fmt", "format", "datefmt", "style", "redact_keys", "max_message_bytes", "processors"}
)
_OPTIONS_BY_RENDERER: dict[str, frozenset[str]] = {
    "classic": frozenset({"defaults", "missing"}),
    "json": frozenset({"json_schema", "service_name"}),
    "console": frozenset({"colors", "stream", "pad_message"}),
    "logfmt": frozenset(),
}
_ALL_OPTIONS = _COMMON_OPTIONS.union(*_OPTIONS_BY_RENDERER.values())


def formatter_for(renderer: str, **options: Any) -> logging.Formatter:
    """
    Return the formatter for *renderer* (``classic``, ``json``, ``console``, ``logfmt``).

    *options* are the ``[logging]`` config values (``fmt`` or ``format``,
    ``datefmt``, ``json_schema``, ``redact_keys``, ``max_message_bytes``,
    ``processors``) plus renderer-specific ones (``stream`` and ``colors``
    for console, ``service_name`` for json, ``defaults`` for classic).
    Options that do not concern the chosen renderer are ignored, so the
    whole section can be passed.

    Raises:
        ValueError: an unknown renderer or a bad option value.
        TypeError: an option no renderer knows.

    .. versionadded:: 0.1.0
    """
    name = renderer.lower() if isinstance(renderer, str) else renderer
    cls = _FORMATTERS.get(name)
    if cls is None:
        raise ValueError(
            f"renderer={renderer!r} is not a renderer; expected one of {', '.join(RENDERERS)}"
        )
    unknown = sorted(set(options) - _ALL_OPTIONS)
    if unknown:
        raise TypeError(
            f"formatter_for() got unknown option(s) {', '.join(unknown)}; "
            f"expected some of {', '.join(sorted(_ALL_OPTIONS))}"
        )
    if "format" in options:
        fmt = options.pop("format")
        options.setdefault("fmt", fmt)
    wanted = _COMMON_OPTIONS | _OPTIONS_BY_RENDERER[name]
    kwargs = {k: v for k, v in options.items() if k in wanted}
    if name != "classic":
        # Only the classic renderer uses a format string.
        kwargs.pop("fmt", None)
        kwargs.pop("style", None)
    if name in ("json", "logfmt"):
        kwargs.pop("datefmt", None)
    return cls(**kwargs)
