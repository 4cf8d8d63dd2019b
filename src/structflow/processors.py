"""
structlog-style processors: run context, redaction, truncation.

A processor is a callable ``(logger, method_name, event_dict) -> event_dict``,
exactly as in structlog, so structlog's own processors and structflow's mix
freely. Stateless processors are functions named as verbs
(:func:`add_run_context`); configurable ones are classes named as nouns
(:class:`Redactor`, :class:`Truncator`).

structflow's formatters do all of this themselves, inlined in their hot path;
this module exposes the same steps for users composing their own chains (a
structlog configuration, or extra ``processors=[...]`` given to a formatter),
and the value helpers the formatters share (:func:`scrub`,
:func:`truncate`, :func:`safe_repr`).
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
from collections import deque
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from typing import Any, TypeAlias

from structflow._context import current_fields

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "DEFAULT_REDACT_KEYS",
    "MAX_DEPTH",
    "REDACTED",
    "EventDict",
    "Processor",
    "Redactor",
    "Truncator",
    "add_run_context",
    "check_max_message_bytes",
    "normalize_redact_keys",
    "resolve_processor",
    "resolve_processors",
    "safe_repr",
    "safe_str",
    "scrub",
    "truncate",
]

EventDict: TypeAlias = MutableMapping[str, Any]
#: What a processor is: structlog's signature.
Processor: TypeAlias = Callable[[Any, str, EventDict], Any]

#: Keys whose values render as :data:`REDACTED` unless configured otherwise.
DEFAULT_REDACT_KEYS: tuple[str, ...] = (
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "authorization",
    "cookie",
)
#: What a redacted value renders as.
REDACTED = "[REDACTED]"
#: Messages longer than this many UTF-8 bytes are truncated by default.
DEFAULT_MAX_MESSAGE_BYTES = 1_000_000
#: Containers nested deeper than this render as a placeholder string. It keeps
#: rendering bounded for self-referencing or pathological values and stays well
#: below orjson's own limit (254), so the fast serialiser never hits it.
MAX_DEPTH = 64

_NoneType = type(None)
# Values of these exact types need no work before serialisation.
_PLAIN: frozenset[type] = frozenset({str, int, bool, _NoneType})
_TRUNCATION_MARKER = "…[truncated {} bytes]"


# --- value helpers -----------------------------------------------------------


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
        return _placeholder(obj)
    if type(text) is not str:  # a __repr__ returning a str subclass
        try:
            return str.__str__(text)
        except Exception:
            return _placeholder(obj)
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


def _placeholder(obj: object) -> str:
    return f"<unrepresentable {type(obj).__name__} object>"


def normalize_redact_keys(keys: Iterable[str] | None) -> frozenset[str]:
    """
    Return *keys* lower-cased as a set, after checking they are strings.

    Raises:
        ValueError: *keys* is a single string or holds something else than
            strings.

    .. versionadded:: 0.1.0
    """
    if keys is None:
        return frozenset()
    if isinstance(keys, str | bytes):
        raise ValueError(
            f"redact_keys={keys!r} is a single string; expected a list of key names, "
            f"for example [{keys!r}]"
        )
    out = []
    for key in keys:
        if not isinstance(key, str):
            raise ValueError(
                f"redact_keys holds {key!r} ({type(key).__name__}); expected only strings"
            )
        out.append(key.lower())
    return frozenset(out)


def check_max_message_bytes(value: int | None) -> int | None:
    """
    Validate a ``max_message_bytes`` setting (a positive int, or None for no limit).

    Raises:
        ValueError: *value* is not a positive integer or None.

    .. versionadded:: 0.1.0
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(
            f"max_message_bytes={value!r} is not allowed; expected a positive integer "
            "(bytes of UTF-8) or None for no limit"
        )
    return value


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
    if t in _PLAIN:
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
        if is_dict:
            new_dict: dict[Any, Any] | None = None
            # dict subclasses (OrderedDict, defaultdict, Counter) are scanned
            # too: orjson writes them as objects without asking `default`.
            for key, item in value.items():  # type: ignore[union-attr]
                if redact and isinstance(key, str) and key.lower() in redact:
                    new = repl
                else:
                    new = _scrub(item, redact, depth + 1, stack, repl)
                if new is not item:
                    if new_dict is None:
                        new_dict = dict(value)
                    new_dict[key] = new
            return value if new_dict is None else new_dict
        new_list: list[Any] | None = None
        for index, item in enumerate(value):
            new = _scrub(item, redact, depth + 1, stack, repl)
            if new is not item:
                if new_list is None:
                    new_list = list(value)
                new_list[index] = new
        return value if new_list is None else new_list
    finally:
        stack.pop()


# --- processors --------------------------------------------------------------


def add_run_context(logger: Any, method_name: str, event_dict: EventDict) -> EventDict:
    """
    Add the run context (flow and task names and ids) and bound keys.

    For an event that carries a stdlib record (``event_dict["_record"]``, as
    inside a formatter or structlog's ``ProcessorFormatter``) the record's
    own fields are used, since the record may have been made in another
    thread; otherwise the current context is read. Keys already in the event
    are kept.

    .. versionadded:: 0.1.0
    """
    record = event_dict.get("_record")
    if isinstance(record, logging.LogRecord):
        attrs = record.__dict__
        for name in attrs.get("structflow_fields") or ():
            if name in attrs and name not in event_dict:
                event_dict[name] = attrs[name]
        return event_dict
    for key, value in current_fields().items():
        if key not in event_dict:
            event_dict[key] = value
    return event_dict


