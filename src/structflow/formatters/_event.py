"""
The event dict every renderer starts from, built from a record on the hot path.

:class:`EventFormatter` is the base of the four formatters: it turns a record
into ``timestamp``, ``level``, ``logger``, ``message``, the record's fields
(run context, bound keys, ``extra=``), then ``exception`` and ``stack``,
redacting, truncating and running the user's processors on the way.
"""

from __future__ import annotations

import inspect
import logging
import math
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, TypeAlias, TypedDict, TypeVar

from structflow._levels import LOWER_NAMES
from structflow._records import (
    N_RECORD_ATTRS,
    RESERVED,
    SecondCache,
    check_datefmt,
    exc_tuple,
    safe_message,
    traceback_text,
    utc_second,
)
from structflow._values import PLAIN, REDACTED, safe_repr, safe_str, scrub, truncate
from structflow.formatters._traceback import type_name
from structflow.processors import (
    DEFAULT_MAX_MESSAGE_BYTES,
    DEFAULT_REDACT_KEYS,
    Processor,
    check_max_message_bytes,
    normalize_redact_keys,
    resolve_processors,
)

__all__ = ["MISSING", "EventFormatter", "FormatterOptions", "spec_repr", "takes_formatter_options"]

#: A value absent from a record or event (``None`` is a value).
MISSING: Any = object()

_floor = math.floor
# stdlib's Formatter.default_msec_format, and what it makes of each millisecond.
_STDLIB_MSEC_FORMAT = "%s,%03d"
_MSEC_SUFFIXES: dict[float, str] = {float(ms): f",{ms:03d}" for ms in range(1000)}

# Keys of structflow's own event layout; a field with one of these names is
# shown as `<name>_`, as the logger does for record attribute names.
_EVENT_KEYS: frozenset[str] = frozenset(
    {"timestamp", "level", "logger", "message", "exception", "stack"}
)

# Builds the event dict: (record.__dict__, timestamp, level, logger, message)
# -> (event, whether every field value is of a plain type).
Fill: TypeAlias = Callable[[Mapping[str, Any], str, str, Any, str], tuple[dict[str, Any], bool]]
Plan: TypeAlias = tuple[Fill, tuple[str, ...]]
_MAX_COMPILED_FIELDS = 64


def _compile_fill(
    attrs: tuple[str, ...], keys: tuple[str, ...], redacted: tuple[bool, ...]
) -> Fill:
    """
    Compile a function building the event of records with these fields.

    One dict display builds the whole event in a single step (no resize, no
    loop per field), which is most of what a JSON line costs beyond the
    serialiser. As in attrs' generated ``__init__``, the names are not
    pasted into the source: they are globals of the generated function.
    """
    namespace: dict[str, Any] = {"_P": PLAIN, "_t": type, "_R": REDACTED}
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
) -> Fill:
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
                if plain and type(value) not in PLAIN:
                    plain = False
        return event, plain

    return fill


def _key_text(name: Any) -> str:
    """The key a field is shown under: its name, or the name's ``str()`` when not a string."""
    return name if type(name) is str else safe_str(name)


def _processor_name(proc: Any) -> str:
    name = getattr(proc, "__qualname__", None) or type(proc).__qualname__
    return str(name)


class FormatterOptions(TypedDict, total=False):
    """
    The options every formatter takes, typed for ``**options`` (PEP 692).

    :class:`EventFormatter` takes them as parameters; a renderer takes its
    own keyword arguments, then ``*args`` and ``**options:
    Unpack[FormatterOptions]`` for these, so each is written once (see
    :func:`takes_formatter_options`).
    """

    fmt: str | None
    datefmt: str | None
    style: Literal["%", "{", "$"]
    validate: bool
    defaults: Mapping[str, Any] | None
    redact_keys: Iterable[str] | None
    max_message_bytes: int | None
    processors: Iterable[str | Processor] | None


