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
and the value helpers the formatters use (:func:`scrub`, :func:`truncate`,
:func:`safe_repr`, :func:`safe_str`).
"""

from __future__ import annotations

import logging
import pkgutil
import sys
from collections.abc import Callable, Iterable, MutableMapping, Sequence
from typing import Any, TypeAlias

from structflow._context import current_fields
from structflow._values import (
    MAX_DEPTH,
    PLAIN,
    REDACTED,
    safe_repr,
    safe_str,
    scrub,
    truncate,
)

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
#: Messages longer than this many UTF-8 bytes are truncated by default.
DEFAULT_MAX_MESSAGE_BYTES = 1_000_000


# --- option checks -------------------------------------------------------------


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
            if type(value) not in PLAIN:
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


def resolve_processor(spec: str | Processor | type[Any], where: str = "processors") -> Processor:
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
        obj = _import(spec, where)
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


def _import(spec: str, where: str) -> Any:
    """The object a ``"package.module:attr"`` string names, by ``pkgutil.resolve_name``."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not all(
        part.isidentifier() for part in (*module_name.split("."), *attr.split("."))
    ):
        raise ValueError(f"{where}: {spec!r} is not of the form 'package.module:callable'")
    try:
        return pkgutil.resolve_name(spec)
    except Exception as exc:
        # An AttributeError while the module is imported means the attribute
        # is missing; one from a module that failed to import is its own bug.
        if isinstance(exc, AttributeError) and module_name in sys.modules:
            raise ValueError(
                f"{where}: {spec!r}: {module_name!r} has no attribute {attr!r}"
            ) from None
        raise ValueError(f"{where}: cannot import {spec!r} ({type(exc).__name__}: {exc})") from None


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