class Redactor:
    """
    Replace the values of secret keys with ``"[REDACTED]"``.

    Keys match case-insensitively, at any depth of nested dicts and lists.

    Args:
        keys: key names to redact; by default :data:`DEFAULT_REDACT_KEYS`.
        replacement: what a redacted value becomes.

    .. versionadded:: 0.1.0
    """

    __slots__ = ("_keys", "replacement")

    def __init__(
        self, keys: Iterable[str] | None = DEFAULT_REDACT_KEYS, replacement: str = REDACTED
    ) -> None:
        self._keys = normalize_redact_keys(keys)
        self.replacement = replacement

    @property
    def keys(self) -> frozenset[str]:
        """The lower-cased key names this redactor matches."""
        return self._keys

    def __call__(self, logger: Any, method_name: str, event_dict: EventDict) -> EventDict:
        keys = self._keys
        if not keys:
            return event_dict
        for key in list(event_dict):
            if key == "_record":
                continue
            if isinstance(key, str) and key.lower() in keys:
                event_dict[key] = self.replacement
                continue
            value = event_dict[key]
            if type(value) not in _PLAIN:
                new = scrub(value, keys, 1, self.replacement)
                if new is not value:
                    event_dict[key] = new
        return event_dict

    def __repr__(self) -> str:
        return f"Redactor(keys={sorted(self._keys)!r}, replacement={self.replacement!r})"


class Truncator:
    """
    Truncate long messages to a number of UTF-8 bytes, with a marker.

    Args:
        max_bytes: the limit, marker included; ``None`` disables it.
        keys: the event keys holding messages (structflow's ``message``,
            structlog's ``event``).

    .. versionadded:: 0.1.0
    """

    __slots__ = ("keys", "max_bytes")

    def __init__(
        self,
        max_bytes: int | None = DEFAULT_MAX_MESSAGE_BYTES,
        keys: Sequence[str] = ("message", "event"),
    ) -> None:
        self.max_bytes = check_max_message_bytes(max_bytes)
        self.keys = tuple(keys)

    def __call__(self, logger: Any, method_name: str, event_dict: EventDict) -> EventDict:
        limit = self.max_bytes
        if limit is None:
            return event_dict
        for key in self.keys:
            value = event_dict.get(key)
            if type(value) is str and len(value) * 4 > limit:
                event_dict[key] = truncate(value, limit)
        return event_dict

    def __repr__(self) -> str:
        return f"Truncator(max_bytes={self.max_bytes!r}, keys={list(self.keys)!r})"


# --- resolving processors given by name --------------------------------------


def resolve_processor(spec: str | Processor, where: str = "processors") -> Processor:
    """
    Return the processor named by *spec*, importing it when it is a string.

    *spec* is a callable or a ``"package.module:callable"`` string (the
    attribute may be dotted, ``"package.module:Class.attr"``). A class is
    instantiated with no arguments, so ``"structlog.processors:TimeStamper"``
    names a working processor.

    Raises:
        ValueError: the string is malformed, cannot be imported, or does not
            name a callable; the message names *where* it came from.

    .. versionadded:: 0.1.0
    """
    obj: Any = spec
    if isinstance(spec, str):
        module_name, sep, attr = spec.partition(":")
        if not sep or not module_name or not attr:
            raise ValueError(f"{where}: {spec!r} is not of the form 'package.module:callable'")
        try:
            obj = importlib.import_module(module_name)
        except Exception as exc:
            raise ValueError(
                f"{where}: {spec!r}: cannot import module {module_name!r} "
                f"({type(exc).__name__}: {exc})"
            ) from None
        for part in attr.split("."):
            try:
                obj = getattr(obj, part)
            except AttributeError:
                raise ValueError(
                    f"{where}: {spec!r}: {module_name!r} has no attribute {attr!r}"
                ) from None
    if isinstance(obj, type):
        try:
            obj = obj()
        except Exception as exc:
            raise ValueError(
                f"{where}: {spec!r} is a class that cannot be made without arguments "
                f"({type(exc).__name__}: {exc}); give an instance instead"
            ) from None
    if not callable(obj):
        raise ValueError(
            f"{where}: {spec!r} is a {type(obj).__name__}, not a callable "
            "(logger, method_name, event_dict) -> event_dict"
        )
    return obj  # type: ignore[no-any-return]


def resolve_processors(specs: Iterable[str | Processor] | None) -> list[Processor]:
    """
    Resolve every entry of *specs* with :func:`resolve_processor`.

    Raises:
        ValueError: an entry is invalid; the message names its index.

    .. versionadded:: 0.1.0
    """
    if specs is None:
        return []
    if isinstance(specs, str) or callable(specs):
        raise ValueError(f"processors={specs!r} is a single processor; expected a list of them")
    return [resolve_processor(spec, f"processors[{i}]") for i, spec in enumerate(specs)]