class EventFormatter(logging.Formatter):
    """
    Builds structflow's event dict from a record; the renderers share it.

    The event dict holds ``timestamp``, ``level``, ``logger``, ``message``,
    then the record's fields (run context, bound keys, ``extra=``), then
    ``exception`` and ``stack`` when present.

    It takes the options every renderer takes, described once under
    "Common options" in :mod:`structflow.formatters`; ``fmt`` goes to
    :class:`logging.Formatter` only for a renderer that shows it (see
    :meth:`_formats`). Any other keyword argument is a TypeError naming it
    and the ones the renderer takes.

    Raises:
        TypeError: an unknown keyword argument.
        ValueError: an option's value is not allowed.
    """

    _renderer = "event"
    #: Whether the renderer shows ``datefmt`` (its directives are then checked).
    _uses_datefmt = False

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
        **unknown: object,
    ) -> None:
        if unknown:
            # A renderer passes on whatever its **options held.
            self._reject(unknown)
        fmt, datefmt = self._formats(fmt, datefmt, style)
        if datefmt is not None and self._uses_datefmt:
            try:
                check_datefmt(datefmt)
            except ValueError as exc:
                raise ValueError(f"datefmt={datefmt!r} is not allowed: {exc}") from None
        super().__init__(fmt, datefmt, style, validate, defaults=defaults)
        self._style_char = style
        self._defaults = dict(defaults or {})
        self._redact = normalize_redact_keys(redact_keys)
        self._redact_given = list(redact_keys) if redact_keys is not None else []
        self._max_bytes = check_max_message_bytes(max_message_bytes)
        # A str of n characters has at most 4n UTF-8 bytes: shorter ones
        # cannot exceed the limit, which saves encoding every message.
        self._trunc_chars = self._max_bytes // 4 if self._max_bytes else sys.maxsize
        self._processor_specs = list(processors) if processors is not None else []
        self._processors = resolve_processors(processors)
        self._plans: dict[tuple[str, ...], Plan] = {}
        # The plan used last: the logger hands out the same names tuple for
        # the same context, so an identity check usually finds it.
        self._last_plan: tuple[Any, Any] = (None, None)
        self._seen_once: set[tuple[str, ...]] = set()
        # RFC 3339, UTC, microseconds; the strftime is done once per second.
        self._rfc3339 = SecondCache(utc_second, "%s.%06dZ", 1e6).format
        # record.asctime, as stdlib's formatTime writes it: the strftime once
        # per second ([start, end) of that second, its text), milliseconds
        # from a table when the format is stdlib's.
        self._asctime_cache: tuple[float, float, str] = (math.nan, math.nan, "")
        # The last asctime made: (its second's bounds, its msecs, the text).
        self._last_asctime: tuple[float, float, float, str] = (math.nan, math.nan, math.nan, "")
        self._msec_format = self.default_msec_format or ""
        self._msec_suffixes: Mapping[float, str] | None = None
        if not self.datefmt and self._msec_format:
            standard = self._msec_format == _STDLIB_MSEC_FORMAT
            # Another format finds nothing in an empty table: the slow path formats it.
            self._msec_suffixes = _MSEC_SUFFIXES if standard else {}

    def _formats(
        self, fmt: str | None, datefmt: str | None, style: str
    ) -> tuple[str | None, str | None]:
        """
        Return the format and date format to hand to :class:`logging.Formatter`.

        Only the classic renderer shows a format string: the others accept
        ``fmt``, since ``dictConfig`` passes one, and leave it out.
        """
        return None, datefmt

    def _reject(self, unknown: Mapping[str, object]) -> None:
        """Raise the TypeError for keyword arguments this formatter does not take."""
        parameters = inspect.signature(type(self)).parameters.values()
        names = [p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        raise TypeError(
            f"{type(self).__name__}() got an unexpected keyword argument {next(iter(unknown))!r}; "
            f"expected some of {', '.join(names)}"
        )

    # -- what stdlib's Formatter.format leaves on the record --

    def _asctime(self, record: logging.LogRecord) -> str:
        """
        ``formatTime(record, self.datefmt)``, computed as cheaply as it can be.

        Every formatter leaves ``record.asctime`` set, as stdlib's ``format``
        does, so this is on the hot path of every renderer.
        """
        created = record.created
        cache = self._asctime_cache
        if not cache[0] <= created < cache[1]:
            cache = self._asctime_second(created)
        suffixes = self._msec_suffixes
        msecs = record.msecs
        if suffixes is None:
            text = cache[2]
        else:
            try:
                # record.msecs is a whole number of milliseconds as a float.
                text = cache[2] + suffixes[msecs]
            except (KeyError, TypeError):
                text = self._msec_format % (cache[2], msecs)
        self._last_asctime = (cache[0], cache[1], msecs, text)
        return text

    def _asctime_second(self, created: float) -> tuple[float, float, str]:
        sec = _floor(created)
        text = time.strftime(self.datefmt or self.default_time_format, self.converter(sec))
        # Float bounds: comparing a float with an int is the slower comparison.
        cache = self._asctime_cache = (float(sec), float(sec + 1), text)
        return cache

    # -- the event dict --

    def _plan(self, names: tuple[str, ...]) -> Plan:
        """Return (and cache) the event builder for records with these field names."""
        # A field is read from the record by its own name (an `extra=` key
        # may be any hashable) and shown under that name's str().
        attrs = names
        texts = tuple(_key_text(n) for n in names)
        keys = tuple(t + "_" if t in _EVENT_KEYS else t for t in texts)
        redact = self._redact
        redacted = tuple(
            text.lower() in redact
            or (text.endswith("_") and text[:-1] in RESERVED and text[:-1].lower() in redact)
            for text in texts
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

    def _last_plan_set(self, names: tuple[str, ...], plan: Plan) -> Plan:
        self._last_plan = (names, plan)
        return plan

    def _build(self, record: logging.LogRecord) -> dict[str, Any]:
        """Return the event dict of *record* (the hot path of every renderer)."""
        d = record.__dict__
        ts = self._rfc3339(record.created)
        levelname = record.levelname
        level = LOWER_NAMES.get(levelname) or safe_str(levelname).lower()
        msg = full_msg = safe_message(record)
        if len(msg) > self._trunc_chars:
            msg = truncate(msg, self._max_bytes)
        names = d.get("structflow_fields")
        event: dict[str, Any]
        plan: Plan
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
                        if type(value) not in PLAIN:
                            event[key] = scrub(value, redact, 1)
            extra = len(d) - N_RECORD_ATTRS - 1 - len(names)
        else:
            event = {"timestamp": ts, "level": level, "logger": record.name, "message": msg}
            if names is None:
                extra = len(d) - N_RECORD_ATTRS
            else:
                if names:
                    self._add_fields_slowly(event, d, names)
                extra = len(d) - N_RECORD_ATTRS - 1
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
        # What stdlib's Formatter.format leaves on the record, for a handler
        # or filter that runs later: the whole message (before truncation
        # and escaping, which are matters of rendering) and the time.
        d["message"] = full_msg
        before = self._last_asctime
        if before[0] <= record.created < before[1] and before[2] == record.msecs:
            # The same millisecond as the record before: the usual case in a busy loop.
            d["asctime"] = before[3]
        else:
            d["asctime"] = self._asctime(record)
        return event

    def _add_fields_slowly(
        self, event: dict[str, Any], d: Mapping[str, Any], names: Iterable[Any]
    ) -> None:
        try:
            names = list(names)
        except Exception:
            return
        for name in names:
            try:
                if name not in d:
                    continue
            except TypeError:  # an unhashable name
                continue
            self._add_one(event, _key_text(name), d[name])

    def _add_extras(self, event: dict[str, Any], d: Mapping[str, Any], names: Any) -> None:
        keys = [k for k in list(d) if k not in RESERVED]
        for key in keys:
            if key in names:
                continue
            text = key if type(key) is str else _key_text(key)
            if text[:1] == "_" or text in event:
                continue
            value = d.get(key, MISSING)
            if value is not MISSING:
                self._add_one(event, text, value)

    def _add_one(self, event: dict[str, Any], name: str, value: Any) -> None:
        key = name + "_" if name in _EVENT_KEYS else name
        if name.lower() in self._redact:
            event[key] = REDACTED
        elif type(value) in PLAIN:
            event[key] = value
        else:
            event[key] = scrub(value, self._redact, 1)

    def _exception(self, record: logging.LogRecord) -> dict[str, Any] | None:
        exc_info = exc_tuple(record.exc_info)
        limit = self._max_bytes
        if exc_info is not None:
            # A snapshot taken for shipping keeps the type and the exception
            # but drops the traceback object; its text is then in exc_text.
            if exc_info[2] is None and record.exc_text:
                text = safe_str(record.exc_text)
            else:
                text = traceback_text(exc_info)
            return {
                "type": type_name(exc_info[0]),
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
            elif type(value) not in PLAIN:
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

    def _fallback_message(self, record: logging.LogRecord, show: Callable[[str], str]) -> str:
        """
        Return the message of a record that could not be rendered, for the line saying so.

        The message is truncated and passed through *show*, the renderer's
        quoting or escaping; if even that fails, a placeholder is shown.
        """
        try:
            return show(truncate(safe_message(record), self._max_bytes))
        except Exception:
            return show("<message could not be rendered>")

    # -- repr --

    def _repr_options(self) -> list[str]:
        processors = ", ".join(spec_repr(p) for p in self._processor_specs)
        return [
            f"redact_keys={self._redact_given!r}",
            f"max_message_bytes={self._max_bytes!r}",
            f"processors=[{processors}]",
        ]

    def __repr__(self) -> str:
        options = [] if self.datefmt is None else [f"datefmt={self.datefmt!r}"]
        options.extend(self._repr_options())
        return f"{type(self).__name__}({', '.join(options)})"


_Init = TypeVar("_Init", bound=Callable[..., None])


def takes_formatter_options(init: _Init) -> _Init:
    """
    Show a renderer's ``*args`` and ``**options`` as the parameters they stand for.

    A renderer's ``__init__`` spells out only its own keyword arguments and
    passes ``*args`` and ``**options: Unpack[FormatterOptions]`` on to
    :class:`EventFormatter`. ``inspect.signature`` of the renderer (and so
    ``help()``) then lists ``fmt``, ``datefmt``, ``style`` and ``validate``
    (positional, in :class:`logging.Formatter`'s order), the renderer's own
    keyword arguments, then the other common options, with their defaults,
    as if each had been written out.
    """
    signature = inspect.signature(init)
    common = inspect.signature(EventFormatter.__init__).parameters.values()
    own = [p for p in signature.parameters.values() if p.kind is p.KEYWORD_ONLY]
    shown = [
        *(p for p in common if p.kind is p.POSITIONAL_OR_KEYWORD),
        *own,
        *(p for p in common if p.kind is p.KEYWORD_ONLY),
    ]
    init.__signature__ = signature.replace(parameters=shown)  # type: ignore[attr-defined]
    return init


def spec_repr(spec: Any) -> str:
    """Show a processor as its import path (how config names it), or its repr."""
    if isinstance(spec, str):
        return repr(spec)
    if isinstance(spec, type) or hasattr(spec, "__code__"):
        module = getattr(spec, "__module__", None)
        qualname = getattr(spec, "__qualname__", None)
        if module and qualname:
            return repr(f"{module}:{qualname}")
    return safe_repr(spec)
